//! The log manager: every partition log in one log directory, plus the
//! node-wide pieces they share (flusher threads, the file handle cache,
//! checkpoints, the clean-shutdown marker, periodic retention and lazy
//! flushing).
//!
//! Start-up: if `.kafka_cleanshutdown` is present the logs are trusted and
//! opened without scanning; otherwise each log recovers from its recovery
//! point. The marker is removed once the logs are open, so a crash from then
//! on is detected, and written again only after a complete shutdown.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::checkpoint::{self, LOG_START_FILE, RECOVERY_POINT_FILE};
use crate::cleaner::{CleanStats, Cleaner, CleanerOptions};
use crate::clock::{Clock, SystemClock};
use crate::config::LogConfig;
use crate::error::Result;
use crate::flush::Flusher;
use crate::handles::HandleCache;
use crate::log::{Log, LogEnv, OpenHint};
use crate::types::TopicPartition;

pub const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";

#[derive(Clone, Debug)]
pub struct ManagerOptions {
    pub flush_threads: usize,
    /// Closed segments kept open at once (each holds three descriptors).
    pub max_open_segments: usize,
    pub clock: Arc<dyn Clock>,
    /// `log.flush.offset.checkpoint.interval.ms`
    pub checkpoint_interval_ms: u64,
    /// `log.retention.check.interval.ms`
    pub retention_check_interval_ms: u64,
    /// `log.flush.scheduler.interval.ms`-like tick for lazy flushing.
    pub flush_check_interval_ms: u64,
    /// `producer.id.expiration.ms`: idle idempotent producers are forgotten.
    pub producer_id_expiration_ms: i64,
    /// `producer.id.expiration.check.interval.ms`
    pub producer_id_expiration_check_interval_ms: u64,
    /// `log.cleaner.*`: compaction of `cleanup.policy=compact` logs.
    pub cleaner: CleanerOptions,
}

impl Default for ManagerOptions {
    fn default() -> Self {
        ManagerOptions {
            // fsync threads mostly wait on the disk; 4 let many partitions share
            // journal commits (8 partitions, 16 KiB acks=all batches: +40% over 2,
            // see BENCHMARKS.md).
            flush_threads: 4,
            max_open_segments: 1024,
            clock: Arc::new(SystemClock),
            checkpoint_interval_ms: 60_000,
            retention_check_interval_ms: 300_000,
            flush_check_interval_ms: 1000,
            producer_id_expiration_ms: crate::producer_state::DEFAULT_PRODUCER_ID_EXPIRATION_MS,
            producer_id_expiration_check_interval_ms: 600_000,
            cleaner: CleanerOptions::default(),
        }
    }
}

#[derive(Debug)]
pub struct LogManager {
    dir: PathBuf,
    env: LogEnv,
    opts: ManagerOptions,
    logs: RwLock<HashMap<TopicPartition, Arc<Log>>>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    background: Mutex<Option<std::thread::JoinHandle<()>>>,
    cleaner: Cleaner,
    cleaner_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Serialises checkpoint writers (background thread vs shutdown).
    checkpoint_lock: Mutex<()>,
    /// Held while logs are created (`create_many`).
    creating: Mutex<()>,
}

/// What opening the log directory found.
#[derive(Debug, Default)]
pub struct OpenReport {
    pub clean: bool,
    pub partitions: usize,
    /// One line per repair recovery made.
    pub repairs: Vec<String>,
}

