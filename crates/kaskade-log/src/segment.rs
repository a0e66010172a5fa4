//! A segment: one `.log` file of record batches plus its `.index` and
//! `.timeindex`, all named by the segment's base offset in 20 digits.
//!
//! `Segment` is the metadata the owning log keeps under its lock (size, next
//! offset, max timestamp); `SegmentFiles` are the open files, shared with
//! readers through an `Arc` so reads run without the log's lock. The active
//! segment's files hold one descriptor, the `.log`'s (its indexes open their
//! files per operation, `index::Descriptor`), so a partition costs one
//! descriptor; a closed segment's hold three while the handle cache keeps
//! them. Invariant:
//! bytes past `Segment::size` are not part of the log (writes the log has
//! not yet published, a torn append or a truncation in progress), and
//! readers never look past the size they were given.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use parking_lot::{Mutex, RwLock};

use crate::batch::{self, BatchHeader, HEADER_LEN};
use crate::index::{OffsetIndex, TimeIndex};
use crate::resident::{self, Access};

pub fn file_name(base: i64, ext: &str) -> String {
    format!("{base:020}.{ext}")
}

/// The open files of one segment.
#[derive(Debug)]
pub struct SegmentFiles {
    pub log: File,
    pub index: RwLock<OffsetIndex>,
    pub time: RwLock<TimeIndex>,
    /// Where the last located range ended, for the next fetch to start
    /// there without searching the offset index (see [`ReadHint`]).
    read_hint: Mutex<ReadHint>,
}

/// Where the last located range ended: the offset and position of the
/// batch after it. A consumer's next fetch starts exactly there, and
/// `locate` then begins at that position instead of binary-searching the
/// offset index (one `pread` per probe: two thirds of a fetch's system
/// calls in `strace` of `kbench consume`).
///
/// Invariant: `at`'s position is a batch boundary whose batch starts at its
/// offset while the file is not cut. Every cut goes through
/// [`SegmentFiles::set_len`], which forgets `at` and bumps `cuts` under the
/// lock; a scan that overlapped a cut finds `cuts` changed and leaves no
/// hint. `locate` still checks the hinted batch's base offset.
#[derive(Debug, Default)]
struct ReadHint {
    cuts: u64,
    at: Option<(i64, u64)>,
}

impl SegmentFiles {
    /// Opens an active segment's files (or any at load and recovery): the
    /// `.log` stays open, the indexes open their files per operation.
    pub fn open(dir: &Path, base: i64, index_max_bytes: u64, create: bool) -> io::Result<SegmentFiles> {
        Ok(SegmentFiles::from_parts(
            open_log(dir, base, create)?,
            OffsetIndex::open_on_demand(&dir.join(file_name(base, "index")), base, index_max_bytes)?,
            TimeIndex::open_on_demand(&dir.join(file_name(base, "timeindex")), base, index_max_bytes)?,
        ))
    }

    /// Opens a closed segment's files for the handle cache: all three stay
    /// open while the cache keeps them (read lookups then open nothing).
    pub fn open_closed(dir: &Path, base: i64, index_max_bytes: u64) -> io::Result<SegmentFiles> {
        Ok(SegmentFiles::from_parts(
            open_log(dir, base, false)?,
            OffsetIndex::open(&dir.join(file_name(base, "index")), base, index_max_bytes)?,
            TimeIndex::open(&dir.join(file_name(base, "timeindex")), base, index_max_bytes)?,
        ))
    }

    /// A segment's files opened elsewhere (the cleaner's `.cleaned` files).
    pub fn from_parts(log: File, index: OffsetIndex, time: TimeIndex) -> SegmentFiles {
        SegmentFiles {
            log,
            index: RwLock::new(index),
            time: RwLock::new(time),
            read_hint: Mutex::new(ReadHint::default()),
        }
    }

    /// Cuts or extends the log file to `len` bytes, forgetting the read hint
    /// (its position may no longer be a batch boundary).
    pub fn set_len(&self, len: u64) -> io::Result<()> {
        let mut hint = self.read_hint.lock();
        let result = self.log.set_len(len);
        hint.cuts += 1;
        hint.at = None;
        result
    }

