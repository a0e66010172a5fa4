//! Partition reassignment as KRaft's controller decides it
//! (ReplicationControlManager's `alterPartitionReassignments`,
//! PartitionReassignmentReplicas, PartitionReassignmentRevert and the
//! completion in PartitionChangeBuilder): pure functions from the image to
//! the partition change record, so every step is unit-tested without a
//! cluster and the callers (the AlterPartitionReassignments handler, the
//! leader's ISR changes) append them through `update`.
//!
//! A reassignment of a partition with replicas `current` to `target`:
//! 1. start: the replicas become `target` followed by the current replicas
//!    not in it (the union), `adding_replicas` = target − current,
//!    `removing_replicas` = current − target; the ISR and leader stay. The
//!    brokers of the adding replicas create their logs and fetch as
//!    followers, as for any replica.
//! 2. catch-up: the leader admits each adding replica into the ISR once it
//!    caught up (its ordinary ISR expansion), one change at a time.
//! 3. completion, decided with every change of the ISR (and at the start):
//!    once every adding replica is in the ISR and the ISR without the
//!    removing replicas is not empty, the replicas become the target, the
//!    removing replicas leave the ISR, adding/removing are cleared, and if
//!    the leader was removed the first target replica in the ISR that is
//!    unfenced leads (new leader epoch). The removed replicas' brokers then
//!    stop fetching and delete their logs (the image no longer places them).
//!
//! A reassignment to brokers that are registered but fenced is accepted and
//! waits: they cannot fetch, so they never enter the ISR, until unfenced.
//! A cancellation (null replicas) reverts to the replicas without the
//! adding ones; the ISR loses the adding ones and a leader among them hands
//! leadership to the first remaining ISR member. If no ISR member would
//! remain, the revert needs an unclean election (KRaft's
//! PartitionReassignmentRevert): refused with INVALID_REPLICA_ASSIGNMENT
//! unless the topic allows unclean elections ([`election::unclean_enabled`]);
//! allowed, the ISR becomes the first original replica. Either way, on a
//! topic that allows them the revert elects as KRaft's UNCLEAN election
//! does: when no ISR member is live, the first live replica leads alone.
//! A new
//! target for a partition being moved starts from its current (union)
//! replica set, as in KRaft.
//!
//! Invariants: adding and removing replicas are always subsets of the
//! replicas and disjoint; a leader is always an ISR member and unfenced when
//! elected here; an ISR never becomes empty; an ISR member that was not one
//! before (an unclean revert) only on a topic that allows it; every record is one
//! `PartitionImage::changed_to` (partition epoch +1, leader epoch +1 with a
//! new leader); a decision that changes nothing yields no record.

use std::fmt;

use kaskade_types::NodeId;
use uuid::Uuid;

use crate::election;
use crate::image::{Image, PartitionImage};
use crate::record::MetadataRecord;

/// Why a reassignment request for one partition is refused; the protocol
/// edge maps each to its Kafka error code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// UNKNOWN_TOPIC_OR_PARTITION.
    UnknownTopicOrPartition(String),
    /// INVALID_REPLICA_ASSIGNMENT.
    InvalidReplicaAssignment(String),
    /// NO_REASSIGNMENT_IN_PROGRESS: a cancellation of a partition not being
    /// moved.
    NoReassignmentInProgress,
    /// INVALID_REPLICATION_FACTOR: the request (v1, KIP-860) disallowed a
    /// change of the replication factor and the target has another.
    InvalidReplicationFactor(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::UnknownTopicOrPartition(m)
            | Refusal::InvalidReplicaAssignment(m)
            | Refusal::InvalidReplicationFactor(m) => f.write_str(m),
            Refusal::NoReassignmentInProgress => f.write_str("No partition reassignment is in progress."),
        }
    }
}