impl LogManager {
    /// Opens every partition log under `dir`. `config_for` gives each
    /// partition's configuration (topic overrides on top of defaults).
    pub fn open(
        dir: &Path,
        opts: ManagerOptions,
        config_for: impl Fn(&TopicPartition) -> LogConfig,
    ) -> Result<(Arc<LogManager>, OpenReport)> {
        std::fs::create_dir_all(dir)?;
        let marker = dir.join(CLEAN_SHUTDOWN_FILE);
        let clean = marker.exists();
        let mut report = OpenReport { clean, ..OpenReport::default() };
        let (recovery, e1) = checkpoint::read(&dir.join(RECOVERY_POINT_FILE));
        let (starts, e2) = checkpoint::read(&dir.join(LOG_START_FILE));
        let (cleaner, e3) = Cleaner::open(dir, opts.cleaner.clone(), opts.clock.clone());
        report.repairs.extend(e1.into_iter().chain(e2).chain(e3));
        let env = LogEnv {
            clock: opts.clock.clone(),
            cache: Arc::new(HandleCache::new(opts.max_open_segments)),
            flusher: Flusher::new(opts.flush_threads),
            producer_id_expiration_ms: opts.producer_id_expiration_ms,
            dir_failure: Arc::new(crate::LogDirFailure::default()),
        };
        let mut logs = HashMap::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with("-delete") {
                // A topic deletion interrupted by a crash: finish it.
                std::fs::remove_dir_all(entry.path())?;
                continue;
            }
            let Some(tp) = TopicPartition::parse_dir_name(&name) else { continue };
            let hint =
                OpenHint { clean, recovery_point: recovery.get(&tp).copied(), log_start: starts.get(&tp).copied() };
            let (log, repairs) = Log::open(tp.clone(), &entry.path(), config_for(&tp), env.clone(), hint)?;
            report.repairs.extend(repairs);
            logs.insert(tp, Arc::new(log));
        }
        report.partitions = logs.len();
        if clean {
            std::fs::remove_file(&marker)?;
        }
        let mgr = Arc::new(LogManager {
            dir: dir.to_path_buf(),
            env,
            opts,
            logs: RwLock::new(logs),
            stop: Arc::new((Mutex::new(false), Condvar::new())),
            background: Mutex::new(None),
            cleaner,
            cleaner_thread: Mutex::new(None),
            checkpoint_lock: Mutex::new(()),
            creating: Mutex::new(()),
        });
        // Record where recovery left each log, so a crash right after
        // start-up does not rescan what was just validated.
        mgr.write_checkpoints()?;
        Ok((mgr, report))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts the background threads: one for lazy flushes, checkpoints,
    /// retention and producer id expiry; one for the log cleaner (when
    /// `log.cleaner.enable`), so a long clean delays none of those.
    pub fn start_background(self: &Arc<Self>) {
        if self.opts.cleaner.enabled {
            self.start_cleaner();
        }
        let weak = Arc::downgrade(self);
        let stop = self.stop.clone();
        let opts = self.opts.clone();
        let spawned = std::thread::Builder::new().name("kaskade-log-bg".into()).spawn(move || {
            let tick = opts.flush_check_interval_ms.max(10);
            let (mut since_ckpt, mut since_ret, mut since_expiry) = (0u64, 0u64, 0u64);
            loop {
                {
                    let (lock, cv) = &*stop;
                    let mut stopped = lock.lock();
                    if !*stopped {
                        cv.wait_for(&mut stopped, Duration::from_millis(tick));
                    }
                    if *stopped {
                        return;
                    }
                }
                let Some(mgr) = weak.upgrade() else { return };
                since_ckpt += tick;
                since_ret += tick;
                since_expiry += tick;
                for log in mgr.all() {
                    log.flush_if_due();
                    if let Err(e) = log.sync_snapshots() {
                        tracing::warn!(tp = %log.topic_partition(), error = %e, "syncing producer snapshots failed");
                    }
                }
                if since_expiry >= opts.producer_id_expiration_check_interval_ms {
                    since_expiry = 0;
                    for log in mgr.all() {
                        log.remove_expired_producers();
                    }
                }
                if since_ret >= opts.retention_check_interval_ms {
                    since_ret = 0;
                    mgr.run_retention();
                }
                if since_ckpt >= opts.checkpoint_interval_ms {
                    since_ckpt = 0;
                    if let Err(e) = mgr.write_checkpoints() {
                        tracing::error!(error = %e, "writing offset checkpoints failed");
                    }
                }
            }
        });
        match spawned {
            Ok(h) => *self.background.lock() = Some(h),
            Err(e) => tracing::error!(error = %e, "could not start the log background thread"),
        }
    }