    /// Writes the index entries still held in memory (no fsync).
    pub fn write_index_tails(&self) -> io::Result<()> {
        self.index.write().file.write_tail()?;
        self.time.write().file.write_tail()
    }

    /// Makes the log and both indexes durable.
    pub fn sync_all(&self) -> io::Result<()> {
        self.log.sync_data()?;
        self.index.write().file.sync()?;
        self.time.write().file.sync()
    }
}

fn open_log(dir: &Path, base: i64, create: bool) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).create(create).truncate(false).open(dir.join(file_name(base, "log")))
}

/// How a scan ended.
#[derive(Debug)]
pub struct ScanEnd {
    /// Position after the last good batch.
    pub position: u64,
    /// Why the scan stopped early, if it did.
    pub problem: Option<String>,
}

/// Walks the batches of a log file in `[from, to)`. With `validate`, each
/// batch is read whole and its CRC checked. `visit` returns false to stop.
pub fn scan(
    log: &File,
    from: u64,
    to: u64,
    validate: bool,
    visit: impl FnMut(u64, &BatchHeader) -> bool,
) -> io::Result<ScanEnd> {
    scan_with(log, from, to, validate, Access::Blocking, visit)
}

/// [`scan`], reading under `access` (`Resident`: a header outside the page
/// cache ends the scan with `WouldBlock`).
fn scan_with(
    log: &File,
    from: u64,
    to: u64,
    validate: bool,
    access: Access,
    mut visit: impl FnMut(u64, &BatchHeader) -> bool,
) -> io::Result<ScanEnd> {
    let mut pos = from;
    let mut head = [0u8; HEADER_LEN];
    let mut whole = Vec::new();
    while pos < to {
        if pos + HEADER_LEN as u64 > to {
            return Ok(ScanEnd {
                position: pos,
                problem: Some(format!("{} trailing bytes cannot hold a batch header", to - pos)),
            });
        }
        resident::read_exact_at(log, &mut head, pos, access)?;
        let header = match BatchHeader::parse(&head) {
            Ok(h) => h,
            Err(e) => return Ok(ScanEnd { position: pos, problem: Some(e.to_string()) }),
        };
        if header.batch_length < (HEADER_LEN - batch::LOG_OVERHEAD) as i32 {
            return Ok(ScanEnd {
                position: pos,
                problem: Some(format!("batch length {} is impossible", header.batch_length)),
            });
        }
        let total = header.total_len() as u64;
        if pos + total > to {
            return Ok(ScanEnd {
                position: pos,
                problem: Some(format!("batch of {total} bytes at {pos} is cut off at {to}")),
            });
        }
        if validate {
            whole.resize(total as usize, 0);
            resident::read_exact_at(log, &mut whole, pos, access)?;
            if let Err(e) = batch::validate_structure(&whole) {
                return Ok(ScanEnd { position: pos, problem: Some(e.to_string()) });
            }
        }
        if !visit(pos, &header) {
            return Ok(ScanEnd { position: pos, problem: None });
        }
        pos += total;
    }
    Ok(ScanEnd { position: pos, problem: None })
}

/// Batches written into the active segment's file but not yet recorded in
/// its `Segment` (see `Log`'s in-flight writes).
#[derive(Clone, Copy, Debug, Default)]
pub struct Pending {
    pub bytes: u64,
    pub batches: u64,
}

/// The batch about to be appended, for `Segment::should_roll`.
#[derive(Clone, Copy, Debug)]
pub struct NextBatch {
    pub len: u64,
    pub last_offset: i64,
    pub now_ms: i64,
}

/// The roll limits of the log's configuration (`segment.bytes`,
/// `segment.ms` with its jitter applied).
#[derive(Clone, Copy, Debug)]
pub struct RollLimits {
    pub segment_bytes: u64,
    pub segment_ms: i64,
}

/// Segment metadata, owned by the log under its lock.
#[derive(Debug)]
pub struct Segment {
    pub id: u64,
    pub base: i64,
    pub size: u64,
    /// One past the last offset stored (the base when empty).
    pub next_offset: i64,
    /// Largest batch max-timestamp, -1 when empty.
    pub max_timestamp: i64,
    /// Last offset of the batch that holds `max_timestamp`.
    pub max_timestamp_offset: i64,
    /// When the segment started, for `segment.ms`.
    pub created_ms: i64,
    pub bytes_since_index: u64,
    /// Open while the segment is the active one; closed segments go
    /// through the handle cache.
    pub active: Option<std::sync::Arc<SegmentFiles>>,
}

