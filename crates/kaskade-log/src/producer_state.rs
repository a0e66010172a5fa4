//! Producer state of one partition, as Kafka's `ProducerStateManager`:
//! for every producer id, its current epoch and the metadata of its last
//! five batches (first/last sequence, first/last offset, max timestamp).
//! It is what makes idempotent producers exactly-once per partition:
//!
//! - a retried batch (same producer id, epoch and sequence range as one of
//!   the last five) is not written again; the append answers with the
//!   offsets the first attempt got;
//! - a sequence gap is refused with OUT_OF_ORDER_SEQUENCE_NUMBER (45), an
//!   epoch older than the current one with INVALID_PRODUCER_EPOCH (47), a
//!   new epoch must start at sequence 0; sequences wrap at `i32::MAX` to 0;
//! - a producer the partition does not know (never seen, or expired) may
//!   start at any sequence (KIP-360).
//!
//! The state is a pure function of the log's batch headers, so it can
//! always be rebuilt by replaying them (`replay`). To keep start-up cheap,
//! the state is written to Kafka-format snapshot files
//! (`<20-digit offset>.snapshot`, the state of every batch below that
//! offset; `Snapshots`) when a segment rolls and on clean shutdown; opening
//! a log loads the newest valid snapshot at or below the log end and
//! replays only the headers after it.
//!
//! Snapshot format (Kafka's `ProducerStateManager` schema, version 1, all
//! big-endian): `version i16 | crc u32 | count i32 | entries`, each entry
//! `producer_id i64 | epoch i16 | last_sequence i32 | last_offset i64 |
//! offset_delta i32 | timestamp i64 | coordinator_epoch i32 |
//! current_txn_first_offset i64` (46 bytes). The CRC32C covers everything
//! after the CRC field. As in Kafka, only a producer's last batch is kept
//! in a snapshot, so right after loading one the duplicate window of a
//! producer is its last batch plus whatever the replay after it adds.
//!
//! This module holds no lock and knows no clock: the log calls it under
//! its own mutex, with the time passed in.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;

use crate::batch::BatchHeader;
use crate::error::{LogError, Result};
use crate::segment::{self, SegmentFiles};
use crate::txn::{self, CompletedTxn, EndMarker};

pub use crate::producer_snapshots::{rebuild, snapshot_file_name, Snapshots};

/// Kafka's `ProducerStateEntry.NUM_BATCHES_TO_RETAIN`: the duplicate window,
/// matching the producers' `max.in.flight.requests.per.connection` limit
/// of 5 for idempotence.
pub const NUM_BATCHES_TO_RETAIN: usize = 5;
pub const NO_PRODUCER_ID: i64 = -1;
pub const NO_PRODUCER_EPOCH: i16 = -1;
pub const NO_SEQUENCE: i32 = -1;
/// Kafka's `producer.id.expiration.ms` default: one day.
pub const DEFAULT_PRODUCER_ID_EXPIRATION_MS: i64 = 86_400_000;
/// Snapshot files kept per partition.
pub const SNAPSHOTS_TO_KEEP: usize = 2;

const SNAPSHOT_VERSION: i16 = 1;
const SNAPSHOT_HEADER: usize = 2 + 4 + 4;
const SNAPSHOT_ENTRY: usize = 8 + 2 + 4 + 8 + 4 + 8 + 4 + 8;
pub(crate) const SNAPSHOT_SUFFIX: &str = ".snapshot";

/// `seq + increment`, wrapping from `i32::MAX` to 0 (Kafka's
/// `DefaultRecordBatch.incrementSequence`).
pub fn increment_sequence(seq: i32, increment: i32) -> i32 {
    if seq > i32::MAX - increment {
        increment - (i32::MAX - seq) - 1
    } else {
        seq + increment
    }
}

/// `seq - decrement`, wrapping below 0 to `i32::MAX` (Kafka's
/// `DefaultRecordBatch.decrementSequence`).
pub fn decrement_sequence(seq: i32, decrement: i32) -> i32 {
    if seq < decrement {
        i32::MAX - (decrement - seq) + 1
    } else {
        seq - decrement
    }
}

/// The sequence of a batch's last record.
pub fn last_sequence(h: &BatchHeader) -> i32 {
    if h.base_sequence == NO_SEQUENCE {
        NO_SEQUENCE
    } else {
        increment_sequence(h.base_sequence, h.last_offset_delta)
    }
}

