//! A partition's leadership as a state machine without I/O: the leader
//! epoch, whether this node leads, the in-sync replicas (ISR) with each
//! member's position, and the high watermark (HW) decided from them, as
//! Kafka's `Partition` keeps them. Events in (the metadata image's
//! partition record, a replica's new position), decisions out (a new HW,
//! whether this node just became leader at a new epoch); the async
//! `Partition` around it only carries them out on the log.
//!
//! Requests carrying a `current_leader_epoch` are checked as Kafka's
//! `Partition.getLocalLog` checks them: the epoch first (older:
//! FENCED_LEADER_EPOCH, newer: UNKNOWN_LEADER_EPOCH, absent: no check), then
//! leadership (NOT_LEADER_OR_FOLLOWER).
//!
//! The HW rule: HW = min over the ISR members' positions, and it only moves
//! forward. A member's position is its durable end in durable mode (so an
//! acknowledged acks=all record is on disk on every ISR member) and its log
//! end in lazy mode ([`replica_position`]). On one node the ISR is this node
//! alone, so the HW is this node's position. A member whose position is not
//! known yet holds the HW where it is.
//!
//! The ISR rule (Kafka's `maybeShrinkIsr` / `maybeExpandIsr`): the leader
//! tracks when each follower was last caught up (its fetch reached the
//! leader's log end as it was at that fetch or at the follower's previous
//! one); a member not caught up for `replica.lag.time.max.ms` leaves the
//! ISR, and a replica outside it whose position reached the HW in this
//! leader epoch, and the leader's log end as of the epoch's start
//! (`leaderEpochStartOffset`), rejoins. [`Leadership::isr_proposal`] only proposes: the
//! change is made through the metadata log (AlterPartition semantics) and
//! comes back as a partition record.
//!
//! Truncation (Kafka's `truncateTo` / `truncateFullyAndStartAt` on a
//! follower): the HW becomes at most the new log end (a full restart sets
//! it to the new start), and this node's own position is clamped with it;
//! a follower's HW is otherwise min(its leader's HW, its own log end).
//!
//! Invariants: the HW never decreases except by a truncation, after which
//! it is at most the new log end; a leader is a member of its own ISR; the
//! leader epoch never decreases (an older partition record is ignored).

use std::collections::{BTreeMap, BTreeSet};

use kaskade_types::{LeaderEpoch, NodeId, Offset};

use super::error::PartitionError;

/// What the metadata image says about a partition's leadership (its
/// partition record: leader, leader epoch, ISR).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderAndIsr {
    /// `None` when the partition has no leader.
    pub leader: Option<NodeId>,
    pub epoch: LeaderEpoch,
    pub isr: Vec<NodeId>,
    /// Every replica of the partition (the ISR is a subset): who may fetch
    /// as a follower.
    pub replicas: Vec<NodeId>,
}

impl LeaderAndIsr {
    /// From the image's partition (its leader is already `None` for the record's -1).
    pub fn from_image(p: &kaskade_meta::PartitionImage) -> LeaderAndIsr {
        LeaderAndIsr { leader: p.leader, epoch: p.leader_epoch, isr: p.isr.clone(), replicas: p.replicas.clone() }
    }
}

/// Whom a follower acts for: the leader it fetched from and the leader
/// epoch it fetched at. Every follower action (append, truncation, start
/// over, following the HW) carries it and is refused once the replica's
/// leadership is another (Kafka's fetcher drops a response whose partition
/// moved on: `currentLeaderEpoch` no longer matches).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Following {
    pub leader: NodeId,
    pub epoch: LeaderEpoch,
}

/// A replica's position for the HW rule: its durable end in durable mode,
/// its log end in lazy mode.
pub fn replica_position(log_end: Offset, durable_end: Offset, durable_mode: bool) -> Offset {
    if durable_mode {
        durable_end.min(log_end)
    } else {
        log_end
    }
}

/// What the leader knows of one follower replica (Kafka's `Replica`
/// state), within one leader epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Follower {
    /// Its position as its last fetch said.
    position: Option<Offset>,
    /// When it was last caught up (ms); `None` until first known.
    caught_up_ms: Option<i64>,
    /// The leader's log end and the time of its previous fetch.
    last_fetch: Option<(Offset, i64)>,
}

/// An in-sync follower as its leader knows it ([`Leadership::in_sync_followers`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FollowerView {
    pub node: NodeId,
    /// Its position as its last fetch said.
    pub position: Offset,
    /// When (ms, the leader's clock) it was last caught up.
    pub caught_up_ms: i64,
}

