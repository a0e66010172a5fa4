//! Idempotent producers at the log level: duplicates are stored once and
//! answered with the first attempt's offsets, sequence and epoch errors are
//! refused, and the producer state survives clean and unclean reopening,
//! corrupt snapshots and truncation.

mod common;

use std::sync::Arc;

use common::{manual_clock, open, split, tp};
use kaskade_log::batch::build;
use kaskade_log::producer_state::snapshot_file_name;
use kaskade_log::{Log, LogConfig, LogError, LogManager, ManagerOptions};

const TS: i64 = 1_700_000_000_000;

/// An idempotent producer's batch of `n` records tagged `tag`.
fn idem(pid: i64, epoch: i16, seq: i32, n: usize, tag: u8) -> Vec<u8> {
    let mut b = build::filled(n, 20, TS, tag);
    build::set_producer(&mut b, pid, epoch, seq);
    b
}

fn small_segments() -> LogConfig {
    LogConfig { segment_bytes: 800, index_interval_bytes: 200, ..LogConfig::default() }
}

/// Every stored batch: (base offset, last offset).
fn stored(log: &Log) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut at = log.log_start_offset();
    while at < log.log_end_offset() {
        let r = log.read(at, 1 << 20, None).expect("read");
        let Some(bytes) = r.records else { break };
        for (base, last, _) in split(&bytes) {
            out.push((base, last));
            at = last + 1;
        }
    }
    out
}

fn snapshot_offsets(log: &Log) -> Vec<i64> {
    let mut v: Vec<i64> = std::fs::read_dir(log.dir())
        .expect("dir")
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".snapshot")?.parse().ok())
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn retries_are_stored_once_and_get_the_first_offsets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mgr, _) = open(dir.path(), LogConfig::default(), manual_clock());
    let log = common::follow_local(mgr.get_or_create(&tp(), LogConfig::default()).expect("log"));
    let a = log.append_client(idem(1, 0, 0, 3, 1), 0).expect("append");
    assert_eq!((a.first_offset, a.last_offset, a.duplicate), (0, 2, false));
    log.append_client(build::filled(2, 20, TS, 9), 0).expect("plain batch");
    let b = log.append_client(idem(1, 0, 3, 2, 2), 0).expect("append");
    assert_eq!((b.first_offset, b.last_offset), (5, 6));
    // The retry of the first batch: not written, original offsets.
    let r = log.append_client(idem(1, 0, 0, 3, 1), 0).expect("retry");
    assert!(r.duplicate);
    assert_eq!((r.first_offset, r.last_offset, r.header.base_offset), (0, 2, 0));
    assert_eq!(r.log_append_time, TS, "Kafka answers a duplicate with its max timestamp");
    assert_eq!(log.log_end_offset(), 7);
    let r = log.append_client(idem(1, 0, 3, 2, 2), 0).expect("retry");
    assert_eq!((r.first_offset, r.duplicate), (5, true));
    // Another producer is independent.
    assert_eq!(log.append_client(idem(2, 0, 0, 1, 3), 0).expect("p2").first_offset, 7);
    // Gap, stale epoch, new epoch not at 0.
    assert!(matches!(log.append_client(idem(1, 0, 6, 1, 4), 0).unwrap_err(), LogError::OutOfOrderSequence(_)));
    log.append_client(idem(2, 4, 0, 1, 3), 0).expect("epoch bump at seq 0");
    assert!(matches!(log.append_client(idem(2, 3, 1, 1, 3), 0).unwrap_err(), LogError::InvalidProducerEpoch(_)));
    assert!(matches!(log.append_client(idem(2, 5, 1, 1, 3), 0).unwrap_err(), LogError::OutOfOrderSequence(_)));
    assert_eq!(log.log_end_offset(), 9, "refused batches are not written");
    // What clients may not send at all.
    let mut no_seq = build::filled(1, 20, TS, 0);
    build::set_producer(&mut no_seq, 3, 0, -1);
    assert!(matches!(log.append_client(&no_seq, 0).unwrap_err(), LogError::InvalidRecord(_)));
    assert_eq!(stored(&log), vec![(0, 2), (3, 4), (5, 6), (7, 7), (8, 8)]);
    mgr.shutdown().expect("shutdown");
}