fn in_sequence(last: i32, next: i32) -> bool {
    next as i64 == last as i64 + 1 || (next == 0 && last == i32::MAX)
}

/// Whether the producer state applies to a data batch: it carries a
/// producer id and a sequence. (Kafka refuses a client batch with a
/// producer id but no sequence, `Log::append_client` does too; batches
/// appended otherwise are left out of the state.)
pub fn is_idempotent(h: &BatchHeader) -> bool {
    h.producer_id > NO_PRODUCER_ID && h.base_sequence >= 0 && !h.is_control()
}

/// One appended batch of a producer.
/// An open transaction of a partition: its producer and the offset of its
/// first record (what bounds the last stable offset).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenTxn {
    pub producer_id: i64,
    pub first_offset: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
}

impl BatchMetadata {
    /// The metadata of a stored batch (its header carries the assigned
    /// base offset).
    pub fn of(h: &BatchHeader) -> BatchMetadata {
        BatchMetadata {
            first_seq: h.base_sequence,
            last_seq: last_sequence(h),
            first_offset: h.base_offset,
            last_offset: h.last_offset(),
            max_timestamp: h.max_timestamp,
        }
    }
}

/// What the partition knows of one producer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerEntry {
    pub producer_id: i64,
    pub epoch: i16,
    /// Oldest first, at most `NUM_BATCHES_TO_RETAIN`, all of `epoch`.
    batches: VecDeque<BatchMetadata>,
    /// Max timestamp of the producer's last batch: what expiration goes by.
    pub last_timestamp: i64,
    /// The epoch of the transaction coordinator that wrote the last marker.
    pub coordinator_epoch: i32,
    /// First offset of the producer's open transaction on this partition;
    /// -1 when none is open.
    pub current_txn_first_offset: i64,
}

impl ProducerEntry {
    fn empty(producer_id: i64) -> ProducerEntry {
        ProducerEntry {
            producer_id,
            epoch: NO_PRODUCER_EPOCH,
            batches: VecDeque::with_capacity(NUM_BATCHES_TO_RETAIN),
            last_timestamp: -1,
            coordinator_epoch: -1,
            current_txn_first_offset: -1,
        }
    }

    /// The retained batches, oldest first.
    pub fn batches(&self) -> impl Iterator<Item = &BatchMetadata> {
        self.batches.iter()
    }

    pub fn last_seq(&self) -> i32 {
        self.batches.back().map_or(NO_SEQUENCE, |b| b.last_seq)
    }

    fn update_epoch(&mut self, epoch: i16) {
        if self.epoch != epoch {
            self.batches.clear();
            self.epoch = epoch;
        }
    }

    fn add_batch(&mut self, epoch: i16, batch: BatchMetadata) {
        self.update_epoch(epoch);
        if self.batches.len() == NUM_BATCHES_TO_RETAIN {
            self.batches.pop_front();
        }
        self.batches.push_back(batch);
        self.last_timestamp = batch.max_timestamp;
    }

    fn duplicate_of(&self, h: &BatchHeader) -> Option<BatchMetadata> {
        if h.producer_epoch != self.epoch {
            return None;
        }
        let last = last_sequence(h);
        self.batches.iter().find(|b| b.first_seq == h.base_sequence && b.last_seq == last).copied()
    }
}

/// The producer state of one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerStateManager {
    producers: HashMap<i64, ProducerEntry>,
    /// Open transactions: first offset -> producer id (the smallest key
    /// bounds the last stable offset).
    open_txns: BTreeMap<i64, i64>,
    /// `producer.id.expiration.ms`
    expiration_ms: i64,
}

impl ProducerStateManager {
    pub fn new(expiration_ms: i64) -> ProducerStateManager {
        ProducerStateManager { producers: HashMap::new(), open_txns: BTreeMap::new(), expiration_ms }
    }

    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// The first offset of the oldest open transaction.
    pub fn first_open_txn(&self) -> Option<i64> {
        self.open_txns.keys().next().copied()
    }

