//! Log compaction (`cleanup.policy=compact`): what a cleaner pass keeps and
//! drops, its time rules (delete.retention.ms, min/max.compaction.lag.ms)
//! on an injected clock, producer state and transactions, checkpoints, and
//! crash safety of the segment swap (a crash injected before every step,
//! then recovery at open).

mod common;
mod compaction_util;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use common::{manual_clock, tp};
use compaction_util::{keyed_batch, read_all, Producer, CODECS};
use kafka_protocol::records::Compression;
use kaskade_log::batch::BatchHeader;
use kaskade_log::cleaner::CLEANER_CHECKPOINT_FILE;
use kaskade_log::txn::Marker;
use kaskade_log::{CleanerOptions, CleanupPolicy, Log, LogConfig, LogManager, ManagerOptions, ManualClock};

fn compacted() -> LogConfig {
    LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        segment_bytes: 1_000,
        index_interval_bytes: 100,
        min_cleanable_dirty_ratio: 0.0,
        ..LogConfig::default()
    }
}

fn open_with(dir: &Path, config: LogConfig, clock: Arc<ManualClock>, crash_at: Option<u32>) -> Arc<LogManager> {
    let opts = ManagerOptions {
        clock,
        cleaner: CleanerOptions { crash_at_swap_step: crash_at, ..CleanerOptions::default() },
        ..ManagerOptions::default()
    };
    let (mgr, _) = LogManager::open(dir, opts, move |_| config.clone()).expect("open");
    mgr
}

fn value(key: &str, offset: i64) -> String {
    format!("{key}@{offset}")
}

/// Appends `rounds` updates of each key, one record per batch; the value
/// names the key and the offset it lands at. Returns key -> latest offset.
fn updates(log: &Log, keys: &[&str], rounds: usize, ts: i64) -> BTreeMap<String, i64> {
    let mut latest = BTreeMap::new();
    for _ in 0..rounds {
        for k in keys {
            let at = log.log_end_offset();
            let v = value(k, at);
            let b = keyed_batch(&[(Some(k.as_bytes()), Some(v.as_bytes()))], ts, Compression::None, None);
            assert_eq!(log.append(&b, 0).expect("append").first_offset, at);
            latest.insert(k.to_string(), at);
        }
    }
    latest
}

/// Closes the active segment and makes everything durable (so the high
/// watermark, which bounds cleaning, is the log end).
fn settle(log: &Log) {
    log.roll().expect("roll");
    log.flush_blocking().expect("flush");
}

/// Every surviving record is an original one (its value names its offset).
fn assert_originals(got: &[compaction_util::Got]) {
    for (off, k, v) in got {
        if let (Some(k), Some(v)) = (k, v) {
            let k = std::str::from_utf8(k).expect("utf8");
            assert_eq!(v, &Bytes::from(value(k, *off)), "record at {off} is the original");
        }
    }
}

fn latest_by_key(got: &[compaction_util::Got]) -> BTreeMap<String, (i64, Option<Bytes>)> {
    let mut m = BTreeMap::new();
    for (off, k, v) in got {
        let k = String::from_utf8(k.as_ref().expect("keyed").to_vec()).expect("utf8");
        m.insert(k, (*off, v.clone()));
    }
    m
}