/// Writes 3 producers x 12 batches over many small segments, one record
/// batch in three plain; returns (pid, seq, first offset, last offset) of
/// every idempotent batch.
fn fill(log: &Log) -> Vec<(i64, i32, i64, i64)> {
    let mut out: Vec<(i64, i32, i64, i64)> = Vec::new();
    for i in 0..12 {
        for pid in [10i64, 11, 12] {
            let n = 1 + (i % 3) as usize;
            let seq = out.iter().rfind(|(p, ..)| *p == pid).map(|(_, s, f, l)| s + (l - f) as i32 + 1).unwrap_or(0);
            let info = log.append_client(idem(pid, 0, seq, n, i as u8), 0).expect("append");
            assert!(!info.duplicate);
            out.push((pid, seq, info.first_offset, info.last_offset));
        }
        log.append_client(build::filled(1, 20, TS, 200), 0).expect("plain");
    }
    out
}

/// Retries each producer's last `window` batches: all must be duplicates
/// answered with their original offsets, and nothing is written.
fn assert_retries_deduplicated(log: &Log, batches: &[(i64, i32, i64, i64)], window: usize) {
    let end = log.log_end_offset();
    for pid in [10i64, 11, 12] {
        let mine: Vec<_> = batches.iter().filter(|b| b.0 == pid).collect();
        for (p, seq, first, last) in &mine[mine.len() - window..] {
            let n = (last - first + 1) as usize;
            let r = log.append_client(idem(*p, 0, *seq, n, 0), 0).expect("retry");
            assert!(r.duplicate, "producer {p} seq {seq} must be a duplicate");
            assert_eq!((r.first_offset, r.last_offset), (*first, *last), "producer {p} seq {seq}");
        }
    }
    assert_eq!(log.log_end_offset(), end, "no retry was written");
}

#[test]
fn dedupe_survives_a_clean_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let (mgr, _) = open(dir.path(), small_segments(), clock.clone());
    let log = common::follow_local(mgr.get_or_create(&tp(), small_segments()).expect("log"));
    let batches = fill(&log);
    assert!(log.segment_count() > 4, "several rolls, each with a snapshot");
    assert!(snapshot_offsets(&log).len() <= 2, "old snapshots are deleted: {:?}", snapshot_offsets(&log));
    let end = log.log_end_offset();
    mgr.shutdown().expect("shutdown");
    let (mgr, report) = open(dir.path(), small_segments(), clock);
    assert!(report.clean && report.repairs.is_empty(), "{report:?}");
    let log = mgr.get(&tp()).expect("log");
    assert_eq!(snapshot_offsets(&log).last(), Some(&end), "clean shutdown snapshots at the log end");
    assert_eq!(log.producer_count(), 3);
    // A snapshot keeps a producer's last batch (Kafka's format).
    assert_retries_deduplicated(&log, &batches, 1);
    // The sequence continues where it was; a gap is refused.
    let (_, seq, f, l) = *batches.iter().rfind(|b| b.0 == 11).expect("p11");
    let next = seq + (l - f) as i32 + 1;
    assert!(matches!(log.append_client(idem(11, 0, next + 1, 1, 0), 0).unwrap_err(), LogError::OutOfOrderSequence(_)));
    assert!(!log.append_client(idem(11, 0, next, 1, 0), 0).expect("next").duplicate);
    mgr.shutdown().expect("shutdown");
}

