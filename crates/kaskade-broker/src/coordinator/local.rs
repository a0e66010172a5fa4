//! The coordinators' seams over this node's own logs: a coordinator leads
//! the internal partitions the metadata image names this node the leader
//! of, a marker is written to a partition this node leads. The broker wires
//! these (markers for partitions led elsewhere go through `ClusterMarkers`).
//!
//! Invariant: every append here is acks=all (Kafka's coordinators and
//! WriteTxnMarkers append with `requiredAcks = -1`): stamped with the
//! partition's leader epoch, refused while the ISR is below the topic's
//! `min.insync.replicas`, and its handle resolves only once the HW passed
//! it, so an acknowledged offset commit, group or transaction state, or
//! marker survives the loss of the leader. A wait that does not end within
//! the timeout (`offsets.commit.timeout.ms`, `request.timeout.ms`) fails,
//! as Kafka's REQUEST_TIMED_OUT, and the client retries.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;
use kafka_protocol::error::ResponseError;
use kafka_protocol::records::Record;
use kaskade_log::{Log, LogError};
use kaskade_types::{Offset, ProducerId, ProducerIdAndEpoch, TopicPartition};

use super::{
    Appended, CoordinatorError, InternalPartitions, InternalRecord, MarkerError, MarkerWriter, MarkersWritten,
    TxnMarker,
};
use crate::cluster::controller_channel::ControllerChannel;
use crate::group::records::OFFSETS_TOPIC;
use crate::group::GroupService;
use crate::partition::{Partition, PartitionError};
use crate::producer_ids::ProducerIdManager;
use crate::topic::TopicManager;

/// Kafka's `offsets.topic.segment.bytes` and
/// `transaction.state.log.segment.bytes` default.
const SEGMENT_BYTES: &str = "104857600";

/// Kafka's `request.timeout.ms` default: how long a marker append waits
/// for the ISR (WriteTxnMarkers appends with the request timeout).
pub const MARKER_TIMEOUT: Duration = Duration::from_secs(30);

/// Kafka's `offsets.commit.timeout.ms` default.
pub const OFFSETS_COMMIT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long creating an internal topic through the active controller may
/// take, and then reaching this broker's image (Kafka's
/// `request.timeout.ms` default bounds its CreateTopics).
const CREATE_TIMEOUT: Duration = Duration::from_secs(30);

/// Waits until `partition`'s HW reaches `end` with at least `min_isr`
/// in-sync replicas while this node still leads in `stamped`, the epoch the
/// append was stamped with (`Partition::wait_for_replicas` says why the HW
/// alone is not enough), at most `timeout`: the partition's refusal, or
/// REQUEST_TIMED_OUT.
async fn replicated(
    partition: Arc<Partition>,
    end: Offset,
    min_isr: usize,
    stamped: Option<i32>,
    timeout: Duration,
) -> Result<(), PartitionError> {
    // Set by every append that succeeded.
    let Some(stamped) = stamped else { return Err(PartitionError::NotLeader) };
    let wait = partition.wait_for_replicas(end, min_isr, kaskade_types::LeaderEpoch(stamped));
    match tokio::time::timeout(timeout, wait).await {
        Ok(done) => done,
        Err(_) => Err(PartitionError::TimedOut(timeout)),
    }
}

/// A coordinator's view of a partition refusal, as Kafka's coordinators
/// translate their appends' errors: the leader moved or its storage failed
/// (NOT_COORDINATOR: find the coordinator again); no such partition, too
/// few replicas or a timeout (COORDINATOR_NOT_AVAILABLE: retry).
fn coordinator_error(topic: &str, partition: i32, e: PartitionError) -> CoordinatorError {
    match e {
        PartitionError::NotLeader
        | PartitionError::FencedLeaderEpoch { .. }
        | PartitionError::UnknownLeaderEpoch { .. }
        | PartitionError::Storage(_) => CoordinatorError::NotCoordinator,
        e => CoordinatorError::Unavailable(format!("{topic}-{partition}: {e}")),
    }
}

