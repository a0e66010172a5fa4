//! Group-committed fsync on dedicated threads.
//!
//! An append marks its log dirty and (in durable mode) queues it here; a
//! flusher thread takes every file written since the last sync and calls
//! `fdatasync` once for all of them, then publishes the new durable end
//! offset on the log's watch channel. Appends that land while a sync runs
//! are covered by the next one, so concurrent producers share fsyncs.
//! Nothing here ever runs on an async worker.
//!
//! Invariant: a log is synced by at most one thread at a time, so durable
//! offsets are published in order and a rolled segment's sync is never
//! overtaken by its successor's.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use crate::segment::SegmentFiles;

/// What a log needs made durable.
#[derive(Debug, Default)]
struct Pending {
    files: Vec<Arc<SegmentFiles>>,
    /// Sync the index files too (a segment was sealed).
    sealed: Vec<Arc<SegmentFiles>>,
    sync_dir: bool,
    /// End offset covered once the files above are synced.
    target: i64,
    queued: bool,
    in_flight: bool,
    /// The lowest end a truncation set while a sync was running: that sync
    /// covered the data below it, but not what was appended after the
    /// truncation, so it must not publish a durable end past it.
    reset_floor: i64,
}

/// The durability state one log shares with the flusher.
#[derive(Debug)]
pub struct FlushState {
    dir: PathBuf,
    pending: Mutex<Pending>,
    durable_tx: watch::Sender<i64>,
    /// Every offset below this is on disk: Kafka's recovery point.
    recovery_point: AtomicI64,
    /// Set when a sync failed: the log is no longer trustworthy.
    failed: Mutex<Option<String>>,
    /// Held for a whole group commit, so a blocking caller (`flush_blocking`,
    /// shutdown) and a flusher thread never sync the same log at once: the
    /// second waits, then covers what is left, and never publishes a durable
    /// end while the first one's fsync is still running.
    sync_lock: Mutex<()>,
    /// Told the new durable end whenever a sync moved it (the log's
    /// high-watermark rule); called without any of this state's locks.
    listener: Mutex<Option<DurableListener>>,
    /// Fault injection (tests of the storage-error paths): while set, every
    /// sync fails with this message before touching the disk, as a failing
    /// `fdatasync` would. Nothing but tests sets it.
    injected_failure: Mutex<Option<String>>,
}

/// A callback on durable-end changes.
#[derive(Clone)]
pub struct DurableListener(pub Arc<dyn Fn(i64) + Send + Sync>);

impl std::fmt::Debug for DurableListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DurableListener")
    }
}

impl FlushState {
    pub fn new(dir: PathBuf, durable_end: i64) -> Arc<FlushState> {
        let (durable_tx, _) = watch::channel(durable_end);
        Arc::new(FlushState {
            dir,
            pending: Mutex::new(Pending { target: durable_end, reset_floor: i64::MAX, ..Pending::default() }),
            durable_tx,
            recovery_point: AtomicI64::new(durable_end),
            failed: Mutex::new(None),
            sync_lock: Mutex::new(()),
            listener: Mutex::new(None),
            injected_failure: Mutex::new(None),
        })
    }

    /// Registers the callback told every new durable end.
    pub fn set_listener(&self, listener: DurableListener) {
        *self.listener.lock() = Some(listener);
    }

    pub fn durable_end(&self) -> i64 {
        *self.durable_tx.borrow()
    }

