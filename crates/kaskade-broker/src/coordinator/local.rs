//! The coordinators' seams over this node's own logs: a coordinator leads
//! the internal partitions the metadata image names this node the leader
//! of, an append is safe once durable, a marker is written to a partition
//! this node leads. The broker wires these (markers for partitions led
//! elsewhere go through `ClusterMarkers`); a replicated node would wire an
//! `Appended` that waits for the in-sync replicas.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use kafka_protocol::error::ResponseError;
use kafka_protocol::records::Record;
use kaskade_log::{Log, LogError};
use kaskade_types::{ProducerId, ProducerIdAndEpoch, TopicPartition};

use super::{
    Appended, CoordinatorError, InternalPartitions, InternalRecord, MarkerError, MarkerWriter, MarkersWritten,
    TxnMarker,
};
use crate::group::records::OFFSETS_TOPIC;
use crate::group::GroupService;
use crate::producer_ids::ProducerIdManager;
use crate::topic::TopicManager;

/// Kafka's `offsets.topic.segment.bytes` and
/// `transaction.state.log.segment.bytes` default.
const SEGMENT_BYTES: &str = "104857600";

/// Resolves once `log` is durable up to `end`.
fn durable(log: Arc<Log>, end: i64) -> Appended {
    Appended::new(async move {
        log.wait_durable(end).await.map_err(|e| CoordinatorError::Unavailable(format!("not durable: {e}")))
    })
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
}

impl LocalInternalTopic {
    pub fn new(topics: Arc<TopicManager>, name: &'static str, partitions: i32) -> Self {
        LocalInternalTopic { topics, name, partitions: partitions.max(1), replication: 1 }
    }

    /// Created with `replication` replicas per partition.
    pub fn with_replication(self, replication: i16) -> Self {
        LocalInternalTopic { replication: replication.max(1), ..self }
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
        let configs = BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("segment.bytes".to_string(), SEGMENT_BYTES.to_string()),
        ]);
        self.topics
            .create(self.name, self.partitions, self.replication, &[], &configs, false)
            .map(|t| t.partitions.len() as i32)
            .map_err(|e| CoordinatorError::Unavailable(format!("creating {}: {e:?}", self.name)))
    }

    fn led_partitions(&self) -> Vec<i32> {
        // Kafka's onElection: the partitions the image names this node the
        // leader of (every one on a node of its own, which places them here).
        let me = self.topics.node_id();
        self.topics.image().topic(self.name).map_or_else(Vec::new, |t| {
            (0..).zip(&t.partitions).filter(|(_, p)| p.leader == Some(me)).map(|(i, _)| i).collect()
        })
    }

    fn append(
        &self,
        partition: i32,
        records: &[InternalRecord],
        producer: Option<ProducerIdAndEpoch>,
        timestamp: i64,
    ) -> Result<Appended, CoordinatorError> {
        let batch = crate::internal_topic::encode_batch(records, timestamp, producer)
            .map_err(|e| CoordinatorError::Unavailable(e.to_string()))?;
        let log = self.log(partition)?;
        let info = log
            .append(batch, 0)
            .map_err(|e| CoordinatorError::Unavailable(format!("appending to {}-{partition}: {e}", self.name)))?;
        Ok(durable(log, info.last_offset + 1))
    }

    fn read_committed(&self, partition: i32, visit: &mut dyn FnMut(&Record)) -> Result<usize, CoordinatorError> {
        let log = self.log(partition)?;
        crate::internal_topic::replay(&log, |r| visit(r))
            .map_err(|e| CoordinatorError::Unavailable(format!("{}-{partition}: {e}", self.name)))
    }
}

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
    /// answers); the handle resolves once it is durable (and settled).
    pub fn write_one(&self, tp: &TopicPartition, m: TxnMarker) -> Result<Appended, MarkerError> {
        let image = self.topics.image();
        let Some(placed) =
            image.topic(&tp.topic).and_then(|t| usize::try_from(tp.partition).ok().and_then(|i| t.partitions.get(i)))
        else {
            return Err(MarkerError::UnknownPartition);
        };
        // A replica here that does not lead must not take a marker: the
        // leader's log is the one the partition's readers follow.
        let led_here = placed.leader == Some(self.topics.node_id());
        let log = self.topics.log(&tp.topic, tp.partition).filter(|_| led_here).ok_or_else(|| {
            MarkerError::Failed(ResponseError::NotLeaderOrFollower, format!("{tp} is not led by this broker"))
        })?;
        let info = log
            .append_marker(m.producer_id.get(), m.producer_epoch.get(), m.coordinator_epoch, m.marker, 0)
            .map_err(|e| match e {
                LogError::InvalidProducerEpoch(e) => MarkerError::InvalidProducerEpoch(e.to_string()),
                e => MarkerError::Failed(crate::partition::error::storage_error(&e), e.to_string()),
            })?;
        let wait = durable(log, info.last_offset + 1);
        if &*tp.topic != OFFSETS_TOPIC {
            return Ok(wait);
        }
        let (groups, partition) = (self.groups.clone(), tp.partition);
        let commit = m.marker == kaskade_log::txn::Marker::Commit;
        Ok(Appended::new(async move {
            wait.await?;
            groups
                .complete_txn(m.producer_id, commit, vec![partition])
                .await
                .map_err(|e| CoordinatorError::Unavailable(format!("settling transactional offsets: {e}")))
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
                    Ok(wait) => {
                        wait.await.map_err(|e| MarkerError::Failed(ResponseError::KafkaStorageError, e.to_string()))
                    }
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
    use kaskade_types::ProducerEpoch;

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
        assert!(matches!(t.append(0, &record, None, 1), Err(CoordinatorError::Unavailable(_))), "no topic yet");
        assert_eq!(t.ensure_topic(), Ok(3));
        assert_eq!(t.ensure_topic(), Ok(3), "created once");
        let created = topics.image().topic(OFFSETS_TOPIC).expect("created").configs.get("cleanup.policy").cloned();
        assert_eq!(created.as_deref(), Some("compact"));
        assert_eq!(t.led_partitions(), vec![0, 1, 2]);

        t.append(1, &record, Some(ProducerIdAndEpoch::new(ProducerId(5), ProducerEpoch(0))), 1234)
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
