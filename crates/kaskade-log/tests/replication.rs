//! The follower's append (`Log::append_replicated`): batches read from a
//! leader's log land in a follower's log with the same offsets, leader
//! epochs and bytes, and the follower's epoch cache, producer state and
//! aborted-transaction index end up as the leader's; a gap, an overlap and a
//! corrupt batch are refused with an error and write nothing; truncation
//! then cuts the follower's epochs and producer state with the log.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::{follow_local, manual_clock, open, tp};
use kaskade_log::batch::{self, build};
use kaskade_log::txn::{AbortedTxn, Marker};
use kaskade_log::{Log, LogConfig, LogError, LogManager};
use kaskade_types::LeaderEpoch;

const TS: i64 = 1_700_000_000_000;

fn idem(pid: i64, epoch: i16, seq: i32, n: usize) -> Vec<u8> {
    let mut b = build::filled(n, 20, TS, seq as u8);
    build::set_producer(&mut b, pid, epoch, seq);
    b
}

fn txn_batch(pid: i64, epoch: i16, seq: i32, n: usize) -> Vec<u8> {
    let mut b = idem(pid, epoch, seq, n);
    build::set_attributes(&mut b, batch::ATTR_TRANSACTIONAL);
    b
}

fn log_in(dir: &std::path::Path) -> (Arc<LogManager>, Arc<Log>) {
    let cfg = LogConfig { segment_bytes: 700, index_interval_bytes: 100, ..LogConfig::default() };
    let (mgr, _) = open(dir, cfg.clone(), manual_clock());
    let log = follow_local(mgr.get_or_create(&tp(), cfg).expect("log"));
    (mgr, log)
}

/// Everything in `log` from `from` to its end, as a fetch would return it.
fn fetch(log: &Log, from: i64) -> Bytes {
    let mut out = Vec::new();
    let mut at = from;
    while at < log.log_end_offset() {
        let r = log.read(at, 1 << 20, None).expect("read");
        let Some(bytes) = r.records else { break };
        let last = batch::headers(&bytes).last().expect("a batch").next_offset();
        out.extend_from_slice(&bytes);
        at = last;
    }
    Bytes::from(out)
}

/// A leader with two epochs, an idempotent producer, an aborted and a
/// committed transaction.
fn leader_log(log: &Log) {
    log.append_client(idem(1, 0, 0, 3), 0).expect("idempotent");
    log.append_client(txn_batch(2, 0, 0, 2), 0).expect("txn");
    log.append_marker(2, 0, 5, Marker::Abort, 0).expect("abort");
    log.append_client(idem(1, 0, 3, 2), 3).expect("epoch 3");
    log.append_client(txn_batch(2, 1, 0, 1), 3).expect("txn 2");
    log.append_marker(2, 1, 6, Marker::Commit, 3).expect("commit");
    log.append_client(build::filled(4, 30, TS, 9), 3).expect("plain");
}

#[test]
fn a_follower_gets_the_leaders_batches_epochs_and_producer_state() {
    let (ld, fd) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let (lm, leader) = log_in(ld.path());
    let (fm, follower) = log_in(fd.path());
    leader_log(&leader);
    let all = fetch(&leader, 0);
    // Fetched in two pieces, the first cut inside a batch (a fetch answer
    // may end with a partial batch): the partial one waits for the next.
    let first_len = batch::headers(&all).next().expect("batch").total_len();
    assert_eq!(follower.append_replicated(&all.slice(..first_len + 20)).expect("append"), 1);
    assert_eq!(follower.log_end_offset(), 3);
    let n = follower.append_replicated(&fetch(&leader, 3)).expect("append the rest");
    assert_eq!(n, batch::headers(&all).count() - 1);

    assert_eq!(follower.log_end_offset(), leader.log_end_offset());
    assert_eq!(fetch(&follower, 0), all, "same bytes at the same offsets");
    for e in [0, 1, 3, 4] {
        assert_eq!(
            follower.end_offset_for_epoch(LeaderEpoch(e)),
            leader.end_offset_for_epoch(LeaderEpoch(e)),
            "epoch {e}"
        );
    }
    assert_eq!(follower.latest_epoch(), Some(LeaderEpoch(3)));
    for pid in [1, 2] {
        assert_eq!(follower.producer_entry(pid), leader.producer_entry(pid), "producer {pid}");
    }
    let end = leader.log_end_offset();
    // Kafka's `.txnindex` LSO depends on the log alone (no other
    // transaction was open at the abort marker 5: the marker's offset + 1),
    // not on how far either replica's high watermark had moved.
    let abort = AbortedTxn { producer_id: 2, first_offset: 3, last_offset: 5, last_stable_offset: 6 };
    assert_eq!(leader.aborted_transactions(0, end), vec![abort]);
    assert_eq!(follower.aborted_transactions(0, end), vec![abort]);
    // Deduplication survives a failover: the follower, made leader, answers
    // the producer's retry of its last batch with the first offsets.
    let retry = follower.append_client(idem(1, 0, 3, 2), 4).expect("retry");
    assert!(retry.duplicate);
    assert_eq!(retry.first_offset, 3 + 2 + 1);
    lm.shutdown().expect("shutdown");
    fm.shutdown().expect("shutdown");
}

