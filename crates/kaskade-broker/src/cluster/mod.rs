//! A node of a multi-node cluster: its controller of the metadata quorum
//! (`kaskade_meta::quorum`) on the CONTROLLER listener, its broker's
//! registration and heartbeats (`lifecycle`), and the task that brings this
//! broker's replicas to every image the quorum commits.
//!
//! A combined node (`process.roles=broker,controller`) whose
//! `controller.quorum.voters` names other nodes, a controller-only node
//! (`process.roles=controller`: the quorum and its listener, no broker) and
//! a broker-only node (`process.roles=broker`: an observer of the quorum,
//! `link`) run here; a node that is its own quorum keeps the local metadata
//! log (`server::open_storage`).
//!
//! Invariants: the controller listener serves openraft's frames (and
//! proposals forwarded to the leader; Kafka requests there wait for the
//! broker layer, `take_handed_over`) before this node waits for a leader,
//! so nodes starting together never wait on each other; the topic manager
//! is built only once a leader is known, and every committed image after
//! that reaches `TopicManager::apply_committed` in log order (each apply
//! reads the latest image, so a skipped notification loses nothing); the
//! broker serves clients only once the active controller unfenced it.

pub mod controller_channel;
mod endpoint_update;
pub mod lifecycle;
pub mod link;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kaskade_meta::quorum::ControllerNode;
use kaskade_meta::{BrokerEndpoint, MetadataLog, ObserverConfig, ObserverMetadataLog, QuorumConfig, QuorumMetadataLog};
use kaskade_types::NodeId;
use tokio::task::JoinHandle;

use crate::config::{BrokerConfig, DynamicQuorum};
use crate::network::controller::HandedOver;
use crate::network::BoundListener;
use crate::server::StartError;
use controller_channel::ControllerChannel;

/// How often start-up says it still waits for its image to list it.
const UNFENCE_REPORT: Duration = Duration::from_secs(5);
use lifecycle::Lifecycle;
pub use link::QuorumLink;

/// How often start-up says it is still waiting for the quorum.
const WAIT_REPORT: Duration = Duration::from_secs(5);

/// The endpoints a broker registers: one per advertised client listener.
pub fn registration_endpoints(advertised: &[crate::broker::Advertised]) -> Result<Vec<BrokerEndpoint>, StartError> {
    advertised
        .iter()
        .map(|a| {
            let port = u16::try_from(a.endpoint.port).map_err(|_| {
                StartError::Invalid(format!("advertised port {} of {} is out of range", a.endpoint.port, a.listener))
            })?;
            Ok(BrokerEndpoint {
                listener: a.listener.clone(),
                host: a.endpoint.host.clone(),
                port,
                security_protocol: Some(a.security_protocol.clone()),
            })
        })
        .collect()
}

/// This node's place in the quorum (its controller, or its observer) and
/// the tasks serving its controller listeners.
pub struct Controller {
    pub quorum: QuorumLink,
    servers: Vec<JoinHandle<()>>,
    lifecycle: Arc<Lifecycle>,
    /// The Kafka connections the quorum's servers take on the controller
    /// listeners, until the broker layer serves them (`take_handed_over`).
    handed_over: parking_lot::Mutex<Vec<HandedOver>>,
}

/// Kafka connections a controller listener takes before the broker layer
/// serves them (the tool's first requests during start-up wait there);
/// past this many the quorum's server closes new ones.
const HANDED_OVER_BACKLOG: usize = 64;

/// Who the voters of this controller's quorum are when it first forms.
#[derive(Clone, Debug)]
pub enum QuorumMembers {
    /// `controller.quorum.voters`: node id -> `host:port` of its
    /// controller listener; never changes.
    Static(BTreeMap<NodeId, String>),
    /// A dynamic quorum (KIP-853): formed by a standalone controller, joined
    /// by the others through AddRaftVoter.
    Dynamic(DynamicQuorum),
}

/// `host:port` others reach this controller at: its controller listener's
/// host (the bound address when it names every address) and bound port.
fn own_controller_address(listeners: &[BoundListener]) -> Option<String> {
    let l = listeners.first()?;
    let bound = l.local_addr();
    let host = match l.spec().host.as_str() {
        "" | "0.0.0.0" | "::" => bound.ip().to_string(),
        h => h.to_string(),
    };
    Some(if host.contains(':') { format!("[{host}]:{}", bound.port()) } else { format!("{host}:{}", bound.port()) })
}

