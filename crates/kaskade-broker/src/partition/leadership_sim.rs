//! A seeded simulation of one replica's [`Leadership`] in a three-node
//! cluster: a model controller elects leaders (new epochs) and shrinks or
//! expands the ISR as Kafka's does, replicas' logs grow, and the replica
//! under test receives the controller's records (sometimes stale or
//! repeated, as a broker may see an old image again) and position reports
//! that lag the true positions. After every event the simulation checks:
//!
//! - the HW never moves back, and never passes the true position of any
//!   member of the ISR in force when it moved (no acknowledged record is
//!   missing from an in-sync replica);
//! - the epoch check answers what Kafka's would for the newest record
//!   applied (older: FENCED_LEADER_EPOCH, newer: UNKNOWN_LEADER_EPOCH, not
//!   leading: NOT_LEADER_OR_FOLLOWER);
//! - `became_leader` is reported exactly when this replica starts leading
//!   at an epoch it did not lead before;
//! - when it leads, the ISR it proposes (`isr_proposal`, written as the
//!   controller's next record when the epoch still holds) keeps itself,
//!   never drops a follower whose fetch reached its log end within
//!   `replica.lag.time.max.ms`, and adds only followers at or past its HW
//!   (so the HW rule above keeps holding);
//! - after every event the HW is at most this replica's log end, and it
//!   moved back only in an event that truncated the log: a follower
//!   cutting a divergent tail (on an election, or a tail an unclean leader
//!   never had) or starting over at its leader's log start, as Kafka's
//!   `truncateTo` / `truncateFullyAndStartAt`; a follower's HW is min(its
//!   leader's HW, its own log end).

use std::collections::BTreeSet;

use kafka_protocol::ResponseError;
use kaskade_types::{LeaderEpoch, NodeId, Offset};

use super::leadership::{LeaderAndIsr, Leadership};
use kaskade_types::sim::SimRng as Rng;

const NODES: [NodeId; 3] = [NodeId(1), NodeId(2), NodeId(3)];
const ME: NodeId = NodeId(1);

struct Sim {
    rng: Rng,
    /// Each node's true log position (only grows; a follower never passes
    /// the leader's).
    positions: [i64; 3],
    /// The controller's records, newest last.
    records: Vec<LeaderAndIsr>,
    /// The newest record the replica under test applied.
    applied: LeaderAndIsr,
    replica: Leadership,
    /// Epochs at which this replica was told it became leader.
    led: BTreeSet<LeaderEpoch>,
    /// The simulated clock (ms).
    now: i64,
    /// When each follower's fetch last reached this replica's log end
    /// while it led at the current epoch.
    caught_up: [Option<i64>; 3],
    /// ISR changes this replica proposed that the controller took.
    proposed: usize,
    /// The HW after the previous step.
    last_hw: Offset,
    /// This step truncated the replica's log (the HW may move back).
    truncated: bool,
    /// Truncations that moved the HW back.
    lowered: usize,
    /// The position this replica's log last reported: the log reports its
    /// position as appends and fsyncs move it forward, never on a
    /// truncation (the partition tells the leadership of those itself).
    reported_own: i64,
    /// The replica's log end when its current leadership began (what a
    /// follower must hold to join the ISR, with the HW).
    lead_start: i64,
}

/// `replica.lag.time.max.ms` in the simulation.
const LAG_MS: i64 = 1_000;

