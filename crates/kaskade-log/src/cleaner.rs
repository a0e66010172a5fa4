//! The log cleaner: compaction of logs with `cleanup.policy=compact`
//! (Kafka's `LogCleaner`), run by the log manager on its own thread.
//!
//! A pass over a log, as Kafka's `Cleaner.doClean`:
//!
//! 1. **What is cleanable.** The dirty part starts at the cleaner checkpoint
//!    (`cleaner-offset-checkpoint` in the data directory, Kafka's checkpoint
//!    format; the log start when absent or out of range). It ends at the
//!    first uncleanable offset: the active segment's base, lowered to the
//!    first segment that is not wholly below the last stable offset (so
//!    below the high watermark) and to the first dirty segment holding a
//!    record younger than
//!    `min.compaction.lag.ms`. The log is cleaned when the dirty bytes are
//!    more than `min.cleanable.dirty.ratio` of clean + dirty bytes, or when
//!    a dirty segment's first batch is older than `max.compaction.lag.ms`.
//! 2. **Offset map.** Key -> latest offset over the dirty part
//!    (`offset_map`), bounded by `log.cleaner.dedupe.buffer.size`; when it
//!    fills, this pass ends where the map ends and the next continues.
//! 3. **Rewrite.** Every closed segment below the map's end, from the log
//!    start, is copied through the filter in groups of up to `segment.bytes`
//!    (each group becomes one segment named by its first base). A record is
//!    kept when it is past the map, or when it is its key's latest record
//!    and not a tombstone whose delete horizon has passed. Records without a
//!    key are dropped (Kafka refuses them on compacted topics). Records keep
//!    their offsets; batches keep base offset, last offset and producer
//!    fields (`filter`). Tombstones get a delete horizon (now +
//!    `delete.retention.ms`) the first time a pass keeps them, and go in the
//!    first pass after it (KIP-534). A batch losing all its records is
//!    dropped, except the last batch of an active idempotent producer and
//!    the last batch before the first uncleanable offset, which stay as
//!    empty batches.
//! 4. **Swap.** Each group's segment is written as `.cleaned` files without
//!    the log's lock, fsynced, and swapped in under the lock only after
//!    checking that the replaced segments are still there unchanged
//!    (retention, DeleteRecords or truncation abort the pass). See `swap`
//!    for the crash-safe protocol and its recovery at open.
//!
//! Transactions: nothing at or past the last stable offset is cleaned;
//! batches of aborted transactions are kept as they are and stay out of the
//! offset map (an aborted write never shadows a committed one); control
//! batches (markers) are kept as they are, and each cleaned segment carries
//! its group's `.txnindex` entries. Dropping aborted data and, past their
//! horizon, markers (Kafka's transaction-aware cleaning) is not done yet. A
//! batch whose records cannot be decoded (but whose CRC holds) is kept as
//! it is; a CRC failure stops the pass for that log, so the cleaner never
//! rewrites corrupt data into a "clean" segment.
//!
//! Invariants: the latest record of every key, and every record past the
//! map, survive every pass and every crash; offsets only disappear, never
//! move; the log start and log end offsets do not change.

pub(crate) mod filter;
pub(crate) mod offset_map;
pub(crate) mod swap;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use parking_lot::{Condvar, Mutex};

use crate::batch::{self, BatchHeader, HEADER_LEN};
use crate::checkpoint;
use crate::clock::Clock;
use crate::config::LogConfig;
use crate::error::{LogError, Result};
use crate::handles::next_segment_id;
use crate::log::Log;
use crate::segment::{Segment, SegmentFiles};
use crate::types::TopicPartition;
use offset_map::OffsetMap;

/// Kafka's checkpoint of each compacted log's first dirty offset.
pub const CLEANER_CHECKPOINT_FILE: &str = "cleaner-offset-checkpoint";

/// The cleaner's settings (Kafka's `log.cleaner.*` broker keys).
#[derive(Clone, Debug)]
pub struct CleanerOptions {
    /// `log.cleaner.enable`: run the cleaner thread.
    pub enabled: bool,
    /// `log.cleaner.backoff.ms`: the pause between passes.
    pub backoff_ms: u64,
    /// `log.cleaner.dedupe.buffer.size`: the offset map's budget.
    pub dedupe_buffer_bytes: u64,
    /// `log.cleaner.io.buffer.size`: bytes read from a segment at a time.
    pub io_buffer_bytes: usize,
    /// Tests only: stop the segment swap before this step, as a crash would.
    #[doc(hidden)]
    pub crash_at_swap_step: Option<u32>,
}