/// Decides one partition of an AlterPartitionReassignments request:
/// `target` = `Some(replicas)` starts (or replaces) a reassignment, `None`
/// cancels the one in progress. The record to append, or none when nothing
/// changes. `standalone` is the node's own id when it runs alone (a node of
/// its own registers no broker, yet is one); `unclean_default` is the
/// static `unclean.leader.election.enable` (a topic without its own value
/// and no cluster-wide default takes it).
pub fn alter(
    image: &Image,
    topic: &str,
    partition: i32,
    target: Option<&[i32]>,
    allow_replication_factor_change: bool,
    standalone: Option<NodeId>,
    unclean_default: bool,
) -> Result<Option<MetadataRecord>, Refusal> {
    let Some(t) = image.topic(topic) else {
        return Err(Refusal::UnknownTopicOrPartition(format!("Unable to find a topic named {topic}.")));
    };
    let Some(p) = usize::try_from(partition).ok().and_then(|i| t.partitions.get(i)) else {
        return Err(Refusal::UnknownTopicOrPartition(format!("Unable to find partition {topic}:{partition}.")));
    };
    let next = match target {
        None => cancel(image, topic, partition, p, election::unclean_enabled(image, t, unclean_default))?,
        Some(target) => {
            let target = validate(image, target, standalone)?;
            if !allow_replication_factor_change && target.len() != p.target_replicas().len() {
                return Err(Refusal::InvalidReplicationFactor(format!(
                    "The replication factor is changed from {} to {}",
                    p.target_replicas().len(),
                    target.len()
                )));
            }
            start(image, p, &target)
        }
    };
    Ok(record_if_changed(p, next, t.id, partition))
}

/// The partition after its leader's ISR change to `isr` (the leader's
/// AlterPartition): the ISR, and the completion of a reassignment in
/// progress if the new ISR completes it. `None` if nothing changes.
pub fn isr_change(
    image: &Image,
    topic_id: Uuid,
    partition: i32,
    p: &PartitionImage,
    isr: Vec<NodeId>,
) -> Option<MetadataRecord> {
    let next = complete_if_caught_up(image, PartitionImage { isr, ..p.clone() });
    record_if_changed(p, next, topic_id, partition)
}

/// Kafka's validateManualPartitionAssignment: not empty, every broker
/// registered, none twice.
fn validate(image: &Image, target: &[i32], standalone: Option<NodeId>) -> Result<Vec<NodeId>, Refusal> {
    if target.is_empty() {
        return Err(Refusal::InvalidReplicaAssignment(
            "The manual partition assignment includes an empty replica list.".to_string(),
        ));
    }
    let mut sorted = target.to_vec();
    sorted.sort_unstable();
    for (i, id) in sorted.iter().enumerate() {
        let registered = image.brokers().contains_key(&NodeId(*id))
            || (image.brokers().is_empty() && standalone == Some(NodeId(*id)));
        if !registered {
            return Err(Refusal::InvalidReplicaAssignment(format!(
                "The manual partition assignment includes broker {id}, but no such broker is registered."
            )));
        }
        if i > 0 && sorted[i - 1] == *id {
            return Err(Refusal::InvalidReplicaAssignment(format!(
                "The manual partition assignment includes the broker {id} more than once."
            )));
        }
    }
    Ok(target.iter().copied().map(NodeId).collect())
}

/// Step 1 (and 3 at once when the ISR already allows it).
fn start(image: &Image, p: &PartitionImage, target: &[NodeId]) -> PartitionImage {
    let current = &p.replicas;
    let removing: Vec<NodeId> = current.iter().copied().filter(|r| !target.contains(r)).collect();
    let adding: Vec<NodeId> = target.iter().copied().filter(|r| !current.contains(r)).collect();
    let mut replicas = target.to_vec();
    replicas.extend(removing.iter().copied());
    let next = PartitionImage { replicas, adding_replicas: adding, removing_replicas: removing, ..p.clone() };
    complete_if_caught_up(image, next)
}