    /// Open transactions, oldest first.
    pub fn open_txns(&self) -> impl Iterator<Item = OpenTxn> + '_ {
        self.open_txns.iter().map(|(first, pid)| OpenTxn { producer_id: *pid, first_offset: *first })
    }

    /// Every producer the partition knows, by id.
    pub fn entries(&self) -> impl Iterator<Item = &ProducerEntry> {
        self.producers.values()
    }

    pub fn clear(&mut self) {
        self.open_txns.clear();
        self.producers.clear();
    }

    /// Validates an idempotent client batch against the state, without
    /// changing it (Kafka's duplicate lookup, then `checkProducerEpoch` and
    /// `checkSequence`). `Ok(Some(..))` is a duplicate of an appended batch:
    /// do not write it, answer with its offsets. `offset` is where the batch
    /// would land (for messages).
    pub fn check(&self, h: &BatchHeader, offset: i64) -> Result<Option<BatchMetadata>> {
        let pid = h.producer_id;
        let entry = self.producers.get(&pid);
        if let Some(dup) = entry.and_then(|e| e.duplicate_of(h)) {
            return Ok(Some(dup));
        }
        if !h.is_transactional() && entry.is_some_and(|e| e.current_txn_first_offset >= 0) {
            return Err(LogError::InvalidTxnState(format!(
                "Expected a transactional batch from producer {pid} at offset {offset}: its transaction starting at {} is open",
                entry.map_or(-1, |e| e.current_txn_first_offset)
            )));
        }
        let current = entry.map_or(NO_PRODUCER_EPOCH, |e| e.epoch);
        if h.producer_epoch < current {
            return Err(LogError::InvalidProducerEpoch(format!(
                "Epoch of producer {pid} at offset {offset} is {}, which is smaller than the last seen epoch {current}",
                h.producer_epoch
            )));
        }
        if h.producer_epoch != current {
            if h.base_sequence != 0 && current != NO_PRODUCER_EPOCH {
                return Err(LogError::OutOfOrderSequence(format!(
                    "Invalid sequence number for new epoch of producer {pid} at offset {offset}: {} (request epoch), {} (seq. number), {current} (current producer epoch)",
                    h.producer_epoch, h.base_sequence
                )));
            }
        } else {
            let last = entry.map_or(NO_SEQUENCE, ProducerEntry::last_seq);
            if current != NO_PRODUCER_EPOCH && !in_sequence(last, h.base_sequence) {
                return Err(LogError::OutOfOrderSequence(format!(
                    "Out of order sequence number for producer {pid} at offset {offset}: {} (incoming seq. number), {last} (current end sequence number)",
                    h.base_sequence
                )));
            }
        }
        Ok(None)
    }

    /// Validates a transaction marker for `producer_id` (Kafka's
    /// `appendEndTxnMarker` checks): a marker older than the producer's
    /// epoch would end a newer transaction.
    pub fn check_marker(&self, producer_id: i64, epoch: i16, coordinator_epoch: i32) -> Result<()> {
        match self.producers.get(&producer_id) {
            Some(e) if e.epoch > epoch => Err(LogError::InvalidProducerEpoch(format!(
                "Transaction marker of producer {producer_id} has epoch {epoch}, older than the current epoch {}",
                e.epoch
            ))),
            // Kafka's `checkCoordinatorEpoch`: the coordinator epoch (the
            // leader epoch of its __transaction_state partition) only grows.
            Some(e) if e.coordinator_epoch > coordinator_epoch => Err(LogError::CoordinatorFenced(format!(
                "Transaction marker of producer {producer_id} has coordinator epoch {coordinator_epoch}, \
                 older than the last coordinator epoch {} (a deposed transaction coordinator)",
                e.coordinator_epoch
            ))),
            _ => Ok(()),
        }
    }

    /// Records a stored batch (its header carries the assigned offsets).
    /// No validation: used after a checked append and when replaying the
    /// log. Batches without a producer id are ignored. A control batch
    /// (`marker` says which) ends the producer's open transaction here,
    /// which is returned.
    pub fn apply(&mut self, h: &BatchHeader, marker: Option<EndMarker>) -> Option<CompletedTxn> {
        if h.producer_id <= NO_PRODUCER_ID {
            return None;
        }
        if h.is_control() {
            // A transaction marker: it moves the epoch and ends the
            // producer's transaction.
            let e = self.producers.entry(h.producer_id).or_insert_with(|| ProducerEntry::empty(h.producer_id));
            e.update_epoch(h.producer_epoch);
            e.last_timestamp = h.max_timestamp;
            if let Some(m) = marker {
                e.coordinator_epoch = m.coordinator_epoch;
            }
            let first = std::mem::replace(&mut e.current_txn_first_offset, -1);
            if first < 0 {
                return None;
            }
            self.open_txns.remove(&first);
            // Computed here, between this producer's transaction ending and
            // the next batch, as Kafka computes it on append and recovery.
            let last_stable_offset = self.first_open_txn().unwrap_or(h.base_offset + 1);
            return marker.map(|m| CompletedTxn {
                producer_id: h.producer_id,
                first_offset: first,
                last_offset: h.base_offset,
                marker: m.marker,
                last_stable_offset,
            });
        }
        if !is_idempotent(h) {
            return None;
        }
        let e = self.producers.entry(h.producer_id).or_insert_with(|| ProducerEntry::empty(h.producer_id));
        e.add_batch(h.producer_epoch, BatchMetadata::of(h));
        if h.is_transactional() && e.current_txn_first_offset < 0 {
            e.current_txn_first_offset = h.base_offset;
            self.open_txns.insert(h.base_offset, h.producer_id);
        }
        None
    }

    /// Forgets producers idle for `producer.id.expiration.ms` (by their last
    /// batch's max timestamp, as Kafka does). Returns how many went.
    pub fn remove_expired(&mut self, now_ms: i64) -> usize {
        let before = self.producers.len();
        let ttl = self.expiration_ms;
        self.producers.retain(|_, e| !is_expired(e, now_ms, ttl));
        before - self.producers.len()
    }

    /// The state in Kafka's snapshot format.
    pub fn to_snapshot(&self) -> Vec<u8> {
        let mut ids: Vec<&i64> = self.producers.keys().collect();
        ids.sort_unstable();
        let mut out = Vec::with_capacity(SNAPSHOT_HEADER + ids.len() * SNAPSHOT_ENTRY);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&(ids.len() as i32).to_be_bytes());
        for id in ids {
            let e = &self.producers[id];
            let last = e.batches.back();
            out.extend_from_slice(&e.producer_id.to_be_bytes());
            out.extend_from_slice(&e.epoch.to_be_bytes());
            out.extend_from_slice(&last.map_or(NO_SEQUENCE, |b| b.last_seq).to_be_bytes());
            out.extend_from_slice(&last.map_or(-1i64, |b| b.last_offset).to_be_bytes());
            out.extend_from_slice(&last.map_or(0i32, |b| (b.last_offset - b.first_offset) as i32).to_be_bytes());
            out.extend_from_slice(&e.last_timestamp.to_be_bytes());
            out.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
            out.extend_from_slice(&e.current_txn_first_offset.to_be_bytes());
        }
        let crc = crate::batch::crc32c(&out[6..]);
        out[2..6].copy_from_slice(&crc.to_be_bytes());
        out
    }

    /// Reads a snapshot, leaving out producers already expired at `now_ms`.
    pub fn from_snapshot(bytes: &[u8], expiration_ms: i64, now_ms: i64) -> Result<ProducerStateManager, String> {
        if bytes.len() < SNAPSHOT_HEADER {
            return Err(format!("{} bytes cannot hold a snapshot header", bytes.len()));
        }
        let version = i16::from_be_bytes([bytes[0], bytes[1]]);
        if version != SNAPSHOT_VERSION {
            return Err(format!("unknown snapshot version {version}"));
        }
        let stored = u32::from_be_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]);
        let computed = crate::batch::crc32c(&bytes[6..]);
        if stored != computed {
            return Err(format!("CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"));
        }
        let count = i32::from_be_bytes([bytes[6], bytes[7], bytes[8], bytes[9]]);
        if count < 0 || bytes.len() != SNAPSHOT_HEADER + count as usize * SNAPSHOT_ENTRY {
            return Err(format!("{count} entries do not fit the snapshot's {} bytes", bytes.len()));
        }
        let mut psm = ProducerStateManager::new(expiration_ms);
        for raw in bytes[SNAPSHOT_HEADER..].chunks_exact(SNAPSHOT_ENTRY) {
            let mut r = Reader(raw);
            let producer_id = r.i64();
            let epoch = r.i16();
            let last_seq = r.i32();
            let last_offset = r.i64();
            let offset_delta = r.i32();
            let timestamp = r.i64();
            let coordinator_epoch = r.i32();
            let current_txn_first_offset = r.i64();
            if producer_id < 0 || offset_delta < 0 {
                return Err(format!("invalid entry: producer id {producer_id}, offset delta {offset_delta}"));
            }
            let mut e = ProducerEntry {
                epoch,
                last_timestamp: timestamp,
                coordinator_epoch,
                current_txn_first_offset,
                ..ProducerEntry::empty(producer_id)
            };
            if last_offset >= 0 {
                e.batches.push_back(BatchMetadata {
                    first_seq: decrement_sequence(last_seq, offset_delta),
                    last_seq,
                    first_offset: last_offset - offset_delta as i64,
                    last_offset,
                    max_timestamp: timestamp,
                });
            }
            if !is_expired(&e, now_ms, expiration_ms) {
                if e.current_txn_first_offset >= 0 {
                    psm.open_txns.insert(e.current_txn_first_offset, producer_id);
                }
                psm.producers.insert(producer_id, e);
            }
        }
        Ok(psm)
    }
}

