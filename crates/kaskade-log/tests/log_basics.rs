//! Append, read, roll, time lookup, retention, truncation and reopen on a
//! real directory.

mod common;
use common::*;

use std::sync::Arc;

use kaskade_log::{LogConfig, LogError, MaxTimestamp, TopicPartition};

#[test]
fn append_read_and_reopen_clean() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let cfg = LogConfig { segment_bytes: 10_000, index_interval_bytes: 500, ..LogConfig::default() };
    let (mgr, _) = open(dir.path(), cfg.clone(), clock.clone());
    let log = common::follow_local(mgr.get_or_create(&tp(), cfg.clone()).expect("create"));
    let mut sent = Vec::new();
    for i in 0..100u8 {
        let b = batch(1 + (i as usize % 3), 100, 1000 + i as i64, i);
        let info = log.append(&b, 5).expect("append");
        sent.push((info.first_offset, b));
    }
    assert!(log.segment_count() > 1, "segments rolled on segment.bytes");
    let end = log.log_end_offset();
    // Read everything back, batch by batch, byte-exact after the patched prefix.
    let mut next = 0;
    let mut got = Vec::new();
    while next < end {
        let r = log.read(next, 3000, None).expect("read");
        let bytes = r.records.expect("data");
        for (base, last, body) in split(&bytes) {
            if last >= next {
                got.push((base, body));
                next = last + 1;
            }
        }
    }
    assert_eq!(got.len(), sent.len());
    for ((gb, gbody), (sb, sbytes)) in got.iter().zip(&sent) {
        assert_eq!(gb, sb);
        assert_eq!(gbody[..], sbytes[16..]);
    }
    // A mid-batch offset returns the batch holding it.
    let mid = sent[10].0 + 1;
    let r = log.read(mid, 1, None).expect("read");
    assert_eq!(split(&r.records.expect("data"))[0].0, sent[10].0.min(mid));
    // KIP-74: a tiny max_bytes still returns one whole batch.
    let r = log.read(0, 1, None).expect("read");
    assert_eq!(split(&r.records.expect("data")).len(), 1);
    // Out of range and end of log.
    assert!(matches!(log.read(end + 1, 100, None), Err(LogError::OffsetOutOfRange { .. })));
    assert!(log.read(end, 100, None).expect("read").records.is_none());
    mgr.shutdown().expect("shutdown");

    let (mgr, report) = open(dir.path(), cfg.clone(), clock);
    assert!(report.clean, "clean shutdown marker seen");
    assert!(report.repairs.is_empty(), "{:?}", report.repairs);
    let log = mgr.get(&tp()).expect("log reopened");
    assert_eq!(log.log_end_offset(), end);
    let info = log.append(batch(2, 10, 5000, 9), 5).expect("append after reopen");
    assert_eq!(info.first_offset, end);
    mgr.shutdown().expect("shutdown");
}

#[test]
fn timestamps_and_index_files_follow_kafka_layout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let cfg = LogConfig { index_interval_bytes: 200, ..LogConfig::default() };
    let (mgr, _) = open(dir.path(), cfg.clone(), clock);
    let log = common::follow_local(mgr.get_or_create(&tp(), cfg).expect("create"));
    for i in 0..50i64 {
        log.append(batch(1, 100, 10_000 + i * 10, 0), 0).expect("append");
    }
    let hit = log.find_by_timestamp(10_205).expect("lookup").expect("found");
    assert_eq!(hit.header.base_offset, 21, "first batch with ts >= 10205 is ts 10210 at offset 21");
    assert!(log.find_by_timestamp(99_999).expect("lookup").is_none());
    assert_eq!(log.max_timestamp(), Some(MaxTimestamp { timestamp: 10_490, offset: 49 }));
    // Index entries reach their files at the latest when the log is flushed.
    mgr.shutdown().expect("shutdown");
    let p = dir.path().join("t-0");
    assert!(p.join("00000000000000000000.log").exists());
    let idx = std::fs::read(p.join("00000000000000000000.index")).expect("index");
    assert!(!idx.is_empty() && idx.len().is_multiple_of(8));
    let tix = std::fs::read(p.join("00000000000000000000.timeindex")).expect("timeindex");
    assert!(!tix.is_empty() && tix.len().is_multiple_of(12));
}

