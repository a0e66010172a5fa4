//! The broker: the state every handler reaches through `Arc<Broker>`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use kaskade_types::{Endpoint, NodeId};

use crate::api::fetch_session::SessionCache;
use crate::config::BrokerConfig;
use crate::group::records::OFFSETS_TOPIC;
use crate::producer_ids::ProducerIdManager;
use crate::router::Router;
use crate::topic::TopicManager;
use crate::txn::records::TXN_TOPIC;

/// Fetch sessions kept at once (`max.incremental.fetch.session.cache.slots`).
const FETCH_SESSION_SLOTS: usize = 1000;

/// One advertised client listener of this node: its name, the endpoint
/// clients connecting on it are told, and its security protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advertised {
    pub listener: String,
    pub endpoint: Endpoint,
    pub security_protocol: String,
}

impl Advertised {
    /// A PLAINTEXT listener named `listener` (tests, a node's only one).
    pub fn plaintext(listener: &str, endpoint: impl Into<Endpoint>) -> Self {
        Advertised { listener: listener.into(), endpoint: endpoint.into(), security_protocol: "PLAINTEXT".into() }
    }
}

/// A broker as clients are told of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveBroker {
    pub id: kaskade_types::NodeId,
    pub endpoint: Endpoint,
    pub rack: Option<String>,
}

/// The broker's shared state.
pub struct Broker {
    /// The configuration, as loaded at start-up.
    pub config: Arc<BrokerConfig>,
    /// The route table; ApiVersions answers from it.
    pub router: Router,
    /// The route table of Kafka connections on the controller listener of
    /// a multi-node quorum (`router::controller_routes`).
    pub controller_router: Router,
    /// Topics, their metadata and their partition logs.
    pub topics: Arc<TopicManager>,
    /// Incremental fetch sessions (KIP-227).
    pub fetch_sessions: SessionCache,
    /// Producer ids for InitProducerId.
    pub producer_ids: Arc<ProducerIdManager>,
    /// The group coordinator (classic groups, committed offsets).
    pub groups: Arc<crate::group::GroupService>,
    /// The transaction coordinator.
    pub txns: crate::txn::TxnService,
    /// Writes markers to the partitions this node leads (the receiving
    /// side of WriteTxnMarkers).
    pub local_markers: Arc<crate::coordinator::local::LocalMarkers>,
    /// Connections to the other brokers, by node id.
    pub peers: Arc<crate::inter_broker::InterBroker>,
    /// The replication throttles' quotas (`replica::throttle`).
    pub replication_quotas: crate::replica::throttle::ReplicationQuotas,
    cluster_id: String,
    /// Where clients are told to connect, per advertised client listener
    /// (never empty; the first is the default).
    advertised: Vec<Advertised>,
    /// Flips to true when the node starts shutting down: parked long polls
    /// answer at once instead of holding shutdown up until their deadline.
    stopping: tokio::sync::watch::Sender<bool>,
    /// This node's place in a multi-node quorum (set once at start-up):
    /// who the active controller is, and this node's controller if it runs
    /// one.
    quorum: std::sync::OnceLock<crate::cluster::QuorumLink>,
    /// The channel admin requests are forwarded to the active controller
    /// on (Kafka's forwarding `NodeToControllerChannelManager`), set with
    /// the quorum (`api::forwarding`).
    /// Shared with the internal topics, which are created through it.
    forwarding: Arc<std::sync::OnceLock<Arc<crate::cluster::controller_channel::ControllerChannel>>>,
    /// When this broker started (wall clock, ms since the Unix epoch): its
    /// registration carries it, so every node can show its uptime.
    start_time_ms: i64,
}

impl Broker {
    /// A broker with the default route table, advertising `advertised`
    /// (a node's advertised client listeners, in configured order).
    pub fn new(
        config: BrokerConfig,
        topics: Arc<TopicManager>,
        cluster_id: String,
        advertised: Vec<Advertised>,
    ) -> Self {
        Self::with_router(config, Router::default(), topics, cluster_id, advertised)
    }