    fn start_cleaner(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let stop = self.stop.clone();
        let backoff = self.opts.cleaner.backoff_ms.max(1);
        let spawned = std::thread::Builder::new().name("kaskade-log-cleaner".into()).spawn(move || loop {
            {
                let (lock, cv) = &*stop;
                let mut stopped = lock.lock();
                if !*stopped {
                    cv.wait_for(&mut stopped, Duration::from_millis(backoff));
                }
                if *stopped {
                    return;
                }
            }
            let Some(mgr) = weak.upgrade() else { return };
            mgr.run_cleaner();
        });
        match spawned {
            Ok(h) => *self.cleaner_thread.lock() = Some(h),
            Err(e) => tracing::error!(error = %e, "could not start the log cleaner thread"),
        }
    }

    /// One cleaner pass over every compacted log that is due (blocking; the
    /// cleaner thread calls it every `log.cleaner.backoff.ms`, tests call it
    /// directly). Returns what was cleaned.
    pub fn run_cleaner(&self) -> Vec<(TopicPartition, CleanStats)> {
        let stop = self.stop.clone();
        let stopped = move || *stop.0.lock();
        let registered =
            |log: &Arc<Log>| self.logs.read().get(log.topic_partition()).is_some_and(|l| Arc::ptr_eq(l, log));
        self.cleaner.run_pass(&self.all(), &stopped, &registered)
    }

    /// A compacted log's first dirty offset, as checkpointed by the cleaner.
    pub fn cleaner_checkpoint(&self, tp: &TopicPartition) -> Option<i64> {
        self.cleaner.checkpoint(tp)
    }