#[test]
fn a_gap_an_overlap_and_a_corrupt_batch_are_refused() {
    let (ld, fd) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let (lm, leader) = log_in(ld.path());
    let (fm, follower) = log_in(fd.path());
    leader_log(&leader);
    let gap = fetch(&leader, 3);
    assert!(matches!(follower.append_replicated(&gap), Err(LogError::NotContiguous { expected: 0, found: 3 })));
    assert_eq!(follower.log_end_offset(), 0, "nothing written");

    let all = fetch(&leader, 0);
    let first_len = batch::headers(&all).next().expect("batch").total_len();
    follower.append_replicated(&all.slice(..first_len)).expect("first batch");
    assert!(
        matches!(follower.append_replicated(&all), Err(LogError::NotContiguous { expected: 3, found: 0 })),
        "an overlap"
    );
    // A flipped byte in the records (under the CRC) of the next batch.
    let mut corrupt = all[first_len..].to_vec();
    corrupt[batch::HEADER_LEN + 5] ^= 0x55;
    match follower.append_replicated(&Bytes::from(corrupt)) {
        Err(LogError::CorruptBatch(_)) => {}
        other => panic!("a corrupt batch must be refused, got {other:?}"),
    }
    assert_eq!(follower.log_end_offset(), 3, "nothing written");
    // A length field smaller than a batch header.
    assert!(matches!(follower.append_replicated(&Bytes::from(vec![0u8; 40])), Err(LogError::CorruptBatch(_))));
    assert_eq!(follower.log_end_offset(), 3);
    follower.append_replicated(&all.slice(first_len..)).expect("the intact batches");
    assert_eq!(fetch(&follower, 0), all);
    lm.shutdown().expect("shutdown");
    fm.shutdown().expect("shutdown");
}

#[test]
fn truncating_a_follower_cuts_its_epochs_and_producer_state() {
    let (ld, fd) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let (lm, leader) = log_in(ld.path());
    let (fm, follower) = log_in(fd.path());
    leader_log(&leader);
    follower.append_replicated(&fetch(&leader, 0)).expect("append");
    // Epoch 3 starts at offset 6 (after the abort marker at 5).
    assert_eq!(follower.end_offset_for_epoch(LeaderEpoch(0)).map(|(_, o)| o.get()), Some(6));
    follower.truncate_to(6).expect("truncate");
    assert_eq!(follower.latest_epoch(), Some(LeaderEpoch(0)), "epoch 3 went with its batches");
    let p1 = follower.producer_entry(1).expect("producer 1");
    assert_eq!(p1.last_seq(), 2, "producer 1's epoch-3 batch went too");
    // The leader's tail appended again: same state as the leader's.
    follower.append_replicated(&fetch(&leader, 6)).expect("re-append");
    assert_eq!(follower.producer_entry(1), leader.producer_entry(1));
    assert_eq!(follower.end_offset_for_epoch(LeaderEpoch(3)), leader.end_offset_for_epoch(LeaderEpoch(3)));
    lm.shutdown().expect("shutdown");
    fm.shutdown().expect("shutdown");
}

#[test]
fn a_follower_behind_the_leaders_log_start_starts_over_there() {
    let (ld, fd) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let (lm, leader) = log_in(ld.path());
    let (fm, follower) = log_in(fd.path());
    leader.append_client(build::filled(30, 10, TS, 1), 2).expect("30 records");
    leader.append_client(idem(7, 0, 0, 2), 2).expect("2 more");
    follower.append_client(idem(5, 0, 0, 3), 1).expect("an old tail of its own");
    follower.truncate_fully_and_start_at(30).expect("start over");
    assert_eq!((follower.log_start_offset(), follower.log_end_offset()), (30, 30));
    assert_eq!(follower.high_watermark(), 30);
    assert_eq!(follower.latest_epoch(), None, "the epochs went with the batches");
    assert_eq!(follower.producer_entry(5), None, "so did the producers");
    assert!(follower.durable_end() >= 30);
    follower.append_replicated(&fetch(&leader, 30)).expect("the leader's batches from its start on");
    assert_eq!(follower.log_end_offset(), 32);
    assert_eq!(follower.producer_entry(7), leader.producer_entry(7));
    assert_eq!(follower.end_offset_for_epoch(LeaderEpoch(2)), leader.end_offset_for_epoch(LeaderEpoch(2)));
    lm.shutdown().expect("shutdown");
    fm.shutdown().expect("shutdown");
}
