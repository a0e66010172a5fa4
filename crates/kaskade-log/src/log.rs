//! The partition log: an ordered run of segments with one active segment at
//! the end.
//!
//! Concurrency: all mutation (append, roll, truncate, retention) happens
//! under one short mutex that covers only in-memory bookkeeping. An append
//! reserves its offsets and its place in the active segment under the lock
//! and queues its bytes (`State::inflight`). One appender at a time is the
//! writer: outside the lock it copies every queued batch into the page
//! cache with one `pwritev` (its own and those queued meanwhile), then
//! publishes them under the lock, in reservation order. The writer role
//! sticks to the thread that last wrote: another appender that finds it
//! just stepped down waits a few microseconds (yielding the CPU) for it to
//! come back and take its batch along. Two threads taking turns at one
//! file run at ~70% of one thread writing for both (the kernel serialises
//! writes to a file, and the file's pages move between cores); measured in
//! `BENCHMARKS.md`. fsync happens on the flusher threads, and reads copy
//! what they need under the lock (an `Arc` of the files and a size) and
//! `pread` outside it.
//!
//! Invariants: offsets are strictly increasing across batches and
//! segments; `log_start <= next_offset`; `next_offset` and each segment's
//! `size` cover only published batches, which form a gap-free prefix of the
//! file (in-flight bytes lie past `size`, where readers and the flusher's
//! target never reach); rolls, truncation, retention and close first wait
//! for in-flight writes; the last segment is the active one and is never
//! deleted while it holds unexpired data; bytes are reported durable only
//! after an fsync covered them.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex, MutexGuard};
use tokio::sync::watch;

use crate::batch::{self, BatchHeader};
use crate::clock::Clock;
use crate::config::{FlushPolicy, LogConfig, TimestampType};
use crate::error::{LogError, Result};
use crate::flush::{FlushState, Flusher};
use crate::handles::{next_segment_id, HandleCache};
use crate::producer_state::{self, ProducerEntry, ProducerStateManager, Snapshots, SNAPSHOTS_TO_KEEP};
use crate::segment::{self, NextBatch, Pending, RollLimits, Segment, SegmentFiles};
use crate::txn::{self, AbortedTxn, CompletedTxn, EndMarker, Marker, TxnLog};
use crate::types::TopicPartition;

/// Shared machinery every log of a node uses.
#[derive(Clone, Debug)]
pub struct LogEnv {
    pub clock: Arc<dyn Clock>,
    pub cache: Arc<HandleCache>,
    pub flusher: Arc<Flusher>,
    /// `producer.id.expiration.ms`
    pub producer_id_expiration_ms: i64,
}

/// How the log was left the last time it was open.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenHint {
    /// A clean-shutdown marker was present: no recovery scan needed.
    pub clean: bool,
    /// Everything below this offset is known to be on disk.
    pub recovery_point: Option<i64>,
    /// The checkpointed log start offset (DeleteRecords, retention).
    pub log_start: Option<i64>,
}

/// Where an append landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendInfo {
    pub first_offset: i64,
    pub last_offset: i64,
    /// The broker's append time when the topic uses LogAppendTime, else -1.
    pub log_append_time: i64,
    pub log_start_offset: i64,
    /// The batch header as stored (patched base offset and epoch); for a
    /// duplicate, the retried batch's header with the original base offset.
    pub header: BatchHeader,
    /// The batch repeats one of its producer's last five (same producer id,
    /// epoch and sequences): it was not written again, and the offsets are
    /// those of the first attempt.
    pub duplicate: bool,
}

/// The result of a read.
#[derive(Clone, Debug)]
pub struct ReadResult {
    /// Whole batches, or `None` at the end of the log.
    pub records: Option<Bytes>,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

/// The first batch holding a timestamp >= the one asked for.
#[derive(Clone, Debug)]
pub struct TimestampHit {
    pub header: BatchHeader,
    pub batch: Bytes,
}

#[derive(Debug)]
struct State {
    config: LogConfig,
    segments: BTreeMap<i64, Segment>,
    log_start: i64,
    next_offset: i64,
    unflushed_messages: u64,
    first_unflushed_ms: Option<i64>,
    closed: bool,
    /// Idempotent producers' state: covers every batch below `next_offset`.
    producers: ProducerStateManager,
    snapshots: Snapshots,
    /// Snapshots written at a roll and `.txnindex` files appended to, not
    /// yet fsynced (`sync_snapshots`).
    unsynced_snapshots: Vec<std::fs::File>,
    /// Aborted transactions and completed ones not yet stable.
    txns: TxnLog,
    /// Batches placed in the active segment's file whose writes run or ran
    /// outside the lock, in offset (and file) order; published in order by
    /// `publish_written`. Empty whenever nothing is being appended.
    inflight: VecDeque<InFlight>,
    /// Ticket of `inflight.front()`: tickets count every append reserved.
    inflight_first: u64,
    /// Tickets below this were taken by a writer (their bytes are written
    /// or being written); the ones from it on wait for the next writer.
    taken: u64,
    /// An appender is writing queued batches (`write_until_published`).
    writing: bool,
    /// The thread that wrote last, and when it stepped down.
    last_writer: Option<(ThreadId, Instant)>,
    /// A write into the page cache failed: the batches reserved after it
    /// sit behind a hole, so no ticket from this one on is published and the
    /// log takes no more appends (Kafka takes the log directory offline).
    write_failure: Option<(u64, String)>,
    /// Threads waiting in `drain_writes`; appends wait while it is > 0, so
    /// a roll or truncation is not starved by a steady stream of appends.
    draining: u32,
}

/// One batch between its reservation and its publication.
#[derive(Debug)]
struct InFlight {
    position: u64,
    header: BatchHeader,
    /// What to write, until a writer takes it: the patched first 16 bytes,
    /// then the rest of the batch as received.
    data: Option<([u8; 16], Bytes)>,
    /// `None` until the write ran, then its outcome.
    written: Option<std::result::Result<(), String>>,
}

/// At most this many batches go in one `pwritev` (two iovecs each, and the
/// kernel takes 1024 per call).
const MAX_GROUP_BATCHES: usize = 512;
/// A writer whose own batch is published writes at most this many more
/// groups queued behind it before it returns and hands over, so it is not
/// kept writing for others forever.
const MAX_WRITER_ROUNDS: usize = 4;
/// How long an appender whose batch another thread writes polls for its
/// publication before sleeping on the condvar. A 16 KiB batch takes ~15 µs
/// to write; a sleep would cost the writer a wake-up (`try_to_wake_up`) and
/// a context switch per batch.
const POLL_FOR_PUBLICATION: Duration = Duration::from_micros(50);
/// How long after the last writer stepped down another thread leaves its
/// batch for it (polling) before writing itself. An appender in a loop is
/// back within a few microseconds; if it is not, this is the most a batch
/// waits for nothing.
const WRITER_GRACE: Duration = Duration::from_micros(20);

impl InFlight {
    fn end(&self) -> u64 {
        self.position + self.header.total_len() as u64
    }
}

impl State {
    /// The ticket the next reservation gets.
    fn end_ticket(&self) -> u64 {
        self.inflight_first + self.inflight.len() as u64
    }

    /// The offset the next append gets: after the last in-flight batch.
    fn reserved_next(&self) -> i64 {
        self.inflight.back().map_or(self.next_offset, |f| f.header.next_offset())
    }

