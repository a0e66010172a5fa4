//! Transactions as the partition log sees them: control batches (commit and
//! abort markers), the aborted-transaction index (`.txnindex`) and the last
//! stable offset.
//!
//! - A control batch (attributes transactional + control) holds one record:
//!   key `version i16 = 0 | type i16` (0 abort, 1 commit), value
//!   `version i16 = 0 | coordinator_epoch i32`, as Kafka's
//!   `EndTransactionMarker`. The transaction coordinator writes them; clients
//!   never may (`Log::append_client` refuses them).
//! - A transaction of a producer on this partition spans from its first
//!   transactional batch to its marker. `ProducerStateManager` tracks the
//!   open ones; this module keeps what outlives them: every aborted
//!   transaction's range, persisted per segment in Kafka's `.txnindex`
//!   format (34-byte entries: `version i16 = 0 | producer_id i64 |
//!   first_offset i64 | last_offset i64 | last_stable_offset i64`) in the
//!   segment that holds the abort marker, and the completed transactions
//!   whose marker is not yet below the high watermark.
//! - The last stable offset (LSO) is the smallest first offset of a
//!   transaction that is open or whose marker is not yet below the high
//!   watermark, and otherwise the high watermark: read_committed consumers
//!   read below it and skip the aborted ranges.
//!
//! Invariant: the aborted list is ordered by `last_offset` (marker offsets
//! only grow) and holds exactly the aborts whose marker is in the log;
//! `.txnindex` files may lag it after a crash and are completed from the
//! log at open.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::batch::{self, build, BatchHeader, HEADER_LEN};
use crate::segment;

/// `ControlRecordType`: what a marker ends a transaction with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    Abort,
    Commit,
}

impl Marker {
    fn code(self) -> i16 {
        match self {
            Marker::Abort => 0,
            Marker::Commit => 1,
        }
    }
}

/// What a control batch says: the outcome and the epoch of the transaction
/// coordinator that wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndMarker {
    pub marker: Marker,
    pub coordinator_epoch: i32,
}

/// A transaction that ended on this partition (its marker was appended).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompletedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The marker's offset.
    pub last_offset: i64,
    pub marker: Marker,
    /// What an abort's `.txnindex` entry records as its LSO (Kafka's
    /// `ProducerStateManager.lastStableOffset(CompletedTxn)`): the first
    /// offset of the oldest transaction still open on the partition when
    /// the marker is appended (another producer's: this one just ended),
    /// else the marker's offset + 1. It depends on the log alone, not on
    /// the high watermark, so a leader, its followers and a recovery
    /// replaying the log all record the same value.
    pub last_stable_offset: i64,
}

/// One `.txnindex` entry: an aborted transaction's offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
    /// [`CompletedTxn::last_stable_offset`] of the abort: Kafka's search of
    /// the index may stop at an entry whose LSO reaches the fetch's upper
    /// bound (no later abort can start below it).
    pub last_stable_offset: i64,
}

pub const TXN_INDEX_ENTRY: usize = 34;
const TXN_INDEX_VERSION: i16 = 0;

impl AbortedTxn {
    pub fn to_bytes(&self) -> [u8; TXN_INDEX_ENTRY] {
        let mut out = [0u8; TXN_INDEX_ENTRY];
        out[0..2].copy_from_slice(&TXN_INDEX_VERSION.to_be_bytes());
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        out
    }

    /// An entry, or `None` for bytes that cannot be one (torn write,
    /// garbage): the reader stops there.
    pub fn from_bytes(b: &[u8]) -> Option<AbortedTxn> {
        if b.len() < TXN_INDEX_ENTRY || i16::from_be_bytes([b[0], b[1]]) != TXN_INDEX_VERSION {
            return None;
        }
        let at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            i64::from_be_bytes(a)
        };
        let e =
            AbortedTxn { producer_id: at(2), first_offset: at(10), last_offset: at(18), last_stable_offset: at(26) };
        (e.producer_id >= 0 && e.first_offset >= 0 && e.first_offset <= e.last_offset).then_some(e)
    }
}

/// The path of a segment's aborted-transaction index.
pub fn txn_index_path(dir: &Path, base: i64) -> PathBuf {
    dir.join(segment::file_name(base, "txnindex"))
}

/// Reads a `.txnindex`: its valid entries up to the first bad one, and
/// whether the file had to be cut there.
pub fn read_txn_index(path: &Path) -> io::Result<(Vec<AbortedTxn>, bool)> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), false)),
        Err(e) => return Err(e),
    };
    let mut out = Vec::with_capacity(bytes.len() / TXN_INDEX_ENTRY);
    for chunk in bytes.chunks(TXN_INDEX_ENTRY) {
        match AbortedTxn::from_bytes(chunk) {
            Some(e) if out.last().is_none_or(|l: &AbortedTxn| l.last_offset < e.last_offset) => out.push(e),
            _ => return Ok((out, true)),
        }
    }
    Ok((out, false))
}