#[test]
fn retention_by_time_bytes_and_log_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let now = clock.now_ms_for_test();
    let cfg = LogConfig { segment_bytes: 2_000, retention_ms: 60_000, ..LogConfig::default() };
    let (mgr, _) = open(dir.path(), cfg.clone(), clock.clone());
    let log = common::follow_local(mgr.get_or_create(&tp(), cfg.clone()).expect("create"));
    for i in 0..40i64 {
        log.append(batch(1, 200, now + i * 1000, 0), 0).expect("append");
    }
    let segs = log.segment_count();
    assert!(segs > 3);
    assert_eq!(log.apply_retention().expect("retention"), 0, "nothing expired yet");
    clock.advance(60_000 + 20_500);
    let deleted = log.apply_retention().expect("retention");
    assert!(deleted > 0 && log.segment_count() < segs);
    assert!(log.log_start_offset() > 0);
    assert_eq!(log.log_start_offset(), log.segment_bases()[0]);
    let start = log.log_start_offset();
    assert!(matches!(log.read(start - 1, 100, None), Err(LogError::OffsetOutOfRange { .. })));
    // Everything expired: even the active segment goes, and the log stays usable.
    clock.advance(1_000_000);
    log.apply_retention().expect("retention");
    assert_eq!(log.log_start_offset(), log.log_end_offset());
    assert_eq!(log.append(batch(1, 10, clock.now_ms_for_test(), 0), 0).expect("append").first_offset, 40);
    // Size retention keeps at most retention.bytes plus the active segment.
    let cfg2 = LogConfig { segment_bytes: 2_000, retention_ms: -1, retention_bytes: 5_000, ..LogConfig::default() };
    log.set_config(cfg2);
    for _ in 0..60 {
        log.append(batch(1, 200, clock.now_ms_for_test(), 0), 0).expect("append");
    }
    log.apply_retention().expect("retention");
    assert!(log.size_bytes() <= 5_000 + 2_000, "size {}", log.size_bytes());
    // DeleteRecords moves the start and drops whole segments below it.
    let target = log.log_end_offset() - 3;
    log.advance_log_start(target).expect("advance");
    assert_eq!(log.log_start_offset(), target);
    assert!(log.segment_bases()[0] <= target);
    assert!(log.advance_log_start(log.log_end_offset() + 1).is_err());
    // No `.deleted` leftovers.
    let leftovers = std::fs::read_dir(dir.path().join("t-0"))
        .expect("dir")
        .filter(|e| e.as_ref().map(|e| e.file_name().to_string_lossy().ends_with(".deleted")).unwrap_or(false))
        .count();
    assert_eq!(leftovers, 0);
    mgr.shutdown().expect("shutdown");
    let (mgr, _) = open(dir.path(), cfg, clock);
    assert_eq!(mgr.get(&tp()).expect("log").log_start_offset(), target, "log start survives restart");
    mgr.shutdown().expect("shutdown");
}

#[test]
fn truncate_and_segment_ms_roll() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let cfg = LogConfig { segment_ms: 10_000, segment_bytes: 3_000, ..LogConfig::default() };
    let (mgr, _) = open(dir.path(), cfg.clone(), clock.clone());
    let log = common::follow_local(mgr.get_or_create(&tp(), cfg).expect("create"));
    for _ in 0..5 {
        log.append(batch(2, 50, clock.now_ms_for_test(), 0), 0).expect("append");
    }
    assert_eq!(log.segment_count(), 1);
    clock.advance(10_001);
    log.append(batch(2, 50, clock.now_ms_for_test(), 0), 0).expect("append");
    assert_eq!(log.segment_count(), 2, "segment.ms rolled");
    for _ in 0..30 {
        log.append(batch(2, 50, clock.now_ms_for_test(), 0), 0).expect("append");
    }
    let end = log.log_end_offset();
    assert_eq!(end, 72);
    log.truncate_to(13).expect("truncate");
    assert_eq!(log.log_end_offset(), 12, "the batch holding 13 (12..13) is removed whole");
    let info = log.append(batch(1, 10, clock.now_ms_for_test(), 0), 0).expect("append");
    assert_eq!(info.first_offset, 12);
    log.truncate_to(0).expect("truncate fully");
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.append(batch(1, 10, 0, 0), 0).expect("append").first_offset, 0);
    mgr.shutdown().expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_waits_are_group_committed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let cfg = LogConfig::default();
    let (mgr, _) = open(dir.path(), cfg.clone(), clock);
    let log = common::follow_local(mgr.get_or_create(&tp(), cfg).expect("create"));
    let mut waits = Vec::new();
    for _ in 0..200 {
        let info = log.append(batch(1, 100, 0, 0), 0).expect("append");
        let log = log.clone();
        waits.push(tokio::spawn(async move { log.wait_durable(info.last_offset + 1).await }));
    }
    for w in waits {
        w.await.expect("join").expect("durable");
    }
    assert_eq!(log.durable_end(), 200);
    assert_eq!(log.recovery_point(), 200);
    mgr.shutdown().expect("shutdown");
}

