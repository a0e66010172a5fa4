//! The transaction service over fake seams: ids are served only from the
//! `__transaction_state` partitions loaded here, per partition.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;

use futures::future::BoxFuture;
use kafka_protocol::error::ResponseError;
use kaskade_types::{ManualClock, ProducerId, TopicPartition};
use parking_lot::Mutex;

use super::{TxnSeams, TxnService};
use crate::config::BrokerConfig;
use crate::coordinator::fake::FakePartitions;
use crate::coordinator::InternalPartitions;
use crate::coordinator::{CoordinatorError, MarkerError, MarkerWriter, MarkersWritten, ProducerIdSource, TxnMarker};
use crate::txn::records::partition_for;
use crate::txn::state::TxnState;

const PARTITIONS: i32 = 4;

/// Markers that are durable at once, except those of `.1` (refused with
/// the error, so many times); what was written.
#[derive(Default)]
struct Markers(Mutex<Vec<(TopicPartition, TxnMarker)>>, Mutex<HashMap<TopicPartition, (MarkerError, usize)>>);

impl MarkerWriter for Markers {
    fn write(&self, partitions: &[TopicPartition], marker: TxnMarker) -> MarkersWritten {
        let mut failures = self.1.lock();
        let outcomes = partitions
            .iter()
            .map(|tp| {
                self.0.lock().push((tp.clone(), marker));
                match failures.get_mut(tp) {
                    Some((e, times)) if *times > 0 => {
                        *times -= 1;
                        Err(e.clone())
                    }
                    _ => Ok(()),
                }
            })
            .collect();
        Box::pin(async move { outcomes })
    }
}

/// Ids 1000, 1001, ...
#[derive(Default)]
struct Ids(AtomicI64, AtomicUsize);

impl ProducerIdSource for Ids {
    fn next_id(&self) -> BoxFuture<'_, Result<ProducerId, CoordinatorError>> {
        self.1.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { Ok(ProducerId(1000 + self.0.fetch_add(1, Ordering::SeqCst))) })
    }
}

fn service(fake: &Arc<FakePartitions>, markers: &Arc<Markers>) -> TxnService {
    let seams = TxnSeams {
        state_log: fake.clone(),
        markers: markers.clone(),
        producer_ids: Arc::new(Ids::default()),
        clock: Arc::new(ManualClock::new(1_700_000_000_000)),
        stopping: tokio::sync::watch::channel(false).1,
    };
    TxnService::from_config(&BrokerConfig::default(), seams)
}