impl Default for CleanerOptions {
    fn default() -> Self {
        CleanerOptions {
            enabled: true,
            backoff_ms: 15_000,
            dedupe_buffer_bytes: 128 << 20,
            io_buffer_bytes: 512 << 10,
            crash_at_swap_step: None,
        }
    }
}

/// What one pass over one log did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CleanStats {
    /// The dirty part cleaned: `[first_dirty, end_offset)`; `end_offset` is
    /// the new checkpoint.
    pub first_dirty: i64,
    pub end_offset: i64,
    /// Segments read and written (a group left unchanged is not rewritten).
    pub segments_read: usize,
    pub segments_written: usize,
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// Records in the batches read / in the batches written.
    pub records_read: u64,
    pub records_written: u64,
}

/// A closed segment as the cleaner plans with it.
#[derive(Clone, Debug)]
pub(crate) struct SegmentMeta {
    pub base: i64,
    pub id: u64,
    pub size: u64,
    pub next_offset: i64,
    pub max_timestamp: i64,
}

/// A log as the cleaner plans with it (taken under the log's lock).
#[derive(Clone, Debug)]
pub(crate) struct CleanerView {
    pub config: LogConfig,
    pub log_start: i64,
    pub log_end: i64,
    pub active_base: i64,
    /// Closed segments, oldest first.
    pub closed: Vec<SegmentMeta>,
}

/// A log chosen for cleaning.
#[derive(Clone, Debug)]
struct ToClean {
    first_dirty: i64,
    first_uncleanable: i64,
    ratio: f64,
}

#[derive(Debug, Default)]
struct Busy {
    log: Option<TopicPartition>,
    abort: bool,
}

/// The cleaner of one log directory: its checkpoints and passes.
#[derive(Debug)]
pub struct Cleaner {
    dir: PathBuf,
    opts: CleanerOptions,
    clock: Arc<dyn Clock>,
    checkpoints: Mutex<HashMap<TopicPartition, i64>>,
    busy: Mutex<Busy>,
    idle: Condvar,
}

impl Cleaner {
    /// Reads the checkpoint file of `dir`; a malformed one is reported and
    /// ignored (logs are then cleaned from their start: more work, same
    /// result).
    pub fn open(dir: &Path, opts: CleanerOptions, clock: Arc<dyn Clock>) -> (Cleaner, Option<String>) {
        let (checkpoints, err) = checkpoint::read(&dir.join(CLEANER_CHECKPOINT_FILE));
        let c = Cleaner {
            dir: dir.to_path_buf(),
            opts,
            clock,
            checkpoints: Mutex::new(checkpoints),
            busy: Mutex::new(Busy::default()),
            idle: Condvar::new(),
        };
        (c, err)
    }

    pub fn options(&self) -> &CleanerOptions {
        &self.opts
    }

    /// The first dirty offset checkpointed for a log.
    pub fn checkpoint(&self, tp: &TopicPartition) -> Option<i64> {
        self.checkpoints.lock().get(tp).copied()
    }

    /// Forgets a deleted log's checkpoint.
    pub fn forget(&self, tp: &TopicPartition) {
        let removed = self.checkpoints.lock().remove(tp).is_some();
        if removed {
            if let Err(e) = self.write_checkpoint() {
                tracing::warn!(error = %e, "writing the cleaner checkpoint failed");
            }
        }
    }

    /// Stops a pass over `tp` in progress and waits until it has stopped
    /// (before the log is deleted).
    pub fn abort_and_wait(&self, tp: &TopicPartition) {
        let mut b = self.busy.lock();
        if b.log.as_ref() == Some(tp) {
            b.abort = true;
            while b.log.as_ref() == Some(tp) {
                self.idle.wait(&mut b);
            }
        }
    }

    fn write_checkpoint(&self) -> std::io::Result<()> {
        let mut entries: Vec<(TopicPartition, i64)> =
            self.checkpoints.lock().iter().map(|(tp, o)| (tp.clone(), *o)).collect();
        entries.sort();
        checkpoint::write(&self.dir.join(CLEANER_CHECKPOINT_FILE), &entries)
    }

