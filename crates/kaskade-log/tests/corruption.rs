//! Damaged files on disk: a multi-segment log is written, the process
//! "crashes" (the manager is dropped without `shutdown`) or shuts down
//! cleanly, files are damaged, and the directory is reopened. Every case:
//! no panic, `OpenReport.repairs` says what was repaired, reads return
//! exactly the surviving batches, and appends continue at the right offset.
//!
//! Recovery only rescans what lies past the recovery point (as Kafka does),
//! so damage to log data is placed past the checkpointed recovery point,
//! except in the garbage-checkpoint case, which shows that without a
//! usable checkpoint everything is rescanned.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kaskade_log::batch::{self, build, BatchHeader};
use kaskade_log::checkpoint::RECOVERY_POINT_FILE;
use kaskade_log::{LogConfig, LogManager, ManagerOptions, ManualClock, OpenReport, TopicPartition};
use rand::{Rng, RngCore, SeedableRng};

const T0: i64 = 1_700_000_000_000;
/// The largest timestamp in the log, carried by batch 2 (first segment).
const PEAK_TS: i64 = T0 + 1_000_000;

fn tp() -> TopicPartition {
    TopicPartition::new("c", 0)
}

fn config() -> LogConfig {
    LogConfig { segment_bytes: 16_000, index_interval_bytes: 1_000, ..LogConfig::default() }
}

#[derive(Clone, Debug)]
struct Stored {
    base: i64,
    last: i64,
    max_ts: i64,
    bytes: Vec<u8>,
}

struct Fixture {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    batches: Vec<Stored>,
}

impl Fixture {
    fn part(&self) -> PathBuf {
        self.dir.path().join(tp().dir_name())
    }

    fn open(&self) -> (Arc<LogManager>, OpenReport) {
        let opts = ManagerOptions { clock: self.clock.clone(), ..ManagerOptions::default() };
        LogManager::open(self.dir.path(), opts, |_| config()).expect("open must not fail on damaged files")
    }

    /// Segment files as (base, path of `.log`), oldest first.
    fn segments(&self) -> Vec<(i64, PathBuf)> {
        let mut v: Vec<(i64, PathBuf)> = std::fs::read_dir(self.part())
            .expect("dir")
            .filter_map(|e| {
                let p = e.expect("entry").path();
                let name = p.file_name()?.to_str()?.to_string();
                let base = name.strip_suffix(".log")?.parse().ok()?;
                Some((base, p))
            })
            .collect();
        v.sort();
        v
    }

    fn batches_in(&self, base: i64, next_base: Option<i64>) -> Vec<&Stored> {
        self.batches.iter().filter(|b| b.base >= base && next_base.is_none_or(|n| b.base < n)).collect()
    }
}

/// Writes ~120 batches over several segments with the clock-independent
/// timestamps below, flushes, checkpoints at `checkpoint_after` batches,
/// then leaves cleanly or "crashes".
fn write_log(checkpoint_after: Option<usize>, clean: bool) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0 + 2_000_000));
    let mut fx = Fixture { dir, clock, batches: Vec::new() };
    let (mgr, _) = fx.open();
    let log = mgr.get_or_create(&tp(), config()).expect("create");
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for i in 0..120usize {
        // Timestamps jump around; batch 2 holds the largest one, early in
        // the first segment, so only a complete time index knows it.
        let ts = if i == 2 { PEAK_TS } else { T0 + ((i as i64 * 7919) % 1000) * 100 };
        let n = rng.gen_range(1..=4);
        let values: Vec<Vec<u8>> = (0..n).map(|_| (0..rng.gen_range(50..800)).map(|_| rng.gen()).collect()).collect();
        let recs: Vec<build::Record<'_>> =
            values.iter().map(|v| build::Record { key: None, value: Some(v), timestamp_delta: 0 }).collect();
        let b = build::batch(&recs, ts, 1);
        let info = log.append(&b, 3).expect("append");
        let mut stored = b.clone();
        let prefix = batch::patched_prefix(&b, info.first_offset, 3);
        stored[..16].copy_from_slice(&prefix);
        fx.batches.push(Stored { base: info.first_offset, last: info.last_offset, max_ts: ts, bytes: stored });
        if checkpoint_after == Some(i + 1) {
            log.flush_blocking().expect("flush");
            mgr.write_checkpoints().expect("checkpoint");
        }
    }
    log.flush_blocking().expect("flush");
    assert!(log.segment_count() >= 5, "test needs several segments, got {}", log.segment_count());
    if clean {
        mgr.shutdown().expect("shutdown");
    }
    drop(log);
    drop(mgr);
    fx
}

