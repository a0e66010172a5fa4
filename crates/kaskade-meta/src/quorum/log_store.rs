//! The Raft log and vote of one controller, on disk in
//! `<dir>/kaskade-metadata/raft/`: `vote.json` (the last vote), `purged.json`
//! (the last purged log id) and `log` (entries as checksummed JSON records,
//! see `files`).
//!
//! Entries are also kept in memory (the metadata log is small and purged
//! after every snapshot), so replication reads never touch the disk. Writes
//! go to memory first (readable at once, as openraft requires) and then to
//! the file on the blocking pool, fsynced before openraft is told they are
//! durable. openraft serialises the calls (`&mut self`), so writes reach the
//! file in order.
//!
//! Invariants: the file's entries (after `purged.json`) are contiguous and
//! equal the in-memory ones; a torn last record (a crash mid-append) is cut
//! at open, anything corrupt before it stops the open; a purge is recorded in
//! `purged.json` before the file is compacted, so a crash in between only
//! leaves purged entries that the next open skips.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogState, OptionalSend, RaftLogReader, StorageIOError};
use parking_lot::{Mutex, RwLock};

use super::files::{self, RecordError};
use super::types::{Entry, LogId, StorageError, TypeConfig, Vote};
use crate::MetaError;

/// The entries readers see, and where the log starts.
#[derive(Debug, Default)]
struct Entries {
    by_index: BTreeMap<u64, Entry>,
    last_purged: Option<LogId>,
}

/// The log file and where each of its entries starts.
#[derive(Debug)]
struct LogFile {
    path: PathBuf,
    file: File,
    /// Entry index -> byte offset of its record.
    offsets: BTreeMap<u64, u64>,
    len: u64,
}

/// The Raft log storage of one controller.
#[derive(Debug)]
pub struct LogStore {
    dir: PathBuf,
    entries: Arc<RwLock<Entries>>,
    file: Arc<Mutex<LogFile>>,
    vote: Option<Vote>,
}

/// Reads entries for replication (a clone shares the in-memory entries).
#[derive(Clone, Debug)]
pub struct LogReader {
    entries: Arc<RwLock<Entries>>,
}

fn corrupt(path: &Path, record: usize, reason: impl Into<String>) -> MetaError {
    MetaError::Corrupt { path: path.to_path_buf(), line: record, reason: reason.into() }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, MetaError> {
    let Some(bytes) = files::read_optional(path)? else { return Ok(None) };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| corrupt(path, 1, e.to_string()))
}

fn write_error(e: &io::Error) -> StorageError {
    StorageIOError::write_logs(openraft::AnyError::new(e)).into()
}

/// The error of a blocking task that did not finish (it panicked or the
/// runtime is shutting down).
fn join_error(e: tokio::task::JoinError) -> io::Error {
    io::Error::other(format!("log storage task failed: {e}"))
}

impl LogStore {
    /// Opens (or creates) the log in `dir`, replaying it into memory.
    /// Blocking: call it on the blocking pool.
    pub fn open(dir: &Path) -> Result<LogStore, MetaError> {
        std::fs::create_dir_all(dir)?;
        let vote: Option<Vote> = read_json(&dir.join("vote.json"))?;
        let last_purged: Option<LogId> = read_json(&dir.join("purged.json"))?;
        let path = dir.join("log");
        let bytes = files::read_optional(&path)?.unwrap_or_default();
        let mut by_index = BTreeMap::new();
        let mut offsets = BTreeMap::new();
        let mut pos = 0usize;
        let mut record = 0;
        let mut expected = last_purged.map(|l| l.index + 1);
        while pos < bytes.len() {
            record += 1;
            let (json, used) = match files::read_record(&bytes[pos..]) {
                Ok(r) => r,
                Err(RecordError::Torn) => {
                    tracing::warn!(path = %path.display(), "cutting a torn last Raft log record");
                    break;
                }
                Err(RecordError::Corrupt(reason)) => return Err(corrupt(&path, record, reason)),
            };
            let entry: Entry = serde_json::from_slice(json).map_err(|e| corrupt(&path, record, e.to_string()))?;
            let index = entry.log_id.index;
            if last_purged.is_some_and(|p| index <= p.index) {
                // Purged, but the compaction did not happen before a crash.
                pos += used;
                continue;
            }
            if expected.is_some_and(|want| want != index) {
                return Err(corrupt(&path, record, format!("entry {index} where {expected:?} was due")));
            }
            expected = Some(index + 1);
            offsets.insert(index, pos as u64);
            by_index.insert(index, entry);
            pos += used;
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        if pos < bytes.len() {
            file.set_len(pos as u64)?;
            file.sync_all()?;
        }
        files::sync_dir(&path)?;
        let mut log = LogFile { path, file, offsets, len: pos as u64 };
        if last_purged.is_some() && log.offsets.first_key_value().map(|(_, o)| *o).unwrap_or(log.len) > 0 {
            log.drop_before(last_purged.map(|p| p.index + 1).unwrap_or(0))?;
        }
        Ok(LogStore {
            dir: dir.to_path_buf(),
            entries: Arc::new(RwLock::new(Entries { by_index, last_purged })),
            file: Arc::new(Mutex::new(log)),
            vote,
        })
    }

    /// Runs `f` on the log file on the blocking pool.
    async fn with_file(&self, f: impl FnOnce(&mut LogFile) -> io::Result<()> + Send + 'static) -> io::Result<()> {
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || f(&mut file.lock())).await.map_err(join_error)?
    }
}