    /// One pass: every compacted log that is due is cleaned, dirtiest
    /// first. `stopped` is polled to give up early (shutdown);
    /// `registered` tells whether a log is still the manager's (one being
    /// deleted is skipped). Returns what was cleaned.
    pub fn run_pass(
        &self,
        logs: &[Arc<Log>],
        stopped: &dyn Fn() -> bool,
        registered: &dyn Fn(&Arc<Log>) -> bool,
    ) -> Vec<(TopicPartition, CleanStats)> {
        let now = self.clock.now_ms();
        let mut due = Vec::new();
        for log in logs {
            let view = log.cleaner_view();
            if !view.config.cleanup_policy.compacts() {
                continue;
            }
            let ckpt = self.checkpoint(log.topic_partition());
            match assess(log, &view, ckpt, now) {
                Ok(Some(t)) => due.push((log.clone(), view, t)),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(tp = %log.topic_partition(), error = %e, "assessing the log for cleaning failed")
                }
            }
        }
        due.sort_by(|a, b| b.2.ratio.total_cmp(&a.2.ratio));
        let mut done = Vec::new();
        for (log, view, t) in due {
            if stopped() {
                break;
            }
            let tp = log.topic_partition().clone();
            {
                let mut b = self.busy.lock();
                *b = Busy { log: Some(tp.clone()), abort: false };
            }
            // After `busy` is set: a deletion either sees it (and aborts this
            // pass) or had already unregistered the log (seen here).
            let abort = || stopped() || self.busy.lock().abort;
            let res = if registered(&log) { self.clean(&log, &view, &t, now, &abort) } else { Ok(None) };
            {
                let mut b = self.busy.lock();
                *b = Busy::default();
                self.idle.notify_all();
            }
            match res {
                Ok(Some(stats)) => {
                    tracing::info!(
                        %tp,
                        first_dirty = stats.first_dirty,
                        end = stats.end_offset,
                        dirty_ratio = t.ratio,
                        segments = format!("{} -> {}", stats.segments_read, stats.segments_written),
                        bytes = format!("{} -> {}", stats.bytes_read, stats.bytes_written),
                        records = format!("{} -> {}", stats.records_read, stats.records_written),
                        "cleaned log"
                    );
                    self.checkpoints.lock().insert(tp.clone(), stats.end_offset);
                    if let Err(e) = self.write_checkpoint() {
                        tracing::warn!(error = %e, "writing the cleaner checkpoint failed");
                    }
                    done.push((tp, stats));
                }
                Ok(None) => tracing::debug!(%tp, "cleaning stopped: the log changed, or shutdown"),
                Err(e) => tracing::error!(%tp, error = %e, "cleaning failed; segments not swapped yet are unchanged"),
            }
        }
        done
    }

    /// Cleans one log as `t` planned. `Ok(None)` when the pass stopped
    /// early (abort, or the log changed under it); groups swapped in before
    /// that stay (each is a complete, correct cleaning of its segments).
    fn clean(
        &self,
        log: &Log,
        view: &CleanerView,
        t: &ToClean,
        now: i64,
        abort: &dyn Fn() -> bool,
    ) -> Result<Option<CleanStats>> {
        let io = self.opts.io_buffer_bytes.max(HEADER_LEN);
        let aborted = Aborted::of(log);
        let mut map = OffsetMap::with_budget(self.opts.dedupe_buffer_bytes);
        map.update_latest_offset(t.first_dirty - 1);
        if !build_offset_map(log, view, t, &aborted, &mut map, io, abort)? {
            return Ok(None);
        }
        let end = map.latest_offset() + 1;
        if end <= t.first_dirty {
            return Ok(None);
        }
        let mut stats = CleanStats { first_dirty: t.first_dirty, end_offset: end, ..CleanStats::default() };
        let segs: Vec<&SegmentMeta> = view.closed.iter().filter(|s| s.base < end).collect();
        let cfg = &view.config;
        let mut ctx = GroupCtx {
            log,
            cfg,
            map: &map,
            aborted: &aborted,
            now,
            upper_bound: t.first_uncleanable,
            io,
            producers: HashMap::new(),
            crash_at: self.opts.crash_at_swap_step,
        };
        let mut i = 0;
        while i < segs.len() {
            if abort() {
                return Ok(None);
            }
            // Kafka's `groupSegmentsBySize`: up to segment.bytes of log, the
            // index limits, and offsets that fit the index's relative form.
            let Some(first) = log.cleaner_files(segs[i])? else { return Ok(None) };
            let mut group = vec![(segs[i].clone(), first)];
            let (mut bytes, mut index, mut time) = sizes(segs[i], &group[0].1);
            let mut j = i + 1;
            while j < segs.len() {
                let s = segs[j];
                let last_bound = segs.get(j + 1).map(|n| n.base).unwrap_or(t.first_uncleanable) - 1;
                if bytes + s.size > cfg.segment_bytes || (s.size > 0 && last_bound - segs[i].base > i32::MAX as i64) {
                    break;
                }
                let Some(files) = log.cleaner_files(s)? else { return Ok(None) };
                let (b, x, y) = sizes(s, &files);
                if index + x > cfg.segment_index_bytes || time + y > cfg.segment_index_bytes {
                    break;
                }
                (bytes, index, time) = (bytes + b, index + x, time + y);
                group.push((s.clone(), files));
                j += 1;
            }
            match clean_group(&mut ctx, &group, &mut stats, abort)? {
                GroupOutcome::Aborted => return Ok(None),
                GroupOutcome::Unchanged | GroupOutcome::Swapped => {}
            }
            i = j;
        }
        Ok(Some(stats))
    }
}