    pub fn recovery_point(&self) -> i64 {
        self.recovery_point.load(Ordering::Acquire)
    }

    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.durable_tx.subscribe()
    }

    pub fn failure(&self) -> Option<String> {
        self.failed.lock().clone()
    }

    /// Makes every sync from now on fail with `failure` (`None`: sync
    /// again). The flush seam's fault injection, for tests.
    pub fn inject_failure(&self, failure: Option<String>) {
        *self.injected_failure.lock() = failure;
    }

    /// Records that `files` hold data up to `end` that is not yet synced.
    pub fn mark_dirty(&self, files: &Arc<SegmentFiles>, end: i64) {
        let mut p = self.pending.lock();
        if !p.files.iter().any(|f| Arc::ptr_eq(f, files)) {
            p.files.push(files.clone());
        }
        p.target = p.target.max(end);
    }

    /// Claims the log's place in the flusher queue if it has unsynced work
    /// and is neither queued nor being synced (a running sync re-queues
    /// itself when it finishes). True means: submit it.
    pub fn try_queue(&self) -> bool {
        let mut p = self.pending.lock();
        if p.files.is_empty() && p.sealed.is_empty() && !p.sync_dir {
            return false;
        }
        self.take_queue_slot(&mut p)
    }

    /// The log's directory has entries not yet synced (a new log's first
    /// segment): the next sync covers the directory too, as Kafka's
    /// `LocalLog.flush` syncs a log's directory when it flushes a new segment.
    pub fn mark_dir_unsynced(&self) {
        self.pending.lock().sync_dir = true;
    }

    /// A segment was sealed (rolled away from) and a new one created.
    pub fn mark_rolled(&self, sealed: &Arc<SegmentFiles>) {
        let mut p = self.pending.lock();
        p.sealed.push(sealed.clone());
        p.sync_dir = true;
    }

    fn take_queue_slot(&self, p: &mut Pending) -> bool {
        if p.queued || p.in_flight {
            return false;
        }
        p.queued = true;
        true
    }

    /// The log shrank (truncation): what was durable past `end` is gone.
    pub fn reset_to(&self, end: i64) {
        let mut p = self.pending.lock();
        p.target = end;
        p.reset_floor = p.reset_floor.min(end);
        self.durable_tx.send_if_modified(|d| {
            if *d > end {
                *d = end;
                true
            } else {
                false
            }
        });
        self.recovery_point.fetch_min(end, Ordering::AcqRel);
    }

    /// Runs one group commit. Called by flusher threads, or directly by a
    /// blocking caller (shutdown, tests).
    pub fn sync_now(&self) -> std::io::Result<SyncOutcome> {
        let _serial = self.sync_lock.lock();
        let (files, sealed, sync_dir, target) = {
            let mut p = self.pending.lock();
            p.queued = false;
            p.in_flight = true;
            p.reset_floor = i64::MAX;
            (std::mem::take(&mut p.files), std::mem::take(&mut p.sealed), std::mem::take(&mut p.sync_dir), p.target)
        };
        let began = std::time::Instant::now();
        let result = (|| -> std::io::Result<()> {
            if let Some(failure) = self.injected_failure.lock().clone() {
                return Err(std::io::Error::other(failure));
            }
            for f in &sealed {
                f.sync_all()?;
            }
            for f in &files {
                f.log.sync_data()?;
            }
            if sync_dir {
                std::fs::File::open(&self.dir)?.sync_all()?;
            }
            Ok(())
        })();
        if result.is_ok() {
            crate::flush_stats::FSYNC_LATENCY.record(began.elapsed());
        }
        let (requeue, target) = {
            let mut p = self.pending.lock();
            p.in_flight = false;
            if result.is_err() {
                // Keep the work so a retry covers it.
                p.files.extend(files);
                p.sealed.extend(sealed);
                p.sync_dir |= sync_dir;
            }
            let target = target.min(p.reset_floor);
            if result.is_ok() {
                // Published under the pending lock, which `reset_to` also
                // holds: a truncation racing with this sync can never be
                // overwritten by the older, higher target.
                self.recovery_point.fetch_max(target, Ordering::AcqRel);
                self.durable_tx.send_if_modified(|d| {
                    if target > *d {
                        *d = target;
                        true
                    } else {
                        false
                    }
                });
            }
            (!p.files.is_empty() || !p.sealed.is_empty(), target)
        };
        if let Err(e) = result {
            *self.failed.lock() = Some(e.to_string());
            // Wake waiters so they see the failure instead of hanging.
            self.durable_tx.send_modify(|_| {});
            return Err(e);
        }
        let listener = self.listener.lock().clone();
        if let Some(listener) = listener {
            (listener.0)(self.durable_end());
        }
        let again = requeue && {
            let mut p = self.pending.lock();
            self.take_queue_slot(&mut p)
        };
        Ok(SyncOutcome { durable_end: target, again })
    }
}

/// The result of one group commit.
#[derive(Debug, Clone, Copy)]
pub struct SyncOutcome {
    pub durable_end: i64,
    /// More data arrived during the sync and the log was re-queued.
    pub again: bool,
}

/// A pool of flusher threads shared by every log of a log manager.
///
/// Logs wait in one queue; an idle thread waits on a condition variable, so
/// a submitted log wakes exactly one thread (a channel receiver shared
/// behind a mutex woke two per job: the receiver, then the next thread
/// taking the mutex to wait in its turn).
#[derive(Debug)]
pub struct Flusher {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Debug, Default)]
struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
}

#[derive(Debug, Default)]
struct Queue {
    logs: VecDeque<Arc<FlushState>>,
    /// Set by `stop`: threads exit once the queue is empty.
    closed: bool,
}

impl Flusher {
    pub fn new(threads: usize) -> Arc<Flusher> {
        let shared = Arc::new(Shared::default());
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let shared = shared.clone();
            let spawned =
                std::thread::Builder::new().name(format!("kaskade-flush-{i}")).spawn(move || flush_loop(&shared));
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => tracing::error!(error = %e, "could not start a flusher thread"),
            }
        }
        Arc::new(Flusher { shared, threads: Mutex::new(handles) })
    }

    pub fn submit(&self, state: &Arc<FlushState>) {
        {
            let mut q = self.shared.queue.lock();
            // Stopped: callers flush synchronously from now on.
            if q.closed {
                return;
            }
            q.logs.push_back(state.clone());
        }
        // Outside the lock: the woken thread takes it without waiting.
        self.shared.ready.notify_one();
    }

    /// Stops the threads after they drain their queue.
    pub fn stop(&self) {
        self.shared.queue.lock().closed = true;
        self.shared.ready.notify_all();
        for h in self.threads.lock().drain(..) {
            let _ = h.join();
        }
    }
}

fn flush_loop(shared: &Shared) {
    loop {
        let state = {
            let mut q = shared.queue.lock();
            loop {
                if let Some(state) = q.logs.pop_front() {
                    break state;
                }
                if q.closed {
                    return;
                }
                shared.ready.wait(&mut q);
            }
        };
        // Data that arrived during a sync is covered by the next one on
        // this same thread, which keeps one log's syncs in order.
        loop {
            match state.sync_now() {
                Ok(out) if out.again => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::error!(dir = %state.dir.display(), error = %e, "fsync failed; the log stops acknowledging writes");
                    break;
                }
            }
        }
    }
}
