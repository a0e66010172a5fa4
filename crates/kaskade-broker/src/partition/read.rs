//! Fetch reads on a partition: whole batches below the high watermark
//! (read_committed: the last stable offset), with the positions a Fetch
//! answer reports and, under read_committed, the aborted transactions the
//! records overlap.

use kaskade_log::txn::AbortedTxn;
use kaskade_log::{FileRange, LogError};
use kaskade_types::Offset;

use super::{Partition, PartitionError};

/// How far a fetch may read (Kafka's `FetchIsolation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isolation {
    /// A consumer's read_uncommitted: up to the HW.
    ReadUncommitted,
    /// A consumer's read_committed: up to the last stable offset.
    ReadCommitted,
    /// A follower replica's fetch: up to the log end.
    LogEnd,
}

impl Isolation {
    /// From the request's `isolation_level` (1: read_committed).
    pub fn from_wire(level: i8) -> Isolation {
        if level == 1 {
            Isolation::ReadCommitted
        } else {
            Isolation::ReadUncommitted
        }
    }
}

/// What a partition read returns, with the positions sampled before it.
#[derive(Debug)]
pub struct PartitionRead {
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// Where whole batches lie (an open segment file and a byte range), or
    /// `None` (nothing past the offset, or positions only); `Err` when the
    /// read was refused.
    pub records: Result<Option<FileRange>, PartitionError>,
}

impl Partition {
    /// Reads from `offset`, at most `max_bytes` (at least one whole batch
    /// when there is one, KIP-74); `None`: positions only (the response's
    /// byte budget is spent), still checking the offset's range. Blocking:
    /// the read may miss the page cache; the records' pages are brought
    /// into it (`FileRange::prefetch`) so that sending them later does not
    /// wait for the disk.
    pub fn read(&self, offset: i64, max_bytes: Option<usize>, isolation: Isolation) -> PartitionRead {
        self.read_with(offset, max_bytes, isolation, false).unwrap_or_else(|| {
            // Unreachable: only a resident read declines.
            debug_assert!(false, "a blocking read declined");
            PartitionRead {
                high_watermark: self.log.high_watermark(),
                last_stable_offset: self.log.last_stable_offset(),
                log_start_offset: self.log.log_start_offset(),
                records: Err(LogError::Io(kaskade_log::resident::would_block()).into()),
            }
        })
    }

    /// [`Partition::read`] from the page cache only, for an async worker:
    /// `None` when the read would wait for the disk (see
    /// `Log::read_range_resident`) or the records' last page is not cached;
    /// then `read` on the blocking pool. What it returns is what `read`
    /// returns at the same moment.
    pub fn read_resident(&self, offset: i64, max_bytes: Option<usize>, isolation: Isolation) -> Option<PartitionRead> {
        self.read_with(offset, max_bytes, isolation, true)
    }

    fn read_with(
        &self,
        offset: i64,
        max_bytes: Option<usize>,
        isolation: Isolation,
        resident: bool,
    ) -> Option<PartitionRead> {
        let log = &self.log;
        let hw = log.high_watermark();
        let lso = log.last_stable_offset();
        let upper = match isolation {
            Isolation::ReadCommitted => Some(lso),
            Isolation::ReadUncommitted => Some(hw),
            Isolation::LogEnd => None,
        };
        let (records, log_start) = match max_bytes {
            None => match (log.log_start_offset(), log.log_end_offset()) {
                (s, e) if offset < s || offset > e => {
                    (Err(LogError::OffsetOutOfRange { offset, start: s, end: e }.into()), s)
                }
                (s, _) => (Ok(None), s),
            },
            Some(max) => {
                let read = if resident {
                    log.read_range_resident(offset, max.max(1), upper)?
                } else {
                    log.read_range(offset, max.max(1), upper)
                };
                match read {
                    Ok(r) => {
                        if let Some(range) = &r.records {
                            if resident {
                                // `sendfile` on the worker must find every page
                                // cached: the headers were, and pages fill front
                                // to back, so the last one settles it.
                                if !range.tail_cached() {
                                    return None;
                                }
                            } else {
                                range.prefetch();
                            }
                        }
                        (Ok(r.records), r.log_start_offset)
                    }
                    Err(e) => (Err(e.into()), log.log_start_offset()),
                }
            }
        };
        Some(PartitionRead { high_watermark: hw, last_stable_offset: lso, log_start_offset: log_start, records })
    }