    /// A broker with a given route table (tests route their own handlers).
    pub fn with_router(
        config: BrokerConfig,
        router: Router,
        topics: Arc<TopicManager>,
        cluster_id: String,
        mut advertised: Vec<Advertised>,
    ) -> Self {
        if advertised.is_empty() {
            advertised.push(Advertised::plaintext("PLAINTEXT", Endpoint::new("localhost", 9092)));
        }
        // The coordinators' seams over this node's logs (coordinator::local).
        use crate::coordinator::cluster_markers::ClusterMarkers;
        use crate::coordinator::local::{LocalInternalTopic, LocalMarkers, LocalProducerIds};
        let clock: Arc<dyn kaskade_types::Clock> = Arc::new(kaskade_types::SystemClock);
        let stopping = tokio::sync::watch::channel(false).0;
        let producer_ids = Arc::new(ProducerIdManager::new());
        let forwarding = Arc::new(std::sync::OnceLock::new());
        let offsets_topic = LocalInternalTopic::new(topics.clone(), OFFSETS_TOPIC, config.offsets_topic_num_partitions)
            .with_controller(forwarding.clone())
            .with_replication(config.offsets_topic_replication_factor)
            .with_append_timeout(std::time::Duration::from_millis(config.offsets_commit_timeout_ms.max(1) as u64));
        let groups = Arc::new(crate::group::GroupService::from_config(&config, Arc::new(offsets_topic), clock.clone()));
        let local_markers = Arc::new(LocalMarkers::new(topics.clone(), groups.clone()));
        let peers = Arc::new(crate::inter_broker::InterBroker::for_broker(&topics, &config));
        // The transaction coordinator's markers: to this node's logs, or in
        // WriteTxnMarkers to the leaders on other brokers.
        let markers: Arc<dyn crate::coordinator::MarkerWriter> =
            Arc::new(ClusterMarkers::for_broker(local_markers.clone(), topics.clone(), peers.clone()));
        let seams = crate::txn::TxnSeams {
            state_log: Arc::new(
                LocalInternalTopic::new(topics.clone(), TXN_TOPIC, config.transaction_state_log_num_partitions)
                    .with_controller(forwarding.clone())
                    .with_replication(config.transaction_state_log_replication_factor)
                    .with_min_isr(config.transaction_state_log_min_isr)
                    .with_append_timeout(crate::coordinator::local::MARKER_TIMEOUT),
            ),
            markers,
            producer_ids: Arc::new(LocalProducerIds::new(topics.clone(), producer_ids.clone())),
            clock: clock.clone(),
            stopping: stopping.subscribe(),
        };
        let txns = crate::txn::TxnService::from_config(&config, seams);
        let quota_window = config.replication_quota_window;
        Broker {
            config: Arc::new(config),
            router,
            controller_router: Router::new(crate::router::controller_routes()),
            topics,
            fetch_sessions: SessionCache::new(FETCH_SESSION_SLOTS),
            producer_ids,
            groups,
            txns,
            local_markers,
            peers,
            replication_quotas: crate::replica::throttle::ReplicationQuotas::new(clock, quota_window),
            cluster_id,
            advertised,
            stopping,
            quorum: std::sync::OnceLock::new(),
            forwarding,
            start_time_ms: kaskade_types::Clock::now_ms(&kaskade_types::SystemClock),
        }
    }

    /// Marks the broker as shutting down (wakes parked long polls).
    pub fn begin_shutdown(&self) {
        self.stopping.send_replace(true);
    }

    /// Whether shutdown has begun.
    pub fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Resolves once shutdown has begun.
    pub async fn stopping(&self) {
        let mut rx = self.stopping.subscribe();
        // Only errs if the sender is gone, which cannot happen while `self` lives.
        let _ = rx.wait_for(|s| *s).await;
    }