    /// Where the next batch goes in the active segment of size `size`.
    fn reserved_position(&self, size: u64) -> u64 {
        self.inflight.back().map_or(size, InFlight::end)
    }

    fn pending(&self) -> Pending {
        // In-flight batches are contiguous from the segment's size on.
        let bytes = match (self.inflight.front(), self.inflight.back()) {
            (Some(first), Some(last)) => last.end() - first.position,
            _ => 0,
        };
        Pending { bytes, batches: self.inflight.len() as u64 }
    }
}

#[derive(Debug)]
pub struct Log {
    tp: TopicPartition,
    dir: PathBuf,
    env: LogEnv,
    flush: Arc<FlushState>,
    end_tx: watch::Sender<i64>,
    state: Mutex<State>,
    /// Signalled whenever in-flight writes leave `State::inflight`, and
    /// when a writer steps down.
    writes_done: Condvar,
    /// `State::inflight_first`, for appenders polling without the lock.
    published: AtomicU64,
}

fn offline_after_write_failure(e: &str) -> LogError {
    LogError::Io(std::io::Error::other(format!("log is offline after a failed write: {e}")))
}

impl Log {
    /// Opens (or creates) the log in `dir`, recovering it as `hint` says.
    /// Returns the log and a human report of what recovery did.
    pub fn open(
        tp: TopicPartition,
        dir: &Path,
        config: LogConfig,
        env: LogEnv,
        hint: OpenHint,
    ) -> Result<(Log, Vec<String>)> {
        std::fs::create_dir_all(dir)?;
        let mut report = Vec::new();
        // Finish or roll back an interrupted clean first (`cleaner::swap`).
        let mut swaps = Vec::new();
        crate::cleaner::recover(dir, &mut swaps)?;
        report.extend(swaps.into_iter().map(|line| format!("{tp}: {line}")));
        let mut bases = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".deleted")
                || name.ends_with(".cleaned")
                || name.ends_with(".swap")
                || name.ends_with(".txnindex.tmp")
            {
                std::fs::remove_file(entry.path())?;
                continue;
            }
            if let Some(stem) = name.strip_suffix(".log") {
                match stem.parse::<i64>() {
                    Ok(b) if stem.len() == 20 => bases.push(b),
                    _ => report.push(format!("{}: ignoring unexpected file {name}", tp)),
                }
            }
        }
        // Indexes without a log are leftovers of an interrupted deletion.
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(stem) = name
                .strip_suffix(".index")
                .or_else(|| name.strip_suffix(".timeindex"))
                .or_else(|| name.strip_suffix(".txnindex"))
            {
                if stem.parse::<i64>().map(|b| !bases.contains(&b)).unwrap_or(false) {
                    std::fs::remove_file(entry.path())?;
                }
            }
        }
        bases.sort_unstable();
        let now = env.clock.now_ms();
        let mut segments = BTreeMap::new();
        let recover_from_base = match (hint.clean, hint.recovery_point) {
            (true, _) => None,
            (false, None) => Some(i64::MIN),
            (false, Some(rp)) => Some(bases.iter().copied().filter(|b| *b <= rp).max().unwrap_or(i64::MIN)),
        };
        let mut cut_after: Option<i64> = None;
        for (i, &base) in bases.iter().enumerate() {
            if cut_after.is_some() {
                // Everything after a corrupt batch is unreachable: drop it.
                delete_segment_files(dir, base)?;
                report.push(format!("{tp}: deleted segment {base} after truncation at an earlier corrupt batch"));
                continue;
            }
            let next_base = bases.get(i + 1).copied();
            // A missing index would be recreated empty by the open below and
            // then trusted: an empty `.timeindex` understates the segment's
            // max timestamp (early retention, wrong time lookups) and an
            // empty `.index` makes every read scan from position 0. Rebuild.
            let missing: Vec<&str> = ["index", "timeindex"]
                .into_iter()
                .filter(|ext| !dir.join(segment::file_name(base, ext)).exists())
                .collect();
            let files = SegmentFiles::open(dir, base, config.segment_index_bytes, false)?;
            let mut seg = Segment::new(next_segment_id(), base, now);
            let needs_recovery = recover_from_base.is_some_and(|from| base >= from);
            let outcome = if !missing.is_empty() && files.log.metadata()?.len() > 0 {
                report.push(format!(
                    "{tp}: segment {base}: .{} missing; rebuilt the indexes from the log",
                    missing.join(" and .")
                ));
                Some(seg.rebuild(&files, config.index_interval_bytes)?)
            } else if needs_recovery {
                Some(match hint.recovery_point {
                    Some(rp) if rp > base => seg.recover(&files, rp, config.index_interval_bytes)?,
                    _ => seg.rebuild(&files, config.index_interval_bytes)?,
                })
            } else {
                if let Some(msg) = seg.load(&files, dir, config.index_interval_bytes)? {
                    report.push(format!("{tp}: {msg}"));
                }
                None
            };
            if let Some(out) = outcome {
                if let Some(note) = &out.note {
                    report.push(format!("{tp}: segment {base}: {note}"));
                }
                if let Some(p) = &out.problem {
                    report.push(format!(
                        "{tp}: segment {base}: truncated {} bytes at offset {}: {p}",
                        out.truncated_bytes, seg.next_offset
                    ));
                    if next_base.is_some() {
                        cut_after = Some(seg.next_offset);
                    }
                }
            }
            if seg.max_timestamp >= 0 {
                seg.created_ms = seg.max_timestamp.min(now);
            }
            segments.insert(base, (seg, files));
        }
        if segments.is_empty() {
            let base = hint.log_start.unwrap_or(0).max(0);
            let files = SegmentFiles::open(dir, base, config.segment_index_bytes, true)?;
            segments.insert(base, (Segment::new(next_segment_id(), base, now), files));
        }
        let first_base = *segments.keys().next().unwrap_or(&0);
        let next_offset = segments.values().next_back().map(|(s, _)| s.next_offset).unwrap_or(0);
        let log_start = hint.log_start.unwrap_or(first_base).max(first_base).min(next_offset);
        let (producers, mut snapshots, completed, replayed) =
            load_producer_state(&tp, dir, &segments, log_start, next_offset, &env, &mut report)?;
        let txns = load_txn_index(&tp, dir, segments.keys().copied(), next_offset, &completed, &mut report)?;
        if replayed {
            snapshot_after_replay(&tp, &mut snapshots, &producers, next_offset);
        }
        let mut segs = BTreeMap::new();
        let last_base = *segments.keys().next_back().unwrap_or(&0);
        for (base, (mut seg, files)) in segments {
            if base == last_base {
                seg.active = Some(Arc::new(files));
            } else {
                // Closed: sealed already; its files reopen through the cache.
                drop(files);
            }
            segs.insert(base, seg);
        }
        let flush = FlushState::new(dir.to_path_buf(), next_offset);
        let (end_tx, _) = watch::channel(next_offset);
        let log = Log {
            tp,
            dir: dir.to_path_buf(),
            env,
            flush,
            end_tx,
            state: Mutex::new(State {
                config,
                segments: segs,
                log_start,
                next_offset,
                unflushed_messages: 0,
                first_unflushed_ms: None,
                closed: false,
                producers,
                snapshots,
                unsynced_snapshots: Vec::new(),
                txns,
                inflight: VecDeque::new(),
                inflight_first: 0,
                taken: 0,
                writing: false,
                last_writer: None,
                write_failure: None,
                draining: 0,
            }),
            writes_done: Condvar::new(),
            published: AtomicU64::new(0),
        };
        for line in &report {
            tracing::warn!("{line}");
        }
        Ok((log, report))
    }

    pub fn topic_partition(&self) -> &TopicPartition {
        &self.tp
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> LogConfig {
        self.state.lock().config.clone()
    }

    /// The codec client batches must be stored in, if the topic names one
    /// (`compression.type`); `None`: as the producer compressed them.
    pub fn recompression(&self) -> Option<crate::recompress::Target> {
        self.state.lock().config.recompression
    }

    pub fn set_config(&self, config: LogConfig) {
        self.state.lock().config = config;
    }

    pub fn log_start_offset(&self) -> i64 {
        self.state.lock().log_start
    }

    pub fn log_end_offset(&self) -> i64 {
        self.state.lock().next_offset
    }

    /// Every offset below this is on disk.
    pub fn durable_end(&self) -> i64 {
        self.flush.durable_end()
    }

    /// Offsets below this are flushed: Kafka's recovery point.
    pub fn recovery_point(&self) -> i64 {
        self.flush.recovery_point()
    }

    /// Notified with the new log end offset after every append (and
    /// truncation): what long polls park on.
    pub fn subscribe_end(&self) -> watch::Receiver<i64> {
        self.end_tx.subscribe()
    }

    /// What consumers may read up to. In durable mode only what an fsync
    /// covered, so no consumer ever sees a record a crash could take back;
    /// in lazy mode the log end, as Kafka does with one replica.
    pub fn high_watermark(&self) -> i64 {
        if self.is_durable_mode() {
            self.flush.durable_end().min(self.log_end_offset())
        } else {
            self.log_end_offset()
        }
    }

    /// Notified whenever `high_watermark` may have moved: what long polls
    /// park on.
    pub fn subscribe_high_watermark(&self) -> watch::Receiver<i64> {
        if self.is_durable_mode() {
            self.flush.subscribe()
        } else {
            self.end_tx.subscribe()
        }
    }

    pub fn size_bytes(&self) -> u64 {
        self.state.lock().segments.values().map(|s| s.size).sum()
    }

    pub fn segment_count(&self) -> usize {
        self.state.lock().segments.len()
    }

    /// Base offsets of all segments, oldest first.
    pub fn segment_bases(&self) -> Vec<i64> {
        self.state.lock().segments.keys().copied().collect()
    }

    pub fn is_durable_mode(&self) -> bool {
        self.state.lock().config.flush == FlushPolicy::Durable
    }

    /// Appends one producer batch: validates it, assigns offsets, patches
    /// base offset and leader epoch and writes it. Returns once the bytes
    /// are in the page cache; `wait_durable` waits for the fsync.
    ///
    /// A batch with a producer id and a sequence goes through the producer
    /// state under the same lock as the write: a retry of one of the
    /// producer's last five batches is not written again and gets the first
    /// attempt's offsets (`duplicate`); a gap, a stale epoch or a new epoch
    /// not starting at 0 is refused.
    pub fn append(&self, records: impl batch::IntoBatchBytes, leader_epoch: i32) -> Result<AppendInfo> {
        let (batch, header) = self.validate(records.into_batch_bytes())?;
        self.append_validated(batch, header, leader_epoch, None)
    }

    /// Appends a transaction marker for `producer_id` (what Kafka's
    /// WriteTxnMarkers does on the partition leader): ends the producer's
    /// open transaction here, commit or abort. An abort is indexed in the
    /// active segment's `.txnindex`. Refused with INVALID_PRODUCER_EPOCH if
    /// the producer has moved to a newer epoch.
    pub fn append_marker(
        &self,
        producer_id: i64,
        epoch: i16,
        coordinator_epoch: i32,
        marker: Marker,
        leader_epoch: i32,
    ) -> Result<AppendInfo> {
        let bytes = txn::build_marker(producer_id, epoch, coordinator_epoch, marker, self.env.clock.now_ms());
        let (batch, header) = self.validate(Bytes::from(bytes))?;
        self.state.lock().producers.check_marker(producer_id, epoch)?;
        self.append_validated(batch, header, leader_epoch, Some(EndMarker { marker, coordinator_epoch }))
    }

    /// `append` of a batch a client produced (Kafka's `AppendOrigin.CLIENT`):
    /// also refuses control batches and a producer id without a sequence,
    /// as Kafka's `LogValidator` does.
    pub fn append_client(&self, records: impl batch::IntoBatchBytes, leader_epoch: i32) -> Result<AppendInfo> {
        let (batch, header) = self.validate(records.into_batch_bytes())?;
        if header.is_control() {
            return Err(LogError::InvalidRecord(format!(
                "Clients are not allowed to write control records in topic partition {}.",
                self.tp
            )));
        }
        if header.producer_id > producer_state::NO_PRODUCER_ID && header.base_sequence < 0 {
            return Err(LogError::InvalidRecord(format!(
                "Invalid sequence number {} in record batch with producerId {} in topic partition {}.",
                header.base_sequence, header.producer_id, self.tp
            )));
        }
        self.append_validated(batch, header, leader_epoch, None)
    }

    fn validate(&self, records: Bytes) -> Result<(Bytes, BatchHeader)> {
        batch::single_batch(&records)?;
        let max_bytes = self.state.lock().config.max_message_bytes;
        let header = batch::validate_for_append(&records, max_bytes)?;
        Ok((records, header))
    }

    /// The append proper. Under the lock it checks the producer state,
    /// rolls if needed, assigns offsets, reserves the batch's place in the
    /// active segment and queues it; then it waits for its publication,
    /// writing the queue itself when no other appender does
    /// (`write_until_published`). Reservations are consecutive, so the file
    /// stays in offset order; publication is in reservation order: a batch
    /// becomes readable (log end, indexes, flush target) only once every
    /// batch before it is written, and `append` returns only once its own
    /// batch is published.
    fn append_validated(
        &self,
        batch: Bytes,
        mut header: BatchHeader,
        leader_epoch: i32,
        marker: Option<EndMarker>,
    ) -> Result<AppendInfo> {
        if let Some(f) = self.flush.failure() {
            return Err(LogError::Io(std::io::Error::other(format!("log is offline after a failed fsync: {f}"))));
        }
        let now = self.env.clock.now_ms();
        let len = batch.len() as u64;
        let mut st = self.state.lock();
        loop {
            if st.closed {
                return Err(LogError::Closed);
            }
            if let Some((_, e)) = &st.write_failure {
                return Err(offline_after_write_failure(e));
            }
            if st.draining > 0 {
                self.writes_done.wait(&mut st);
                continue;
            }
            let base_offset = st.reserved_next();
            header.base_offset = base_offset;
            header.partition_leader_epoch = leader_epoch;
            if producer_state::is_idempotent(&header) {
                if let Some(dup) = st.producers.check(&header, base_offset)? {
                    header.base_offset = dup.first_offset;
                    // Kafka answers a duplicate with the first attempt's
                    // offsets and its max timestamp as the log append time.
                    return Ok(AppendInfo {
                        first_offset: dup.first_offset,
                        last_offset: dup.last_offset,
                        log_append_time: dup.max_timestamp,
                        log_start_offset: st.log_start,
                        header,
                        duplicate: true,
                    });
                }
            }
            if !self.needs_roll(&st, len, header.last_offset(), now)? {
                break;
            }
            if st.inflight.is_empty() {
                self.roll_locked(&mut st, now)?;
                break;
            }
            // Rolling seals the active segment: wait for its writes, then
            // decide again (other appends may have come meanwhile).
            self.writes_done.wait(&mut st);
        }
        let mut batch = batch;
        let mut log_append_time = -1;
        if st.config.timestamp_type == TimestampType::LogAppendTime {
            let mut stamped = batch.to_vec();
            batch::stamp_log_append_time(&mut stamped, now);
            header.max_timestamp = now;
            header.attributes |= batch::ATTR_LOG_APPEND_TIME;
            header.crc = batch::compute_crc(&stamped);
            log_append_time = now;
            batch = Bytes::from(stamped);
        }
        let base_offset = header.base_offset;
        let prefix = batch::patched_prefix(&batch, base_offset, leader_epoch);
        let (_, seg) = st.segments.iter().next_back().ok_or(LogError::Closed)?;
        if seg.active.is_none() {
            return Err(LogError::Closed);
        }
        let position = st.reserved_position(seg.size);
        let ticket = st.end_ticket();
        st.inflight.push_back(InFlight { position, header, data: Some((prefix, batch.slice(16..))), written: None });
        // The producer state covers reserved batches, so a pipelined next
        // batch of the same producer is checked against this one.
        if let Some(done) = st.producers.apply(&header, marker) {
            self.record_completed(&mut st, &done);
        }
        // No early return before the ticket is published: it must leave
        // `inflight`, or rolls and truncations would wait forever.
        let flush_now = self.write_until_published(&mut st, ticket, now);
        if let Some((failed_from, e)) = &st.write_failure {
            if ticket >= *failed_from {
                return Err(offline_after_write_failure(e));
            }
        }
        let (end, log_start) = (st.next_offset, st.log_start);
        drop(st);
        if flush_now && self.flush.try_queue() {
            self.env.flusher.submit(&self.flush);
        }
        // Concurrent appenders publish in order but may send out of order:
        // the log end only moves forward here (a truncation sends its own).
        self.end_tx.send_if_modified(|e| {
            let newer = end > *e;
            if newer {
                *e = end;
            }
            newer
        });
        Ok(AppendInfo {
            first_offset: base_offset,
            last_offset: header.last_offset(),
            log_append_time,
            log_start_offset: log_start,
            header,
            duplicate: false,
        })
    }

    /// Waits until batch `ticket` is published. Whenever no appender is
    /// writing and this batch waits to be written, this thread becomes the
    /// writer (unless another thread wrote last and stepped down less than
    /// `WRITER_GRACE` ago: then it first gives that one a moment to come
    /// back): it writes every queued batch with one `pwritev` and publishes
    /// them, then goes on with what was queued meanwhile, a few rounds at
    /// most once its own batch is out. Returns whether a flush is due for
    /// what this thread published.
    fn write_until_published(&self, st: &mut MutexGuard<'_, State>, ticket: u64, now: i64) -> bool {
        let mut flush_due = false;
        let me = std::thread::current().id();
        let mut polled = false;
        while st.inflight_first <= ticket {
            if st.writing || st.taken > ticket {
                if !polled {
                    polled = true;
                    MutexGuard::unlocked(st, || self.poll_until(ticket, POLL_FOR_PUBLICATION));
                } else {
                    self.writes_done.wait(st);
                }
                continue;
            }
            if let Some((last, at)) = st.last_writer {
                if last != me && at.elapsed() < WRITER_GRACE {
                    let left = WRITER_GRACE.saturating_sub(at.elapsed());
                    MutexGuard::unlocked(st, || self.poll_until(ticket, left));
                    continue;
                }
            }
            st.writing = true;
            let mut rounds = 0;
            while st.taken < st.end_ticket() && (st.taken <= ticket || rounds < MAX_WRITER_ROUNDS) {
                flush_due |= self.write_group(st, now);
                rounds += 1;
            }
            st.writing = false;
            st.last_writer = Some((me, Instant::now()));
            self.writes_done.notify_all();
        }
        flush_due
    }

    /// Polls (without the lock) until batch `ticket` is published or
    /// `limit` has passed, yielding the CPU between looks: on a busy
    /// machine a pure spin took the core from the threads that make
    /// progress (the writer, the network, the clients). Measured: the broker
    /// lost ~15% of its produce throughput with `spin_loop` here and none
    /// with `yield_now` (`kaskade-log/BENCHMARKS.md`).
    fn poll_until(&self, ticket: u64, limit: Duration) {
        let start = Instant::now();
        while self.published.load(Ordering::Acquire) <= ticket && start.elapsed() < limit {
            std::thread::yield_now();
        }
    }

    /// Takes the batches queued behind the last writer's (up to
    /// `MAX_GROUP_BATCHES`), writes them with the lock released, records
    /// the outcome and publishes. After a failed write nothing more is
    /// written: the batches are marked failed, so their appenders return.
    fn write_group(&self, st: &mut MutexGuard<'_, State>, now: i64) -> bool {
        let start = (st.taken - st.inflight_first) as usize;
        let count = (st.inflight.len() - start).min(MAX_GROUP_BATCHES);
        st.taken += count as u64;
        let group: Vec<([u8; 16], Bytes)> =
            st.inflight.range_mut(start..start + count).filter_map(|f| f.data.take()).collect();
        let position = st.inflight.get(start).map_or(0, |f| f.position);
        let files = st.segments.values().next_back().and_then(|s| s.active.clone());
        let written = match files {
            _ if st.write_failure.is_some() => Err("not written: an earlier write failed".to_string()),
            None => Err("no active segment".to_string()),
            Some(files) => MutexGuard::unlocked(st, || {
                let mut slices: Vec<std::io::IoSlice<'_>> = Vec::with_capacity(2 * group.len());
                for (prefix, rest) in &group {
                    slices.push(std::io::IoSlice::new(prefix));
                    slices.push(std::io::IoSlice::new(rest));
                }
                segment::write_all_vectored_at(&files.log, &mut slices, position).map_err(|e| e.to_string())
            }),
        };
        for f in st.inflight.range_mut(start..start + count) {
            f.written = Some(written.clone());
        }
        self.publish_written(st, now)
    }

    /// Publishes the written batches at the front of `inflight`, in order:
    /// records them in the active segment (size, indexes), moves the log end
    /// and the flush target, and wakes whoever waits for them. A failed
    /// write stops publication for good. Returns whether a flush is due.
    fn publish_written(&self, st: &mut State, now: i64) -> bool {
        let mut published = None;
        let mut popped = false;
        while let Some(written) = st.inflight.front_mut().and_then(|f| f.written.take()) {
            let Some(f) = st.inflight.pop_front() else { break };
            let ticket = st.inflight_first;
            st.inflight_first += 1;
            popped = true;
            if st.write_failure.is_some() {
                continue;
            }
            match written.and_then(|()| self.record_written(st, &f, now)) {
                Ok(files) => published = Some(files),
                Err(e) => {
                    tracing::error!(tp = %self.tp, offset = f.header.base_offset, error = %e,
                        "writing a batch failed: the log takes no more appends until it is reopened");
                    st.write_failure = Some((ticket, e));
                }
            }
        }
        if popped {
            self.published.store(st.inflight_first, Ordering::Release);
            self.writes_done.notify_all();
        }
        let Some(files) = published else { return false };
        let end = st.next_offset;
        self.flush.mark_dirty(&files, end);
        let flush_now = match st.config.flush {
            FlushPolicy::Durable => true,
            FlushPolicy::Lazy { messages, ms } => {
                messages.is_some_and(|m| st.unflushed_messages >= m)
                    || ms.is_some_and(|m| st.first_unflushed_ms.is_some_and(|t| now - t >= m as i64))
            }
        };
        if flush_now {
            st.unflushed_messages = 0;
            st.first_unflushed_ms = None;
        }
        flush_now
    }

    /// Records one written batch in the active segment and moves the log
    /// end past it. Returns the segment's files (the flush target).
    fn record_written(&self, st: &mut State, f: &InFlight, now: i64) -> std::result::Result<Arc<SegmentFiles>, String> {
        let State { segments, config, .. } = &mut *st;
        let (_, seg) = segments.iter_mut().next_back().ok_or("no active segment")?;
        let files = seg.active.clone().ok_or("no active segment")?;
        debug_assert_eq!(seg.size, f.position, "publication out of order");
        seg.record_batch(&files, f.position, &f.header, config.index_interval_bytes).map_err(|e| e.to_string())?;
        st.next_offset = f.header.next_offset();
        st.unflushed_messages += f.header.records_count.max(0) as u64;
        st.first_unflushed_ms.get_or_insert(now);
        Ok(files)
    }

    /// Waits (releasing the lock) until no write is in flight: what rolls,
    /// truncation, retention and close need before touching the active
    /// segment.
    fn drain_writes(&self, st: &mut MutexGuard<'_, State>) {
        if st.inflight.is_empty() {
            return;
        }
        st.draining += 1;
        while !st.inflight.is_empty() {
            self.writes_done.wait(st);
        }
        st.draining -= 1;
        // Appends held back by `draining` go on once the caller unlocks.
        self.writes_done.notify_all();
    }

    /// Indexes a transaction that just ended (an abort goes to the active
    /// segment's `.txnindex`; the file is fsynced with the snapshots).
    fn record_completed(&self, st: &mut State, done: &CompletedTxn) {
        let hw = self.high_watermark_locked(st);
        let first_open = st.producers.first_open_txn();
        let lso = st.txns.last_stable_offset(first_open, hw);
        if let Some(entry) = st.txns.complete(done, lso) {
            let base = st.segments.range(..=entry.last_offset).next_back().map_or(0, |(b, _)| *b);
            match txn::append_txn_index(&txn::txn_index_path(&self.dir, base), &entry) {
                Ok(f) => st.unsynced_snapshots.push(f),
                // The marker is in the log: the next open re-indexes it.
                Err(e) => tracing::error!(tp = %self.tp, error = %e, "writing the aborted-transaction index failed"),
            }
        }
    }

    fn high_watermark_locked(&self, st: &State) -> i64 {
        if st.config.flush == FlushPolicy::Durable {
            self.flush.durable_end().min(st.next_offset)
        } else {
            st.next_offset
        }
    }

    /// Kafka's last stable offset: read_committed consumers read below it.
    /// The first offset of the oldest transaction that is open, or whose
    /// marker is not yet below the high watermark; else the high watermark.
    pub fn last_stable_offset(&self) -> i64 {
        let mut st = self.state.lock();
        let hw = self.high_watermark_locked(&st);
        let first_open = st.producers.first_open_txn();
        // An open transaction whose start was deleted (DeleteRecords,
        // retention) holds the LSO at the log start, as Kafka clamps it.
        st.txns.last_stable_offset(first_open, hw).max(st.log_start.min(hw))
    }

    /// The aborted transactions a read_committed fetch of `[start, upper)`
    /// must return (Kafka's `collectAbortedTransactions`).
    pub fn aborted_transactions(&self, start: i64, upper: i64) -> Vec<AbortedTxn> {
        self.state.lock().txns.aborted_between(start, upper)
    }

    /// Open transactions on this partition as (producer id, first offset).
    pub fn open_transactions(&self) -> Vec<(i64, i64)> {
        self.state.lock().producers.open_txns().collect()
    }

    /// Every producer the partition knows (DescribeProducers).
    pub fn producer_entries(&self) -> Vec<ProducerEntry> {
        self.state.lock().producers.entries().cloned().collect()
    }

    /// Waits until every offset below `end` is on disk. Immediate in lazy
    /// flush mode, where acknowledgement does not wait for fsync.
    pub async fn wait_durable(&self, end: i64) -> Result<()> {
        if !self.is_durable_mode() {
            return Ok(());
        }
        let mut rx = self.flush.subscribe();
        let flush = self.flush.clone();
        let res = rx.wait_for(|d| *d >= end || flush.failure().is_some()).await;
        if let Some(f) = self.flush.failure() {
            return Err(LogError::Io(std::io::Error::other(format!("fsync failed: {f}"))));
        }
        res.map(|_| ()).map_err(|_| LogError::Closed)
    }

    /// Lazy mode: flushes when `flush.ms` has passed since the oldest
    /// unflushed append. Called periodically by the log manager.
    pub fn flush_if_due(&self) {
        let now = self.env.clock.now_ms();
        let due = {
            let mut st = self.state.lock();
            let due = match st.config.flush {
                FlushPolicy::Lazy { ms: Some(ms), .. } => st.first_unflushed_ms.is_some_and(|t| now - t >= ms as i64),
                _ => false,
            };
            if due {
                st.unflushed_messages = 0;
                st.first_unflushed_ms = None;
            }
            due
        };
        if due {
            self.request_flush();
        }
    }

    /// Queues a flush of everything written so far.
    pub fn request_flush(&self) {
        if self.flush.try_queue() {
            self.env.flusher.submit(&self.flush);
        }
    }

    /// Flushes synchronously (blocking): shutdown and tests.
    pub fn flush_blocking(&self) -> Result<()> {
        loop {
            let out = self.flush.sync_now()?;
            if !out.again {
                return Ok(());
            }
        }
    }

    fn needs_roll(&self, st: &State, len: u64, last_offset: i64, now: i64) -> Result<bool> {
        let (_, seg) = st.segments.iter().next_back().ok_or(LogError::Closed)?;
        let files = seg.active.as_ref().ok_or(LogError::Closed)?;
        let limits = RollLimits { segment_bytes: st.config.segment_bytes, segment_ms: st.config.max_segment_ms() };
        Ok(seg.should_roll(files, st.pending(), NextBatch { len, last_offset, now_ms: now }, limits))
    }

    /// Closes the active segment and starts a new one at the log end.
    pub fn roll(&self) -> Result<()> {
        let now = self.env.clock.now_ms();
        let mut st = self.state.lock();
        self.drain_writes(&mut st);
        let empty = st.segments.values().next_back().is_some_and(|s| s.size == 0);
        if empty {
            return Ok(());
        }
        self.roll_locked(&mut st, now)
    }

    fn roll_locked(&self, st: &mut State, now: i64) -> Result<()> {
        debug_assert!(st.inflight.is_empty(), "rolling under in-flight writes");
        let base = st.next_offset;
        let files = SegmentFiles::open(&self.dir, base, st.config.segment_index_bytes, true)?;
        if let Some((_, old)) = st.segments.iter_mut().next_back() {
            if let Some(old_files) = old.active.take() {
                old.seal(&old_files)?;
                self.flush.mark_rolled(&old_files);
            }
        }
        let mut seg = Segment::new(next_segment_id(), base, now);
        seg.active = Some(Arc::new(files));
        st.segments.insert(base, seg);
        tracing::debug!(tp = %self.tp, base, "rolled a new segment");
        self.snapshot_on_roll(st, now);
        Ok(())
    }

    /// Writes the producer snapshot at the new segment's base, as Kafka
    /// does on roll (a small write into the page cache). It is fsynced
    /// later by `sync_snapshots`, off the acknowledgement path, as Kafka
    /// flushes it asynchronously: a snapshot lost or torn by a crash is
    /// detected by its CRC and only costs a longer replay. So a failure here
    /// is logged, not returned.
    fn snapshot_on_roll(&self, st: &mut State, now: i64) {
        st.producers.remove_expired(now);
        let bytes = st.producers.to_snapshot();
        let end = st.next_offset;
        let res = st.snapshots.write(end, &bytes, false).and_then(|f| {
            st.unsynced_snapshots.push(f);
            st.snapshots.retain_latest(SNAPSHOTS_TO_KEEP)
        });
        if let Err(e) = res {
            tracing::warn!(tp = %self.tp, offset = end, error = %e, "writing the producer snapshot failed");
        }
    }

    /// Fsyncs the producer snapshots written at rolls since the last call
    /// (blocking; the log manager's background thread calls it).
    pub fn sync_snapshots(&self) -> Result<()> {
        let files = std::mem::take(&mut self.state.lock().unsynced_snapshots);
        if files.is_empty() {
            return Ok(());
        }
        for f in &files {
            f.sync_data()?;
        }
        std::fs::File::open(&self.dir)?.sync_all()?;
        Ok(())
    }

    /// Rebuilds the producer state after the log end moved back: drops the
    /// snapshots past the end, loads the newest one left and replays the
    /// headers after it (Kafka's `truncateAndReload`).
    fn reload_producer_state(&self, st: &mut State) -> Result<()> {
        // Never keep the state of batches that are gone, even if the
        // rebuild fails (an empty state accepts any sequence, KIP-360).
        st.producers.clear();
        let (ttl, now) = (self.env.producer_id_expiration_ms, self.env.clock.now_ms());
        let mut report = Vec::new();
        let end = st.next_offset;
        st.txns.truncate(end);
        rewrite_txn_indexes(&self.dir, st.segments.keys().copied(), st.txns.aborted())?;
        let mut completed = Vec::new();
        let State { snapshots, segments, config, log_start, next_offset, .. } = &mut *st;
        let (state, _) =
            producer_state::rebuild(snapshots, *log_start, *next_offset, ttl, now, &mut report, |state, from| {
                let mut n = 0;
                for seg in segments.values().filter(|s| s.next_offset > from && s.size > 0) {
                    let files = self.files_for(seg, config.segment_index_bytes)?;
                    n += producer_state::replay(state, &files, seg.size, from, &mut completed)?;
                }
                Ok(n)
            })?;
        for line in report {
            tracing::warn!("{}: {line}", self.tp);
        }
        st.producers = state;
        for done in &completed {
            self.record_completed(st, done);
        }
        Ok(())
    }

    /// What the partition knows of a producer (tests, tools).
    pub fn producer_entry(&self, producer_id: i64) -> Option<ProducerEntry> {
        self.state.lock().producers.get(producer_id).cloned()
    }

    /// How many producers the partition keeps state for.
    pub fn producer_count(&self) -> usize {
        self.state.lock().producers.len()
    }

    /// Forgets producers idle longer than `producer.id.expiration.ms`.
    /// Called periodically by the log manager. Returns how many went.
    pub fn remove_expired_producers(&self) -> usize {
        let now = self.env.clock.now_ms();
        self.state.lock().producers.remove_expired(now)
    }

    fn files_for(&self, seg: &Segment, index_bytes: u64) -> Result<Arc<SegmentFiles>> {
        if let Some(f) = &seg.active {
            return Ok(f.clone());
        }
        let (dir, base) = (self.dir.clone(), seg.base);
        Ok(self.env.cache.get_or_open(seg.id, || SegmentFiles::open(&dir, base, index_bytes, false))?)
    }

    /// Reads whole batches from `start`, at most `max_bytes` (but always
    /// one whole batch when there is one), stopping before `upper` (the
    /// high watermark; `None` = the log end). Reads one segment at a time,
    /// as Kafka does.
    pub fn read(&self, start: i64, max_bytes: usize, upper: Option<i64>) -> Result<ReadResult> {
        let (plan, log_start, log_end) = {
            let st = self.state.lock();
            let (log_start, log_end) = (st.log_start, st.next_offset);
            if start < log_start || start > log_end {
                return Err(LogError::OffsetOutOfRange { offset: start, start: log_start, end: log_end });
            }
            let mut plan = Vec::new();
            let floor = st.segments.range(..=start).next_back().map(|(b, _)| *b).unwrap_or(i64::MIN);
            for (_, seg) in st.segments.range(floor..) {
                if seg.next_offset <= start || seg.size == 0 {
                    continue;
                }
                plan.push((self.files_for(seg, st.config.segment_index_bytes)?, seg.size));
                if plan.len() == 2 {
                    break;
                }
            }
            (plan, log_start, log_end)
        };
        let upper = upper.unwrap_or(log_end).min(log_end);
        let mut records = None;
        if start < upper {
            for (files, size) in plan {
                if let Some(b) = segment::read(&files, size, start, max_bytes, upper)? {
                    records = Some(b);
                    break;
                }
            }
        }
        Ok(ReadResult { records, log_start_offset: log_start, log_end_offset: log_end })
    }

    /// The first batch whose max timestamp is >= `timestamp` (Kafka's
    /// ListOffsets by time). The caller picks the exact record in it.
    /// Batches wholly below the log start are not candidates (Kafka
    /// searches from the log start offset too).
    pub fn find_by_timestamp(&self, timestamp: i64) -> Result<Option<TimestampHit>> {
        let (candidates, log_start) = {
            let st = self.state.lock();
            let mut c = Vec::new();
            for seg in st.segments.values() {
                if seg.max_timestamp >= timestamp && seg.size > 0 && seg.next_offset > st.log_start {
                    c.push((self.files_for(seg, st.config.segment_index_bytes)?, seg.size));
                }
            }
            (c, st.log_start)
        };
        for (files, size) in candidates {
            if let Some((pos, header)) = segment::find_by_timestamp(&files, size, timestamp, log_start)? {
                let batch = segment::read_batch(&files, pos, header.total_len())?;
                return Ok(Some(TimestampHit { header, batch }));
            }
        }
        Ok(None)
    }

    /// The largest timestamp in the log and the last offset of the batch
    /// that holds it.
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        let st = self.state.lock();
        st.segments.values().filter(|s| s.max_timestamp >= 0).map(|s| (s.max_timestamp, s.max_timestamp_offset)).fold(
            None,
            |acc: Option<(i64, i64)>, x| match acc {
                Some(a) if a.0 >= x.0 => Some(a),
                _ => Some(x),
            },
        )
    }

    /// Moves the log start offset forward (DeleteRecords) and deletes the
    /// segments that lie wholly below it.
    pub fn advance_log_start(&self, offset: i64) -> Result<i64> {
        let mut st = self.state.lock();
        if offset > st.next_offset || offset < 0 {
            return Err(LogError::OffsetOutOfRange { offset, start: st.log_start, end: st.next_offset });
        }
        if offset > st.log_start {
            st.log_start = offset;
        }
        self.delete_below_log_start(&mut st)?;
        Ok(st.log_start)
    }

    fn delete_below_log_start(&self, st: &mut State) -> Result<()> {
        loop {
            let mut it = st.segments.keys();
            let (Some(&first), Some(&second)) = (it.next(), it.next()) else { return Ok(()) };
            if second > st.log_start {
                return Ok(());
            }
            self.delete_segment(st, first)?;
        }
    }

    fn delete_segment(&self, st: &mut State, base: i64) -> Result<()> {
        if let Some(seg) = st.segments.remove(&base) {
            self.env.cache.remove(seg.id);
            delete_segment_files(&self.dir, base)?;
        }
        if let Some(&first) = st.segments.keys().next() {
            st.log_start = st.log_start.max(first);
            st.txns.drop_below(first);
        }
        Ok(())
    }

    /// Applies `retention.ms` and `retention.bytes`: deletes whole
    /// segments, oldest first. Returns how many were deleted. Only when
    /// `cleanup.policy` includes `delete`, as Kafka does: a compacted log
    /// (`__consumer_offsets`) keeps its latest values however old.
    pub fn apply_retention(&self) -> Result<usize> {
        let now = self.env.clock.now_ms();
        let mut st = self.state.lock();
        if !st.config.cleanup_policy.deletes() {
            return Ok(0);
        }
        self.drain_writes(&mut st);
        let mut deleted = 0;
        let retention_ms = st.config.retention_ms;
        if retention_ms >= 0 {
            while let Some((&base, seg)) = st.segments.iter().next() {
                let expired = seg.size > 0 && seg.max_timestamp >= 0 && now - seg.max_timestamp > retention_ms;
                if !expired {
                    break;
                }
                if st.segments.len() == 1 {
                    // The active segment expired whole: roll so it can go.
                    self.roll_locked(&mut st, now)?;
                }
                self.delete_segment(&mut st, base)?;
                deleted += 1;
            }
        }
        let retention_bytes = st.config.retention_bytes;
        if retention_bytes >= 0 {
            let mut diff: i64 = st.segments.values().map(|s| s.size as i64).sum::<i64>() - retention_bytes;
            while st.segments.len() > 1 {
                let Some((&base, seg)) = st.segments.iter().next() else { break };
                if diff - (seg.size as i64) < 0 {
                    break;
                }
                diff -= seg.size as i64;
                self.delete_segment(&mut st, base)?;
                deleted += 1;
            }
        }
        if deleted > 0 {
            if let Some((&first, _)) = st.segments.iter().next() {
                st.log_start = st.log_start.max(first);
            }
            tracing::info!(tp = %self.tp, deleted, log_start = st.log_start, "retention deleted segments");
        }
        Ok(deleted)
    }

    /// Removes every batch whose last offset is >= `offset` (replication's
    /// truncation). The log end becomes the base of the first removed batch.
    pub fn truncate_to(&self, offset: i64) -> Result<()> {
        let now = self.env.clock.now_ms();
        let mut st = self.state.lock();
        self.drain_writes(&mut st);
        if offset >= st.next_offset {
            return Ok(());
        }
        let everything = offset <= st.log_start;
        if everything {
            // Nothing left: start over empty at `offset`.
            let bases: Vec<i64> = st.segments.keys().copied().collect();
            for b in bases {
                self.delete_segment(&mut st, b)?;
            }
            let base = offset.max(0);
            let files = SegmentFiles::open(&self.dir, base, st.config.segment_index_bytes, true)?;
            files.log.set_len(0)?;
            let mut seg = Segment::new(next_segment_id(), base, now);
            seg.active = Some(Arc::new(files));
            st.segments.insert(base, seg);
            st.log_start = base;
            st.next_offset = base;
        } else {
            // The first segment starts at or below the log start, which is
            // below `offset`, so at least one segment survives.
            let doomed: Vec<i64> = st.segments.range(offset..).map(|(b, _)| *b).collect();
            for b in doomed {
                self.delete_segment(&mut st, b)?;
            }
            let index_bytes = st.config.segment_index_bytes;
            let interval = st.config.index_interval_bytes;
            let last_base = *st.segments.keys().next_back().ok_or(LogError::Closed)?;
            let files = {
                let seg = st.segments.get(&last_base).ok_or(LogError::Closed)?;
                self.files_for(seg, index_bytes)?
            };
            let seg = st.segments.get_mut(&last_base).ok_or(LogError::Closed)?;
            seg.truncate_to(&files, offset, interval)?;
            self.env.cache.remove(seg.id);
            seg.active = Some(files);
            st.next_offset = seg.next_offset.max(seg.base);
            // The batch holding the log start may have been cut whole
            // (truncation mid-batch): keep `log_start <= next_offset`.
            st.log_start = st.log_start.min(st.next_offset);
        }
        // The producer state follows the log; an error is returned once the
        // log's own bookkeeping below is done.
        let producers = if everything {
            st.producers.clear();
            st.txns = TxnLog::default();
            st.snapshots.delete_all().map_err(LogError::from)
        } else {
            self.reload_producer_state(&mut st)
        };
        let end = st.next_offset;
        drop(st);
        self.flush.reset_to(end);
        self.end_tx.send_replace(end);
        producers
    }

    /// Refuses further appends, flushes everything and writes the producer
    /// snapshot at the log end (so the next start replays nothing).
    pub fn close(&self) -> Result<()> {
        let (snapshot, end) = {
            let mut st = self.state.lock();
            st.closed = true;
            self.drain_writes(&mut st);
            // A clean shutdown leaves complete indexes on disk.
            if let Some(files) = st.segments.values().next_back().and_then(|s| s.active.as_ref()) {
                files.write_index_tails()?;
            }
            st.producers.remove_expired(self.env.clock.now_ms());
            (st.producers.to_snapshot(), st.next_offset)
        };
        self.flush_blocking()?;
        self.sync_snapshots()?;
        let mut st = self.state.lock();
        st.snapshots.write(end, &snapshot, true)?;
        st.snapshots.retain_latest(SNAPSHOTS_TO_KEEP)?;
        Ok(())
    }
}