/// An internal topic in this node's logs.
pub struct LocalInternalTopic {
    topics: Arc<TopicManager>,
    name: &'static str,
    /// The configured partition count, used when creating it.
    partitions: i32,
    /// The configured replication factor, used when creating it
    /// (`offsets.topic.replication.factor`,
    /// `transaction.state.log.replication.factor`): as Kafka, creation
    /// fails while fewer brokers are live.
    replication: i16,
    /// The topic's `min.insync.replicas` at creation
    /// (`transaction.state.log.min.isr`); `None`: the broker's default, as
    /// Kafka creates `__consumer_offsets`.
    min_isr: Option<i16>,
    /// How long an append waits for the ISR (`offsets.commit.timeout.ms`,
    /// `request.timeout.ms`).
    timeout: Duration,
    /// The channel to the active controller, set on a node of a multi-node
    /// cluster: the topic is then created by CreateTopics to it.
    controller: Arc<OnceLock<Arc<ControllerChannel>>>,
}

impl LocalInternalTopic {
    pub fn new(topics: Arc<TopicManager>, name: &'static str, partitions: i32) -> Self {
        LocalInternalTopic {
            topics,
            name,
            partitions: partitions.max(1),
            replication: 1,
            min_isr: None,
            timeout: OFFSETS_COMMIT_TIMEOUT,
            controller: Arc::new(OnceLock::new()),
        }
    }

    /// Created through the active controller once `controller` is set.
    pub fn with_controller(self, controller: Arc<OnceLock<Arc<ControllerChannel>>>) -> Self {
        LocalInternalTopic { controller, ..self }
    }

    /// Creates the topic through the active controller and waits (up to
    /// [`CREATE_TIMEOUT`]) until this node's image has it. Blocking.
    fn create_through_controller(
        &self,
        channel: &ControllerChannel,
        configs: &BTreeMap<String, String>,
    ) -> Result<i32, CoordinatorError> {
        let unavailable = |e: String| CoordinatorError::Unavailable(format!("creating {}: {e}", self.name));
        let req = crate::internal_topic::create_request(
            self.name,
            self.partitions,
            self.replication,
            configs,
            CREATE_TIMEOUT,
        );
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| unavailable(e.to_string()))?;
        runtime.block_on(crate::internal_topic::create_through_controller(channel, &req)).map_err(unavailable)?;
        let deadline = std::time::Instant::now() + CREATE_TIMEOUT;
        loop {
            if let Some(n) = self.partition_count() {
                return Ok(n);
            }
            if std::time::Instant::now() >= deadline {
                return Err(unavailable("created, but not yet in this broker's metadata".into()));
            }
            std::thread::sleep(Duration::from_millis(20));
            if let Err(e) = self.topics.apply_committed() {
                tracing::debug!(error = ?e, "applying the committed metadata while waiting for an internal topic");
            }
        }
    }

    /// Created with `replication` replicas per partition.
    pub fn with_replication(self, replication: i16) -> Self {
        LocalInternalTopic { replication: replication.max(1), ..self }
    }

    /// Created with `min.insync.replicas` = `min_isr`, capped at the
    /// replication factor (DIFFERENCES.md: Kaskade's default replication
    /// factor is 1, and one node must work unconfigured).
    pub fn with_min_isr(self, min_isr: i16) -> Self {
        LocalInternalTopic { min_isr: Some(min_isr.max(1)), ..self }
    }

    /// An append not replicated within `timeout` fails.
    pub fn with_append_timeout(self, timeout: Duration) -> Self {
        LocalInternalTopic { timeout, ..self }
    }

    fn log(&self, partition: i32) -> Result<Arc<Log>, CoordinatorError> {
        self.topics
            .log(self.name, partition)
            .ok_or_else(|| CoordinatorError::Unavailable(format!("{}-{partition} has no log", self.name)))
    }
}

impl InternalPartitions for LocalInternalTopic {
    fn topic(&self) -> &str {
        self.name
    }

    fn partition_count(&self) -> Option<i32> {
        self.topics.image().topic(self.name).map(|t| t.partitions.len() as i32)
    }

