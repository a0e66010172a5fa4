//! The group service over a fake `__consumer_offsets` whose appends fail or
//! wait (the ISR below `min.insync.replicas`, a leader that lost its
//! followers): an OffsetCommit answers the coordinator's error and is never
//! fetched, one waiting for the ISR is not fetched until it is replicated,
//! OffsetFetch with `require_stable` waits for it, a SyncGroup whose
//! assignment was not stored answers every waiting member the error, and
//! an OffsetDelete or DeleteGroups waits for its tombstones and, if they
//! are not replicated, answers the error having deleted nothing.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kaskade_types::ManualClock;

use super::{CommitRequest, GroupService, JoinRequest, Protocol, SyncRequest};
use crate::config::BrokerConfig;
use crate::coordinator::fake::FakePartitions;
use crate::coordinator::CoordinatorError;
use crate::error::BrokerError;

const WAIT: Duration = Duration::from_secs(10);

fn service(fake: &Arc<FakePartitions>, clock: &Arc<ManualClock>) -> Arc<GroupService> {
    let mut config = BrokerConfig::default();
    config.group_initial_rebalance_delay_ms = 3000;
    Arc::new(GroupService::from_config(&config, fake.clone(), clock.clone()))
}

fn setup() -> (Arc<FakePartitions>, Arc<ManualClock>, Arc<GroupService>) {
    let fake = Arc::new(FakePartitions::new(4));
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let s = service(&fake, &clock);
    (fake, clock, s)
}

/// OffsetCommit of `t-0` from outside any group: the answer for it.
async fn commit(s: &GroupService, offset: i64) -> Option<ResponseError> {
    commit_of(s, "g", offset).await
}

async fn commit_of(s: &GroupService, group: &str, offset: i64) -> Option<ResponseError> {
    let req = CommitRequest::of_t0(group, offset);
    match s.call_durable_gated(move |engine, now, _| engine.commit_offsets(now, &req)).await {
        Ok(errors) => errors[0],
        Err(BrokerError::Kafka { code, .. }) => Some(code),
        Err(e) => panic!("{e:?}"),
    }
}

/// What OffsetFetch answers for `t-0` of `g`.
async fn fetch(s: &GroupService) -> Option<i64> {
    s.call(|engine, now| engine.fetch_offsets(now, "g", Some(&[kaskade_types::TopicPartition::new("t", 0)])))
        .await
        .expect("service runs")
        .expect("fetched")[0]
        .offset()
        .map(|o| o.get())
}

