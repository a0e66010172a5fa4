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
            Some(max) => match log.read_range(offset, max.max(1), upper) {
                Ok(r) => {
                    if let Some(range) = &r.records {
                        range.prefetch();
                    }
                    (Ok(r.records), r.log_start_offset)
                }
                Err(e) => (Err(e.into()), log.log_start_offset()),
            },
        };
        PartitionRead { high_watermark: hw, last_stable_offset: lso, log_start_offset: log_start, records }
    }

    /// The aborted transactions a read_committed fetch of `[start, upper)`
    /// returns (Kafka's `collectAbortedTransactions`).
    pub fn aborted_transactions(&self, start: i64, upper: Offset) -> Vec<AbortedTxn> {
        self.log.aborted_transactions(start, upper.get())
    }
}
