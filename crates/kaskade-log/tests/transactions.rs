//! Transactions at the log level: markers end a producer's transaction,
//! aborts are indexed in `.txnindex`, the last stable offset waits for open
//! transactions, and all of it survives clean and unclean reopening and
//! truncation.

mod common;

use common::{manual_clock, open, tp};
use kaskade_log::batch::{self, build};
use kaskade_log::producer_state::OpenTxn;
use kaskade_log::txn::{AbortedTxn, Marker};
use kaskade_log::{Log, LogConfig, LogError};

const TS: i64 = 1_700_000_000_000;

/// A transactional producer's batch of `n` records.
fn txn_batch(pid: i64, epoch: i16, seq: i32, n: usize) -> Vec<u8> {
    let mut b = build::filled(n, 20, TS, pid as u8);
    build::set_attributes(&mut b, batch::ATTR_TRANSACTIONAL);
    build::set_producer(&mut b, pid, epoch, seq);
    b
}

fn idem(pid: i64, epoch: i16, seq: i32, n: usize) -> Vec<u8> {
    let mut b = build::filled(n, 20, TS, 7);
    build::set_producer(&mut b, pid, epoch, seq);
    b
}

fn small_segments() -> LogConfig {
    LogConfig { segment_bytes: 600, index_interval_bytes: 100, ..LogConfig::default() }
}

fn durable(log: &Log) {
    log.flush_blocking().expect("flush");
}

/// Two producers: pid 1 aborts [0, 4], pid 2 commits, pid 1 opens a second
/// transaction left open at the end.
fn scenario(log: &Log) -> (AbortedTxn, i64) {
    assert_eq!(log.append_client(txn_batch(1, 0, 0, 2), 0).unwrap().first_offset, 0);
    assert_eq!(log.append_client(txn_batch(2, 0, 0, 1), 0).unwrap().first_offset, 2);
    assert_eq!(log.append_client(txn_batch(1, 0, 2, 2), 0).unwrap().first_offset, 3);
    durable(log);
    assert_eq!(log.last_stable_offset(), 0, "pid 1's open transaction holds the LSO");
    let abort = log.append_marker(1, 0, 0, Marker::Abort, 0).expect("abort marker");
    assert_eq!(abort.first_offset, 5);
    assert!(abort.header.is_control() && abort.header.is_transactional());
    // An abort counts once durable (the HW passed it). A background flush
    // may make it durable at any moment, so the LSO is read before the HW:
    // an LSO past pid 1's transaction implies an HW past the marker.
    let lso = log.last_stable_offset();
    let hw = log.high_watermark();
    assert!(
        lso == 0 || (lso == 2 && hw > abort.first_offset),
        "an abort not yet durable keeps its transaction unstable (lso {lso}, hw {hw})"
    );
    durable(log);
    assert_eq!(log.last_stable_offset(), 2, "pid 2's transaction now holds it");
    let commit = log.append_marker(2, 0, 0, Marker::Commit, 0).expect("commit marker");
    let (lso, hw) = (log.last_stable_offset(), log.high_watermark());
    assert!(lso == 2 || (lso == 7 && hw > commit.first_offset), "lso {lso}, hw {hw}");
    durable(log);
    assert_eq!(log.last_stable_offset(), 7);
    // A plain idempotent batch, then a second transaction of pid 1.
    log.append_client(idem(3, 0, 0, 1), 0).unwrap();
    let open_at = log.append_client(txn_batch(1, 0, 4, 1), 0).unwrap().first_offset;
    durable(log);
    assert_eq!(log.last_stable_offset(), open_at);
    let aborted = AbortedTxn { producer_id: 1, first_offset: 0, last_offset: 5, last_stable_offset: 2 };
    (aborted, open_at)
}

#[test]
fn markers_end_transactions_and_aborts_are_indexed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mgr, _) = open(dir.path(), small_segments(), manual_clock());
    let log = common::follow_local(mgr.get_or_create(&tp(), small_segments()).expect("log"));
    let (aborted, open_at) = scenario(&log);
    assert_eq!(log.aborted_transactions(0, log.last_stable_offset()), vec![aborted]);
    assert_eq!(log.aborted_transactions(6, 100), vec![], "ended before the read");
    assert_eq!(log.aborted_transactions(0, 0), vec![], "begins at the upper bound");
    assert_eq!(log.open_transactions(), vec![OpenTxn { producer_id: 1, first_offset: open_at }]);
    // A producer with an open transaction may not write outside it.
    assert!(matches!(log.append_client(idem(1, 0, 5, 1), 0).unwrap_err(), LogError::InvalidTxnState(_)));
    // A marker from an older epoch than the producer's is refused.
    log.append_marker(1, 1, 0, Marker::Abort, 0).expect("fencing abort with a bumped epoch");
    assert!(matches!(log.append_marker(1, 0, 0, Marker::Commit, 0).unwrap_err(), LogError::InvalidProducerEpoch(_)));
    assert!(
        matches!(log.append_client(txn_batch(1, 0, 5, 1), 0).unwrap_err(), LogError::InvalidProducerEpoch(_)),
        "the zombie is fenced"
    );
    durable(&log);
    assert_eq!(log.last_stable_offset(), log.log_end_offset());
    assert_eq!(log.aborted_transactions(0, 100).len(), 2);
    // Clients never write markers themselves.
    let forged = kaskade_log::txn::build_marker(9, 0, 0, Marker::Commit, TS);
    assert!(matches!(log.append_client(&forged, 0).unwrap_err(), LogError::InvalidRecord(_)));
    mgr.shutdown().expect("shutdown");
}