#[test]
fn dedupe_survives_an_unclean_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let (mgr, _) = open(dir.path(), small_segments(), clock.clone());
    let log = common::follow_local(mgr.get_or_create(&tp(), small_segments()).expect("log"));
    let batches = fill(&log);
    log.flush_blocking().expect("flush");
    log.sync_snapshots().expect("what the background thread does");
    let before = snapshot_offsets(&log);
    assert!(before.last().is_some_and(|s| *s < log.log_end_offset()), "only roll snapshots: {before:?}");
    // A crash: no close, no final snapshot, no clean-shutdown marker.
    drop(log);
    drop(mgr);
    let (mgr, report) = open(dir.path(), small_segments(), clock.clone());
    assert!(!report.clean && report.repairs.is_empty(), "{report:?}");
    let log = mgr.get(&tp()).expect("log");
    // The replay after the last roll snapshot restores the whole window of
    // the batches it covers; the last batch of each producer is there.
    assert_retries_deduplicated(&log, &batches, 1);
    let end = log.log_end_offset();
    assert_eq!(snapshot_offsets(&log).last(), Some(&end), "the replay was snapshotted");
    drop(log);
    drop(mgr);
    // Without any snapshot at all, everything is replayed from the log.
    for f in std::fs::read_dir(dir.path().join(tp().dir_name())).expect("dir") {
        let p = f.expect("entry").path();
        if p.extension().is_some_and(|e| e == "snapshot") {
            std::fs::remove_file(p).expect("rm");
        }
    }
    let (mgr, report) = open(dir.path(), small_segments(), clock);
    assert!(report.repairs.is_empty(), "{report:?}");
    let log = mgr.get(&tp()).expect("log");
    assert_retries_deduplicated(&log, &batches, 5);
    mgr.shutdown().expect("shutdown");
}

#[test]
fn a_corrupt_snapshot_is_reported_and_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let (mgr, _) = open(dir.path(), small_segments(), clock.clone());
    let log = common::follow_local(mgr.get_or_create(&tp(), small_segments()).expect("log"));
    let batches = fill(&log);
    let end = log.log_end_offset();
    let part = log.dir().to_path_buf();
    drop(log);
    mgr.shutdown().expect("shutdown");
    let newest = part.join(snapshot_file_name(end));
    let mut bytes = std::fs::read(&newest).expect("snapshot");
    let at = bytes.len() - 5;
    bytes[at] ^= 0xff;
    std::fs::write(&newest, bytes).expect("write");
    let (mgr, report) = open(dir.path(), small_segments(), clock);
    assert!(
        report.repairs.iter().any(|r| r.contains(&snapshot_file_name(end)) && r.contains("corrupt")),
        "{:?}",
        report.repairs
    );
    let log = mgr.get(&tp()).expect("log");
    // The older snapshot plus the replay after it still know every producer.
    assert_retries_deduplicated(&log, &batches, 1);
    mgr.shutdown().expect("shutdown");
}

#[test]
fn truncation_rebuilds_the_producer_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mgr, _) = open(dir.path(), small_segments(), manual_clock());
    let log = common::follow_local(mgr.get_or_create(&tp(), small_segments()).expect("log"));
    let batches = fill(&log);
    // Cut the log before producer 10's last two batches.
    let mine: Vec<_> = batches.iter().filter(|b| b.0 == 10).copied().collect();
    let (_, seq, first, last) = mine[mine.len() - 2];
    log.truncate_to(first).expect("truncate");
    assert_eq!(log.log_end_offset(), first);
    assert!(snapshot_offsets(&log).iter().all(|s| *s <= first), "snapshots past the end are gone");
    // The cut batch is not a duplicate any more: it is appended again, at
    // the new end, and its successor's sequence follows.
    let again = log.append_client(idem(10, 0, seq, (last - first + 1) as usize, 0), 0).expect("re-append");
    assert!(!again.duplicate);
    assert_eq!(again.first_offset, first);
    // The batch before the cut is still a duplicate.
    let (_, pseq, pf, pl) = mine[mine.len() - 3];
    let r = log.append_client(idem(10, 0, pseq, (pl - pf + 1) as usize, 0), 0).expect("retry");
    assert_eq!((r.duplicate, r.first_offset), (true, pf));
    // Truncating everything forgets every producer.
    log.truncate_to(0).expect("truncate all");
    assert_eq!(log.producer_count(), 0);
    assert!(snapshot_offsets(&log).is_empty());
    mgr.shutdown().expect("shutdown");
}