/// What the log cleaner (`crate::cleaner`) needs from a log: a view to
/// plan with, the files of closed segments, and the swap under the lock.
impl Log {
    pub(crate) fn cleaner_view(&self) -> crate::cleaner::CleanerView {
        let st = self.state.lock();
        let active_base = st.segments.keys().next_back().copied().unwrap_or(st.next_offset);
        let closed = st
            .segments
            .values()
            .filter(|s| s.active.is_none())
            .map(|s| crate::cleaner::SegmentMeta {
                base: s.base,
                id: s.id,
                size: s.size,
                next_offset: s.next_offset,
                max_timestamp: s.max_timestamp,
            })
            .collect();
        crate::cleaner::CleanerView {
            config: st.config.clone(),
            log_start: st.log_start,
            log_end: st.next_offset,
            active_base,
            closed,
        }
    }

    /// The files of a closed segment, `None` if it is gone or changed.
    pub(crate) fn cleaner_files(&self, meta: &crate::cleaner::SegmentMeta) -> Result<Option<Arc<SegmentFiles>>> {
        let st = self.state.lock();
        match st.segments.get(&meta.base) {
            Some(s) if s.id == meta.id && s.active.is_none() => {
                Ok(Some(self.files_for(s, st.config.segment_index_bytes)?))
            }
            _ => Ok(None),
        }
    }

