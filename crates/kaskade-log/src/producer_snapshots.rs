//! The producer snapshot files of one partition directory
//! (`<20-digit offset>.snapshot`, Kafka's `ProducerStateManager` snapshots)
//! and the rebuild of a log's producer state from the newest valid one.
//!
//! Invariant: `Snapshots::offsets` are exactly the snapshot files of the
//! directory this value scanned or wrote since; a corrupt file is deleted
//! when it is found, so it is never loaded twice.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::producer_state::{ProducerStateManager, SNAPSHOT_SUFFIX};

/// Rebuilds the producer state of a log ending at `end`: drops the
/// snapshots past the end (a crash or a truncation cut the log below
/// them), loads the newest valid one left (corrupt ones are reported in
/// `report` and deleted) or starts empty at `log_start`, then lets `replay`
/// apply the batch headers from that offset on. Returns the state and how
/// many batches `replay` read.
pub fn rebuild(
    snaps: &mut Snapshots,
    log_start: i64,
    end: i64,
    expiration_ms: i64,
    now_ms: i64,
    report: &mut Vec<String>,
    replay: impl FnOnce(&mut ProducerStateManager, i64) -> crate::error::Result<u64>,
) -> crate::error::Result<(ProducerStateManager, u64)> {
    snaps.delete_above(end)?;
    let (from, mut state) = match snaps.load_latest(end, expiration_ms, now_ms, report)? {
        Some(found) => found,
        None => (log_start, ProducerStateManager::new(expiration_ms)),
    };
    let replayed = replay(&mut state, from)?;
    Ok((state, replayed))
}

/// The producer snapshot files of one partition directory.
#[derive(Debug)]
pub struct Snapshots {
    dir: PathBuf,
    offsets: BTreeSet<i64>,
}

pub fn snapshot_file_name(offset: i64) -> String {
    format!("{offset:020}{SNAPSHOT_SUFFIX}")
}

impl Snapshots {
    /// Lists the `<20-digit offset>.snapshot` files of `dir`.
    pub fn scan(dir: &Path) -> io::Result<Snapshots> {
        let mut offsets = BTreeSet::new();
        for entry in std::fs::read_dir(dir)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix(SNAPSHOT_SUFFIX) {
                if let (20, Ok(o)) = (stem.len(), stem.parse::<i64>()) {
                    offsets.insert(o);
                }
            }
        }
        Ok(Snapshots { dir: dir.to_path_buf(), offsets })
    }

    pub fn path(&self, offset: i64) -> PathBuf {
        self.dir.join(snapshot_file_name(offset))
    }

    /// Snapshot offsets, oldest first.
    pub fn offsets(&self) -> Vec<i64> {
        self.offsets.iter().copied().collect()
    }

    fn remove(&mut self, offset: i64) -> io::Result<()> {
        self.offsets.remove(&offset);
        match std::fs::remove_file(self.path(offset)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Deletes the snapshots above `end` (the log was cut below them).
    pub fn delete_above(&mut self, end: i64) -> io::Result<()> {
        let doomed: Vec<i64> = self.offsets.range(end.saturating_add(1)..).copied().collect();
        for o in doomed {
            self.remove(o)?;
        }
        Ok(())
    }

    pub fn delete_all(&mut self) -> io::Result<()> {
        self.delete_above(i64::MIN)
    }

    /// Keeps the newest `n` snapshots.
    pub fn retain_latest(&mut self, n: usize) -> io::Result<()> {
        while self.offsets.len() > n {
            let Some(&oldest) = self.offsets.iter().next() else { break };
            self.remove(oldest)?;
        }
        Ok(())
    }

    /// Writes the snapshot at `offset` and returns the file. With `sync`
    /// the file and the directory are made durable here; otherwise the
    /// caller arranges it (a torn or lost snapshot is detected by its CRC
    /// and only costs a longer replay).
    pub fn write(&mut self, offset: i64, bytes: &[u8], sync: bool) -> io::Result<File> {
        let path = self.path(offset);
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(&path)?;
        f.write_all(bytes)?;
        if sync {
            f.sync_data()?;
            File::open(&self.dir)?.sync_all()?;
        }
        self.offsets.insert(offset);
        Ok(f)
    }

    /// Loads the newest valid snapshot at or below `end`. A corrupt one is
    /// deleted and reported in `report`, and the next older one is tried.
    pub fn load_latest(
        &mut self,
        end: i64,
        expiration_ms: i64,
        now_ms: i64,
        report: &mut Vec<String>,
    ) -> io::Result<Option<(i64, ProducerStateManager)>> {
        let candidates: Vec<i64> = self.offsets.range(..=end).rev().copied().collect();
        for offset in candidates {
            let path = self.path(offset);
            let loaded = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| ProducerStateManager::from_snapshot(&b, expiration_ms, now_ms));
            match loaded {
                Ok(state) => return Ok(Some((offset, state))),
                Err(why) => {
                    report
                        .push(format!("producer snapshot {} is corrupt ({why}); ignored and deleted", path.display()));
                    self.remove(offset)?;
                }
            }
        }
        Ok(None)
    }
}
