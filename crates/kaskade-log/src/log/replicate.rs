//! The follower's append: batches fetched from the partition leader are
//! written as they are (Kafka's `appendRecordsToFollowerOrFutureReplica`).
//!
//! Unlike a client's batch, a replicated batch keeps the base offset, the
//! leader epoch and the timestamps its leader gave it; the log only checks
//! that it is whole (length, magic, CRC) and that it starts exactly at the
//! log end (a gap or an overlap means the follower's fetch position and its
//! log disagree, and nothing is written). The follower's state follows the
//! batches as the leader's did: a new leader epoch enters the epoch cache
//! (so OffsetForLeaderEpoch answers alike on every replica), idempotent
//! producers' batches and transaction markers update the producer state and
//! the aborted-transaction index (so deduplication and read_committed
//! survive a failover), without the leader's sequence checks.
//!
//! Invariant: after `append_replicated` returns `Ok`, the log end is the
//! next offset after the last whole batch given, and every batch before it
//! was written; on `Err` the batches before the refused one stay written.

use super::append::Origin;
use super::*;

impl Log {
    /// Appends the whole batches of a fetch answer's `records` as a
    /// follower. A trailing partial batch (a fetch answer may end with one,
    /// cut by the byte limit) is left for the next fetch. Returns how many
    /// batches were appended. Blocking (writes; the epoch cache may be
    /// rewritten).
    pub fn append_replicated(&self, records: &Bytes) -> Result<usize> {
        let mut at = 0;
        let mut appended = 0;
        while at < records.len() {
            let rest = &records[at..];
            if rest.len() < batch::LOG_OVERHEAD {
                break;
            }
            let Some((_, len)) = batch::peek_extent(rest) else {
                return Err(LogError::CorruptBatch(format!("replicated batch at byte {at} has a bad length field")));
            };
            if len > rest.len() {
                break;
            }
            let bytes = records.slice(at..at + len);
            let header = batch::validate_for_append(&bytes, usize::MAX)?;
            let marker = if header.is_control() { txn::parse_marker(&header, &bytes) } else { None };
            self.append_validated(bytes, header, Origin::Replication, marker)?;
            at += len;
            appended += 1;
        }
        Ok(appended)
    }
}