    /// Swaps a cleaned segment (fsynced `.cleaned` files) in for the
    /// segments it replaces, if they are all still there unchanged (else
    /// `Ok(false)`: retention, DeleteRecords or a truncation got there
    /// first). Only renames and one directory fsync run under the lock.
    pub(crate) fn install_cleaned(
        &self,
        replaced: &[crate::cleaner::SegmentMeta],
        cleaned: Segment,
        crash_at: Option<u32>,
    ) -> Result<bool> {
        use crate::cleaner::swap::{self, Installed};
        let mut st = self.state.lock();
        let intact = !st.closed
            && replaced.iter().all(|m| {
                st.segments.get(&m.base).is_some_and(|s| s.id == m.id && s.size == m.size && s.active.is_none())
            });
        if !intact {
            return Ok(false);
        }
        let base = cleaned.base;
        let others: Vec<i64> = replaced.iter().map(|m| m.base).filter(|b| *b != base).collect();
        let outcome = swap::install(&self.dir, base, &others, crash_at)?;
        if matches!(outcome, Installed::Crashed) {
            return Err(LogError::Io(std::io::Error::other("injected crash in the segment swap")));
        }
        for m in replaced {
            if let Some(s) = st.segments.remove(&m.base) {
                self.env.cache.remove(s.id);
            }
        }
        st.segments.insert(base, cleaned);
        drop(st);
        if let Installed::CommittedWithError(e) = outcome {
            return Err(e.into());
        }
        swap::sync_dir(&self.dir)?;
        Ok(true)
    }
}

