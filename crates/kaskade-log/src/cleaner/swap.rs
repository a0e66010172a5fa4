//! The cleaner's crash-safe file protocol (Kafka's `replaceSegments` and
//! the `.cleaned` / `.swap` handling of `LogLoader`).
//!
//! A cleaned segment replacing segments `[b, ...]` is written as
//! `b.log.cleaned`, `b.index.cleaned`, `b.timeindex.cleaned` (and
//! `b.txnindex.cleaned` holding the group's aborted transactions, if any)
//! and fsynced. Then, under the log's lock:
//!
//! 1. The index files, then `b.log.cleaned`, are renamed to `.swap`, and the
//!    directory is fsynced. The `b.log.swap` file is the commit point: from
//!    then on the swap is completed, also by recovery after a crash.
//! 2. The replaced segments other than `b` are renamed to `.deleted` and
//!    unlinked (open handles keep reading the unlinked files).
//! 3. The index `.swap` files, then `b.log.swap`, are renamed over the old
//!    `b.*` files.
//!
//! Recovery at open (`recover`): `.cleaned` files are deleted (the swap did
//! not commit; the old segments are all there); an index `.swap` without its
//! `b.log.swap` is deleted for the same reason. For each `b.log.swap`: every
//! segment whose base lies in `(b, next)`, where `next` follows the swap's
//! last batch, is deleted (only the replaced segments can lie there: the
//! cleaned data of a group never reaches the next group's base), then the
//! index swaps are renamed into place (an offset or time index whose swap
//! is gone is deleted and rebuilt by the open; a `.txnindex` whose swap is
//! gone was renamed already, or never existed), and `b.log.swap` becomes
//! `b.log`.
//! Every step is idempotent, so a crash during recovery is recovered again.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::index::{OffsetIndex, TimeIndex};
use crate::segment::{self, SegmentFiles};

pub const CLEANED_SUFFIX: &str = ".cleaned";
pub const SWAP_SUFFIX: &str = ".swap";
/// Index files first, the log last: the log's rename is the one that
/// counts. A missing `.txnindex` (no aborted transactions) is skipped.
const EXTS: [&str; 4] = ["index", "timeindex", "txnindex", "log"];

fn with_suffix(dir: &Path, base: i64, ext: &str, suffix: &str) -> PathBuf {
    dir.join(format!("{}{suffix}", segment::file_name(base, ext)))
}

/// Creates empty `.cleaned` files for a segment at `base` (replacing any
/// leftovers) and opens them as a segment's files.
pub fn create_cleaned(dir: &Path, base: i64, index_max_bytes: u64) -> io::Result<SegmentFiles> {
    remove_cleaned(dir, base);
    let log =
        File::options().read(true).write(true).create_new(true).open(with_suffix(dir, base, "log", CLEANED_SUFFIX))?;
    Ok(SegmentFiles::from_parts(
        log,
        OffsetIndex::open(&with_suffix(dir, base, "index", CLEANED_SUFFIX), base, index_max_bytes)?,
        TimeIndex::open(&with_suffix(dir, base, "timeindex", CLEANED_SUFFIX), base, index_max_bytes)?,
    ))
}

/// The `.cleaned` path of a segment file.
pub fn cleaned_path(dir: &Path, base: i64, ext: &str) -> PathBuf {
    with_suffix(dir, base, ext, CLEANED_SUFFIX)
}

/// Removes a segment's `.cleaned` files (an abandoned clean), best effort.
pub fn remove_cleaned(dir: &Path, base: i64) {
    for ext in EXTS {
        let _ = std::fs::remove_file(with_suffix(dir, base, ext, CLEANED_SUFFIX));
    }
}

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// What `install` did.
#[derive(Debug)]
pub enum Installed {
    /// The cleaned segment is in place and the replaced ones are gone.
    Done,
    /// The swap committed (recovery would complete it) but a later step
    /// failed: the caller must still treat the segments as replaced.
    CommittedWithError(io::Error),
    /// A test's injected crash stopped the protocol at this step: files are
    /// left as a crash would leave them.
    Crashed,
}

/// Steps through the protocol, stopping for an injected crash.
struct Steps {
    done: u32,
    crash_at: Option<u32>,
}

