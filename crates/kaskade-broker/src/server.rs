//! Assembles a running node: the data directory (`meta.properties`, see
//! `meta_properties`), the metadata log, the partition logs, the topic
//! manager, the listeners (client listeners and the controller listener,
//! `network::controller`) and the request loop; and takes it down again in
//! order (stop accepting, finish in-flight requests, flush every log, write
//! the clean-shutdown marker).
//!
//! A node is a cluster of its own (the local metadata log) or a node of a
//! static or dynamic (KIP-853) quorum (`cluster`): combined or
//! controller-only (the metadata log is the controller quorum, served on the
//! controller listener), or broker-only in a static quorum (an observer
//! fetching it from the controllers). A
//! controller-only node binds no client listener, never registers as a
//! broker and so hosts no partitions. `KraftConfig::check_runnable` refuses
//! other set-ups here, before anything is opened.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kaskade_log::{CleanerOptions, LogManager, ManagerOptions, TopicPartition};
use kaskade_meta::{LocalMetadataLog, MetadataLog};
use kaskade_types::Endpoint;

use crate::broker::{Advertised, Broker};
use crate::cluster::{Controller, QuorumMembers};
use crate::config::{BrokerConfig, DynamicQuorum};
use crate::meta_properties::{self, MetaPropertiesError};
use crate::network::{self, BoundListener, ShutdownTrigger};
use crate::topic::manager::{TopicDefaults, TopicManager};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("data directory {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    MetaProperties(#[from] MetaPropertiesError),
    #[error("cannot start this node: {0}")]
    NotRunnable(String),
    #[error("{0}")]
    Invalid(String),
    #[error("opening the logs failed: {0}")]
    Log(#[from] kaskade_log::LogError),
    #[error("opening the metadata log failed: {0}")]
    Meta(#[from] kaskade_meta::MetaError),
    #[error("restoring topics failed: {0}")]
    Topic(#[from] crate::topic::TopicError),
    #[error("binding listeners failed: {0}")]
    Bind(std::io::Error),
}

/// Kafka's per-directory lock file.
pub const LOCK_FILE: &str = ".lock";

/// Takes the data directory's exclusive lock (held until the returned file
/// is dropped), so two brokers never share a directory, as Kafka refuses.
pub fn lock_data_dir(dir: &Path) -> Result<std::fs::File, StartError> {
    let path = dir.join(LOCK_FILE);
    let io = |source| StartError::Io { path: path.clone(), source };
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StartError::Invalid(format!(
            "failed to acquire lock on {}: another broker is using data directory {}",
            path.display(),
            dir.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
    }
}

/// The directory holding the metadata log, beside the partition dirs (its
/// name does not parse as `<topic>-<partition>`).
pub const METADATA_DIR: &str = "kaskade-metadata";

/// A running node.
pub struct Server {
    pub broker: Arc<Broker>,
    pub data_dir: PathBuf,
    listeners: Vec<SocketAddr>,
    controller_listeners: Vec<SocketAddr>,
    trigger: ShutdownTrigger,
    task: tokio::task::JoinHandle<()>,
    /// This node's controller of a multi-node quorum.
    controller: Option<Controller>,
    /// The data directory's lock, released when the server is dropped.
    _lock: std::fs::File,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("data_dir", &self.data_dir).field("listeners", &self.listeners).finish()
    }
}

impl Server {
    /// Opens `data_dir` (recovering it if needed), binds the listeners and
    /// starts serving.
    pub async fn start(config: BrokerConfig, data_dir: PathBuf) -> Result<Server, StartError> {
        let node_id = config.node_id;
        let controller_ports: Vec<u16> = config.controller_listeners().iter().map(|l| l.port).collect();
        config.kraft.check_runnable(node_id, &controller_ports).map_err(StartError::NotRunnable)?;
        let members = match config.kraft.static_quorum(node_id) {
            Some(voters) => Some(QuorumMembers::Static(voters)),
            None => config.kraft.dynamic_quorum(&controller_ports).map(QuorumMembers::Dynamic),
        };
        let dir = data_dir.clone();
        let cfg = config.clone();
        let initial_directory_id =
            config.kraft.initial_controllers.iter().find(|c| c.id == node_id).map(|c| c.directory_id);
        // A broker-only node of a dynamic quorum: an observer bootstrapped
        // from controller.quorum.bootstrap.servers.
        let observer_bootstrap = config.kraft.observer_bootstrap();
        // A standalone controller forms its cluster and may make up its id.
        let in_quorum = observer_bootstrap.is_some()
            || members.as_ref().is_some_and(|m| !matches!(m, QuorumMembers::Dynamic(DynamicQuorum::Standalone)));
        let (identity, lock) = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir).map_err(|source| StartError::Io { path: dir.clone(), source })?;
            let lock = lock_data_dir(&dir)?;
            if in_quorum && cfg.cluster_id.is_none() && !dir.join(meta_properties::META_PROPERTIES).exists() {
                // Each node would make up its own id and the controllers
                // would refuse each other (INCONSISTENT_CLUSTER_ID).
                return Err(StartError::Invalid(
                    "a node of a multi-node quorum needs cluster.id (or CLUSTER_ID), the same on every node, for \
                     its first start"
                        .into(),
                ));
            }
            std::fs::create_dir_all(&dir).map_err(|source| StartError::Io { path: dir.clone(), source })?;
            let identity = meta_properties::ensure_with_directory(
                &dir,
                cfg.node_id,
                cfg.cluster_id.as_deref(),
                initial_directory_id,
            )?;
            Ok((identity, lock))
        })
        .await
        .map_err(|e| StartError::Invalid(format!("start-up task failed: {e}")))??;
        let cluster_id = identity.cluster_id;
        let directory_id = meta_properties::parse_base64_uuid(&identity.directory_id);
        let controller_bound = network::bind(&config.controller_listeners()).await.map_err(StartError::Bind)?;
        let controller_listeners: Vec<SocketAddr> = controller_bound.iter().map(|b| b.local_addr()).collect();
        // In a quorum the controller listener serves the quorum's frames;
        // a node of its own answers Kafka requests there.
        let roles = config.kraft.roles();
        let (controller, kafka_controller_bound) = match &members {
            Some(QuorumMembers::Static(voters)) if !roles.controller => {
                (Some(Controller::start_observer(&config, &cluster_id, voters, &[]).await?), controller_bound)
            }
            Some(members) => {
                let c =
                    Controller::start(&config, &data_dir, &cluster_id, directory_id, members, controller_bound).await?;
                (Some(c), Vec::new())
            }
            None => match &observer_bootstrap {
                Some(bootstrap) => {
                    let none = BTreeMap::new();
                    (Some(Controller::start_observer(&config, &cluster_id, &none, bootstrap).await?), controller_bound)
                }
                None => (None, controller_bound),
            },
        };
        let meta = controller.as_ref().map(Controller::metadata_log);
        let dir = data_dir.clone();
        let cfg = config.clone();
        // Recovery reads files: keep it off the async workers.
        let (topics, repairs) = tokio::task::spawn_blocking(move || {
            let meta = match meta {
                Some(meta) => meta,
                None => Arc::new(LocalMetadataLog::open(&dir.join(METADATA_DIR))?) as Arc<dyn MetadataLog>,
            };
            open_storage_on(&cfg, &dir, meta)
        })
        .await
        .map_err(|e| StartError::Invalid(format!("start-up task failed: {e}")))??;
        for r in &repairs {
            tracing::warn!("recovery: {r}");
        }
        let bound: Vec<BoundListener> = network::bind_config(&config).await.map_err(StartError::Bind)?;
        let listeners: Vec<SocketAddr> = bound.iter().map(|b| b.local_addr()).collect();
        let advertised = advertised_listeners(&config, &bound);
        let broker = Arc::new(Broker::new(config, topics, cluster_id, advertised));
        if let Some(c) = &controller {
            broker.set_quorum(c.quorum.clone());
        }
        let (trigger, signal) = network::shutdown_channel();
        // The controller listener's Kafka APIs are served before this
        // node's broker registers: brokers register and heartbeat there
        // (BrokerRegistration, BrokerHeartbeat), this node's own included
        // when its controller is the active one.
        let handed_over = controller.as_ref().map(Controller::take_handed_over).unwrap_or_default();
        let handed = tokio::spawn(network::controller::serve_handed_over(broker.clone(), handed_over, signal.clone()));
        // A controller-only node is no broker: it does not register.
        if let Some(c) = controller.as_ref().filter(|_| roles.broker) {
            if let Err(e) = c.register(&broker).await {
                trigger.shutdown();
                let _ = handed.await;
                return Err(e);
            }
            let b = broker.clone();
            c.follow(broker.clone(), async move { b.stopping().await });
            let b = broker.clone();
            c.heartbeat(&broker, async move { b.stopping().await }).await;
        }
        let task = tokio::spawn({
            let (broker, controller_signal) = (broker.clone(), signal.clone());
            async move {
                tokio::join!(
                    network::serve(broker.clone(), bound, signal),
                    network::controller::serve(broker.clone(), kafka_controller_bound, controller_signal),
                    async move {
                        let _ = handed.await;
                    }
                );
            }
        });
        // Open transactions time out and prepared ones finish after a
        // restart even if no transactional client comes back.
        // The coordinators load the internal partitions this node leads.
        broker.groups.start();
        let txns = broker.txns.clone();
        tokio::spawn(async move { txns.start().await });
        Ok(Server { broker, data_dir, listeners, controller_listeners, trigger, task, controller, _lock: lock })
    }

    /// The bound client listeners.
    pub fn listeners(&self) -> &[SocketAddr] {
        &self.listeners
    }

    /// The bound controller listeners (not advertised to clients).
    pub fn controller_listeners(&self) -> &[SocketAddr] {
        &self.controller_listeners
    }

    /// Resolves, saying why, if this node can no longer take part in the
    /// cluster: its controller's Raft core panicked or stopped on a fatal
    /// error. Never resolves on a node without a controller of a quorum.
    /// `kaskade serve` then exits non-zero rather than serve frozen
    /// metadata.
    pub async fn failed(&self) -> String {
        match self.controller.as_ref().map(|c| &c.quorum) {
            Some(crate::cluster::QuorumLink::Voter(q)) => q.core_stopped().await,
            _ => std::future::pending().await,
        }
    }

    /// Graceful stop: in a cluster first a controlled shutdown (leaderships
    /// moved away, bounded); then no new connections, in-flight requests
    /// finish, every log is flushed, checkpoints and the clean-shutdown
    /// marker written.
    pub async fn shutdown(self) -> Result<(), StartError> {
        if let Some(c) = self.controller.as_ref().filter(|_| self.broker.config.kraft.roles().broker) {
            // Still serving: clients move to the new leaders meanwhile.
            c.controlled_shutdown().await;
        }
        self.broker.begin_shutdown();
        self.trigger.shutdown();
        let _ = self.task.await;
        if let Some(c) = self.controller {
            c.shutdown().await;
        }
        let logs = self.broker.topics.logs().clone();
        tokio::task::spawn_blocking(move || logs.shutdown())
            .await
            .map_err(|e| StartError::Invalid(format!("shutdown task failed: {e}")))??;
        Ok(())
    }
}