/// Step 3 if every adding replica is in the ISR and a member that stays
/// remains; else `p` unchanged.
fn complete_if_caught_up(image: &Image, p: PartitionImage) -> PartitionImage {
    if !p.is_reassigning() || !p.adding_replicas.iter().all(|r| p.isr.contains(r)) {
        return p;
    }
    let isr: Vec<NodeId> = p.isr.iter().copied().filter(|r| !p.removing_replicas.contains(r)).collect();
    if isr.is_empty() {
        return p;
    }
    let replicas = p.target_replicas();
    let leader = elect(image, p.leader, &replicas, &isr);
    PartitionImage { leader, replicas, isr, adding_replicas: Vec::new(), removing_replicas: Vec::new(), ..p }
}

/// Reverts the reassignment in progress (PartitionReassignmentRevert);
/// `unclean` tells whether the topic allows unclean elections.
fn cancel(
    image: &Image,
    topic: &str,
    partition: i32,
    p: &PartitionImage,
    unclean: bool,
) -> Result<PartitionImage, Refusal> {
    if !p.is_reassigning() {
        return Err(Refusal::NoReassignmentInProgress);
    }
    let not_adding = |r: &NodeId| !p.adding_replicas.contains(r);
    let replicas: Vec<NodeId> = p.replicas.iter().copied().filter(not_adding).collect();
    let mut isr: Vec<NodeId> = p.isr.iter().copied().filter(not_adding).collect();
    if isr.is_empty() {
        // Only adding replicas were in sync: the original replicas all lack
        // records the ISR had. KRaft reverts anyway when the topic allows
        // losing them, with the first original replica as the ISR.
        let first = replicas.first().copied().filter(|_| unclean);
        let Some(first) = first else {
            return Err(Refusal::InvalidReplicaAssignment(format!(
                "Unable to revert partition assignment for {topic}:{partition} because it would require an unclean leader election."
            )));
        };
        isr = vec![first];
    }
    let mut leader = elect(image, p.leader, &replicas, &isr);
    if leader.is_none() && unclean {
        // KRaft's UNCLEAN election: the first live replica, alone in the ISR.
        if let Some(live) = replicas.iter().copied().find(|r| image.is_unfenced(*r)) {
            (leader, isr) = (Some(live), vec![live]);
        }
    }
    debug_assert!(!isr.is_empty(), "a revert never empties the ISR");
    debug_assert!(leader.is_none_or(|l| isr.contains(&l)), "a leader is an ISR member");
    Ok(PartitionImage {
        leader,
        replicas,
        isr,
        adding_replicas: Vec::new(),
        removing_replicas: Vec::new(),
        ..p.clone()
    })
}

/// The leader after a change of replicas and ISR: the current one if it is
/// still a replica in the ISR, else the first replica (in replica order)
/// that is in the ISR and unfenced, else none (the ISR is kept, so only its
/// members may lead again: no unclean election).
fn elect(image: &Image, leader: Option<NodeId>, replicas: &[NodeId], isr: &[NodeId]) -> Option<NodeId> {
    match leader {
        Some(l) if replicas.contains(&l) && isr.contains(&l) => Some(l),
        _ => replicas.iter().copied().find(|r| isr.contains(r) && image.is_unfenced(*r)),
    }
}

/// The change record from `p` to `next`, or none if they are the same.
fn record_if_changed(
    p: &PartitionImage,
    next: PartitionImage,
    topic_id: Uuid,
    partition: i32,
) -> Option<MetadataRecord> {
    let same = next.leader == p.leader
        && next.replicas == p.replicas
        && next.isr == p.isr
        && next.adding_replicas == p.adding_replicas
        && next.removing_replicas == p.removing_replicas;
    (!same).then(|| p.changed_to(next).to_record(topic_id, partition))
}

#[cfg(test)]
#[path = "reassignment_tests.rs"]
mod tests;
