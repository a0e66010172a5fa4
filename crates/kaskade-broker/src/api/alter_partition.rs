//! AlterPartition (56) on the controller listener: a partition leader's
//! ISR change, decided by the active controller as KRaft's
//! `ReplicationControlManager.alterPartition` does, and written as a
//! partition change record.
//!
//! [`decide`] is the whole decision, pure over the committed image. Its
//! checks, in Kafka's order and with its codes: the sender's broker epoch
//! must be its registration's (STALE_BROKER_EPOCH for the whole request);
//! per topic, a topic id the image has (UNKNOWN_TOPIC_ID); per partition,
//! a partition it has (UNKNOWN_TOPIC_OR_PARTITION), a leader epoch and
//! partition epoch not ahead of the image's (NOT_CONTROLLER: this
//! controller is behind, the leader asks again), the current leader epoch
//! (FENCED_LEADER_EPOCH), the sender as the leader (INVALID_REQUEST), the
//! current partition epoch (INVALID_UPDATE_VERSION), an ISR of distinct
//! replicas holding the leader (INVALID_REQUEST), a recovered leader
//! (INVALID_REQUEST for RECOVERING: Kaskade never elects uncleanly into
//! that state) and ISR members that are registered, unfenced and at the
//! broker epoch the request names, -1 skipping that check
//! (INELIGIBLE_REPLICA; a Kaskade broker in controlled shutdown is fenced
//! at once, so "shutting down" is "fenced" here). An accepted change
//! completes a reassignment in progress when it admits the last adding
//! replica (`kaskade_meta::reassignment::isr_change`); if that moves the
//! leadership away from the sender the answer is NEW_LEADER_ELECTED, the
//! record still written, as in Kafka. Otherwise the answer is the
//! partition's state after the change (an ISR already as asked writes
//! nothing and answers the current state).
//!
//! Only the active controller decides, in its own term
//! (`topic::as_active_controller`): another controller answers
//! NOT_CONTROLLER, which makes the broker's channel ask the next one.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{alter_partition_response, AlterPartitionRequest, AlterPartitionResponse, BrokerId};
use kaskade_meta::{reassignment, Image, MetadataRecord, PartitionImage, Uuid};
use kaskade_types::{LeaderEpoch, NodeId};

use super::broker_registration::broker_epoch;
use crate::broker::Broker;
use crate::error::BrokerError;

pub async fn handle(
    broker: &Arc<Broker>,
    version: i16,
    req: AlterPartitionRequest,
) -> Result<AlterPartitionResponse, BrokerError> {
    if !crate::api::forwarding::is_active_controller(broker) {
        return Ok(refused(ResponseError::NotController));
    }
    let decided = crate::topic::decide_as_active(&broker.topics, move |img| decide(img, &req, version)).await;
    Ok(decided.unwrap_or_else(|e| {
        tracing::warn!(error = %e.message, "AlterPartition not decided");
        refused(e.code)
    }))
}

crate::route_to!(AlterPartition, handle);

/// The answer to a request refused as a whole.
pub fn refused(code: ResponseError) -> AlterPartitionResponse {
    AlterPartitionResponse::default().with_error_code(code.code())
}

fn failed(index: i32, code: ResponseError) -> alter_partition_response::PartitionData {
    alter_partition_response::PartitionData::default().with_partition_index(index).with_error_code(code.code())
}

fn state(index: i32, p: &PartitionImage) -> alter_partition_response::PartitionData {
    alter_partition_response::PartitionData::default()
        .with_partition_index(index)
        .with_leader_id(BrokerId(p.leader.map_or(-1, NodeId::get)))
        .with_leader_epoch(p.leader_epoch.get())
        .with_isr(p.isr.iter().map(|n| BrokerId(n.get())).collect())
        .with_partition_epoch(p.partition_epoch)
}

/// A requested ISR member: its id and the broker epoch the leader saw (-1: unchecked).
type Member = (NodeId, i64);