fn is_expired(e: &ProducerEntry, now_ms: i64, ttl: i64) -> bool {
    e.current_txn_first_offset < 0 && now_ms.saturating_sub(e.last_timestamp) >= ttl
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0u8; N];
        a.copy_from_slice(&self.0[..N]);
        self.0 = &self.0[N..];
        a
    }
    fn i16(&mut self) -> i16 {
        i16::from_be_bytes(self.take())
    }
    fn i32(&mut self) -> i32 {
        i32::from_be_bytes(self.take())
    }
    fn i64(&mut self) -> i64 {
        i64::from_be_bytes(self.take())
    }
}

/// Replays the headers of one segment's batches that end at or after
/// `from` into `state` (headers only: 61 bytes per batch, plus the record
/// of each control batch). Transactions the replay sees end go to
/// `completed`. Returns how many batches were read.
pub fn replay(
    state: &mut ProducerStateManager,
    files: &SegmentFiles,
    size: u64,
    from: i64,
    completed: &mut Vec<CompletedTxn>,
) -> io::Result<u64> {
    let start = files.index.read().lookup(from)? as u64;
    let mut n = 0;
    let mut failed = None;
    segment::scan(&files.log, start, size, false, |pos, h| {
        if h.last_offset() >= from {
            let marker = if h.is_control() {
                match txn::read_marker(files, pos, h) {
                    Ok(m) => m,
                    Err(e) => {
                        failed = Some(e);
                        return false;
                    }
                }
            } else {
                None
            };
            completed.extend(state.apply(h, marker));
            n += 1;
        }
        true
    })?;
    match failed {
        Some(e) => Err(e),
        None => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{self, build};

    /// A stored idempotent batch header of `count` records.
    fn header(pid: i64, epoch: i16, seq: i32, count: i32, base_offset: i64) -> BatchHeader {
        let mut b = build::filled(count as usize, 4, 1_000, 0);
        build::set_producer(&mut b, pid, epoch, seq);
        let mut h = batch::validate_for_append(&b, 1 << 20).expect("valid");
        h.base_offset = base_offset;
        h
    }

    /// Checks and, when new, applies: what `Log::append` does.
    fn append(s: &mut ProducerStateManager, h: &BatchHeader) -> Result<Option<BatchMetadata>> {
        let dup = s.check(h, h.base_offset)?;
        if dup.is_none() {
            s.apply(h, None);
        }
        Ok(dup)
    }

    #[test]
    fn in_order_batches_append_and_a_retry_is_a_duplicate() {
        let mut s = ProducerStateManager::new(DEFAULT_PRODUCER_ID_EXPIRATION_MS);
        assert_eq!(append(&mut s, &header(7, 0, 0, 3, 0)).unwrap(), None);
        assert_eq!(append(&mut s, &header(7, 0, 3, 2, 3)).unwrap(), None);
        // Retry of the first batch, which would land at offset 5 now.
        let dup = append(&mut s, &header(7, 0, 0, 3, 5)).unwrap().expect("duplicate");
        assert_eq!((dup.first_offset, dup.last_offset, dup.first_seq, dup.last_seq), (0, 2, 0, 2));
        // Same start, different range: not a duplicate, and out of order.
        assert!(matches!(append(&mut s, &header(7, 0, 0, 2, 5)), Err(LogError::OutOfOrderSequence(_))));
        assert_eq!(s.get(7).unwrap().last_seq(), 4);
    }

    #[test]
    fn a_gap_is_out_of_order() {
        let mut s = ProducerStateManager::new(DEFAULT_PRODUCER_ID_EXPIRATION_MS);
        append(&mut s, &header(1, 0, 0, 2, 0)).unwrap();
        let err = append(&mut s, &header(1, 0, 3, 1, 2)).unwrap_err();
        assert!(matches!(err, LogError::OutOfOrderSequence(_)));
        assert!(err.to_string().contains("3 (incoming seq. number), 1 (current end sequence number)"), "{err}");
        // The refused batch changed nothing: the right one still fits.
        assert_eq!(append(&mut s, &header(1, 0, 2, 1, 2)).unwrap(), None);
    }

    #[test]
    fn unknown_producers_may_start_anywhere() {
        // KIP-360: the broker may have lost the state (expiry, retention).
        let mut s = ProducerStateManager::new(DEFAULT_PRODUCER_ID_EXPIRATION_MS);
        assert_eq!(append(&mut s, &header(9, 3, 1234, 2, 0)).unwrap(), None);
        assert_eq!(append(&mut s, &header(9, 3, 1236, 1, 2)).unwrap(), None);
    }

    #[test]
    fn stale_epoch_is_refused_and_new_epoch_starts_at_zero() {
        let mut s = ProducerStateManager::new(DEFAULT_PRODUCER_ID_EXPIRATION_MS);
        append(&mut s, &header(5, 2, 0, 2, 0)).unwrap();
        assert!(matches!(append(&mut s, &header(5, 1, 2, 1, 2)), Err(LogError::InvalidProducerEpoch(_))));
        // A bumped epoch must restart the sequence.
        assert!(matches!(append(&mut s, &header(5, 3, 2, 1, 2)), Err(LogError::OutOfOrderSequence(_))));
        assert_eq!(append(&mut s, &header(5, 3, 0, 1, 2)).unwrap(), None);
        let e = s.get(5).unwrap();
        assert_eq!((e.epoch, e.batches().count()), (3, 1), "an epoch bump drops the old window");
        // The old epoch's batch is no longer a duplicate: it is fenced.
        assert!(matches!(append(&mut s, &header(5, 2, 0, 2, 3)), Err(LogError::InvalidProducerEpoch(_))));
        assert_eq!(append(&mut s, &header(5, 3, 1, 1, 3)).unwrap(), None);
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        assert_eq!(increment_sequence(i32::MAX - 1, 2), 0);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(decrement_sequence(0, 2), i32::MAX - 1);
        assert_eq!(decrement_sequence(5, 2), 3);
        let mut s = ProducerStateManager::new(DEFAULT_PRODUCER_ID_EXPIRATION_MS);
        // Unknown producer at MAX-2: seqs MAX-2, MAX-1.
        append(&mut s, &header(3, 0, i32::MAX - 2, 2, 0)).unwrap();
        // MAX, 0, 1: spans the wrap.
        let h = header(3, 0, i32::MAX, 3, 2);
        assert_eq!(last_sequence(&h), 1);
        assert_eq!(append(&mut s, &h).unwrap(), None);
        assert!(matches!(append(&mut s, &header(3, 0, 3, 1, 5)), Err(LogError::OutOfOrderSequence(_))));
        assert_eq!(append(&mut s, &header(3, 0, 2, 1, 5)).unwrap(), None);
        // A retry of the wrapping batch is recognised.
        assert_eq!(append(&mut s, &header(3, 0, i32::MAX, 3, 6)).unwrap().map(|d| d.first_offset), Some(2));
        // After exactly MAX comes 0.
        let mut s = ProducerStateManager::new(DEFAULT_PRODUCER_ID_EXPIRATION_MS);
        append(&mut s, &header(4, 0, i32::MAX - 1, 2, 0)).unwrap();
        assert_eq!(append(&mut s, &header(4, 0, 0, 1, 2)).unwrap(), None);
    }

    #[test]
    fn the_duplicate_window_is_the_last_five_batches() {
        let mut s = ProducerStateManager::new(DEFAULT_PRODUCER_ID_EXPIRATION_MS);
        for i in 0..7 {
            append(&mut s, &header(2, 0, i * 2, 2, i as i64 * 2)).unwrap();
        }
        let e = s.get(2).unwrap();
        let seqs: Vec<i32> = e.batches().map(|b| b.first_seq).collect();
        assert_eq!(seqs, vec![4, 6, 8, 10, 12]);
        for i in 2..7 {
            let dup = append(&mut s, &header(2, 0, i * 2, 2, 14)).unwrap();
            assert_eq!(dup.map(|d| d.first_offset), Some(i as i64 * 2), "batch {i} is in the window");
        }
        // Batches 0 and 1 fell out of it: a retry now is out of order.
        assert!(matches!(append(&mut s, &header(2, 0, 2, 2, 14)), Err(LogError::OutOfOrderSequence(_))));
        assert!(matches!(append(&mut s, &header(2, 0, 0, 2, 14)), Err(LogError::OutOfOrderSequence(_))));
    }

    #[test]
    fn non_idempotent_batches_are_ignored() {
        let mut s = ProducerStateManager::new(DEFAULT_PRODUCER_ID_EXPIRATION_MS);
        let plain = batch::validate_for_append(&build::filled(2, 4, 1_000, 0), 1 << 20).unwrap();
        s.apply(&plain, None);
        assert!(s.is_empty());
        // A producer id without a sequence is not idempotent either.
        let mut b = build::filled(2, 4, 1_000, 0);
        build::set_producer(&mut b, 4, 0, -1);
        s.apply(&batch::validate_for_append(&b, 1 << 20).unwrap(), None);
        assert!(s.is_empty());
    }

    #[test]
    fn snapshot_round_trip_and_corruption() {
        let mut s = ProducerStateManager::new(DEFAULT_PRODUCER_ID_EXPIRATION_MS);
        append(&mut s, &header(10, 1, 0, 3, 0)).unwrap();
        append(&mut s, &header(10, 1, 3, 2, 3)).unwrap();
        append(&mut s, &header(11, 0, i32::MAX, 2, 5)).unwrap();
        let bytes = s.to_snapshot();
        assert_eq!(bytes.len(), SNAPSHOT_HEADER + 2 * SNAPSHOT_ENTRY);
        assert_eq!(&bytes[..2], &[0, 1]);
        let back = ProducerStateManager::from_snapshot(&bytes, DEFAULT_PRODUCER_ID_EXPIRATION_MS, 1_000).unwrap();
        // Only the last batch of each producer survives, as in Kafka.
        let e = back.get(10).unwrap();
        assert_eq!(
            e.batches().copied().collect::<Vec<_>>(),
            vec![BatchMetadata { first_seq: 3, last_seq: 4, first_offset: 3, last_offset: 4, max_timestamp: 1_000 }]
        );
        assert_eq!(e.epoch, 1);
        let e = back.get(11).unwrap();
        assert_eq!((e.batches().next().unwrap().first_seq, e.last_seq()), (i32::MAX, 0));
        let mut back = back;
        assert_eq!(back.check(&header(10, 1, 3, 2, 7), 7).unwrap().map(|d| d.first_offset), Some(3));
        assert_eq!(append(&mut back, &header(10, 1, 5, 1, 7)).unwrap(), None);
        for at in [0, 3, 7, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x40;
            assert!(
                ProducerStateManager::from_snapshot(&bad, DEFAULT_PRODUCER_ID_EXPIRATION_MS, 0).is_err(),
                "flip at {at}"
            );
        }
        assert!(ProducerStateManager::from_snapshot(&bytes[..bytes.len() - 1], DEFAULT_PRODUCER_ID_EXPIRATION_MS, 0)
            .is_err());
        assert!(ProducerStateManager::from_snapshot(&[], DEFAULT_PRODUCER_ID_EXPIRATION_MS, 0).is_err());
        let empty = ProducerStateManager::new(1).to_snapshot();
        assert!(ProducerStateManager::from_snapshot(&empty, 1, 0).unwrap().is_empty());
    }

    #[test]
    fn snapshot_bytes_match_kafkas_layout() {
        let mut s = ProducerStateManager::new(DEFAULT_PRODUCER_ID_EXPIRATION_MS);
        append(&mut s, &header(0x0102, 3, 4, 2, 0x10)).unwrap();
        let b = s.to_snapshot();
        let mut want = vec![0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        want.extend(0x0102i64.to_be_bytes()); // producer_id
        want.extend(3i16.to_be_bytes()); // epoch
        want.extend(5i32.to_be_bytes()); // last_sequence
        want.extend(0x11i64.to_be_bytes()); // last_offset
        want.extend(1i32.to_be_bytes()); // offset_delta
        want.extend(1_000i64.to_be_bytes()); // timestamp
        want.extend((-1i32).to_be_bytes()); // coordinator_epoch
        want.extend((-1i64).to_be_bytes()); // current_txn_first_offset
        let crc = crate::batch::crc32c(&want[6..]);
        want[2..6].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(b, want);
    }

    #[test]
    fn idle_producers_expire() {
        let mut s = ProducerStateManager::new(10_000);
        append(&mut s, &header(1, 0, 0, 1, 0)).unwrap(); // ts 1000
        let mut h = header(2, 0, 0, 1, 1);
        h.max_timestamp = 5_000;
        append(&mut s, &h).unwrap();
        assert_eq!(s.remove_expired(10_999), 0);
        assert_eq!(s.remove_expired(11_000), 1);
        assert!(s.get(1).is_none() && s.get(2).is_some());
        // Expired producers are left out when a snapshot is loaded too.
        let bytes = s.to_snapshot();
        assert_eq!(ProducerStateManager::from_snapshot(&bytes, 10_000, 14_999).unwrap().len(), 1);
        assert_eq!(ProducerStateManager::from_snapshot(&bytes, 10_000, 15_000).unwrap().len(), 0);
        // Once forgotten, the producer may continue at any sequence.
        assert_eq!(append(&mut s, &header(1, 0, 77, 1, 2)).unwrap(), None);
    }

    #[test]
    fn snapshot_files_keep_the_latest_and_skip_corrupt_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut snaps = Snapshots::scan(dir.path()).unwrap();
        let mut s = ProducerStateManager::new(DEFAULT_PRODUCER_ID_EXPIRATION_MS);
        append(&mut s, &header(1, 0, 0, 1, 0)).unwrap();
        snaps.write(1, &s.to_snapshot(), false).unwrap();
        append(&mut s, &header(1, 0, 1, 1, 1)).unwrap();
        snaps.write(2, &s.to_snapshot(), true).unwrap();
        append(&mut s, &header(1, 0, 2, 1, 2)).unwrap();
        snaps.write(3, &s.to_snapshot(), false).unwrap();
        std::fs::write(dir.path().join("junk.snapshot"), b"x").unwrap();
        let mut snaps = Snapshots::scan(dir.path()).unwrap();
        assert_eq!(snaps.offsets(), vec![1, 2, 3]);
        snaps.retain_latest(2).unwrap();
        assert_eq!(snaps.offsets(), vec![2, 3]);
        assert!(!dir.path().join(snapshot_file_name(1)).exists());
        // Corrupt the newest: the one before is used, and it is reported.
        let p3 = dir.path().join(snapshot_file_name(3));
        let mut b = std::fs::read(&p3).unwrap();
        let n = b.len();
        b[n - 3] ^= 1;
        std::fs::write(&p3, b).unwrap();
        let mut report = Vec::new();
        let (at, st) = snaps.load_latest(10, DEFAULT_PRODUCER_ID_EXPIRATION_MS, 0, &mut report).unwrap().unwrap();
        assert_eq!(at, 2);
        assert_eq!(st.get(1).unwrap().last_seq(), 1);
        assert_eq!(report.len(), 1);
        assert!(report[0].contains("00000000000000000003.snapshot") && report[0].contains("corrupt"), "{report:?}");
        assert!(!p3.exists());
        // Snapshots above the end are not candidates, and can be dropped.
        let mut report = Vec::new();
        assert!(snaps.load_latest(1, DEFAULT_PRODUCER_ID_EXPIRATION_MS, 0, &mut report).unwrap().is_none());
        snaps.delete_above(1).unwrap();
        assert!(snaps.offsets().is_empty());
    }
}