    fn ensure_topic(&self) -> Result<i32, CoordinatorError> {
        if let Some(n) = self.partition_count() {
            return Ok(n);
        }
        // Compacted, as Kafka creates both internal topics.
        let mut configs = BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("segment.bytes".to_string(), SEGMENT_BYTES.to_string()),
        ]);
        if let Some(min) = self.min_isr {
            configs.insert("min.insync.replicas".to_string(), min.min(self.replication).to_string());
        }
        if let Some(channel) = self.controller.get() {
            return self.create_through_controller(channel, &configs);
        }
        self.topics
            .create(self.name, self.partitions, self.replication, &[], &configs, false)
            .map(|t| t.partitions.len() as i32)
            .map_err(|e| CoordinatorError::Unavailable(format!("creating {}: {e:?}", self.name)))
    }

    fn leaders(&self) -> BTreeMap<i32, i32> {
        // Kafka's onElection: the partitions the image names this node the
        // leader of (every one on a node of its own, which places them here),
        // with the epoch they are led in. The image is published only after
        // this node's replicas took it, so each partition leads in at least
        // that epoch already.
        let me = self.topics.node_id();
        self.topics.image().topic(self.name).map_or_else(BTreeMap::new, |t| {
            (0..)
                .zip(&t.partitions)
                .filter(|(_, p)| p.leader == Some(me))
                .map(|(i, p)| (i, p.leader_epoch.get()))
                .collect()
        })
    }

    fn leader_epoch(&self, partition: i32) -> Option<i32> {
        let p = self.topics.partition(self.name, partition).ok()?;
        p.check_epoch(None).ok()?;
        Some(p.leader_epoch().get())
    }

    fn append(
        &self,
        partition: i32,
        leader_epoch: Option<i32>,
        records: &[InternalRecord],
        producer: Option<ProducerIdAndEpoch>,
        timestamp: i64,
    ) -> Result<Appended, CoordinatorError> {
        let batch = crate::internal_topic::encode_batch(records, timestamp, producer)
            .map_err(|e| CoordinatorError::Unavailable(e.to_string()))?;
        let name = self.name;
        let p = self.topics.partition(name, partition).map_err(|e| coordinator_error(name, partition, e))?;
        let min_isr = p.config().min_insync_replicas;
        let mut stamped = None;
        let info = p
            .append_own(min_isr, |log, epoch| {
                // Checked under the partition's leadership, so no election
                // runs between the check and the append.
                if leader_epoch.is_some_and(|expected| expected != epoch) {
                    return Err(LogError::CoordinatorFenced(format!(
                        "loaded under leader epoch {leader_epoch:?}, the partition is in {epoch}"
                    )));
                }
                stamped = Some(epoch);
                log.append(batch, epoch)
            })
            .map_err(|e| match e {
                PartitionError::Storage(LogError::CoordinatorFenced(e)) => {
                    tracing::info!(topic = name, partition, "append refused: {e}");
                    CoordinatorError::NotCoordinator
                }
                // Not written: COORDINATOR_NOT_AVAILABLE, as Kafka maps it.
                PartitionError::Storage(e) => {
                    CoordinatorError::Unavailable(format!("appending to {name}-{partition}: {e}"))
                }
                e => coordinator_error(name, partition, e),
            })?;
        let (end, timeout) = (Offset(info.last_offset).next(), self.timeout);
        Ok(Appended::new(async move {
            replicated(p, end, min_isr, stamped, timeout).await.map_err(|e| coordinator_error(name, partition, e))
        }))
    }

    fn read_committed(&self, partition: i32, visit: &mut dyn FnMut(&Record)) -> Result<usize, CoordinatorError> {
        let log = self.log(partition)?;
        crate::internal_topic::replay(&log, |r| visit(r))
            .map_err(|e| CoordinatorError::Unavailable(format!("{}-{partition}: {e}", self.name)))
    }
}

/// A marker's wait: until the HW passed it, or its refusal.
pub type MarkerWait = BoxFuture<'static, Result<(), MarkerError>>;

/// Markers appended to this node's logs, for the partitions this node
/// leads; on `__consumer_offsets` the group coordinator settles the
/// transaction's offsets once the marker is durable (Kafka's
/// `onTransactionCompleted`). What WriteTxnMarkers does on the receiving
/// broker, and the local half of `ClusterMarkers`.
pub struct LocalMarkers {
    topics: Arc<TopicManager>,
    groups: Arc<GroupService>,
}

impl LocalMarkers {
    pub fn new(topics: Arc<TopicManager>, groups: Arc<GroupService>) -> Self {
        LocalMarkers { topics, groups }
    }