/// A data directory opened by [`open_storage`].
pub struct OpenedStorage {
    pub topics: Arc<TopicManager>,
    /// The cluster's id, from `meta.properties`.
    pub cluster_id: String,
    /// What recovering the partition logs repaired.
    pub repairs: Vec<String>,
}

/// Opens the data directory: meta.properties, the metadata log, the
/// partition logs (recovering them), the topic manager.
pub fn open_storage(config: &BrokerConfig, dir: &Path) -> Result<OpenedStorage, StartError> {
    let cluster_id = prepare_dir(config, dir)?;
    let meta = LocalMetadataLog::open(&dir.join(METADATA_DIR))?;
    let (topics, repairs) = open_storage_on(config, dir, Arc::new(meta))?;
    Ok(OpenedStorage { topics, cluster_id, repairs })
}

/// Creates the data directory and checks or writes its `meta.properties`;
/// the cluster's id.
pub fn prepare_dir(config: &BrokerConfig, dir: &Path) -> Result<String, StartError> {
    std::fs::create_dir_all(dir).map_err(|source| StartError::Io { path: dir.to_path_buf(), source })?;
    let identity = meta_properties::ensure(dir, config.node_id, config.cluster_id.as_deref())?;
    Ok(identity.cluster_id)
}

/// Opens the partition logs (recovering them) and the topic manager over
/// `meta`; the recovery's repairs.
pub fn open_storage_on(
    config: &BrokerConfig,
    dir: &Path,
    meta: Arc<dyn MetadataLog>,
) -> Result<(Arc<TopicManager>, Vec<String>), StartError> {
    let image = meta.committed().image;
    let defaults: std::collections::BTreeMap<String, String> =
        config.topic_defaults().into_iter().filter_map(|d| d.value.map(|v| (d.name.to_string(), v))).collect();
    // Logs open with the dynamic broker configs already applied.
    let d2 = crate::topic::replicas::effective_defaults(&defaults, &image, config.node_id);
    let config_for = move |tp: &TopicPartition| {
        let overrides = image.topic(&tp.topic).map(|t| t.configs.clone()).unwrap_or_default();
        crate::topic::config::to_log_config(&crate::topic::config::effective(&d2, &overrides))
    };
    let opts = ManagerOptions {
        checkpoint_interval_ms: config.log_flush_offset_checkpoint_interval_ms.max(1) as u64,
        retention_check_interval_ms: config.log_retention_check_interval_ms.max(1) as u64,
        producer_id_expiration_ms: i64::from(config.producer_id_expiration_ms),
        cleaner: CleanerOptions {
            enabled: config.log_cleaner_enable,
            backoff_ms: config.log_cleaner_backoff_ms.max(0) as u64,
            dedupe_buffer_bytes: config.log_cleaner_dedupe_buffer_size.max(0) as u64,
            io_buffer_bytes: config.log_cleaner_io_buffer_size.max(0) as usize,
            ..CleanerOptions::default()
        },
        ..ManagerOptions::default()
    };
    let (logs, report) = LogManager::open(dir, opts, config_for)?;
    logs.start_background();
    let topics = TopicManager::new(
        meta,
        logs,
        TopicDefaults {
            node_id: config.node_id,
            values: defaults,
            num_partitions: config.num_partitions,
            replication_factor: config.default_replication_factor,
            delete_enabled: config.delete_topic_enable,
        },
    )?;
    Ok((Arc::new(topics), report.repairs))
}