fn two_ids() -> (String, String) {
    let a = "txn-0".to_string();
    let pa = partition_for(&a, PARTITIONS);
    let b = (1..100).map(|i| format!("txn-{i}")).find(|id| partition_for(id, PARTITIONS) != pa).expect("other");
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_follow_the_partitions_led_here() {
    let fake = Arc::new(FakePartitions::new(PARTITIONS));
    let markers = Arc::new(Markers::default());
    let s = service(&fake, &markers);
    let (a, b) = two_ids();
    let pa = partition_for(&a, PARTITIONS);
    let producer_a = s.init_producer_id(&a, 60_000, None).await.expect("init a");
    s.init_producer_id(&b, 60_000, None).await.expect("init b");
    s.add_partitions(&a, producer_a, &[TopicPartition::new("t", 0)]).await.expect("add");

    s.on_resign(pa);
    assert_eq!(s.describe(&a).await, Err(ResponseError::NotCoordinator));
    assert_eq!(s.init_producer_id(&a, 60_000, None).await, Err(ResponseError::NotCoordinator));
    assert_eq!(s.end_txn(&a, producer_a, true).await, Err(ResponseError::NotCoordinator));
    assert!(s.describe(&b).await.expect("b served").is_some(), "other partitions untouched");
    assert!(s.list().await.expect("list").iter().all(|m| m.transactional_id != a), "a is gone");

    fake.hold_reads();
    let loading = tokio::spawn({
        let s = s.clone();
        async move { s.on_become_leader(pa, 0).await }
    });
    FakePartitions::reached(&fake.reads, PARTITIONS as usize + 1).await;
    assert_eq!(s.describe(&a).await, Err(ResponseError::CoordinatorLoadInProgress));
    assert_eq!(s.list().await.map(|_| ()), Err(ResponseError::CoordinatorLoadInProgress));
    fake.release_reads();
    assert_eq!(loading.await.expect("task"), Ok(()));
    let meta = s.describe(&a).await.expect("served").expect("reloaded");
    assert_eq!(meta.producer(), producer_a);
    assert!(meta.partitions.contains(&TopicPartition::new("t", 0)), "its open transaction came back");
    // It ends as before: a commit marker to its partition.
    s.end_txn(&a, producer_a, true).await.expect("end");
    let written = markers.0.lock().clone();
    assert_eq!(written.len(), 1);
    assert_eq!((written[0].0.partition, written[0].1.producer_id), (0, producer_a.id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_load_is_retried() {
    let fake = Arc::new(FakePartitions::new(PARTITIONS));
    let markers = Arc::new(Markers::default());
    let s = service(&fake, &markers);
    let (a, _) = two_ids();
    let pa = partition_for(&a, PARTITIONS);
    let producer = s.init_producer_id(&a, 60_000, None).await.expect("init");
    s.on_resign(pa);
    fake.failing_reads.lock().push(pa);
    assert!(matches!(s.on_become_leader(pa, 0).await, Err(CoordinatorError::Unavailable(_))));
    assert_eq!(s.describe(&a).await, Err(ResponseError::CoordinatorLoadInProgress));
    fake.failing_reads.lock().clear();
    let failed = fake.failed_reads.load(Ordering::SeqCst);
    // The background retry reads it again (after its pause).
    FakePartitions::reached(&fake.reads, fake.reads.load(Ordering::SeqCst) + 1).await;
    let loaded = async {
        while s.describe(&a).await == Err(ResponseError::CoordinatorLoadInProgress) {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), loaded).await.expect("loaded after the retry");
    assert_eq!(fake.failed_reads.load(Ordering::SeqCst), failed, "the retry succeeded");
    let meta = s.describe(&a).await.expect("served").expect("loaded");
    assert_eq!(meta.producer(), producer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metadata_change_drops_the_partitions_led_elsewhere_and_loads_the_newly_led() {
    let fake = Arc::new(FakePartitions::new(PARTITIONS));
    let markers = Arc::new(Markers::default());
    let s = service(&fake, &markers);
    let (a, b) = two_ids();
    let pa = partition_for(&a, PARTITIONS);
    let producer = s.init_producer_id(&a, 60_000, None).await.expect("init a");
    s.init_producer_id(&b, 60_000, None).await.expect("init b");

    *fake.led.lock() = Some((0..PARTITIONS).filter(|p| *p != pa).collect());
    s.on_metadata_change().await;
    assert_eq!(s.describe(&a).await, Err(ResponseError::NotCoordinator));
    assert!(s.describe(&b).await.expect("b served").is_some(), "still led here");

    // Led here again: it loads in the background.
    *fake.led.lock() = None;
    s.on_metadata_change().await;
    let loaded = async {
        loop {
            match s.describe(&a).await {
                Err(ResponseError::NotCoordinator | ResponseError::CoordinatorLoadInProgress) => {
                    tokio::task::yield_now().await
                }
                other => return other,
            }
        }
    };
    let meta = tokio::time::timeout(std::time::Duration::from_secs(10), loaded).await.expect("loaded");
    assert_eq!(meta.expect("served").expect("reloaded").producer(), producer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markers_are_written_again_only_where_they_failed_and_dropped_where_not_needed() {
    let fake = Arc::new(FakePartitions::new(PARTITIONS));
    let markers = Arc::new(Markers::default());
    let s = service(&fake, &markers);
    let (a, _) = two_ids();
    let producer = s.init_producer_id(&a, 60_000, None).await.expect("init");
    let tps: Vec<_> = (0..3).map(|p| TopicPartition::new("t", p)).collect();
    s.add_partitions(&a, producer, &tps).await.expect("add");
    // t-1's leader moved twice; t-2 was deleted.
    let not_leader = MarkerError::Failed(ResponseError::NotLeaderOrFollower, "moved".into());
    markers.1.lock().insert(tps[1].clone(), (not_leader, 2));
    markers.1.lock().insert(tps[2].clone(), (MarkerError::UnknownPartition, 1));
    s.end_txn(&a, producer, true).await.expect("end");
    let written: Vec<i32> = markers.0.lock().iter().map(|(tp, _)| tp.partition).collect();
    assert_eq!(written, vec![0, 1, 2, 1, 1], "the retries write t-1 only");
    let meta = s.describe(&a).await.expect("served").expect("known");
    assert_eq!(meta.state, TxnState::CompleteCommit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_coordinator_stops_writing_markers() {
    let fake = Arc::new(FakePartitions::new(PARTITIONS));
    let markers = Arc::new(Markers::default());
    let s = service(&fake, &markers);
    let (a, _) = two_ids();
    let producer = s.init_producer_id(&a, 60_000, None).await.expect("init");
    let tps: Vec<_> = (0..2).map(|p| TopicPartition::new("t", p)).collect();
    s.add_partitions(&a, producer, &tps).await.expect("add");
    markers.1.lock().insert(tps[0].clone(), (MarkerError::CoordinatorFenced("newer".into()), usize::MAX));
    // Answered without waiting out the markers' bound: the task stopped.
    tokio::time::timeout(std::time::Duration::from_secs(5), s.end_txn(&a, producer, true))
        .await
        .expect("not retried until the bound")
        .expect("end");
    assert_eq!(markers.0.lock().len(), 2, "one attempt");
    let meta = s.describe(&a).await.expect("served").expect("known");
    assert_eq!(meta.state, TxnState::PrepareCommit, "left to the newer coordinator");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markers_carry_the_leader_epoch_of_the_partition_when_it_was_loaded() {
    let fake = Arc::new(FakePartitions::new(PARTITIONS));
    fake.epoch.store(3, Ordering::SeqCst);
    let markers = Arc::new(Markers::default());
    let s = service(&fake, &markers);
    let (a, _) = two_ids();
    let producer = s.init_producer_id(&a, 60_000, None).await.expect("init");
    s.add_partitions(&a, producer, &[TopicPartition::new("t", 0)]).await.expect("add");
    s.end_txn(&a, producer, true).await.expect("end");
    // Led again at a newer epoch (elsewhere meanwhile): its markers say so.
    let pa = partition_for(&a, PARTITIONS);
    s.on_resign(pa);
    fake.epoch.store(8, Ordering::SeqCst);
    s.on_become_leader(pa, 8).await.expect("loaded");
    s.add_partitions(&a, producer, &[TopicPartition::new("t", 1)]).await.expect("add");
    s.end_txn(&a, producer, false).await.expect("end");
    let epochs: Vec<i32> = markers.0.lock().iter().map(|(_, m)| m.coordinator_epoch).collect();
    assert_eq!(epochs, vec![3, 8]);
}

/// The coordinator loses a `__transaction_state` partition and gets it back
/// without ever seeing an image where it does not lead it (seen in the
/// fault test: the old state, an older producer epoch, was served again and
/// that epoch handed out twice): a newer leader epoch makes it load again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_led_again_under_a_newer_epoch_is_loaded_again() {
    let fake = Arc::new(FakePartitions::new(PARTITIONS));
    let markers = Arc::new(Markers::default());
    let s = service(&fake, &markers);
    let (a, _) = two_ids();
    let pa = partition_for(&a, PARTITIONS);
    let producer = s.init_producer_id(&a, 60_000, None).await.expect("init");
    // Meanwhile another coordinator led it and bumped the epoch to 5.
    let mut newer = s.describe(&a).await.expect("served").expect("known");
    newer.producer_epoch = kaskade_types::ProducerEpoch(5);
    let written = fake.append(pa, None, &[(super::records::key(&a), Some(super::records::value(&newer)))], None, 0);
    written.expect("append").await.expect("durable");
    fake.epoch.store(7, Ordering::SeqCst);
    s.on_metadata_change().await;
    let reloaded = async {
        loop {
            match s.describe(&a).await {
                Ok(Some(m)) if m.producer_epoch.0 == 5 => return,
                _ => tokio::time::sleep(std::time::Duration::from_millis(1)).await,
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), reloaded)
        .await
        .expect("the newer state is loaded (still the one loaded under epoch 0?)");
    assert_eq!(
        s.init_producer_id(&a, 60_000, Some(producer)).await,
        Err(ResponseError::ProducerFenced),
        "epoch 0 is stale"
    );
}

/// Waits until `id` is served (neither NOT_COORDINATOR nor loading); its
/// producer epoch.
async fn served_epoch(s: &TxnService, id: &str) -> i16 {
    let served = async {
        loop {
            match s.describe(id).await {
                Err(ResponseError::NotCoordinator | ResponseError::CoordinatorLoadInProgress) => {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await
                }
                other => return other.expect("served").expect("known").producer_epoch.0,
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), served).await.expect("served in time")
}

/// Another coordinator's InitProducerId on `id`'s partition: the id's
/// state with producer epoch `epoch`, appended as that node's leadership
/// would (no epoch of this coordinator's).
async fn written_elsewhere(fake: &FakePartitions, s: &TxnService, id: &str, epoch: i16) {
    let mut newer = s.describe(id).await.expect("served").expect("known");
    newer.producer_epoch = kaskade_types::ProducerEpoch(epoch);
    let pa = partition_for(id, PARTITIONS);
    let record = [(super::records::key(id), Some(super::records::value(&newer)))];
    fake.append(pa, None, &record, None, 0).expect("append").await.expect("durable");
}

/// Issue 14 (the fault run's stall): the coordinator is loading a
/// partition it leads in epoch 2 when it loses it and gets it back in
/// epoch 4, without an image in between that said so; meanwhile another
/// coordinator bumped the producer epoch. The load that was running read
/// the log before that write: it is discarded and the partition loaded
/// again, so the newest durable state is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_led_again_while_it_loads_is_loaded_again() {
    let fake = Arc::new(FakePartitions::new(PARTITIONS));
    let markers = Arc::new(Markers::default());
    let s = service(&fake, &markers);
    let (a, _) = two_ids();
    let pa = partition_for(&a, PARTITIONS);
    s.init_producer_id(&a, 60_000, None).await.expect("init");
    assert_eq!(served_epoch(&s, &a).await, 0);
    let newer_state = {
        let mut m = s.describe(&a).await.expect("served").expect("known");
        m.producer_epoch = kaskade_types::ProducerEpoch(5);
        m
    };
    *fake.led.lock() = Some((0..PARTITIONS).filter(|p| *p != pa).collect());
    s.on_metadata_change().await;
    assert_eq!(s.describe(&a).await, Err(ResponseError::NotCoordinator));

    // Led here again in epoch 2: the load reads the log and is held (so
    // are the others', loaded again under epoch 2).
    fake.hold_reads();
    let reads = fake.reads.load(Ordering::SeqCst);
    fake.epoch.store(2, Ordering::SeqCst);
    *fake.led.lock() = None;
    s.on_metadata_change().await;
    FakePartitions::reached(&fake.reads, reads + PARTITIONS as usize).await;
    assert_eq!(s.describe(&a).await, Err(ResponseError::CoordinatorLoadInProgress));

    // Led by another node in epoch 3 (which bumped the producer epoch to
    // 5), and here again in epoch 4: the image says only the last.
    let record = [(super::records::key(&a), Some(super::records::value(&newer_state)))];
    fake.append(pa, None, &record, None, 0).expect("append").await.expect("durable");
    fake.epoch.store(4, Ordering::SeqCst);
    s.on_metadata_change().await;
    fake.release_reads();
    assert_eq!(served_epoch(&s, &a).await, 5, "the state read before epoch 3's write was served");
    // Its markers carry the epoch it was loaded under.
    let producer = s.init_producer_id(&a, 60_000, None).await.expect("init");
    assert_eq!(producer.epoch.0, 6, "epoch 5 is handed out once");
    s.add_partitions(&a, producer, &[TopicPartition::new("t", 0)]).await.expect("add");
    s.end_txn(&a, producer, true).await.expect("end");
    let epochs: Vec<i32> = markers.0.lock().iter().map(|(_, m)| m.coordinator_epoch).collect();
    assert_eq!(epochs, vec![4]);
}

/// Issue 14: between losing a partition (and getting it back) and the
/// image change reaching it, the coordinator still holds the state it
/// loaded before. It must write nothing from it: each append carries the
/// epoch it loaded under, which the partition, led in another epoch now,
/// refuses (NOT_COORDINATOR); the next image loads it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_writes_nothing_from_a_state_loaded_under_an_older_epoch() {
    let fake = Arc::new(FakePartitions::new(PARTITIONS));
    let markers = Arc::new(Markers::default());
    let s = service(&fake, &markers);
    let (a, b) = two_ids();
    let pa = partition_for(&a, PARTITIONS);
    let producer = s.init_producer_id(&a, 60_000, None).await.expect("init");
    s.init_producer_id(&b, 60_000, None).await.expect("init b");
    written_elsewhere(&fake, &s, &a, 5).await;
    // Led in epoch 2 now; the image change has not reached the service.
    fake.epoch.store(2, Ordering::SeqCst);
    let before = fake.len(pa);
    assert_eq!(
        s.init_producer_id(&a, 60_000, Some(producer)).await,
        Err(ResponseError::NotCoordinator),
        "epoch 1 handed out from the old state"
    );
    assert_eq!(
        s.add_partitions(&a, producer, &[TopicPartition::new("t", 0)]).await,
        Err(ResponseError::NotCoordinator)
    );
    assert_eq!(fake.len(pa), before, "nothing written from the old state");
    s.on_metadata_change().await;
    assert_eq!(served_epoch(&s, &a).await, 5);
    assert_eq!(s.init_producer_id(&a, 60_000, None).await.expect("init").epoch.0, 6);
    assert_eq!(served_epoch(&s, &b).await, 0, "b, reloaded under epoch 2 too, is unchanged");
}

/// A decision whose `__transaction_state` append fails (the ISR never held
/// it) is undone, as Kafka drops a pending transition whose append failed:
/// the id answers from the state the log holds, so a retry gets the epoch
/// the failed attempt would have, and nothing is answered from a state no
/// replica may hold. One event each: InitProducerId, AddPartitionsToTxn,
/// EndTxn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_whose_append_failed_is_undone() {
    let fake = Arc::new(FakePartitions::new(PARTITIONS));
    let markers = Arc::new(Markers::default());
    let s = service(&fake, &markers);
    let (a, _) = two_ids();
    let producer = s.init_producer_id(&a, 60_000, None).await.expect("init");
    let settled = s.describe(&a).await.expect("served").expect("known");
    let not_replicated = CoordinatorError::Unavailable("the ISR never held it".into());

    *fake.failing_appends.lock() = Some(not_replicated.clone());
    assert_eq!(s.init_producer_id(&a, 60_000, Some(producer)).await, Err(ResponseError::CoordinatorNotAvailable));
    assert_eq!(s.describe(&a).await.expect("served"), Some(settled), "the epoch bump is undone");
    *fake.failing_appends.lock() = None;
    let bumped = s.init_producer_id(&a, 60_000, Some(producer)).await.expect("init");
    assert_eq!(bumped.epoch.0, producer.epoch.0 + 1, "the epoch the failed attempt would have had");
    let settled = s.describe(&a).await.expect("served").expect("known");

    *fake.failing_appends.lock() = Some(not_replicated.clone());
    let tp = TopicPartition::new("t", 0);
    assert_eq!(
        s.add_partitions(&a, bumped, std::slice::from_ref(&tp)).await,
        Err(ResponseError::CoordinatorNotAvailable)
    );
    assert_eq!(s.describe(&a).await.expect("served"), Some(settled), "the partition is not added");
    *fake.failing_appends.lock() = None;
    s.add_partitions(&a, bumped, std::slice::from_ref(&tp)).await.expect("add");
    let ongoing = s.describe(&a).await.expect("served").expect("known");
    assert_eq!(ongoing.state, TxnState::Ongoing);

    *fake.failing_appends.lock() = Some(not_replicated);
    assert_eq!(s.end_txn(&a, bumped, true).await, Err(ResponseError::CoordinatorNotAvailable));
    assert_eq!(s.describe(&a).await.expect("served"), Some(ongoing), "still ongoing: no commit decided");
    assert!(markers.0.lock().is_empty(), "no marker for a commit that was not written");
    *fake.failing_appends.lock() = None;
    s.end_txn(&a, bumped, true).await.expect("end");
    assert_eq!(markers.0.lock().len(), 1, "the commit's marker");
    assert_eq!(s.describe(&a).await.expect("served").expect("known").state, TxnState::CompleteCommit);
}

/// Polls `cond` until it holds; panics after 20 s.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

/// While an append for an id is in flight (the ISR has not caught up),
/// every other request for it answers CONCURRENT_TRANSACTIONS, as Kafka's
/// pending state; the request waiting on it answers once it is durable. A
/// request dropped mid-wait (its client went away) leaves no id stuck.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_for_an_id_whose_append_is_in_flight_answer_concurrent_transactions() {
    let fake = Arc::new(FakePartitions::new(PARTITIONS));
    let markers = Arc::new(Markers::default());
    let s = service(&fake, &markers);
    let (a, _) = two_ids();
    let producer = s.init_producer_id(&a, 60_000, None).await.expect("init");
    let tp = TopicPartition::new("t", 0);

    *fake.holding_appends.lock() = true;
    let adding = tokio::spawn({
        let (s, a, tp) = (s.clone(), a.clone(), tp.clone());
        async move { s.add_partitions(&a, producer, &[tp]).await }
    });
    until("the add's append is held", || fake.held() == 1).await;
    let busy = Err(ResponseError::ConcurrentTransactions);
    assert_eq!(s.init_producer_id(&a, 60_000, Some(producer)).await.map(|_| ()), busy);
    assert_eq!(s.init_producer_id(&a, 60_000, None).await.map(|_| ()), busy);
    assert_eq!(s.add_partitions(&a, producer, &[TopicPartition::new("t", 1)]).await, busy);
    assert_eq!(s.end_txn(&a, producer, true).await, busy);
    assert_eq!(fake.held(), 1, "the refusals appended nothing");
    fake.release_appends(Ok(()));
    assert_eq!(adding.await.expect("task"), Ok(()));
    assert_eq!(s.describe(&a).await.expect("served").expect("known").state, TxnState::Ongoing);

    // A request whose client went away while its append was held.
    let ending = tokio::spawn({
        let (s, a) = (s.clone(), a.clone());
        async move { s.end_txn(&a, producer, false).await }
    });
    until("the abort's append is held", || fake.held() == 1).await;
    ending.abort();
    assert!(ending.await.is_err(), "dropped");
    assert_eq!(s.end_txn(&a, producer, false).await, busy);
    *fake.holding_appends.lock() = false;
    fake.release_appends(Ok(()));
    until("the abort completes", || {
        s.0.engine.lock().get(&a).is_some_and(|m| m.state == TxnState::CompleteAbort)
            && !s.0.engine.lock().in_flight(&a)
    })
    .await;
    s.add_partitions(&a, producer, std::slice::from_ref(&tp)).await.expect("the id takes requests again");
}

/// A Complete whose append fails is appended again (not the markers,
/// which are written); meanwhile the id answers CONCURRENT_TRANSACTIONS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_whose_append_failed_is_appended_again() {
    let fake = Arc::new(FakePartitions::new(PARTITIONS));
    let markers = Arc::new(Markers::default());
    let s = service(&fake, &markers);
    let (a, _) = two_ids();
    let producer = s.init_producer_id(&a, 60_000, None).await.expect("init");
    let tp = TopicPartition::new("t", 0);
    s.add_partitions(&a, producer, std::slice::from_ref(&tp)).await.expect("add");
    *fake.holding_appends.lock() = true;
    let ending = tokio::spawn({
        let (s, a) = (s.clone(), a.clone());
        async move { s.end_txn(&a, producer, true).await }
    });
    until("Prepare is held", || fake.held() == 1).await;
    fake.release_appends(Ok(()));
    until("Complete is held", || fake.held() == 1).await;
    assert_eq!(markers.0.lock().len(), 1, "the marker");
    assert_eq!(
        s.add_partitions(&a, producer, std::slice::from_ref(&tp)).await,
        Err(ResponseError::ConcurrentTransactions)
    );
    fake.release_appends(Err(CoordinatorError::Unavailable("the ISR never held it".into())));
    until("Complete is appended again", || fake.held() == 1).await;
    assert_eq!(markers.0.lock().len(), 1, "the marker is not written again");
    fake.release_appends(Ok(()));
    assert_eq!(ending.await.expect("task"), Ok(()));
    *fake.holding_appends.lock() = false;
    until("completed", || s.0.engine.lock().get(&a).is_some_and(|m| m.state == TxnState::CompleteCommit)).await;
    s.add_partitions(&a, producer, &[tp]).await.expect("the next transaction");
}

/// A partition that answers INVALID_PRODUCER_EPOCH saw a newer epoch of the
/// producer: this coordinator is stale. It stops, as Kafka's completion
/// handler, and does not write Complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marker_refused_for_its_producer_epoch_is_not_completed() {
    let fake = Arc::new(FakePartitions::new(PARTITIONS));
    let markers = Arc::new(Markers::default());
    let s = service(&fake, &markers);
    let (a, _) = two_ids();
    let producer = s.init_producer_id(&a, 60_000, None).await.expect("init");
    let tps: Vec<_> = (0..2).map(|p| TopicPartition::new("t", p)).collect();
    s.add_partitions(&a, producer, &tps).await.expect("add");
    markers.1.lock().insert(tps[1].clone(), (MarkerError::InvalidProducerEpoch("newer".into()), usize::MAX));
    let appended = fake.len(partition_for(&a, PARTITIONS));
    tokio::time::timeout(std::time::Duration::from_secs(5), s.end_txn(&a, producer, true))
        .await
        .expect("not retried until the bound")
        .expect("end");
    assert_eq!(markers.0.lock().len(), 2, "one attempt");
    assert_eq!(fake.len(partition_for(&a, PARTITIONS)), appended + 1, "PrepareCommit, no CompleteCommit");
    let meta = s.describe(&a).await.expect("served").expect("known");
    assert_eq!(meta.state, TxnState::PrepareCommit, "left to the coordinator of the newer epoch");
}

/// Markers that block the first time they are written, for the coordinator
/// epoch of that first write; refused as not the leader for any other.
struct Gated {
    first_epoch: Mutex<Option<i32>>,
    gate: tokio::sync::Notify,
    writes: Mutex<Vec<i32>>,
}

impl MarkerWriter for Arc<Gated> {
    fn write(&self, partitions: &[TopicPartition], marker: TxnMarker) -> MarkersWritten {
        let me = self.clone();
        let n = partitions.len();
        self.writes.lock().push(marker.coordinator_epoch);
        let first = *self.first_epoch.lock().get_or_insert(marker.coordinator_epoch);
        let blocks = self.writes.lock().len() == 1;
        Box::pin(async move {
            if blocks {
                me.gate.notified().await;
            }
            (0..n)
                .map(|_| {
                    if marker.coordinator_epoch == first {
                        Ok(())
                    } else {
                        Err(MarkerError::Failed(ResponseError::NotLeaderOrFollower, "moved".into()))
                    }
                })
                .collect()
        })
    }
}

/// Markers written under a coordinator epoch the id's partition is no
/// longer loaded in (lost and loaded again meanwhile) do not complete the
/// transaction: Kafka cancels them; the coordinator of the new epoch
/// finishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markers_of_an_older_coordinator_epoch_do_not_complete() {
    let fake = Arc::new(FakePartitions::new(PARTITIONS));
    fake.epoch.store(3, Ordering::SeqCst);
    let gated =
        Arc::new(Gated { first_epoch: Mutex::new(None), gate: tokio::sync::Notify::new(), writes: Mutex::default() });
    let seams = TxnSeams {
        state_log: fake.clone(),
        markers: Arc::new(gated.clone()),
        producer_ids: Arc::new(Ids::default()),
        clock: Arc::new(ManualClock::new(1_700_000_000_000)),
        stopping: tokio::sync::watch::channel(false).1,
    };
    let s = TxnService::from_config(&BrokerConfig::default(), seams);
    let (a, _) = two_ids();
    let pa = partition_for(&a, PARTITIONS);
    let producer = s.init_producer_id(&a, 60_000, None).await.expect("init");
    s.add_partitions(&a, producer, &[TopicPartition::new("t", 0)]).await.expect("add");
    let ending = tokio::spawn({
        let (s, a) = (s.clone(), a.clone());
        async move { s.end_txn(&a, producer, true).await }
    });
    until("the first markers are on their way", || gated.writes.lock().len() == 1).await;
    // Lost and led again under epoch 8 meanwhile: the new load finishes
    // the prepared transaction with epoch 8 (refused here, retried).
    s.on_resign(pa);
    fake.epoch.store(8, Ordering::SeqCst);
    s.on_become_leader(pa, 8).await.expect("loaded");
    until("the new epoch's markers", || gated.writes.lock().contains(&8)).await;
    gated.gate.notify_one();
    tokio::time::timeout(std::time::Duration::from_secs(5), ending)
        .await
        .expect("the old task stops at once")
        .expect("task")
        .expect("end");
    let meta = s.describe(&a).await.expect("served").expect("known");
    assert_eq!(meta.state, TxnState::PrepareCommit, "the epoch-3 markers do not complete it");
    assert_eq!(gated.writes.lock().iter().filter(|e| **e == 3).count(), 1, "nor are they written again");
}