#[test]
fn the_latest_value_of_every_key_survives_at_its_offset() {
    let d = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let mgr = open_with(d.path(), compacted(), clock.clone(), None);
    let log = common::follow_local(mgr.get_or_create(&tp(), compacted()).expect("create"));
    let keys = ["alpha", "beta", "gamma", "delta", "epsilon"];
    let mut latest = updates(&log, &keys, 40, clock.now_ms_for_test());
    settle(&log);
    let (end, start, segments) = (log.log_end_offset(), log.log_start_offset(), log.segment_count());
    assert!(segments > 10, "the updates span many segments ({segments})");

    let cleaned = mgr.run_cleaner();
    assert_eq!(cleaned.len(), 1, "one log was due");
    let stats = &cleaned[0].1;
    assert_eq!((stats.first_dirty, stats.end_offset), (0, end));
    assert_eq!(mgr.cleaner_checkpoint(&tp()), Some(end));
    assert_eq!(log.log_end_offset(), end, "cleaning never moves the log end");
    assert_eq!(log.log_start_offset(), start);

    let check = |log: &Log, latest: &BTreeMap<String, i64>| {
        let (got, _) = read_all(log);
        assert_originals(&got);
        let offsets: Vec<i64> = got.iter().map(|g| g.0).collect();
        let mut want: Vec<i64> = latest.values().copied().collect();
        want.sort_unstable();
        assert_eq!(offsets, want, "exactly the latest record of each key remains");
    };
    check(&log, &latest);
    // A second pass with nothing new to clean does nothing.
    assert!(mgr.run_cleaner().is_empty());
    // The next pass groups the now small segments (up to segment.bytes of
    // what they held before that pass, as Kafka groups them).
    latest.extend(updates(&log, &keys[..2], 1, clock.now_ms_for_test()));
    settle(&log);
    let end = log.log_end_offset();
    assert_eq!(mgr.run_cleaner().len(), 1);
    assert!(log.segment_count() < segments / 2, "{} segments left of {segments}", log.segment_count());
    check(&log, &latest);

    // Clean restart, then a crash-style restart: the same log.
    mgr.shutdown().expect("shutdown");
    drop((log, mgr));
    let mgr = open_with(d.path(), compacted(), clock.clone(), None);
    let log = mgr.get(&tp()).expect("log");
    assert_eq!(mgr.cleaner_checkpoint(&tp()), Some(end), "the checkpoint survives a restart");
    check(&log, &latest);
    let text = std::fs::read_to_string(d.path().join(CLEANER_CHECKPOINT_FILE)).expect("checkpoint file");
    assert_eq!(text, format!("0\n1\nt 0 {end}\n"), "Kafka's checkpoint format");
    drop((log, mgr));
    let mgr = open_with(d.path(), compacted(), clock, None);
    check(&mgr.get(&tp()).expect("log"), &latest);
}

#[test]
fn compact_only_logs_ignore_time_and_size_retention() {
    let d = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let cfg = LogConfig { retention_ms: 1_000, retention_bytes: 100, ..compacted() };
    let mgr = open_with(d.path(), cfg.clone(), clock.clone(), None);
    let log = common::follow_local(mgr.get_or_create(&tp(), cfg.clone()).expect("create"));
    updates(&log, &["a", "b"], 20, clock.now_ms_for_test());
    settle(&log);
    clock.advance(10_000);
    let segments = log.segment_count();
    assert_eq!(log.apply_retention().expect("retention"), 0, "compact only: no time or size retention");
    assert_eq!(log.segment_count(), segments);
    assert_eq!(log.log_start_offset(), 0);
    log.set_config(LogConfig { cleanup_policy: CleanupPolicy::CompactDelete, ..cfg });
    assert!(log.apply_retention().expect("retention") > 0, "compact,delete: retention applies");
}

#[test]
fn tombstones_go_after_delete_retention_ms_and_take_their_key_along() {
    let d = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let cfg = LogConfig { delete_retention_ms: 60_000, ..compacted() };
    let mgr = open_with(d.path(), cfg.clone(), clock.clone(), None);
    let log = common::follow_local(mgr.get_or_create(&tp(), cfg).expect("create"));
    let ts = clock.now_ms_for_test();
    updates(&log, &["gone", "kept"], 5, ts);
    let tomb = log.append(keyed_batch(&[(Some(b"gone"), None)], ts, Compression::None, None), 0).expect("append");
    settle(&log);

    mgr.run_cleaner();
    let (got, headers) = read_all(&log);
    let keys = latest_by_key(&got);
    assert_eq!(keys["gone"], (tomb.first_offset, None), "the tombstone stays for now");
    assert_eq!(got.iter().filter(|g| g.1.as_deref() == Some(b"gone".as_slice())).count(), 1, "older values went");
    let stamped = headers.iter().find(|h| h.base_offset == tomb.first_offset).expect("tombstone batch");
    assert_ne!(stamped.attributes & 0x40, 0, "the tombstone's batch carries a delete horizon (KIP-534)");
    assert_eq!(stamped.base_timestamp, ts + 60_000, "horizon = time of the pass + delete.retention.ms");

    // Before the horizon: a pass (new dirty data) keeps it.
    clock.advance(59_000);
    updates(&log, &["kept"], 1, clock.now_ms_for_test());
    settle(&log);
    assert_eq!(mgr.run_cleaner().len(), 1);
    assert_eq!(latest_by_key(&read_all(&log).0)["gone"], (tomb.first_offset, None));

    // Past it: the next pass drops it, and nothing of the key is left.
    clock.advance(2_000);
    updates(&log, &["kept"], 1, clock.now_ms_for_test());
    settle(&log);
    assert_eq!(mgr.run_cleaner().len(), 1);
    let (got, _) = read_all(&log);
    assert!(!latest_by_key(&got).contains_key("gone"), "the tombstone is gone: {got:?}");
    assert!(latest_by_key(&got).contains_key("kept"));
}