/// The controller's decision on `req` (at `version`) against `img`: the
/// records to write and the answer (see the module docs).
pub fn decide(img: &Image, req: &AlterPartitionRequest, version: i16) -> (Vec<MetadataRecord>, AlterPartitionResponse) {
    let sender = NodeId(req.broker_id.0);
    let registered = img.brokers().get(&sender).map(|b| broker_epoch(b.incarnation_id));
    if registered != Some(req.broker_epoch) {
        return (Vec::new(), refused(ResponseError::StaleBrokerEpoch));
    }
    let mut records = Vec::new();
    // Partitions changed earlier in this request: a partition named twice
    // is decided against its state after the first change, as Kafka merges.
    let mut changed: BTreeMap<(Uuid, i32), PartitionImage> = BTreeMap::new();
    let mut response = AlterPartitionResponse::default();
    for t in &req.topics {
        let mut answers = Vec::new();
        let topic = img.topic_by_id(&t.topic_id).filter(|_| !t.topic_id.is_nil());
        for p in &t.partitions {
            let index = p.partition_index;
            let Some(topic) = topic else {
                answers.push(failed(index, ResponseError::UnknownTopicId));
                continue;
            };
            let current = changed
                .get(&(t.topic_id, index))
                .or_else(|| usize::try_from(index).ok().and_then(|i| topic.partitions.get(i)))
                .cloned();
            let Some(current) = current else {
                answers.push(failed(index, ResponseError::UnknownTopicOrPartition));
                continue;
            };
            let members: Vec<Member> = if version >= 3 {
                p.new_isr_with_epochs.iter().map(|m| (NodeId(m.broker_id.0), m.broker_epoch)).collect()
            } else {
                p.new_isr.iter().map(|m| (NodeId(m.0), -1)).collect()
            };
            let check = Proposed {
                sender,
                leader_epoch: p.leader_epoch,
                partition_epoch: p.partition_epoch,
                recovery: p.leader_recovery_state,
                members: &members,
            };
            if let Err(code) = check.validate(img, &current) {
                answers.push(failed(index, code));
                continue;
            }
            let isr = members.iter().map(|(n, _)| *n).collect();
            match reassignment::isr_change(img, t.topic_id, index, &current, isr) {
                Some(record) => {
                    let next = after(&current, &record);
                    records.push(record);
                    let moved = next.leader != Some(sender);
                    answers.push(if moved {
                        failed(index, ResponseError::NewLeaderElected)
                    } else {
                        state(index, &next)
                    });
                    changed.insert((t.topic_id, index), next);
                }
                None => answers.push(state(index, &current)),
            }
        }
        response
            .topics
            .push(alter_partition_response::TopicData::default().with_topic_id(t.topic_id).with_partitions(answers));
    }
    (records, response)
}

/// The partition `p` after `record` (one of its partition change records).
fn after(p: &PartitionImage, record: &MetadataRecord) -> PartitionImage {
    let ids = |v: &[i32]| v.iter().copied().map(NodeId).collect::<Vec<_>>();
    match record {
        MetadataRecord::Partition {
            leader,
            replicas,
            isr,
            leader_epoch,
            partition_epoch,
            adding_replicas,
            removing_replicas,
            ..
        } => PartitionImage {
            leader: (*leader >= 0).then_some(NodeId(*leader)),
            replicas: ids(replicas),
            isr: ids(isr),
            leader_epoch: LeaderEpoch(*leader_epoch),
            partition_epoch: *partition_epoch,
            adding_replicas: ids(adding_replicas),
            removing_replicas: ids(removing_replicas),
        },
        other => {
            debug_assert!(false, "an ISR change wrote {other:?}");
            p.clone()
        }
    }
}

/// One partition's requested change, as checked against its current state.
struct Proposed<'a> {
    sender: NodeId,
    leader_epoch: i32,
    partition_epoch: i32,
    recovery: i8,
    members: &'a [Member],
}

impl Proposed<'_> {
    /// Kafka's `validateAlterPartitionData`, in its order.
    fn validate(&self, img: &Image, current: &PartitionImage) -> Result<(), ResponseError> {
        if self.leader_epoch > current.leader_epoch.get() || self.partition_epoch > current.partition_epoch {
            return Err(ResponseError::NotController);
        }
        if self.leader_epoch < current.leader_epoch.get() {
            return Err(ResponseError::FencedLeaderEpoch);
        }
        if current.leader != Some(self.sender) {
            return Err(ResponseError::InvalidRequest);
        }
        if self.partition_epoch < current.partition_epoch {
            return Err(ResponseError::InvalidUpdateVersion);
        }
        let mut ids: Vec<NodeId> = self.members.iter().map(|(n, _)| *n).collect();
        ids.sort_unstable();
        let distinct = ids.windows(2).all(|w| w[0] != w[1]);
        if !distinct || !ids.iter().all(|n| current.replicas.contains(n)) || !ids.contains(&self.sender) {
            return Err(ResponseError::InvalidRequest);
        }
        // 0 is RECOVERED; RECOVERING (1) follows only an unclean election,
        // which leaves a Kaskade partition RECOVERED; anything else is no state.
        if self.recovery != 0 {
            return Err(ResponseError::InvalidRequest);
        }
        let eligible = |(n, epoch): &Member| {
            img.brokers()
                .get(n)
                .is_some_and(|b| !b.fenced && (*epoch == -1 || broker_epoch(b.incarnation_id) == *epoch))
        };
        if !self.members.iter().all(eligible) {
            return Err(ResponseError::IneligibleReplica);
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "alter_partition_tests.rs"]
mod tests;
