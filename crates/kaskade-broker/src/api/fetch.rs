//! Fetch: read whole batches through the partition layer
//! (`Partition::read`: below the high watermark, or the last stable offset
//! under read_committed), after each partition's `current_leader_epoch`
//! check (`Partition::check_epoch`), with long polling (`min_bytes` /
//! `max_wait_ms`) parked on the partitions' high-watermark notifications,
//! byte limits per partition and per response (KIP-74), and incremental
//! fetch sessions (KIP-227).
//!
//! A Fetch carrying a replica id (the header's `replica_id` up to v14,
//! `ReplicaState` from v15) comes from a follower replica: its fetch offset
//! is its position, recorded on the leader before the read
//! (`Partition::record_follower_fetch`, which may move the HW); it reads up
//! to the log end and its long poll parks on the log end. A replica id that
//! is not one of the partition's replicas gets no records (Kafka's
//! `updateFollowerFetchState` refusing an unassigned replica).
//!
//! Reads run on the async worker when everything they touch is in the page
//! cache (`Partition::read_resident`; a consumer or follower near the log
//! end reads what was just appended), else on the blocking pool
//! (`spawn_blocking`): a consumer far behind reads segments that may not be
//! in the page cache. A fetch whose
//! partitions are all at their end (a caught-up consumer's next long poll)
//! needs no read: its positions come from memory and it parks at once.
//!
//! Fetch from the closest replica (KIP-392): a consumer's Fetch of v11+
//! carries client metadata (its `RackId`), and then any in-sync replica may
//! serve it, up to that replica's HW (a follower knows the HW from its
//! leader's answers); a replica out of the ISR or no longer a replica
//! answers NOT_LEADER_OR_FOLLOWER, which sends the client back to the
//! leader. The leader, with `replica.selector.class` set, answers a
//! consumer in another rack with no records and the `PreferredReadReplica`
//! `replica::selector` chose, at once (no long poll), as Kafka's
//! `ReplicaManager.findPreferredReadReplica`.
//!
//! A read yields file ranges, not bytes ([`FetchAnswer`]): plaintext
//! connections send them with `sendfile(2)` (`network::fetch_frame`,
//! [`route_ranged`]); the route table's [`route`] reads them into the
//! response (the buffered path, for other transports and callers).

use kafka_protocol::ResponseError;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use kafka_protocol::messages::fetch_response::{AbortedTransaction, FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId, RequestHeader, RequestKind, TopicName};
use kafka_protocol::protocol::StrBytes;
use kaskade_log::FileRange;
use kaskade_types::{LeaderEpoch, NodeId, Offset};
use tokio::time::Instant;

use super::fetch_session::{PartKey, PartState, SessionMode};
use crate::broker::Broker;
use crate::error::BrokerError;
use crate::network::fetch_frame::FetchAnswer;
use crate::partition::{Isolation, Partition, PartitionError, PartitionRead};
use crate::replica::selector::{self, Candidate, ReplicaSelector};

/// One partition as the request (or the session) names it.
struct Named {
    key: PartKey,
    topic_id: uuid::Uuid,
    fetch_offset: i64,
    max_bytes: i32,
    current_leader_epoch: Option<LeaderEpoch>,
    /// Set when the topic is not known.
    error: Option<ResponseError>,
}

/// One partition of this fetch, resolved.
struct Wanted {
    key: PartKey,
    topic_id: uuid::Uuid,
    fetch_offset: i64,
    max_bytes: i32,
    /// `None` exactly when `error` is set: the partition cannot be served.
    partition: Option<Arc<Partition>>,
    error: Option<ResponseError>,
}

struct Got {
    error: Option<ResponseError>,
    hw: i64,
    lso: i64,
    log_start: i64,
    records: Option<FileRange>,
    /// read_committed: the aborted transactions the records overlap.
    aborted: Vec<kaskade_log::txn::AbortedTxn>,
}

impl Got {
    fn refused(error: ResponseError) -> Got {
        Got { error: Some(error), hw: -1, lso: -1, log_start: -1, records: None, aborted: Vec::new() }
    }
}

/// One partition to read: the partition, its fetch offset and its byte
/// limit (`None`: positions only, no records).
type ReadPlan = (Option<Arc<Partition>>, i64, Option<i32>);