#[test]
fn min_compaction_lag_holds_back_young_records() {
    let d = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let cfg = LogConfig { min_compaction_lag_ms: 10_000, ..compacted() };
    let mgr = open_with(d.path(), cfg.clone(), clock.clone(), None);
    let log = common::follow_local(mgr.get_or_create(&tp(), cfg).expect("create"));
    updates(&log, &["a", "b"], 20, clock.now_ms_for_test());
    settle(&log);
    assert!(mgr.run_cleaner().is_empty(), "every record is younger than the lag");
    assert_eq!(read_all(&log).0.len(), 40);
    clock.advance(10_001);
    assert_eq!(mgr.run_cleaner().len(), 1);
    assert_eq!(read_all(&log).0.len(), 2);
}

#[test]
fn max_compaction_lag_forces_a_pass_below_the_dirty_ratio() {
    let d = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let cfg = LogConfig { min_cleanable_dirty_ratio: 0.9, max_compaction_lag_ms: 60_000, ..compacted() };
    let mgr = open_with(d.path(), cfg.clone(), clock.clone(), None);
    let log = common::follow_local(mgr.get_or_create(&tp(), cfg).expect("create"));
    // Many distinct keys: after the first pass the clean part is large.
    let keys: Vec<String> = (0..60).map(|i| format!("key-{i}")).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    updates(&log, &refs, 1, clock.now_ms_for_test());
    settle(&log);
    assert_eq!(mgr.run_cleaner().len(), 1, "all dirty: ratio 1 > 0.9");
    updates(&log, &["key-0"], 3, clock.now_ms_for_test());
    settle(&log);
    assert!(mgr.run_cleaner().is_empty(), "a little dirt under a big clean part: not due");
    clock.advance(60_001);
    assert_eq!(mgr.run_cleaner().len(), 1, "a dirty record older than max.compaction.lag.ms forces a pass");
    assert_eq!(read_all(&log).0.len(), 60);
}

#[test]
fn max_compaction_lag_rolls_the_active_segment_of_a_compacted_log() {
    let d = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let cfg = LogConfig { max_compaction_lag_ms: 5_000, segment_bytes: 1 << 20, ..compacted() };
    let mgr = open_with(d.path(), cfg.clone(), clock.clone(), None);
    let log = common::follow_local(mgr.get_or_create(&tp(), cfg).expect("create"));
    updates(&log, &["a"], 3, clock.now_ms_for_test());
    clock.advance(5_001);
    updates(&log, &["a"], 1, clock.now_ms_for_test());
    assert_eq!(log.segment_count(), 2, "segment.ms is capped by max.compaction.lag.ms (KIP-354)");
}