    /// Appends `m` to `tp`'s log if the image names this node its leader
    /// (NOT_LEADER_OR_FOLLOWER otherwise, as Kafka's ReplicaManager
    /// answers) and its ISR has `min.insync.replicas` (NOT_ENOUGH_REPLICAS);
    /// the handle resolves once the HW passed it (and, on
    /// `__consumer_offsets`, the offsets are settled), or with the
    /// partition's refusal (REQUEST_TIMED_OUT after [`MARKER_TIMEOUT`]).
    pub fn write_one(&self, tp: &TopicPartition, m: TxnMarker) -> Result<MarkerWait, MarkerError> {
        let image = self.topics.image();
        let Some(placed) =
            image.topic(&tp.topic).and_then(|t| usize::try_from(tp.partition).ok().and_then(|i| t.partitions.get(i)))
        else {
            return Err(MarkerError::UnknownPartition);
        };
        // A replica here that does not lead must not take a marker: the
        // leader's log is the one the partition's readers follow.
        let led_here = placed.leader == Some(self.topics.node_id());
        let not_led =
            || MarkerError::Failed(ResponseError::NotLeaderOrFollower, format!("{tp} is not led by this broker"));
        if !led_here {
            return Err(not_led());
        }
        let p = self.topics.partition(&tp.topic, tp.partition).map_err(|_| not_led())?;
        let min_isr = p.config().min_insync_replicas;
        let mut stamped = None;
        let info = p
            .append_own(min_isr, |log, epoch| {
                stamped = Some(epoch);
                log.append_marker(m.producer_id.get(), m.producer_epoch.get(), m.coordinator_epoch, m.marker, epoch)
            })
            .map_err(|e| match e {
                PartitionError::Storage(LogError::InvalidProducerEpoch(e)) => MarkerError::InvalidProducerEpoch(e),
                PartitionError::Storage(LogError::CoordinatorFenced(e)) => MarkerError::CoordinatorFenced(e),
                e => MarkerError::Failed(e.response_error(), format!("{tp}: {e}")),
            })?;
        let end = Offset(info.last_offset).next();
        let wait = {
            let tp = tp.clone();
            async move {
                replicated(p, end, min_isr, stamped, MARKER_TIMEOUT)
                    .await
                    .map_err(|e| MarkerError::Failed(e.response_error(), format!("{tp}: {e}")))
            }
        };
        if &*tp.topic != OFFSETS_TOPIC {
            return Ok(Box::pin(wait));
        }
        let (groups, partition) = (self.groups.clone(), tp.partition);
        let commit = m.marker == kaskade_log::txn::Marker::Commit;
        Ok(Box::pin(async move {
            wait.await?;
            groups.complete_txn(m.producer_id, commit, vec![partition]).await.map_err(|e| {
                MarkerError::Failed(ResponseError::KafkaStorageError, format!("settling transactional offsets: {e}"))
            })
        }))
    }
}

impl MarkerWriter for LocalMarkers {
    fn write(&self, partitions: &[TopicPartition], m: TxnMarker) -> MarkersWritten {
        // Every marker is appended first, then waited for: one
        // group-committed fsync covers them all.
        let appended: Vec<_> = partitions.iter().map(|tp| self.write_one(tp, m)).collect();
        Box::pin(async move {
            let mut outcomes = Vec::with_capacity(appended.len());
            for a in appended {
                outcomes.push(match a {
                    Ok(wait) => wait.await,
                    Err(e) => Err(e),
                });
            }
            outcomes
        })
    }
}

/// Producer ids from blocks recorded in this node's metadata log.
pub struct LocalProducerIds {
    topics: Arc<TopicManager>,
    ids: Arc<ProducerIdManager>,
}

impl LocalProducerIds {
    pub fn new(topics: Arc<TopicManager>, ids: Arc<ProducerIdManager>) -> Self {
        LocalProducerIds { topics, ids }
    }
}

impl super::ProducerIdSource for LocalProducerIds {
    fn next_id(&self) -> BoxFuture<'_, Result<ProducerId, CoordinatorError>> {
        Box::pin(async move {
            self.ids
                .generate(&self.topics)
                .await
                .map_err(|e| CoordinatorError::Unavailable(format!("allocating a producer id: {e}")))
        })
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kaskade_log::txn::Marker;
    use std::future::IntoFuture;

    use kaskade_types::{NodeId, ProducerEpoch};

    use super::*;
    use crate::config::BrokerConfig;

