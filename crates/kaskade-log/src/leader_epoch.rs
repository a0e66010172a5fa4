//! The leader-epoch cache: for each leader epoch, the first offset written
//! in it, persisted as Kafka's `leader-epoch-checkpoint` file in the
//! partition directory (version line `0`, a count line, then
//! `epoch startOffset` lines), as Kafka's `LeaderEpochFileCache`. It answers
//! OffsetForLeaderEpoch (`end_offset_for`), which a follower or a consumer
//! uses to find where its log diverged from the leader's.
//!
//! Invariants: epochs and start offsets strictly increase along the
//! entries; the file is rewritten (temp file, fsync, rename, directory
//! fsync) whenever the entries change, so a crash leaves the old or the new
//! file; a missing or malformed file is rebuilt from the batches at open.

use std::io::Write;
use std::path::{Path, PathBuf};

pub const LEADER_EPOCH_FILE: &str = "leader-epoch-checkpoint";

/// One entry: the epoch and the first offset written in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

#[derive(Debug)]
pub struct LeaderEpochCache {
    path: PathBuf,
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// Loads the partition's checkpoint, and whether a valid file was
    /// there (if not, the cache is empty and the caller rebuilds it from
    /// the log).
    pub fn load(dir: &Path) -> std::io::Result<(LeaderEpochCache, bool)> {
        let path = dir.join(LEADER_EPOCH_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let parsed = text.as_deref().and_then(parse);
        let found = parsed.is_some();
        Ok((LeaderEpochCache { path, entries: parsed.unwrap_or_default() }, found))
    }

    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` starts at `start_offset` (Kafka's `assign`):
    /// ignored unless the epoch is newer than the latest; entries at or
    /// past `start_offset` (left by a truncation) give way to it. Returns
    /// whether the entries changed (the file was rewritten).
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> std::io::Result<bool> {
        if epoch < 0 || self.latest_epoch().is_some_and(|l| l >= epoch) {
            return Ok(false);
        }
        self.entries.retain(|e| e.start_offset < start_offset);
        self.entries.push(EpochEntry { epoch, start_offset });
        debug_assert!(self.is_ordered(), "leader epochs out of order: {:?}", self.entries);
        self.flush()?;
        Ok(true)
    }

    /// The log end moved back to `end`: entries starting at or after it go
    /// (Kafka's `truncateFromEnd`).
    pub fn truncate_from_end(&mut self, end: i64) -> std::io::Result<()> {
        let before = self.entries.len();
        self.entries.retain(|e| e.start_offset < end);
        if self.entries.len() != before {
            self.flush()?;
        }
        Ok(())
    }

    /// The log start moved to `start`: the entries wholly below it go, and
    /// the one covering it now starts there (Kafka's `truncateFromStart`).
    pub fn truncate_from_start(&mut self, start: i64) -> std::io::Result<()> {
        let covering = self.entries.iter().rposition(|e| e.start_offset <= start);
        let Some(i) = covering else { return Ok(()) };
        if i == 0 && self.entries[0].start_offset == start {
            return Ok(());
        }
        self.entries.drain(..i);
        self.entries[0].start_offset = start;
        debug_assert!(self.is_ordered(), "leader epochs out of order: {:?}", self.entries);
        self.flush()
    }

    /// Drops every entry (the log starts over empty).
    pub fn clear(&mut self) -> std::io::Result<()> {
        if self.entries.is_empty() {
            return Ok(());
        }
        self.entries.clear();
        self.flush()
    }

    /// Kafka's `endOffsetFor`: the largest epoch <= `requested` this log
    /// knows and the offset where that epoch ended (the start of the next
    /// epoch, or `log_end` for the latest). `None` (Kafka's undefined epoch
    /// and offset) when `requested` is newer than every known epoch or the
    /// cache is empty. An epoch older than the first known answers the
    /// requested epoch with the first entry's start.
    pub fn end_offset_for(&self, requested: i32, log_end: i64) -> Option<(i32, i64)> {
        if requested < 0 {
            return None;
        }
        let latest = self.entries.last()?;
        if latest.epoch == requested {
            return Some((requested, log_end));
        }
        let higher = self.entries.iter().find(|e| e.epoch > requested)?;
        let floor = self.entries.iter().rev().find(|e| e.epoch <= requested);
        Some((floor.map_or(requested, |f| f.epoch), higher.start_offset))
    }

    /// Replaces the entries (the rebuild at open) and writes the file.
    pub fn rebuild(&mut self, entries: Vec<EpochEntry>) -> std::io::Result<()> {
        self.entries = entries;
        debug_assert!(self.is_ordered(), "leader epochs out of order: {:?}", self.entries);
        self.flush()
    }

    fn is_ordered(&self) -> bool {
        self.entries.windows(2).all(|w| w[0].epoch < w[1].epoch && w[0].start_offset < w[1].start_offset)
    }

    fn flush(&self) -> std::io::Result<()> {
        let mut text = format!("0\n{}\n", self.entries.len());
        for e in &self.entries {
            text.push_str(&format!("{} {}\n", e.epoch, e.start_offset));
        }
        let tmp = self.path.with_extension("tmp");
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

/// Adds the epoch of a batch at `base_offset` to `entries` being rebuilt
/// from the log (batches in offset order).
pub fn observe(entries: &mut Vec<EpochEntry>, epoch: i32, base_offset: i64) {
    if epoch >= 0 && entries.last().is_none_or(|l| epoch > l.epoch) {
        entries.push(EpochEntry { epoch, start_offset: base_offset });
    }
}

fn parse(text: &str) -> Option<Vec<EpochEntry>> {
    let mut lines = text.lines();
    if lines.next()? != "0" {
        return None;
    }
    let count: usize = lines.next()?.trim().parse().ok()?;
    let mut out = Vec::with_capacity(count.min(1024));
    for line in lines.by_ref().take(count) {
        let mut parts = line.split(' ');
        let (Some(e), Some(o), None) = (parts.next(), parts.next(), parts.next()) else { return None };
        out.push(EpochEntry { epoch: e.parse().ok()?, start_offset: o.parse().ok()? });
    }
    let ordered = out.windows(2).all(|w| w[0].epoch < w[1].epoch && w[0].start_offset < w[1].start_offset);
    (out.len() == count && ordered).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(dir: &Path, entries: &[(i32, i64)]) -> LeaderEpochCache {
        let (mut c, _) = LeaderEpochCache::load(dir).expect("load");
        for &(e, o) in entries {
            c.assign(e, o).expect("assign");
        }
        c
    }

    #[test]
    fn file_round_trips_in_kafka_format() {
        let dir = tempfile::tempdir().expect("tempdir");
        cache(dir.path(), &[(0, 0), (3, 10), (5, 42)]);
        let text = std::fs::read_to_string(dir.path().join(LEADER_EPOCH_FILE)).expect("read");
        assert_eq!(text, "0\n3\n0 0\n3 10\n5 42\n");
        let (c, found) = LeaderEpochCache::load(dir.path()).expect("load");
        assert!(found);
        assert_eq!(c.entries().len(), 3);
        std::fs::write(dir.path().join(LEADER_EPOCH_FILE), "0\n2\n1 5\n").expect("write");
        assert!(!LeaderEpochCache::load(dir.path()).expect("load").1, "a short file is malformed");
    }

    #[test]
    fn assign_only_takes_newer_epochs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = cache(dir.path(), &[(2, 0), (4, 10)]);
        assert!(!c.assign(4, 20).expect("assign"), "same epoch");
        assert!(!c.assign(3, 20).expect("assign"), "older epoch");
        assert!(c.assign(6, 10).expect("assign"), "a new epoch at a truncated offset replaces the entry");
        assert_eq!(c.entries(), &[EpochEntry { epoch: 2, start_offset: 0 }, EpochEntry { epoch: 6, start_offset: 10 }]);
    }

    #[test]
    fn end_offset_for_answers_as_kafka() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = cache(dir.path(), &[(1, 5), (3, 10), (5, 42)]);
        assert_eq!(c.end_offset_for(5, 50), Some((5, 50)), "latest epoch: the log end");
        assert_eq!(c.end_offset_for(3, 50), Some((3, 42)));
        assert_eq!(c.end_offset_for(4, 50), Some((3, 42)), "unknown epoch: the largest below it");
        assert_eq!(c.end_offset_for(0, 50), Some((0, 5)), "older than all: the first start");
        assert_eq!(c.end_offset_for(6, 50), None, "newer than all");
        assert_eq!(c.end_offset_for(-1, 50), None);
        let empty = LeaderEpochCache::load(&dir.path().join("none")).expect("load").0;
        assert_eq!(empty.end_offset_for(0, 0), None);
    }

    #[test]
    fn truncation_from_either_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = cache(dir.path(), &[(1, 5), (3, 10), (5, 42)]);
        c.truncate_from_end(42).expect("truncate");
        assert_eq!(c.latest_epoch(), Some(3));
        c.truncate_from_start(12).expect("truncate");
        assert_eq!(c.entries(), &[EpochEntry { epoch: 3, start_offset: 12 }]);
        let (reloaded, _) = LeaderEpochCache::load(dir.path()).expect("load");
        assert_eq!(reloaded.entries(), c.entries(), "every change is persisted");
        c.truncate_from_start(3).expect("below the first entry: unchanged");
        assert_eq!(c.entries()[0].start_offset, 12);
    }

    #[test]
    fn rebuild_observes_the_first_batch_of_each_newer_epoch() {
        let mut entries = Vec::new();
        for (epoch, base) in [(0, 0), (0, 3), (2, 7), (1, 9), (2, 12), (4, 20)] {
            observe(&mut entries, epoch, base);
        }
        let got: Vec<(i32, i64)> = entries.iter().map(|e| (e.epoch, e.start_offset)).collect();
        assert_eq!(got, vec![(0, 0), (2, 7), (4, 20)]);
    }
}