/// The aborted transactions of a log, by producer: (first offset, marker
/// offset) ranges.
struct Aborted(HashMap<i64, Vec<(i64, i64)>>);

impl Aborted {
    fn of(log: &Log) -> Aborted {
        let mut m: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
        for a in log.aborted_transactions(i64::MIN, i64::MAX) {
            m.entry(a.producer_id).or_default().push((a.first_offset, a.last_offset));
        }
        Aborted(m)
    }

    /// Whether a data batch belongs to an aborted transaction.
    fn holds(&self, h: &BatchHeader) -> bool {
        h.is_transactional()
            && !h.is_control()
            && self
                .0
                .get(&h.producer_id)
                .is_some_and(|r| r.iter().any(|(first, last)| *first <= h.base_offset && h.base_offset <= *last))
    }
}

/// Sizes of a segment's log, offset index and time index in bytes.
fn sizes(s: &SegmentMeta, files: &SegmentFiles) -> (u64, u64, u64) {
    let index = files.index.read().file.entries() * crate::index::OFFSET_ENTRY;
    let time = files.time.read().file.entries() * crate::index::TIME_ENTRY;
    (s.size, index, time)
}

/// Decides whether a log is due (Kafka's `LogCleanerManager.cleanableOffsets`
/// and `grabFilthiestCompactedLog`).
fn assess(log: &Log, view: &CleanerView, ckpt: Option<i64>, now: i64) -> Result<Option<ToClean>> {
    let cfg = &view.config;
    let first_dirty = match ckpt {
        Some(c) if c >= view.log_start && c <= view.log_end => c,
        _ => view.log_start,
    };
    let stable = log.last_stable_offset();
    let mut first_uncleanable = view.active_base;
    // Only whole segments below the last stable offset (below the high
    // watermark: in durable mode, what an fsync covered) are cleaned.
    if let Some(s) = view.closed.iter().find(|s| s.next_offset > stable) {
        first_uncleanable = first_uncleanable.min(s.base);
    }
    if cfg.min_compaction_lag_ms > 0 {
        let young = now.saturating_sub(cfg.min_compaction_lag_ms);
        if let Some(s) = view.closed.iter().find(|s| s.next_offset > first_dirty && s.max_timestamp > young) {
            first_uncleanable = first_uncleanable.min(s.base);
        }
    }
    if first_dirty >= first_uncleanable {
        return Ok(None);
    }
    let clean_bytes: u64 = if first_dirty > view.log_start {
        view.closed.iter().filter(|s| s.next_offset > view.log_start && s.base < first_dirty).map(|s| s.size).sum()
    } else {
        0
    };
    let dirty: Vec<&SegmentMeta> =
        view.closed.iter().filter(|s| s.next_offset > first_dirty && s.base < first_uncleanable).collect();
    let dirty_bytes: u64 = dirty.iter().map(|s| s.size).sum();
    if dirty_bytes == 0 {
        return Ok(None);
    }
    let ratio = dirty_bytes as f64 / (clean_bytes + dirty_bytes) as f64;
    // KIP-354: a dirty record waiting longer than max.compaction.lag.ms
    // (judged by the first batch of each dirty segment) forces a clean.
    let mut overdue = false;
    if cfg.max_compaction_lag_ms > 0 && cfg.max_compaction_lag_ms < i64::MAX {
        let deadline = now.saturating_sub(cfg.max_compaction_lag_ms);
        for s in &dirty {
            if s.size < HEADER_LEN as u64 {
                continue;
            }
            let Some(files) = log.cleaner_files(s)? else { continue };
            let mut head = [0u8; HEADER_LEN];
            std::os::unix::fs::FileExt::read_exact_at(&files.log, &mut head, 0)?;
            let first_ts = BatchHeader::parse(&head)?.max_timestamp;
            if first_ts > 0 && first_ts < deadline {
                overdue = true;
                break;
            }
        }
    }
    if overdue || ratio > cfg.min_cleanable_dirty_ratio {
        Ok(Some(ToClean { first_dirty, first_uncleanable, ratio }))
    } else {
        Ok(None)
    }
}

