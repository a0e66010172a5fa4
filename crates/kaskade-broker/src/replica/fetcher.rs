//! One replica fetcher: a task that fetches every partition this node
//! follows from one leader, over one connection to the leader's registered
//! endpoint, speaking Kafka's Fetch as a replica (`replica_id` up to v14,
//! `ReplicaState` from v15), as Kafka's `ReplicaFetcherThread` does.
//!
//! Each round: partitions at a leader epoch not seen before are truncated
//! first to what their log shares with the leader's (OffsetForLeaderEpoch
//! as a replica, KIP-101/279, decided in `truncation`; a log without
//! epochs cuts to its HW), and fetched only once that is done; then one
//! Fetch from each partition's log end, parked
//! by the leader until it has new data or `replica.fetch.wait.max.ms` ends.
//! The answer's batches are appended on the blocking pool
//! (`Partition::append_as_follower`), and in durable mode (the default) the
//! fetcher waits until they are fsynced before it fetches again: the fetch
//! offset the leader takes as this follower's position is then its durable
//! end, so an acks=all acknowledgement means the batch is on disk on every
//! ISR member. The follower's HW becomes min(leader HW, own end), and its
//! lag for `/metrics` the leader HW minus its own end (a relaxed atomic
//! store on the partition, no lock).
//!
//! Errors: a broken connection backs off (`replica.fetch.backoff.ms`) and
//! retries; a partition that failed alone (a failed append, a refused
//! OffsetForLeaderEpoch) is left out of fetches for that long while the
//! others go on, as are partitions answered with NOT_LEADER_OR_FOLLOWER,
//! an unknown leader epoch and an unknown topic (the leader has not applied
//! the image yet, or the next image moves the partition); a fenced leader
//! epoch (this node's image is behind) parks the partition until an image
//! gives it a newer epoch; OFFSET_OUT_OF_RANGE below the leader's log start
//! restarts the local log there, otherwise truncates to the leader's HW.
//!
//! Stale answers: every action on a partition (truncation, append, HW)
//! names the leadership the request was made for (`Following`: this
//! fetcher's leader, the partition's leader epoch in the assignment) and
//! the partition refuses it once its image moved on, so an answer from a
//! deposed leader never touches the log; the partition then waits for the
//! assignment the new image brings. A request in flight when the
//! assignment changes is abandoned (a deposed leader cut off from this
//! node would otherwise hold the fetcher for the request timeout).
//!
//! Invariant: the task ends when its assignment becomes empty (nothing
//! left to follow from this leader) or the broker stops.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::offset_for_leader_epoch_request::{OffsetForLeaderPartition, OffsetForLeaderTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, OffsetForLeaderEpochRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use kaskade_client::connection::{Connection, ConnectionConfig};
use kaskade_types::{LeaderEpoch, NodeId, Offset, TopicPartition};
use tokio::sync::watch;
use tokio::time::Instant;

use super::throttle;
use super::truncation::truncation;
use super::{Assignment, Followed};
use crate::broker::Broker;
use crate::partition::{Following, PartitionError};

/// Kafka's `replica.fetch.backoff.ms` default.
const FETCH_BACKOFF: Duration = Duration::from_millis(1000);
/// Kafka's `replica.fetch.wait.max.ms` default: how long the leader parks a
/// fetch with no new data.
const FETCH_WAIT_MAX_MS: i32 = 500;
/// Kafka's `replica.fetch.max.bytes` default (per partition).
const FETCH_MAX_BYTES: i32 = 1024 * 1024;
/// How long a throttled partition sits out once the follower quota is
/// exceeded: a tenth of the quota's one-second window, so the bytes moved
/// track the rate closely without a fetch per refilled byte.
const THROTTLE_PAUSE: Duration = Duration::from_millis(100);
/// Kafka's `replica.fetch.response.max.bytes` default.
const FETCH_RESPONSE_MAX_BYTES: i32 = 10 * 1024 * 1024;

/// What the fetcher remembers of a partition between rounds.
#[derive(Clone, Copy, Debug, Default)]
struct Progress {
    /// The leader epoch the local log was last truncated for.
    truncated_for: Option<LeaderEpoch>,
    /// The leader refused the partition at this epoch: wait for a newer one.
    parked_at: Option<LeaderEpoch>,
    /// The partition failed: left out of fetches until then
    /// (`replica.fetch.backoff.ms`), while the others go on.
    delayed_until: Option<Instant>,
}

