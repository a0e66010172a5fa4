//! Appenders of one partition queue their batches, one of them at a time
//! writes the queue into the page cache outside the log's lock, and
//! batches are published in reservation order. These tests drive many
//! appenders and readers at one log at once (with rolls on size and on full
//! indexes in between) and check the log stays gap-free, in order,
//! byte-exact and readable at every moment, across a reopen; that an
//! appender never waits for a writer that went away; and that a failed
//! write takes the log offline instead of publishing past a hole.

mod common;
use common::*;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use kaskade_log::batch::BatchHeader;
use kaskade_log::{Log, LogConfig, LogError, LogManager};

const THREADS: i64 = 4;
const PER_THREAD: i64 = 400;

/// Which appender wrote a batch and its sequence: encoded in the batch's
/// timestamp, so it survives the round trip through the log.
fn identity(ts: i64) -> (i64, i64) {
    (ts / 1_000_000, ts % 1_000_000)
}

/// Reads the whole log and checks it is one gap-free run of valid batches
/// from `from`. Returns (base offset, max timestamp, record count) per batch.
fn read_all(log: &kaskade_log::Log, from: i64) -> Vec<(i64, i64, i32)> {
    let end = log.log_end_offset();
    let mut next = from;
    let mut out = Vec::new();
    while next < end {
        let r = log.read(next, 64 * 1024, None).expect("read below the log end");
        let bytes = r.records.expect("data below the log end");
        let mut b = &bytes[..];
        while !b.is_empty() {
            let h = BatchHeader::parse(b).expect("header");
            let len = h.total_len();
            kaskade_log::batch::validate_structure(&b[..len]).expect("a whole valid batch");
            if h.last_offset() >= next {
                assert_eq!(h.base_offset, next, "gap or overlap in the log");
                out.push((h.base_offset, h.max_timestamp, h.records_count));
                next = h.last_offset() + 1;
            }
            b = &b[len..];
        }
    }
    out
}

/// A log manager in `dir` holding the test partition with `cfg`.
fn open_log(dir: &std::path::Path, cfg: LogConfig) -> (Arc<LogManager>, Arc<Log>) {
    let (mgr, _) = open(dir, cfg.clone(), manual_clock());
    let log = common::follow_local(mgr.get_or_create(&tp(), cfg).expect("create"));
    (mgr, log)
}

/// Every appender's batches are there exactly once, in its own order.
fn check_complete(batches: &[(i64, i64, i32)]) {
    let mut last_seq = vec![-1i64; THREADS as usize];
    for &(_, ts, _) in batches {
        let (t, seq) = identity(ts);
        assert_eq!(seq, last_seq[t as usize] + 1, "appender {t}: batch {seq} out of order or duplicated");
        last_seq[t as usize] = seq;
    }
    assert!(last_seq.iter().all(|s| *s == PER_THREAD - 1), "missing batches: {last_seq:?}");
}

#[test]
fn concurrent_appenders_and_readers_see_a_gap_free_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    // Small segments and an index of 12 entries: rolls happen on
    // `segment.bytes` and on a full index while writes are in flight.
    let cfg = LogConfig {
        segment_bytes: 48 * 1024,
        index_interval_bytes: 300,
        segment_index_bytes: 96,
        ..LogConfig::default()
    };
    let (mgr, _) = open(dir.path(), cfg.clone(), clock.clone());
    let log = common::follow_local(mgr.get_or_create(&tp(), cfg.clone()).expect("create"));
    let stop = Arc::new(AtomicBool::new(false));

    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (log, stop) = (log.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut passes = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let seen = read_all(&log, 0);
                    // Each appender's published batches are a prefix of
                    // what it wrote: publication never skips one.
                    let mut last_seq = vec![-1i64; THREADS as usize];
                    for (_, ts, _) in seen {
                        let (t, seq) = identity(ts);
                        assert_eq!(seq, last_seq[t as usize] + 1, "reader saw appender {t} skip to {seq}");
                        last_seq[t as usize] = seq;
                    }
                    passes += 1;
                }
                passes
            })
        })
        .collect();

    let appenders: Vec<_> = (0..THREADS)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for seq in 0..PER_THREAD {
                    let n = 1 + (seq % 4) as usize;
                    let b = batch(n, 100 + (seq % 7) as usize * 50, t * 1_000_000 + seq, t as u8);
                    let info = log.append(&b, 3).expect("append");
                    // `append` returns only once its batch is published.
                    assert!(log.log_end_offset() > info.last_offset, "returned before its batch was visible");
                    let r = log.read(info.first_offset, 1, None).expect("read own batch");
                    let got = BatchHeader::parse(&r.records.expect("own batch")).expect("header");
                    assert_eq!((got.base_offset, got.max_timestamp), (info.first_offset, t * 1_000_000 + seq));
                }
            })
        })
        .collect();
    for a in appenders {
        a.join().expect("appender");
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().expect("reader") > 0, "readers ran");
    }

    let batches = read_all(&log, 0);
    check_complete(&batches);
    let total: i64 = batches.iter().map(|b| b.2 as i64).sum();
    assert_eq!(log.log_end_offset(), total);
    assert!(log.segment_count() > 5, "segments rolled during the run: {}", log.segment_count());
    // The sparse indexes written at publication find every batch.
    for &(base, ts, count) in batches.iter().step_by(7) {
        let r = log.read(base + count as i64 - 1, 1, None).expect("read by index");
        let h = BatchHeader::parse(&r.records.expect("batch")).expect("header");
        assert_eq!((h.base_offset, h.max_timestamp), (base, ts));
    }
    mgr.shutdown().expect("shutdown");

    // After a clean shutdown nothing is rescanned and the log is the same.
    let (mgr, report) = open(dir.path(), cfg, clock);
    assert!(report.repairs.is_empty(), "{:?}", report.repairs);
    let log = mgr.get(&tp()).expect("reopened");
    assert_eq!(read_all(&log, 0), batches);
    mgr.shutdown().expect("shutdown");
}