/// The endpoints clients are told in Metadata, one per advertised client
/// listener in configured order (the first is the default); a port of 0
/// (ephemeral) becomes the bound port of the listener of that name, an
/// empty or wildcard host `localhost`. Without any, the first bound
/// listener on `localhost`.
fn advertised_listeners(config: &BrokerConfig, bound: &[BoundListener]) -> Vec<Advertised> {
    let protocols = config.security_protocol_map();
    let protocol_of = |name: &str| BrokerConfig::security_protocol_in(&protocols, name);
    let advertised: Vec<Advertised> = config
        .advertised_broker_listeners()
        .iter()
        .map(|adv| {
            let host = if adv.host.is_empty() || adv.host == "0.0.0.0" || adv.host == "::" {
                "localhost".to_string()
            } else {
                adv.host.clone()
            };
            let port = if adv.port == 0 {
                bound
                    .iter()
                    .find(|b| b.name() == adv.name)
                    .or(bound.first())
                    .map(|b| b.local_addr().port())
                    .unwrap_or(0)
            } else {
                adv.port
            };
            Advertised {
                listener: adv.name.clone(),
                endpoint: Endpoint::new(host, i32::from(port)),
                security_protocol: protocol_of(&adv.name),
            }
        })
        .collect();
    if !advertised.is_empty() {
        return advertised;
    }
    let first = bound.first();
    let port = first.map_or(9092, |b| i32::from(b.local_addr().port()));
    let name = first.map_or("PLAINTEXT", |b| b.name());
    vec![Advertised {
        listener: name.into(),
        endpoint: Endpoint::new("localhost", port),
        security_protocol: protocol_of(name),
    }]
}
