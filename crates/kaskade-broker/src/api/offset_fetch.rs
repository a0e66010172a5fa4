//! OffsetFetch (v1..v9; batched groups from v8).

use std::sync::Arc;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    GroupId, OffsetFetchRequest, OffsetFetchResponse, RequestHeader, RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::group::FetchedOffset;
use crate::router::HandlerFuture;

/// (group, requested partitions or every committed one).
type GroupQuery = (String, Option<Vec<(String, i32)>>);

/// Committed offsets of one group, by topic in first-seen order.
fn by_topic(offsets: Vec<FetchedOffset>) -> Vec<(String, Vec<FetchedOffset>)> {
    let mut topics: Vec<(String, Vec<FetchedOffset>)> = Vec::new();
    for o in offsets {
        match topics.iter_mut().find(|(t, _)| *t == o.topic) {
            Some((_, v)) => v.push(o),
            None => topics.push((o.topic.clone(), vec![o])),
        }
    }
    topics
}

fn metadata(m: String) -> Option<StrBytes> {
    Some(StrBytes::from_string(m))
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
                    ts.iter().flat_map(|t| t.partition_indexes.iter().map(|p| (t.name.to_string(), *p))).collect()
                });
                (g.group_id.0.to_string(), parts)
            })
            .collect()
    } else {
        let parts = req
            .topics
            .as_ref()
            .map(|ts| ts.iter().flat_map(|t| t.partition_indexes.iter().map(|p| (t.name.to_string(), *p))).collect());
        vec![(req.group_id.0.to_string(), parts)]
    };
    let results = broker
        .groups
        .call(move |engine, now| {
            queries
                .into_iter()
                .map(|(group, parts)| (group.clone(), engine.fetch_offsets(now, &group, parts.as_deref())))
                .collect::<Vec<_>>()
        })
        .await?;
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
                for o in parts {
                    let mut p = OffsetFetchResponsePartitions::default();
                    p.partition_index = o.partition;
                    p.committed_offset = o.offset;
                    p.committed_leader_epoch = o.leader_epoch;
                    p.metadata = metadata(o.metadata);
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
                for o in parts {
                    let mut p = OffsetFetchResponsePartition::default();
                    p.partition_index = o.partition;
                    p.committed_offset = o.offset;
                    p.committed_leader_epoch = if version >= 5 { o.leader_epoch } else { -1 };
                    p.metadata = metadata(o.metadata);
                    t.partitions.push(p);
                }
                resp.topics.push(t);
            }
        }
    }
    Ok(resp)
}

pub fn route(broker: Arc<Broker>, header: RequestHeader, body: RequestKind) -> HandlerFuture {
    super::handler(async move {
        let request = crate::request_body!(body, OffsetFetch)?;
        Ok(ResponseKind::OffsetFetch(handle(&broker, header.request_api_version, request).await?))
    })
}