/// Loads the producer state at open (`producer_state::rebuild`). After a
/// replay a snapshot is written at the end, so the next start does not
/// replay again.
fn load_producer_state(
    tp: &TopicPartition,
    dir: &Path,
    segments: &BTreeMap<i64, (Segment, SegmentFiles)>,
    log_start: i64,
    end: i64,
    env: &LogEnv,
    report: &mut Vec<String>,
) -> Result<(ProducerStateManager, Snapshots, Vec<CompletedTxn>, bool)> {
    let now = env.clock.now_ms();
    let mut snaps = Snapshots::scan(dir)?;
    let mut bad = Vec::new();
    let mut completed = Vec::new();
    let (mut state, replayed) = producer_state::rebuild(
        &mut snaps,
        log_start,
        end,
        env.producer_id_expiration_ms,
        now,
        &mut bad,
        |state, from| {
            let mut n = 0;
            for (seg, files) in segments.values().filter(|(s, _)| s.next_offset > from && s.size > 0) {
                n += producer_state::replay(state, files, seg.size, from, &mut completed)?;
            }
            Ok(n)
        },
    )?;
    report.extend(bad.into_iter().map(|line| format!("{tp}: {line}")));
    if replayed > 0 {
        state.remove_expired(now);
        tracing::info!(%tp, end, batches = replayed, producers = state.len(), "rebuilt producer state from the log");
    }
    Ok((state, snaps, completed, replayed > 0))
}