/// Kafka's `checkCoordinatorEpoch`: a marker whose coordinator epoch is
/// older than the last one the producer's markers carried comes from a
/// deposed transaction coordinator and is refused (WriteTxnMarkers then
/// answers TRANSACTION_COORDINATOR_FENCED); the epoch survives a reopen.
#[test]
fn a_marker_of_a_deposed_coordinator_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mgr, _) = open(dir.path(), small_segments(), manual_clock());
    let log = common::follow_local(mgr.get_or_create(&tp(), small_segments()).expect("log"));
    log.append_client(txn_batch(1, 0, 0, 2), 0).expect("a transaction");
    log.append_marker(1, 0, 5, Marker::Commit, 0).expect("ended by coordinator epoch 5");
    log.append_client(txn_batch(1, 0, 2, 2), 0).expect("the next transaction");
    let end = log.log_end_offset();
    match log.append_marker(1, 0, 4, Marker::Abort, 0) {
        Err(LogError::CoordinatorFenced(m)) => assert!(m.contains('4') && m.contains('5'), "{m}"),
        other => panic!("a deposed coordinator's marker was taken: {other:?}"),
    }
    assert_eq!(log.log_end_offset(), end, "nothing appended");
    log.append_marker(1, 0, 5, Marker::Commit, 0).expect("the same coordinator epoch");
    durable(&log);
    mgr.shutdown().expect("shutdown");
    let (mgr, _) = open(dir.path(), small_segments(), manual_clock());
    let log = common::follow_local(mgr.get(&tp()).expect("log"));
    log.append_client(txn_batch(1, 0, 4, 1), 0).expect("a third transaction");
    assert!(matches!(log.append_marker(1, 0, 3, Marker::Commit, 0), Err(LogError::CoordinatorFenced(_))));
    log.append_marker(1, 0, 6, Marker::Commit, 0).expect("a newer coordinator");
    mgr.shutdown().expect("shutdown");
}

#[test]
fn transactions_survive_clean_and_unclean_reopen() {
    for clean in [true, false] {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = manual_clock();
        let (mgr, _) = open(dir.path(), small_segments(), clock.clone());
        let log = common::follow_local(mgr.get_or_create(&tp(), small_segments()).expect("log"));
        let (aborted, open_at) = scenario(&log);
        assert!(log.segment_count() > 1, "the scenario spans segments");
        let end = log.log_end_offset();
        if clean {
            mgr.shutdown().expect("shutdown");
        } else {
            // A crash: no close, no final snapshot, no clean-shutdown
            // marker; the open transaction comes back from the roll
            // snapshot plus the replay after it.
            durable(&log);
            drop(log);
            drop(mgr);
        }
        let (mgr, report) = open(dir.path(), small_segments(), clock);
        let log = common::follow_local(mgr.get(&tp()).expect("log"));
        assert_eq!(log.log_end_offset(), end, "{report:?}");
        let found = log.aborted_transactions(0, end);
        assert_eq!(found.len(), 1, "clean={clean}: {found:?}");
        assert_eq!(found, vec![aborted], "clean={clean}: the LSO the abort recorded too");
        assert_eq!(log.open_transactions(), vec![OpenTxn { producer_id: 1, first_offset: open_at }], "clean={clean}");
        assert_eq!(log.last_stable_offset(), open_at, "clean={clean}");
        // The open transaction can still be ended after the restart.
        log.append_marker(1, 0, 0, Marker::Commit, 0).expect("commit after reopen");
        durable(&log);
        assert_eq!(log.last_stable_offset(), log.log_end_offset());
        mgr.shutdown().expect("shutdown");
    }
}

#[test]
fn truncation_forgets_aborts_past_the_new_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mgr, _) = open(dir.path(), small_segments(), manual_clock());
    let log = common::follow_local(mgr.get_or_create(&tp(), small_segments()).expect("log"));
    let (aborted, _) = scenario(&log);
    log.truncate_to(aborted.last_offset).expect("truncate");
    assert_eq!(log.aborted_transactions(0, 100), vec![]);
    // The transaction is open again: its marker is gone.
    assert_eq!(log.open_transactions().first(), Some(&OpenTxn { producer_id: 1, first_offset: 0 }));
    assert_eq!(log.last_stable_offset(), 0);
    log.append_marker(1, 0, 0, Marker::Abort, 0).expect("abort again");
    assert_eq!(log.aborted_transactions(0, 100).len(), 1);
    mgr.shutdown().expect("shutdown");
    let (mgr, _) = open(dir.path(), small_segments(), manual_clock());
    assert_eq!(mgr.get(&tp()).expect("log").aborted_transactions(0, 100).len(), 1);
    mgr.shutdown().expect("shutdown");
}