/// A failing fsync (injected at the flush seam) ends every durable wait
/// with an I/O error at once, never moves the durable end or the HW past
/// what was on disk, and takes the log offline: later appends are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fsync_fails_the_waiters_and_takes_the_log_offline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = LogConfig::default();
    let (mgr, _) = open(dir.path(), cfg.clone(), manual_clock());
    let log = common::follow_local(mgr.get_or_create(&tp(), cfg).expect("create"));
    let first = log.append(batch(1, 100, 0, 0), 0).expect("append");
    log.wait_durable(first.last_offset + 1).await.expect("durable before the fault");
    log.inject_sync_failure(Some("injected: no space left on device".into()));
    let info = log.append(batch(2, 100, 0, 0), 0).expect("append into the page cache");
    let waited = tokio::time::timeout(std::time::Duration::from_secs(10), log.wait_durable(info.last_offset + 1))
        .await
        .expect("the wait ends, it does not hang");
    match waited {
        Err(LogError::Io(e)) => assert!(e.to_string().contains("injected"), "{e}"),
        other => panic!("expected an I/O error, got {other:?}"),
    }
    assert_eq!(log.durable_end(), 1, "the failed sync made nothing durable");
    assert_eq!(log.high_watermark(), 1, "nothing past the durable end is exposed");
    assert!(matches!(log.append(batch(1, 10, 0, 0), 0), Err(LogError::Io(_))), "offline after the failure");
    log.inject_sync_failure(None);
    mgr.shutdown().expect("shutdown");
}

#[test]
fn bad_batches_are_rejected_by_kind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = LogConfig { max_message_bytes: 1000, ..LogConfig::default() };
    let (mgr, _) = open(dir.path(), cfg.clone(), manual_clock());
    let log = common::follow_local(mgr.get_or_create(&tp(), cfg).expect("create"));
    let mut b = batch(2, 10, 0, 0);
    let n = b.len();
    b[n - 1] ^= 1;
    assert!(matches!(log.append(&b, 0).unwrap_err(), LogError::CorruptBatch(_)));
    assert!(matches!(log.append(batch(1, 2000, 0, 0), 0).unwrap_err(), LogError::TooLarge { .. }));
    assert!(matches!(log.append(&[0u8; 5], 0).unwrap_err(), LogError::CorruptBatch(_)));
    assert_eq!(log.log_end_offset(), 0, "nothing was appended");
    mgr.shutdown().expect("shutdown");
}