#[test]
fn an_idempotent_producers_last_batch_stays_and_it_continues_after_a_restart() {
    let d = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let mgr = open_with(d.path(), compacted(), clock.clone(), None);
    let log = common::follow_local(mgr.get_or_create(&tp(), compacted()).expect("create"));
    let ts = clock.now_ms_for_test();
    let p = |seq| Some(Producer { id: 42, epoch: 3, base_sequence: seq, transactional: false });
    for seq in (0..10).step_by(2) {
        let b = keyed_batch(&[(Some(b"k"), Some(b"x")), (Some(b"k"), Some(b"y"))], ts, Compression::Lz4, p(seq));
        log.append_client(&b, 0).expect("idempotent append");
    }
    let last = log.producer_entry(42).expect("producer").batches().last().copied().expect("batch");
    // A plain producer then overwrites the key: all of 42's records are stale.
    updates(&log, &["k"], 1, ts);
    settle(&log);
    mgr.run_cleaner();
    let (got, headers) = read_all(&log);
    assert_eq!(got.len(), 1, "only the newest k: {got:?}");
    let kept: Vec<&BatchHeader> = headers.iter().filter(|h| h.producer_id == 42).collect();
    assert_eq!(kept.len(), 1, "only the producer's last batch stays");
    assert_eq!(
        (kept[0].base_offset, kept[0].last_offset(), kept[0].records_count),
        (last.first_offset, last.last_offset, 0)
    );
    assert_eq!((kept[0].producer_epoch, kept[0].base_sequence), (3, 8));

    mgr.shutdown().expect("shutdown");
    drop((log, mgr));
    // Unclean restart without snapshots: the state is replayed from the log.
    for f in std::fs::read_dir(d.path().join(tp().dir_name())).expect("dir") {
        let f = f.expect("entry").path();
        if f.extension().is_some_and(|e| e == "snapshot") {
            std::fs::remove_file(f).expect("remove snapshot");
        }
    }
    std::fs::remove_file(d.path().join(".kafka_cleanshutdown")).expect("marker");
    let mgr = open_with(d.path(), compacted(), clock, None);
    let log = mgr.get(&tp()).expect("log");
    assert_eq!(log.producer_entry(42).expect("producer survives").last_seq(), 9);
    let b = keyed_batch(&[(Some(b"k"), Some(b"z"))], ts, Compression::None, p(10));
    let dup = keyed_batch(&[(Some(b"k"), Some(b"x")), (Some(b"k"), Some(b"y"))], ts, Compression::Lz4, p(8));
    assert!(log.append_client(&dup, 0).expect("retry").duplicate, "a retry of the last batch is still a duplicate");
    assert!(!log.append_client(&b, 0).expect("next sequence").duplicate, "the producer goes on in sequence");
}

#[test]
fn every_codec_is_cleaned_and_recompressed_with_itself() {
    for codec in CODECS {
        let d = tempfile::tempdir().expect("tempdir");
        let clock = manual_clock();
        let mgr = open_with(d.path(), compacted(), clock.clone(), None);
        let log = common::follow_local(mgr.get_or_create(&tp(), compacted()).expect("create"));
        let ts = clock.now_ms_for_test();
        for round in 0..6 {
            let vals: Vec<String> = (0..4).map(|i| format!("v{round}-{i}")).collect();
            let recs: Vec<compaction_util::KV<'_>> = vec![
                (Some(b"a"), Some(vals[0].as_bytes())),
                (Some(b"b"), Some(vals[1].as_bytes())),
                (Some(b"a"), Some(vals[2].as_bytes())),
                (None, Some(vals[3].as_bytes())),
            ];
            log.append(keyed_batch(&recs, ts, codec, None), 0).expect("append");
        }
        settle(&log);
        mgr.run_cleaner();
        let (got, headers) = read_all(&log);
        let pairs: Vec<(i64, Option<Bytes>)> = got.iter().map(|g| (g.0, g.2.clone())).collect();
        assert_eq!(
            pairs,
            vec![(21, Some(Bytes::from("v5-1"))), (22, Some(Bytes::from("v5-2")))],
            "{codec:?}: latest a and b; keyless records dropped"
        );
        let last = headers.last().expect("a batch");
        assert_eq!(last.compression(), codec as i16, "{codec:?}: the codec is kept");
        assert_eq!((last.base_offset, last.last_offset()), (20, 23), "{codec:?}: the batch keeps its offsets");
    }
}

