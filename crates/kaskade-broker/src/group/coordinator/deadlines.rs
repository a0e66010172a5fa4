//! The index of the groups' timers: every group's earliest deadline, in
//! time order, so that the next deadline is the first entry (O(log n)) and
//! a tick visits only the groups with a timer due, never every group.
//!
//! Invariant (kept by `GroupCoordinator::reindex`, which every path that
//! changes a group's timers or removes a group calls; checked against a
//! full scan after every step of the unit tests and the simulation): for
//! every group `g` the index holds `(next_group_deadline(g), g)` if that is
//! `Some`, and it holds nothing else. A group's own timers (sessions, ids
//! handed out with MEMBER_ID_REQUIRED, the join and sync timers) are
//! scanned only when its entry is due or it is addressed, which costs its
//! own member count.

use std::collections::{BTreeSet, HashMap};

/// Groups by their earliest deadline.
#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    by_time: BTreeSet<(i64, String)>,
    by_group: HashMap<String, i64>,
}

impl Deadlines {
    /// Records `group_id`'s earliest deadline (`None`: no timer, or no group).
    pub(crate) fn set(&mut self, group_id: &str, deadline: Option<i64>) {
        let old = match deadline {
            Some(d) => self.by_group.insert(group_id.to_string(), d),
            None => self.by_group.remove(group_id),
        };
        if old != deadline {
            if let Some(old) = old {
                let removed = self.by_time.remove(&(old, group_id.to_string()));
                debug_assert!(removed, "an indexed group has its entry");
            }
            if let Some(d) = deadline {
                self.by_time.insert((d, group_id.to_string()));
            }
        }
        debug_assert_eq!(self.by_time.len(), self.by_group.len(), "one entry per indexed group");
    }

    /// `group_id`'s indexed deadline.
    pub(crate) fn get(&self, group_id: &str) -> Option<i64> {
        self.by_group.get(group_id).copied()
    }

    /// The earliest deadline of all.
    pub(crate) fn first(&self) -> Option<i64> {
        self.by_time.first().map(|(d, _)| *d)
    }

    /// The groups with a deadline at or before `now`, earliest first.
    pub(crate) fn due(&self, now: i64) -> Vec<String> {
        self.by_time.iter().take_while(|(d, _)| *d <= now).map(|(_, id)| id.clone()).collect()
    }

    /// Every indexed group and its deadline (for the tests' full-scan check).
    #[cfg(test)]
    pub(crate) fn entries(&self) -> &HashMap<String, i64> {
        &self.by_group
    }
}

#[cfg(test)]
mod tests {
    use super::Deadlines;

    #[test]
    fn orders_by_deadline_and_moves_entries() {
        let mut d = Deadlines::default();
        assert_eq!(d.first(), None);
        d.set("a", Some(30));
        d.set("b", Some(10));
        d.set("c", Some(20));
        assert_eq!(d.first(), Some(10));
        assert_eq!(d.due(20), vec!["b".to_string(), "c".to_string()]);
        // Moving a deadline removes the old entry.
        d.set("b", Some(40));
        assert_eq!(d.due(30), vec!["c".to_string(), "a".to_string()]);
        assert_eq!(d.get("b"), Some(40));
        d.set("c", None);
        d.set("a", None);
        d.set("missing", None);
        assert_eq!(d.due(100), vec!["b".to_string()]);
        assert_eq!(d.entries().len(), 1);
        // Two groups due at the same instant are both kept.
        d.set("e", Some(40));
        assert_eq!(d.due(40), vec!["b".to_string(), "e".to_string()]);
    }
}