/// Reads every partition within `max_bytes`. Under read_committed a read
/// stops at the last stable offset and names the aborted transactions it
/// overlaps, so the client can drop their records.
fn read_all(wanted: &[ReadPlan], max_bytes: i32, isolation: Isolation) -> Vec<Got> {
    read_all_with(wanted, max_bytes, isolation, |p, offset, max| Some(p.read(offset, max, isolation)))
        .unwrap_or_default()
}

/// [`read_all`] from the page cache only, on the async worker (no trip
/// through the blocking pool): `None` as soon as one partition's read would
/// wait for the disk (`Partition::read_resident`); then `read_all` on the
/// blocking pool reads everything again.
fn read_all_resident(wanted: &[ReadPlan], max_bytes: i32, isolation: Isolation) -> Option<Vec<Got>> {
    read_all_with(wanted, max_bytes, isolation, |p, offset, max| p.read_resident(offset, max, isolation))
}

fn read_all_with(
    wanted: &[ReadPlan],
    max_bytes: i32,
    isolation: Isolation,
    read: impl Fn(&Partition, i64, Option<usize>) -> Option<PartitionRead>,
) -> Option<Vec<Got>> {
    let mut budget = max_bytes.max(0) as usize;
    let mut any = false;
    wanted
        .iter()
        .map(|(partition, offset, pmax)| {
            let Some(partition) = partition else { return Some(Got::refused(ResponseError::UnknownTopicOrPartition)) };
            let read = match pmax {
                Some(pmax) => {
                    let want = ((*pmax).max(0) as usize).min(budget);
                    // Budget spent: report positions only.
                    read(partition, *offset, (want > 0 || !any).then_some(want))?
                }
                None => read(partition, *offset, None)?,
            };
            let (hw, lso, log_start) = (read.high_watermark, read.last_stable_offset, read.log_start_offset);
            match read.records {
                Ok(records) => {
                    let records = records.filter(|r| !any || r.len() <= budget);
                    if let Some(r) = &records {
                        budget = budget.saturating_sub(r.len());
                        any = true;
                    }
                    // Kafka bounds the list by what the read returned, not by
                    // the LSO: the answer stays proportional to the data.
                    let aborted = match &records {
                        Some(r) if isolation == Isolation::ReadCommitted => {
                            partition.aborted_transactions(*offset, Offset(r.next_offset()))
                        }
                        _ => Vec::new(),
                    };
                    Some(Got { error: None, hw, lso, log_start, records, aborted })
                }
                Err(e) => Some(Got {
                    error: Some(e.response_error()),
                    hw,
                    lso,
                    log_start,
                    records: None,
                    aborted: Vec::new(),
                }),
            }
        })
        .collect()
}

/// The answer of `read_all` when every partition is served here and already
/// at its end (a caught-up consumer's next long poll): positions only, from
/// memory, without a trip through the blocking pool. `None` otherwise.
fn read_all_at_end(wanted: &[Wanted], isolation: Isolation) -> Option<Vec<Got>> {
    wanted
        .iter()
        .map(|w| {
            let read = w.partition.as_ref()?.read_at_end(w.fetch_offset, isolation)?;
            let (hw, lso, log_start) = (read.high_watermark, read.last_stable_offset, read.log_start_offset);
            debug_assert!(matches!(read.records, Ok(None)), "nothing is read at the end");
            Some(Got { error: None, hw, lso, log_start, records: None, aborted: Vec::new() })
        })
        .collect()
}

/// The buffered answer: the ranges' bytes read into the response.
pub async fn handle(broker: &Arc<Broker>, version: i16, req: FetchRequest) -> Result<FetchResponse, BrokerError> {
    let answer = answer(broker, version, req).await?;
    if answer.ranges.iter().all(Option::is_none) {
        return Ok(answer.response);
    }
    tokio::task::spawn_blocking(move || answer.into_buffered())
        .await
        .map_err(|e| BrokerError::internal(format!("fetch read task failed: {e}")))?
        .map_err(|e| BrokerError::internal(format!("reading fetched records: {e}")))
}

/// The Fetch handler for connections that send file ranges themselves.
pub fn route_ranged(
    broker: Arc<Broker>,
    header: RequestHeader,
    body: RequestKind,
) -> BoxFuture<'static, Result<FetchAnswer, BrokerError>> {
    Box::pin(async move {
        let request = crate::request_body!(body, Fetch)?;
        answer(&broker, header.request_api_version, request).await
    })
}

