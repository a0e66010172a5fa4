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

mod append;
mod cleaner;
mod durability;
mod high_watermark;
mod open;
mod producers;
mod read;
mod replicate;
mod retention;

pub use high_watermark::{PositionListener, Positions};
pub(crate) use retention::delete_segment_files;

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
use kaskade_types::{LeaderEpoch, Offset};

/// Shared machinery every log of a node uses.
#[derive(Clone, Debug)]
pub struct LogEnv {
    pub clock: Arc<dyn Clock>,
    pub cache: Arc<HandleCache>,
    pub flusher: Arc<Flusher>,
    /// `producer.id.expiration.ms`
    pub producer_id_expiration_ms: i64,
    /// The directory's failure signal, shared by its logs.
    pub dir_failure: Arc<crate::LogDirFailure>,
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

/// What [`Log::read_range`] returns.
#[derive(Debug)]
pub struct RangeRead {
    /// Where whole batches lie, or `None` at the end of the log.
    pub records: Option<crate::file_range::FileRange>,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

/// The largest timestamp of a log and the last offset of the batch that
/// holds it (ListOffsets' MAX_TIMESTAMP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxTimestamp {
    pub timestamp: i64,
    pub offset: i64,
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
    /// Where each leader epoch starts (`leader-epoch-checkpoint`).
    epochs: crate::leader_epoch::LeaderEpochCache,
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
    /// The high watermark, an input (`high_watermark`).
    hw: Arc<high_watermark::HighWatermark>,
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
        let durable = config.flush == FlushPolicy::Durable;
        let was_durable = std::mem::replace(&mut self.state.lock().config, config).flush == FlushPolicy::Durable;
        self.hw.set_durable(durable);
        if durable && !was_durable {
            // The HW never moves back: what lazy mode exposed stays
            // readable, and an fsync catches the durable end up with it.
            self.request_flush();
        }
        self.report_positions();
    }

    pub fn log_start_offset(&self) -> i64 {
        self.state.lock().log_start
    }

    pub fn log_end_offset(&self) -> i64 {
        self.state.lock().next_offset
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

    /// Kafka's `endOffsetFor` over the leader-epoch cache: the largest
    /// known epoch <= `epoch` and the offset where it ended (the log end for
    /// the latest); `None` when `epoch` is newer than every known one.
    pub fn end_offset_for_epoch(&self, epoch: LeaderEpoch) -> Option<(LeaderEpoch, Offset)> {
        let st = self.state.lock();
        st.epochs.end_offset_for(epoch.get(), st.next_offset).map(|(e, o)| (LeaderEpoch(e), Offset(o)))
    }

    /// Records that `epoch` starts at the log end (Kafka's
    /// `assignEpochStartOffset` when a replica becomes leader), so
    /// `end_offset_for_epoch` knows the epoch before its first batch. An
    /// epoch not newer than the latest known is ignored. Rewrites the
    /// `leader-epoch-checkpoint` file (fsync) when it changes: blocking.
    pub fn assign_leader_epoch(&self, epoch: LeaderEpoch) -> Result<()> {
        let mut st = self.state.lock();
        // After the batches already reserved: they carry the older epoch.
        let start = st.reserved_next();
        st.epochs.assign(epoch.get(), start)?;
        Ok(())
    }

    /// The latest leader epoch written to this log.
    pub fn latest_epoch(&self) -> Option<LeaderEpoch> {
        self.state.lock().epochs.latest_epoch().map(LeaderEpoch)
    }

    pub fn is_durable_mode(&self) -> bool {
        self.state.lock().config.flush == FlushPolicy::Durable
    }

    pub(super) fn files_for(&self, seg: &Segment, index_bytes: u64) -> Result<Arc<SegmentFiles>> {
        if let Some(f) = &seg.active {
            return Ok(f.clone());
        }
        let (dir, base) = (self.dir.clone(), seg.base);
        Ok(self.env.cache.get_or_open(seg.id, || SegmentFiles::open_closed(&dir, base, index_bytes))?)
    }
}