    /// The read of a fetch already at the end of what it may see (`offset`
    /// is the high watermark, the last stable offset under read_committed,
    /// or a follower's log end): positions only, what [`Partition::read`] returns
    /// there, from memory. Never blocks, so a caught-up consumer's long poll
    /// can park without a trip through the blocking pool. `None` when there
    /// may be something to read or the offset is out of range: use `read`.
    pub fn read_at_end(&self, offset: i64, isolation: Isolation) -> Option<PartitionRead> {
        let log = &self.log;
        let hw = log.high_watermark();
        let lso = log.last_stable_offset();
        let upper = match isolation {
            Isolation::ReadCommitted => lso,
            Isolation::ReadUncommitted => hw,
            Isolation::LogEnd => log.log_end_offset(),
        };
        let log_start = log.log_start_offset();
        if offset != upper || offset < log_start {
            return None;
        }
        Some(PartitionRead {
            high_watermark: hw,
            last_stable_offset: lso,
            log_start_offset: log_start,
            records: Ok(None),
        })
    }

    /// The aborted transactions a read_committed fetch of `[start, upper)`
    /// returns (Kafka's `collectAbortedTransactions`).
    pub fn aborted_transactions(&self, start: i64, upper: Offset) -> Vec<AbortedTxn> {
        self.log.aborted_transactions(start, upper.get())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use kaskade_log::{LogConfig, LogManager, ManagerOptions, TopicPartition};
    use kaskade_types::{LeaderEpoch, NodeId};

    use super::*;
    use crate::partition::LeaderAndIsr;

    /// At the end (the HW), `read_at_end` answers what `read` answers;
    /// anywhere else (below the HW, past it, below the log start) it
    /// declines and leaves the read, or its error, to `read`.
    #[tokio::test]
    async fn read_at_end_answers_only_at_the_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mgr, _) = LogManager::open(dir.path(), ManagerOptions::default(), |_| LogConfig::default()).expect("open");
        let log = mgr.get_or_create(&TopicPartition::new("t", 0), LogConfig::default()).expect("log");
        let state = LeaderAndIsr {
            leader: Some(NodeId(1)),
            epoch: LeaderEpoch(0),
            isr: vec![NodeId(1)],
            replicas: vec![NodeId(1)],
        };
        let p: Arc<Partition> = Partition::new(NodeId(1), log.clone(), &state).expect("partition");
        let info =
            p.append_as_leader(Bytes::from(kaskade_log::batch::build::filled(3, 10, 0, 1)), None).expect("append");
        let end = Offset(info.last_offset).next();
        p.wait_for_replicas(end, 1, LeaderEpoch(0)).await.expect("durable");

        for isolation in [Isolation::ReadUncommitted, Isolation::ReadCommitted, Isolation::LogEnd] {
            let fast = p.read_at_end(end.get(), isolation).expect("at the end");
            let slow = p.read(end.get(), Some(1 << 20), isolation);
            assert_eq!(
                (fast.high_watermark, fast.last_stable_offset, fast.log_start_offset),
                (slow.high_watermark, slow.last_stable_offset, slow.log_start_offset)
            );
            assert!(matches!(fast.records, Ok(None)) && matches!(slow.records, Ok(None)));
            assert!(p.read_at_end(0, isolation).is_none(), "records to read");
            assert!(p.read_at_end(end.get() + 1, isolation).is_none(), "out of range: read's error");
        }
        // Everything deleted (DeleteRecords): the end is also the log start.
        log.advance_log_start(end.get()).expect("advance the log start");
        let fast = p.read_at_end(end.get(), Isolation::ReadUncommitted).expect("at the end");
        assert_eq!(fast.log_start_offset, end.get());
        assert!(p.read_at_end(end.get() - 1, Isolation::ReadUncommitted).is_none(), "below the log start");
        mgr.shutdown().expect("shutdown");
    }
}