/// What applying a partition record changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Applied {
    /// This node leads from now on at this (new) epoch: the partition
    /// records the epoch's start in the log's epoch cache.
    pub became_leader: Option<LeaderEpoch>,
    /// The HW moved forward (an ISR member with the lowest position left).
    pub high_watermark: Option<Offset>,
}

#[derive(Clone, Debug)]
pub struct Leadership {
    node: NodeId,
    epoch: LeaderEpoch,
    leader: Option<NodeId>,
    /// ISR member -> its position (`None` until it reported one).
    isr: BTreeMap<NodeId, Option<Offset>>,
    replicas: Vec<NodeId>,
    /// The other replicas, as the leader follows them (empty on a follower).
    followers: BTreeMap<NodeId, Follower>,
    /// Replicas this leader proposed into the ISR that the image does not
    /// have there yet. Until it does they count for the HW as members do
    /// (Kafka's maximal ISR while an expansion is pending, KIP-497): a
    /// record acknowledged meanwhile is on them too, so the new ISR, and
    /// a reassignment that the expansion completes by moving leadership to
    /// one of them, never lacks an acknowledged record.
    pending: BTreeSet<NodeId>,
    hw: Offset,
    /// This leader's log end when its epoch began (Kafka's
    /// `leaderEpochStartOffset`): a replica joins the ISR only once it
    /// holds that much. The HW alone is not enough: a new leader's HW may
    /// trail records an earlier leader acknowledged (a restarted leader's
    /// HW checkpoint, a HW it never heard of), and a replica admitted at
    /// that HW could be elected without them. `None` until told (a leader
    /// then admits no one).
    epoch_start: Option<Offset>,
}

impl Leadership {
    /// The leadership of `node`'s replica as `state` says, with the HW the
    /// log opened with.
    pub fn new(node: NodeId, state: &LeaderAndIsr, hw: Offset) -> Leadership {
        let mut l = Leadership {
            node,
            epoch: state.epoch,
            leader: None,
            isr: BTreeMap::new(),
            replicas: Vec::new(),
            followers: BTreeMap::new(),
            pending: BTreeSet::new(),
            hw,
            epoch_start: None,
        };
        l.set(state);
        l.check_invariants((state.epoch, hw));
        l
    }

    pub fn epoch(&self) -> LeaderEpoch {
        self.epoch
    }

    pub fn is_leader(&self) -> bool {
        self.leader == Some(self.node)
    }

    pub fn high_watermark(&self) -> Offset {
        self.hw
    }