/// What to do after a round.
enum Next {
    Again,
    Backoff,
}

pub(super) async fn run(broker: Arc<Broker>, leader: NodeId, mut assignment: watch::Receiver<Assignment>) {
    let me = broker.node_id();
    let mut conn: Option<Arc<Connection>> = None;
    let mut progress: HashMap<TopicPartition, Progress> = HashMap::new();
    loop {
        let a = assignment.borrow_and_update().clone();
        if a.partitions.is_empty() {
            tracing::info!(leader = leader.get(), "replica fetcher stopped: nothing left to follow");
            return;
        }
        progress.retain(|k, _| a.partitions.contains_key(k));
        let next = round(&broker, me, leader, &a, &mut assignment, &mut conn, &mut progress).await;
        let now = Instant::now();
        let pause = match next {
            Next::Again if a.partitions.iter().any(|(k, f)| ready(&progress, k, f, now)) => continue,
            // Every partition is delayed (until the first delay ends) or
            // waits for a new image.
            Next::Again => progress.values().filter_map(|p| p.delayed_until).min(),
            Next::Backoff => Some(now + FETCH_BACKOFF),
        };
        let sleep = async {
            match pause {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = broker.stopping() => return,
            changed = assignment.changed() => if changed.is_err() { return },
            _ = sleep => {}
        }
    }
}

fn parked(progress: &HashMap<TopicPartition, Progress>, k: &TopicPartition, f: &Followed) -> bool {
    progress.get(k).is_some_and(|p| p.parked_at == Some(f.leader_epoch))
}

/// The partition may be asked for now: not parked, not delayed.
fn ready(progress: &HashMap<TopicPartition, Progress>, k: &TopicPartition, f: &Followed, now: Instant) -> bool {
    !parked(progress, k, f) && progress.get(k).and_then(|p| p.delayed_until).is_none_or(|t| t <= now)
}

/// Leaves a failed partition out for `replica.fetch.backoff.ms`.
fn delay(progress: &mut HashMap<TopicPartition, Progress>, k: &TopicPartition) {
    progress.entry(k.clone()).or_default().delayed_until = Some(Instant::now() + FETCH_BACKOFF);
}

/// Whom partition `f` is followed for in this assignment.
fn following(leader: NodeId, f: &Followed) -> Following {
    Following { leader, epoch: f.leader_epoch }
}

/// What became of an action on a followed partition.
enum Acted {
    Done,
    /// The partition follows another leadership now: the answer is dropped
    /// and the partition waits for the assignment of its new image.
    Stale,
    Failed,
}

/// A partition refusal that means the action was decided for a leadership
/// the partition has left (see `Leadership::check_following`).
fn is_stale(e: &PartitionError) -> bool {
    matches!(
        e,
        PartitionError::FencedLeaderEpoch { .. }
            | PartitionError::UnknownLeaderEpoch { .. }
            | PartitionError::NotLeader
    )
}

/// Parks a partition whose answer was stale until an image gives it
/// another leader epoch (the reconcile after the image that moved it).
fn drop_stale(progress: &mut HashMap<TopicPartition, Progress>, k: &TopicPartition, f: &Followed, e: &PartitionError) {
    tracing::debug!(topic = %k.topic, partition = k.partition, epoch = f.leader_epoch.get(), error = %e,
        "dropping an answer for a leadership the partition has left");
    progress.entry(k.clone()).or_default().parked_at = Some(f.leader_epoch);
}

/// One round: truncate what a new epoch requires, fetch once, apply.
async fn round(
    broker: &Arc<Broker>,
    me: NodeId,
    leader: NodeId,
    a: &Assignment,
    assignment: &mut watch::Receiver<Assignment>,
    conn: &mut Option<Arc<Connection>>,
    progress: &mut HashMap<TopicPartition, Progress>,
) -> Next {
    let c = match conn.as_ref().filter(|c| !c.is_closed()) {
        Some(c) => c.clone(),
        None => {
            let config = ConnectionConfig {
                client_id: format!("replica-fetcher-{}", me.get()),
                connect_timeout: Duration::from_secs(5),
                request_timeout: Duration::from_secs(30),
            };
            match Connection::connect(&a.leader_addr, config).await {
                Ok(c) => {
                    *conn = Some(c.clone());
                    c
                }
                Err(e) => {
                    tracing::warn!(addr = %a.leader_addr, error = %e, "replica fetcher cannot reach its leader");
                    return Next::Backoff;
                }
            }
        }
    };
    let truncated = tokio::select! {
        t = truncate(&c, me, leader, a, progress) => t,
        // The answer would be for an assignment that is gone.
        Ok(()) = assignment.changed() => return Next::Again,
    };
    if let Next::Backoff = truncated {
        return Next::Backoff;
    }
    let version = match c.version::<FetchRequest>() {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(addr = %a.leader_addr, error = %e, "the leader speaks no Fetch version we do");
            return Next::Backoff;
        }
    };
    // Follower replication throttle (`throttle`): while this broker's
    // quota is exceeded the throttled partitions sit this fetch out.
    let (rate, throttled) = follower_throttle(broker, me, a);
    if !throttled.is_empty() && broker.replication_quotas.follower.exceeded(rate) {
        for k in &throttled {
            progress.entry(k.clone()).or_default().delayed_until = Some(Instant::now() + THROTTLE_PAUSE);
        }
    }
    // Only partitions whose log agrees with the leader's.
    let fetched: Vec<(&TopicPartition, &Followed)> = a
        .partitions
        .iter()
        .filter(|(k, f)| {
            ready(progress, k, f, Instant::now())
                && progress.get(*k).is_some_and(|p| p.truncated_for == Some(f.leader_epoch))
        })
        .collect();
    if fetched.is_empty() {
        return Next::Again;
    }
    let req = request(me, version, &fetched);
    let resp = tokio::select! {
        r = c.send(&req, version) => r,
        _ = broker.stopping() => return Next::Again,
        // A partition moved (a new leader or epoch, or none left here):
        // ask again with the new assignment rather than wait for an answer
        // that may come from a deposed leader, or not at all.
        Ok(()) = assignment.changed() => return Next::Again,
    };
    let resp = match resp {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(addr = %a.leader_addr, error = %e, "replica fetch failed");
            *conn = None;
            return Next::Backoff;
        }
    };
    if let Some(e) = ResponseError::try_from_code(resp.error_code) {
        tracing::warn!(addr = %a.leader_addr, error = ?e, "the leader refused the replica fetch");
        return Next::Backoff;
    }
    let by_id = version >= 13;
    for t in &resp.responses {
        for pd in &t.partitions {
            let found = fetched.iter().find(|(k, f)| {
                k.partition == pd.partition_index
                    && if by_id { f.topic_id == t.topic_id } else { *k.topic == *t.topic.as_str() }
            });
            let Some((k, f)) = found else { continue };
            if throttled.contains(*k) {
                let bytes = pd.records.as_ref().map_or(0, |r| r.len() as u64);
                broker.replication_quotas.follower.record(rate, bytes);
            }
            // A partition that failed waits alone; the others go on.
            if let Next::Backoff = apply(k, f, following(leader, f), pd, progress).await {
                delay(progress, k);
            }
        }
    }
    Next::Again
}