#[test]
fn aborted_transactions_never_shadow_committed_values() {
    let d = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let mgr = open_with(d.path(), compacted(), clock.clone(), None);
    let log = common::follow_local(mgr.get_or_create(&tp(), compacted()).expect("create"));
    let ts = clock.now_ms_for_test();
    let committed = updates(&log, &["k"], 3, ts)["k"];
    let txn = Producer { id: 9, epoch: 0, base_sequence: 0, transactional: true };
    let aborted = log
        .append_client(keyed_batch(&[(Some(b"k"), Some(b"aborted"))], ts, Compression::None, Some(txn)), 0)
        .expect("transactional append");
    log.append_marker(9, 0, 0, Marker::Abort, 0).expect("abort");
    updates(&log, &["other"], 30, ts);
    settle(&log);
    mgr.run_cleaner();
    let (got, headers) = read_all(&log);
    let ks: Vec<(i64, Option<Bytes>)> =
        got.iter().filter(|g| g.1.as_deref() == Some(b"k".as_slice())).map(|g| (g.0, g.2.clone())).collect();
    assert_eq!(
        ks,
        vec![
            (committed, Some(Bytes::from(value("k", committed)))),
            (aborted.first_offset, Some(Bytes::from("aborted")))
        ],
        "the committed value stays; the aborted batch is kept as it is"
    );
    assert!(headers.iter().any(|h| h.is_control()), "the abort marker stays");
    assert_eq!(log.aborted_transactions(0, i64::MAX).len(), 1);
    mgr.shutdown().expect("shutdown");
    drop((log, mgr));
    let mgr = open_with(d.path(), compacted(), clock, None);
    let log = mgr.get(&tp()).expect("log");
    let a = log.aborted_transactions(0, i64::MAX);
    assert_eq!(a.len(), 1, "the .txnindex entry moved into the cleaned segment");
    assert_eq!((a[0].producer_id, a[0].first_offset), (9, aborted.first_offset));
}

#[test]
fn nothing_past_the_last_stable_offset_is_cleaned() {
    let d = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let mgr = open_with(d.path(), compacted(), clock.clone(), None);
    let log = common::follow_local(mgr.get_or_create(&tp(), compacted()).expect("create"));
    let ts = clock.now_ms_for_test();
    updates(&log, &["a"], 5, ts);
    log.roll().expect("roll");
    let txn = Producer { id: 9, epoch: 0, base_sequence: 0, transactional: true };
    let open_at = log
        .append_client(keyed_batch(&[(Some(b"t"), Some(b"open"))], ts, Compression::None, Some(txn)), 0)
        .expect("transactional append")
        .first_offset;
    updates(&log, &["a"], 30, ts);
    settle(&log);
    assert_eq!(log.last_stable_offset(), open_at);
    mgr.run_cleaner();
    let end = mgr.cleaner_checkpoint(&tp()).expect("cleaned up to the LSO");
    assert!(end <= open_at, "the pass stops below the open transaction ({end} > {open_at})");
    let got = read_all(&log).0;
    assert!(got.iter().filter(|g| g.0 > open_at).count() >= 29, "records past the LSO are untouched");
}

#[test]
fn leftover_cleaned_files_are_deleted_at_open() {
    let d = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let mgr = open_with(d.path(), compacted(), clock.clone(), None);
    let log = common::follow_local(mgr.get_or_create(&tp(), compacted()).expect("create"));
    updates(&log, &["a", "b"], 20, clock.now_ms_for_test());
    settle(&log);
    let before = read_all(&log).0;
    mgr.shutdown().expect("shutdown");
    drop((log, mgr));
    let pdir = d.path().join(tp().dir_name());
    for ext in ["log", "index", "timeindex"] {
        std::fs::write(pdir.join(format!("00000000000000000000.{ext}.cleaned")), b"half written").expect("write");
    }
    std::fs::write(pdir.join("00000000000000000000.index.swap"), b"uncommitted").expect("write");
    let opts = ManagerOptions { clock: clock.clone(), ..ManagerOptions::default() };
    let cfg = compacted();
    let (mgr, report) = LogManager::open(d.path(), opts, move |_| cfg.clone()).expect("open");
    assert!(report.repairs.iter().any(|r| r.contains(".cleaned")), "{:?}", report.repairs);
    let names: Vec<String> = std::fs::read_dir(&pdir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".cleaned") && !n.ends_with(".swap")), "{names:?}");
    assert_eq!(read_all(&mgr.get(&tp()).expect("log")).0, before);
}