/// Reads the whole log and compares it with the first `keep` batches.
fn verify(mgr: &LogManager, fx: &Fixture, keep: usize) {
    let log = mgr.get(&tp()).expect("log");
    let want = &fx.batches[..keep];
    let end = want.last().map(|b| b.last + 1).unwrap_or(0);
    assert_eq!(log.log_end_offset(), end, "log end after recovery");
    let mut next = log.log_start_offset();
    let mut got = Vec::new();
    while next < end {
        let r = log.read(next, 5_000, None).expect("read");
        let bytes = r.records.expect("data below the end");
        let mut b = &bytes[..];
        while !b.is_empty() {
            let h = BatchHeader::parse(b).expect("header");
            let len = h.total_len();
            batch::validate_structure(&b[..len]).expect("reads return valid batches");
            got.push(b[..len].to_vec());
            next = h.next_offset();
            b = &b[len..];
        }
    }
    assert_eq!(got.len(), want.len(), "batch count");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g, &w.bytes, "batch {} is intact", w.base);
    }
    // Time lookups agree with the data (they use the time index).
    for probe in [T0, T0 + 50_000, T0 + 99_900, PEAK_TS - 1, PEAK_TS, PEAK_TS + 1] {
        let want = want.iter().find(|b| b.max_ts >= probe).map(|b| b.base);
        let got = log.find_by_timestamp(probe).expect("find_by_timestamp").map(|h| h.header.base_offset);
        assert_eq!(got, want, "find_by_timestamp({probe})");
    }
    let max = want.iter().map(|b| (b.max_ts, b.last)).fold(None, |acc: Option<(i64, i64)>, x| match acc {
        Some(a) if a.0 >= x.0 => Some(a),
        _ => Some(x),
    });
    assert_eq!(log.max_timestamp().map(|m| (m.timestamp, m.offset)), max, "largest timestamp");
}

/// Appends one batch and checks where it lands.
fn append_continues(mgr: &LogManager, at: i64) {
    let log = mgr.get(&tp()).expect("log");
    let info = log.append(build::filled(2, 10, T0, 1), 0).expect("append after recovery");
    assert_eq!(info.first_offset, at, "appends continue at the log end");
    log.flush_blocking().expect("flush");
}

fn has(report: &OpenReport, needles: &[&str]) -> bool {
    report.repairs.iter().any(|r| needles.iter().all(|n| r.contains(n)))
}

/// Batch positions in a segment file.
fn positions(path: &Path) -> Vec<(u64, usize)> {
    let data = std::fs::read(path).expect("read segment");
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos + batch::HEADER_LEN <= data.len() {
        let h = BatchHeader::parse(&data[pos..]).expect("header");
        out.push((pos as u64, h.total_len()));
        pos += h.total_len();
    }
    out
}

fn flip(path: &Path, at: u64) {
    let mut data = std::fs::read(path).expect("read");
    data[at as usize] ^= 0x5a;
    std::fs::write(path, data).expect("write");
}

fn idx(log_path: &Path, ext: &str) -> PathBuf {
    log_path.with_extension(ext)
}

#[test]
fn flipped_bytes_mid_last_segment_truncate_at_that_batch() {
    let fx = write_log(Some(40), false);
    let segs = fx.segments();
    let (last_base, last_path) = segs.last().cloned().expect("segment");
    let in_last = fx.batches_in(last_base, None);
    assert!(in_last.len() >= 4, "last segment holds {} batches", in_last.len());
    let pos = positions(&last_path);
    // The batch that holds the middle byte of the file.
    let size = std::fs::metadata(&last_path).expect("meta").len();
    let k = pos.iter().position(|(p, l)| *p + *l as u64 > size / 2).expect("middle batch");
    let (p, len) = pos[k];
    // Inside the CRC-covered part (attributes onwards, byte 21+).
    flip(&last_path, p + 21 + (len as u64 - 21) / 2);
    let victim = in_last[k];
    let keep = fx.batches.iter().position(|b| b.base == victim.base).expect("victim");

    let (mgr, report) = fx.open();
    assert!(!report.clean);
    assert!(has(&report, &[&format!("segment {last_base}"), "truncated", "CRC"]), "{:?}", report.repairs);
    assert_eq!(std::fs::metadata(&last_path).expect("meta").len(), p, "the segment is cut before the bad batch");
    verify(&mgr, &fx, keep);
    append_continues(&mgr, victim.base);
    mgr.shutdown().expect("shutdown");
    let (mgr, report) = fx.open();
    assert!(report.clean && report.repairs.is_empty(), "{:?}", report.repairs);
    assert_eq!(mgr.get(&tp()).expect("log").log_end_offset(), victim.base + 2);
    mgr.shutdown().expect("shutdown");
}

