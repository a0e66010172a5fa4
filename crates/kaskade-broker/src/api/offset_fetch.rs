//! OffsetFetch (v1..v9; batched groups from v8). An offset is answered
//! only once its OffsetCommit is replicated (`group::writes`). With
//! `require_stable` (v7+) the fetch first waits for the group's writes
//! pending now, as Kafka 4's does, and a partition whose offset a
//! still-open transaction has committed (TxnOffsetCommit) answers
//! UNSTABLE_OFFSET_COMMIT, so a read_committed consumer never starts from
//! an offset that may be rolled back. Never creates `__consumer_offsets`:
//! without it no group exists and none has committed offsets.

use kafka_protocol::ResponseError;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::group::records::OFFSETS_TOPIC;
use crate::group::{wire_leader_epoch, FetchedCommit, FetchedOffset};

/// (group, requested partitions or every committed one).
type GroupQuery = (String, Option<Vec<kaskade_types::TopicPartition>>);

/// A committed offset and its partition-level error.
type Fetched = (FetchedOffset, Option<ResponseError>);

/// The wire's committed offset when nothing is committed.
const NO_OFFSET: i64 = -1;

/// Committed offsets of one group, by topic in first-seen order.
fn by_topic(offsets: Vec<Fetched>) -> Vec<(String, Vec<Fetched>)> {
    let mut topics: Vec<(String, Vec<Fetched>)> = Vec::new();
    for o in offsets {
        match topics.iter_mut().find(|(t, _)| **t == *o.0.partition.topic) {
            Some((_, v)) => v.push(o),
            None => topics.push((o.0.partition.topic.to_string(), vec![o])),
        }
    }
    topics
}

/// A partition's committed offset, leader epoch and metadata in the wire's
/// terms: -1, -1 and "" when nothing is committed.
fn wire_commit(committed: Option<FetchedCommit>) -> (i64, i32, Option<StrBytes>) {
    match committed {
        Some(c) => (c.offset.get(), wire_leader_epoch(c.leader_epoch), Some(StrBytes::from_string(c.metadata))),
        None => (NO_OFFSET, wire_leader_epoch(None), Some(StrBytes::default())),
    }
}

/// An unknown group's answer: nothing committed for each requested
/// partition, nothing at all when all were asked for.
fn no_offsets(parts: Option<Vec<kaskade_types::TopicPartition>>) -> Vec<Fetched> {
    parts
        .unwrap_or_default()
        .into_iter()
        .map(|partition| (FetchedOffset { partition, committed: None }, None))
        .collect()
}