/// This broker's `follower.replication.throttled.rate` and the partitions
/// of `a` it throttles: listed as `partition:<this broker>` in their
/// topic's `follower.replication.throttled.replicas`, and this replica out
/// of the ISR (Kafka spares in-sync replicas). None without a rate.
fn follower_throttle(broker: &Broker, me: NodeId, a: &Assignment) -> (Option<u64>, HashSet<TopicPartition>) {
    let image = broker.topics.image();
    let rate = throttle::rate(&image, me, throttle::FOLLOWER_RATE, broker.config.value_of(throttle::FOLLOWER_RATE));
    if rate.is_none() {
        return (None, HashSet::new());
    }
    let throttled = a
        .partitions
        .iter()
        .filter(|(k, f)| {
            throttle::throttled(&image, &k.topic, k.partition, me, throttle::FOLLOWER_REPLICAS)
                && !f.partition.in_sync(me)
        })
        .map(|(k, _)| k.clone())
        .collect();
    (rate, throttled)
}

/// Truncates the partitions at a leader epoch not seen before to what they
/// share with the leader (`truncation`), asking the leader with one
/// OffsetForLeaderEpoch as replica `me`; a partition without an epoch of
/// its own (an empty log) has nothing to compare and cuts to its HW. A
/// partition whose truncation takes another round stays for the next.
async fn truncate(
    c: &Connection,
    me: NodeId,
    leader: NodeId,
    a: &Assignment,
    progress: &mut HashMap<TopicPartition, Progress>,
) -> Next {
    let pending: Vec<(&TopicPartition, &Followed)> = a
        .partitions
        .iter()
        .filter(|(k, f)| progress.get(*k).is_none_or(|p| p.truncated_for != Some(f.leader_epoch)))
        .filter(|(k, f)| ready(progress, k, f, Instant::now()))
        .collect();
    if pending.is_empty() {
        return Next::Again;
    }
    let mut req = OffsetForLeaderEpochRequest::default();
    let mut asked = Vec::new();
    for (k, f) in &pending {
        let Some(latest) = f.partition.log().latest_epoch() else {
            let hw = f.partition.high_watermark();
            match cut(k, f, following(leader, f), hw).await {
                Acted::Done => progress.entry((*k).clone()).or_default().truncated_for = Some(f.leader_epoch),
                Acted::Stale => progress.entry((*k).clone()).or_default().parked_at = Some(f.leader_epoch),
                Acted::Failed => delay(progress, k),
            }
            continue;
        };
        let mut p = OffsetForLeaderPartition::default();
        p.partition = k.partition;
        p.current_leader_epoch = f.leader_epoch.get();
        p.leader_epoch = latest.get();
        match req.topics.last_mut() {
            Some(t) if t.topic.as_str() == &*k.topic => t.partitions.push(p),
            _ => {
                let mut t = OffsetForLeaderTopic::default();
                t.topic = TopicName(StrBytes::from_string(k.topic.to_string()));
                t.partitions.push(p);
                req.topics.push(t);
            }
        }
        asked.push((*k, *f));
    }
    if asked.is_empty() {
        return Next::Again;
    }
    let version = match c.version::<OffsetForLeaderEpochRequest>() {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "the leader speaks no OffsetForLeaderEpoch version we do");
            return Next::Backoff;
        }
    };
    if version >= 3 {
        req.replica_id = BrokerId(me.get());
    }
    let resp = match c.send(&req, version).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "OffsetForLeaderEpoch to the leader failed");
            return Next::Backoff;
        }
    };
    for t in &resp.topics {
        for answer in &t.partitions {
            let Some((k, f)) =
                asked.iter().find(|(k, _)| *k.topic == *t.topic.as_str() && k.partition == answer.partition)
            else {
                continue;
            };
            if let Some(e) = ResponseError::try_from_code(answer.error_code) {
                tracing::debug!(topic = %k.topic, partition = k.partition, error = ?e, "OffsetForLeaderEpoch refused: retrying");
                delay(progress, k);
                continue;
            }
            let log = f.partition.log();
            let decided = truncation(
                Offset(log.log_end_offset()),
                f.partition.high_watermark(),
                LeaderEpoch::from_wire(answer.leader_epoch),
                (answer.end_offset >= 0).then_some(Offset(answer.end_offset)),
                |e| log.end_offset_for_epoch(e),
            );
            match cut(k, f, following(leader, f), decided.to).await {
                Acted::Done if decided.complete => {
                    progress.entry((*k).clone()).or_default().truncated_for = Some(f.leader_epoch)
                }
                Acted::Done => {}
                Acted::Stale => progress.entry((*k).clone()).or_default().parked_at = Some(f.leader_epoch),
                Acted::Failed => delay(progress, k),
            }
        }
    }
    Next::Again
}