    pub fn get(&self, tp: &TopicPartition) -> Option<Arc<Log>> {
        self.logs.read().get(tp).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Log>> {
        self.logs.read().values().cloned().collect()
    }

    pub fn partitions(&self) -> Vec<TopicPartition> {
        self.logs.read().keys().cloned().collect()
    }

    /// Returns the partition's log, creating it if it does not exist.
    pub fn get_or_create(&self, tp: &TopicPartition, config: LogConfig) -> Result<Arc<Log>> {
        let mut made = self.create_many(&[(tp.clone(), config)])?;
        made.pop().ok_or_else(|| std::io::Error::other("a created log went missing").into())
    }

    /// Returns the logs of `tps` in order, creating those that do not exist
    /// (several at once, see [`crate::parallel`]) and making their
    /// directories durable with one fsync of the log directory for all of
    /// them, before any is returned: a partition is hosted, and so written
    /// to, only once its directory survives a crash. (Kafka's
    /// `LogManager.createLogDirectory` syncs nothing; its first flush syncs
    /// the log's own directory, as Kaskade's does, `Log::open`.) On failure
    /// the logs made so far stay registered, durable, for the caller to
    /// delete, and the first error is returned.
    pub fn create_many(&self, tps: &[(TopicPartition, LogConfig)]) -> Result<Vec<Arc<Log>>> {
        if let Some(all) = tps.iter().map(|(tp, _)| self.get(tp)).collect::<Option<Vec<_>>>() {
            return Ok(all);
        }
        // One creator at a time (two would open one directory twice);
        // readers (`get`) do not wait for it.
        let _creating = self.creating.lock();
        let missing: Vec<&(TopicPartition, LogConfig)> = tps.iter().filter(|(tp, _)| self.get(tp).is_none()).collect();
        let hint = OpenHint { clean: true, recovery_point: None, log_start: None };
        // Several at once: measured faster on a moderately loaded 2-core
        // machine. Creating a log is mostly the filesystem's CPU (ext4
        // allocating the directory's and the `.log`'s inodes, ~40% of a
        // profiled 1,000-partition creation), and at load 16-20 parallel
        // creators contending for one inode group made it slower
        // (docs/performance.md).
        let opened = crate::parallel::map(&missing, crate::parallel::IO_PARALLELISM, |(tp, config)| {
            let dir = self.dir.join(tp.dir_name());
            Log::open(tp.clone(), &dir, config.clone(), self.env.clone(), hint).map(|(log, _)| Arc::new(log))
        });
        let mut first_error = None;
        let mut made = Vec::new();
        for ((tp, _), log) in missing.iter().zip(opened) {
            match log {
                Ok(log) => made.push((tp.clone(), log)),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if !made.is_empty() {
            // The new directories' entries in the log directory.
            if let Err(e) = std::fs::File::open(&self.dir).and_then(|d| d.sync_all()) {
                // Not durable: not registered either. Their directories stay
                // for start-up to delete (no topic in the image names them)
                // or to reopen (the committed image places them here).
                return Err(e.into());
            }
            let mut logs = self.logs.write();
            for (tp, log) in made {
                debug_assert!(!logs.contains_key(&tp), "{tp} was created twice");
                logs.insert(tp, log);
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        let logs = self.logs.read();
        tps.iter()
            .map(|(tp, _)| {
                logs.get(tp).cloned().ok_or_else(|| std::io::Error::other(format!("{tp}: not created")).into())
            })
            .collect()
    }

    /// Deletes a partition's log: renames its directory to
    /// `<topic>-<partition>.<id>-delete` (so a crash finishes the job at the
    /// next start), then removes it.
    pub fn delete(&self, tp: &TopicPartition) -> Result<bool> {
        let Some(log) = self.logs.write().remove(tp) else { return Ok(false) };
        // A clean in progress must not write into the directory going away.
        self.cleaner.abort_and_wait(tp);
        self.cleaner.forget(tp);
        let _ = log.close();
        let dir = self.dir.join(tp.dir_name());
        let unique = self.env.clock.now_ms();
        let doomed = self.dir.join(format!("{}.{unique:x}-delete", tp.dir_name()));
        std::fs::rename(&dir, &doomed)?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        std::fs::remove_dir_all(&doomed)?;
        Ok(true)
    }

    pub fn run_retention(&self) {
        for log in self.all() {
            if let Err(e) = log.apply_retention() {
                tracing::error!(tp = %log.topic_partition(), error = %e, "retention failed");
            }
        }
    }

    /// Writes the recovery-point and log-start checkpoints for every log.
    pub fn write_checkpoints(&self) -> Result<()> {
        let _g = self.checkpoint_lock.lock();
        let logs = self.all();
        let rp: Vec<_> = logs.iter().map(|l| (l.topic_partition().clone(), l.recovery_point())).collect();
        let ls: Vec<_> = logs.iter().map(|l| (l.topic_partition().clone(), l.log_start_offset())).collect();
        checkpoint::write(&self.dir.join(RECOVERY_POINT_FILE), &rp)?;
        checkpoint::write(&self.dir.join(LOG_START_FILE), &ls)?;
        Ok(())
    }

    /// Whether the directory failed (an append's I/O error in any of its
    /// logs), as the broker reports it to the controller.
    pub fn dir_failure(&self) -> &Arc<crate::LogDirFailure> {
        &self.env.dir_failure
    }

    /// Closed-segment file sets open right now (bounded by `max_open_segments`).
    pub fn open_closed_segments(&self) -> usize {
        self.env.cache.open_count()
    }

    /// Clean shutdown: stop background work, flush every log, write the
    /// checkpoints, then the clean-shutdown marker.
    pub fn shutdown(&self) -> Result<()> {
        {
            let (lock, cv) = &*self.stop;
            *lock.lock() = true;
            cv.notify_all();
        }
        if let Some(h) = self.background.lock().take() {
            let _ = h.join();
        }
        if let Some(h) = self.cleaner_thread.lock().take() {
            let _ = h.join();
        }
        for log in self.all() {
            log.close()?;
        }
        self.env.flusher.stop();
        self.write_checkpoints()?;
        let marker = self.dir.join(CLEAN_SHUTDOWN_FILE);
        std::fs::File::create(&marker)?.sync_all()?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        Ok(())
    }
}