    /// A broker over a fresh data directory under the system temp dir, for
    /// tests that do not care where data lives.
    #[doc(hidden)]
    pub fn for_tests(config: BrokerConfig, router: Router) -> Self {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "kaskade-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        // Named by pid: a directory left by an earlier process that had the
        // same pid would hand this test its topics and producer ids.
        let _ = std::fs::remove_dir_all(&dir);
        let crate::server::OpenedStorage { topics, cluster_id, .. } = match crate::server::open_storage(&config, &dir) {
            Ok(t) => t,
            Err(e) => panic!("test storage in {}: {e}", dir.display()),
        };
        let name = config.advertised_broker_listeners().first().map_or_else(|| "PLAINTEXT".into(), |l| l.name.clone());
        let advertised = vec![Advertised::plaintext(&name, Endpoint::new("localhost", 9092))];
        Self::with_router(config, router, topics, cluster_id, advertised)
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// The address of this node's first advertised client listener.
    pub fn endpoint(&self) -> &Endpoint {
        &self.advertised[0].endpoint
    }

    /// Every advertised client listener of this node, as it registers them.
    pub fn advertised(&self) -> &[Advertised] {
        &self.advertised
    }

    /// The listener whose endpoints a client on `listener` is told (Kafka
    /// answers each connection with the endpoints of the listener it came
    /// in on): that one if this node advertises it, else (a request on the
    /// controller listener, or from no connection) the first advertised.
    pub fn answering_listener(&self, listener: Option<&str>) -> &Advertised {
        listener.and_then(|l| self.advertised.iter().find(|a| a.listener == l)).unwrap_or(&self.advertised[0])
    }

    /// This node's endpoint for a client on `listener`.
    pub fn endpoint_for(&self, listener: Option<&str>) -> &Endpoint {
        &self.answering_listener(listener).endpoint
    }

    pub fn auto_create_topics(&self) -> bool {
        self.config.auto_create_topics_enable
    }

    /// The node id (`node.id`).
    pub fn node_id(&self) -> NodeId {
        self.config.node_id
    }

    /// This broker's software version and start time, as it registers them.
    pub fn process(&self) -> kaskade_meta::BrokerProcess {
        kaskade_meta::BrokerProcess {
            version: env!("CARGO_PKG_VERSION").to_string(),
            start_time_ms: self.start_time_ms,
        }
    }

    /// Makes this broker answer for a multi-node quorum (controller id,
    /// DescribeQuorum); set once, at start-up.
    pub fn set_quorum(&self, quorum: crate::cluster::QuorumLink) {
        let client_id = format!("{}{}", crate::inter_broker::CLIENT_ID_PREFIX, self.config.node_id);
        let channel = crate::cluster::controller_channel::ControllerChannel::new(quorum.clone(), client_id);
        let channel = Arc::new(channel);
        self.producer_ids.ask_controller(self.config.node_id, channel.clone());
        let _ = self.forwarding.set(channel);
        let _ = self.quorum.set(quorum);
    }

    /// The channel to the active controller that admin requests are
    /// forwarded on: `Some` on a node of a multi-node cluster.
    pub fn forwarding(&self) -> Option<&Arc<crate::cluster::controller_channel::ControllerChannel>> {
        self.forwarding.get()
    }

    /// This node's controller of a multi-node quorum, if it runs one.
    pub fn quorum(&self) -> Option<&kaskade_meta::QuorumMetadataLog> {
        self.quorum.get().and_then(|q| q.voter())
    }

    /// This node's observer of the quorum when it is a broker-only node of
    /// a cluster (running no controller).
    pub fn observer(&self) -> Option<&kaskade_meta::ObserverMetadataLog> {
        match self.quorum.get() {
            Some(crate::cluster::QuorumLink::Observer(o)) => Some(o),
            _ => None,
        }
    }

    /// The active controller Metadata and DescribeCluster name to a client
    /// that was told `listed` as the live brokers: this node when it is
    /// its own quorum, else the quorum's leader when listed.
    ///
    /// Clients send admin requests to the node named here, so it must be
    /// one of `listed`, and named whenever any broker is listed: a client
    /// cannot reach a broker the same answer does not list, and with -1 it
    /// has no controller at all (librdkafka then waits for a Metadata
    /// refresh that may not come before its admin timeout). When the leader
    /// is not listed (a controller-only node, a broker this node's image
    /// does not show unfenced yet) or not known (an election), this node is
    /// named if listed, else the first listed broker, as KRaft's brokers
    /// name a live broker (`KRaftMetadataCache.getRandomAliveBrokerId`) and
    /// forward what the controller must decide. `None` (-1) only when
    /// nothing is listed.
    pub fn controller_id(&self, listed: &[NodeId]) -> Option<NodeId> {
        let Some(q) = self.quorum.get() else { return Some(self.config.node_id) };
        let named = named_controller(q.leader(), self.config.node_id, listed);
        debug_assert!(named.is_none() == listed.is_empty(), "a listed broker is named whenever one is listed");
        named
    }

    /// The brokers Metadata and DescribeCluster list to a client connected
    /// on `listener` (`None`: no connection, e.g. a test): in a cluster
    /// every registered, unfenced broker with its registered endpoint on
    /// that listener and its rack, leaving out a broker without that
    /// listener as Kafka's metadata cache does; a node of its own lists
    /// itself.
    pub fn live_brokers(&self, listener: Option<&str>) -> Vec<LiveBroker> {
        let answering = self.answering_listener(listener);
        let me = || LiveBroker {
            id: self.config.node_id,
            endpoint: answering.endpoint.clone(),
            rack: self.config.kraft.broker_rack.clone(),
        };
        if self.quorum.get().is_none() {
            return vec![me()];
        }
        registered_brokers(&self.topics.image(), &answering.listener)
    }
}

/// The broker named as the controller among `listed`: the `leader` if
/// listed, else `me` if listed, else the first listed.
fn named_controller(leader: Option<NodeId>, me: NodeId, listed: &[NodeId]) -> Option<NodeId> {
    [leader, Some(me)].into_iter().flatten().find(|id| listed.contains(id)).or_else(|| listed.first().copied())
}

/// The unfenced brokers `image` registers, each with its endpoint on
/// `listener` and its rack; a broker without that listener is left out.
pub fn registered_brokers(image: &kaskade_meta::Image, listener: &str) -> Vec<LiveBroker> {
    image
        .brokers()
        .values()
        .filter(|b| !b.fenced)
        .filter_map(|b| {
            let e = b.endpoint(listener)?;
            Some(LiveBroker {
                id: b.id,
                endpoint: Endpoint::new(e.host.clone(), i32::from(e.port)),
                rack: b.rack.clone(),
            })
        })
        .collect()
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").field("node_id", &self.config.node_id).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaskade_meta::{BrokerEndpoint, Image, MetadataRecord, Uuid};
    use kaskade_types::NodeId;

    fn register(node_id: i32, endpoints: &[(&str, u16)], rack: Option<&str>) -> MetadataRecord {
        MetadataRecord::RegisterBroker {
            node_id,
            incarnation_id: Uuid::new_v4(),
            endpoints: endpoints
                .iter()
                .map(|(name, port)| BrokerEndpoint {
                    listener: (*name).into(),
                    host: format!("{}.b{node_id}", name.to_lowercase()),
                    port: *port,
                    security_protocol: Some("PLAINTEXT".into()),
                })
                .collect(),
            rack: rack.map(str::to_string),
            fenced: false,
            process: None,
        }
    }

    #[test]
    fn each_listener_sees_its_own_endpoints_and_every_rack() {
        let mut img = Image::default();
        img.apply(&register(1, &[("INTERNAL", 9001), ("EXTERNAL", 19001)], Some("a")));
        img.apply(&register(2, &[("INTERNAL", 9002), ("EXTERNAL", 19002)], Some("b")));
        img.apply(&register(3, &[("INTERNAL", 9003)], None));
        let on = |img: &Image, listener| -> Vec<(i32, String, i32, Option<String>)> {
            registered_brokers(img, listener)
                .into_iter()
                .map(|b| (b.id.get(), b.endpoint.host, b.endpoint.port, b.rack))
                .collect()
        };
        assert_eq!(
            on(&img, "EXTERNAL"),
            [(1, "external.b1".into(), 19001, Some("a".into())), (2, "external.b2".into(), 19002, Some("b".into()))],
            "broker 3 has no EXTERNAL listener: left out, as Kafka does"
        );
        assert_eq!(
            on(&img, "INTERNAL"),
            [
                (1, "internal.b1".into(), 9001, Some("a".into())),
                (2, "internal.b2".into(), 9002, Some("b".into())),
                (3, "internal.b3".into(), 9003, None)
            ]
        );
        img.apply(&MetadataRecord::FenceBroker { node_id: 2 });
        assert_eq!(
            on(&img, "INTERNAL").iter().map(|b| b.0).collect::<Vec<_>>(),
            [1, 3],
            "fenced brokers are not listed"
        );
        assert!(img.brokers().contains_key(&NodeId(2)));
    }

    #[test]
    fn the_named_controller_is_always_a_listed_broker() {
        let ids = |v: &[i32]| v.iter().map(|&i| NodeId(i)).collect::<Vec<_>>();
        let (leader, me) = (Some(NodeId(3)), NodeId(1));
        assert_eq!(named_controller(leader, me, &ids(&[1, 2, 3])), Some(NodeId(3)), "the leader when listed");
        // The leader is registered but not yet unfenced in this node's image
        // (just after the cluster formed): a client told of broker 3 as the
        // controller without its endpoint waited for ever.
        assert_eq!(named_controller(leader, me, &ids(&[1, 2])), Some(NodeId(1)));
        assert_eq!(named_controller(leader, NodeId(4), &ids(&[1, 2])), Some(NodeId(1)));
        // No leader known (an election, or a voter cut off from the others):
        // still a listed broker, this node if listed, never -1.
        assert_eq!(named_controller(None, NodeId(4), &ids(&[2, 4])), Some(NodeId(4)));
        assert_eq!(named_controller(None, NodeId(9), &ids(&[2, 4])), Some(NodeId(2)));
        assert_eq!(named_controller(leader, me, &[]), None);
        assert_eq!(named_controller(None, me, &[]), None, "-1 only when no broker is listed");
    }

    #[test]
    fn a_connection_on_an_unknown_listener_is_answered_with_the_first() {
        let config = BrokerConfig::default();
        let broker = Broker::for_tests(config, Router::default());
        assert_eq!(broker.answering_listener(Some("CONTROLLER")).listener, "PLAINTEXT");
        assert_eq!(broker.answering_listener(None).listener, "PLAINTEXT");
        assert_eq!(broker.live_brokers(Some("PLAINTEXT"))[0].endpoint, *broker.endpoint());
    }
}