impl Controller {
    /// Starts this node's controller on its files under `dir`, serves the
    /// quorum's RPCs on the controller listeners, forms the quorum of
    /// `members` (a restart keeps the stored membership) and waits until a
    /// leader is elected, which needs a majority of the voters up; a
    /// controller joining a dynamic quorum waits until the leader added it.
    pub async fn start(
        config: &BrokerConfig,
        dir: &std::path::Path,
        cluster_id: &str,
        directory_id: Option<uuid::Uuid>,
        members: &QuorumMembers,
        listeners: Vec<BoundListener>,
    ) -> Result<Controller, StartError> {
        let mut qc = QuorumConfig::new(config.node_id, cluster_id, dir);
        qc.static_voters = match members {
            QuorumMembers::Static(voters) => Some(voters.keys().copied().collect()),
            QuorumMembers::Dynamic(_) => None,
        };
        qc.directory_id = directory_id;
        let own_address = own_controller_address(&listeners);
        qc.broker_session_timeout =
            Duration::from_millis(u64::try_from(config.broker_session_timeout_ms).unwrap_or(1).max(1));
        let timing = kaskade_meta::quorum::RaftTiming::from(config.quorum_timeouts);
        (qc.election_timeout, qc.heartbeat_interval) = (timing.election_timeout, timing.heartbeat_interval);
        let secs = u64::try_from(config.leader_imbalance_check_interval_seconds).unwrap_or(1).max(1);
        qc.leader_imbalance_check_interval = config.auto_leader_rebalance_enable.then(|| Duration::from_secs(secs));
        qc.unclean_leader_election_interval =
            Duration::from_millis(u64::try_from(config.unclean_leader_election_interval_ms).unwrap_or(1).max(1));
        qc.unclean_leader_election_enable = config.unclean_leader_election_enable;
        qc.snapshot_interval = u64::try_from(config.metadata_log_max_snapshot_interval_ms)
            .ok()
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis);
        let quorum = QuorumMetadataLog::start(qc).await?;
        let mut handed_over = Vec::new();
        let servers = listeners
            .into_iter()
            .map(|l| {
                let (spec, tcp) = l.into_tcp();
                let (to, connections) = tokio::sync::mpsc::channel(HANDED_OVER_BACKLOG);
                handed_over.push(HandedOver { listener: Arc::from(spec.name.as_str()), connections });
                tokio::spawn(quorum.serve(tcp, Some(to)))
            })
            .collect();
        match members {
            QuorumMembers::Static(voters) => quorum.initialize(voters).await?,
            QuorumMembers::Dynamic(DynamicQuorum::Standalone) => {
                let addr = own_address.clone().ok_or_else(|| {
                    StartError::Invalid("controller.quorum.standalone needs a controller listener".into())
                })?;
                quorum.initialize(&BTreeMap::from([(config.node_id, addr)])).await?;
            }
            QuorumMembers::Dynamic(DynamicQuorum::InitialControllers) => {
                let initial = &config.kraft.initial_controllers;
                // A controller the list does not name joins as with Join.
                if initial.iter().any(|c| c.id == config.node_id) {
                    let members = initial
                        .iter()
                        .map(|c| {
                            let node =
                                ControllerNode { addr: c.address.to_string(), directory_id: Some(c.directory_id) };
                            (c.id, node)
                        })
                        .collect();
                    quorum.initialize_members(&members).await?;
                }
            }
            QuorumMembers::Dynamic(DynamicQuorum::Join) => {}
        }
        // A voter of a dynamic quorum that moved tells the leader (a static
        // quorum's addresses come from controller.quorum.voters). A listener
        // on every address names no host others could reach: nothing to tell.
        let routable = own_address.filter(|a| endpoint_update::routable(a));
        if let (QuorumMembers::Dynamic(_), Some(address), Some(directory_id)) = (members, routable, directory_id) {
            let update = endpoint_update::Update {
                cluster_id: cluster_id.to_string(),
                listener: config.controller_listener_names.first().cloned().unwrap_or_default(),
                address,
                directory_id,
                client_id: format!("{}{}", crate::inter_broker::CLIENT_ID_PREFIX, config.node_id),
            };
            tokio::spawn(endpoint_update::run(quorum.clone(), update));
        }
        let mut said_removed = false;
        while !quorum.wait_until_current(WAIT_REPORT).await? {
            if quorum.removed_from_quorum().await? {
                // Once: it stays so until an operator acts.
                if !said_removed {
                    said_removed = true;
                    tracing::warn!(
                        node = quorum.node_id().get(),
                        directory_id = ?directory_id,
                        "this controller was removed from the controller quorum (RemoveRaftVoter) and takes no part \
                         until it is added again: run `kafka-metadata-quorum --bootstrap-controller <a voter's \
                         controller listener> --command-config <this node's properties> add-controller` on this \
                         node's host, or stop this node for good"
                    );
                }
                continue;
            }
            match members {
                QuorumMembers::Dynamic(DynamicQuorum::Join | DynamicQuorum::InitialControllers) => tracing::info!(
                    node = quorum.node_id().get(),
                    directory_id = ?directory_id,
                    "waiting to be added to the controller quorum (kafka-metadata-quorum add-controller), or for \
                     the initial controllers to elect a leader"
                ),
                _ => {
                    tracing::info!(node = quorum.node_id().get(), "waiting for the controller quorum to elect a leader")
                }
            }
        }
        let controller = Self::with_link(config, cluster_id, QuorumLink::Voter(quorum), servers);
        *controller.handed_over.lock() = handed_over;
        Ok(controller)
    }

    /// The Kafka connections taken on the controller listeners (once; empty
    /// for an observer), for `network::controller::serve_handed_over`.
    pub fn take_handed_over(&self) -> Vec<HandedOver> {
        std::mem::take(&mut *self.handed_over.lock())
    }

    /// Starts a broker-only node's observer of the quorum of `voters` (node
    /// id -> `host:port` of its controller listener; empty for a dynamic
    /// quorum, which it fetches from `bootstrap`, `host:port` each) and
    /// waits until it caught up with the metadata log and knows the active
    /// controller (Kafka's broker likewise catches up before it serves).
    pub async fn start_observer(
        config: &BrokerConfig,
        cluster_id: &str,
        voters: &BTreeMap<NodeId, String>,
        bootstrap: &[String],
    ) -> Result<Controller, StartError> {
        let observer = ObserverMetadataLog::start(ObserverConfig {
            node_id: config.node_id,
            cluster_id: cluster_id.to_string(),
            controllers: voters.clone(),
            bootstrap_servers: bootstrap.to_vec(),
            append_timeout: Duration::from_secs(30),
        });
        while !observer.wait_until_current(WAIT_REPORT).await? {
            let from =
                if voters.is_empty() { "controller.quorum.bootstrap.servers" } else { "controller.quorum.voters" };
            tracing::info!(node = config.node_id.get(), "waiting for the controller quorum ({from})");
        }
        Ok(Self::with_link(config, cluster_id, QuorumLink::Observer(observer), Vec::new()))
    }

    fn with_link(
        config: &BrokerConfig,
        cluster_id: &str,
        quorum: QuorumLink,
        servers: Vec<JoinHandle<()>>,
    ) -> Controller {
        let client_id = format!("{}{}", crate::inter_broker::CLIENT_ID_PREFIX, config.node_id);
        let channel = ControllerChannel::new(quorum.clone(), client_id);
        let lifecycle = Arc::new(Lifecycle::new(
            channel,
            config.node_id,
            cluster_id,
            config.broker_heartbeat_interval_ms,
            config.broker_session_timeout_ms,
        ));
        Controller { quorum, servers, lifecycle, handed_over: parking_lot::Mutex::new(Vec::new()) }
    }

    /// Registers `broker` with the active controller (a new incarnation,
    /// every advertised client listener with its security protocol, its
    /// rack; fenced until it heartbeats), replacing what an earlier start
    /// of the node registered. Refused while another live process holds
    /// the id.
    pub async fn register(&self, broker: &Arc<crate::broker::Broker>) -> Result<(), StartError> {
        let endpoints = registration_endpoints(broker.advertised())?;
        self.lifecycle.watch_log_dir(broker.topics.logs().dir_failure().clone());
        self.lifecycle.register(endpoints, broker.config.kraft.broker_rack.clone(), broker.process()).await
    }

    /// Heartbeats the active controller until `stopping` resolves, and
    /// returns once a heartbeat found this broker unfenced and this
    /// broker's own image shows it unfenced.
    ///
    /// Why the image too: clients are served from here on, and a Metadata
    /// answered from an image that does not list this broker yet could list
    /// no broker at all (a client then has no controller to send an admin
    /// request to, and librdkafka waits out its timeout).
    pub async fn heartbeat(
        &self,
        broker: &Arc<crate::broker::Broker>,
        stopping: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        self.lifecycle.spawn_heartbeats(stopping);
        self.lifecycle.wait_unfenced().await;
        let me = self.quorum.node_id();
        let mut changes = self.quorum.subscribe();
        loop {
            if let Err(e) = crate::topic::on_blocking_pool(&broker.topics, |tm| tm.apply_committed()).await {
                tracing::warn!(error = %e, "could not apply the committed metadata while starting");
            }
            if broker.topics.image().is_unfenced(me) {
                break;
            }
            match tokio::time::timeout(UNFENCE_REPORT, changes.changed()).await {
                Ok(Ok(())) => {}
                // The quorum stopped: the node is shutting down.
                Ok(Err(_)) => break,
                Err(_) => tracing::info!(node = me.get(), "waiting for this broker's image to show it unfenced"),
            }
        }
        tracing::info!(node = me.get(), "unfenced: serving as a broker of the cluster");
    }

    /// Moves this broker's leaderships away before it stops (bounded).
    pub async fn controlled_shutdown(&self) {
        self.lifecycle.controlled_shutdown().await;
    }

    /// The metadata log the node runs on.
    pub fn metadata_log(&self) -> Arc<dyn MetadataLog> {
        self.quorum.metadata_log()
    }

    /// Applies every image the quorum commits to this node's replicas, its
    /// replica fetchers (`replica`: whom this node follows) and its
    /// coordinators (which load the internal partitions the image makes
    /// this node lead and drop the others), until `stopping` resolves.
    pub fn follow(
        &self,
        broker: Arc<crate::broker::Broker>,
        stopping: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let topics = broker.topics.clone();
        let mut changes = self.quorum.subscribe();
        let fetchers = crate::replica::ReplicaFetchers::new(broker.clone());
        fetchers.reconcile(&topics.image());
        tokio::spawn(async move {
            tokio::pin!(stopping);
            loop {
                tokio::select! {
                    _ = &mut stopping => return fetchers.stop(),
                    changed = changes.changed() => if changed.is_err() { return fetchers.stop() },
                }
                let tm = topics.clone();
                // File work (creating and deleting logs) runs on the blocking pool.
                match tokio::task::spawn_blocking(move || tm.apply_committed()).await {
                    Ok(Ok(())) => {
                        fetchers.reconcile(&topics.image());
                        // In the background: a coordinator still loading at
                        // start must not hold up the next image.
                        let b = broker.clone();
                        tokio::spawn(async move {
                            if let Err(e) = b.groups.on_metadata_change().await {
                                tracing::error!(error = ?e, "the group coordinator did not take the new image");
                            }
                            b.txns.on_metadata_change().await;
                        });
                    }
                    Ok(Err(e)) => tracing::error!(error = %e, "applying a committed metadata image failed"),
                    Err(e) => tracing::error!(error = %e, "the metadata apply task failed"),
                }
            }
        });
    }

    /// Stops serving the other controllers and stops the Raft node (or
    /// the observer).
    pub async fn shutdown(self) {
        for s in &self.servers {
            s.abort();
        }
        for s in self.servers {
            let _ = s.await;
        }
        match &self.quorum {
            QuorumLink::Voter(q) => {
                if let Err(e) = q.shutdown().await {
                    tracing::warn!(error = %e, "stopping the controller failed");
                }
            }
            QuorumLink::Observer(o) => o.shutdown(),
        }
    }
}