/// Reads whole, CRC-checked batches of one segment in `io`-sized chunks.
struct BatchReader<'a> {
    files: &'a SegmentFiles,
    pos: u64,
    end: u64,
    io: usize,
    chunk: Bytes,
    chunk_pos: u64,
}

impl<'a> BatchReader<'a> {
    fn new(files: &'a SegmentFiles, from: u64, end: u64, io: usize) -> Self {
        BatchReader { files, pos: from, end, io, chunk: Bytes::new(), chunk_pos: from }
    }

    fn has(&self, n: usize) -> bool {
        self.pos >= self.chunk_pos && self.pos + n as u64 <= self.chunk_pos + self.chunk.len() as u64
    }

    fn fill(&mut self, need: usize) -> Result<()> {
        let want = (self.io.max(need) as u64).min(self.end - self.pos) as usize;
        let mut buf = BytesMut::zeroed(want);
        std::os::unix::fs::FileExt::read_exact_at(&self.files.log, &mut buf, self.pos)?;
        self.chunk = buf.freeze();
        self.chunk_pos = self.pos;
        Ok(())
    }

    fn next(&mut self) -> Result<Option<(BatchHeader, Bytes)>> {
        if self.pos >= self.end {
            return Ok(None);
        }
        if self.pos + HEADER_LEN as u64 > self.end {
            return Err(LogError::CorruptBatch(format!("{} trailing bytes at {}", self.end - self.pos, self.pos)));
        }
        if !self.has(HEADER_LEN) {
            self.fill(HEADER_LEN)?;
        }
        let off = (self.pos - self.chunk_pos) as usize;
        let h = BatchHeader::parse(&self.chunk[off..off + HEADER_LEN])?;
        if h.batch_length < (HEADER_LEN - batch::LOG_OVERHEAD) as i32 || self.pos + h.total_len() as u64 > self.end {
            return Err(LogError::CorruptBatch(format!(
                "batch at {} has an impossible length {}",
                self.pos, h.batch_length
            )));
        }
        let len = h.total_len();
        if !self.has(len) {
            self.fill(len)?;
        }
        let off = (self.pos - self.chunk_pos) as usize;
        let bytes = self.chunk.slice(off..off + len);
        let h = batch::validate_structure(&bytes)
            .map_err(|e| LogError::CorruptBatch(format!("batch at position {}: {e}", self.pos)))?;
        self.pos += len as u64;
        Ok(Some((h, bytes)))
    }
}