#[test]
fn an_appender_does_not_wait_for_a_writer_that_went_away() {
    // The writer role sticks to the thread that wrote last: another thread
    // arriving right after it stepped down first leaves its batch to it for
    // a moment. Here the last writer's thread always ends right after its
    // append, so every such wait must give up and write the batch itself.
    let dir = tempfile::tempdir().expect("tempdir");
    let (mgr, log) = open_log(dir.path(), LogConfig::default());
    const ROUNDS: i64 = 200;
    let (tx, rx) = std::sync::mpsc::channel();
    for pair in 0..ROUNDS / 2 {
        // The second thread appends the moment the first one's append
        // returned and that thread is on its way out.
        let gate = Arc::new(std::sync::Barrier::new(2));
        for second in [false, true] {
            let (log, gate, tx) = (log.clone(), gate.clone(), tx.clone());
            std::thread::spawn(move || {
                if second {
                    gate.wait();
                }
                let seq = 2 * pair + second as i64;
                let r = log.append(batch(1, 100, seq, 1), 0).map(|i| i.first_offset);
                if !second {
                    gate.wait();
                }
                let _ = tx.send((seq, r));
            });
        }
        for _ in 0..2 {
            let (seq, r) = rx
                .recv_timeout(std::time::Duration::from_secs(10))
                .expect("an append hung waiting for a writer that had left");
            assert_eq!(r.expect("append"), seq, "each append lands after the one before it");
        }
    }
    let batches = read_all(&log, 0);
    let seqs: Vec<i64> = batches.iter().map(|b| b.1).collect();
    assert_eq!(seqs, (0..ROUNDS).collect::<Vec<_>>(), "every batch written once, in order");
    mgr.shutdown().expect("shutdown");
}

#[test]
fn rolls_and_truncations_wait_for_in_flight_appends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mgr, log) = open_log(dir.path(), LogConfig::default());
    let stop = Arc::new(AtomicBool::new(false));
    // Appenders run until the rolls and truncations below are done, so
    // those always race appends in flight.
    let appenders: Vec<_> = (0..THREADS)
        .map(|t| {
            let (log, stop) = (log.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut seq = 0;
                while seq < 50 || !stop.load(Ordering::Relaxed) {
                    log.append(batch(2, 200, t * 1_000_000 + seq, 1), 0).expect("append");
                    seq += 1;
                }
                seq
            })
        })
        .collect();
    // Each roll and truncation must cut the log at a batch boundary of
    // published data and leave it readable.
    while log.log_end_offset() < 40 {
        std::thread::yield_now();
    }
    let mut truncations = 0;
    for round in 0..200 {
        log.roll().expect("roll");
        let end = log.log_end_offset();
        if round % 50 == 49 && end > 10 {
            // Every batch holds 2 records from offset 0: bases are even.
            log.truncate_to(end - 2).expect("truncate");
            truncations += 1;
        }
        // The tail, from a batch boundary (bases are even).
        let from = (log.log_end_offset() - 400).max(log.log_start_offset()) & !1;
        read_all(&log, from);
    }
    stop.store(true, Ordering::Relaxed);
    let appended: i64 = appenders.into_iter().map(|a| a.join().expect("appender")).sum();
    let seen = read_all(&log, 0);
    let total: i64 = seen.iter().map(|b| b.2 as i64).sum();
    assert_eq!(log.log_end_offset(), total);
    // Truncation removed some batches; the rest keep each appender's order.
    let mut last_seq = vec![-1i64; THREADS as usize];
    for &(_, ts, _) in &seen {
        let (t, seq) = identity(ts);
        assert!(seq > last_seq[t as usize], "appender {t}: {seq} after {}", last_seq[t as usize]);
        last_seq[t as usize] = seq;
    }
    assert!(truncations > 0);
    assert!(seen.len() as i64 <= appended - truncations, "each truncation removed a batch");
    mgr.shutdown().expect("shutdown");
}

#[test]
fn a_failed_write_takes_the_log_offline_and_publishes_nothing_after_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The partition's first segment is /dev/full: every write into it
    // fails with ENOSPC, as a full disk would.
    let pdir = dir.path().join("t-0");
    std::fs::create_dir_all(&pdir).expect("partition dir");
    std::os::unix::fs::symlink("/dev/full", pdir.join("00000000000000000000.log")).expect("symlink");
    let (mgr, log) = open_log(dir.path(), LogConfig::default());
    assert_eq!(log.log_end_offset(), 0);

    let err = log.append(batch(1, 10, 1, 0), 0).expect_err("the write fails");
    assert!(matches!(err, LogError::Io(_)), "{err:?}");
    assert_eq!(log.log_end_offset(), 0, "nothing published");
    assert!(log.read(0, 100, None).expect("read").records.is_none());

    // Every later append is refused: its place would follow a hole.
    let appenders: Vec<_> = (0..THREADS)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || log.append(batch(1, 10, t, 0), 0))
        })
        .collect();
    for a in appenders {
        let err = a.join().expect("appender").expect_err("offline");
        assert!(err.to_string().contains("offline"), "{err}");
    }
    assert_eq!(log.log_end_offset(), 0);
    // Reads, rolls and shutdown still work (no waiter is left behind).
    log.truncate_to(0).expect("truncate waits for nothing");
    drop(log);
    mgr.shutdown().expect("shutdown");
}
