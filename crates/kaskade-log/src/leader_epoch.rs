//! The leader-epoch cache: for each leader epoch, the first offset written
//! in it, persisted as Kafka's `leader-epoch-checkpoint` file in the
//! partition directory (version line `0`, a count line, then
//! `epoch startOffset` lines), as Kafka's `LeaderEpochFileCache`. It answers
//! OffsetForLeaderEpoch (`end_offset_for`), which a follower or a consumer
//! uses to find where its log diverged from the leader's.
//!
//! Invariants: epochs and start offsets strictly increase along the
//! entries; the file is rewritten (temp file, fsync, rename, directory
//! fsync) only when its content would change, so a crash leaves the old or
//! the new file; a missing or malformed file is rebuilt from the batches at
//! open.
//!
//! The file may lag the entries in one way only: the cut to the recovered
//! log at open (`cut_to_log`) is not written, because the next open cuts the
//! same entries again (the log never ends below the point recovery reached
//! without a truncation, and truncations are written). Every later change,
//! and every `assign` (which the log calls before each append, so before
//! the log grows past a stale entry), writes the entries if the file differs.
//! So an idle partition's open and its leader's `assign` of the same epoch
//! at the same offset write nothing: start-up writes no file per partition.

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
    /// What the file holds: `None` when there is no valid file (a load
    /// then rebuilds from the batches, which is always right).
    on_disk: Option<Vec<EpochEntry>>,
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
        let entries = parsed.clone().unwrap_or_default();
        Ok((LeaderEpochCache { path, entries, on_disk: parsed }, found))
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
    /// whether the entries changed. Either way the file is brought up to
    /// date if it differs (a cut at open left it behind), since the caller
    /// is about to extend the log.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> std::io::Result<bool> {
        if epoch < 0 || self.latest_epoch().is_some_and(|l| l >= epoch) {
            self.persist()?;
            return Ok(false);
        }
        self.entries.retain(|e| e.start_offset < start_offset);
        self.entries.push(EpochEntry { epoch, start_offset });
        debug_assert!(self.is_ordered(), "leader epochs out of order: {:?}", self.entries);
        self.persist()?;
        Ok(true)
    }

    /// Cuts the entries to the log recovered at open, `[log_start, end)`,
    /// without writing the file: the next open makes the same cut (see the
    /// module docs), and the first change or `assign` writes it.
    pub fn cut_to_log(&mut self, log_start: i64, end: i64) {
        self.entries.retain(|e| e.start_offset < end);
        self.cut_start(log_start);
    }

    /// The log end moved back to `end`: entries starting at or after it go
    /// (Kafka's `truncateFromEnd`).
    pub fn truncate_from_end(&mut self, end: i64) -> std::io::Result<()> {
        self.entries.retain(|e| e.start_offset < end);
        self.persist()
    }

    /// The log start moved to `start`: the entries wholly below it go, and
    /// the one covering it now starts there (Kafka's `truncateFromStart`).
    pub fn truncate_from_start(&mut self, start: i64) -> std::io::Result<()> {
        self.cut_start(start);
        self.persist()
    }

    fn cut_start(&mut self, start: i64) {
        let covering = self.entries.iter().rposition(|e| e.start_offset <= start);
        let Some(i) = covering else { return };
        self.entries.drain(..i);
        self.entries[0].start_offset = start;
        debug_assert!(self.is_ordered(), "leader epochs out of order: {:?}", self.entries);
    }

    /// Drops every entry (the log starts over empty).
    pub fn clear(&mut self) -> std::io::Result<()> {
        self.entries.clear();
        self.persist()
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

    /// Replaces the entries (the rebuild at open) and writes the file,
    /// unless there is none and nothing to put in it (a missing file and an
    /// empty rebuild say the same: a new partition writes its file once,
    /// at its first `assign`).
    pub fn rebuild(&mut self, entries: Vec<EpochEntry>) -> std::io::Result<()> {
        self.entries = entries;
        debug_assert!(self.is_ordered(), "leader epochs out of order: {:?}", self.entries);
        if self.entries.is_empty() && self.on_disk.is_none() && !self.path.exists() {
            return Ok(());
        }
        self.persist()
    }

    /// Writes the entries if the file does not hold them already.
    fn persist(&mut self) -> std::io::Result<()> {
        if self.on_disk.as_ref() == Some(&self.entries) {
            return Ok(());
        }
        self.flush()?;
        self.on_disk = Some(self.entries.clone());
        Ok(())
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

    /// The file's inode: every write renames a new file into place.
    fn inode(dir: &Path) -> Option<u64> {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(dir.join(LEADER_EPOCH_FILE)).ok().map(|m| m.ino())
    }

    fn reopened(dir: &Path, log_start: i64, end: i64) -> LeaderEpochCache {
        let (mut c, found) = LeaderEpochCache::load(dir).expect("load");
        assert!(found, "the file is one the load accepts");
        c.cut_to_log(log_start, end);
        c
    }

    #[test]
    fn a_new_partition_writes_its_file_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut c, found) = LeaderEpochCache::load(dir.path()).expect("load");
        assert!(!found);
        c.rebuild(Vec::new()).expect("rebuild");
        assert_eq!(inode(dir.path()), None, "an empty rebuild of a missing file writes nothing");
        assert!(c.assign(0, 0).expect("assign"));
        assert_eq!(std::fs::read_to_string(dir.path().join(LEADER_EPOCH_FILE)).expect("read"), "0\n1\n0 0\n");
    }

    #[test]
    fn reopening_an_idle_partition_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        cache(dir.path(), &[(0, 0)]);
        let before = inode(dir.path());
        // The empty log's entry is cut at open (Kafka's truncateFromEnd)...
        let mut c = reopened(dir.path(), 0, 0);
        assert_eq!(c.entries(), &[], "the entry at the log end is cut");
        assert_eq!(c.end_offset_for(0, 0), None);
        // ...and the leader assigns the same epoch at the same offset.
        c.assign(0, 0).expect("assign");
        assert_eq!(inode(dir.path()), before, "the file's content never changed: not rewritten");
        // A crash right after the cut (before any assign) reopens the same.
        assert_eq!(reopened(dir.path(), 0, 0).entries(), &[]);
    }

    #[test]
    fn a_cut_left_on_disk_is_written_before_the_log_grows() {
        let dir = tempfile::tempdir().expect("tempdir");
        cache(dir.path(), &[(0, 0), (5, 10)]);
        // Recovery cut the log to 10: epoch 5's entry is past the end.
        let mut c = reopened(dir.path(), 0, 10);
        assert_eq!(c.entries(), &[EpochEntry { epoch: 0, start_offset: 0 }]);
        // Crash now: the next open cuts the same entry again.
        assert_eq!(reopened(dir.path(), 0, 10).entries(), c.entries());
        // An append of an older epoch at 10 changes no entry, but the log is
        // about to pass offset 10: the stale entry must not survive on disk
        // (a reopen at end 20 would otherwise say epoch 5 starts at 10).
        assert!(!c.assign(0, 10).expect("assign"));
        assert_eq!(reopened(dir.path(), 0, 20).entries(), c.entries());
    }

    #[test]
    fn a_cut_at_the_start_is_written_by_the_next_change() {
        let dir = tempfile::tempdir().expect("tempdir");
        cache(dir.path(), &[(1, 0), (3, 10)]);
        let mut c = reopened(dir.path(), 12, 20);
        assert_eq!(c.entries(), &[EpochEntry { epoch: 3, start_offset: 12 }]);
        assert_eq!(reopened(dir.path(), 12, 20).entries(), c.entries(), "a crash before writing: the same cut");
        c.truncate_from_end(20).expect("no entry goes, but the file catches up");
        let (raw, _) = LeaderEpochCache::load(dir.path()).expect("load");
        assert_eq!(raw.entries(), c.entries());
    }

    #[test]
    fn a_crash_before_the_rename_leaves_the_old_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        cache(dir.path(), &[(0, 0), (2, 4)]);
        // Crash between writing the temp file and renaming it.
        std::fs::write(dir.path().join(LEADER_EPOCH_FILE).with_extension("tmp"), "0\n3\n0 0\n2").expect("write");
        let c = reopened(dir.path(), 0, 9);
        assert_eq!(c.latest_epoch(), Some(2));
        let mut c = c;
        assert!(c.assign(3, 9).expect("assign"), "the leftover temp file is overwritten");
        assert_eq!(reopened(dir.path(), 0, 10).latest_epoch(), Some(3), "once the log holds offset 9");
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
