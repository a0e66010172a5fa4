//! Persistence of groups and committed offsets in `__consumer_offsets`,
//! through the coordinator's [`InternalPartitions`]: changes are appended
//! as record batches to the group's partition, and a partition's records
//! are replayed into the engine when this node becomes its leader.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::records::Record;
use kaskade_types::{ProducerId, ProducerIdAndEpoch};

use super::coordinator::GroupCoordinator;
use super::records::{self, OffsetsRecord};
use crate::coordinator::{Appended, CoordinatorError, InternalPartitions, InternalRecord};

/// One record for a group's `__consumer_offsets` partition: the group it
/// belongs to (which picks the partition), its key and its value (`None`:
/// a tombstone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRecord {
    pub group_id: String,
    pub key: Bytes,
    pub value: Option<Bytes>,
}

/// The offsets topic as the group coordinator uses it.
pub struct OffsetsStore {
    topic: Arc<dyn InternalPartitions>,
    /// `offsets.topic.num.partitions`, until the topic exists.
    configured: i32,
}

impl OffsetsStore {
    pub fn new(topic: Arc<dyn InternalPartitions>, configured: i32) -> Self {
        OffsetsStore { topic, configured: configured.max(1) }
    }

    /// The partitions of the topic as it exists (its count wins over the
    /// configuration once created, as in Kafka).
    pub(crate) fn partition_count(&self) -> i32 {
        self.topic.partition_count().unwrap_or(self.configured)
    }

    /// Whether the topic exists.
    pub fn exists(&self) -> bool {
        self.topic.partition_count().is_some()
    }

    /// Creates the topic if needed; the partitions this node leads, with
    /// their leader epochs. Blocking.
    pub fn ensure_topic(&self) -> Result<BTreeMap<i32, i32>, CoordinatorError> {
        self.topic.ensure_topic()?;
        Ok(self.topic.leaders())
    }

    /// The partitions this node leads with their leader epochs, as the
    /// metadata image says.
    pub fn leaders(&self) -> BTreeMap<i32, i32> {
        self.topic.leaders()
    }

    /// The committed records of `partition`. Blocking.
    pub fn read(&self, partition: i32) -> Result<Vec<Record>, CoordinatorError> {
        let mut out = Vec::new();
        self.topic.read_committed(partition, &mut |r| out.push(r.clone()))?;
        Ok(out)
    }

    /// Replays `partition`'s records into `engine`; the number applied.
    pub fn replay(engine: &mut GroupCoordinator, now: i64, partition: i32, partitions: i32, recs: &[Record]) -> usize {
        let mut count = 0;
        for record in recs {
            let Some(key) = record.key.as_deref() else { continue };
            if record.control {
                // A transaction marker: commits or drops the producer's
                // pending offsets.
                if key.len() >= 4 {
                    let commit = i16::from_be_bytes([key[2], key[3]]) == 1;
                    engine.complete_txn(now, ProducerId(record.producer_id), commit, partition, partitions);
                }
                continue;
            }
            match records::decode(key, record.value.as_deref()) {
                Some(OffsetsRecord::Offset(change)) if record.transactional => {
                    engine.load_txn_offset(ProducerId(record.producer_id), change)
                }
                Some(OffsetsRecord::Offset(change)) => engine.load_offset(now, change),
                Some(OffsetsRecord::GroupMetadata(id, group)) => engine.load_group(now, id, group),
                None => continue,
            }
            count += 1;
        }
        count
    }

    /// Appends the records to each group's partition, as transactional
    /// records of `producer` if given; each partition's handle to await (a
    /// refused append is a handle that failed, so one partition's refusal
    /// does not keep the others' records out). Each partition's records
    /// carry the leader epoch `epoch_of` says it was loaded under: refused
    /// (NOT_COORDINATOR) if it leads in another now, or was not loaded.
    pub fn append(
        &self,
        changes: &[GroupRecord],
        now: i64,
        producer: Option<ProducerIdAndEpoch>,
        epoch_of: impl Fn(i32) -> Option<i32>,
    ) -> Vec<(i32, Appended)> {
        let n = self.partition_count();
        let mut by_partition: BTreeMap<i32, Vec<InternalRecord>> = BTreeMap::new();
        for GroupRecord { group_id, key, value } in changes {
            by_partition.entry(records::partition_for(group_id, n)).or_default().push((key.clone(), value.clone()));
        }
        by_partition
            .into_iter()
            .map(|(partition, records)| {
                let Some(epoch) = epoch_of(partition) else {
                    return (partition, Appended::failed(CoordinatorError::NotCoordinator));
                };
                let appended =
                    self.topic.append(partition, Some(epoch), &records, producer, now).unwrap_or_else(Appended::failed);
                (partition, appended)
            })
            .collect()
    }
}