/// A crash before each step of the swap (`CleanerOptions::crash_at_swap_step`
/// stops the protocol there and leaves the files as they are), then an
/// unclean restart: the log is the old one or the cleaned one, never a mix
/// that loses a record, and a second pass finishes the job.
#[test]
fn a_crash_at_any_step_of_the_swap_loses_nothing() {
    let keys = ["a", "b", "c"];
    for crash_at in 0..16u32 {
        let d = tempfile::tempdir().expect("tempdir");
        let clock = manual_clock();
        let cfg = LogConfig { segment_bytes: 4_000, ..compacted() };
        let mgr = open_with(d.path(), cfg.clone(), clock.clone(), Some(crash_at));
        let log = common::follow_local(mgr.get_or_create(&tp(), cfg.clone()).expect("create"));
        // Small segments first (so groups merge several), then a roll.
        log.set_config(LogConfig { segment_bytes: 500, ..cfg.clone() });
        let latest = updates(&log, &keys, 15, clock.now_ms_for_test());
        log.set_config(cfg.clone());
        settle(&log);
        let (end, before) = (log.log_end_offset(), read_all(&log).0);
        let res = mgr.run_cleaner();
        let crashed = res.is_empty();
        drop((log, mgr)); // no shutdown: a crash
        assert!(crashed || crash_at >= 9, "the first group's swap has at least 9 steps");

        let opts = ManagerOptions { clock: clock.clone(), ..ManagerOptions::default() };
        let c2 = cfg.clone();
        let (mgr, report) = LogManager::open(d.path(), opts, move |_| c2.clone()).expect("reopen");
        let completed = report.repairs.iter().any(|r| r.contains("completed the swap"));
        assert_eq!(completed, crashed && crash_at >= 4, "crash at {crash_at}: {:?}", report.repairs);
        let log = mgr.get(&tp()).expect("log");
        let pdir = d.path().join(tp().dir_name());
        let leftovers: Vec<String> = std::fs::read_dir(&pdir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap") || n.ends_with(".deleted"))
            .collect();
        assert!(leftovers.is_empty(), "crash at {crash_at}: {leftovers:?}");
        let (got, _) = read_all(&log);
        assert_originals(&got);
        assert_eq!(log.log_end_offset(), end, "crash at {crash_at}");
        let by_key = latest_by_key(&got);
        for (k, off) in &latest {
            assert_eq!(by_key[k].0, *off, "crash at {crash_at}: the latest {k} survives");
        }
        assert!(got.len() <= before.len());

        // The next pass (not crashing) completes the compaction.
        mgr.run_cleaner();
        let (got, _) = read_all(&log);
        assert_eq!(got.len(), keys.len(), "crash at {crash_at}: after a full pass one record per key");
    }
}

#[test]
fn deleting_a_log_forgets_its_checkpoint() {
    let d = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let mgr = open_with(d.path(), compacted(), clock.clone(), None);
    let log = common::follow_local(mgr.get_or_create(&tp(), compacted()).expect("create"));
    updates(&log, &["a"], 10, clock.now_ms_for_test());
    settle(&log);
    mgr.run_cleaner();
    assert!(mgr.cleaner_checkpoint(&tp()).is_some());
    drop(log);
    assert!(mgr.delete(&tp()).expect("delete"));
    assert_eq!(mgr.cleaner_checkpoint(&tp()), None);
    let text = std::fs::read_to_string(d.path().join(CLEANER_CHECKPOINT_FILE)).expect("checkpoint");
    assert_eq!(text, "0\n0\n");
}

#[test]
fn delete_policy_logs_are_never_compacted() {
    let d = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let cfg = LogConfig { cleanup_policy: CleanupPolicy::Delete, ..compacted() };
    let mgr = open_with(d.path(), cfg.clone(), clock.clone(), None);
    let log = common::follow_local(mgr.get_or_create(&tp(), cfg).expect("create"));
    updates(&log, &["a"], 20, clock.now_ms_for_test());
    settle(&log);
    assert!(mgr.run_cleaner().is_empty());
    assert_eq!(read_all(&log).0.len(), 20);
}