#[test]
fn batch_cut_in_half_is_truncated() {
    let fx = write_log(Some(40), false);
    let (last_base, last_path) = fx.segments().last().cloned().expect("segment");
    let pos = positions(&last_path);
    let (p, len) = *pos.last().expect("batch");
    let f = std::fs::OpenOptions::new().write(true).open(&last_path).expect("open");
    f.set_len(p + len as u64 / 2).expect("cut");
    drop(f);
    let victim = fx.batches_in(last_base, None).last().map(|b| b.base).expect("victim");
    let keep = fx.batches.len() - 1;

    let (mgr, report) = fx.open();
    assert!(has(&report, &[&format!("segment {last_base}"), "truncated", "cut off"]), "{:?}", report.repairs);
    verify(&mgr, &fx, keep);
    append_continues(&mgr, victim);
    mgr.shutdown().expect("shutdown");
}

#[test]
fn zero_filled_tail_is_truncated() {
    let fx = write_log(Some(40), false);
    let (last_base, last_path) = fx.segments().last().cloned().expect("segment");
    let size = std::fs::metadata(&last_path).expect("meta").len();
    let mut data = std::fs::read(&last_path).expect("read");
    data.extend(std::iter::repeat_n(0u8, 64 * 1024));
    std::fs::write(&last_path, data).expect("write");

    let (mgr, report) = fx.open();
    assert!(has(&report, &[&format!("segment {last_base}"), "truncated 65536 bytes"]), "{:?}", report.repairs);
    assert_eq!(std::fs::metadata(&last_path).expect("meta").len(), size);
    verify(&mgr, &fx, fx.batches.len());
    append_continues(&mgr, fx.batches.last().expect("batch").last + 1);
    mgr.shutdown().expect("shutdown");
}

/// Deleting index files of a closed and of the active segment, after a
/// crash or a clean shutdown, both files or only the time index.
#[test]
fn deleted_indexes_are_rebuilt() {
    for clean in [false, true] {
        for which in ["first", "last"] {
            for exts in [&["index", "timeindex"][..], &["timeindex"][..], &["index"][..]] {
                let ctx = format!("clean={clean} segment={which} deleted={exts:?}");
                let fx = write_log(Some(120), clean);
                let segs = fx.segments();
                let (base, path) =
                    if which == "first" { segs[0].clone() } else { segs.last().cloned().expect("segment") };
                let original_index = std::fs::read(idx(&path, "index")).expect("index");
                assert!(!original_index.is_empty(), "{ctx}: the segment has index entries");
                for ext in exts {
                    std::fs::remove_file(idx(&path, ext)).expect("delete index");
                }

                let (mgr, report) = fx.open();
                assert_eq!(report.clean, clean, "{ctx}");
                assert!(
                    has(&report, &[&format!("segment {base}"), "missing", "rebuilt"]),
                    "{ctx}: {:?}",
                    report.repairs
                );
                assert_eq!(
                    std::fs::read(idx(&path, "index")).expect("index"),
                    original_index,
                    "{ctx}: same entries as before"
                );
                assert!(!std::fs::read(idx(&path, "timeindex")).expect("timeindex").is_empty(), "{ctx}");
                verify(&mgr, &fx, fx.batches.len());
                append_continues(&mgr, fx.batches.last().expect("batch").last + 1);
                mgr.shutdown().expect("shutdown");
                // And the rebuilt indexes are good for a clean restart.
                let (mgr, report) = fx.open();
                assert!(report.clean && report.repairs.is_empty(), "{ctx}: {:?}", report.repairs);
                mgr.shutdown().expect("shutdown");
            }
        }
    }
}

