//! The group service over a fake `__consumer_offsets`: groups are served
//! only from partitions loaded here, load and unload per partition, and
//! the partitions led at start load before any request is answered.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kaskade_types::ManualClock;

use super::records::partition_for;
use super::{CommitRequest, GroupService, JoinRequest, Protocol};
use crate::config::BrokerConfig;
use crate::coordinator::fake::FakePartitions;
use crate::coordinator::CoordinatorError;

const PARTITIONS: i32 = 4;

fn service(fake: &Arc<FakePartitions>) -> Arc<GroupService> {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    Arc::new(GroupService::from_config(&BrokerConfig::default(), fake.clone(), clock))
}

/// Two group ids stored on different partitions.
fn two_groups() -> (String, String) {
    let ids: Vec<String> = (0..100).map(|i| format!("group-{i}")).collect();
    let a = ids[0].clone();
    let pa = partition_for(&a, PARTITIONS);
    let b = ids.iter().find(|id| partition_for(id, PARTITIONS) != pa).expect("another partition").clone();
    (a, b)
}

fn commit_request(group: &str, offset: i64) -> CommitRequest {
    CommitRequest::of_t0(group, offset)
}

async fn commit(s: &GroupService, group: &str, offset: i64) -> Vec<Option<ResponseError>> {
    let req = commit_request(group, offset);
    s.call_durable_gated(move |engine, now, gate| match gate.check(&req.group_id) {
        Err(e) => vec![Some(e)],
        Ok(()) => engine.commit_offsets(now, &req),
    })
    .await
    .expect("service runs")
}

/// The committed offset of `t-0` (if any), or the error a client gets.
async fn fetch(s: &GroupService, group: &str) -> Result<Option<i64>, ResponseError> {
    let group = group.to_string();
    s.call_gated(move |engine, now, gate| {
        gate.check(&group)
            .and_then(|()| engine.fetch_offsets(now, &group, Some(&[kaskade_types::TopicPartition::new("t", 0)])))
            .map(|o| o[0].offset().map(|o| o.get()))
    })
    .await
    .expect("service runs")
}