/// Builds the key -> offset map over the dirty part. Returns false when
/// the pass must stop (abort, or a segment went away).
fn build_offset_map(
    log: &Log,
    view: &CleanerView,
    t: &ToClean,
    aborted: &Aborted,
    map: &mut OffsetMap,
    io: usize,
    abort: &dyn Fn() -> bool,
) -> Result<bool> {
    let dirty: Vec<&SegmentMeta> =
        view.closed.iter().filter(|s| s.next_offset > t.first_dirty && s.base < t.first_uncleanable).collect();
    for (i, seg) in dirty.iter().enumerate() {
        let Some(files) = log.cleaner_files(seg)? else { return Ok(false) };
        let from = if seg.base < t.first_dirty { files.index.read().lookup(t.first_dirty)? as u64 } else { 0 };
        let mut reader = BatchReader::new(&files, from, seg.size, io);
        while let Some((h, bytes)) = reader.next()? {
            if abort() {
                return Ok(false);
            }
            if h.last_offset() < t.first_dirty {
                continue;
            }
            if !h.is_control() && !aborted.holds(&h) {
                // Full: stop before a batch that might not fit (at least
                // one batch always goes in, so every pass progresses).
                if h.records_count.max(0) as usize > map.room() && !map.is_empty() {
                    return Ok(true);
                }
                match filter::decode(&bytes, &h) {
                    Ok(recs) => {
                        for r in recs.iter(&h) {
                            if let (true, Some(k)) = (r.offset >= t.first_dirty, r.key) {
                                map.put(k, r.offset);
                            }
                        }
                    }
                    Err(e) => tracing::warn!(
                        tp = %log.topic_partition(),
                        offset = h.base_offset,
                        error = %e,
                        "the cleaner cannot decode this batch; it is kept as it is"
                    ),
                }
            }
            map.update_latest_offset(h.last_offset());
        }
        // Offsets missing at the end of a segment belong to no one: cover
        // them up to the next segment.
        let next = dirty.get(i + 1).map(|s| s.base).unwrap_or(t.first_uncleanable);
        map.update_latest_offset(next - 1);
    }
    Ok(true)
}

struct GroupCtx<'a> {
    log: &'a Log,
    cfg: &'a LogConfig,
    map: &'a OffsetMap,
    aborted: &'a Aborted,
    now: i64,
    /// The first uncleanable offset: the batch ending there stays.
    upper_bound: i64,
    io: usize,
    /// Producer id -> last offset of its last batch (None: not active).
    producers: HashMap<i64, Option<i64>>,
    crash_at: Option<u32>,
}

impl GroupCtx<'_> {
    /// Whether an emptied batch must stay as an empty batch (Kafka's
    /// `BatchRetention.RETAIN_EMPTY`).
    fn keep_if_empty(&mut self, h: &BatchHeader) -> bool {
        if h.next_offset() == self.upper_bound {
            return true;
        }
        if h.producer_id < 0 {
            return false;
        }
        let log = self.log;
        let last = *self.producers.entry(h.producer_id).or_insert_with(|| {
            log.producer_entry(h.producer_id).and_then(|e| e.batches().last().map(|b| b.last_offset))
        });
        last == Some(h.last_offset())
    }
}

enum Decision {
    Keep,
    Replace(Vec<u8>),
    Drop,
}

/// The cleaner's filter for one batch (Kafka's `cleanInto` record filter).
fn decide(ctx: &mut GroupCtx<'_>, h: &BatchHeader, bytes: &Bytes, records: &mut (u64, u64)) -> Result<Decision> {
    let count = h.records_count.max(0) as u64;
    records.0 += count;
    if h.is_control() || ctx.aborted.holds(h) {
        records.1 += count;
        return Ok(Decision::Keep);
    }
    let recs = match filter::decode(bytes, h) {
        Ok(r) => r,
        Err(_) => {
            // Reported when the map was built; kept whole.
            records.1 += count;
            return Ok(Decision::Keep);
        }
    };
    if recs.is_empty() {
        return Ok(if ctx.keep_if_empty(h) { Decision::Keep } else { Decision::Drop });
    }
    let horizon = filter::delete_horizon(h);
    let latest = ctx.map.latest_offset();
    let mut keep = Vec::with_capacity(recs.len());
    let mut tombstones = false;
    for r in recs.iter(h) {
        let k = if r.offset > latest {
            true
        } else if let Some(key) = r.key {
            let newest = r.offset >= ctx.map.get(key).unwrap_or(-1);
            newest && (r.has_value || horizon.is_none_or(|hz| ctx.now < hz))
        } else {
            false
        };
        tombstones |= k && !r.has_value;
        keep.push(k);
    }
    let kept = keep.iter().filter(|k| **k).count();
    records.1 += kept as u64;
    let set_horizon = (tombstones && horizon.is_none()).then(|| ctx.now.saturating_add(ctx.cfg.delete_retention_ms));
    if kept == keep.len() && set_horizon.is_none() {
        return Ok(Decision::Keep);
    }
    if kept == 0 {
        return Ok(if ctx.keep_if_empty(h) { Decision::Replace(filter::empty_batch(h)) } else { Decision::Drop });
    }
    Ok(Decision::Replace(filter::rebuild(h, &recs, &keep, set_horizon)?))
}