/// Random bytes in place of an index, on the paths where indexes are
/// trusted: after a clean shutdown, and below/at the recovery point after a
/// crash. (Segments past the recovery point are rebuilt anyway.)
#[test]
fn garbage_indexes_are_rebuilt() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    for clean in [false, true] {
        for which in ["first", "last"] {
            for ext in ["index", "timeindex"] {
                for len in [4096usize, 1001] {
                    let ctx = format!("clean={clean} segment={which} garbage .{ext} of {len} bytes");
                    // The checkpoint covers everything: nothing is rescanned
                    // unless the indexes fail validation.
                    let fx = write_log(Some(120), clean);
                    let segs = fx.segments();
                    let (base, path) =
                        if which == "first" { segs[0].clone() } else { segs.last().cloned().expect("segment") };
                    let original_index = std::fs::read(idx(&path, "index")).expect("index");
                    let mut junk = vec![0u8; len];
                    rng.fill_bytes(&mut junk);
                    std::fs::write(idx(&path, ext), &junk).expect("write garbage");

                    let (mgr, report) = fx.open();
                    assert!(has(&report, &[&format!("{base}"), "invalid", "rebuilt"]), "{ctx}: {:?}", report.repairs);
                    assert_eq!(std::fs::read(idx(&path, "index")).expect("index"), original_index, "{ctx}");
                    verify(&mgr, &fx, fx.batches.len());
                    append_continues(&mgr, fx.batches.last().expect("batch").last + 1);
                    mgr.shutdown().expect("shutdown");
                    let (mgr, report) = fx.open();
                    assert!(report.repairs.is_empty(), "{ctx}: {:?}", report.repairs);
                    mgr.shutdown().expect("shutdown");
                }
            }
        }
    }
}

/// With a garbage recovery-point checkpoint every segment is rescanned, so
/// damage in the first (long closed) segment is found; with the valid
/// checkpoint it is not (segments below the recovery point are trusted, as
/// in Kafka), which shows the rescan is what found it.
#[test]
fn garbage_recovery_checkpoint_forces_full_recovery() {
    // Binary junk (not even UTF-8), text that is not a checkpoint, and the
    // valid checkpoint as the control.
    for garbage in [Some(true), Some(false), None] {
        let fx = write_log(Some(120), false);
        let segs = fx.segments();
        let (first_base, first_path) = segs[0].clone();
        let pos = positions(&first_path);
        let k = pos.len() / 2;
        flip(&first_path, pos[k].0 + 30);
        let victim = fx.batches_in(first_base, Some(segs[1].0))[k].base;
        let keep = fx.batches.iter().position(|b| b.base == victim).expect("victim");
        let ckpt = fx.dir.path().join(RECOVERY_POINT_FILE);
        match garbage {
            Some(true) => {
                let mut junk = vec![0u8; 300];
                rand::rngs::StdRng::seed_from_u64(3).fill_bytes(&mut junk);
                std::fs::write(&ckpt, junk).expect("garbage checkpoint");
            }
            Some(false) => std::fs::write(&ckpt, "0\n2\nc 0 notanumber\n").expect("garbage checkpoint"),
            None => {}
        }

        let (mgr, report) = fx.open();
        if let Some(binary) = garbage {
            let why = if binary { "valid UTF-8" } else { "malformed checkpoint" };
            assert!(has(&report, &[RECOVERY_POINT_FILE, why]), "{:?}", report.repairs);
            assert!(has(&report, &[&format!("segment {first_base}"), "truncated", "CRC"]), "{:?}", report.repairs);
            for (b, _) in &segs[1..] {
                assert!(has(&report, &[&format!("deleted segment {b}")]), "segment {b}: {:?}", report.repairs);
            }
            assert_eq!(fx.segments().len(), 1, "segments after the cut are gone");
            verify(&mgr, &fx, keep);
            append_continues(&mgr, victim);
        } else {
            assert!(report.repairs.is_empty(), "{:?}", report.repairs);
            assert_eq!(mgr.get(&tp()).expect("log").log_end_offset(), fx.batches.last().expect("batch").last + 1);
        }
        mgr.shutdown().expect("shutdown");
    }
}