pub async fn handle(
    broker: &Broker,
    version: i16,
    req: OffsetFetchRequest,
) -> Result<OffsetFetchResponse, BrokerError> {
    let queries: Vec<GroupQuery> = if version >= 8 {
        req.groups
            .iter()
            .map(|g| {
                let parts = g.topics.as_ref().map(|ts| {
                    let tp = |t: &str, p: i32| kaskade_types::TopicPartition::new(t, p);
                    ts.iter().flat_map(|t| t.partition_indexes.iter().map(move |p| tp(&t.name, *p))).collect()
                });
                (g.group_id.0.to_string(), parts)
            })
            .collect()
    } else {
        let parts = req.topics.as_ref().map(|ts| {
            let tp = |t: &str, p: i32| kaskade_types::TopicPartition::new(t, p);
            ts.iter().flat_map(|t| t.partition_indexes.iter().map(move |p| tp(&t.name, *p))).collect()
        });
        vec![(req.group_id.0.to_string(), parts)]
    };
    let require_stable = version >= 7 && req.require_stable;
    let results = if broker.topics.image().topic(OFFSETS_TOPIC).is_none() {
        // No `__consumer_offsets`: no group exists (as ListGroups answers),
        // so no offset is committed: what the coordinator answers for an
        // unknown group. Asking it would create the topic for a read.
        queries.into_iter().map(|(group, parts)| (group, Ok(no_offsets(parts)))).collect()
    } else {
        // `require_stable` reads only once the groups' writes pending now
        // resolved (Kafka's write operation); a failed one answers the
        // group NOT_COORDINATOR, as Kafka remaps a failed write for
        // OffsetFetch.
        let failed = if require_stable {
            broker.groups.wait_stable(queries.iter().map(|(g, _)| g.clone()).collect()).await?
        } else {
            Default::default()
        };
        broker
            .groups
            .call_gated(move |engine, now, gate| {
                queries
                    .into_iter()
                    .map(|(group, parts)| {
                        let not_stable =
                            if failed.contains(&group) { Err(ResponseError::NotCoordinator) } else { Ok(()) };
                        let fetched = not_stable
                            .and_then(|()| gate.check(&group))
                            .and_then(|()| engine.fetch_offsets(now, &group, parts.as_deref()))
                            .map(|offsets| {
                                offsets
                                    .into_iter()
                                    .map(|mut o| {
                                        let unstable = require_stable
                                            && engine.has_pending_txn_offset(
                                                &group,
                                                &o.partition.topic,
                                                o.partition.partition,
                                            );
                                        if unstable {
                                            o.committed = None;
                                        }
                                        (o, unstable.then_some(ResponseError::UnstableOffsetCommit))
                                    })
                                    .collect::<Vec<_>>()
                            });
                        (group, fetched)
                    })
                    .collect::<Vec<_>>()
            })
            .await?
    };
    let mut resp = OffsetFetchResponse::default();
    for (group, result) in results {
        let (error, offsets) = match result {
            Ok(o) => (0, o),
            Err(e) => (e.code(), Vec::new()),
        };
        if version >= 8 {
            let mut g = OffsetFetchResponseGroup::default();
            g.group_id = GroupId(StrBytes::from_string(group));
            g.error_code = error;
            for (topic, parts) in by_topic(offsets) {
                let mut t = OffsetFetchResponseTopics::default();
                t.name = TopicName(StrBytes::from_string(topic));
                for (o, error) in parts {
                    let mut p = OffsetFetchResponsePartitions::default();
                    p.error_code = error.map_or(0, |e| e.code());
                    p.partition_index = o.partition.partition;
                    (p.committed_offset, p.committed_leader_epoch, p.metadata) = wire_commit(o.committed);
                    t.partitions.push(p);
                }
                g.topics.push(t);
            }
            resp.groups.push(g);
        } else {
            if version >= 2 {
                resp.error_code = error;
            }
            for (topic, parts) in by_topic(offsets) {
                let mut t = OffsetFetchResponseTopic::default();
                t.name = TopicName(StrBytes::from_string(topic));
                for (o, error) in parts {
                    let mut p = OffsetFetchResponsePartition::default();
                    p.error_code = error.map_or(0, |e| e.code());
                    p.partition_index = o.partition.partition;
                    let epoch;
                    (p.committed_offset, epoch, p.metadata) = wire_commit(o.committed);
                    // v5 added the field; older versions carry none.
                    p.committed_leader_epoch = if version >= 5 { epoch } else { wire_leader_epoch(None) };
                    t.partitions.push(p);
                }
                resp.topics.push(t);
            }
        }
    }
    Ok(resp)
}

crate::route_to!(OffsetFetch, handle);

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::offset_fetch_request::{OffsetFetchRequestGroup, OffsetFetchRequestTopics};

    #[tokio::test]
    async fn fetching_offsets_does_not_create_the_offsets_topic() {
        let broker = Broker::for_tests(crate::config::BrokerConfig::default(), crate::router::Router::default());
        let group = || GroupId(StrBytes::from_static_str("g"));
        let all = OffsetFetchRequest::default().with_group_id(group()).with_topics(None);
        let resp = handle(&broker, 7, all).await.expect("answered");
        assert_eq!((resp.error_code, resp.topics.len()), (0, 0));
        let topic = OffsetFetchRequestTopics::default()
            .with_name(TopicName(StrBytes::from_static_str("t")))
            .with_partition_indexes(vec![0, 2]);
        let v8 = OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(group())
            .with_topics(Some(vec![topic]))]);
        let resp = handle(&broker, 8, v8).await.expect("answered");
        let g = &resp.groups[0];
        assert_eq!((g.error_code, g.topics.len()), (0, 1));
        let parts: Vec<_> = g.topics[0]
            .partitions
            .iter()
            .map(|p| {
                let metadata = p.metadata.as_ref().map(|m| m.to_string());
                (p.partition_index, p.committed_offset, p.committed_leader_epoch, metadata, p.error_code)
            })
            .collect();
        // Nothing committed: Kafka's INVALID_OFFSET, no epoch, empty metadata.
        let none = |p| (p, -1, -1, Some(String::new()), 0);
        assert_eq!(parts, vec![none(0), none(2)]);
        assert!(broker.topics.image().topic(OFFSETS_TOPIC).is_none(), "OffsetFetch created {OFFSETS_TOPIC}");
    }
}