impl Steps {
    fn next(&mut self) -> bool {
        let crash = self.crash_at == Some(self.done);
        self.done += 1;
        crash
    }
}

/// Installs the fsynced `.cleaned` segment at `base` in place of itself and
/// the segments at `others` (steps 1-3 above). The caller holds the log's
/// lock. `Err` means the swap did not commit and the old segments are
/// intact (the `.swap`/`.cleaned` files are removed). `crash_at` stops the
/// protocol before that step (0-based), for tests.
pub fn install(dir: &Path, base: i64, others: &[i64], crash_at: Option<u32>) -> io::Result<Installed> {
    let mut steps = Steps { done: 0, crash_at };
    let committed = (|| -> io::Result<bool> {
        for ext in EXTS {
            if steps.next() {
                return Ok(false);
            }
            match std::fs::rename(with_suffix(dir, base, ext, CLEANED_SUFFIX), with_suffix(dir, base, ext, SWAP_SUFFIX))
            {
                Err(e) if e.kind() == io::ErrorKind::NotFound && ext == "txnindex" => {}
                other => other?,
            }
        }
        if steps.next() {
            return Ok(false);
        }
        sync_dir(dir)?;
        Ok(true)
    })();
    match committed {
        Ok(true) => {}
        Ok(false) => return Ok(Installed::Crashed),
        Err(e) => {
            for ext in EXTS {
                let _ = std::fs::remove_file(with_suffix(dir, base, ext, SWAP_SUFFIX));
            }
            remove_cleaned(dir, base);
            return Err(e);
        }
    }
    let finish = (|| -> io::Result<bool> {
        for &b in others {
            let mut renamed = Vec::new();
            if steps.next() {
                return Ok(false);
            }
            for p in crate::segment::Segment::paths(dir, b).into_iter().chain([crate::txn::txn_index_path(dir, b)]) {
                let mut d = p.clone().into_os_string();
                d.push(".deleted");
                match std::fs::rename(&p, &d) {
                    Ok(()) => renamed.push(d),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            if steps.next() {
                return Ok(false);
            }
            for d in renamed {
                std::fs::remove_file(d)?;
            }
        }
        for ext in EXTS {
            if steps.next() {
                return Ok(false);
            }
            match std::fs::rename(with_suffix(dir, base, ext, SWAP_SUFFIX), dir.join(segment::file_name(base, ext))) {
                Err(e) if e.kind() == io::ErrorKind::NotFound && ext == "txnindex" => {}
                other => other?,
            }
        }
        Ok(true)
    })();
    match finish {
        Ok(true) => Ok(Installed::Done),
        Ok(false) => Ok(Installed::Crashed),
        Err(e) => Ok(Installed::CommittedWithError(e)),
    }
}

/// The offset after the last whole batch of a log file (its base when it
/// holds none).
fn next_offset_of(path: &Path, base: i64) -> io::Result<i64> {
    let f = File::open(path)?;
    let len = f.metadata()?.len();
    let mut next = base;
    segment::scan(&f, 0, len, false, |_, h| {
        next = h.next_offset();
        true
    })?;
    Ok(next)
}

fn parse_base(stem: &str) -> Option<i64> {
    (stem.len() == 20).then(|| stem.parse().ok()).flatten()
}

/// Finishes or rolls back what the cleaner left in `dir` (see the module
/// documentation). Runs before the log's segments are opened; reports what
/// it did in `report`.
pub fn recover(dir: &Path, report: &mut Vec<String>) -> io::Result<()> {
    let mut log_swaps = Vec::new();
    let mut index_swaps = Vec::new();
    let mut logs = Vec::new();
    let mut changed = false;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(CLEANED_SUFFIX) {
            std::fs::remove_file(entry.path())?;
            report.push(format!("deleted {name}, left by an interrupted clean"));
            changed = true;
        } else if let Some(stem) = name.strip_suffix(SWAP_SUFFIX) {
            match stem.strip_suffix(".log").and_then(parse_base) {
                Some(b) => log_swaps.push(b),
                None => index_swaps.push((entry.path(), stem.to_string())),
            }
        } else if let Some(b) = name.strip_suffix(".log").and_then(parse_base) {
            logs.push(b);
        }
    }
    for (path, stem) in index_swaps {
        let base = stem.split('.').next().and_then(parse_base);
        if !base.is_some_and(|b| log_swaps.contains(&b)) {
            std::fs::remove_file(&path)?;
            report.push(format!("deleted {stem}{SWAP_SUFFIX}: its clean did not commit"));
            changed = true;
        }
    }
    log_swaps.sort_unstable();
    for b in log_swaps {
        let swap = with_suffix(dir, b, "log", SWAP_SUFFIX);
        let next = next_offset_of(&swap, b)?;
        for &old in logs.iter().filter(|&&o| o > b && o < next) {
            crate::log::delete_segment_files(dir, old).map_err(|e| io::Error::other(e.to_string()))?;
        }
        for ext in ["index", "timeindex", "txnindex"] {
            let s = with_suffix(dir, b, ext, SWAP_SUFFIX);
            let fin = dir.join(segment::file_name(b, ext));
            if s.exists() {
                std::fs::rename(&s, &fin)?;
            } else if ext != "txnindex" && fin.exists() {
                // Which generation it is cannot be told: rebuild it.
                std::fs::remove_file(&fin)?;
            }
        }
        std::fs::rename(&swap, dir.join(segment::file_name(b, "log")))?;
        report.push(format!("completed the swap of cleaned segment {b} (replacing segments in [{b}, {next}))"));
        changed = true;
    }
    if changed {
        sync_dir(dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, name: &str, bytes: &[u8]) {
        std::fs::write(dir.join(name), bytes).expect("write");
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn uncommitted_cleans_are_rolled_back() {
        let d = tempfile::tempdir().expect("tempdir");
        let dir = d.path();
        for n in ["00000000000000000000.log", "00000000000000000000.index", "00000000000000000000.timeindex"] {
            touch(dir, n, b"old");
        }
        touch(dir, "00000000000000000000.log.cleaned", b"new");
        touch(dir, "00000000000000000000.index.swap", b"new");
        touch(dir, "00000000000000000000.timeindex.cleaned", b"new");
        let mut report = Vec::new();
        recover(dir, &mut report).expect("recover");
        assert_eq!(
            names(dir),
            vec!["00000000000000000000.index", "00000000000000000000.log", "00000000000000000000.timeindex"]
        );
        assert_eq!(std::fs::read(dir.join("00000000000000000000.log")).expect("read"), b"old");
        assert_eq!(report.len(), 3);
    }

    #[test]
    fn install_then_crash_at_every_step_recovers_to_one_generation() {
        // An empty cleaned log (next offset = base) replacing 0 and 10: the
        // swap range is [0, 0), so recovery keeps segment 10 (its records
        // are all still there: nothing is lost, it is only less compact).
        for crash_at in 0..14u32 {
            let d = tempfile::tempdir().expect("tempdir");
            let dir = d.path();
            for b in [0i64, 10] {
                for ext in ["log", "index", "timeindex"] {
                    touch(dir, &segment::file_name(b, ext), b"old");
                }
            }
            for ext in ["log", "index", "timeindex"] {
                touch(dir, &format!("{}.cleaned", segment::file_name(0, ext)), b"");
            }
            let res = install(dir, 0, &[10], Some(crash_at)).expect("install");
            let crashed = matches!(res, Installed::Crashed);
            let mut report = Vec::new();
            recover(dir, &mut report).expect("recover");
            let files = names(dir);
            assert!(files.iter().all(|n| !n.ends_with(".swap") && !n.ends_with(".cleaned")), "{crash_at}: {files:?}");
            let log0 = std::fs::read(dir.join(segment::file_name(0, "log"))).expect("segment 0");
            if crash_at < 4 {
                // The log's own rename (step 3) had not happened.
                assert!(crashed);
                assert_eq!(log0, b"old", "{crash_at}: not committed, the old segment stays");
                assert!(dir.join(segment::file_name(10, "log")).exists());
            } else {
                assert!(log0.is_empty(), "{crash_at}: committed, the cleaned segment is in place");
            }
            if !crashed {
                assert!(!dir.join(segment::file_name(10, "log")).exists());
            }
        }
    }
}
