//! What DescribeQuorum reports, read from openraft's metrics on the leader.
//!
//! Offsets are Raft log positions as Kafka counts them: a log end offset is
//! the index after the last entry a replica holds (one past openraft's
//! matched log id), the high watermark the index after the last entry the leader has
//! applied (it applies as soon as an entry commits). openraft 0.9 reports no
//! per-replica times, so the last fetch and caught-up times come from the
//! leader's own network layer (`network::PeerClock`): when a replica last
//! answered an AppendEntries, and when it last held everything committed.

use std::collections::BTreeSet;

use openraft::RaftMetrics;
use serde::{Deserialize, Serialize};

use super::network::PeerClock;
use super::types::{epoch_of, to_kafka_id, RaftNodeId};

/// One voter's or observer's position, as DescribeQuorum's ReplicaState.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaStatus {
    pub replica_id: i32,
    /// Its metadata directory's id (DescribeQuorum v2's
    /// ReplicaDirectoryId), when the membership has it.
    #[serde(default)]
    pub directory_id: Option<uuid::Uuid>,
    /// -1 when the leader does not know it yet.
    pub log_end_offset: i64,
    /// Clock ms, -1 if never.
    pub last_fetch_timestamp: i64,
    /// Clock ms, -1 if never.
    pub last_caught_up_timestamp: i64,
}

/// The quorum as its leader sees it (also a broker-only node's `Status`
/// answer, `observer`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumStatus {
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub high_watermark: i64,
    pub voters: Vec<ReplicaStatus>,
    pub observers: Vec<ReplicaStatus>,
}

pub(super) fn end_offset(index: Option<u64>) -> i64 {
    index.map(|i| i64::try_from(i).unwrap_or(i64::MAX - 1) + 1).unwrap_or(0)
}

/// The status from the leader's metrics; `None` if `metrics` are not a
/// leader's (only the leader knows where the replicas are).
pub(crate) fn from_metrics(
    metrics: &RaftMetrics<RaftNodeId, super::types::ControllerNode>,
    peers: &PeerClock,
    now_ms: i64,
) -> Option<QuorumStatus> {
    let replication = metrics.replication.as_ref()?;
    let membership = metrics.membership_config.membership();
    let voter_ids: BTreeSet<RaftNodeId> = membership.voter_ids().collect();
    let replica = |id: RaftNodeId| {
        let directory_id = membership.get_node(&id).and_then(|n| n.directory_id);
        if id == metrics.id {
            return ReplicaStatus {
                replica_id: to_kafka_id(id),
                directory_id,
                log_end_offset: end_offset(metrics.last_log_index),
                last_fetch_timestamp: now_ms,
                last_caught_up_timestamp: now_ms,
            };
        }
        let times = peers.get(id);
        ReplicaStatus {
            replica_id: to_kafka_id(id),
            directory_id,
            log_end_offset: match replication.get(&id) {
                Some(matched) => end_offset(matched.map(|l| l.index)),
                None => -1,
            },
            last_fetch_timestamp: times.last_fetch_ms.unwrap_or(-1),
            last_caught_up_timestamp: times.last_caught_up_ms.unwrap_or(-1),
        }
    };
    Some(QuorumStatus {
        leader_id: to_kafka_id(metrics.id),
        leader_epoch: epoch_of(metrics.current_term),
        high_watermark: end_offset(metrics.last_applied.map(|l| l.index)),
        voters: voter_ids.iter().map(|id| replica(*id)).collect(),
        observers: membership.learner_ids().filter(|id| !voter_ids.contains(id)).map(replica).collect(),
    })
}