/// Cuts a followed partition's log to `to` (nothing when it ends there),
/// as a follower of `of` (refused, `Stale`, once it follows another).
async fn cut(k: &TopicPartition, f: &Followed, of: Following, to: Offset) -> Acted {
    let part = f.partition.clone();
    if to.get() >= part.log().log_end_offset() {
        return Acted::Done;
    }
    tracing::info!(topic = %k.topic, partition = k.partition, to = to.get(), end = part.log().log_end_offset(),
        epoch = f.leader_epoch.get(), "truncating a divergent tail");
    match tokio::task::spawn_blocking(move || part.truncate_to(of, to)).await {
        Ok(Ok(())) => Acted::Done,
        Ok(Err(e)) if is_stale(&e) => {
            tracing::info!(topic = %k.topic, partition = k.partition, error = %e,
                "not truncating: the partition follows another leadership now");
            Acted::Stale
        }
        Ok(Err(e)) => {
            tracing::error!(topic = %k.topic, partition = k.partition, error = %e, "truncating a follower failed");
            Acted::Failed
        }
        Err(e) => {
            tracing::error!(error = %e, "the truncation task failed");
            Acted::Failed
        }
    }
}

/// Applies one partition's answer.
async fn apply(
    k: &TopicPartition,
    f: &Followed,
    of: Following,
    pd: &PartitionData,
    progress: &mut HashMap<TopicPartition, Progress>,
) -> Next {
    let part = &f.partition;
    match ResponseError::try_from_code(pd.error_code) {
        None => {}
        // This node's epoch is older than the leader's: the image that
        // says so is on its way.
        Some(ResponseError::FencedLeaderEpoch) => {
            tracing::info!(topic = %k.topic, partition = k.partition, epoch = f.leader_epoch.get(),
                "the leader has a newer leader epoch: waiting for a newer image");
            progress.entry(k.clone()).or_default().parked_at = Some(f.leader_epoch);
            return Next::Again;
        }
        // The leader has not applied the image that makes it leader (or
        // made the topic) yet, or it stopped leading: retry after the
        // backoff; a newer image may re-target this partition meanwhile.
        Some(
            e @ (ResponseError::NotLeaderOrFollower
            | ResponseError::UnknownLeaderEpoch
            | ResponseError::UnknownTopicOrPartition
            | ResponseError::UnknownTopicId),
        ) => {
            tracing::debug!(topic = %k.topic, partition = k.partition, error = ?e, epoch = f.leader_epoch.get(),
                "the leader refused the partition: retrying after the backoff");
            return Next::Backoff;
        }
        Some(ResponseError::OffsetOutOfRange) => {
            // Below the leader's log start: start over there; above its
            // end (this node had a tail the leader lost): cut to its HW.
            let end = part.log().log_end_offset();
            let p = part.clone();
            let (start_over, to) = (end < pd.log_start_offset, pd.log_start_offset.max(0));
            let hw = Offset(pd.high_watermark.max(0));
            tracing::warn!(topic = %k.topic, partition = k.partition, end, leader_start = pd.log_start_offset,
                leader_hw = hw.get(), "fetch offset out of range on the leader");
            let done = tokio::task::spawn_blocking(move || {
                if start_over {
                    p.start_over_at(of, Offset(to))
                } else {
                    p.truncate_to(of, hw)
                }
            })
            .await;
            return match done {
                Ok(Ok(())) => Next::Again,
                Ok(Err(e)) if is_stale(&e) => {
                    drop_stale(progress, k, f, &e);
                    Next::Again
                }
                _ => Next::Backoff,
            };
        }
        Some(e) => {
            tracing::warn!(topic = %k.topic, partition = k.partition, error = ?e, "replica fetch error");
            return Next::Backoff;
        }
    }
    if let Some(records) = pd.records.clone().filter(|r| !r.is_empty()) {
        let p = part.clone();
        let appended = tokio::task::spawn_blocking(move || p.append_as_follower(of, &records)).await;
        match appended {
            Ok(Ok(_)) => {}
            Ok(Err(e)) if is_stale(&e) => {
                drop_stale(progress, k, f, &e);
                return Next::Again;
            }
            Ok(Err(e)) => {
                tracing::error!(topic = %k.topic, partition = k.partition, error = %e, "appending replicated batches failed");
                return Next::Backoff;
            }
            Err(e) => {
                tracing::error!(error = %e, "the follower append task failed");
                return Next::Backoff;
            }
        }
        // Durable mode: what the next fetch reports is on disk.
        let log = part.log();
        if log.is_durable_mode() {
            if let Err(e) = log.wait_durable(log.log_end_offset()).await {
                tracing::error!(topic = %k.topic, partition = k.partition, error = %e, "fsync of replicated batches failed");
                return Next::Backoff;
            }
        }
    }
    if let Err(e) = part.follow_leader_high_watermark(of, Offset(pd.high_watermark)) {
        drop_stale(progress, k, f, &e);
        return Next::Again;
    }
    part.record_follower_lag(Offset(pd.high_watermark));
    Next::Again
}