#[test]
fn a_lost_index_append_is_rebuilt_from_the_marker_after_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let (mgr, _) = open(dir.path(), LogConfig::default(), clock.clone());
    let log = common::follow_local(mgr.get_or_create(&tp(), LogConfig::default()).expect("log"));
    log.append_client(txn_batch(4, 0, 0, 3), 0).unwrap();
    log.append_client(build::filled(2, 20, TS, 1), 0).unwrap();
    let marker = log.append_marker(4, 0, 0, Marker::Abort, 0).unwrap().first_offset;
    durable(&log);
    drop(log);
    drop(mgr);
    // The index append never reached the disk; the marker did.
    let path = kaskade_log::txn::txn_index_path(&dir.path().join(tp().dir_name()), 0);
    std::fs::remove_file(&path).expect("the abort was indexed");
    let (mgr, _) = open(dir.path(), LogConfig::default(), clock);
    let log = mgr.get(&tp()).expect("log");
    let found = log.aborted_transactions(0, 100);
    assert_eq!(found.len(), 1);
    // Rebuilt with Kafka's LSO: no other transaction open, the marker + 1.
    assert_eq!(
        found,
        vec![AbortedTxn { producer_id: 4, first_offset: 0, last_offset: marker, last_stable_offset: marker + 1 }]
    );
    assert!(path.exists(), "the index file was rewritten");
    mgr.shutdown().expect("shutdown");
}

#[test]
fn the_last_stable_offset_never_falls_below_the_log_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mgr, _) = open(dir.path(), small_segments(), manual_clock());
    let log = common::follow_local(mgr.get_or_create(&tp(), small_segments()).expect("log"));
    log.append_client(txn_batch(1, 0, 0, 2), 0).unwrap();
    for i in 0..6 {
        log.append_client(build::filled(2, 20, TS, i), 0).unwrap();
    }
    durable(&log);
    assert_eq!(log.last_stable_offset(), 0);
    // DeleteRecords past the open transaction's start.
    log.advance_log_start(5).expect("delete records");
    assert_eq!(log.last_stable_offset(), 5, "clamped to the log start");
    mgr.shutdown().expect("shutdown");
}

/// Kafka's `.txnindex` LSO (`ProducerStateManager.lastStableOffset`): the
/// first offset of the oldest transaction of another producer still open
/// when the abort marker is appended, else the marker + 1, whatever the
/// high watermark (nothing here is flushed before the markers); recovery
/// after a crash that lost the index rebuilds the same entries.
#[test]
fn an_abort_records_the_oldest_other_open_transaction_as_its_lso() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mgr, _) = open(dir.path(), LogConfig::default(), manual_clock());
    let log = common::follow_local(mgr.get_or_create(&tp(), LogConfig::default()).expect("log"));
    let first = |b: Vec<u8>| log.append_client(b, 0).expect("append").first_offset;
    let older = first(txn_batch(1, 0, 0, 2)); // 0..=1, open across pid 2's abort
    let aborted = first(txn_batch(2, 0, 0, 2)); // 2..=3
    let marker_2 = log.append_marker(2, 0, 0, Marker::Abort, 0).expect("abort").first_offset; // 4
    let younger = first(txn_batch(3, 0, 0, 1)); // 5, opened after pid 1's
    let marker_1 = log.append_marker(1, 0, 0, Marker::Abort, 0).expect("abort").first_offset; // 6
    let marker_3 = log.append_marker(3, 0, 0, Marker::Abort, 0).expect("abort").first_offset; // 7
    let expected = vec![
        AbortedTxn { producer_id: 2, first_offset: aborted, last_offset: marker_2, last_stable_offset: older },
        AbortedTxn { producer_id: 1, first_offset: older, last_offset: marker_1, last_stable_offset: younger },
        AbortedTxn { producer_id: 3, first_offset: younger, last_offset: marker_3, last_stable_offset: marker_3 + 1 },
    ];
    assert_eq!(log.aborted_transactions(0, 100), expected);
    durable(&log);
    let path = kaskade_log::txn::txn_index_path(&dir.path().join(tp().dir_name()), 0);
    let (on_disk, cut) = kaskade_log::txn::read_txn_index(&path).expect("read the index");
    assert_eq!((on_disk, cut), (expected.clone(), false), "the file holds Kafka's entries");
    // A crash (no clean shutdown: the log is replayed) that lost the index.
    drop(log);
    drop(mgr);
    std::fs::remove_file(&path).expect("remove the index");
    let (mgr, _) = open(dir.path(), LogConfig::default(), manual_clock());
    assert_eq!(mgr.get(&tp()).expect("log").aborted_transactions(0, 100), expected, "rebuilt from the markers");
    mgr.shutdown().expect("shutdown");
}