/// The answer, with each partition's records as a file range.
async fn answer(broker: &Arc<Broker>, version: i16, req: FetchRequest) -> Result<FetchAnswer, BrokerError> {
    let mut resp = FetchResponse::default();
    let image = broker.topics.image();
    let by_id = version >= 13;
    let resolve = |name: &str, id: &uuid::Uuid| -> Option<(String, uuid::Uuid)> {
        let t = if by_id { image.topic_by_id(id) } else { image.topic(name) };
        t.map(|t| (t.name.clone(), t.id))
    };
    let unknown = if by_id { ResponseError::UnknownTopicId } else { ResponseError::UnknownTopicOrPartition };

    let mode = match broker.fetch_sessions.begin(req.session_id, req.session_epoch) {
        Ok(m) => m,
        Err(c) => {
            resp.error_code = c.code();
            resp.session_id = req.session_id;
            return Ok(FetchAnswer { response: resp, ranges: Vec::new() });
        }
    };

    // The partitions named in this request.
    let mut named = Vec::new();
    for t in &req.topics {
        let resolved = resolve(t.topic.as_str(), &t.topic_id);
        for p in &t.partitions {
            let (key, topic_id, error) = match &resolved {
                Some((name, id)) => (PartKey { topic: name.clone(), partition: p.partition }, *id, None),
                None => (PartKey { topic: t.topic.to_string(), partition: p.partition }, t.topic_id, Some(unknown)),
            };
            named.push(Named {
                key,
                topic_id,
                fetch_offset: p.fetch_offset,
                max_bytes: p.partition_max_bytes,
                current_leader_epoch: LeaderEpoch::from_wire(p.current_leader_epoch),
                error,
            });
        }
    }

    let session_id = match mode {
        SessionMode::Sessionless => 0,
        SessionMode::New(id) | SessionMode::Incremental(id) => id,
    };
    // Session bookkeeping: incremental requests update the remembered set.
    let wanted_keys: Vec<Named> = match mode {
        SessionMode::Sessionless => named,
        SessionMode::New(id) | SessionMode::Incremental(id) => {
            let incremental = matches!(mode, SessionMode::Incremental(_));
            let forgotten: Vec<PartKey> = req
                .forgotten_topics_data
                .iter()
                .flat_map(|f| {
                    let name =
                        resolve(f.topic.as_str(), &f.topic_id).map(|(n, _)| n).unwrap_or_else(|| f.topic.to_string());
                    f.partitions.iter().map(move |p| PartKey { topic: name.clone(), partition: *p })
                })
                .collect();
            broker
                .fetch_sessions
                .with(id, |s| {
                    if incremental {
                        for k in &forgotten {
                            s.parts.shift_remove(k);
                        }
                    }
                    let mut errors = Vec::new();
                    for n in named {
                        if n.error.is_some() {
                            errors.push(n);
                            continue;
                        }
                        let st = s.parts.entry(n.key).or_insert(PartState {
                            fetch_offset: n.fetch_offset,
                            max_bytes: n.max_bytes,
                            last_hw: -2,
                            last_log_start: -2,
                            topic_id: n.topic_id,
                            current_leader_epoch: n.current_leader_epoch,
                        });
                        st.fetch_offset = n.fetch_offset;
                        st.max_bytes = n.max_bytes;
                        st.topic_id = n.topic_id;
                        st.current_leader_epoch = n.current_leader_epoch;
                    }
                    let mut all: Vec<Named> = s
                        .parts
                        .iter()
                        .map(|(k, st)| Named {
                            key: k.clone(),
                            topic_id: st.topic_id,
                            fetch_offset: st.fetch_offset,
                            max_bytes: st.max_bytes,
                            current_leader_epoch: st.current_leader_epoch,
                            error: None,
                        })
                        .collect();
                    all.extend(errors);
                    all
                })
                .unwrap_or_default()
        }
    };
    // A consumer's fetch with client metadata (v11+) may be served by an
    // in-sync follower (KIP-392; Kafka's `fetchOnlyFromLeader` is false).
    let follower = replica_id(version, &req);
    let client_rack = (follower.is_none() && version >= 11).then(|| req.rack_id.as_str());
    let me = broker.node_id();
    // Each partition through the partition layer: hosted here, and the
    // client's leader epoch is the current one.
    let wanted: Vec<Wanted> = wanted_keys
        .into_iter()
        .map(|n| {
            let resolved = match n.error {
                Some(e) => Err(e),
                None => broker
                    .topics
                    .partition(&n.key.topic, n.key.partition)
                    .and_then(|p| {
                        let checked = p.check_epoch(n.current_leader_epoch);
                        may_serve(checked, client_rack.is_some(), || p.in_sync(me)).map(|()| p)
                    })
                    .map_err(|e| e.response_error()),
            };
            let (partition, error) = match resolved {
                Ok(p) => (Some(p), None),
                Err(e) => (None, Some(e)),
            };
            Wanted {
                key: n.key,
                topic_id: n.topic_id,
                fetch_offset: n.fetch_offset,
                max_bytes: n.max_bytes,
                partition,
                error,
            }
        })
        .collect();

    // A consumer the leader sends to another replica: positions only.
    let preferred: Vec<Option<NodeId>> = match client_rack {
        Some(rack) if !rack.is_empty() => {
            let chosen = ReplicaSelector::from_config(broker.config.value_of(selector::KEY).as_deref());
            wanted
                .iter()
                .map(|w| w.partition.as_ref().and_then(|p| preferred_replica(broker, chosen, p, rack, w)))
                .collect()
        }
        _ => vec![None; wanted.len()],
    };

    // A follower's fetch: its positions first (they may move the HW it is
    // answered with); an unassigned replica reads nothing.
    let positions_only: Vec<bool> = wanted
        .iter()
        .map(|w| match (follower, &w.partition) {
            (Some(node), Some(p)) => !p.record_follower_fetch(node, Offset(w.fetch_offset)),
            _ => false,
        })
        .collect();
    if let Some(node) = follower {
        for (w, _) in wanted.iter().zip(&positions_only).filter(|(_, only)| **only) {
            tracing::warn!(replica = node.get(), topic = %w.key.topic, partition = w.key.partition,
                "a fetch as replica from a broker that is not one of the partition's replicas: no records");
        }
    }

    // Replication throttles (`replica::throttle`): the partitions whose
    // records this follower gets only while the leader's quota allows.
    let throttle = follower.map(|node| leader_throttle(broker, node, &wanted, &positions_only));

    // Read, and long-poll until min_bytes or the deadline.
    let deadline = Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let min_bytes = req.min_bytes.max(0) as usize;
    // A follower waits for new data (the log end), a consumer for newly
    // committed data (the HW).
    let mut watches: Vec<_> = wanted
        .iter()
        .filter_map(|w| {
            w.partition.as_ref().map(|p| match follower {
                Some(_) => p.subscribe_log_end(),
                None => p.subscribe_high_watermark(),
            })
        })
        .collect();
    let isolation = match follower {
        Some(_) => Isolation::LogEnd,
        None => Isolation::from_wire(req.isolation_level),
    };
    let got = loop {
        for w in &mut watches {
            w.borrow_and_update();
        }
        // A follower's position again: the log end it was clamped to may
        // have moved since (`Partition::record_follower_fetch`).
        if let Some(node) = follower {
            for (w, only) in wanted.iter().zip(&positions_only) {
                if let (Some(p), false) = (&w.partition, only) {
                    p.record_follower_fetch(node, Offset(w.fetch_offset));
                }
            }
        }
        let held: Vec<bool> = match &throttle {
            Some((rate, throttled)) if throttled.iter().any(|t| *t) => {
                let exceeded = broker.replication_quotas.leader.exceeded(*rate);
                throttled.iter().map(|t| *t && exceeded).collect()
            }
            _ => vec![false; wanted.len()],
        };
        let plan: Vec<_> = wanted
            .iter()
            .zip(positions_only.iter().zip(&held).zip(&preferred))
            .map(|(w, ((only, held), elsewhere))| {
                let read = !*only && !*held && elsewhere.is_none();
                (w.partition.clone(), w.fetch_offset, read.then_some(w.max_bytes))
            })
            .collect();
        let max_bytes = req.max_bytes;
        let resident =
            || read_all_at_end(&wanted, isolation).or_else(|| read_all_resident(&plan, max_bytes, isolation));
        let got = match resident() {
            Some(got) => got,
            None => match tokio::task::spawn_blocking(move || read_all(&plan, max_bytes, isolation)).await {
                Ok(g) => g,
                Err(_) => {
                    resp.error_code = ResponseError::UnknownServerError.code();
                    return Ok(FetchAnswer { response: resp, ranges: Vec::new() });
                }
            },
        };
        let bytes: usize = got.iter().filter_map(|g| g.records.as_ref().map(FileRange::len)).sum();
        // An error or a preferred read replica answers at once (Kafka's
        // fetch completes without waiting for either).
        let errors = got.iter().zip(&wanted).any(|(g, w)| g.error.is_some() || w.error.is_some())
            || preferred.iter().any(Option::is_some);
        if min_bytes == 0 || bytes >= min_bytes || errors || Instant::now() >= deadline || watches.is_empty() {
            break got;
        }
        let changed = futures::future::select_all(watches.iter_mut().map(|w| Box::pin(w.changed())));
        tokio::select! {
            _ = changed => {}
            // Deadline or shutdown: answer with what is there now.
            _ = tokio::time::sleep_until(deadline) => break got,
            _ = broker.stopping() => break got,
        }
    };

    if let Some((rate, throttled)) = &throttle {
        let bytes: u64 = got
            .iter()
            .zip(throttled)
            .filter(|(_, t)| **t)
            .filter_map(|(g, _)| g.records.as_ref().map(|r| r.len() as u64))
            .sum();
        if bytes > 0 {
            broker.replication_quotas.leader.record(*rate, bytes);
        }
    }

    // Build the response; incremental sessions send only partitions with news.
    let incremental = matches!(mode, SessionMode::Incremental(_));
    let mut entries = Vec::new();
    for ((w, g), elsewhere) in wanted.iter().zip(got).zip(&preferred) {
        let error = w.error.or(g.error);
        let has_news = if session_id != 0 {
            broker
                .fetch_sessions
                .with(session_id, |s| match s.parts.get_mut(&w.key) {
                    Some(st) => {
                        let news = error.is_some()
                            || elsewhere.is_some()
                            || g.records.is_some()
                            || st.last_hw != g.hw
                            || st.last_log_start != g.log_start;
                        st.last_hw = g.hw;
                        st.last_log_start = g.log_start;
                        news
                    }
                    None => true,
                })
                .unwrap_or(true)
        } else {
            true
        };
        if incremental && !has_news {
            continue;
        }
        let mut pd = PartitionData::default();
        pd.partition_index = w.key.partition;
        if let Some(e) = error {
            pd.error_code = e.code();
        }
        if let Some(node) = elsewhere {
            pd.preferred_read_replica = kafka_protocol::messages::BrokerId(node.get());
        }
        pd.high_watermark = g.hw;
        pd.last_stable_offset = g.lso;
        pd.log_start_offset = g.log_start;
        pd.aborted_transactions = (isolation == Isolation::ReadCommitted).then(|| {
            g.aborted
                .iter()
                .map(|a| {
                    let mut t = AbortedTransaction::default();
                    t.producer_id = ProducerId(a.producer_id);
                    t.first_offset = a.first_offset;
                    t
                })
                .collect()
        });
        crate::metrics::traffic::fetched(w.partition.as_deref().map(Partition::traffic), g.records.as_ref());
        // The range's bytes go in after encoding; the records stay empty here.
        pd.records = Some(Bytes::new());
        entries.push((w.key.topic.clone(), w.topic_id, pd, g.records));
    }
    if incremental {
        // A new session expects epoch 1 next; each incremental fetch moves it on.
        broker.fetch_sessions.with(session_id, |s| s.advance());
    }
    let mut ranges = Vec::with_capacity(entries.len());
    for (name, id, pd, range) in entries {
        ranges.push(range);
        match resp.responses.last_mut() {
            Some(t) if (by_id && t.topic_id == id) || (!by_id && t.topic.as_str() == name) => t.partitions.push(pd),
            _ => {
                let mut t = FetchableTopicResponse::default();
                t.topic = TopicName(StrBytes::from_string(name));
                t.topic_id = id;
                t.partitions.push(pd);
                resp.responses.push(t);
            }
        }
    }
    resp.session_id = session_id;
    Ok(FetchAnswer { response: resp, ranges })
}

