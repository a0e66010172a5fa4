//! OffsetCommit (v2..v9): generation and member checks by the group
//! coordinator; partitions the metadata image does not know (on any
//! broker) get UNKNOWN_TOPIC_OR_PARTITION as Kafka answers.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use kaskade_types::Offset;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::group::{commit_generation, committed_leader_epoch, CommitPartition, CommitRequest};

pub async fn handle(
    broker: &Broker,
    version: i16,
    req: OffsetCommitRequest,
) -> Result<OffsetCommitResponse, BrokerError> {
    // (topic index, partition index, error decided here).
    let mut slots: Vec<(usize, i32, Option<ResponseError>)> = Vec::new();
    let mut partitions = Vec::new();
    // Partitions of the cluster, not only the ones hosted here: in a
    // cluster the coordinator seldom leads the partitions it commits for.
    let image = broker.topics.image();
    for (ti, t) in req.topics.iter().enumerate() {
        let count = image.topic(t.name.as_str()).map_or(0, |t| t.partitions.len());
        for p in &t.partitions {
            if usize::try_from(p.partition_index).map_or(true, |i| i >= count) {
                slots.push((ti, p.partition_index, Some(ResponseError::UnknownTopicOrPartition)));
                continue;
            }
            slots.push((ti, p.partition_index, None));
            partitions.push(CommitPartition {
                topic: t.name.to_string(),
                partition: p.partition_index,
                offset: Offset(p.committed_offset),
                // v0-v5 carry no epoch.
                leader_epoch: if version >= 6 { committed_leader_epoch(p.committed_leader_epoch) } else { None },
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            });
        }
    }
    let request = CommitRequest {
        group_id: req.group_id.0.to_string(),
        generation_id: commit_generation(req.generation_id_or_member_epoch),
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|s| s.to_string()),
        partitions,
        api_version: version,
    };
    let n = request.partitions.len();
    let errors = if request.partitions.is_empty() && !request.group_id.is_empty() {
        Vec::new()
    } else {
        broker
            .groups
            .call_durable_gated(move |engine, now, gate| match gate.check(&request.group_id) {
                Err(e) => vec![Some(e); request.partitions.len()],
                Ok(()) => engine.commit_offsets(now, &request),
            })
            .await
            .or_else(|e| match e {
                // Not replicated: every partition gets the coordinator's
                // error and the client retries (Kafka's answer).
                BrokerError::Kafka { code, .. } => Ok(vec![Some(code); n]),
                e => Err(e),
            })?
    };
    let mut errors = errors.into_iter();
    let mut resp = OffsetCommitResponse::default();
    for (ti, t) in req.topics.iter().enumerate() {
        let mut topic = OffsetCommitResponseTopic::default();
        topic.name = t.name.clone();
        for (_, partition, local) in slots.iter().filter(|s| s.0 == ti) {
            let error = match local {
                Some(e) => Some(*e),
                None => errors.next().flatten(),
            };
            let mut p = OffsetCommitResponsePartition::default();
            p.partition_index = *partition;
            p.error_code = error.map_or(0, |e| e.code());
            topic.partitions.push(p);
        }
        resp.topics.push(topic);
    }
    Ok(resp)
}

crate::route_to!(OffsetCommit, handle);
