//! A static member rejoining a Stable group under a new member id, whose
//! selected protocol stays (KIP-345): it takes its old id's place without
//! a rebalance, and the group record naming the new id is written. As in
//! Kafka 4 (`updateStaticMemberThenRebalanceOrCompleteJoin`), the
//! JoinGroup is answered only once that record is replicated; if the write
//! fails, the replacement is undone (the old member id is the group's
//! again, as the log still says) and the JoinGroup answers the mapped
//! error (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE) with no member id.
//! If the group rebalanced meanwhile, the new id stays (the rebalance's
//! records name it) and the JoinGroup answers REBALANCE_IN_PROGRESS, so
//! the member joins that rebalance.

use kafka_protocol::error::ResponseError;

use super::coordinator::GroupCoordinator;
use super::state::{GroupState, Member};
use super::types::{JoinResponse, Reply, Token};

impl GroupCoordinator {
    /// The group record of a static member's replacement resolved.
    pub(super) fn static_join_stored(
        &mut self,
        now: i64,
        group_id: &str,
        token: Token,
        previous: Member,
        (new_member, generation): (&str, i32),
        result: Result<(), ResponseError>,
    ) {
        let instance = previous.group_instance_id.clone().unwrap_or_default();
        let current = self.groups.get(group_id).and_then(|g| g.static_members.get(&instance)).cloned();
        let still_ours = current.as_deref() == Some(new_member);
        let unchanged =
            self.groups.get(group_id).is_some_and(|g| g.state == GroupState::Stable && g.generation_id == generation);
        let reply = match result {
            Ok(()) if still_ours && unchanged => {
                let is_leader = self.groups.get(group_id).is_some_and(|g| g.is_leader(new_member));
                self.join_response_for(group_id, new_member, is_leader, is_leader)
            }
            // A rebalance began meanwhile: the member joins it under its new
            // id (Kafka's parked join would be answered by that rebalance).
            Ok(()) if still_ours => JoinResponse::error(ResponseError::RebalanceInProgress, new_member),
            // Replaced again, or gone, while the record was written.
            Ok(()) if current.is_some() => JoinResponse::error(ResponseError::FencedInstanceId, new_member),
            Ok(()) => JoinResponse::error(ResponseError::UnknownMemberId, new_member),
            Err(error) => {
                if still_ours && unchanged {
                    self.undo_static_replacement(now, group_id, previous, new_member);
                }
                JoinResponse::error(error, "")
            }
        };
        self.complete(token, Reply::Join(reply));
    }

    /// Puts `previous` back in `new_member`'s place (same position, same
    /// leadership, same pending SyncGroup).
    fn undo_static_replacement(&mut self, now: i64, group_id: &str, mut previous: Member, new_member: &str) {
        let Some(group) = self.groups.get_mut(group_id) else { return };
        let Some(index) = group.members.get_index_of(new_member) else { return };
        let Some(replaced) = group.members.shift_remove(new_member) else { return };
        let old_id = previous.member_id.clone();
        previous.session_deadline = now + i64::from(previous.session_timeout_ms);
        previous.assignment = replaced.assignment;
        if let Some(instance) = &previous.group_instance_id {
            group.static_members.insert(instance.clone(), old_id.clone());
        }
        if group.is_leader(new_member) {
            group.leader_id = Some(old_id.clone());
        }
        if group.pending_sync.remove(new_member) {
            group.pending_sync.insert(old_id.clone());
        }
        group.members.shift_insert(index, old_id, previous);
        debug_assert!(!group.members.contains_key(new_member), "the replacement is undone");
        self.reindex(group_id);
    }
}