    fn marker(epoch: i16) -> TxnMarker {
        TxnMarker {
            producer_id: ProducerId(5),
            producer_epoch: ProducerEpoch(epoch),
            coordinator_epoch: 0,
            marker: Marker::Commit,
        }
    }

    /// A live broker `node_id`'s registration, as the controller records it.
    fn registration(node_id: i32) -> kaskade_meta::MetadataRecord {
        kaskade_meta::MetadataRecord::RegisterBroker {
            node_id,
            incarnation_id: kaskade_meta::Uuid::new_v4(),
            endpoints: vec![kaskade_meta::BrokerEndpoint {
                listener: "PLAINTEXT".into(),
                host: "h".into(),
                port: 9092,
                security_protocol: None,
            }],
            rack: None,
            fenced: false,
            process: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_partition_led_by_another_broker_is_not_led_here_and_refuses_markers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = BrokerConfig::default();
        let topics = crate::server::open_storage(&config, dir.path()).expect("storage").topics;
        topics
            .update(|_| Ok::<_, crate::topic::TopicError>((vec![registration(1), registration(2)], ())))
            .expect("registered");
        // Partition 0 on broker 2, partition 1 here.
        topics.create("elsewhere", -1, -1, &[(0, vec![2]), (1, vec![1])], &BTreeMap::new(), false).expect("created");
        let t = LocalInternalTopic::new(topics.clone(), "elsewhere", 2);
        assert_eq!(t.led_partitions(), vec![1], "only what the image says this node leads");
        let clock: Arc<dyn kaskade_types::Clock> = Arc::new(kaskade_types::SystemClock);
        let groups = Arc::new(GroupService::from_config(&config, Arc::new(t), clock));
        let markers = LocalMarkers::new(topics.clone(), groups);
        assert!(matches!(
            markers.write_one(&TopicPartition::new("elsewhere", 0), marker(0)),
            Err(MarkerError::Failed(ResponseError::NotLeaderOrFollower, _))
        ));
        assert_eq!(
            markers.write_one(&TopicPartition::new("elsewhere", 2), marker(0)).err(),
            Some(MarkerError::UnknownPartition),
            "past the topic's partitions"
        );
        markers.write_one(&TopicPartition::new("elsewhere", 1), marker(0)).expect("led here").await.expect("durable");
        // The batch: one outcome per partition, in order.
        let outcomes = MarkerWriter::write(
            &markers,
            &[
                TopicPartition::new("elsewhere", 0),
                TopicPartition::new("elsewhere", 2),
                TopicPartition::new("elsewhere", 1),
            ],
            marker(0),
        )
        .await;
        assert!(matches!(outcomes[0], Err(MarkerError::Failed(ResponseError::NotLeaderOrFollower, _))));
        assert_eq!(outcomes[1..], [Err(MarkerError::UnknownPartition), Ok(())]);
        topics.logs().shutdown().expect("shutdown");
    }

    /// Issue 14: an offset commit acknowledged before its follower held it
    /// vanished on kill -9 of the coordinator. An append resolves only once
    /// the HW passed it; one the ISR does not take in time fails, and a
    /// marker waits the same way.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_append_resolves_only_once_the_in_sync_replicas_hold_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = BrokerConfig::default();
        let topics = crate::server::open_storage(&config, dir.path()).expect("storage").topics;
        topics
            .update(|_| Ok::<_, crate::topic::TopicError>((vec![registration(1), registration(2)], ())))
            .expect("registered");
        // Led here, broker 2 in the ISR and never fetching (until told).
        topics.create(OFFSETS_TOPIC, -1, -1, &[(0, vec![1, 2])], &BTreeMap::new(), false).expect("created");
        let record = [(Bytes::from_static(b"k"), Some(Bytes::from_static(b"v")))];
        let quick = LocalInternalTopic::new(topics.clone(), OFFSETS_TOPIC, 1)
            .with_append_timeout(std::time::Duration::from_millis(300));
        assert_eq!(quick.led_partitions(), vec![0]);
        match quick.append(0, None, &record, None, 1).expect("appended").await {
            Err(CoordinatorError::Unavailable(m)) => assert!(m.contains("within"), "{m}"),
            other => panic!("acknowledged before the follower held it: {other:?}"),
        }
        assert_eq!(
            CoordinatorError::Unavailable(String::new()).response_error(),
            ResponseError::CoordinatorNotAvailable,
            "Kafka answers a timed-out offset commit so"
        );
        let t = LocalInternalTopic::new(topics.clone(), OFFSETS_TOPIC, 1)
            .with_append_timeout(std::time::Duration::from_secs(60));
        let waiting = tokio::spawn(t.append(0, None, &record, None, 2).expect("appended").into_future());
        let p = topics.partition(OFFSETS_TOPIC, 0).expect("partition");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(!waiting.is_finished(), "resolved before the follower fetched");
        let end = Offset(p.log().log_end_offset());
        assert!(p.record_follower_fetch(NodeId(2), end), "the follower's fetch moves the HW");
        waiting.await.expect("joined").expect("replicated");
        assert_eq!(p.high_watermark(), end);

        // A marker waits for the ISR too, and is stamped with the leader epoch.
        let clock: Arc<dyn kaskade_types::Clock> = Arc::new(kaskade_types::SystemClock);
        let groups = Arc::new(GroupService::from_config(&config, Arc::new(t), clock));
        let markers = LocalMarkers::new(topics.clone(), groups);
        let marked =
            tokio::spawn(markers.write_one(&TopicPartition::new(OFFSETS_TOPIC, 0), marker(0)).expect("written"));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(!marked.is_finished(), "a marker acknowledged before the follower held it");
        assert!(p.record_follower_fetch(NodeId(2), Offset(p.log().log_end_offset())));
        marked.await.expect("joined").expect("replicated");
        // A marker of a coordinator deposed since (an older coordinator
        // epoch than the last marker's) is fenced, as Kafka's partition
        // refuses it.
        let mut newer = marker(0);
        newer.coordinator_epoch = 4;
        let p0 = TopicPartition::new(OFFSETS_TOPIC, 0);
        let written = markers.write_one(&p0, newer).expect("written");
        assert!(p.record_follower_fetch(NodeId(2), Offset(p.log().log_end_offset())));
        written.await.expect("replicated");
        match markers.write_one(&p0, marker(0)) {
            Err(MarkerError::CoordinatorFenced(m)) => assert!(m.contains("coordinator epoch 0"), "{m}"),
            Err(e) => panic!("{e:?}"),
            Ok(_) => panic!("a deposed coordinator's marker was written"),
        }
        topics.logs().shutdown().expect("shutdown");
    }