/// What recovery found in one segment.
#[derive(Debug, Default)]
pub struct RecoveryOutcome {
    pub batches: u64,
    pub truncated_bytes: u64,
    pub problem: Option<String>,
    /// Something else recovery repaired (an invalid index it rebuilt).
    pub note: Option<String>,
}

impl Segment {
    pub fn new(id: u64, base: i64, created_ms: i64) -> Segment {
        Segment {
            id,
            base,
            size: 0,
            next_offset: base,
            max_timestamp: -1,
            max_timestamp_offset: base,
            created_ms,
            bytes_since_index: 0,
            active: None,
        }
    }

    pub fn paths(dir: &Path, base: i64) -> [PathBuf; 3] {
        [dir.join(file_name(base, "log")), dir.join(file_name(base, "index")), dir.join(file_name(base, "timeindex"))]
    }

    /// Appends a batch whose first 16 bytes are replaced by `prefix`.
    /// `header` already carries the assigned base offset.
    pub fn append(
        &mut self,
        files: &SegmentFiles,
        prefix: &[u8; 16],
        batch: &[u8],
        header: &BatchHeader,
        index_interval: u64,
    ) -> io::Result<u64> {
        let position = self.size;
        write_all_vectored_at(&files.log, &mut [io::IoSlice::new(prefix), io::IoSlice::new(&batch[16..])], position)?;
        self.record_batch(files, position, header, index_interval)?;
        Ok(position)
    }