#[test]
fn producers_outlive_the_log_start_and_expire_when_idle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let opts = ManagerOptions { clock: clock.clone(), producer_id_expiration_ms: 60_000, ..ManagerOptions::default() };
    let cfg = small_segments();
    let (mgr, _) = LogManager::open(dir.path(), opts.clone(), move |_| cfg.clone()).expect("open");
    let log: Arc<Log> = common::follow_local(mgr.get_or_create(&tp(), small_segments()).expect("log"));
    clock.set(TS);
    log.append_client(idem(1, 0, 0, 2, 0), 0).expect("append");
    log.append_client(build::filled(40, 20, TS, 0), 0).expect("plain");
    log.roll().expect("roll");
    log.append_client(build::filled(1, 20, TS, 0), 0).expect("plain");
    log.advance_log_start(log.log_end_offset() - 1).expect("delete records");
    assert!(log.log_start_offset() > 1);
    // As Kafka (2.8+), the producer is still known after its batches went.
    assert!(matches!(log.append_client(idem(1, 0, 3, 1, 0), 0).unwrap_err(), LogError::OutOfOrderSequence(_)));
    log.append_client(idem(1, 0, 2, 1, 0), 0).expect("in sequence");
    // Idle past producer.id.expiration.ms: forgotten, any sequence goes.
    clock.set(TS + 59_999);
    assert_eq!(log.remove_expired_producers(), 0);
    clock.set(TS + 60_000);
    assert_eq!(log.remove_expired_producers(), 1);
    log.append_client(idem(1, 0, 1000, 1, 0), 0).expect("unknown producer starts anywhere");
    // The state is saved with a clean shutdown, and producers expired by the
    // time it is loaded are left out.
    clock.set(TS + 10);
    mgr.shutdown().expect("shutdown");
    let reopen = |at: i64| {
        clock.set(at);
        let cfg = small_segments();
        let (mgr, _) = LogManager::open(dir.path(), opts.clone(), move |_| cfg.clone()).expect("reopen");
        let n = mgr.get(&tp()).expect("log").producer_count();
        mgr.shutdown().expect("shutdown");
        n
    };
    assert_eq!(reopen(TS + 20), 1);
    assert_eq!(reopen(TS + 200_000), 0);
}

#[test]
fn a_shutdown_with_a_snapshot_at_the_end_writes_none() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let (mgr, _) = open(dir.path(), small_segments(), clock.clone());
    let log = common::follow_local(mgr.get_or_create(&tp(), small_segments()).expect("log"));
    let batches = fill(&log);
    let end = log.log_end_offset();
    mgr.shutdown().expect("shutdown");
    let path = dir.path().join(tp().dir_name()).join(snapshot_file_name(end));
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
    let stamp = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).expect("mtime");
    std::fs::File::options().write(true).open(&path).and_then(|f| f.set_modified(old)).expect("set mtime");
    // Idle in between: the snapshot at the end still holds the state.
    let (mgr, report) = open(dir.path(), small_segments(), clock.clone());
    assert!(report.clean, "{report:?}");
    mgr.shutdown().expect("shutdown");
    assert_eq!(stamp(&path), old, "the snapshot at the log end is not rewritten");
    let (mgr, _) = open(dir.path(), small_segments(), clock.clone());
    let log = mgr.get(&tp()).expect("log");
    assert_eq!(log.producer_count(), 3);
    assert_retries_deduplicated(&log, &batches, 1);
    // One more batch moves the end: the next shutdown snapshots there.
    log.append_client(build::filled(1, 20, TS, 7), 0).expect("plain batch");
    let end = log.log_end_offset();
    mgr.shutdown().expect("shutdown");
    let (mgr, _) = open(dir.path(), small_segments(), clock);
    assert_eq!(snapshot_offsets(&mgr.get(&tp()).expect("log")).last(), Some(&end));
}

#[test]
fn an_empty_log_closes_without_a_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let (mgr, _) = open(dir.path(), small_segments(), clock.clone());
    let log = mgr.get_or_create(&tp(), small_segments()).expect("log");
    drop(log);
    mgr.shutdown().expect("shutdown");
    let (mgr, report) = open(dir.path(), small_segments(), clock);
    assert!(report.clean && report.repairs.is_empty(), "{report:?}");
    let log = common::follow_local(mgr.get(&tp()).expect("log"));
    assert_eq!(snapshot_offsets(&log), Vec::<i64>::new());
    assert_eq!(log.producer_count(), 0);
    let a = log.append_client(idem(1, 0, 0, 2, 1), 0).expect("a new producer starts at sequence 0");
    assert_eq!((a.first_offset, a.last_offset), (0, 1));
}
