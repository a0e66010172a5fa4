//! ListOffsets lookups on a partition, with Kafka's semantics
//! (`fetchOffsetForTimestamp`): "latest" is the high watermark
//! (read_committed: the last stable offset), a timestamp lookup answers the
//! first record whose timestamp is >= the one asked for, and no answer
//! points at or past the last fetchable offset.

use kafka_protocol::records::RecordBatchDecoder;
use kaskade_log::Log;
use kaskade_types::{LeaderEpoch, Offset};

use super::read::Isolation;
use super::{Partition, PartitionError};

/// What a ListOffsets partition asks for (Kafka's `ListOffsetsRequest`
/// timestamp sentinels).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetSpec {
    /// -2: the log start.
    Earliest,
    /// -1: the last fetchable offset.
    Latest,
    /// -3: the record with the largest timestamp (KIP-734).
    MaxTimestamp,
    /// -4: the local log start (no tiering: the log start).
    EarliestLocal,
    /// -5: the earliest tiered offset (no tiering: the log start).
    EarliestTiered,
    /// -6: the latest tiered offset (no tiering: as latest).
    LatestTiered,
    /// The first record with a timestamp >= this one.
    Timestamp(i64),
}

impl OffsetSpec {
    /// From the request's timestamp; `None` for a negative value Kafka
    /// does not define.
    pub fn from_wire(timestamp: i64) -> Option<OffsetSpec> {
        Some(match timestamp {
            -2 => OffsetSpec::Earliest,
            -1 => OffsetSpec::Latest,
            -3 => OffsetSpec::MaxTimestamp,
            -4 => OffsetSpec::EarliestLocal,
            -5 => OffsetSpec::EarliestTiered,
            -6 => OffsetSpec::LatestTiered,
            t if t >= 0 => OffsetSpec::Timestamp(t),
            _ => return None,
        })
    }
}

/// A ListOffsets answer: the offset and its record's timestamp (`None`
/// when the answer has none, -1 on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FoundOffset {
    pub offset: Option<Offset>,
    pub timestamp: Option<i64>,
}

impl FoundOffset {
    const NONE: FoundOffset = FoundOffset { offset: None, timestamp: None };

    fn at(offset: i64, timestamp: Option<i64>) -> FoundOffset {
        FoundOffset { offset: Some(Offset(offset)), timestamp }
    }
}

impl Partition {
    /// ListOffsets: after the epoch checks, the offset `spec` names.
    /// Blocking: a timestamp lookup reads the log.
    pub fn fetch_offset_for_timestamp(
        &self,
        current_leader_epoch: Option<LeaderEpoch>,
        spec: OffsetSpec,
        isolation: Isolation,
    ) -> Result<FoundOffset, PartitionError> {
        // Answered as the leader it checked it is (see `transition`).
        let _leadership = self.transition.read();
        self.check_epoch(current_leader_epoch)?;
        lookup(&self.log, spec, isolation)
    }
}

fn lookup(log: &Log, spec: OffsetSpec, isolation: Isolation) -> Result<FoundOffset, PartitionError> {
    // Kafka's "last fetchable offset": no answer may point at or past it.
    let fetchable = match isolation {
        Isolation::ReadCommitted => log.last_stable_offset(),
        Isolation::ReadUncommitted => log.high_watermark(),
        Isolation::LogEnd => log.log_end_offset(),
    };
    Ok(match spec {
        OffsetSpec::Earliest | OffsetSpec::EarliestLocal | OffsetSpec::EarliestTiered => {
            FoundOffset::at(log.log_start_offset(), None)
        }
        OffsetSpec::Latest | OffsetSpec::LatestTiered => FoundOffset::at(fetchable, None),
        OffsetSpec::MaxTimestamp => match log.max_timestamp() {
            Some(max) if max.offset < fetchable => {
                FoundOffset::at(exact_max(log, max.timestamp, max.offset).unwrap_or(max.offset), Some(max.timestamp))
            }
            _ => FoundOffset::NONE,
        },
        OffsetSpec::Timestamp(t) => {
            let Some(hit) = log.find_by_timestamp(t)?.filter(|h| h.header.base_offset < fetchable) else {
                return Ok(FoundOffset::NONE);
            };
            // A batch may straddle the log start (DeleteRecords): records
            // below it are gone, so the answer starts at the log start.
            let start = log.log_start_offset();
            let (offset, ts) = first_record_at_or_after(&hit.batch, t, start)
                .unwrap_or((hit.header.base_offset.max(start), hit.header.max_timestamp));
            if offset < fetchable {
                FoundOffset::at(offset, Some(ts))
            } else {
                FoundOffset::NONE
            }
        }
    })
}

/// Decodes one batch (any compression) and finds the first record at or
/// past offset `from` with timestamp >= `t`.
fn first_record_at_or_after(batch: &bytes::Bytes, t: i64, from: i64) -> Option<(i64, i64)> {
    let mut buf = batch.clone();
    let set = RecordBatchDecoder::decode(&mut buf).ok()?;
    set.records.iter().find(|r| r.offset >= from && r.timestamp >= t).map(|r| (r.offset, r.timestamp))
}

/// The offset of the record that holds the max timestamp (KIP-734), from
/// the batch the log reports.
fn exact_max(log: &Log, ts: i64, batch_last: i64) -> Option<i64> {
    let mut buf = log.read(batch_last, 1, None).ok()?.records?;
    let set = RecordBatchDecoder::decode(&mut buf).ok()?;
    set.records.iter().find(|r| r.timestamp == ts).map(|r| r.offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_sentinels() {
        assert_eq!(OffsetSpec::from_wire(-2), Some(OffsetSpec::Earliest));
        assert_eq!(OffsetSpec::from_wire(-1), Some(OffsetSpec::Latest));
        assert_eq!(OffsetSpec::from_wire(-3), Some(OffsetSpec::MaxTimestamp));
        assert_eq!(OffsetSpec::from_wire(-6), Some(OffsetSpec::LatestTiered));
        assert_eq!(OffsetSpec::from_wire(0), Some(OffsetSpec::Timestamp(0)));
        assert_eq!(OffsetSpec::from_wire(-7), None, "undefined: INVALID_REQUEST");
    }
}
