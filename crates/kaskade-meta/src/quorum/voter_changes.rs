//! A controller's view of the voters and the voter changes it carries out
//! as the leader (KIP-853's AddRaftVoter / RemoveRaftVoter): methods of
//! [`QuorumMetadataLog`] kept apart from proposing and following
//! (`node`). Whether a change may start is decided without I/O in
//! `membership`; here it is carried out through openraft's membership
//! changes (a new controller joins as a learner, catches up, then joint
//! consensus makes it a voter; a removed one leaves through joint
//! consensus too).
//!
//! Invariant: at most one change runs at a time on a leader (the
//! `voter_change` lock, refused rather than queued, as Kafka refuses it),
//! and a change starts only from a committed, non-joint membership.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use openraft::{ChangeMembers, LogIdOptionExt};

use super::membership::{self, MembershipView, VoterChangeError, VoterKey};
use super::node::{node_id, quorum_error, write_error, QuorumMetadataLog};
use super::types::{to_node_id, ControllerNode, RaftNodeId};
use crate::MetaError;
use kaskade_types::NodeId;

/// A membership change's failure as a voter change's error.
fn voter_change_error(e: MetaError) -> VoterChangeError {
    match e {
        MetaError::NotLeader { leader } => VoterChangeError::NotLeader { leader },
        other => VoterChangeError::Failed(other.to_string()),
    }
}
impl QuorumMetadataLog {
    /// Forms a dynamic quorum of `members` (node id -> its controller
    /// listener and directory id), `controller.quorum.initial.controllers`:
    /// every controller named there calls it with the same members on its
    /// first start, so whichever entry lands is the same membership; a
    /// controller that already has a quorum (a restart) ignores it.
    pub async fn initialize_members(&self, members: &BTreeMap<NodeId, ControllerNode>) -> Result<(), MetaError> {
        let mut nodes = BTreeMap::new();
        for (id, node) in members {
            nodes.insert(node_id(*id)?, node.clone());
        }
        if !nodes.contains_key(&self.id) {
            return Err(MetaError::Quorum(format!("the initial controllers do not name this controller {}", self.id)));
        }
        match self.raft.initialize(nodes).await {
            Ok(()) => Ok(()),
            Err(openraft::error::RaftError::APIError(openraft::error::InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(quorum_error(e)),
        }
    }

    /// Whether this controller holds a membership that does not name it at
    /// all (neither voter nor learner): it was removed (RemoveRaftVoter) and
    /// will not take part until the leader adds it again.
    pub async fn removed_from_quorum(&self) -> Result<bool, MetaError> {
        let id = self.id;
        self.raft
            .with_raft_state(move |st| {
                let membership = st.membership_state.effective().membership();
                let ids: BTreeSet<RaftNodeId> = membership.nodes().map(|(n, _)| *n).collect();
                !ids.is_empty() && !ids.contains(&id)
            })
            .await
            .map_err(quorum_error)
    }

    /// The voters as this controller's applied membership has them (node id
    /// -> address), for checking a configured `controller.quorum.voters`
    /// against what the quorum stored (`initialize` ignores its argument once
    /// the quorum exists).
    pub async fn voters(&self) -> Result<BTreeMap<NodeId, String>, MetaError> {
        // From the Raft core's own state: its metrics may not be out yet
        // right after start.
        self.raft
            .with_raft_state(|st| {
                let membership = st.membership_state.effective().membership();
                let voters: BTreeSet<RaftNodeId> = membership.voter_ids().collect();
                membership
                    .nodes()
                    .filter(|(id, _)| voters.contains(id))
                    .map(|(id, node)| (to_node_id(*id), node.addr.clone()))
                    .collect()
            })
            .await
            .map_err(quorum_error)
    }

    /// The voters of the applied membership (node id -> where its
    /// controller listener is and its directory id), from the metrics.
    pub fn voter_nodes(&self) -> BTreeMap<NodeId, ControllerNode> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<RaftNodeId> = membership.voter_ids().collect();
        membership.nodes().filter(|(id, _)| voters.contains(id)).map(|(id, n)| (to_node_id(*id), n.clone())).collect()
    }

    /// This controller's voter key (its id and directory id).
    pub fn voter_key(&self) -> VoterKey {
        VoterKey { id: self.node_id(), directory_id: self.directory_id }
    }

    /// The leader's view of the membership for deciding a voter change;
    /// [`VoterChangeError::NotLeader`] elsewhere.
    async fn membership_view(&self, operation_pending: bool) -> Result<MembershipView, VoterChangeError> {
        let leader = self.raft.metrics().borrow().current_leader;
        if leader != Some(self.id) {
            return Err(VoterChangeError::NotLeader { leader: leader.map(to_node_id) });
        }
        let static_quorum = self.static_quorum;
        self.raft
            .with_raft_state(move |st| {
                let state = &st.membership_state;
                let effective = state.effective();
                let membership = effective.membership();
                let voters: BTreeSet<RaftNodeId> = membership.voter_ids().collect();
                MembershipView {
                    voters: membership
                        .nodes()
                        .filter(|(id, _)| voters.contains(id))
                        .map(|(id, n)| (to_node_id(*id), n.directory_id))
                        .collect(),
                    uncommitted: effective.log_id() != state.committed().log_id()
                        || membership.get_joint_config().len() > 1,
                    operation_pending,
                    static_quorum,
                }
            })
            .await
            .map_err(|e| VoterChangeError::Failed(e.to_string()))
    }

    /// Adds a controller as a voter (Kafka's AddRaftVoter): checked as Kafka
    /// checks it (`membership::check_add`), it first joins as a learner and
    /// catches up, then becomes a voter through openraft's joint consensus.
    /// Only on the leader; the whole change is bounded by `within`. A
    /// controller that does not catch up in time (unreachable, or not
    /// started) is taken out of the membership again and the answer is
    /// [`VoterChangeError::TimedOut`], as Kafka's leader answers a new voter
    /// that never fetched.
    pub async fn add_voter(&self, key: VoterKey, addr: &str, within: Duration) -> Result<(), VoterChangeError> {
        let id = node_id(key.id).map_err(|e| VoterChangeError::Invalid(e.to_string()))?;
        let Ok(_guard) = self.voter_change.clone().try_lock_owned() else {
            return membership::check_add(&self.membership_view(true).await?, key);
        };
        membership::check_add(&self.membership_view(false).await?, key)?;
        let deadline = tokio::time::Instant::now() + within;
        let node = ControllerNode { addr: addr.to_string(), directory_id: key.directory_id };
        // openraft's own blocking add_learner counts a learner within
        // `replication_lag_threshold` (5000 entries) as caught up even if it
        // never answered: wait instead until it holds the entry that added it.
        let caught_up = match tokio::time::timeout_at(deadline, self.raft.add_learner(id, node, false)).await {
            Ok(Ok(added)) => {
                let wait = self.raft.wait(Some(deadline.saturating_duration_since(tokio::time::Instant::now())));
                let holds = |m: &openraft::RaftMetrics<RaftNodeId, ControllerNode>| {
                    m.replication
                        .as_ref()
                        .and_then(|r| r.get(&id))
                        .is_some_and(|matched| matched.index() >= Some(added.log_id.index))
                };
                match wait.metrics(holds, "the new controller holds its addition").await {
                    Ok(_) => Ok(()),
                    Err(openraft::metrics::WaitError::Timeout(..)) => Err(VoterChangeError::TimedOut(format!(
                        "Timed out waiting for {key} at {addr} to catch up with the leader's log (is it running, with \
                         controller.quorum.bootstrap.servers naming this quorum?)"
                    ))),
                    Err(e) => Err(VoterChangeError::Failed(e.to_string())),
                }
            }
            Ok(Err(e)) => Err(voter_change_error(write_error(e))),
            Err(_) => Err(VoterChangeError::TimedOut(format!("Timed out adding {key} as a learner"))),
        };
        if let Err(e) = caught_up {
            // Do not leave a learner behind that the leader keeps trying.
            let drop_learner = ChangeMembers::RemoveNodes(BTreeSet::from([id]));
            let removed = tokio::time::timeout(self.append_timeout, self.raft.change_membership(drop_learner, false));
            let failed = match removed.await {
                Ok(Ok(_)) => None,
                Ok(Err(err)) => Some(err.to_string()),
                Err(_) => Some("timed out".to_string()),
            };
            if let Some(err) = failed {
                tracing::warn!(node = key.id.get(), error = %err, "could not drop a learner that did not catch up");
            }
            return Err(e);
        }
        let change = ChangeMembers::AddVoterIds(BTreeSet::from([id]));
        match tokio::time::timeout_at(deadline, self.raft.change_membership(change, false)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(voter_change_error(write_error(e))),
            Err(_) => Err(VoterChangeError::TimedOut(format!("Timed out waiting for the addition of {key} to commit"))),
        }
    }

    /// Updates the controller listener address of voter `key` (Kafka's
    /// UpdateRaftVoter, which a voter sends the leader when it starts on
    /// another address than the membership has), checked as Kafka checks it
    /// (`membership::check_update`). Only on the leader; bounded by
    /// `within`. openraft's `SetNodes` keeps the voters, so the change is
    /// one entry; the leader then replicates to the new address.
    pub async fn update_voter(&self, key: VoterKey, addr: &str, within: Duration) -> Result<(), VoterChangeError> {
        let id = node_id(key.id).map_err(|e| VoterChangeError::Invalid(e.to_string()))?;
        let Ok(_guard) = self.voter_change.clone().try_lock_owned() else {
            return membership::check_update(&self.membership_view(true).await?, key);
        };
        membership::check_update(&self.membership_view(false).await?, key)?;
        let node = ControllerNode { addr: addr.to_string(), directory_id: key.directory_id };
        let change = ChangeMembers::SetNodes(BTreeMap::from([(id, node)]));
        match tokio::time::timeout(within, self.raft.change_membership(change, false)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(voter_change_error(write_error(e))),
            Err(_) => Err(VoterChangeError::TimedOut(format!("Timed out waiting for the update of {key} to commit"))),
        }
    }

    /// The leader this controller knows (its id and controller listener
    /// address) and the current term (Kafka's leader epoch), for answers
    /// that name the leader.
    pub fn leader_and_epoch(&self) -> (Option<(NodeId, Option<String>)>, u64) {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let leader = m.current_leader.map(|l| {
            let addr = m.membership_config.membership().get_node(&l).map(|n| n.addr.clone());
            (to_node_id(l), addr)
        });
        (leader, m.current_term)
    }

    /// This controller's address in its stored membership, if it has one.
    pub async fn own_stored_address(&self) -> Result<Option<String>, MetaError> {
        let id = self.id;
        self.raft
            .with_raft_state(move |st| {
                st.membership_state.effective().membership().get_node(&id).map(|n| n.addr.clone())
            })
            .await
            .map_err(quorum_error)
    }

    /// Removes a voter (Kafka's RemoveRaftVoter), checked as Kafka checks it
    /// (`membership::check_remove`); it stops receiving the log. Only on the
    /// leader; bounded by `within`. A leader that removes itself steps down
    /// once the change commits (openraft), as Kafka's leader resigns.
    pub async fn remove_voter(&self, key: VoterKey, within: Duration) -> Result<(), VoterChangeError> {
        let id = node_id(key.id).map_err(|e| VoterChangeError::Invalid(e.to_string()))?;
        let Ok(_guard) = self.voter_change.clone().try_lock_owned() else {
            return membership::check_remove(&self.membership_view(true).await?, key);
        };
        membership::check_remove(&self.membership_view(false).await?, key)?;
        let change = ChangeMembers::RemoveVoters(BTreeSet::from([id]));
        match tokio::time::timeout(within, self.raft.change_membership(change, false)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(voter_change_error(write_error(e))),
            Err(_) => Err(VoterChangeError::TimedOut(format!("Timed out waiting for the removal of {key} to commit"))),
        }
    }
}
