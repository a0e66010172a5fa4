//! The broker: the state every handler reaches through `Arc<Broker>`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use kaskade_types::Endpoint;

use crate::api::fetch_session::SessionCache;
use crate::config::BrokerConfig;
use crate::group::records::OFFSETS_TOPIC;
use crate::producer_ids::ProducerIdManager;
use crate::router::Router;
use crate::topic::TopicManager;
use crate::txn::records::TXN_TOPIC;

/// Fetch sessions kept at once (`max.incremental.fetch.session.cache.slots`).
const FETCH_SESSION_SLOTS: usize = 1000;

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
    /// The epoch reported with the finalized features (Kafka reports the
    /// offset of the last record of its metadata log).
    finalized_features_epoch: AtomicI64,
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
    cluster_id: String,
    /// Where clients are told to connect.
    advertised: Endpoint,
    /// Flips to true when the node starts shutting down: parked long polls
    /// answer at once instead of holding shutdown up until their deadline.
    stopping: tokio::sync::watch::Sender<bool>,
    /// This node's controller when it is one of a multi-node quorum (set
    /// once at start-up): who the active controller is.
    quorum: std::sync::OnceLock<kaskade_meta::QuorumMetadataLog>,
    /// When this broker started (wall clock, ms since the Unix epoch): its
    /// registration carries it, so every node can show its uptime.
    start_time_ms: i64,
}

impl Broker {
    /// A broker with the default route table.
    pub fn new(
        config: BrokerConfig,
        topics: Arc<TopicManager>,
        cluster_id: String,
        advertised: impl Into<Endpoint>,
    ) -> Self {
        Self::with_router(config, Router::default(), topics, cluster_id, advertised)
    }

    /// A broker with a given route table (tests route their own handlers).
    pub fn with_router(
        config: BrokerConfig,
        router: Router,
        topics: Arc<TopicManager>,
        cluster_id: String,
        advertised: impl Into<Endpoint>,
    ) -> Self {
        // The coordinators' seams over this node's logs (coordinator::local).
        use crate::coordinator::cluster_markers::ClusterMarkers;
        use crate::coordinator::local::{LocalInternalTopic, LocalMarkers, LocalProducerIds};
        let clock: Arc<dyn kaskade_types::Clock> = Arc::new(kaskade_types::SystemClock);
        let stopping = tokio::sync::watch::channel(false).0;
        let producer_ids = Arc::new(ProducerIdManager::new());
        let offsets_topic = LocalInternalTopic::new(topics.clone(), OFFSETS_TOPIC, config.offsets_topic_num_partitions)
            .with_replication(config.offsets_topic_replication_factor);
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
                    .with_replication(config.transaction_state_log_replication_factor),
            ),
            markers,
            producer_ids: Arc::new(LocalProducerIds::new(topics.clone(), producer_ids.clone())),
            clock,
            stopping: stopping.subscribe(),
        };
        let txns = crate::txn::TxnService::from_config(&config, seams);
        Broker {
            config: Arc::new(config),
            router,
            finalized_features_epoch: AtomicI64::new(0),
            topics,
            fetch_sessions: SessionCache::new(FETCH_SESSION_SLOTS),
            producer_ids,
            groups,
            txns,
            local_markers,
            peers,
            cluster_id,
            advertised: advertised.into(),
            stopping,
            quorum: std::sync::OnceLock::new(),
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
        let (topics, cluster_id, _) = match crate::server::open_storage(&config, &dir) {
            Ok(t) => t,
            Err(e) => panic!("test storage in {}: {e}", dir.display()),
        };
        Self::with_router(config, router, topics, cluster_id, Endpoint::new("localhost", 9092))
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// The address clients are told in Metadata, FindCoordinator and
    /// DescribeCluster.
    pub fn endpoint(&self) -> &Endpoint {
        &self.advertised
    }

    pub fn auto_create_topics(&self) -> bool {
        self.config.auto_create_topics_enable
    }

    /// The node id (`node.id`).
    pub fn node_id(&self) -> i32 {
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
    pub fn set_quorum(&self, quorum: kaskade_meta::QuorumMetadataLog) {
        let _ = self.quorum.set(quorum);
    }

    /// This node's controller of a multi-node quorum, if it runs in one.
    pub fn quorum(&self) -> Option<&kaskade_meta::QuorumMetadataLog> {
        self.quorum.get()
    }

    /// The active controller Metadata and DescribeCluster name: this node
    /// when it is its own quorum, else the quorum's leader (`None` while
    /// none is known: Kafka answers -1 then).
    pub fn controller_id(&self) -> Option<i32> {
        match self.quorum.get() {
            Some(q) => q.leader(),
            None => Some(self.config.node_id),
        }
    }

    /// The brokers Metadata and DescribeCluster list: in a cluster every
    /// registered, unfenced broker with the endpoint and rack it
    /// registered; a node of its own lists itself.
    pub fn live_brokers(&self) -> Vec<LiveBroker> {
        let me = || LiveBroker {
            id: kaskade_types::NodeId(self.config.node_id),
            endpoint: self.advertised.clone(),
            rack: self.config.kraft.broker_rack.clone(),
        };
        if self.quorum.get().is_none() {
            return vec![me()];
        }
        let image = self.topics.image();
        image
            .brokers()
            .values()
            .filter(|b| !b.fenced)
            .filter_map(|b| {
                let e = b.endpoints.first()?;
                Some(LiveBroker {
                    id: b.id,
                    endpoint: Endpoint::new(e.host.clone(), i32::from(e.port)),
                    rack: b.rack.clone(),
                })
            })
            .collect()
    }

    /// The epoch of the finalized features reported by ApiVersions (>= 0).
    pub fn finalized_features_epoch(&self) -> i64 {
        self.finalized_features_epoch.load(Ordering::Relaxed)
    }

    /// Sets the epoch of the finalized features (the metadata offset once
    /// cluster metadata exists).
    pub fn set_finalized_features_epoch(&self, epoch: i64) {
        self.finalized_features_epoch.store(epoch.max(0), Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").field("node_id", &self.config.node_id).finish_non_exhaustive()
    }
}