/// Polls (yielding, no sleeps) until `group` answers something other than
/// `from`; that answer.
async fn next_answer(
    s: &GroupService,
    group: &str,
    from: Result<Option<i64>, ResponseError>,
) -> Result<Option<i64>, ResponseError> {
    for _ in 0..10_000 {
        let now = fetch(s, group).await;
        if now != from {
            return now;
        }
        tokio::task::yield_now().await;
    }
    panic!("{group} kept answering {from:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resign_unloads_one_partition_and_becoming_leader_reloads_it() {
    let fake = Arc::new(FakePartitions::new(PARTITIONS));
    let s = service(&fake);
    let (a, b) = two_groups();
    let pa = partition_for(&a, PARTITIONS);
    assert_eq!(commit(&s, &a, 42).await, vec![None]);
    assert_eq!(commit(&s, &b, 7).await, vec![None]);
    assert!(fake.len(pa) > 0, "the commit is stored on the group's partition");

    s.on_resign(pa).await.expect("resign");
    assert_eq!(fetch(&s, &a).await, Err(ResponseError::NotCoordinator));
    assert_eq!(commit(&s, &a, 43).await, vec![Some(ResponseError::NotCoordinator)]);
    assert_eq!(fetch(&s, &b).await, Ok(Some(7)), "other partitions are untouched");

    // Reads held back: the partition is seen while it loads.
    fake.hold_reads();
    let loading = tokio::spawn({
        let s = s.clone();
        async move { s.on_become_leader(pa).await }
    });
    let answer = next_answer(&s, &a, Err(ResponseError::NotCoordinator)).await;
    assert_eq!(answer, Err(ResponseError::CoordinatorLoadInProgress));
    assert_eq!(fetch(&s, &b).await, Ok(Some(7)), "served while another partition loads");
    fake.release_reads();
    assert_eq!(loading.await.expect("task"), Ok(()));
    assert_eq!(fetch(&s, &a).await, Ok(Some(42)), "replayed from the partition's records");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_load_answers_load_in_progress_until_a_retry_succeeds() {
    let fake = Arc::new(FakePartitions::new(PARTITIONS));
    let s = service(&fake);
    let (a, _) = two_groups();
    let pa = partition_for(&a, PARTITIONS);
    assert_eq!(commit(&s, &a, 5).await, vec![None]);
    s.on_resign(pa).await.expect("resign");
    fake.failing_reads.lock().push(pa);
    let loading = tokio::spawn({
        let s = s.clone();
        async move { s.on_become_leader(pa).await }
    });
    let answer = next_answer(&s, &a, Err(ResponseError::NotCoordinator)).await;
    assert_eq!(answer, Err(ResponseError::CoordinatorLoadInProgress));
    FakePartitions::reached(&fake.failed_reads, 1).await;
    assert_eq!(fetch(&s, &a).await, Err(ResponseError::CoordinatorLoadInProgress), "still loading after a failure");
    fake.failing_reads.lock().clear();
    assert_eq!(loading.await.expect("task"), Ok(()), "the retry loads it");
    assert_eq!(fetch(&s, &a).await, Ok(Some(5)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resigning_while_loading_discards_the_load() {
    let fake = Arc::new(FakePartitions::new(PARTITIONS));
    let s = service(&fake);
    let (a, _) = two_groups();
    let pa = partition_for(&a, PARTITIONS);
    assert_eq!(commit(&s, &a, 9).await, vec![None]);
    s.on_resign(pa).await.expect("resign");
    fake.hold_reads();
    let loading = tokio::spawn({
        let s = s.clone();
        async move { s.on_become_leader(pa).await }
    });
    next_answer(&s, &a, Err(ResponseError::NotCoordinator)).await.expect_err("loading");
    s.on_resign(pa).await.expect("resign");
    fake.release_reads();
    assert_eq!(loading.await.expect("task"), Err(CoordinatorError::NotCoordinator));
    assert_eq!(fetch(&s, &a).await, Err(ResponseError::NotCoordinator), "the late load is not applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_join_answers_not_coordinator_when_its_partition_goes() {
    let fake = Arc::new(FakePartitions::new(PARTITIONS));
    let s = service(&fake);
    let (a, _) = two_groups();
    let join = JoinRequest {
        group_id: a.clone(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        member_id: String::new(),
        group_instance_id: None,
        protocol_type: "consumer".into(),
        protocols: vec![Protocol { name: "range".into(), metadata: Bytes::new() }],
        client_id: "c".into(),
        client_host: "h".into(),
        require_known_member_id: false,
    };
    // The manual clock never reaches the initial rebalance delay: the join
    // stays parked until something else answers it.
    let parked = tokio::spawn({
        let s = s.clone();
        async move { s.join(join).await }
    });
    let group = a.clone();
    for _ in 0..10_000 {
        let g = group.clone();
        if s.call(move |engine, _| engine.group(&g).is_some()).await.expect("runs") {
            break;
        }
        tokio::task::yield_now().await;
    }
    s.on_resign(partition_for(&a, PARTITIONS)).await.expect("resign");
    let answer = parked.await.expect("task").expect("answered");
    assert_eq!(answer.error, Some(ResponseError::NotCoordinator));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_wait_for_the_partitions_loaded_at_start() {
    let fake = Arc::new(FakePartitions::new(PARTITIONS));
    let (a, b) = two_groups();
    {
        let first = service(&fake);
        assert_eq!(commit(&first, &a, 11).await, vec![None]);
        assert_eq!(commit(&first, &b, 12).await, vec![None]);
    }
    // A restarted node: its first request never sees a loading
    // coordinator, even with slow reads.
    fake.hold_reads();
    let before = fake.reads.load(std::sync::atomic::Ordering::SeqCst);
    let s = service(&fake);
    let first = tokio::spawn({
        let s = s.clone();
        let a = a.clone();
        async move { fetch(&s, &a).await }
    });
    // Every partition's read has started and is held back.
    FakePartitions::reached(&fake.reads, before + PARTITIONS as usize).await;
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert!(!first.is_finished(), "the request waits for the start-up load");
    fake.release_reads();
    assert_eq!(first.await.expect("task"), Ok(Some(11)));
    assert_eq!(fetch(&s, &b).await, Ok(Some(12)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metadata_change_drops_the_partitions_led_elsewhere_and_loads_the_newly_led() {
    let fake = Arc::new(FakePartitions::new(PARTITIONS));
    let s = service(&fake);
    let (a, b) = two_groups();
    let pa = partition_for(&a, PARTITIONS);
    assert_eq!(commit(&s, &a, 21).await, vec![None]);
    assert_eq!(commit(&s, &b, 22).await, vec![None]);

    // The image moves pa's leadership to another broker.
    *fake.led.lock() = Some((0..PARTITIONS).filter(|p| *p != pa).collect());
    s.on_metadata_change().await.expect("followed");
    assert_eq!(fetch(&s, &a).await, Err(ResponseError::NotCoordinator));
    assert_eq!(fetch(&s, &b).await, Ok(Some(22)), "still led here");
    s.on_metadata_change().await.expect("an unchanged image changes nothing");
    assert_eq!(fetch(&s, &b).await, Ok(Some(22)));

    // And back: pa loads again from its records.
    *fake.led.lock() = None;
    s.on_metadata_change().await.expect("followed");
    let answer = next_answer(&s, &a, Err(ResponseError::NotCoordinator)).await;
    let answer = if answer == Err(ResponseError::CoordinatorLoadInProgress) {
        next_answer(&s, &a, answer).await
    } else {
        answer
    };
    assert_eq!(answer, Ok(Some(21)));
}

/// An offset commit the ISR never held answers the coordinator's error
/// (NOT_COORDINATOR when leadership moved, COORDINATOR_NOT_AVAILABLE on a
/// timeout), as Kafka's, instead of failing the request (which closed the
/// client's connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_the_isr_never_held_answers_the_coordinators_error() {
    let fake = Arc::new(FakePartitions::new(PARTITIONS));
    let s = service(&fake);
    let (a, _) = two_groups();
    assert_eq!(commit(&s, &a, 5).await, vec![None]);
    for (failure, code) in [
        (CoordinatorError::NotCoordinator, ResponseError::NotCoordinator),
        (CoordinatorError::Unavailable("timed out".into()), ResponseError::CoordinatorNotAvailable),
    ] {
        *fake.failing_appends.lock() = Some(failure);
        let group = a.clone();
        let answer = s
            .call_durable_gated(move |engine, now, gate| match gate.check(&group) {
                Err(e) => vec![Some(e)],
                Ok(()) => engine.commit_offsets(now, &commit_request(&group, 9)),
            })
            .await;
        match answer {
            Err(crate::error::BrokerError::Kafka { code: c, .. }) => assert_eq!(c, code),
            other => panic!("{other:?}"),
        }
    }
}

/// Issue 14: this node loses an offsets partition and gets it back in a
/// newer leader epoch without an image in between that said so, while
/// another coordinator committed there. Until the image reaches it, its
/// commits from the old state are refused (NOT_COORDINATOR, nothing
/// written); then it loads again and serves the other coordinator's commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_led_again_under_a_newer_epoch_is_loaded_again() {
    let fake = Arc::new(FakePartitions::new(PARTITIONS));
    let s = service(&fake);
    let (a, b) = two_groups();
    let pa = partition_for(&a, PARTITIONS);
    assert_eq!(commit(&s, &a, 42).await, vec![None]);
    assert_eq!(commit(&s, &b, 7).await, vec![None]);
    // The other coordinator (led in epoch 1, as the fake says for now).
    fake.epoch.store(1, std::sync::atomic::Ordering::SeqCst);
    let other = service(&fake);
    assert_eq!(commit(&other, &a, 50).await, vec![None]);
    drop(other);
    // Led here again in epoch 2; the image has not reached the service.
    fake.epoch.store(2, std::sync::atomic::Ordering::SeqCst);
    let before = fake.len(pa);
    let req = commit_request(&a, 60);
    let refused = s
        .call_durable_gated(move |engine, now, gate| match gate.check(&req.group_id) {
            Err(e) => vec![Some(e)],
            Ok(()) => engine.commit_offsets(now, &req),
        })
        .await;
    assert!(
        matches!(refused, Err(crate::error::BrokerError::Kafka { code: ResponseError::NotCoordinator, .. })),
        "{refused:?}"
    );
    assert_eq!(fake.len(pa), before, "nothing written from the old state");
    s.on_metadata_change().await.expect("followed");
    let mut answer = fetch(&s, &a).await;
    for _ in 0..10_000 {
        if answer != Err(ResponseError::CoordinatorLoadInProgress) && answer != Ok(Some(42)) {
            break;
        }
        tokio::task::yield_now().await;
        answer = fetch(&s, &a).await;
    }
    assert_eq!(answer, Ok(Some(50)), "the other coordinator's commit");
    assert_eq!(next_answer(&s, &b, Err(ResponseError::CoordinatorLoadInProgress)).await, Ok(Some(7)));
    assert_eq!(commit(&s, &a, 61).await, vec![None], "served under epoch 2");
}
