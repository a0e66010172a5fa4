//! The coordinator's timers: session expiry, MEMBER_ID_REQUIRED ids that
//! were never used, the join phase's end (initial delay, rebalance timeout)
//! and members that never synced. They are found through the deadline
//! index (`deadlines`): `tick` fires the groups whose earliest deadline has
//! come, `settle` the one group a request addresses.

#[cfg(test)]
use std::collections::HashMap;

use super::GroupCoordinator;
use crate::group::state::{Group, GroupState, JoinTimer};

/// Bounds the rounds of one tick: a timer's action may arm another timer
/// already due (a zero delay), and every such action makes progress.
const MAX_TICK_ROUNDS: usize = 1000;

impl GroupCoordinator {
    /// The earliest time a timer is due, if any.
    pub fn next_deadline(&self) -> Option<i64> {
        self.deadlines.first()
    }

    /// Fires every timer due at or before `now`: only the groups whose
    /// earliest deadline has come are visited.
    pub fn tick(&mut self, now: i64) {
        for _ in 0..MAX_TICK_ROUNDS {
            let due = self.deadlines.due(now);
            if due.is_empty() {
                return;
            }
            for group_id in due {
                self.fire_group_timers(&group_id, now);
                self.reindex(&group_id);
            }
        }
    }

    /// Re-reads `group_id`'s timers into the index (after a request changed
    /// the group, fires its timers due at or before `now`). Called before a
    /// request addressed to the group (its timers that were due come first)
    /// and after it (the index learns what the request changed).
    pub(crate) fn settle(&mut self, group_id: &str, now: i64) {
        self.reindex(group_id);
        for _ in 0..MAX_TICK_ROUNDS {
            if self.deadlines.get(group_id).is_none_or(|d| d > now) {
                return;
            }
            self.fire_group_timers(group_id, now);
            self.reindex(group_id);
        }
    }

    /// Puts `group_id`'s earliest deadline (none if it is gone) in the index.
    pub(crate) fn reindex(&mut self, group_id: &str) {
        let deadline = self.groups.get(group_id).and_then(next_group_deadline);
        self.deadlines.set(group_id, deadline);
    }

    /// [`GroupCoordinator::tick`] as it was before the index: every group
    /// scanned (the reference the index is tested against).
    #[cfg(test)]
    pub(crate) fn tick_by_full_scan(&mut self, now: i64) {
        for _ in 0..MAX_TICK_ROUNDS {
            let due: Vec<String> = self
                .groups
                .values()
                .filter(|g| next_group_deadline(g).is_some_and(|d| d <= now))
                .map(|g| g.group_id.clone())
                .collect();
            if due.is_empty() {
                return;
            }
            for group_id in due {
                self.fire_group_timers(&group_id, now);
                self.reindex(&group_id);
            }
        }
    }

    /// Asserts the index holds exactly what a scan of every group finds.
    #[cfg(test)]
    pub(crate) fn check_deadline_index(&self) {
        let scanned: HashMap<String, i64> =
            self.groups.values().filter_map(|g| next_group_deadline(g).map(|d| (g.group_id.clone(), d))).collect();
        assert_eq!(self.deadlines.entries(), &scanned, "the deadline index matches a full scan");
    }

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