fn idx(n: NodeId) -> usize {
    NODES.iter().position(|m| *m == n).expect("a node of the simulation")
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let first =
            LeaderAndIsr { leader: Some(ME), epoch: LeaderEpoch(0), isr: NODES.to_vec(), replicas: NODES.to_vec() };
        let mut replica = Leadership::new(ME, &first, Offset(0));
        replica.began_leading_at(Offset(0));
        Sim {
            rng: Rng::new(seed),
            positions: [0; 3],
            records: vec![first.clone()],
            applied: first,
            replica,
            led: BTreeSet::from([LeaderEpoch(0)]),
            now: 0,
            caught_up: [None; 3],
            proposed: 0,
            last_hw: Offset(0),
            truncated: false,
            lowered: 0,
            reported_own: 0,
            lead_start: 0,
        }
    }

    fn newest(&self) -> &LeaderAndIsr {
        self.records.last().expect("the first record")
    }

    fn leader(&self) -> Option<NodeId> {
        self.newest().leader
    }

    fn step(&mut self) {
        self.now += self.rng.below(200) as i64;
        self.truncated = false;
        match self.rng.below(14) {
            0..=3 => self.grow(),
            4..=5 => self.report(),
            6 => self.elect(),
            7 => self.change_isr(),
            10 => self.propose_isr(),
            8 => self.deliver(self.records.len() - 1),
            11 => self.follow_leader_hw(),
            12 => self.lose_tail(),
            13 => self.start_over(),
            _ => {
                let old = self.rng.below(self.records.len() as u64) as usize;
                self.deliver(old)
            }
        }
        self.report_own();
        self.check_epoch_answers();
        self.check_hw_within_the_log();
    }

    /// The HW is at most the log end, and moved back only by a truncation.
    fn check_hw_within_the_log(&mut self) {
        let hw = self.replica.high_watermark();
        let end = self.positions[idx(ME)];
        assert!(hw.get() <= end, "HW {hw:?} past the log end {end}");
        if hw < self.last_hw {
            assert!(self.truncated, "HW moved back from {:?} to {hw:?} without a truncation", self.last_hw);
            self.lowered += 1;
        }
        self.last_hw = hw;
    }

    /// This replica's log is cut to `end` (Kafka's `truncateTo`).
    fn truncate_own(&mut self, end: i64) {
        self.positions[idx(ME)] = end;
        self.reported_own = end;
        self.truncated = true;
        let before = self.replica.high_watermark();
        let moved = self.replica.truncated(Offset(end));
        assert_eq!(moved.is_some(), before.get() > end, "truncated to {end} from HW {before:?}");
    }

    /// A follower learns its leader's HW from a fetch answer (the model's
    /// leader HW: what every member of the newest ISR holds).
    fn follow_leader_hw(&mut self) {
        let newest = self.newest().clone();
        if newest.leader == Some(ME) || newest.leader.is_none() || self.replica.is_leader() {
            return;
        }
        let leader_hw = newest.isr.iter().map(|m| self.positions[idx(*m)]).min().unwrap_or(0);
        let own_end = self.positions[idx(ME)];
        let before = self.replica.high_watermark();
        let moved = self.replica.follow_high_watermark(Offset(leader_hw), Offset(own_end));
        if let Some(hw) = moved {
            assert!(hw > before && hw.get() <= leader_hw.min(own_end), "followed to {hw:?}");
        }
    }

    /// A follower finds a tail its leader never had (an unclean leader's
    /// log diverged below this replica's HW) and cuts it (the fetcher's
    /// OFFSET_OUT_OF_RANGE path).
    fn lose_tail(&mut self) {
        if self.leader() == Some(ME) || self.replica.is_leader() {
            return;
        }
        let end = self.positions[idx(ME)];
        if end == 0 {
            return;
        }
        let cut = self.rng.below(end as u64 + 1) as i64;
        self.truncate_own(cut);
    }

    /// A follower whose log ends below its leader's log start (the leader
    /// deleted by retention) starts over there (Kafka's
    /// `truncateFullyAndStartAt`).
    fn start_over(&mut self) {
        let Some(leader) = self.leader() else { return };
        if leader == ME || self.replica.is_leader() {
            return;
        }
        let start = self.positions[idx(leader)];
        if start <= self.positions[idx(ME)] {
            return;
        }
        self.positions[idx(ME)] = start;
        self.reported_own = start;
        self.truncated = true;
        assert_eq!(self.replica.started_over(Offset(start)).unwrap_or(self.replica.high_watermark()), Offset(start));
    }

    /// The replica's own log reports its position whenever it moves forward
    /// (the log's position listener runs on the appending or flushing
    /// thread).
    fn report_own(&mut self) {
        if self.positions[idx(ME)] <= self.reported_own {
            return;
        }
        self.reported_own = self.positions[idx(ME)];
        let before = self.replica.high_watermark();
        let isr: Vec<NodeId> = self.replica.isr().collect();
        if let Some(hw) = self.replica.update_position(ME, Offset(self.positions[idx(ME)])) {
            assert!(hw > before, "a reported HW moves forward");
            self.check_hw_covered(hw, &isr);
        }
    }

    /// The leader appends; followers copy up to the leader's position.
    fn grow(&mut self) {
        let Some(leader) = self.leader() else { return };
        let l = idx(leader);
        self.positions[l] += 1 + self.rng.below(5) as i64;
        for n in 0..3 {
            if n != l && self.rng.chance(600) {
                let lag = self.rng.below(4) as i64;
                self.positions[n] = self.positions[n].max(self.positions[l] - lag);
            }
        }
    }

    /// A follower's position reaches the replica under test (its fetch),
    /// possibly late (a value a little below the truth).
    fn report(&mut self) {
        let member = NODES[1 + self.rng.below(2) as usize];
        // Followers learn of a new epoch at once in this model, and their
        // fetches carry it: a replica that has not applied it yet answers
        // UNKNOWN_LEADER_EPOCH (the partition's epoch check, before any
        // position is taken), so only same-epoch reports reach the rule.
        if self.replica.epoch() != self.newest().epoch {
            return;
        }
        let truth = self.positions[idx(member)];
        let reported = (truth - self.rng.below(3) as i64).max(0);
        let before = self.replica.high_watermark();
        let isr: Vec<NodeId> = self.replica.isr().collect();
        // The leader's end as the fetch finds it: this replica's position
        // when it leads (another leader's fetches do not reach it).
        let leader_end = self.positions[idx(ME)];
        if self.replica.is_leader() && reported >= leader_end {
            self.caught_up[idx(member)] = Some(self.now);
        }
        let moved = self.replica.follower_fetched(member, Offset(reported), Offset(leader_end), self.now);
        if let Some(hw) = moved {
            assert!(hw > before, "a reported HW moves forward");
            self.check_hw_covered(hw, &isr);
        }
    }

    /// The controller elects a new leader from the ISR (clean election).
    fn elect(&mut self) {
        let newest = self.newest().clone();
        let candidates = &newest.isr;
        let leader = candidates[self.rng.below(candidates.len() as u64) as usize];
        let epoch = LeaderEpoch(newest.epoch.get() + 1);
        self.records.push(LeaderAndIsr {
            leader: Some(leader),
            epoch,
            isr: newest.isr.clone(),
            replicas: NODES.to_vec(),
        });
        // A follower that becomes leader has what the old leader's HW
        // covered (it was in the ISR); its log is the new truth, and the
        // others cut their divergent tails (this replica through its log).
        let l = idx(leader);
        for n in 0..3 {
            let cut = self.positions[n].min(self.positions[l]);
            if n == idx(ME) && cut < self.positions[n] {
                self.truncate_own(cut);
            }
            self.positions[n] = cut;
        }
    }

    /// The controller shrinks the ISR (a lagging follower leaves) or
    /// expands it (a follower caught up to the leader's HW joins), at the
    /// same leader epoch, as AlterPartition does.
    fn change_isr(&mut self) {
        let newest = self.newest().clone();
        let Some(leader) = newest.leader else { return };
        let follower = NODES[self.rng.below(3) as usize];
        if follower == leader {
            return;
        }
        let mut isr = newest.isr.clone();
        if let Some(at) = isr.iter().position(|m| *m == follower) {
            isr.remove(at);
        } else {
            // Kafka adds a follower only once it reached the leader's HW;
            // the model's HW is the replica under test's when it leads.
            let hw = if leader == ME { self.replica.high_watermark().get() } else { self.positions[idx(leader)] };
            if self.positions[idx(follower)] < hw {
                return;
            }
            isr.push(follower);
        }
        self.records.push(LeaderAndIsr { leader: Some(leader), epoch: newest.epoch, isr, replicas: NODES.to_vec() });
    }

    /// The replica under test, leading, proposes an ISR; the controller
    /// takes it if its newest record is still the one the replica applied
    /// (AlterPartition's epoch checks).
    fn propose_isr(&mut self) {
        let Some(isr) = self.replica.isr_proposal(self.now, LAG_MS) else { return };
        let hw = self.replica.high_watermark();
        assert!(isr.contains(&ME), "a leader proposes an ISR without itself: {isr:?}");
        let current: Vec<NodeId> = self.replica.isr().collect();
        for m in NODES {
            let was = current.contains(&m);
            let stays = isr.contains(&m);
            if was && !stays {
                let recent = self.caught_up[idx(m)].is_some_and(|t| self.now - t <= LAG_MS);
                assert!(!recent, "{m:?} dropped though caught up within the lag (now {})", self.now);
            }
            if !was && stays {
                assert!(self.positions[idx(m)] >= hw.get(), "{m:?} added below the HW {hw:?}");
                assert!(
                    self.positions[idx(m)] >= self.lead_start,
                    "{m:?} added below the leader's epoch start {}",
                    self.lead_start
                );
            }
        }
        let newest = self.newest().clone();
        if newest == self.applied && newest.leader == Some(ME) {
            self.records.push(LeaderAndIsr { isr, ..newest });
            self.proposed += 1;
        }
    }

    /// The replica under test applies record `i` (the newest, or an old one
    /// seen again).
    fn deliver(&mut self, i: usize) {
        let record = self.records[i].clone();
        let before = self.replica.high_watermark();
        let was_leading_at = self.replica.is_leader().then(|| self.replica.epoch());
        let newer = record.epoch >= self.applied.epoch && i + 1 >= self.position_of_applied();
        let applied = self.replica.apply(&record);
        if record.epoch < self.applied.epoch {
            assert_eq!(applied.became_leader, None, "a stale record changes nothing");
            assert_eq!(applied.high_watermark, None, "a stale record changes nothing");
            return;
        }
        if newer {
            if record.epoch != self.applied.epoch || record.leader != self.applied.leader {
                self.caught_up = [None; 3];
            }
            self.applied = record.clone();
        }
        let leads_now = record.leader == Some(ME);
        let expect_became = leads_now && was_leading_at != Some(record.epoch);
        assert_eq!(applied.became_leader.is_some(), expect_became, "became_leader for {record:?}");
        if let Some(epoch) = applied.became_leader {
            assert!(self.led.insert(epoch), "told twice it became leader at {epoch:?}");
            self.lead_start = self.positions[idx(ME)];
            self.replica.began_leading_at(Offset(self.lead_start));
        }
        if let Some(hw) = applied.high_watermark {
            assert!(hw > before);
            let isr: Vec<NodeId> = self.replica.isr().collect();
            self.check_hw_covered(hw, &isr);
        }
    }

    /// Where the applied record sits among the controller's records.
    fn position_of_applied(&self) -> usize {
        self.records.iter().rposition(|r| *r == self.applied).map_or(0, |p| p + 1)
    }

    fn check_hw_covered(&self, hw: Offset, isr: &[NodeId]) {
        for m in isr {
            let truth = self.positions[idx(*m)];
            assert!(hw.get() <= truth, "HW {hw:?} passes {m:?}'s position {truth} (ISR {isr:?})");
        }
    }

    fn check_epoch_answers(&self) {
        let current = self.replica.epoch();
        let leads = self.replica.is_leader();
        for delta in [-1, 0, 1] {
            let asked = LeaderEpoch(current.get() + delta);
            let got = self.replica.check_epoch(Some(asked)).err().map(|e| e.response_error());
            let want = match delta {
                -1 => Some(ResponseError::FencedLeaderEpoch),
                1 => Some(ResponseError::UnknownLeaderEpoch),
                _ if !leads => Some(ResponseError::NotLeaderOrFollower),
                _ => None,
            };
            assert_eq!(got, want, "check_epoch({asked:?}) at {current:?}, leading: {leads}");
        }
        let none = self.replica.check_epoch(None).err().map(|e| e.response_error());
        assert_eq!(none, (!leads).then_some(ResponseError::NotLeaderOrFollower));
    }
}

#[test]
fn seeded_leadership_runs_keep_the_hw_and_epoch_rules() {
    // LSIM_SEED=n replays one seed.
    let only: Option<u64> = std::env::var("LSIM_SEED").ok().and_then(|s| s.parse().ok());
    let (mut proposed, mut lowered) = (0, 0);
    for seed in only.map_or(0..400, |s| s..s + 1) {
        let mut sim = Sim::new(seed);
        for step in 0..300 {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim.step()));
            if let Err(e) = r {
                panic!("seed {seed}, step {step}: {e:?}");
            }
        }
        proposed += sim.proposed;
        lowered += sim.lowered;
    }
    assert!(only.is_some() || proposed > 100, "the runs exercise ISR proposals ({proposed})");
    assert!(only.is_some() || lowered > 100, "the runs exercise truncations below the HW ({lowered})");
}