    /// Updates sizes, timestamps and the sparse indexes for a batch stored
    /// at `position`, which must be this segment's `size` (shared by append,
    /// the log's publication of a batch written outside its lock, and index
    /// rebuilding, so all write the same entries Kafka would).
    pub fn record_batch(
        &mut self,
        files: &SegmentFiles,
        position: u64,
        header: &BatchHeader,
        index_interval: u64,
    ) -> io::Result<()> {
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.max_timestamp_offset = header.last_offset();
        }
        if self.bytes_since_index > index_interval {
            files.index.write().append(header.last_offset(), position as u32)?;
            files.time.write().maybe_append(self.max_timestamp, self.max_timestamp_offset)?;
            self.bytes_since_index = 0;
        }
        let total = header.total_len() as u64;
        self.bytes_since_index += total;
        self.size = position + total;
        self.next_offset = header.next_offset();
        Ok(())
    }

    /// Whether a batch of `len` bytes ending at `last_offset` must go to a
    /// new segment. `pending` describes batches already placed in the file
    /// but not yet recorded (the log's in-flight writes): their bytes count
    /// toward `segment.bytes` and each may still add one entry per index.
    pub fn should_roll(&self, files: &SegmentFiles, pending: Pending, next: NextBatch, config: RollLimits) -> bool {
        let size = self.size + pending.bytes;
        if size == 0 {
            return false;
        }
        size + next.len > config.segment_bytes
            || next.now_ms - self.created_ms > config.segment_ms
            || files.index.read().file.is_full(pending.batches)
            || files.time.read().file.is_full(pending.batches)
            || next.last_offset - self.base > i32::MAX as i64
    }

    /// Seals the segment for rolling: records the final max-timestamp entry
    /// (as Kafka does when a segment becomes inactive).
    pub fn seal(&self, files: &SegmentFiles) -> io::Result<()> {
        if self.max_timestamp >= 0 {
            files.time.write().maybe_append(self.max_timestamp, self.max_timestamp_offset)?;
        }
        files.write_index_tails()
    }

    /// Loads a closed or active segment after a clean start: trusts the
    /// log, validates the indexes (rebuilding them if invalid) and reads the
    /// tail past the last index entry to learn the next offset and the
    /// largest timestamp.
    pub fn load(&mut self, files: &SegmentFiles, dir: &Path, index_interval: u64) -> io::Result<Option<String>> {
        self.size = files.log.metadata()?.len();
        let entries = files.index.read().load_validated(self.size, None);
        let times = files.time.read().load_validated(None);
        let (entries, times) = match (entries, times) {
            (Ok(e), Ok(t)) => (e, t),
            (Err(e), _) | (_, Err(e)) => {
                let out = self.rebuild(files, index_interval)?;
                let mut msg = format!(
                    "{}: index invalid ({e}); rebuilt from the log",
                    dir.join(file_name(self.base, "index")).display()
                );
                if let Some(p) = out.problem {
                    msg.push_str(&format!("; log truncated by {} bytes: {p}", out.truncated_bytes));
                }
                return Ok(Some(msg));
            }
        };
        let from = entries.last().map(|(_, p)| *p as u64).unwrap_or(0);
        if let Some((ts, off)) = times.last() {
            self.max_timestamp = *ts;
            self.max_timestamp_offset = *off;
        }
        let mut next = entries.last().map(|(o, _)| o + 1).unwrap_or(self.base);
        let mut max_ts = (self.max_timestamp, self.max_timestamp_offset);
        let mut last_end = from;
        let end = scan(&files.log, from, self.size, false, |pos, h| {
            next = h.next_offset();
            if h.max_timestamp > max_ts.0 {
                max_ts = (h.max_timestamp, h.last_offset());
            }
            last_end = pos + h.total_len() as u64;
            true
        })?;
        self.next_offset = next;
        (self.max_timestamp, self.max_timestamp_offset) = max_ts;
        self.bytes_since_index = last_end - from;
        if let Some(p) = end.problem {
            // A clean shutdown should never leave a torn tail; treat it as
            // a crash remnant.
            let cut = self.size - end.position;
            files.set_len(end.position)?;
            self.size = end.position;
            return Ok(Some(format!("segment {}: cut {cut} bytes after a clean shutdown: {p}", self.base)));
        }
        Ok(None)
    }

    /// Rebuilds the indexes by scanning and validating every batch,
    /// truncating the log at the first bad one.
    pub fn rebuild(&mut self, files: &SegmentFiles, index_interval: u64) -> io::Result<RecoveryOutcome> {
        files.index.write().file.truncate_entries(0)?;
        files.time.write().truncate_entries(0)?;
        self.size = 0;
        self.next_offset = self.base;
        self.max_timestamp = -1;
        self.max_timestamp_offset = self.base;
        self.bytes_since_index = 0;
        self.recover_from(files, 0, index_interval)
    }

    /// Recovery of a segment that holds unflushed data. When the on-disk
    /// index has valid entries below `recovery_point` and the batch they
    /// point to checks out, the scan starts there instead of at 0, so
    /// recovery cost follows the unflushed tail.
    pub fn recover(
        &mut self,
        files: &SegmentFiles,
        recovery_point: i64,
        index_interval: u64,
    ) -> io::Result<RecoveryOutcome> {
        let file_len = files.log.metadata()?.len();
        let mut invalid = None;
        let start = (|| {
            let entries = files.index.read().load_validated(file_len, None).map_err(|e| invalid = Some(e)).ok()?;
            let times = files.time.read().load_validated(None).map_err(|e| invalid = Some(e)).ok()?;
            let (keep, &(off, pos)) = entries.iter().enumerate().rev().find(|(_, (o, _))| *o < recovery_point)?;
            let mut head = vec![0u8; HEADER_LEN];
            files.log.read_exact_at(&mut head, pos as u64).ok()?;
            let h = BatchHeader::parse(&head).ok()?;
            if h.last_offset() != off || pos as u64 + h.total_len() as u64 > file_len {
                return None;
            }
            let mut whole = vec![0u8; h.total_len()];
            files.log.read_exact_at(&mut whole, pos as u64).ok()?;
            batch::validate_structure(&whole).ok()?;
            let time_keep = times.iter().take_while(|(_, o)| *o <= off).count();
            let max = times.get(time_keep.wrapping_sub(1)).copied();
            Some((keep as u64 + 1, time_keep as u64, pos as u64, h.base_offset, max))
        })();
        match start {
            Some((keep, time_keep, pos, base_offset, max)) => {
                files.index.write().file.truncate_entries(keep)?;
                files.time.write().truncate_entries(time_keep)?;
                self.size = pos;
                self.next_offset = base_offset;
                (self.max_timestamp, self.max_timestamp_offset) = max.unwrap_or((-1, self.base));
                // The entry's own batch is rescanned; its entry is already kept.
                self.bytes_since_index = 0;
                self.recover_from_keep_first_entry(files, pos, index_interval)
            }
            None => {
                let mut out = self.rebuild(files, index_interval)?;
                out.note = invalid.map(|e| format!("index invalid ({e}); rebuilt from the log"));
                Ok(out)
            }
        }
    }

    fn recover_from_keep_first_entry(
        &mut self,
        files: &SegmentFiles,
        pos: u64,
        index_interval: u64,
    ) -> io::Result<RecoveryOutcome> {
        // The batch at `pos` already has its index entry; account it without
        // appending a second one.
        let mut head = [0u8; HEADER_LEN];
        files.log.read_exact_at(&mut head, pos)?;
        let h = BatchHeader::parse(&head).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        if h.max_timestamp > self.max_timestamp {
            self.max_timestamp = h.max_timestamp;
            self.max_timestamp_offset = h.last_offset();
        }
        self.size = pos + h.total_len() as u64;
        self.next_offset = h.next_offset();
        self.bytes_since_index = h.total_len() as u64;
        let mut out = self.recover_from(files, self.size, index_interval)?;
        out.batches += 1;
        Ok(out)
    }

    fn recover_from(&mut self, files: &SegmentFiles, from: u64, index_interval: u64) -> io::Result<RecoveryOutcome> {
        let file_len = files.log.metadata()?.len();
        let mut out = RecoveryOutcome::default();
        let mut expected = self.next_offset;
        let mut io_err = None;
        let mut bad_order = None;
        let end = scan(&files.log, from, file_len, true, |pos, h| {
            if h.base_offset < expected || h.last_offset() - self.base > u32::MAX as i64 {
                bad_order = Some(format!(
                    "batch at {pos} has base offset {} but {expected} or later was expected",
                    h.base_offset
                ));
                return false;
            }
            expected = h.next_offset();
            if let Err(e) = self.record_batch(files, pos, h, index_interval) {
                io_err = Some(e);
                return false;
            }
            out.batches += 1;
            true
        })?;
        if let Some(e) = io_err {
            return Err(e);
        }
        let problem = bad_order.or(end.problem);
        if end.position < file_len {
            out.truncated_bytes = file_len - end.position;
            out.problem = Some(problem.unwrap_or_else(|| "trailing bytes".into()));
            files.set_len(end.position)?;
        }
        self.size = end.position;
        // A rebuilt index goes to its file now, not when the tail fills.
        files.write_index_tails()?;
        Ok(out)
    }

    /// Cuts the segment before the first batch whose last offset is >=
    /// `offset`, then rebuilds its metadata and indexes.
    pub fn truncate_to(&mut self, files: &SegmentFiles, offset: i64, index_interval: u64) -> io::Result<()> {
        let from = files.index.read().lookup(offset.saturating_sub(1))? as u64;
        let mut cut = self.size;
        scan(&files.log, from, self.size, false, |pos, h| {
            if h.last_offset() >= offset {
                cut = pos;
                return false;
            }
            true
        })?;
        files.set_len(cut)?;
        self.rebuild(files, index_interval)?;
        Ok(())
    }
}