impl LogFile {
    fn append(&mut self, buf: &[u8], starts: &[(u64, u64)]) -> io::Result<()> {
        self.file.write_all(buf)?;
        self.file.sync_data()?;
        for (index, rel) in starts {
            self.offsets.insert(*index, self.len + rel);
        }
        self.len += buf.len() as u64;
        Ok(())
    }

    /// Cuts the file before entry `index` (inclusive, and everything after).
    fn truncate_from(&mut self, index: u64) -> io::Result<()> {
        let Some(&cut) = self.offsets.get(&index) else { return Ok(()) };
        self.file.set_len(cut)?;
        self.file.sync_data()?;
        self.offsets.split_off(&index);
        self.len = cut;
        Ok(())
    }

    /// Rewrites the file without the entries before `index` (temporary file,
    /// fsync, rename: a crash leaves the old or the new file).
    fn drop_before(&mut self, index: u64) -> io::Result<()> {
        let keep_from = self.offsets.range(index..).next().map(|(_, o)| *o).unwrap_or(self.len);
        if keep_from == 0 {
            return Ok(());
        }
        let bytes = std::fs::read(&self.path)?;
        let tail = bytes.get(keep_from as usize..).unwrap_or_default();
        files::write_atomic(&self.path, tail)?;
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        self.offsets = self.offsets.split_off(&index).into_iter().map(|(i, o)| (i, o - keep_from)).collect();
        self.len = tail.len() as u64;
        Ok(())
    }
}

impl LogReader {
    /// The first index held (after the purged entries).
    pub fn log_start(&self) -> u64 {
        self.entries.read().last_purged.map_or(0, |p| p.index + 1)
    }

    /// The index after the last entry held.
    pub fn log_end(&self) -> u64 {
        let entries = self.entries.read();
        entries
            .by_index
            .last_key_value()
            .map(|(i, _)| i + 1)
            .unwrap_or_else(|| entries.last_purged.map_or(0, |p| p.index + 1))
    }

    /// The term of the entry at `index`, if held.
    pub fn term_at(&self, index: u64) -> Option<u64> {
        self.entries.read().by_index.get(&index).map(|e| e.log_id.leader_id.term)
    }

    /// Entries from `from` up to `to` (exclusive), stopping after the one
    /// that reaches `max_bytes` of JSON (at least one entry), each with its
    /// JSON: what an observer's Fetch is answered with.
    pub fn read_json(&self, from: u64, to: u64, max_bytes: usize) -> Vec<(LogId, Vec<u8>)> {
        let entries = self.entries.read();
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for (_, e) in entries.by_index.range(from..to) {
            let Ok(json) = serde_json::to_vec(e) else { break };
            bytes += json.len();
            out.push((e.log_id, json));
            if bytes >= max_bytes {
                break;
            }
        }
        out
    }
}

fn read_range<RB: RangeBounds<u64>>(entries: &RwLock<Entries>, range: RB) -> Vec<Entry> {
    entries.read().by_index.range(range).map(|(_, e)| e.clone()).collect()
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(read_range(&self.entries, range))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(read_range(&self.entries, range))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let entries = self.entries.read();
        let last_log_id = entries.by_index.last_key_value().map(|(_, e)| e.log_id).or(entries.last_purged);
        Ok(LogState { last_purged_log_id: entries.last_purged, last_log_id })
    }

    async fn get_log_reader(&mut self) -> LogReader {
        LogReader { entries: self.entries.clone() }
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let json = serde_json::to_vec(vote).map_err(|e| StorageIOError::write_vote(&e))?;
        let path = self.dir.join("vote.json");
        tokio::task::spawn_blocking(move || files::write_atomic(&path, &json))
            .await
            .map_err(join_error)
            .and_then(|r| r)
            .map_err(|e| StorageIOError::write_vote(&e))?;
        self.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.vote)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let mut buf = Vec::new();
        let mut starts = Vec::with_capacity(entries.len());
        for e in &entries {
            let json = serde_json::to_vec(e).map_err(|err| StorageIOError::write_log_entry(e.log_id, &err))?;
            starts.push((e.log_id.index, buf.len() as u64));
            files::frame_record(&json, &mut buf);
        }
        {
            let mut mem = self.entries.write();
            for e in entries {
                debug_assert!(
                    mem.by_index.last_key_value().is_none_or(|(i, _)| *i + 1 == e.log_id.index),
                    "Raft appends contiguous entries"
                );
                mem.by_index.insert(e.log_id.index, e);
            }
        }
        match self.with_file(move |f| f.append(&buf, &starts)).await {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                let err = write_error(&e);
                callback.log_io_completed(Err(e));
                Err(err)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.entries.write().by_index.split_off(&log_id.index);
        self.with_file(move |f| f.truncate_from(log_id.index)).await.map_err(|e| write_error(&e))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        {
            let mut mem = self.entries.write();
            debug_assert!(mem.last_purged.is_none_or(|p| p <= log_id), "purges only move forward");
            mem.last_purged = Some(log_id);
            mem.by_index = mem.by_index.split_off(&(log_id.index + 1));
        }
        let json = serde_json::to_vec(&log_id).map_err(|e| write_error(&io::Error::other(e)))?;
        let purged = self.dir.join("purged.json");
        self.with_file(move |f| {
            files::write_atomic(&purged, &json)?;
            f.drop_before(log_id.index + 1)
        })
        .await
        .map_err(|e| write_error(&e))
    }
}