/// After a replay, a snapshot at the log end saves the next start the same
/// replay. Written only once the `.txnindex` files hold every abort the
/// replay saw (the replay is what rebuilds lost index entries, and it
/// starts after the newest snapshot). Not worth failing the open.
fn snapshot_after_replay(tp: &TopicPartition, snaps: &mut Snapshots, state: &ProducerStateManager, end: i64) {
    if let Err(e) = snaps.write(end, &state.to_snapshot(), true).and_then(|_| snaps.retain_latest(SNAPSHOTS_TO_KEEP)) {
        tracing::warn!(%tp, error = %e, "writing the producer snapshot failed");
    }
}

/// Loads the aborted-transaction index at open: every segment's
/// `.txnindex`, cut at the first bad entry and at the log end, completed
/// with the aborts the producer-state replay saw (a crash can lose index
/// appends that were not fsynced, never the markers below the log end).
fn load_txn_index(
    tp: &TopicPartition,
    dir: &Path,
    bases: impl Iterator<Item = i64> + Clone,
    end: i64,
    completed: &[CompletedTxn],
    report: &mut Vec<String>,
) -> Result<TxnLog> {
    let mut aborted: Vec<AbortedTxn> = Vec::new();
    let mut rewrite = false;
    for base in bases.clone() {
        let path = txn::txn_index_path(dir, base);
        let (entries, cut) = txn::read_txn_index(&path)?;
        let before = entries.len();
        let kept: Vec<AbortedTxn> = entries
            .into_iter()
            .filter(|e| e.last_offset < end && aborted.last().is_none_or(|l| l.last_offset < e.last_offset))
            .collect();
        if cut || kept.len() != before {
            report
                .push(format!("{tp}: segment {base}: .txnindex cut to {} valid entries below the log end", kept.len()));
            rewrite = true;
        }
        aborted.extend(kept);
    }
    let mut txns = TxnLog::new(aborted);
    for done in completed {
        if txns.complete(done, done.first_offset).is_some() {
            rewrite = true;
        }
    }
    if rewrite {
        rewrite_txn_indexes(dir, bases, txns.aborted())?;
    }
    Ok(txns)
}

