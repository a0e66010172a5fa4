//! The coordinator's timers: session expiry, MEMBER_ID_REQUIRED ids that
//! were never used, the join phase's end (initial delay, rebalance timeout)
//! and members that never synced.

use super::GroupCoordinator;
use crate::group::state::{Group, GroupState, JoinTimer};

impl GroupCoordinator {
    pub(super) fn fire_group_timers(&mut self, group_id: &str, now: i64) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        // Member ids handed out with MEMBER_ID_REQUIRED and never used.
        let before = group.pending_members.len();
        group.pending_members.retain(|_, deadline| *deadline > now);
        let pending_expired = group.pending_members.len() != before;
        // Expired sessions (a parked JoinGroup or SyncGroup keeps a member
        // in: the join and sync timers bound those waits).
        let expired: Vec<String> = group
            .members
            .values()
            .filter(|m| !m.is_awaiting_join() && !m.is_awaiting_sync() && m.session_deadline <= now)
            .map(|m| m.member_id.clone())
            .collect();
        for id in expired {
            self.remove_member_and_update_group(now, group_id, &id);
        }
        if pending_expired {
            self.maybe_complete_join(now, group_id);
        }
        self.fire_join_timer(group_id, now);
        self.fire_sync_timer(group_id, now);
    }

    fn fire_join_timer(&mut self, group_id: &str, now: i64) {
        let initial_delay = i64::from(self.config.initial_rebalance_delay_ms);
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        let Some((deadline, timer)) = group.join_timer else {
            return;
        };
        if deadline > now {
            return;
        }
        group.join_timer = None;
        match timer {
            JoinTimer::Initial { delay_ms, remaining_ms } if group.new_member_added && remaining_ms != 0 => {
                // Kafka's tryCompleteInitialRebalanceElseSchedule.
                group.new_member_added = false;
                let new_delay = initial_delay.min(remaining_ms);
                let new_remaining = (remaining_ms - delay_ms).max(0);
                group.join_timer =
                    Some((now + new_delay, JoinTimer::Initial { delay_ms: new_delay, remaining_ms: new_remaining }));
            }
            JoinTimer::Initial { .. } | JoinTimer::Rebalance => self.complete_join(now, group_id),
        }
    }

    fn fire_sync_timer(&mut self, group_id: &str, now: i64) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        let Some(deadline) = group.sync_deadline else {
            return;
        };
        if deadline > now {
            return;
        }
        group.sync_deadline = None;
        if !matches!(group.state, GroupState::CompletingRebalance | GroupState::Stable) {
            return;
        }
        // Members that never synced are dropped and the group rebalances.
        let laggards: Vec<String> = group.pending_sync.drain().collect();
        for id in laggards {
            self.remove_member_and_update_group(now, group_id, &id);
        }
    }
}

/// The earliest timer of a group.
pub(super) fn next_group_deadline(group: &Group) -> Option<i64> {
    let sessions =
        group.members.values().filter(|m| !m.is_awaiting_join() && !m.is_awaiting_sync()).map(|m| m.session_deadline);
    sessions
        .chain(group.pending_members.values().copied())
        .chain(group.join_timer.map(|(d, _)| d))
        .chain(group.sync_deadline)
        .min()
}