/// Rewrites a `.txnindex` to hold exactly `entries` (none: the file goes),
/// fsynced before it replaces the old one.
pub fn write_txn_index(path: &Path, entries: &[AbortedTxn]) -> io::Result<()> {
    if entries.is_empty() {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    // Atomically and durably: a crash leaves the old index or the new one.
    let bytes: Vec<u8> = entries.iter().flat_map(|e| e.to_bytes()).collect();
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&bytes)?;
    f.sync_data()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Appends one entry to a segment's `.txnindex` (created on first use).
/// Not fsynced here: the log fsyncs it with the segment, and recovery
/// completes it from the markers in the log.
pub fn append_txn_index(path: &Path, entry: &AbortedTxn) -> io::Result<std::fs::File> {
    let mut f = OpenOptions::new().create(true).append(true).open(path)?;
    f.write_all(&entry.to_bytes())?;
    Ok(f)
}

/// Builds a commit or abort marker batch for `producer_id`/`epoch` (base
/// offset 0: the log assigns it).
pub fn build_marker(producer_id: i64, epoch: i16, coordinator_epoch: i32, marker: Marker, timestamp: i64) -> Vec<u8> {
    let mut key = [0u8; 4];
    key[2..4].copy_from_slice(&marker.code().to_be_bytes());
    let mut value = [0u8; 6];
    value[2..6].copy_from_slice(&coordinator_epoch.to_be_bytes());
    let record = build::Record { key: Some(&key), value: Some(&value), timestamp_delta: 0 };
    let mut b = build::batch(&[record], timestamp, producer_id);
    build::set_attributes(&mut b, batch::ATTR_TRANSACTIONAL | batch::ATTR_CONTROL);
    build::set_producer(&mut b, producer_id, epoch, -1);
    b
}

use crate::varint::get as read_varint;

/// The marker a control batch carries, or `None` if `batch` is not a
/// well-formed control batch (Kafka ignores unknown control types too).
pub fn parse_marker(header: &BatchHeader, batch: &[u8]) -> Option<EndMarker> {
    if !header.is_control() || header.compression() != 0 {
        return None;
    }
    let mut pos = HEADER_LEN;
    let _len = read_varint(batch, &mut pos)?;
    pos += 1; // record attributes
    read_varint(batch, &mut pos)?; // timestamp delta
    read_varint(batch, &mut pos)?; // offset delta
    let key_len = usize::try_from(read_varint(batch, &mut pos)?).ok()?;
    let key = batch.get(pos..pos + key_len)?;
    if key_len < 4 {
        return None;
    }
    let marker = match i16::from_be_bytes([key[2], key[3]]) {
        0 => Marker::Abort,
        1 => Marker::Commit,
        _ => return None,
    };
    pos += key_len;
    // Value: version i16 | coordinator epoch i32.
    let value_len = usize::try_from(read_varint(batch, &mut pos)?).ok()?;
    let value = batch.get(pos..pos + value_len)?;
    let coordinator_epoch = match value {
        [_, _, a, b, c, d, ..] => i32::from_be_bytes([*a, *b, *c, *d]),
        _ => return None,
    };
    Some(EndMarker { marker, coordinator_epoch })
}

/// The partition's transaction bookkeeping beyond the producer state.
#[derive(Clone, Debug, Default)]
pub struct TxnLog {
    /// Every aborted transaction whose marker is in the log, by marker.
    aborted: Vec<AbortedTxn>,
    /// Completed transactions whose marker may not be below the high
    /// watermark yet: first offset -> marker offset.
    unstable: BTreeMap<i64, i64>,
}

impl TxnLog {
    pub fn new(aborted: Vec<AbortedTxn>) -> TxnLog {
        TxnLog { aborted, unstable: BTreeMap::new() }
    }

    pub fn aborted(&self) -> &[AbortedTxn] {
        &self.aborted
    }

    /// Records a completed transaction; an abort becomes an index entry,
    /// returned so the caller can persist it. Idempotent per marker offset
    /// (recovery replays markers the index may already hold).
    pub fn complete(&mut self, done: &CompletedTxn) -> Option<AbortedTxn> {
        self.unstable.insert(done.first_offset, done.last_offset);
        if done.marker != Marker::Abort || self.aborted.last().is_some_and(|l| l.last_offset >= done.last_offset) {
            return None;
        }
        let entry = AbortedTxn {
            producer_id: done.producer_id,
            first_offset: done.first_offset,
            last_offset: done.last_offset,
            last_stable_offset: done.last_stable_offset,
        };
        debug_assert!(entry.last_stable_offset <= entry.last_offset + 1, "nothing past the marker is stable yet");
        self.aborted.push(entry);
        Some(entry)
    }

    /// The last stable offset given the first offset of the oldest open
    /// transaction and the high watermark.
    pub fn last_stable_offset(&mut self, first_open: Option<i64>, high_watermark: i64) -> i64 {
        self.unstable.retain(|_, marker| *marker >= high_watermark);
        let first_unstable = self.unstable.keys().next().copied();
        [first_open, first_unstable].into_iter().flatten().fold(high_watermark, i64::min)
    }

    /// Aborted transactions a read of `[start, upper)` must be told about:
    /// those that end at or after `start` and begin below `upper`.
    pub fn aborted_between(&self, start: i64, upper: i64) -> Vec<AbortedTxn> {
        let from = self.aborted.partition_point(|a| a.last_offset < start);
        self.aborted[from..].iter().filter(|a| a.first_offset < upper).copied().collect()
    }

    /// Forgets everything at or past `end` (truncation).
    pub fn truncate(&mut self, end: i64) {
        self.aborted.retain(|a| a.last_offset < end);
        self.unstable.retain(|_, marker| *marker < end);
    }

    /// Forgets aborts whose marker lies below `offset` (their segment was
    /// deleted).
    pub fn drop_below(&mut self, offset: i64) {
        let n = self.aborted.partition_point(|a| a.last_offset < offset);
        self.aborted.drain(..n);
    }
}

/// The marker of the control batch at `pos` of a segment (headers alone do
/// not say commit or abort). Control batches are tiny and rare.
pub fn read_marker(files: &segment::SegmentFiles, pos: u64, header: &BatchHeader) -> io::Result<Option<EndMarker>> {
    let bytes = segment::read_batch(files, pos, header.total_len())?;
    Ok(parse_marker(header, &bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_and_validate() {
        for m in [Marker::Abort, Marker::Commit] {
            let b = build_marker(7, 3, 11, m, 1000);
            let h = batch::validate_for_append(&b, 1 << 20).expect("a valid batch");
            assert!(h.is_control() && h.is_transactional());
            assert_eq!((h.producer_id, h.producer_epoch, h.base_sequence), (7, 3, -1));
            assert_eq!(parse_marker(&h, &b), Some(EndMarker { marker: m, coordinator_epoch: 11 }));
        }
        let data = build::filled(1, 4, 0, 0);
        let h = batch::BatchHeader::parse(&data).unwrap();
        assert_eq!(parse_marker(&h, &data), None);
    }

    #[test]
    fn index_entries_round_trip_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = txn_index_path(dir.path(), 0);
        let a = AbortedTxn { producer_id: 1, first_offset: 5, last_offset: 9, last_stable_offset: 5 };
        let b = AbortedTxn { producer_id: 2, first_offset: 7, last_offset: 12, last_stable_offset: 7 };
        append_txn_index(&path, &a).unwrap();
        append_txn_index(&path, &b).unwrap();
        assert_eq!(read_txn_index(&path).unwrap(), (vec![a, b], false));
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[0, 0, 1, 2, 3]).unwrap();
        assert_eq!(read_txn_index(&path).unwrap(), (vec![a, b], true));
        write_txn_index(&path, &[a]).unwrap();
        assert_eq!(read_txn_index(&path).unwrap(), (vec![a], false));
        write_txn_index(&path, &[]).unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn last_stable_offset_waits_for_open_and_unreplicated_transactions() {
        let mut t = TxnLog::default();
        assert_eq!(t.last_stable_offset(None, 10), 10);
        assert_eq!(t.last_stable_offset(Some(4), 10), 4);
        let done = CompletedTxn {
            producer_id: 1,
            first_offset: 4,
            last_offset: 10,
            marker: Marker::Abort,
            last_stable_offset: 11,
        };
        let entry = t.complete(&done).expect("an abort is indexed");
        assert_eq!((entry.last_offset, entry.last_stable_offset), (10, 11));
        // The marker at 10 is not below the high watermark yet.
        assert_eq!(t.last_stable_offset(None, 10), 4);
        assert_eq!(t.last_stable_offset(None, 11), 11);
        assert_eq!(t.complete(&done), None, "replaying a marker twice indexes it once");
        assert_eq!(t.aborted_between(0, 4), vec![]);
        assert_eq!(t.aborted_between(5, 6), vec![entry]);
        assert_eq!(t.aborted_between(11, 20), vec![]);
        t.truncate(10);
        assert!(t.aborted().is_empty());
    }
}