/// The high watermark is an input: `update_high_watermark` only moves it
/// forward and never past the log end; a truncation lowers it to the new
/// end. The single-node rule keeps it at the durable end in durable mode
/// and at the log end in lazy mode.
#[test]
fn high_watermark_is_monotonic_clamped_and_follows_the_single_node_rule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let lazy = LogConfig { flush: kaskade_log::FlushPolicy::Lazy { messages: None, ms: None }, ..LogConfig::default() };
    let (mgr, _) = open(dir.path(), lazy.clone(), clock);
    let log = common::follow_local(mgr.get_or_create(&tp(), lazy).expect("create"));
    let hw_rx = log.subscribe_high_watermark();
    for i in 0..5u8 {
        log.append(batch(2, 50, 0, i), 0).expect("append");
    }
    assert_eq!(log.log_end_offset(), 10);
    assert_eq!(log.high_watermark(), 10, "lazy mode: HW = log end");
    assert!(hw_rx.has_changed().expect("open"), "HW moves are notified");
    assert_eq!(log.update_high_watermark(25), 10, "clamped to the log end");
    assert_eq!(log.update_high_watermark(3), 10, "never backwards");
    log.truncate_to(4).expect("truncate");
    assert_eq!(log.high_watermark(), 4, "a truncation lowers the HW to the new end");

    // Durable mode: what is appended from now on becomes visible only once
    // an fsync covered it (what lazy mode exposed stays exposed: the HW
    // never moves back).
    log.set_config(LogConfig::default());
    log.append(batch(1, 50, 0, 9), 0).expect("append");
    assert!(log.high_watermark() <= log.durable_end().max(4), "HW past the durable end");
    log.flush_blocking().expect("flush");
    assert_eq!(log.high_watermark(), log.log_end_offset());
    mgr.shutdown().expect("shutdown");
}

/// The leader-epoch cache: written as Kafka's `leader-epoch-checkpoint`
/// when a new epoch starts, cut by truncation and by the log start moving,
/// answering `end_offset_for_epoch` as Kafka's `endOffsetFor`, and rebuilt
/// from the batches at open when the file is gone.
#[test]
fn leader_epoch_checkpoint_tracks_epochs_and_is_rebuilt() {
    use kaskade_log::leader_epoch::LEADER_EPOCH_FILE;
    use kaskade_types::{LeaderEpoch, Offset};
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let cfg = LogConfig { segment_bytes: 400, index_interval_bytes: 100, ..LogConfig::default() };
    let (mgr, _) = open(dir.path(), cfg.clone(), clock.clone());
    let log = common::follow_local(mgr.get_or_create(&tp(), cfg.clone()).expect("create"));
    for (i, epoch) in [0, 0, 2, 2, 5, 5].into_iter().enumerate() {
        log.append(batch(2, 50, 0, i as u8), epoch).expect("append");
    }
    let file = log.dir().join(LEADER_EPOCH_FILE);
    assert_eq!(std::fs::read_to_string(&file).expect("checkpoint"), "0\n3\n0 0\n2 4\n5 8\n");
    assert_eq!(log.end_offset_for_epoch(LeaderEpoch(5)), Some((LeaderEpoch(5), Offset(12))));
    assert_eq!(log.end_offset_for_epoch(LeaderEpoch(3)), Some((LeaderEpoch(2), Offset(8))));
    assert_eq!(log.end_offset_for_epoch(LeaderEpoch(6)), None);

    log.truncate_to(10).expect("truncate");
    assert_eq!(std::fs::read_to_string(&file).expect("checkpoint"), "0\n3\n0 0\n2 4\n5 8\n");
    log.truncate_to(8).expect("truncate");
    assert_eq!(log.end_offset_for_epoch(LeaderEpoch(2)), Some((LeaderEpoch(2), Offset(8))), "epoch 5 is gone");
    log.advance_log_start(5).expect("delete records");
    assert_eq!(std::fs::read_to_string(&file).expect("checkpoint"), "0\n1\n2 5\n");
    log.append(batch(1, 50, 0, 9), 7).expect("append");
    mgr.shutdown().expect("shutdown");

    std::fs::remove_file(&file).expect("remove");
    let (mgr, _) = open(dir.path(), cfg.clone(), clock);
    let log = common::follow_local(mgr.get_or_create(&tp(), cfg).expect("reopen"));
    assert_eq!(log.end_offset_for_epoch(LeaderEpoch(2)), Some((LeaderEpoch(2), Offset(8))), "rebuilt from batches");
    assert_eq!(log.end_offset_for_epoch(LeaderEpoch(7)), Some((LeaderEpoch(7), Offset(9))));
    assert!(file.exists(), "the rebuilt cache is written back");
    mgr.shutdown().expect("shutdown");
}

/// The descriptors this process holds on files whose path contains `part`.
fn open_descriptors_on(part: &str) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().contains(part))
        .count()
}