/// Reads whole batches from a segment without the log's lock: the bytes of
/// the range [`locate`] picks.
pub fn read(files: &SegmentFiles, size: u64, start: i64, max_bytes: usize, upper: i64) -> io::Result<Option<Bytes>> {
    let Some(located) = locate(files, size, start, max_bytes, upper)? else { return Ok(None) };
    let mut buf = BytesMut::zeroed(located.len);
    let got = read_at_most(&files.log, &mut buf, located.position)?;
    if got < located.len {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "segment file shorter than its published size"));
    }
    Ok(Some(buf.freeze()))
}

/// Where [`locate`] found whole batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Located {
    pub position: u64,
    pub len: usize,
    /// The offset after the last batch.
    pub next_offset: i64,
    /// The batches' record counts, summed (for records-out metrics).
    pub records: u64,
}

/// Finds, without reading them, the whole batches a fetch from `start`
/// returns: from the batch holding `start`, batches while they fit in
/// `max_bytes` (the first one always, KIP-74), begin below `upper` and lie
/// below `size`. Only batch headers are read.
pub fn locate(
    files: &SegmentFiles,
    size: u64,
    start: i64,
    max_bytes: usize,
    upper: i64,
) -> io::Result<Option<Located>> {
    locate_with(files, size, start, max_bytes, upper, Access::Blocking)
}

