//! Where a follower cuts its log on a new leader epoch (KIP-101/279,
//! Kafka's `AbstractFetcherThread.getOffsetTruncationState`): the follower
//! asks the leader (OffsetForLeaderEpoch, as a replica) where its own latest
//! epoch ends on the leader, and keeps only what both logs agree on.
//!
//! With the leader's answer (the largest epoch <= the one asked for that it
//! knows, and where that epoch ends):
//! - the leader knows no such epoch (undefined end offset): the follower
//!   falls back to its HW (what the leader's HW once covered);
//! - the follower does not know the leader's epoch: it keeps up to the
//!   leader's end offset;
//! - the follower knows it and it is the same epoch: it keeps up to where
//!   the epoch ends on both;
//! - the follower's largest epoch <= the leader's is older: it cuts where
//!   that one ends locally and asks again (another round, KIP-279).
//!
//! Always clamped to the follower's own log end (a cut never extends).

use kaskade_types::{LeaderEpoch, Offset};

/// A truncation decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Truncation {
    pub to: Offset,
    /// `false`: cut to `to`, then ask the leader again.
    pub complete: bool,
}

/// Decides the truncation (see the module doc). `leader`: the answer's
/// epoch and end offset (`None` for -1); `local_end_for`: the follower's
/// epoch cache (`Log::end_offset_for_epoch`).
pub(super) fn truncation(
    local_end: Offset,
    hw: Offset,
    leader_epoch: Option<LeaderEpoch>,
    leader_end: Option<Offset>,
    local_end_for: impl Fn(LeaderEpoch) -> Option<(LeaderEpoch, Offset)>,
) -> Truncation {
    let done = |to: Offset| Truncation { to: to.min(local_end), complete: true };
    let Some(leader_end) = leader_end else { return done(hw) };
    let Some(leader_epoch) = leader_epoch else { return done(leader_end) };
    match local_end_for(leader_epoch) {
        None => done(leader_end),
        Some((epoch, end)) if epoch != leader_epoch => Truncation { to: end.min(local_end), complete: false },
        Some((_, end)) => done(end.min(leader_end)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A follower whose epochs 0, 2 and 3 start at 0, 10 and 20; log end 30.
    fn cache(e: LeaderEpoch) -> Option<(LeaderEpoch, Offset)> {
        match e.get() {
            0 | 1 => Some((LeaderEpoch(0), Offset(10))),
            2 => Some((LeaderEpoch(2), Offset(20))),
            3.. => Some((LeaderEpoch(3), Offset(30))),
            _ => None,
        }
    }

    fn t(leader_epoch: i32, leader_end: i64) -> Truncation {
        truncation(
            Offset(30),
            Offset(12),
            LeaderEpoch::from_wire(leader_epoch),
            (leader_end >= 0).then_some(Offset(leader_end)),
            cache,
        )
    }

    #[test]
    fn the_follower_keeps_what_both_logs_agree_on() {
        // The leader has epoch 3 up to 25: the follower's tail 25..30 goes.
        assert_eq!(t(3, 25), Truncation { to: Offset(25), complete: true });
        // The leader's epoch 3 goes further: nothing to cut.
        assert_eq!(t(3, 40), Truncation { to: Offset(30), complete: true });
        // The leader never had epoch 3; its epoch 2 ends at 18.
        assert_eq!(t(2, 18), Truncation { to: Offset(18), complete: true });
    }

    #[test]
    fn an_older_local_epoch_takes_another_round() {
        // The leader's largest epoch <= 3 is 1, which this follower never
        // saw (its 0 ends at 10): cut to 10, ask again.
        assert_eq!(t(1, 15), Truncation { to: Offset(10), complete: false });
    }

    #[test]
    fn an_unknown_answer_falls_back_to_the_hw_and_an_undefined_epoch_to_the_end() {
        assert_eq!(t(-1, -1), Truncation { to: Offset(12), complete: true }, "the HW");
        assert_eq!(t(-1, 22), Truncation { to: Offset(22), complete: true });
        let unknown = truncation(Offset(30), Offset(12), Some(LeaderEpoch(7)), Some(Offset(50)), |_| None);
        assert_eq!(unknown, Truncation { to: Offset(30), complete: true }, "never past the log end");
    }
}