    /// Makes `leader` the leader of partition 0 of `topic` in `epoch`, with
    /// `replicas` (all in the ISR), as one committed image.
    fn elect(topics: &TopicManager, topic: &str, epoch: i32, leader: i32, replicas: Vec<i32>) {
        let meta = topics.metadata();
        let committed = meta.committed();
        let t = committed.image.topic(topic).expect("topic");
        let record = kaskade_meta::MetadataRecord::Partition {
            topic_id: t.id,
            partition: 0,
            leader,
            isr: replicas.clone(),
            replicas,
            leader_epoch: epoch,
            partition_epoch: 0,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        };
        meta.append(committed.version, vec![record]).expect("append");
        topics.apply_committed().expect("apply");
    }

    /// Issue 14: a coordinator loaded under an older leader epoch must not
    /// write, and an append acknowledged must still be there. An append in
    /// another epoch than the partition's is refused (NOT_COORDINATOR,
    /// nothing written); one whose partition was led again in a newer epoch
    /// before the HW passed it (lost and regained, the loss never seen:
    /// its offsets may hold other records by now) fails though the HW of
    /// the newer epoch passes it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_append_holds_only_within_the_leader_epoch_it_was_stamped_with() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = BrokerConfig::default();
        let topics = crate::server::open_storage(&config, dir.path()).expect("storage").topics;
        topics
            .update(|_| Ok::<_, crate::topic::TopicError>((vec![registration(1), registration(2)], ())))
            .expect("registered");
        topics.create(OFFSETS_TOPIC, -1, -1, &[(0, vec![1, 2])], &BTreeMap::new(), false).expect("created");
        let t = LocalInternalTopic::new(topics.clone(), OFFSETS_TOPIC, 1)
            .with_append_timeout(std::time::Duration::from_secs(60));
        let epoch = *t.leaders().get(&0).expect("led here");
        assert_eq!(t.leader_epoch(0), Some(epoch), "the image and the partition agree");
        let p = topics.partition(OFFSETS_TOPIC, 0).expect("partition");
        let record = [(Bytes::from_static(b"k"), Some(Bytes::from_static(b"v")))];
        let end = p.log().log_end_offset();
        assert!(matches!(t.append(0, Some(epoch + 1), &record, None, 1), Err(CoordinatorError::NotCoordinator)));
        assert_eq!(p.log().log_end_offset(), end, "nothing written");