/// Polls (a millisecond apart) until the fake holds `n` appends.
async fn appends_held(fake: &FakePartitions, n: usize) {
    tokio::time::timeout(WAIT, async {
        while fake.held() < n {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the append reached the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_the_isr_never_held_is_never_fetched_and_a_later_one_is() {
    let (fake, _, s) = setup();
    assert_eq!(commit(&s, 5).await, None);
    // The partition cannot reach min ISR: refused or timed out.
    *fake.failing_appends.lock() = Some(CoordinatorError::Unavailable("not enough replicas".into()));
    assert_eq!(commit(&s, 9).await, Some(ResponseError::CoordinatorNotAvailable));
    assert_eq!(fetch(&s).await, Some(5), "the lost commit never shows");
    *fake.failing_appends.lock() = Some(CoordinatorError::NotCoordinator);
    assert_eq!(commit(&s, 10).await, Some(ResponseError::NotCoordinator));
    assert_eq!(fetch(&s).await, Some(5));
    // The followers are back: the next commit is visible.
    *fake.failing_appends.lock() = None;
    assert_eq!(commit(&s, 11).await, None);
    assert_eq!(fetch(&s).await, Some(11));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_append_fails_its_commit_and_no_other_partitions() {
    let (fake, _, s) = setup();
    assert_eq!(commit(&s, 5).await, None);
    let p = super::records::partition_for("g", 4);
    let other = (0..100).map(|i| format!("other-{i}")).find(|g| super::records::partition_for(g, 4) != p);
    let other = other.expect("a group on another partition");
    fake.refused_appends.lock().push(p);
    let before = fake.len(p);
    assert_eq!(commit(&s, 6).await, Some(ResponseError::CoordinatorNotAvailable));
    assert_eq!(fake.len(p), before, "nothing written");
    assert_eq!(fetch(&s).await, Some(5));
    assert_eq!(commit_of(&s, &other, 1).await, None, "the other partitions write on");
    fake.refused_appends.lock().clear();
    assert_eq!(commit(&s, 7).await, None);
    assert_eq!(fetch(&s).await, Some(7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_waiting_for_the_isr_is_fetched_only_once_replicated() {
    let (fake, _, s) = setup();
    assert_eq!(commit(&s, 5).await, None);
    *fake.holding_appends.lock() = true;
    let pending = tokio::spawn({
        let s = s.clone();
        async move { commit(&s, 6).await }
    });
    appends_held(&fake, 1).await;
    assert_eq!(fetch(&s).await, Some(5), "not replicated yet: the last committed offset");
    let stable = tokio::spawn({
        let s = s.clone();
        async move { s.wait_stable(vec!["g".into(), "other".into()]).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!stable.is_finished(), "require_stable waits for the group's write");
    assert!(!pending.is_finished(), "OffsetCommit waits for the ISR");
    assert_eq!(fake.release_appends(Ok(())), 1);
    assert_eq!(tokio::time::timeout(WAIT, pending).await.expect("answered").expect("ran"), None);
    let failed = tokio::time::timeout(WAIT, stable).await.expect("answered").expect("ran").expect("service runs");
    assert!(failed.is_empty());
    assert_eq!(fetch(&s).await, Some(6));

    // The same wait ending in a failure: dropped, and the stable fetch hears it.
    let pending = tokio::spawn({
        let s = s.clone();
        async move { commit(&s, 7).await }
    });
    appends_held(&fake, 1).await;
    let stable = tokio::spawn({
        let s = s.clone();
        async move { s.wait_stable(vec!["g".into()]).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    fake.release_appends(Err(CoordinatorError::Unavailable("timed out".into())));
    let answer = tokio::time::timeout(WAIT, pending).await.expect("answered").expect("ran");
    assert_eq!(answer, Some(ResponseError::CoordinatorNotAvailable));
    let failed = tokio::time::timeout(WAIT, stable).await.expect("answered").expect("ran").expect("service runs");
    assert!(failed.contains("g"), "{failed:?}");
    assert_eq!(fetch(&s).await, Some(6), "the failed commit never shows");
}

fn join_request(member_id: &str) -> JoinRequest {
    JoinRequest {
        group_id: "g".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        member_id: member_id.into(),
        protocol_type: "consumer".into(),
        protocols: vec![Protocol { name: "range".into(), metadata: Bytes::from_static(b"m") }],
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        ..JoinRequest::default()
    }
}

/// Two members join (the initial delay passes on the manual clock):
/// (leader, follower, generation).
async fn joined(s: &Arc<GroupService>, clock: &ManualClock) -> (String, String, i32) {
    let joins: Vec<_> = (0..2)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.join(join_request("")).await })
        })
        .collect();
    // Both parked in the initial delay, then it passes.
    tokio::time::timeout(WAIT, async {
        while s.call(|e, _| e.group("g").map_or(0, |g| g.members().count())).await.expect("runs") < 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("both joined");
    // Kafka's initial delay extends while members arrive.
    for _ in 0..20 {
        if joins.iter().all(|j| j.is_finished()) {
            break;
        }
        clock.advance(3000);
        s.call(|e, now| e.tick(now)).await.expect("runs");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut answers = Vec::new();
    for j in joins {
        answers.push(tokio::time::timeout(WAIT, j).await.expect("answered").expect("ran").expect("joined"));
    }
    let leader = answers[0].leader.clone();
    let follower = answers.iter().find(|r| r.member_id != leader).expect("a follower").member_id.clone();
    (leader, follower, answers[0].generation_id)
}

fn sync_request(member: &str, generation: i32, assignments: Vec<(String, Bytes)>) -> SyncRequest {
    SyncRequest {
        group_id: "g".into(),
        generation_id: generation,
        member_id: member.into(),
        assignments,
        ..SyncRequest::default()
    }
}

/// The follower's SyncGroup parked, then the leader's sent: both answers.
async fn sync_both(
    s: &Arc<GroupService>,
    fake: &FakePartitions,
    (leader, follower, generation): (String, String, i32),
    release: Option<Result<(), CoordinatorError>>,
) -> Vec<super::SyncResponse> {
    let f = tokio::spawn({
        let (s, follower) = (s.clone(), follower.clone());
        async move { s.sync(sync_request(&follower, generation, Vec::new())).await }
    });
    tokio::time::timeout(WAIT, async {
        let id = follower.clone();
        loop {
            let id = id.clone();
            let parked = s
                .call(move |e, _| e.group("g").and_then(|g| g.member(&id)).is_some_and(|m| m.is_awaiting_sync()))
                .await
                .expect("runs");
            if parked {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the follower waits for the assignment");
    let a = vec![(leader.clone(), Bytes::from_static(b"A")), (follower, Bytes::from_static(b"B"))];
    let l = tokio::spawn({
        let s = s.clone();
        async move { s.sync(sync_request(&leader, generation, a)).await }
    });
    if let Some(result) = release {
        appends_held(fake, 1).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!l.is_finished() && !f.is_finished(), "nobody hears before the assignment is stored");
        fake.release_appends(result);
    }
    let mut answers = Vec::new();
    for t in [l, f] {
        answers.push(tokio::time::timeout(WAIT, t).await.expect("answered").expect("ran").expect("synced"));
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_group_whose_assignment_was_not_stored_answers_every_member_the_error() {
    let (fake, clock, s) = setup();
    let members = joined(&s, &clock).await;
    *fake.failing_appends.lock() = Some(CoordinatorError::NotCoordinator);
    let answers = sync_both(&s, &fake, members.clone(), None).await;
    for a in &answers {
        assert_eq!(a.error, Some(ResponseError::NotCoordinator), "{a:?}");
        assert!(a.assignment.is_empty());
    }
    let state = s.call(|e, _| e.group("g").map(|g| g.state())).await.expect("runs");
    assert_eq!(state, Some(super::GroupState::PreparingRebalance), "the members rejoin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_group_answers_once_the_assignment_is_stored() {
    let (fake, clock, s) = setup();
    let members = joined(&s, &clock).await;
    *fake.holding_appends.lock() = true;
    let answers = sync_both(&s, &fake, members.clone(), Some(Ok(()))).await;
    assert_eq!(answers[0].error, None);
    assert_eq!(answers[0].assignment, Bytes::from_static(b"A"));
    assert_eq!(answers[1].assignment, Bytes::from_static(b"B"));

    // A store that times out: the next generation's members hear it.
    let (leader, follower, generation) = members;
    let rejoin = |id: String| {
        let s = s.clone();
        tokio::spawn(async move { s.join(join_request(&id)).await })
    };
    // The leader first (a rebalance), then the follower joins it.
    let first = rejoin(leader.clone());
    tokio::time::timeout(WAIT, async {
        while s.call(|e, _| e.group("g").map(|g| g.state())).await.expect("runs")
            != Some(super::GroupState::PreparingRebalance)
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("a rebalance started");
    let rejoins = [first, rejoin(follower.clone())];
    let mut next = Vec::new();
    for j in rejoins {
        next.push(tokio::time::timeout(WAIT, j).await.expect("answered").expect("ran").expect("joined"));
    }
    assert!(next.iter().all(|r| r.error.is_none() && r.generation_id == generation + 1), "{next:?}");
    let timed_out = Err(CoordinatorError::Unavailable("timed out".into()));
    let answers = sync_both(&s, &fake, (next[0].leader.clone(), follower_of(&next), generation + 1), Some(timed_out));
    for a in answers.await {
        assert_eq!(a.error, Some(ResponseError::CoordinatorNotAvailable), "{a:?}");
    }
}

fn follower_of(answers: &[super::JoinResponse]) -> String {
    answers.iter().find(|r| r.member_id != r.leader).expect("a follower").member_id.clone()
}

/// OffsetDelete of `g`'s `t-0` through the service, as the handler calls
/// it: the answer (top-level error or the partition's).
async fn delete_offset(s: &GroupService) -> Option<ResponseError> {
    let tp = vec![kaskade_types::TopicPartition::new("t", 0)];
    match s.call_durable_gated(move |engine, now, _| engine.delete_offsets(now, "g", &tp)).await {
        Ok(Ok(errors)) => errors[0],
        Ok(Err(e)) | Err(BrokerError::Kafka { code: e, .. }) => Some(e),
        Err(e) => panic!("{e:?}"),
    }
}

/// DeleteGroups of `g` through the service: its answer.
async fn delete_group(s: &GroupService) -> Option<ResponseError> {
    match s.call_durable_gated(|engine, now, _| engine.delete_groups(now, &["g".to_string()])).await {
        Ok(errors) => errors[0],
        Err(BrokerError::Kafka { code, .. }) => Some(code),
        Err(e) => panic!("{e:?}"),
    }
}

/// DeleteGroups (`group`) or OffsetDelete.
async fn delete(s: &GroupService, group: bool) -> Option<ResponseError> {
    if group {
        delete_group(s).await
    } else {
        delete_offset(s).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_waits_for_the_isr_and_one_it_never_held_deletes_nothing() {
    let (fake, _, s) = setup();
    assert_eq!(commit(&s, 5).await, None);
    let exists = |s: Arc<GroupService>| async move { s.call(|e, _| e.group("g").is_some()).await.expect("runs") };
    for group in [false, true] {
        // Held, then timed out: visible throughout, nothing deleted.
        *fake.holding_appends.lock() = true;
        let pending = tokio::spawn({
            let s = s.clone();
            async move { delete(&s, group).await }
        });
        appends_held(&fake, 1).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!pending.is_finished(), "the deletion waits for the ISR");
        assert_eq!(fetch(&s).await, Some(5), "not replicated yet: still there");
        fake.release_appends(Err(CoordinatorError::Unavailable("timed out".into())));
        let answer = tokio::time::timeout(WAIT, pending).await.expect("answered").expect("ran");
        assert_eq!(answer, Some(ResponseError::CoordinatorNotAvailable));
        assert_eq!(fetch(&s).await, Some(5), "a failed deletion deletes nothing");
        assert!(exists(s.clone()).await);
        // Refused at once.
        *fake.holding_appends.lock() = false;
        *fake.failing_appends.lock() = Some(CoordinatorError::NotCoordinator);
        assert_eq!(delete(&s, group).await, Some(ResponseError::NotCoordinator));
        assert_eq!(fetch(&s).await, Some(5));
        *fake.failing_appends.lock() = None;
    }
    // Replicated: gone.
    assert_eq!(delete_offset(&s).await, None);
    assert_eq!(fetch(&s).await, None);
    assert!(exists(s.clone()).await, "OffsetDelete leaves the group");
    assert_eq!(delete_group(&s).await, None);
    assert!(!exists(s.clone()).await, "DeleteGroups takes it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_over_two_partitions_fails_only_on_the_one_that_refused() {
    let (fake, _, s) = setup();
    let p = super::records::partition_for("g", 4);
    let other = (0..100).map(|i| format!("other-{i}")).find(|g| super::records::partition_for(g, 4) != p);
    let other = other.expect("a group on another partition");
    assert_eq!(commit(&s, 5).await, None);
    assert_eq!(commit_of(&s, &other, 5).await, None);
    fake.refused_appends.lock().push(p);
    let ids = vec!["g".to_string(), other.clone()];
    let (errors, outcomes, partitions) =
        s.call_durable_by_partition(move |engine, now, _| engine.delete_groups(now, &ids)).await.expect("runs");
    assert_eq!(errors, vec![None, None], "both deletions were written");
    assert_eq!(partitions, 4);
    assert!(outcomes[&p].is_err(), "{outcomes:?}");
    assert!(outcomes[&super::records::partition_for(&other, 4)].is_ok(), "{outcomes:?}");
    let left = s.call(move |e, _| (e.group("g").is_some(), e.group(&other).is_some())).await.expect("runs");
    assert_eq!(left, (true, false), "only the replicated deletion took effect");
    assert_eq!(fetch(&s).await, Some(5));
}
