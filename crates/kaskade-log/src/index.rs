//! Sparse indexes beside each segment, in Kafka's entry formats:
//!
//! - `.index`: 8-byte entries `relative offset u32 | file position u32`,
//!   mapping the last offset of a batch to the position where the batch starts;
//! - `.timeindex`: 12-byte entries `timestamp i64 | relative offset u32`,
//!   the largest timestamp seen so far and the offset where it was reached.
//!
//! Entries are looked up with `pread` (binary search), so an idle partition
//! holds no index in memory; hot pages stay in the page cache. Appended
//! entries gather in a small in-memory tail and reach the file with one
//! `pwrite` per `TAIL_ENTRIES`, at a sync (before the fsync, so the file is
//! complete below every recovery point), at a seal and on drop: an append
//! costs no system call, as Kafka's memory-mapped indexes cost none. A tail
//! lost in a crash only leaves the index sparser, and recovery re-indexes
//! everything past the recovery point anyway. Indexes are never trusted
//! blindly: `load` validates every entry and the caller rebuilds the index
//! from the log when it fails.
//!
//! Descriptors ([`Descriptor`]): a closed segment's index holds its file open
//! (the handle cache bounds how many closed segments are open); the active
//! segment's index holds none and opens its file for each operation that
//! reaches the disk (a lookup past the tail, a tail write, a sync, a cut), so
//! an idle partition costs one descriptor, its `.log`, instead of three (Kafka
//! maps its indexes and closes their descriptors). Invariant: such an
//! operation only ever reaches the file the index created or opened: the
//! file's identity (device, inode, creation time) is checked at each open, so a segment
//! deleted and recreated at the same base is never written by the old
//! index, and a vanished or replaced file is an error (`NotFound`), except
//! for a sync or a drop, where it means the segment was deleted and its
//! entries belong to nobody.

use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Deref;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Appended entries gathered before one `pwrite`.
const TAIL_ENTRIES: u64 = 64;

/// How an index reaches its file.
#[derive(Debug)]
pub enum Descriptor {
    /// Open for the index's whole life (closed segments, through the
    /// handle cache; the cleaner's `.cleaned` files, which get renamed).
    Held(File),
    /// Opened per operation: the active segment's indexes. `dev`, `ino`
    /// and `born` (the creation time, where the filesystem keeps one, so a
    /// recycled inode number is not taken for the same file) identify the
    /// file found or created at open.
    OnDemand { path: PathBuf, dev: u64, ino: u64, born: Option<SystemTime> },
}

impl Descriptor {
    /// The file, reopened by path for an on-demand index (never created: a
    /// missing file stays missing, and a different file at the path is
    /// refused).
    fn access(&self) -> io::Result<Access<'_>> {
        match self {
            Descriptor::Held(file) => Ok(Access::Borrowed(file)),
            Descriptor::OnDemand { path, dev, ino, born } => {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(path)
                    .map_err(|e| io::Error::new(e.kind(), format!("reopening index {}: {e}", path.display())))?;
                let meta = file.metadata()?;
                if (meta.dev(), meta.ino()) != (*dev, *ino) || meta.created().ok() != *born {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("index {} was replaced by another file", path.display()),
                    ));
                }
                Ok(Access::Opened(file))
            }
        }
    }
}

/// The file an operation works on: the held one, or one opened for it.
enum Access<'a> {
    Borrowed(&'a File),
    Opened(File),
}

impl Deref for Access<'_> {
    type Target = File;
    fn deref(&self) -> &File {
        match self {
            Access::Borrowed(f) => f,
            Access::Opened(f) => f,
        }
    }
}