/// The leader's throttle of follower `node`'s fetch: this broker's
/// `leader.replication.throttled.rate` and, per partition, whether it is
/// throttled (listed as `partition:<this broker>` in the topic's
/// `leader.replication.throttled.replicas`, and the follower not in the
/// ISR, as Kafka spares in-sync followers).
fn leader_throttle(broker: &Broker, node: NodeId, wanted: &[Wanted], only: &[bool]) -> (Option<u64>, Vec<bool>) {
    use crate::replica::throttle;
    let image = broker.topics.image();
    let me = broker.node_id();
    let rate = throttle::rate(&image, me, throttle::LEADER_RATE, broker.config.value_of(throttle::LEADER_RATE));
    let throttled = wanted
        .iter()
        .zip(only)
        .map(|(w, only)| match &w.partition {
            Some(p) if rate.is_some() && !*only => {
                throttle::throttled(&image, &w.key.topic, w.key.partition, me, throttle::LEADER_REPLICAS)
                    && !p.in_sync(node)
            }
            _ => false,
        })
        .collect();
    (rate, throttled)
}

/// Whether this replica serves a fetch, after the epoch check (`checked`):
/// the leader serves every fetch; a follower serves a consumer that sent
/// client metadata (v11+) while it is in the ISR (`in_sync`), up to its HW;
/// otherwise the check's error (NOT_LEADER_OR_FOLLOWER sends the client to
/// the leader; FENCED / UNKNOWN_LEADER_EPOCH as checked).
fn may_serve(
    checked: Result<(), PartitionError>,
    consumer_with_metadata: bool,
    in_sync: impl FnOnce() -> bool,
) -> Result<(), PartitionError> {
    match checked {
        Err(PartitionError::NotLeader) if consumer_with_metadata && in_sync() => Ok(()),
        other => other,
    }
}