/// Writes every segment's `.txnindex` to hold exactly its share of
/// `aborted` (an entry belongs to the segment holding its marker).
fn rewrite_txn_indexes(dir: &Path, bases: impl Iterator<Item = i64>, aborted: &[AbortedTxn]) -> Result<()> {
    let bases: Vec<i64> = bases.collect();
    for (i, base) in bases.iter().enumerate() {
        let next = bases.get(i + 1).copied().unwrap_or(i64::MAX);
        let mine: Vec<AbortedTxn> =
            aborted.iter().filter(|a| a.last_offset >= *base && a.last_offset < next).copied().collect();
        let path = txn::txn_index_path(dir, *base);
        if mine.is_empty() && !path.exists() {
            continue;
        }
        txn::write_txn_index(&path, &mine)?;
    }
    Ok(())
}

/// Deletes a segment's files crash-safely: rename to `.deleted` first (so
/// a crash leaves files recovery recognises and removes), then unlink.
pub(crate) fn delete_segment_files(dir: &Path, base: i64) -> Result<()> {
    let mut renamed = Vec::new();
    for p in Segment::paths(dir, base).into_iter().chain([txn::txn_index_path(dir, base)]) {
        if p.exists() {
            let mut d = p.clone().into_os_string();
            d.push(".deleted");
            std::fs::rename(&p, &d)?;
            renamed.push(PathBuf::from(d));
        }
    }
    for d in renamed {
        std::fs::remove_file(d)?;
    }
    Ok(())
}