        let waiting = tokio::spawn(t.append(0, Some(epoch), &record, None, 2).expect("appended").into_future());
        elect(&topics, OFFSETS_TOPIC, epoch + 2, 1, vec![1, 2]);
        assert_eq!(t.leaders().get(&0), Some(&(epoch + 2)));
        assert!(
            matches!(t.append(0, Some(epoch), &record, None, 3), Err(CoordinatorError::NotCoordinator)),
            "loaded under the old epoch"
        );
        let end = Offset(p.log().log_end_offset());
        assert!(p.record_follower_fetch(NodeId(2), end), "the follower's fetch moves the HW");
        // The leader's own position is its fsynced end, which the group
        // commit moves in the background: the HW follows once both are there.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while p.high_watermark() != end {
            assert!(std::time::Instant::now() < deadline, "the HW stayed at {:?}, not {end:?}", p.high_watermark());
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        match waiting.await.expect("joined") {
            Err(CoordinatorError::NotCoordinator) => {}
            other => panic!("acknowledged across a change of leadership: {other:?}"),
        }
        assert!(t.append(0, Some(epoch + 2), &record, None, 4).is_ok(), "the new epoch's append");
        topics.logs().shutdown().expect("shutdown");
    }

    /// Issue 14 (the fault run's stall): a coordinator's load read only the
    /// first chunk (1 MiB) of its partition, so once `__transaction_state`
    /// or `__consumer_offsets` grew past it a new coordinator served an
    /// old state (a producer epoch handed out twice, transactional offsets
    /// pending for ever). The load reads every record to the log end.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_load_reads_a_partition_larger_than_one_read_chunk_to_its_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = BrokerConfig::default();
        let topics = crate::server::open_storage(&config, dir.path()).expect("storage").topics;
        let t = LocalInternalTopic::new(topics.clone(), OFFSETS_TOPIC, 1);
        assert_eq!(t.ensure_topic(), Ok(1));
        let value = Bytes::from(vec![7u8; 600]);
        let (batches, per_batch) = (400, 10);
        for b in 0..batches {
            let records: Vec<InternalRecord> =
                (0..per_batch).map(|r| (Bytes::from(format!("key-{b}-{r}")), Some(value.clone()))).collect();
            t.append(0, None, &records, None, 1).expect("appended").await.expect("durable");
        }
        let log = topics.log(OFFSETS_TOPIC, 0).expect("log");
        assert!(log.size_bytes() > 2 << 20, "more than two read chunks: {}", log.size_bytes());
        let mut last = None;
        let n = t.read_committed(0, &mut |r| last = r.key.clone()).expect("read");
        assert_eq!(n, batches * per_batch, "every record");
        assert_eq!(last.as_deref(), Some(format!("key-{}-{}", batches - 1, per_batch - 1).as_bytes()));
        topics.logs().shutdown().expect("shutdown");
    }

    #[test]
    fn an_append_below_min_insync_replicas_is_refused_as_kafka_refuses_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = BrokerConfig::default();
        let topics = crate::server::open_storage(&config, dir.path()).expect("storage").topics;
        // transaction.state.log.min.isr 2 on RF 1 is capped at 1 (one node
        // works unconfigured); min.insync.replicas 3 on an ISR of 1 refuses.
        let capped = LocalInternalTopic::new(topics.clone(), crate::txn::records::TXN_TOPIC, 1).with_min_isr(2);
        assert_eq!(capped.ensure_topic(), Ok(1));
        let image = topics.image();
        let configs = &image.topic(crate::txn::records::TXN_TOPIC).expect("created").configs;
        assert_eq!(configs.get("min.insync.replicas").map(String::as_str), Some("1"));
        let configs = BTreeMap::from([("min.insync.replicas".to_string(), "3".to_string())]);
        topics.create("strict", 1, 1, &[], &configs, false).expect("created");
        let strict = LocalInternalTopic::new(topics.clone(), "strict", 1);
        let record = [(Bytes::from_static(b"k"), Some(Bytes::from_static(b"v")))];
        match strict.append(0, None, &record, None, 1) {
            Err(e @ CoordinatorError::Unavailable(_)) => {
                assert_eq!(e.response_error(), ResponseError::CoordinatorNotAvailable)
            }
            other => panic!("NOT_ENOUGH_REPLICAS answers COORDINATOR_NOT_AVAILABLE: {other:?}"),
        }
        topics.logs().shutdown().expect("shutdown");
    }

    #[test]
    fn an_internal_topic_waits_for_enough_live_brokers_for_its_replication_factor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = BrokerConfig::default();
        let topics = crate::server::open_storage(&config, dir.path()).expect("storage").topics;
        topics
            .update(|_| Ok::<_, crate::topic::TopicError>((vec![registration(1), registration(2)], ())))
            .expect("registered");
        // offsets.topic.replication.factor=3 with two live brokers: refused
        // (Kafka: "Internal topic creation will fail until the cluster size
        // meets this replication factor requirement").
        let three = LocalInternalTopic::new(topics.clone(), OFFSETS_TOPIC, 2).with_replication(3);
        match three.ensure_topic() {
            Err(CoordinatorError::Unavailable(m)) => assert!(m.contains("InvalidReplicationFactor"), "{m}"),
            other => panic!("RF 3 on 2 brokers must wait: {other:?}"),
        }
        assert_eq!(three.partition_count(), None, "nothing created");
        let two = LocalInternalTopic::new(topics.clone(), OFFSETS_TOPIC, 2).with_replication(2);
        assert_eq!(two.ensure_topic().expect("RF 2 on 2 brokers"), 2);
        let image = topics.image();
        let created = image.topic(OFFSETS_TOPIC).expect("created");
        assert!(created.partitions.iter().all(|p| p.replicas.len() == 2));
        topics.logs().shutdown().expect("shutdown");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn local_seams_over_this_nodes_logs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = BrokerConfig::default();
        let topics = crate::server::open_storage(&config, dir.path()).expect("storage").topics;
        let t = LocalInternalTopic::new(topics.clone(), OFFSETS_TOPIC, 3);
        assert_eq!(t.partition_count(), None);
        assert!(t.led_partitions().is_empty());
        let record = [(Bytes::from_static(b"k"), Some(Bytes::from_static(b"v")))];
        assert!(matches!(t.append(0, None, &record, None, 1), Err(CoordinatorError::Unavailable(_))), "no topic yet");
        assert_eq!(t.ensure_topic(), Ok(3));
        assert_eq!(t.ensure_topic(), Ok(3), "created once");
        let created = topics.image().topic(OFFSETS_TOPIC).expect("created").configs.get("cleanup.policy").cloned();
        assert_eq!(created.as_deref(), Some("compact"));
        assert_eq!(t.led_partitions(), vec![0, 1, 2]);

        t.append(1, None, &record, Some(ProducerIdAndEpoch::new(ProducerId(5), ProducerEpoch(0))), 1234)
            .expect("append")
            .await
            .expect("durable");
        let mut seen = Vec::new();
        let n = t
            .read_committed(1, &mut |r| seen.push((r.key.clone(), r.value.clone(), r.transactional, r.producer_id)))
            .expect("read");
        assert_eq!(n, 1);
        assert_eq!(seen, vec![(record[0].0.clone().into(), record[0].1.clone(), true, 5)]);
        assert!(matches!(t.read_committed(7, &mut |_| {}), Err(CoordinatorError::Unavailable(_))));

        let clock: Arc<dyn kaskade_types::Clock> = Arc::new(kaskade_types::SystemClock);
        let groups = Arc::new(GroupService::from_config(&config, Arc::new(t), clock));
        let markers = LocalMarkers::new(topics.clone(), groups);
        assert_eq!(
            markers.write_one(&TopicPartition::new("nope", 0), marker(0)).err(),
            Some(MarkerError::UnknownPartition)
        );
        let offsets = TopicPartition::new(OFFSETS_TOPIC, 1);
        markers.write_one(&offsets, marker(1)).expect("written").await.expect("durable and settled");
        assert!(
            matches!(markers.write_one(&offsets, marker(0)), Err(MarkerError::InvalidProducerEpoch(_))),
            "an older epoch than the partition has seen"
        );
        topics.logs().shutdown().expect("shutdown");
    }
}
