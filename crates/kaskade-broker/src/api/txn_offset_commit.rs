//! TxnOffsetCommit (key 28), versions 0 to 4: offsets committed inside a
//! transaction, pending until its marker (`group::txn_offsets`). The
//! producer must have added the group with AddOffsetsToTxn first.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use kaskade_types::Offset;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::group::{commit_generation, committed_leader_epoch, CommitPartition, CommitRequest};

pub async fn handle(
    broker: &Arc<Broker>,
    version: i16,
    req: TxnOffsetCommitRequest,
) -> Result<TxnOffsetCommitResponse, BrokerError> {
    let partitions: Vec<CommitPartition> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| CommitPartition {
                topic: t.name.to_string(),
                partition: p.partition_index,
                offset: Offset(p.committed_offset),
                leader_epoch: committed_leader_epoch(p.committed_leader_epoch),
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            })
        })
        .collect();
    let commit = CommitRequest {
        group_id: req.group_id.to_string(),
        // v0-2 carry no member: a commit from outside the group.
        generation_id: if version >= 3 { commit_generation(req.generation_id) } else { None },
        member_id: if version >= 3 { req.member_id.to_string() } else { String::new() },
        group_instance_id: req.group_instance_id.as_ref().map(|i| i.to_string()),
        partitions,
        api_version: 8,
    };
    let producer = super::producer_of(req.producer_id, req.producer_epoch);
    let id = req.transactional_id.to_string();
    let n = commit.partitions.len();
    let offsets_partition = super::offsets_partition_of(broker, &req.group_id);
    // The transaction must hold the group's offsets partition.
    let in_txn = broker.txns.describe(&id).await.map(|m| match m {
        Some(m) if m.producer_id != producer.id => Err(ResponseError::InvalidProducerIdMapping),
        Some(m) if m.producer_epoch != producer.epoch => Err(ResponseError::ProducerFenced),
        // AddOffsetsToTxn must have added the group's offsets partition:
        // only that partition's marker settles these offsets.
        Some(m) if m.state == crate::txn::TxnState::Ongoing && m.partitions.contains(&offsets_partition) => Ok(()),
        Some(_) => Err(ResponseError::InvalidTxnState),
        None => Err(ResponseError::InvalidProducerIdMapping),
    });
    let errors: Vec<Option<ResponseError>> = match in_txn {
        Ok(Ok(())) => broker
            .groups
            .call_durable_gated(move |engine, now, gate| match gate.check(&commit.group_id) {
                Err(e) => vec![Some(e); commit.partitions.len()],
                Ok(()) => engine.txn_commit_offsets(now, producer, &commit),
            })
            .await
            .unwrap_or_else(|_| vec![Some(ResponseError::CoordinatorNotAvailable); n]),
        Ok(Err(e)) | Err(e) => vec![Some(e); n],
    };
    let mut resp = TxnOffsetCommitResponse::default();
    let mut errors = errors.into_iter();
    for topic in &req.topics {
        let mut t = TxnOffsetCommitResponseTopic::default();
        t.name = topic.name.clone();
        for p in &topic.partitions {
            let mut r = TxnOffsetCommitResponsePartition::default();
            r.partition_index = p.partition_index;
            r.error_code = errors.next().flatten().map_or(0, |e| super::fenced_for(version, 3, e));
            t.partitions.push(r);
        }
        resp.topics.push(t);
    }
    Ok(resp)
}

crate::route_to!(TxnOffsetCommit, handle);