/// [`locate`] under `access`. `Resident` reads only from the page cache and
/// only from the read hint (a fetch continuing where the last one ended):
/// the offset index's files open per lookup, so any other start is
/// `WouldBlock`, as is a header not in the cache.
pub fn locate_with(
    files: &SegmentFiles,
    size: u64,
    start: i64,
    max_bytes: usize,
    upper: i64,
    access: Access,
) -> io::Result<Option<Located>> {
    let (cuts, hint) = {
        let h = files.read_hint.lock();
        (h.cuts, h.at)
    };
    let hinted = match hint {
        Some((offset, position)) if offset == start && position < size => {
            locate_from(files, position, size, start, max_bytes, upper, true, access)?
        }
        _ => None,
    };
    let found = match hinted {
        Some(found) => found,
        None if access == Access::Resident => return Err(resident::would_block()),
        None => {
            let from = files.index.read().lookup(start)? as u64;
            // Without `exact` the scan never reports a stale start.
            locate_from(files, from, size, start, max_bytes, upper, false, Access::Blocking)?.flatten()
        }
    };
    if let Some(l) = &found {
        let mut h = files.read_hint.lock();
        if h.cuts == cuts {
            h.at = Some((l.next_offset, l.position + l.len as u64));
        }
    }
    Ok(found)
}

/// `locate`'s scan from `from`. With `exact` (a read hint), the batch at
/// `from` must start at `start`; `None` when it does not (a stale hint),
/// and the caller searches the index instead.
#[allow(clippy::too_many_arguments)]
fn locate_from(
    files: &SegmentFiles,
    from: u64,
    size: u64,
    start: i64,
    max_bytes: usize,
    upper: i64,
    exact: bool,
    access: Access,
) -> io::Result<Option<Option<Located>>> {
    let mut found: Option<Located> = None;
    let mut first = true;
    let mut stale = false;
    let end = scan_with(&files.log, from, size, false, access, |pos, h| {
        let was_first = std::mem::replace(&mut first, false);
        let len = h.total_len();
        match &mut found {
            None if exact && was_first && h.base_offset != start => {
                stale = true;
                false
            }
            None if h.last_offset() < start => true,
            None => {
                if h.base_offset >= upper {
                    return false;
                }
                found = Some(Located {
                    position: pos,
                    len,
                    next_offset: h.next_offset(),
                    records: u64::try_from(h.records_count).unwrap_or(0),
                });
                true
            }
            Some(l) => {
                if h.base_offset >= upper || l.len + len > max_bytes {
                    return false;
                }
                debug_assert_eq!(l.position + l.len as u64, pos, "batches are contiguous");
                l.len += len;
                l.next_offset = h.next_offset();
                l.records += u64::try_from(h.records_count).unwrap_or(0);
                true
            }
        }
    })?;
    // A hint whose position holds no batch header is stale as well.
    if exact && (stale || (first && end.problem.is_some())) {
        return Ok(None);
    }
    Ok(Some(found))
}

fn read_at_most(file: &File, buf: &mut [u8], at: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], at + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// The first batch in the segment whose max timestamp is >= `timestamp`
/// and whose last offset is >= `min_offset` (the log start).
pub fn find_by_timestamp(
    files: &SegmentFiles,
    size: u64,
    timestamp: i64,
    min_offset: i64,
) -> io::Result<Option<(u64, BatchHeader)>> {
    let from_offset = files.time.read().lookup(timestamp)?.map(|(_, off)| off);
    let from = match from_offset {
        Some(off) => files.index.read().lookup(off.max(min_offset))? as u64,
        None => files.index.read().lookup(min_offset)? as u64,
    };
    let mut found = None;
    scan(&files.log, from, size, false, |pos, h| {
        if h.max_timestamp >= timestamp && h.last_offset() >= min_offset {
            found = Some((pos, *h));
            return false;
        }
        true
    })?;
    Ok(found)
}