/// Whether `e` says an on-demand index's file is gone from its path (the
/// segment was deleted, or deleted and recreated).
fn is_vanished(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

/// One index file with fixed-size entries.
#[derive(Debug)]
pub struct IndexFile {
    descriptor: Descriptor,
    entry_size: u64,
    /// Entries in the file.
    written: u64,
    /// Entries appended after those, not yet written.
    tail: Vec<u8>,
    max_entries: u64,
}

impl IndexFile {
    /// Opens (creating it if missing) and keeps the descriptor.
    pub fn open(path: &Path, entry_size: u64, max_bytes: u64) -> io::Result<IndexFile> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        let len = file.metadata()?.len();
        Ok(IndexFile::new(Descriptor::Held(file), len, entry_size, max_bytes))
    }

    /// Opens (creating it if missing), notes the file's identity and closes
    /// it again: later operations reopen it by path.
    pub fn open_on_demand(path: &Path, entry_size: u64, max_bytes: u64) -> io::Result<IndexFile> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        let meta = file.metadata()?;
        let descriptor = Descriptor::OnDemand {
            path: path.to_path_buf(),
            dev: meta.dev(),
            ino: meta.ino(),
            born: meta.created().ok(),
        };
        Ok(IndexFile::new(descriptor, meta.len(), entry_size, max_bytes))
    }

    fn new(descriptor: Descriptor, len: u64, entry_size: u64, max_bytes: u64) -> IndexFile {
        IndexFile {
            descriptor,
            entry_size,
            written: len / entry_size,
            tail: Vec::new(),
            max_entries: (max_bytes / entry_size).max(2),
        }
    }

    /// Whether this index holds a descriptor.
    pub fn holds_descriptor(&self) -> bool {
        matches!(self.descriptor, Descriptor::Held(_))
    }

    fn access(&self) -> io::Result<Access<'_>> {
        self.descriptor.access()
    }

    pub fn entries(&self) -> u64 {
        self.written + self.tail.len() as u64 / self.entry_size
    }

    /// Whether `pending` entries still to be written plus one more would
    /// not fit in `segment.index.bytes`. One slot is kept back so a closing
    /// segment can always record its final max-timestamp entry.
    pub fn is_full(&self, pending: u64) -> bool {
        self.entries() + pending + 1 >= self.max_entries
    }

    /// Every entry, the unwritten tail included.
    pub fn read_all(&self) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; (self.written * self.entry_size) as usize];
        if !buf.is_empty() {
            self.access()?.read_exact_at(&mut buf, 0)?;
        }
        buf.extend_from_slice(&self.tail);
        Ok(buf)
    }

    fn read_entry(&self, i: u64, out: &mut [u8]) -> io::Result<()> {
        self.read_entry_in(None, i, out)
    }

    /// Reads entry `i` from the tail or from the file: `file` when the
    /// caller already has it (a binary search opens it once), else opened.
    fn read_entry_in(&self, file: Option<&File>, i: u64, out: &mut [u8]) -> io::Result<()> {
        if i >= self.written {
            let at = ((i - self.written) * self.entry_size) as usize;
            let entry =
                self.tail.get(at..at + out.len()).ok_or_else(|| io::Error::other("index entry out of range"))?;
            out.copy_from_slice(entry);
            return Ok(());
        }
        match file {
            Some(f) => f.read_exact_at(out, i * self.entry_size),
            None => self.access()?.read_exact_at(out, i * self.entry_size),
        }
    }

    fn append(&mut self, entry: &[u8]) -> io::Result<()> {
        self.tail.extend_from_slice(entry);
        if self.tail.len() as u64 >= TAIL_ENTRIES * self.entry_size {
            self.write_tail()?;
        }
        Ok(())
    }

    /// Writes the gathered entries to the file (no fsync).
    pub fn write_tail(&mut self) -> io::Result<()> {
        if self.tail.is_empty() {
            return Ok(());
        }
        self.access()?.write_all_at(&self.tail, self.written * self.entry_size)?;
        self.written += self.tail.len() as u64 / self.entry_size;
        self.tail.clear();
        Ok(())
    }

    pub fn truncate_entries(&mut self, n: u64) -> io::Result<()> {
        if n >= self.written {
            let keep = ((n - self.written) * self.entry_size) as usize;
            self.tail.truncate(keep);
            return Ok(());
        }
        self.access()?.set_len(n * self.entry_size)?;
        self.tail.clear();
        self.written = n;
        Ok(())
    }

    /// Writes the tail and makes the file durable. An on-demand index whose
    /// file is gone belongs to a deleted segment: nothing to make durable
    /// (and were the segment still wanted, a missing index is rebuilt from
    /// the log at open).
    pub fn sync(&mut self) -> io::Result<()> {
        // Only the descriptor is borrowed: the tail and counts change below.
        let file = match self.descriptor.access() {
            Ok(file) => file,
            Err(e) if is_vanished(&e) && !self.holds_descriptor() => {
                tracing::debug!(error = %e, "not syncing the index of a deleted segment");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if !self.tail.is_empty() {
            file.write_all_at(&self.tail, self.written * self.entry_size)?;
            self.written += self.tail.len() as u64 / self.entry_size;
            self.tail.clear();
        }
        file.sync_data()
    }

    /// Binary search for the last entry whose key (decoded by `key`) is <= target.
    fn floor<K: Ord>(&self, target: K, key: impl Fn(&[u8]) -> K) -> io::Result<Option<Vec<u8>>> {
        let (mut lo, mut hi) = (0u64, self.entries());
        let mut buf = vec![0u8; self.entry_size as usize];
        let mut best = None;
        // One open for the whole search, and none when it stays in the tail.
        let mut file = None;
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if mid < self.written && file.is_none() {
                file = Some(self.access()?);
            }
            self.read_entry_in(file.as_deref(), mid, &mut buf)?;
            if key(&buf) <= target {
                best = Some(buf.clone());
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(best)
    }
}

impl Drop for IndexFile {
    /// Best effort: a tail that cannot be written only leaves the index
    /// sparser, which lookups tolerate. An on-demand index whose file is
    /// gone belongs to a deleted segment: nothing to write.
    fn drop(&mut self) {
        match self.write_tail() {
            Ok(()) => {}
            Err(e) if is_vanished(&e) && !self.holds_descriptor() => {}
            Err(e) => tracing::warn!(error = %e, "writing the last index entries failed"),
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

pub const OFFSET_ENTRY: u64 = 8;
pub const TIME_ENTRY: u64 = 12;

/// `.index`: relative offset -> position.
#[derive(Debug)]
pub struct OffsetIndex {
    pub file: IndexFile,
    base: i64,
}

impl OffsetIndex {
    pub fn open(path: &Path, base: i64, max_bytes: u64) -> io::Result<OffsetIndex> {
        Ok(OffsetIndex { file: IndexFile::open(path, OFFSET_ENTRY, max_bytes)?, base })
    }

    /// An active segment's index: no descriptor held (see [`Descriptor`]).
    pub fn open_on_demand(path: &Path, base: i64, max_bytes: u64) -> io::Result<OffsetIndex> {
        Ok(OffsetIndex { file: IndexFile::open_on_demand(path, OFFSET_ENTRY, max_bytes)?, base })
    }

    pub fn append(&mut self, offset: i64, position: u32) -> io::Result<()> {
        let mut e = [0u8; 8];
        e[0..4].copy_from_slice(&((offset - self.base) as u32).to_be_bytes());
        e[4..8].copy_from_slice(&position.to_be_bytes());
        self.file.append(&e)
    }

    /// Position to start scanning from for `offset` (0 if no entry is <= it).
    pub fn lookup(&self, offset: i64) -> io::Result<u32> {
        if offset < self.base {
            return Ok(0);
        }
        let rel = (offset - self.base).min(u32::MAX as i64) as u32;
        Ok(self.file.floor(rel, |e| u32_at(e, 0))?.map(|e| u32_at(&e, 4)).unwrap_or(0))
    }

    /// All entries as (absolute offset, position), validated: strictly
    /// increasing offsets, non-decreasing positions, positions inside the
    /// log, offsets inside `[base, next_offset)` when known.
    pub fn load_validated(&self, log_size: u64, next_offset: Option<i64>) -> Result<Vec<(i64, u32)>, String> {
        let raw = self.file.read_all().map_err(|e| e.to_string())?;
        if !(raw.len() as u64).is_multiple_of(OFFSET_ENTRY) {
            return Err(format!("index size {} is not a multiple of {OFFSET_ENTRY}", raw.len()));
        }
        let mut out = Vec::with_capacity(raw.len() / 8);
        let mut prev: Option<(i64, u32)> = None;
        for e in raw.chunks_exact(8) {
            let off = self.base + u32_at(e, 0) as i64;
            let pos = u32_at(e, 4);
            if pos as u64 >= log_size.max(1) {
                return Err(format!("entry position {pos} is past the log's {log_size} bytes"));
            }
            if let Some(n) = next_offset {
                if off >= n {
                    return Err(format!("entry offset {off} is past the segment end {n}"));
                }
            }
            if let Some((po, pp)) = prev {
                if off <= po || pos < pp {
                    return Err(format!("entries out of order: ({po},{pp}) then ({off},{pos})"));
                }
            }
            prev = Some((off, pos));
            out.push((off, pos));
        }
        Ok(out)
    }
}

/// `.timeindex`: max timestamp so far -> relative offset.
#[derive(Debug)]
pub struct TimeIndex {
    pub file: IndexFile,
    base: i64,
    last: Option<(i64, i64)>,
}

impl TimeIndex {
    pub fn open(path: &Path, base: i64, max_bytes: u64) -> io::Result<TimeIndex> {
        TimeIndex::with_file(IndexFile::open(path, TIME_ENTRY, max_bytes)?, base)
    }

    /// An active segment's time index: no descriptor held (see [`Descriptor`]).
    pub fn open_on_demand(path: &Path, base: i64, max_bytes: u64) -> io::Result<TimeIndex> {
        TimeIndex::with_file(IndexFile::open_on_demand(path, TIME_ENTRY, max_bytes)?, base)
    }

    fn with_file(file: IndexFile, base: i64) -> io::Result<TimeIndex> {
        let mut ti = TimeIndex { file, base, last: None };
        if ti.file.entries() > 0 {
            let mut e = [0u8; 12];
            ti.file.read_entry(ti.file.entries() - 1, &mut e)?;
            ti.last = Some((i64_at(&e, 0), base + u32_at(&e, 8) as i64));
        }
        Ok(ti)
    }

    pub fn last_entry(&self) -> Option<(i64, i64)> {
        self.last
    }

    /// Appends only if `timestamp` is larger than the last entry's (Kafka's
    /// `maybeAppend`).
    pub fn maybe_append(&mut self, timestamp: i64, offset: i64) -> io::Result<()> {
        if self.last.is_some_and(|(ts, _)| timestamp <= ts) {
            return Ok(());
        }
        let mut e = [0u8; 12];
        e[0..8].copy_from_slice(&timestamp.to_be_bytes());
        e[8..12].copy_from_slice(&((offset - self.base) as u32).to_be_bytes());
        self.file.append(&e)?;
        self.last = Some((timestamp, offset));
        Ok(())
    }

    /// The entry with the largest timestamp <= `timestamp`, as (ts, offset).
    pub fn lookup(&self, timestamp: i64) -> io::Result<Option<(i64, i64)>> {
        Ok(self.file.floor(timestamp, |e| i64_at(e, 0))?.map(|e| (i64_at(&e, 0), self.base + u32_at(&e, 8) as i64)))
    }

    pub fn truncate_entries(&mut self, n: u64) -> io::Result<()> {
        self.file.truncate_entries(n)?;
        self.last = None;
        if n > 0 {
            let mut e = [0u8; 12];
            self.file.read_entry(n - 1, &mut e)?;
            self.last = Some((i64_at(&e, 0), self.base + u32_at(&e, 8) as i64));
        }
        Ok(())
    }

    pub fn load_validated(&self, next_offset: Option<i64>) -> Result<Vec<(i64, i64)>, String> {
        let raw = self.file.read_all().map_err(|e| e.to_string())?;
        if !(raw.len() as u64).is_multiple_of(TIME_ENTRY) {
            return Err(format!("time index size {} is not a multiple of {TIME_ENTRY}", raw.len()));
        }
        let mut out = Vec::with_capacity(raw.len() / 12);
        let mut prev: Option<(i64, i64)> = None;
        for e in raw.chunks_exact(12) {
            let ts = i64_at(e, 0);
            let off = self.base + u32_at(e, 8) as i64;
            if let Some(n) = next_offset {
                if off >= n {
                    return Err(format!("time entry offset {off} is past the segment end {n}"));
                }
            }
            if let Some((pt, po)) = prev {
                if ts <= pt || off < po {
                    return Err(format!("time entries out of order: ({pt},{po}) then ({ts},{off})"));
                }
            }
            prev = Some((ts, off));
            out.push((ts, off));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_floor_lookup_and_validation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut idx = OffsetIndex::open(&dir.path().join("0.index"), 100, 1 << 20).expect("open");
        assert_eq!(idx.lookup(150).expect("lookup"), 0);
        idx.append(110, 4096).expect("append");
        idx.append(130, 8192).expect("append");
        assert_eq!(idx.lookup(109).expect("lookup"), 0);
        assert_eq!(idx.lookup(110).expect("lookup"), 4096);
        assert_eq!(idx.lookup(129).expect("lookup"), 4096);
        assert_eq!(idx.lookup(1000).expect("lookup"), 8192);
        assert_eq!(idx.load_validated(10_000, Some(200)).expect("valid").len(), 2);
        assert!(idx.load_validated(5000, Some(200)).is_err(), "position past log end");
        assert!(idx.load_validated(10_000, Some(120)).is_err(), "offset past segment end");
    }

    #[test]
    fn time_index_only_appends_increasing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ti = TimeIndex::open(&dir.path().join("0.timeindex"), 0, 1 << 20).expect("open");
        ti.maybe_append(1000, 5).expect("append");
        ti.maybe_append(900, 9).expect("append");
        ti.maybe_append(2000, 12).expect("append");
        assert_eq!(ti.file.entries(), 2);
        assert_eq!(ti.lookup(1500).expect("lookup"), Some((1000, 5)));
        assert_eq!(ti.lookup(999).expect("lookup"), None);
        // Dropping the index writes the entries it still held in memory.
        drop(ti);
        let reopened = TimeIndex::open(&dir.path().join("0.timeindex"), 0, 1 << 20).expect("open");
        assert_eq!(reopened.last_entry(), Some((2000, 12)));
    }

    #[test]
    fn appended_entries_are_found_before_and_after_they_reach_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.index");
        let file_len = || std::fs::metadata(&path).expect("metadata").len();
        let mut idx = OffsetIndex::open(&path, 100, 1 << 20).expect("open");
        let n = TAIL_ENTRIES + 10;
        for i in 0..n {
            idx.append(100 + i as i64 * 10, i as u32 * 1000).expect("append");
        }
        // One write of a full tail; the last 10 entries are still in memory.
        assert_eq!(file_len(), TAIL_ENTRIES * OFFSET_ENTRY);
        assert_eq!(idx.file.entries(), n);
        for i in [0, TAIL_ENTRIES - 1, TAIL_ENTRIES, n - 1] {
            assert_eq!(idx.lookup(100 + i as i64 * 10 + 5).expect("lookup"), i as u32 * 1000);
        }
        assert_eq!(idx.load_validated(u64::MAX, None).expect("valid").len() as u64, n);
        // Truncation inside the tail, then across the written part.
        idx.file.truncate_entries(n - 4).expect("truncate");
        assert_eq!(idx.file.entries(), n - 4);
        assert_eq!(idx.lookup(i64::MAX).expect("lookup"), (n - 5) as u32 * 1000);
        idx.file.truncate_entries(3).expect("truncate");
        assert_eq!((idx.file.entries(), file_len()), (3, 3 * OFFSET_ENTRY));
        idx.append(1000, 99_000).expect("append");
        assert_eq!(file_len(), 3 * OFFSET_ENTRY, "the new entry waits in memory");
        idx.file.sync().expect("sync");
        assert_eq!(file_len(), 4 * OFFSET_ENTRY, "a sync writes the tail first");
        let reopened = OffsetIndex::open(&path, 100, 1 << 20).expect("open");
        assert_eq!(reopened.lookup(1000).expect("lookup"), 99_000);
    }

    #[test]
    fn an_on_demand_index_holds_no_descriptor_and_writes_what_a_held_one_writes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (held_path, lazy_path) = (dir.path().join("held.index"), dir.path().join("lazy.index"));
        let mut held = OffsetIndex::open(&held_path, 100, 1 << 20).expect("open");
        let mut lazy = OffsetIndex::open_on_demand(&lazy_path, 100, 1 << 20).expect("open");
        assert!(held.file.holds_descriptor());
        assert!(!lazy.file.holds_descriptor());
        let n = TAIL_ENTRIES + 3;
        for i in 0..n {
            held.append(100 + i as i64 * 10, i as u32 * 1000).expect("append");
            lazy.append(100 + i as i64 * 10, i as u32 * 1000).expect("append");
        }
        // Lookups in the written part (reopened) and in the tail.
        for i in [0, TAIL_ENTRIES - 1, n - 1] {
            assert_eq!(lazy.lookup(100 + i as i64 * 10 + 5).expect("lookup"), i as u32 * 1000);
        }
        lazy.file.truncate_entries(n - 1).expect("truncate in the tail");
        lazy.file.truncate_entries(TAIL_ENTRIES - 2).expect("truncate the file");
        held.file.truncate_entries(TAIL_ENTRIES - 2).expect("truncate the file");
        lazy.file.sync().expect("sync");
        drop((held, lazy));
        let (held, lazy) = (std::fs::read(&held_path).expect("read"), std::fs::read(&lazy_path).expect("read"));
        assert_eq!(held.len() as u64, (TAIL_ENTRIES - 2) * OFFSET_ENTRY);
        assert_eq!(held, lazy, "the same bytes on disk either way");
        let mut ti = TimeIndex::open_on_demand(&dir.path().join("0.timeindex"), 0, 1 << 20).expect("open");
        ti.maybe_append(1000, 5).expect("append");
        ti.file.sync().expect("sync");
        drop(ti);
        let ti = TimeIndex::open_on_demand(&dir.path().join("0.timeindex"), 0, 1 << 20).expect("open");
        assert_eq!(ti.last_entry(), Some((1000, 5)));
    }

    #[test]
    fn an_on_demand_index_whose_file_vanished_or_was_replaced_fails_without_touching_the_new_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.index");
        let mut idx = OffsetIndex::open_on_demand(&path, 0, 1 << 20).expect("open");
        idx.append(5, 100).expect("append");
        idx.file.write_tail().expect("write");
        std::fs::remove_file(&path).expect("remove");
        let err = idx.lookup(7).expect_err("the file is gone");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("0.index"), "{err}");
        // Appends gather in memory until the tail must be written.
        let mut failed = None;
        for i in 0..TAIL_ENTRIES {
            if let Err(e) = idx.append(10 + i as i64, 200 + i as u32) {
                failed = Some(e);
                break;
            }
        }
        assert_eq!(failed.expect("the tail write fails").kind(), io::ErrorKind::NotFound);
        // A deleted segment's index has nothing left to make durable.
        idx.file.sync().expect("sync of a deleted segment's index");
        // Another file at the same path (a segment recreated at the same
        // base) is refused, and is not written, not even on drop.
        std::fs::write(&path, b"new!").expect("write");
        let err = idx.file.write_tail().expect_err("another file");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("replaced"), "{err}");
        assert!(idx.file.read_all().is_err());
        drop(idx);
        assert_eq!(std::fs::read(&path).expect("read"), b"new!");
        // A held index keeps reading its unlinked file.
        let mut held = OffsetIndex::open(&dir.path().join("1.index"), 0, 1 << 20).expect("open");
        held.append(5, 100).expect("append");
        held.file.write_tail().expect("write");
        std::fs::remove_file(dir.path().join("1.index")).expect("remove");
        assert_eq!(held.lookup(7).expect("lookup"), 100);
    }
}