/// The replica the leader sends consumer `w` in `client_rack` to (KIP-392),
/// when this node leads the partition: among its in-sync followers that are
/// registered and unfenced, as `selector` decides. The leader's rack is its
/// registered one.
fn preferred_replica(
    broker: &Broker,
    chosen: ReplicaSelector,
    partition: &Partition,
    client_rack: &str,
    w: &Wanted,
) -> Option<NodeId> {
    if chosen == ReplicaSelector::LeaderOnly {
        return None;
    }
    let followers = partition.in_sync_followers();
    if followers.is_empty() {
        return None;
    }
    let image = broker.topics.image();
    let brokers = image.brokers();
    let leader_rack = brokers.get(&broker.node_id()).and_then(|b| b.rack.as_deref());
    let candidates: Vec<Candidate<'_>> = followers
        .iter()
        .filter_map(|f| {
            let b = brokers.get(&f.node).filter(|b| !b.fenced)?;
            Some(Candidate {
                node: f.node,
                rack: b.rack.as_deref(),
                position: f.position,
                caught_up_ms: f.caught_up_ms,
            })
        })
        .collect();
    selector::preferred_read_replica(chosen, client_rack, leader_rack, Offset(w.fetch_offset), &candidates)
}

/// The replica a fetch comes from (`None`: a consumer): the header's
/// `replica_id` up to v14, `ReplicaState` from v15 (KIP-903), -1 for none.
fn replica_id(version: i16, req: &FetchRequest) -> Option<NodeId> {
    let id = if version >= 15 { req.replica_state.replica_id.0 } else { req.replica_id.0 };
    (id >= 0).then_some(NodeId(id))
}

crate::route_to!(Fetch, handle);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_follower_serves_only_consumers_with_client_metadata_while_in_sync() {
        let not_leader = || Err(PartitionError::NotLeader);
        assert!(may_serve(Ok(()), false, || false).is_ok(), "the leader serves everyone");
        assert!(may_serve(not_leader(), true, || true).is_ok(), "an in-sync follower, a v11+ consumer");
        let out_of_sync = may_serve(not_leader(), true, || false);
        assert!(matches!(out_of_sync, Err(PartitionError::NotLeader)), "out of the ISR: back to the leader");
        let old_client = may_serve(not_leader(), false, || true);
        assert!(matches!(old_client, Err(PartitionError::NotLeader)), "before v11: the leader only");
        let fenced = PartitionError::FencedLeaderEpoch { requested: LeaderEpoch(1), current: LeaderEpoch(2) };
        assert!(matches!(may_serve(Err(fenced), true, || true), Err(PartitionError::FencedLeaderEpoch { .. })));
    }
}
