//! When the active controller runs its own leader elections, as KRaft's
//! QuorumController schedules `maybeBalancePartitionLeaders` and
//! `maybeElectUncleanLeaders`: a state machine without I/O, time an input
//! (`now`, milliseconds), so each step is unit-tested.
//!
//! - Rebalancing (`auto.leader.rebalance.enable`, on by default): while
//!   some partition is not led by its preferred replica and no run is
//!   pending, one is scheduled `leader.imbalance.check.interval.seconds`
//!   later (300 s by default), or 10 ms later if the last run stopped at
//!   its cap. KRaft's controller does not read
//!   `leader.imbalance.per.broker.percentage` (only the ZooKeeper
//!   controller did): any imbalanced partition whose preferred replica may
//!   lead is moved back at the next run.
//! - Unclean check: while some partition has no leader, one run is
//!   scheduled `unclean.leader.election.interval.ms` later (KRaft's
//!   internal config, 5 minutes). Kaskade also runs it at once when more
//!   leaderless partitions allow unclean elections than at the last step,
//!   which is how `unclean.leader.election.enable=true` set on an offline
//!   partition's topic takes effect right away (Kafka's ZooKeeper
//!   controller did that; KRaft waits for the periodic check).
//!
//! Invariants: a task is due at most once per schedule; nothing is
//! pending after [`ElectionTimer::became_active_controller`] (a new active
//! controller schedules from its own image).

/// Kafka's delay of a run rescheduled "immediately".
const IMMEDIATELY_MS: i64 = 10;

/// What the image says, at one step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// Some partition is not led by its preferred replica.
    pub imbalanced: bool,
    /// Partitions with no leader.
    pub leaderless: usize,
    /// Of those, the ones whose topic allows unclean elections.
    pub leaderless_unclean: usize,
}

/// Which runs are due now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Due {
    pub rebalance: bool,
    pub unclean: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Slot {
    /// When the pending run is due.
    at: Option<i64>,
    /// The last run stopped at its cap: the next one comes soon.
    immediately: bool,
}

impl Slot {
    /// Schedules a run if `wanted` and none is pending; whether one is due at `now`.
    fn step(&mut self, now: i64, wanted: bool, every_ms: i64) -> bool {
        if self.at.is_none() && wanted {
            self.at = Some(now.saturating_add(if self.immediately { IMMEDIATELY_MS } else { every_ms }));
        }
        match self.at {
            Some(at) if at <= now => {
                self.at = None;
                true
            }
            _ => false,
        }
    }
}

/// The active controller's election schedule.
#[derive(Clone, Debug)]
pub struct ElectionTimer {
    /// `None`: `auto.leader.rebalance.enable=false`.
    rebalance_every_ms: Option<i64>,
    unclean_every_ms: i64,
    rebalance: Slot,
    unclean: Slot,
    last_leaderless_unclean: usize,
}

impl ElectionTimer {
    pub fn new(rebalance_every_ms: Option<i64>, unclean_every_ms: i64) -> ElectionTimer {
        ElectionTimer {
            rebalance_every_ms: rebalance_every_ms.map(|ms| ms.max(1)),
            unclean_every_ms: unclean_every_ms.max(1),
            rebalance: Slot::default(),
            unclean: Slot::default(),
            last_leaderless_unclean: 0,
        }
    }

    /// This controller became active: nothing is pending.
    pub fn became_active_controller(&mut self) {
        *self = ElectionTimer::new(self.rebalance_every_ms, self.unclean_every_ms);
    }

    /// A step at `now` on an image with `facts`: what is due.
    pub fn step(&mut self, now: i64, facts: Facts) -> Due {
        let rebalance = match self.rebalance_every_ms {
            Some(every) => self.rebalance.step(now, facts.imbalanced, every),
            None => false,
        };
        if facts.leaderless_unclean > self.last_leaderless_unclean {
            // Unclean elections were just allowed (or a partition of such a
            // topic went offline): check now rather than at the interval.
            self.unclean.at = Some(now);
        }
        self.last_leaderless_unclean = facts.leaderless_unclean;
        let unclean = self.unclean.step(now, facts.leaderless > 0, self.unclean_every_ms);
        Due { rebalance, unclean }
    }

    /// A rebalancing run ended; `capped`: it stopped at its cap.
    pub fn rebalanced(&mut self, capped: bool) {
        self.rebalance.immediately = capped;
    }

    /// An unclean check ended; `capped`: it stopped at its cap.
    pub fn unclean_checked(&mut self, capped: bool) {
        self.unclean.immediately = capped;
    }