enum GroupOutcome {
    Swapped,
    Unchanged,
    Aborted,
}

enum Written {
    Segment(Segment),
    Unchanged,
    Aborted,
}

/// Cleans one group of segments into one `.cleaned` segment and swaps it in.
fn clean_group(
    ctx: &mut GroupCtx<'_>,
    group: &[(SegmentMeta, Arc<SegmentFiles>)],
    stats: &mut CleanStats,
    abort: &dyn Fn() -> bool,
) -> Result<GroupOutcome> {
    let dir = ctx.log.dir().to_path_buf();
    let base = group[0].0.base;
    let files = swap::create_cleaned(&dir, base, ctx.cfg.segment_index_bytes)?;
    let written = (|| -> Result<Written> {
        let mut seg = Segment::new(next_segment_id(), base, ctx.now);
        let mut changed = group.len() > 1;
        let mut records = (0u64, 0u64);
        for (meta, src) in group {
            let mut reader = BatchReader::new(src, 0, meta.size, ctx.io);
            while let Some((h, bytes)) = reader.next()? {
                if abort() {
                    return Ok(Written::Aborted);
                }
                let out = match decide(ctx, &h, &bytes, &mut records)? {
                    Decision::Keep => bytes,
                    Decision::Replace(v) => {
                        changed = true;
                        Bytes::from(v)
                    }
                    Decision::Drop => {
                        changed = true;
                        continue;
                    }
                };
                let oh = BatchHeader::parse(&out)?;
                let mut prefix = [0u8; 16];
                prefix.copy_from_slice(&out[..16]);
                seg.append(&files, &prefix, &out, &oh, ctx.cfg.index_interval_bytes)?;
            }
        }
        stats.segments_read += group.len();
        stats.bytes_read += group.iter().map(|(m, _)| m.size).sum::<u64>();
        stats.records_read += records.0;
        stats.bytes_written += seg.size;
        stats.records_written += records.1;
        if !changed {
            return Ok(Written::Unchanged);
        }
        stats.segments_written += 1;
        seg.seal(&files)?;
        files.sync_all()?;
        // The group's aborted transactions (their data and markers are all
        // kept) go with the cleaned segment.
        let mut txns = Vec::new();
        for (m, _) in group {
            txns.extend(crate::txn::read_txn_index(&crate::txn::txn_index_path(&dir, m.base))?.0);
        }
        if !txns.is_empty() {
            let path = swap::cleaned_path(&dir, base, "txnindex");
            crate::txn::write_txn_index(&path, &txns)?;
            std::fs::File::open(&path)?.sync_all()?;
        }
        seg.created_ms = if seg.max_timestamp >= 0 { seg.max_timestamp.min(ctx.now) } else { ctx.now };
        Ok(Written::Segment(seg))
    })();
    drop(files);
    let seg = match written {
        Ok(Written::Segment(seg)) => seg,
        Ok(Written::Unchanged) => {
            swap::remove_cleaned(&dir, base);
            return Ok(GroupOutcome::Unchanged);
        }
        Ok(Written::Aborted) => {
            swap::remove_cleaned(&dir, base);
            return Ok(GroupOutcome::Aborted);
        }
        Err(e) => {
            swap::remove_cleaned(&dir, base);
            return Err(e);
        }
    };
    let metas: Vec<SegmentMeta> = group.iter().map(|(m, _)| m.clone()).collect();
    if ctx.log.install_cleaned(&metas, seg, ctx.crash_at)? {
        Ok(GroupOutcome::Swapped)
    } else {
        swap::remove_cleaned(&dir, base);
        Ok(GroupOutcome::Aborted)
    }
}

/// Finishes or rolls back an interrupted clean in a partition directory
/// before the log opens (see `swap`).
pub(crate) fn recover(dir: &Path, report: &mut Vec<String>) -> Result<()> {
    Ok(swap::recover(dir, report)?)
}