/// Reads one whole batch at `pos`.
pub fn read_batch(files: &SegmentFiles, pos: u64, len: usize) -> io::Result<Bytes> {
    let mut buf = BytesMut::zeroed(len);
    files.log.read_exact_at(&mut buf, pos)?;
    Ok(buf.freeze())
}

/// Writes `bufs`, one after the other, at `position` with as few
/// `pwritev(2)` calls as the kernel allows: the log writes a batch as two
/// parts (its patched first 16 bytes and the rest, from different buffers)
/// and often several appenders' batches at once, and one system call
/// instead of one per part keeps the write path short. Short writes (a
/// signal, the kernel's per-call byte cap) are continued where they
/// stopped; at most `IOV_MAX` (1024) buffers go in one call.
pub fn write_all_vectored_at(file: &File, mut bufs: &mut [io::IoSlice<'_>], mut position: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    const IOV_MAX: usize = 1024;
    io::IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        let offset = libc::off_t::try_from(position).map_err(|_| io::Error::other("file position beyond off_t"))?;
        let count = bufs.len().min(IOV_MAX);
        // SAFETY: `IoSlice` is documented to be ABI compatible with `iovec`
        // on Unix, so `bufs` is an array of `count` (at most its length)
        // valid iovecs, each pointing into a live shared slice of its own
        // length for the whole call; pwritev only reads through them (the
        // `*mut` in `iovec` is the C signature) and keeps no pointer after
        // it returns. The fd belongs to `file`, borrowed for the call.
        let n = unsafe { libc::pwritev(file.as_raw_fd(), bufs.as_ptr().cast::<libc::iovec>(), count as i32, offset) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "pwritev wrote nothing"));
        }
        position += n as u64;
        io::IoSlice::advance_slices(&mut bufs, n as usize);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_all_vectored_at_writes_every_part_in_order_at_the_position() {
        let dir = tempfile::tempdir().unwrap();
        let file =
            OpenOptions::new().create(true).truncate(true).read(true).write(true).open(dir.path().join("f")).unwrap();
        let head = [7u8; 16];
        let tail: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
        // Past 4 GiB too (a sparse file), where a 32-bit offset would wrap.
        for position in [0u64, 3, 5 << 30] {
            write_all_vectored_at(&file, &mut [io::IoSlice::new(&head), io::IoSlice::new(&tail)], position).unwrap();
            let mut back = vec![0u8; head.len() + tail.len()];
            file.read_exact_at(&mut back, position).unwrap();
            assert_eq!(&back[..16], &head);
            assert_eq!(&back[16..], &tail[..]);
        }
        write_all_vectored_at(&file, &mut [io::IoSlice::new(&[]), io::IoSlice::new(&[1, 2])], 1).unwrap();
        let mut two = [0u8; 2];
        file.read_exact_at(&mut two, 1).unwrap();
        assert_eq!(two, [1, 2]);
    }

    #[test]
    fn write_all_vectored_at_goes_past_iov_max_buffers() {
        let dir = tempfile::tempdir().unwrap();
        let file =
            OpenOptions::new().create(true).truncate(true).read(true).write(true).open(dir.path().join("f")).unwrap();
        // 2,500 parts of 1..=7 bytes: three pwritev calls' worth of iovecs.
        let parts: Vec<Vec<u8>> = (0..2_500u32).map(|i| vec![(i % 251) as u8; (i % 7 + 1) as usize]).collect();
        let mut slices: Vec<io::IoSlice<'_>> = parts.iter().map(|p| io::IoSlice::new(p)).collect();
        write_all_vectored_at(&file, &mut slices, 10).unwrap();
        let expected: Vec<u8> = parts.concat();
        let mut back = vec![0u8; expected.len()];
        file.read_exact_at(&mut back, 10).unwrap();
        assert_eq!(back, expected);
    }
}