    pub fn isr(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.isr.keys().copied()
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    /// The in-sync followers this leader has heard from in its epoch: each
    /// with its position and when it was last caught up (ms), for choosing
    /// a consumer's preferred read replica (KIP-392). Empty on a follower.
    pub fn in_sync_followers(&self) -> Vec<FollowerView> {
        if !self.is_leader() {
            return Vec::new();
        }
        self.isr
            .keys()
            .filter(|m| **m != self.node)
            .filter_map(|m| {
                let f = self.followers.get(m)?;
                Some(FollowerView { node: *m, position: f.position?, caught_up_ms: f.caught_up_ms? })
            })
            .collect()
    }

    /// `node` is another replica of this partition (a follower may fetch).
    pub fn is_follower_replica(&self, node: NodeId) -> bool {
        node != self.node && self.replicas.contains(&node)
    }

    /// Follower `member` fetched at `position` while this leader's log
    /// ended at `leader_end` (at `now_ms`): records when it was caught up
    /// and its position (which moves the HW if it is in the ISR, returned
    /// as `update_position` does). Ignored for a node that is not another
    /// replica or when this node does not lead.
    pub fn follower_fetched(
        &mut self,
        member: NodeId,
        position: Offset,
        leader_end: Offset,
        now_ms: i64,
    ) -> Option<Offset> {
        if !self.is_leader() || !self.is_follower_replica(member) {
            return None;
        }
        let f = self.followers.entry(member).or_default();
        if position >= leader_end {
            f.caught_up_ms = Some(now_ms);
        } else if let Some((end, at)) = f.last_fetch {
            // It has what the leader had at its previous fetch.
            if position >= end {
                f.caught_up_ms = Some(f.caught_up_ms.map_or(at, |c| c.max(at)));
            }
        }
        f.last_fetch = Some((leader_end, now_ms));
        f.position = Some(position);
        if self.pending.contains(&member) {
            // Counts for the HW as a member would (see `pending`).
            let before = (self.epoch, self.hw);
            let moved = self.advance_high_watermark();
            self.check_invariants(before);
            return moved;
        }
        self.update_position(member, position)
    }

    /// This node leads from `log_end` on in its epoch (its log end when the
    /// leadership began; see `epoch_start`). Ignored on a follower.
    pub fn began_leading_at(&mut self, log_end: Offset) {
        if self.is_leader() {
            self.epoch_start = Some(log_end);
        }
    }

    /// The ISR this leader wants at `now_ms` if it differs from the current
    /// one: members not caught up within `lag_max_ms` out, replicas whose
    /// position reached the HW (and were caught up within it) in. A member
    /// not heard from since this leadership began gets the full lag from
    /// the first check. Sorted by node id.
    pub fn isr_proposal(&mut self, now_ms: i64, lag_max_ms: i64) -> Option<Vec<NodeId>> {
        if !self.is_leader() {
            return None;
        }
        let me = self.node;
        let hw = self.hw;
        let mut changed = false;
        let mut isr: Vec<NodeId> = Vec::new();
        for m in self.isr.keys() {
            if *m == me {
                isr.push(*m);
                continue;
            }
            let f = self.followers.entry(*m).or_default();
            let since = *f.caught_up_ms.get_or_insert(now_ms);
            if now_ms - since > lag_max_ms {
                changed = true;
            } else {
                isr.push(*m);
            }
        }
        for r in &self.replicas {
            if *r == me || self.isr.contains_key(r) {
                continue;
            }
            // Kafka's `isFollowerInSync`: at the HW and at this epoch's start.
            let start = self.epoch_start;
            let caught_up = self.followers.get(r).is_some_and(|f| {
                f.position.is_some_and(|p| p >= hw && start.is_some_and(|s| p >= s))
                    && f.caught_up_ms.is_some_and(|c| now_ms - c <= lag_max_ms)
            });
            if caught_up {
                isr.push(*r);
                changed = true;
            }
        }
        isr.sort_unstable();
        // The members this proposal adds count for the HW from now on.
        self.pending =
            if changed { isr.iter().copied().filter(|m| !self.isr.contains_key(m)).collect() } else { BTreeSet::new() };
        changed.then_some(isr)
    }

    /// A follower learnt its leader's HW: its own is that, clamped to what
    /// it holds (`own_end`), forward only. `None` on the leader or when
    /// unchanged.
    pub fn follow_high_watermark(&mut self, leader_hw: Offset, own_end: Offset) -> Option<Offset> {
        let before = (self.epoch, self.hw);
        let hw = leader_hw.min(own_end);
        if self.is_leader() || hw <= self.hw {
            return None;
        }
        self.hw = hw;
        self.check_invariants(before);
        Some(hw)
    }

    /// The log was truncated to end at `end` (a follower cutting a
    /// divergent tail, Kafka's `truncateTo`): the HW is at most the new log
    /// end, the one move back the HW makes (as the log's own HW does), and
    /// so is this node's own position, or a later leadership of this node
    /// would decide a HW from data the log no longer holds. The new HW if
    /// it moved.
    pub fn truncated(&mut self, end: Offset) -> Option<Offset> {
        let before = (self.epoch, self.hw);
        self.clamp_own_position(end);
        let moved = (self.hw > end).then(|| {
            self.hw = end;
            end
        });
        self.check_after_truncation(before, end);
        moved
    }

    /// The log was started over, empty, at `start` (Kafka's
    /// `truncateFullyAndStartAt`: a follower whose log ended below its
    /// leader's log start): the HW is the new log end, forward or back, as
    /// Kafka's `updateHighWatermark(logEndOffsetMetadata)` there, and this
    /// node's own position is that end too. The new HW if it moved.
    pub fn started_over(&mut self, start: Offset) -> Option<Offset> {
        let before = (self.epoch, self.hw);
        if let Some(own) = self.isr.get_mut(&self.node) {
            *own = Some(start);
        }
        let moved = (self.hw != start).then(|| {
            self.hw = start;
            start
        });
        self.check_after_truncation(before, start);
        moved
    }

    /// This node's own position is at most its log end `end`.
    fn clamp_own_position(&mut self, end: Offset) {
        if let Some(Some(own)) = self.isr.get_mut(&self.node) {
            *own = (*own).min(end);
        }
    }

    /// Checks a request's `current_leader_epoch` (`None`: not given) and
    /// that this node leads, in Kafka's order: epoch first, then
    /// leadership.
    pub fn check_epoch(&self, current_leader_epoch: Option<LeaderEpoch>) -> Result<(), PartitionError> {
        match current_leader_epoch {
            Some(requested) if requested < self.epoch => {
                return Err(PartitionError::FencedLeaderEpoch { requested, current: self.epoch })
            }
            Some(requested) if requested > self.epoch => {
                return Err(PartitionError::UnknownLeaderEpoch { requested, current: self.epoch })
            }
            _ => {}
        }
        if !self.is_leader() {
            return Err(PartitionError::NotLeader);
        }
        Ok(())
    }

    /// Checks that this replica still follows `of.leader` at `of.epoch`, as
    /// every follower action must: an older epoch than this replica's is
    /// FENCED_LEADER_EPOCH (the action was decided before the replica moved
    /// on), a newer one UNKNOWN_LEADER_EPOCH, another leader (or this node
    /// leading) NOT_LEADER_OR_FOLLOWER.
    pub fn check_following(&self, of: Following) -> Result<(), PartitionError> {
        if of.epoch < self.epoch {
            return Err(PartitionError::FencedLeaderEpoch { requested: of.epoch, current: self.epoch });
        }
        if of.epoch > self.epoch {
            return Err(PartitionError::UnknownLeaderEpoch { requested: of.epoch, current: self.epoch });
        }
        if self.is_leader() || self.leader != Some(of.leader) {
            return Err(PartitionError::NotLeader);
        }
        Ok(())
    }

    /// Applies a newer (or the same) partition record; an older one is
    /// ignored, as Kafka ignores a stale LeaderAndIsr.
    pub fn apply(&mut self, state: &LeaderAndIsr) -> Applied {
        if state.epoch < self.epoch {
            return Applied { became_leader: None, high_watermark: None };
        }
        let before = (self.epoch, self.hw);
        let was_leader_at = self.is_leader().then_some(self.epoch);
        self.set(state);
        let became_leader = (self.is_leader() && was_leader_at != Some(self.epoch)).then_some(self.epoch);
        let high_watermark = self.advance_high_watermark();
        self.check_invariants(before);
        Applied { became_leader, high_watermark }
    }

    /// ISR member `member` is at `position`; the new HW if it moved. Only
    /// the leader decides the HW; positions of replicas outside the ISR do
    /// not count.
    pub fn update_position(&mut self, member: NodeId, position: Offset) -> Option<Offset> {
        let before = (self.epoch, self.hw);
        let slot = self.isr.get_mut(&member)?;
        *slot = Some(position);
        let moved = self.advance_high_watermark();
        self.check_invariants(before);
        moved
    }

    fn set(&mut self, state: &LeaderAndIsr) {
        // Other replicas' positions hold only within one leader epoch: at a
        // new one they may have truncated, so they count again once they
        // report (Kafka resets followers' state when a leader is elected).
        // This node's own position is the log's, reported as it moves.
        let new_epoch = state.epoch != self.epoch;
        let known = |m: &NodeId| if new_epoch && *m != self.node { None } else { self.isr.get(m).copied().flatten() };
        if new_epoch || state.leader != self.leader {
            // A new leadership follows its followers afresh (Kafka resets
            // their state on election).
            self.followers.clear();
            self.pending.clear();
            self.epoch_start = None;
        }
        // Proposed members the image now has (or no longer places here)
        // are pending no more.
        self.pending.retain(|m| !state.isr.contains(m) && state.replicas.contains(m));
        self.epoch = state.epoch;
        self.leader = state.leader;
        self.replicas = state.replicas.clone();
        self.followers.retain(|n, _| state.replicas.contains(n));
        let mut isr: BTreeMap<NodeId, Option<Offset>> = state.isr.iter().map(|m| (*m, known(m))).collect();
        // A leader is in its own ISR (Kafka's controller never elects
        // outside it); a record saying otherwise still counts this node.
        if self.is_leader() {
            isr.entry(self.node).or_insert(None);
        }
        self.isr = isr;
    }

    /// HW = min over the ISR's positions, forward only; unchanged while a
    /// member's position is unknown or this node does not lead.
    fn advance_high_watermark(&mut self) -> Option<Offset> {
        if !self.is_leader() {
            return None;
        }
        let pending = self.pending.iter().map(|m| self.followers.get(m).and_then(|f| f.position));
        let min = self.isr.values().copied().chain(pending).try_fold(None::<Offset>, |acc, p| {
            let p = p?;
            Some(Some(acc.map_or(p, |a: Offset| a.min(p))))
        })??;
        (min > self.hw).then(|| {
            self.hw = min;
            min
        })
    }

    /// The invariants of the module doc, against the state before the
    /// event (`before`: its epoch and HW).
    fn check_invariants(&self, before: (LeaderEpoch, Offset)) {
        self.check_leadership(before.0);
        debug_assert!(self.hw >= before.1, "HW moved back from {}: {self:?}", before.1);
    }

    /// The invariants after a truncation to `end`: the HW may have moved
    /// back, but not past the new log end.
    fn check_after_truncation(&self, before: (LeaderEpoch, Offset), end: Offset) {
        self.check_leadership(before.0);
        debug_assert!(self.hw <= end, "HW past the log end {end} after a truncation: {self:?}");
    }

    fn check_leadership(&self, epoch_before: LeaderEpoch) {
        debug_assert!(!self.is_leader() || self.isr.contains_key(&self.node), "a leader outside its ISR: {self:?}");
        debug_assert!(self.epoch >= epoch_before, "leader epoch moved back from {epoch_before}: {self:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: NodeId = NodeId(1);

    fn state(leader: i32, epoch: i32, isr: &[i32]) -> LeaderAndIsr {
        LeaderAndIsr {
            leader: (leader >= 0).then_some(NodeId(leader)),
            epoch: LeaderEpoch(epoch),
            isr: isr.iter().copied().map(NodeId).collect(),
            replicas: [1, 2, 3].into_iter().map(NodeId).collect(),
        }
    }

    /// This node leading from an empty log.
    fn leading(epoch: i32, isr: &[i32]) -> Leadership {
        let mut l = Leadership::new(ME, &state(1, epoch, isr), Offset(0));
        l.began_leading_at(Offset(0));
        l
    }

    fn code(r: Result<(), PartitionError>) -> Option<kafka_protocol::ResponseError> {
        r.err().map(|e| e.response_error())
    }

    #[test]
    fn followers_positions_from_an_older_epoch_do_not_count() {
        // Leader at epoch 5 with follower 2 at 10; node 3 leads epoch 6
        // (follower 2 may truncate), then this node leads epoch 7.
        let mut l = leading(5, &[1, 2]);
        l.update_position(NodeId(2), Offset(10));
        assert_eq!(l.update_position(ME, Offset(8)), Some(Offset(8)));
        l.apply(&state(3, 6, &[3, 1, 2]));
        l.apply(&state(1, 7, &[1, 2]));
        assert_eq!(l.update_position(ME, Offset(12)), None, "follower 2's epoch-5 position is forgotten");
        assert_eq!(l.update_position(NodeId(2), Offset(9)), Some(Offset(9)));
    }

    #[test]
    fn an_older_epoch_is_fenced() {
        let l = leading(5, &[1]);
        assert_eq!(code(l.check_epoch(Some(LeaderEpoch(4)))), Some(kafka_protocol::ResponseError::FencedLeaderEpoch));
    }

    #[test]
    fn a_newer_epoch_is_unknown() {
        let l = leading(5, &[1]);
        assert_eq!(code(l.check_epoch(Some(LeaderEpoch(6)))), Some(kafka_protocol::ResponseError::UnknownLeaderEpoch));
    }

    #[test]
    fn the_current_or_no_epoch_passes_on_the_leader() {
        let l = leading(5, &[1]);
        assert!(l.check_epoch(Some(LeaderEpoch(5))).is_ok());
        assert!(l.check_epoch(None).is_ok());
    }

    #[test]
    fn a_follower_answers_not_leader_after_the_epoch_check() {
        let l = Leadership::new(ME, &state(2, 5, &[2, 1]), Offset(0));
        assert!(!l.is_leader());
        assert_eq!(code(l.check_epoch(None)), Some(kafka_protocol::ResponseError::NotLeaderOrFollower));
        assert_eq!(code(l.check_epoch(Some(LeaderEpoch(5)))), Some(kafka_protocol::ResponseError::NotLeaderOrFollower));
        // The epoch is checked first, as Kafka's getLocalLog does.
        assert_eq!(code(l.check_epoch(Some(LeaderEpoch(4)))), Some(kafka_protocol::ResponseError::FencedLeaderEpoch));
        let leaderless = Leadership::new(ME, &state(-1, 5, &[]), Offset(0));
        assert_eq!(code(leaderless.check_epoch(None)), Some(kafka_protocol::ResponseError::NotLeaderOrFollower));
    }

    #[test]
    fn a_follower_action_holds_only_for_the_leadership_it_was_decided_at() {
        let mut l = Leadership::new(ME, &state(2, 5, &[2, 1]), Offset(0));
        let of = |leader, epoch| Following { leader: NodeId(leader), epoch: LeaderEpoch(epoch) };
        assert!(l.check_following(of(2, 5)).is_ok());
        use kafka_protocol::ResponseError::*;
        let refused =
            |l: &Leadership, leader, epoch| l.check_following(of(leader, epoch)).err().map(|e| e.response_error());
        assert_eq!(refused(&l, 2, 4), Some(FencedLeaderEpoch), "an answer from an older leadership");
        assert_eq!(refused(&l, 2, 6), Some(UnknownLeaderEpoch));
        assert_eq!(refused(&l, 3, 5), Some(NotLeaderOrFollower), "another leader");
        // Node 3 is elected: what node 2's fetch at epoch 5 brings is stale.
        l.apply(&state(3, 6, &[3, 1]));
        assert_eq!(refused(&l, 2, 5), Some(FencedLeaderEpoch));
        assert!(l.check_following(of(3, 6)).is_ok());
        // This node is elected: no follower action at all.
        l.apply(&state(1, 7, &[1, 3]));
        assert_eq!(refused(&l, 1, 7), Some(NotLeaderOrFollower));
        assert_eq!(refused(&l, 3, 6), Some(FencedLeaderEpoch));
        let leaderless = Leadership::new(ME, &state(-1, 8, &[1]), Offset(0));
        assert_eq!(refused(&leaderless, 3, 8), Some(NotLeaderOrFollower));
    }

    #[test]
    fn one_member_isr_hw_is_its_position() {
        let mut l = leading(0, &[1]);
        assert_eq!(l.update_position(ME, Offset(7)), Some(Offset(7)));
        assert_eq!(l.update_position(ME, Offset(7)), None, "unchanged");
        assert_eq!(l.update_position(ME, Offset(9)), Some(Offset(9)));
        assert_eq!(l.high_watermark(), Offset(9));
    }

    #[test]
    fn three_member_isr_hw_is_the_minimum_position() {
        let mut l = leading(0, &[1, 2, 3]);
        assert_eq!(l.update_position(ME, Offset(10)), None, "2 and 3 unknown");
        assert_eq!(l.update_position(NodeId(2), Offset(8)), None, "3 unknown");
        assert_eq!(l.update_position(NodeId(3), Offset(6)), Some(Offset(6)));
        assert_eq!(l.update_position(NodeId(2), Offset(12)), None, "3 still lowest");
        assert_eq!(l.update_position(NodeId(3), Offset(11)), Some(Offset(10)), "now this node is lowest");
        assert_eq!(l.update_position(NodeId(4), Offset(0)), None, "not in the ISR");
        // The lowest member leaves the ISR: the HW moves to the next lowest.
        l.update_position(NodeId(3), Offset(10));
        l.update_position(ME, Offset(20));
        assert_eq!(l.high_watermark(), Offset(10));
        let applied = l.apply(&state(1, 0, &[1, 2]));
        assert_eq!(applied, Applied { became_leader: None, high_watermark: Some(Offset(12)) });
    }

    #[test]
    fn hw_never_moves_back() {
        let mut l = leading(0, &[1]);
        l.update_position(ME, Offset(9));
        assert_eq!(l.update_position(ME, Offset(4)), None, "a lower position (durable mode after lazy)");
        assert_eq!(l.high_watermark(), Offset(9));
        // A member joining the ISR behind the HW does not lower it either.
        l.apply(&state(1, 0, &[1, 2]));
        assert_eq!(l.update_position(NodeId(2), Offset(3)), None);
        assert_eq!(l.high_watermark(), Offset(9));
    }

    #[test]
    fn becoming_leader_reports_the_new_epoch_once() {
        let mut l = Leadership::new(ME, &state(2, 3, &[2, 1]), Offset(0));
        assert_eq!(l.apply(&state(1, 4, &[1])).became_leader, Some(LeaderEpoch(4)));
        assert_eq!(l.apply(&state(1, 4, &[1])).became_leader, None, "same epoch: nothing new");
        assert_eq!(l.apply(&state(1, 5, &[1])).became_leader, Some(LeaderEpoch(5)), "re-elected");
        assert_eq!(l.apply(&state(2, 3, &[2])), Applied { became_leader: None, high_watermark: None }, "stale");
        assert_eq!(l.epoch(), LeaderEpoch(5));
        assert!(l.is_leader());
    }

    #[test]
    fn a_follower_follows_its_leaders_hw_within_what_it_holds() {
        let mut l = Leadership::new(ME, &state(2, 3, &[2, 1]), Offset(0));
        assert!(l.is_follower_replica(NodeId(3)) && !l.is_follower_replica(ME));
        assert_eq!(l.follow_high_watermark(Offset(10), Offset(6)), Some(Offset(6)), "clamped to its end");
        assert_eq!(l.follow_high_watermark(Offset(4), Offset(6)), None, "forward only");
        l.truncated(Offset(5));
        assert_eq!(l.high_watermark(), Offset(5));
        let mut leader = leading(3, &[1]);
        assert_eq!(leader.follow_high_watermark(Offset(10), Offset(10)), None, "a leader decides its own");
    }

    #[test]
    fn truncation_lowers_the_hw_to_the_new_log_end_only() {
        let mut l = Leadership::new(ME, &state(2, 3, &[2, 1]), Offset(10));
        assert_eq!(l.truncated(Offset(12)), None, "the HW is below the new end already");
        assert_eq!(l.high_watermark(), Offset(10));
        assert_eq!(l.truncated(Offset(6)), Some(Offset(6)));
        assert_eq!(l.high_watermark(), Offset(6));
        // Afterwards the follower's HW is min(leader HW, own end) again.
        assert_eq!(l.follow_high_watermark(Offset(20), Offset(8)), Some(Offset(8)));
    }

    #[test]
    fn a_truncated_follower_that_becomes_leader_decides_from_its_new_end() {
        // Led with HW 10, then followed node 2 and cut its tail to 6.
        let mut l = leading(0, &[1]);
        assert_eq!(l.update_position(ME, Offset(10)), Some(Offset(10)));
        l.apply(&state(2, 1, &[2, 1]));
        assert_eq!(l.truncated(Offset(6)), Some(Offset(6)));
        // Leading again: its own position is the truncated end, not the 10
        // it reported before, so the HW stays within the log.
        assert_eq!(l.apply(&state(1, 2, &[1])).high_watermark, None);
        assert_eq!(l.high_watermark(), Offset(6));
        assert_eq!(l.update_position(ME, Offset(7)), Some(Offset(7)));
    }

    #[test]
    fn starting_over_sets_the_hw_to_the_new_start_either_way() {
        let mut l = Leadership::new(ME, &state(2, 3, &[2, 1]), Offset(10));
        assert_eq!(l.started_over(Offset(50)), Some(Offset(50)), "forward: the leader's log start");
        assert_eq!(l.started_over(Offset(50)), None, "unchanged");
        assert_eq!(l.started_over(Offset(40)), Some(Offset(40)), "back: never past the new end");
        // In the ISR, its own position is the new start.
        let mut member = leading(0, &[1]);
        member.update_position(ME, Offset(30));
        member.apply(&state(2, 1, &[2, 1]));
        assert_eq!(member.started_over(Offset(5)), Some(Offset(5)));
        assert_eq!(member.apply(&state(1, 2, &[1])).high_watermark, None);
        assert_eq!(member.high_watermark(), Offset(5));
    }

    #[test]
    fn a_lagging_member_leaves_the_isr_and_a_caught_up_replica_joins() {
        const LAG: i64 = 30_000;
        let mut l = leading(0, &[1, 2, 3]);
        l.update_position(ME, Offset(10));
        assert_eq!(l.isr_proposal(0, LAG), None, "the clock starts at the first check");
        // 2 keeps up (it reaches the leader's end), 3 never fetches.
        l.follower_fetched(NodeId(2), Offset(10), Offset(10), 20_000);
        assert_eq!(l.isr_proposal(30_000, LAG), None, "3 within the lag still");
        l.follower_fetched(NodeId(2), Offset(10), Offset(12), 31_000);
        assert_eq!(l.isr_proposal(30_001, LAG), Some(vec![ME, NodeId(2)]), "3 lagged 30 s");
        l.apply(&state(1, 0, &[1, 2]));
        // 2 falls behind: at its next fetch it has what the leader had at
        // its previous one (12), so it was caught up then (31 s).
        l.follower_fetched(NodeId(2), Offset(12), Offset(40), 50_000);
        assert_eq!(l.isr_proposal(61_000, LAG), None);
        assert_eq!(l.isr_proposal(61_001, LAG), Some(vec![ME]), "2 not caught up since 31 s");
        l.apply(&state(1, 0, &[1]));
        // 3 comes back and reaches the HW: it rejoins; 2 (behind) does not.
        l.update_position(ME, Offset(40));
        l.follower_fetched(NodeId(3), Offset(40), Offset(40), 62_000);
        l.follower_fetched(NodeId(2), Offset(20), Offset(40), 62_000);
        assert_eq!(l.isr_proposal(62_000, LAG), Some(vec![ME, NodeId(3)]));
        // Not the leader: nothing is proposed or recorded.
        let mut f = Leadership::new(ME, &state(2, 0, &[2, 1]), Offset(0));
        assert_eq!(f.follower_fetched(NodeId(3), Offset(5), Offset(5), 0), None);
        assert_eq!(f.isr_proposal(100_000, LAG), None);
    }

    /// Issue 14 (a 100-fault run): a leader restarted with a HW checkpoint
    /// far behind its log end admitted a wiped replica that had reached
    /// only that HW; elected next, the wiped replica had none of the
    /// acknowledged records and the others truncated theirs to match.
    /// Kafka's rule: a replica joins only once it also holds the leader's
    /// log end as of the start of its epoch.
    #[test]
    fn a_replica_joins_only_once_it_holds_the_leaders_epoch_start() {
        const LAG: i64 = 30_000;
        // Led from a log ending at 100 with a stale HW of 10; 2 in the ISR
        // has not fetched yet, so the HW stays at 10.
        let mut l = Leadership::new(ME, &state(1, 5, &[1, 2]), Offset(10));
        l.began_leading_at(Offset(100));
        l.update_position(ME, Offset(100));
        assert_eq!(l.high_watermark(), Offset(10));
        // 3 (wiped) reached the HW and the leader's end as of its previous
        // fetch, but not the epoch start.
        l.follower_fetched(NodeId(3), Offset(10), Offset(100), 1_000);
        l.follower_fetched(NodeId(3), Offset(60), Offset(100), 2_000);
        assert_eq!(l.isr_proposal(2_000, LAG), None, "3 lacks 60..100");
        l.follower_fetched(NodeId(3), Offset(100), Offset(100), 3_000);
        assert_eq!(l.isr_proposal(3_000, LAG), Some(vec![ME, NodeId(2), NodeId(3)]));
        // A leadership never told its start admits no one.
        let mut untold = Leadership::new(ME, &state(1, 6, &[1]), Offset(0));
        untold.follower_fetched(NodeId(2), Offset(0), Offset(0), 0);
        assert_eq!(untold.isr_proposal(0, LAG), None);
    }

    #[test]
    fn replicas_proposed_into_the_isr_count_for_the_hw_until_the_image_has_them() {
        const LAG: i64 = 30_000;
        // A move's new replicas 2 and 3 (replicas 1, 2, 3; ISR 1).
        let mut l = leading(0, &[1]);
        l.update_position(ME, Offset(10));
        l.follower_fetched(NodeId(2), Offset(10), Offset(10), 0);
        l.follower_fetched(NodeId(3), Offset(10), Offset(10), 0);
        assert_eq!(l.isr_proposal(0, LAG), Some(vec![ME, NodeId(2), NodeId(3)]));
        // Until the image says so, a record the followers lack is not acknowledged.
        assert_eq!(l.update_position(ME, Offset(15)), None, "2 and 3 are at 10");
        assert_eq!(l.high_watermark(), Offset(10));
        assert_eq!(l.follower_fetched(NodeId(2), Offset(15), Offset(15), 1), None, "3 still at 10");
        assert_eq!(l.follower_fetched(NodeId(3), Offset(15), Offset(15), 1), Some(Offset(15)));
        // The image with the new ISR: members now, pending no more.
        l.apply(&state(1, 0, &[1, 2, 3]));
        assert!(l.pending.is_empty());
        // A proposal that did not land is recomputed: a replica fallen
        // behind is dropped from it and stops holding the HW back.
        let mut l = leading(0, &[1]);
        l.update_position(ME, Offset(10));
        l.follower_fetched(NodeId(2), Offset(10), Offset(10), 0);
        assert_eq!(l.isr_proposal(0, LAG), Some(vec![ME, NodeId(2)]));
        assert_eq!(l.update_position(ME, Offset(20)), None);
        l.follower_fetched(NodeId(2), Offset(12), Offset(20), 40_000);
        assert_eq!(l.isr_proposal(40_000, LAG), None, "2 lagged past the limit: not proposed");
        assert_eq!(l.update_position(ME, Offset(21)), Some(Offset(21)));
    }

    #[test]
    fn a_leader_is_in_its_own_isr() {
        let l = Leadership::new(ME, &state(1, 0, &[]), Offset(0));
        assert_eq!(l.isr().collect::<Vec<_>>(), vec![ME]);
    }
}