#[test]
fn an_active_segment_holds_one_descriptor_and_a_vanished_index_is_an_io_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let cfg = LogConfig { index_interval_bytes: 1, ..LogConfig::default() };
    let (mgr, _) = open(dir.path(), cfg.clone(), clock);
    let log = common::follow_local(mgr.get_or_create(&tp(), cfg).expect("create"));
    // An index entry per batch: 64 reach the file, the rest wait in memory.
    for i in 0..100i64 {
        log.append(batch(1, 100, 10_000 + i, 0), 0).expect("append");
    }
    log.flush_blocking().expect("flush");
    let seg = dir.path().join("t-0");
    let files = |ext: &str| open_descriptors_on(&seg.join(format!("00000000000000000000.{ext}")).to_string_lossy());
    assert_eq!((files("log"), files("index"), files("timeindex")), (1, 0, 0), "only the .log stays open");
    // Reads look the index up by reopening it.
    let r = log.read(5, 1, None).expect("read");
    assert_eq!(split(&r.records.expect("data"))[0].0, 5);
    std::fs::remove_file(seg.join("00000000000000000000.index")).expect("remove");
    match log.read(3, 1, None) {
        Err(LogError::Io(e)) => assert!(e.to_string().contains("00000000000000000000.index"), "{e}"),
        other => panic!("expected an I/O error, got {other:?}"),
    }
    // Appends go on until the in-memory entries must reach the file.
    let failed = (100..200i64).find_map(|i| log.append(batch(1, 100, 10_000 + i, 0), 0).err());
    assert!(matches!(failed, Some(LogError::Io(_))), "{failed:?}");
    drop(mgr);
}

#[test]
fn creating_many_logs_returns_them_in_order_and_they_survive_an_unclean_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let (mgr, _) = open(dir.path(), LogConfig::default(), clock.clone());
    let existing = mgr.get_or_create(&TopicPartition::new("m", 3), LogConfig::default()).expect("one log first");
    let wanted: Vec<(TopicPartition, LogConfig)> =
        (0..40).map(|p| (TopicPartition::new("m", p), LogConfig::default())).collect();
    let logs = mgr.create_many(&wanted).expect("create");
    assert_eq!(logs.len(), 40);
    for (p, log) in logs.iter().enumerate() {
        assert_eq!(log.topic_partition(), &TopicPartition::new("m", p as i32), "in the order asked");
    }
    assert!(Arc::ptr_eq(&logs[3], &existing), "an existing log is returned, not made again");
    // A new log's first data is durable with its directory entry.
    let log = follow_local(logs[7].clone());
    log.append(batch(2, 10, 1_700_000_000_000, 7), 0).expect("append");
    log.flush_blocking().expect("durable");
    assert_eq!(log.durable_end(), 2);
    // No clean shutdown: every created log is found again.
    drop((logs, log, existing));
    drop(mgr);
    let (mgr, report) = open(dir.path(), LogConfig::default(), clock);
    assert!(!report.clean);
    assert_eq!(report.partitions, 40, "{:?}", report.repairs);
    assert_eq!(mgr.get(&TopicPartition::new("m", 7)).expect("m-7").log_end_offset(), 2);
}

#[test]
fn a_log_that_cannot_be_created_fails_the_batch_and_the_others_stay_registered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mgr, _) = open(dir.path(), LogConfig::default(), manual_clock());
    // Partition 2's directory cannot be made: a file stands in its way.
    std::fs::write(dir.path().join("f-2"), b"in the way").expect("write");
    let wanted: Vec<(TopicPartition, LogConfig)> =
        (0..4).map(|p| (TopicPartition::new("f", p), LogConfig::default())).collect();
    assert!(mgr.create_many(&wanted).is_err());
    for p in [0, 1, 3] {
        assert!(mgr.get(&TopicPartition::new("f", p)).is_some(), "f-{p} is registered, for the caller to delete");
    }
    assert!(mgr.get(&TopicPartition::new("f", 2)).is_none());
    for p in [0, 1, 3] {
        assert!(mgr.delete(&TopicPartition::new("f", p)).expect("delete"), "f-{p} deleted");
    }
    assert!(!dir.path().join("f-0").exists());
}