/// The Fetch for `partitions`, each from its log end, as replica `me`.
fn request(me: NodeId, version: i16, partitions: &[(&TopicPartition, &Followed)]) -> FetchRequest {
    let mut req = FetchRequest::default();
    if version >= 15 {
        let mut state = ReplicaState::default();
        state.replica_id = BrokerId(me.get());
        req.replica_state = state;
    } else {
        req.replica_id = BrokerId(me.get());
    }
    req.max_wait_ms = FETCH_WAIT_MAX_MS;
    req.min_bytes = 1;
    req.max_bytes = FETCH_RESPONSE_MAX_BYTES;
    // Sessionless (full fetch each time).
    req.session_id = 0;
    req.session_epoch = -1;
    for (k, f) in partitions {
        let log = f.partition.log();
        let mut p = FetchPartition::default();
        p.partition = k.partition;
        p.current_leader_epoch = f.leader_epoch.get();
        p.fetch_offset = log.log_end_offset();
        p.log_start_offset = log.log_start_offset();
        p.partition_max_bytes = FETCH_MAX_BYTES;
        let same_topic = req.topics.last().is_some_and(|t: &FetchTopic| {
            if version >= 13 {
                t.topic_id == f.topic_id
            } else {
                t.topic.as_str() == &*k.topic
            }
        });
        if !same_topic {
            let mut t = FetchTopic::default();
            if version >= 13 {
                t.topic_id = f.topic_id;
            } else {
                t.topic = TopicName(StrBytes::from_string(k.topic.to_string()));
            }
            req.topics.push(t);
        }
        if let Some(t) = req.topics.last_mut() {
            t.partitions.push(p);
        }
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::{LeaderAndIsr, Partition};
    use bytes::Bytes;
    use kaskade_log::{LogConfig, LogManager, ManagerOptions, TopicPartition};

    fn state(leader: i32) -> LeaderAndIsr {
        LeaderAndIsr {
            leader: Some(NodeId(leader)),
            epoch: LeaderEpoch(0),
            isr: vec![NodeId(1), NodeId(2)],
            replicas: vec![NodeId(1), NodeId(2)],
        }
    }

    /// Node `node`'s replica of t-0, node 1 leading.
    fn replica(dir: &std::path::Path, node: i32) -> (Arc<LogManager>, Arc<Partition>) {
        let (mgr, _) = LogManager::open(dir, ManagerOptions::default(), |_| LogConfig::default()).expect("open");
        let log = mgr.get_or_create(&TopicPartition::new("t", 0), LogConfig::default()).expect("log");
        (mgr, Partition::new(NodeId(node), log, &state(1)).expect("partition"))
    }

    fn answer(error: Option<ResponseError>, records: Option<Bytes>, hw: i64, log_start: i64) -> PartitionData {
        let mut pd = PartitionData::default();
        pd.error_code = error.map_or(0, |e| e.code());
        pd.records = records;
        pd.high_watermark = hw;
        pd.log_start_offset = log_start;
        pd
    }

    #[tokio::test]
    async fn a_fetch_answer_is_appended_or_handled_by_its_error() {
        let (ld, fd) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
        let (lm, leader) = replica(ld.path(), 1);
        let (fm, follower) = replica(fd.path(), 2);
        for n in [3, 2] {
            leader.append_as_leader(Bytes::from(kaskade_log::batch::build::filled(n, 10, 0, 1)), None).expect("append");
        }
        let fetched = leader.log().read(0, 1 << 20, None).expect("read").records.expect("records");
        let key = TopicPartition::new("t", 0);
        let f = Followed { partition: follower.clone(), topic_id: uuid::Uuid::nil(), leader_epoch: LeaderEpoch(0) };
        let of = following(NodeId(1), &f);
        let mut progress = HashMap::new();

        // A corrupt answer: nothing appended, back off.
        let mut bad = fetched.to_vec();
        bad[kaskade_log::batch::HEADER_LEN + 2] ^= 0xff;
        let next = apply(&key, &f, of, &answer(None, Some(Bytes::from(bad)), 5, 0), &mut progress).await;
        assert!(matches!(next, Next::Backoff));
        assert_eq!(follower.log().log_end_offset(), 0);
        assert_eq!(follower.follower_lag(), None, "no lag before a fetch was applied");

        // The batches: appended (durable before the next fetch), HW followed.
        let next = apply(&key, &f, of, &answer(None, Some(fetched.clone()), 3, 0), &mut progress).await;
        assert!(matches!(next, Next::Again));
        assert_eq!(follower.log().log_end_offset(), 5);
        assert!(follower.log().durable_end() >= 5, "on disk before the next fetch reports it");
        assert_eq!(follower.high_watermark(), Offset(3));
        // Caught up with the leader's HW: no lag; an answer with a later HW
        // and no records (the rest did not fit) leaves it behind by that much.
        assert_eq!(follower.follower_lag(), Some(0));
        let next = apply(&key, &f, of, &answer(None, None, 9, 0), &mut progress).await;
        assert!(matches!(next, Next::Again));
        assert_eq!(follower.follower_lag(), Some(4));

        // A leader that has not caught up with the image: retry later.
        let next =
            apply(&key, &f, of, &answer(Some(ResponseError::NotLeaderOrFollower), None, -1, -1), &mut progress).await;
        assert!(matches!(next, Next::Backoff));
        assert!(!parked(&progress, &key, &f));
        // A newer epoch on the leader: wait for the image that says so.
        let next =
            apply(&key, &f, of, &answer(Some(ResponseError::FencedLeaderEpoch), None, -1, -1), &mut progress).await;
        assert!(matches!(next, Next::Again));
        assert!(parked(&progress, &key, &f));

        // The leader's log starts past this one's end: start over there.
        let next =
            apply(&key, &f, of, &answer(Some(ResponseError::OffsetOutOfRange), None, 40, 30), &mut progress).await;
        assert!(matches!(next, Next::Again));
        assert_eq!((follower.log().log_start_offset(), follower.log().log_end_offset()), (30, 30));
        lm.shutdown().expect("shutdown");
        fm.shutdown().expect("shutdown");
    }

    #[tokio::test]
    async fn an_answer_from_a_deposed_leader_is_dropped_and_the_partition_waits_for_its_new_assignment() {
        let (ld, fd) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
        let (lm, leader) = replica(ld.path(), 1);
        let (fm, follower) = replica(fd.path(), 2);
        leader.append_as_leader(Bytes::from(kaskade_log::batch::build::filled(5, 10, 0, 1)), None).expect("append");
        let fetched = leader.log().read(0, 1 << 20, None).expect("read").records.expect("records");
        let key = TopicPartition::new("t", 0);
        let f = Followed { partition: follower.clone(), topic_id: uuid::Uuid::nil(), leader_epoch: LeaderEpoch(0) };
        let of = following(NodeId(1), &f);
        let mut progress = HashMap::new();
        let next = apply(&key, &f, of, &answer(None, Some(fetched.clone()), 5, 0), &mut progress).await;
        assert!(matches!(next, Next::Again));
        assert_eq!((follower.log().log_end_offset(), follower.high_watermark()), (5, Offset(5)));

        // Node 3 is elected at epoch 1; node 1's answers to requests made
        // at epoch 0 arrive afterwards.
        follower
            .apply(&LeaderAndIsr {
                leader: Some(NodeId(3)),
                epoch: LeaderEpoch(1),
                isr: vec![NodeId(3), NodeId(2)],
                replicas: vec![NodeId(1), NodeId(2), NodeId(3)],
            })
            .expect("follow 3");
        // Out of range with the deposed leader's HW 0: no cut.
        let next = apply(&key, &f, of, &answer(Some(ResponseError::OffsetOutOfRange), None, 0, 0), &mut progress).await;
        assert!(matches!(next, Next::Again));
        assert_eq!(follower.log().log_end_offset(), 5, "nothing cut for the deposed leader");
        assert!(parked(&progress, &key, &f), "waits for the assignment of its new leader");
        // Records (its divergent tail): not appended.
        let next = apply(&key, &f, of, &answer(None, Some(fetched), 10, 0), &mut progress).await;
        assert!(matches!(next, Next::Again));
        assert_eq!(follower.log().log_end_offset(), 5, "nothing appended from the deposed leader");
        // The new assignment (node 3 at epoch 1) is not parked.
        let moved = Followed { leader_epoch: LeaderEpoch(1), ..f.clone() };
        assert!(!parked(&progress, &key, &moved));
        // A truncation decided from the deposed leader's answer: stale.
        assert!(matches!(cut(&key, &f, of, Offset(0)).await, Acted::Stale));
        assert_eq!(follower.log().log_end_offset(), 5);
        assert!(matches!(cut(&key, &moved, following(NodeId(3), &moved), Offset(0)).await, Acted::Done));
        assert_eq!(follower.log().log_end_offset(), 0, "the new leader's cut is made");
        lm.shutdown().expect("shutdown");
        fm.shutdown().expect("shutdown");
    }
}
