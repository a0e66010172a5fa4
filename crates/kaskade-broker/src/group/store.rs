//! Persistence of committed offsets in `__consumer_offsets`: the topic is
//! created on first start (compacted, `offsets.topic.num.partitions`),
//! changes are appended as record batches to the group's partition, and
//! everything is replayed into the engine at start-up. Blocking: call from
//! the blocking pool (load) or for in-memory appends only (append).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use kaskade_log::Log;

use super::coordinator::GroupCoordinator;
use super::records::{self, OffsetsRecord, OFFSETS_TOPIC};
use crate::error::BrokerError;
use crate::topic::TopicManager;

/// `offsets.topic.segment.bytes` (Kafka's default).
const SEGMENT_BYTES: &str = "104857600";

/// The offsets topic of this node.
pub struct OffsetsStore {
    topics: Arc<TopicManager>,
    partitions: i32,
}

impl OffsetsStore {
    pub fn new(topics: Arc<TopicManager>, partitions: i32) -> Self {
        OffsetsStore { topics, partitions: partitions.max(1) }
    }

    /// The partitions of the topic as it exists (its count wins over the
    /// configuration once created, as in Kafka).
    pub(crate) fn partition_count(&self) -> i32 {
        self.topics.image().topic(OFFSETS_TOPIC).map_or(self.partitions, |t| t.partitions.len() as i32)
    }

    /// Creates the topic if it does not exist yet.
    pub fn ensure_topic(&self) -> Result<(), BrokerError> {
        if self.topics.image().topic(OFFSETS_TOPIC).is_some() {
            return Ok(());
        }
        let configs = BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("segment.bytes".to_string(), SEGMENT_BYTES.to_string()),
        ]);
        self.topics
            .create(OFFSETS_TOPIC, self.partitions, 1, &[], &configs, false)
            .map(|_| ())
            .map_err(|e| BrokerError::internal(format!("creating {OFFSETS_TOPIC}: {e:?}")))
    }

    fn log(&self, partition: i32) -> Result<Arc<Log>, BrokerError> {
        self.topics
            .log(OFFSETS_TOPIC, partition)
            .ok_or_else(|| BrokerError::internal(format!("{OFFSETS_TOPIC}-{partition} has no log")))
    }

    /// Replays every partition into `engine`; the number of records read.
    pub fn load(&self, engine: &mut GroupCoordinator, now: i64) -> Result<usize, BrokerError> {
        let mut count = 0;
        let partitions = self.partition_count();
        for partition in 0..partitions {
            let log = self.log(partition)?;
            crate::internal_topic::replay(&log, |record| {
                let Some(key) = record.key.as_deref() else { return };
                if record.control {
                    // A transaction marker: commits or drops the producer's
                    // pending offsets.
                    if key.len() >= 4 {
                        let commit = i16::from_be_bytes([key[2], key[3]]) == 1;
                        engine.complete_txn(now, record.producer_id, commit, partition, partitions);
                    }
                    return;
                }
                match records::decode(key, record.value.as_deref()) {
                    Some(OffsetsRecord::Offset(change)) if record.transactional => {
                        engine.load_txn_offset(record.producer_id, change)
                    }
                    Some(OffsetsRecord::Offset(change)) => engine.load_offset(now, change),
                    Some(OffsetsRecord::GroupMetadata(id, group)) => engine.load_group(now, id, group),
                    None => return,
                }
                count += 1;
            })
            .map_err(|e| BrokerError::internal(format!("{OFFSETS_TOPIC}-{partition}: {e}")))?;
        }
        Ok(count)
    }

    /// Appends the records (group id, key, value) to each group's
    /// partition, as transactional records of `producer` if given; the
    /// (log, end offset) pairs to wait on for durability.
    pub fn append(
        &self,
        changes: &[(String, Bytes, Option<Bytes>)],
        now: i64,
        producer: Option<(i64, i16)>,
    ) -> Result<Vec<(Arc<Log>, i64)>, BrokerError> {
        let n = self.partition_count();
        let mut by_partition: BTreeMap<i32, Vec<(Bytes, Option<Bytes>)>> = BTreeMap::new();
        for (group_id, key, value) in changes {
            by_partition.entry(records::partition_for(group_id, n)).or_default().push((key.clone(), value.clone()));
        }
        let mut waits = Vec::new();
        for (partition, changes) in by_partition {
            let buf = crate::internal_topic::encode_batch(&changes, now, producer)?;
            let log = self.log(partition)?;
            let info = log
                .append(buf, 0)
                .map_err(|e| BrokerError::internal(format!("appending to {OFFSETS_TOPIC}-{partition}: {e}")))?;
            waits.push((log, info.last_offset + 1));
        }
        Ok(waits)
    }
}