    /// The earliest pending run.
    pub fn next_deadline(&self) -> Option<i64> {
        [self.rebalance.at, self.unclean.at].into_iter().flatten().min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERY: i64 = 300_000;
    const UNCLEAN: i64 = 60_000;

    fn imbalanced() -> Facts {
        Facts { imbalanced: true, ..Facts::default() }
    }

    #[test]
    fn an_imbalance_is_rebalanced_one_interval_after_it_is_seen_and_again_while_it_lasts() {
        let mut t = ElectionTimer::new(Some(EVERY), UNCLEAN);
        assert_eq!(t.step(0, Facts::default()), Due::default(), "balanced: nothing scheduled");
        assert_eq!(t.next_deadline(), None);
        assert_eq!(t.step(1_000, imbalanced()), Due::default());
        assert_eq!(t.next_deadline(), Some(1_000 + EVERY));
        assert!(!t.step(EVERY, imbalanced()).rebalance, "not yet");
        assert!(t.step(1_000 + EVERY, imbalanced()).rebalance, "due");
        assert!(!t.step(1_000 + EVERY, imbalanced()).rebalance, "once per schedule");
        t.rebalanced(false);
        // Still imbalanced (the preferred replica is not back): another interval.
        assert_eq!(t.next_deadline(), Some(1_000 + 2 * EVERY));
        assert!(t.step(1_000 + 2 * EVERY, imbalanced()).rebalance);
    }

    #[test]
    fn a_run_that_hit_its_cap_is_followed_by_another_soon() {
        let mut t = ElectionTimer::new(Some(EVERY), UNCLEAN);
        t.step(0, imbalanced());
        assert!(t.step(EVERY, imbalanced()).rebalance);
        t.rebalanced(true);
        t.step(EVERY, imbalanced());
        assert_eq!(t.next_deadline(), Some(EVERY + IMMEDIATELY_MS));
        assert!(t.step(EVERY + IMMEDIATELY_MS, imbalanced()).rebalance);
        t.rebalanced(false);
        t.step(EVERY + IMMEDIATELY_MS, imbalanced());
        assert_eq!(t.next_deadline(), Some(2 * EVERY + IMMEDIATELY_MS));
    }

    #[test]
    fn auto_leader_rebalance_off_never_rebalances() {
        let mut t = ElectionTimer::new(None, UNCLEAN);
        for now in [0, EVERY, 10 * EVERY] {
            assert!(!t.step(now, imbalanced()).rebalance);
        }
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn a_leaderless_partition_is_checked_for_unclean_election_each_interval() {
        let mut t = ElectionTimer::new(None, UNCLEAN);
        let offline = Facts { leaderless: 1, ..Facts::default() };
        assert!(!t.step(0, offline).unclean);
        assert!(t.step(UNCLEAN, offline).unclean);
        t.unclean_checked(false);
        // Still offline: the next check one interval after this step.
        assert!(!t.step(UNCLEAN + 1, offline).unclean);
        assert!(!t.step(2 * UNCLEAN, offline).unclean);
        assert!(t.step(2 * UNCLEAN + 1, offline).unclean);
    }

    #[test]
    fn allowing_unclean_elections_on_an_offline_partition_checks_at_once() {
        let mut t = ElectionTimer::new(None, UNCLEAN);
        let offline = Facts { leaderless: 2, ..Facts::default() };
        t.step(0, offline);
        let allowed = Facts { leaderless: 2, leaderless_unclean: 1, ..Facts::default() };
        assert!(t.step(5, allowed).unclean, "checked at the step that sees the change");
        t.unclean_checked(false);
        assert!(!t.step(6, allowed).unclean, "no live replica: wait for the interval");
        assert_eq!(t.next_deadline(), Some(6 + UNCLEAN));
        // The second partition's topic allows it too now.
        assert!(t.step(7, Facts { leaderless: 2, leaderless_unclean: 2, ..Facts::default() }).unclean);
    }

    #[test]
    fn a_new_active_controller_has_nothing_pending() {
        let mut t = ElectionTimer::new(Some(EVERY), UNCLEAN);
        t.step(0, Facts { imbalanced: true, leaderless: 1, leaderless_unclean: 0 });
        assert!(t.next_deadline().is_some());
        t.became_active_controller();
        assert_eq!(t.next_deadline(), None);
        assert!(!t.step(EVERY, imbalanced()).rebalance, "scheduled afresh from this step");
        assert_eq!(t.next_deadline(), Some(2 * EVERY));
    }
}
