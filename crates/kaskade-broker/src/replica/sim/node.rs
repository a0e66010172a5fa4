//! One simulated replica of the partition: its durable state (the log as
//! batches of one record each, how much of it is fsynced, the leader-epoch
//! cache, the HW checkpoint) and its volatile state (the [`Leadership`]
//! the broker keeps, the replica fetcher's progress, the acks=all
//! produces waiting for the HW), driven as the broker drives them:
//!
//! - as leader, Produce appends at its epoch after the `min.insync.replicas`
//!   check, a follower's Fetch is checked (`check_epoch`), recorded
//!   (`follower_fetched`) and answered from its offset with the HW, an fsync
//!   reports its own position (`update_position`, durable mode), and an
//!   acks=all produce is answered once the HW passes it (with
//!   NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR shrank meanwhile), or
//!   refused when leadership moves;
//! - as follower, the fetcher truncates on each new leader epoch with
//!   OffsetForLeaderEpoch (`replica::truncation`), fetches from its log
//!   end, appends, waits for the fsync before it follows the leader's HW
//!   and fetches again (durable mode); a fenced epoch parks it until a
//!   newer image, other refusals back off; out of range cuts to the
//!   leader's HW, as `replica::fetcher` does.
//!
//! A crash keeps only the durable state: the log is cut to its fsynced
//! end and the epoch cache to the log, as a restart's recovery does.

use kaskade_types::{LeaderEpoch, NodeId, Offset};

use super::net::{Entry, Fetched, Msg, Refusal};
use super::MIN_ISR;
use crate::partition::error::PartitionError;
use crate::partition::leadership::replica_position;
use crate::partition::{LeaderAndIsr, Leadership};
use crate::replica::truncation::truncation;

/// A fetch answers at most this many records.
const FETCH_MAX: usize = 8;
/// An unanswered request is given up after this long (ms).
const REQUEST_TIMEOUT_MS: i64 = 60;
/// `replica.fetch.backoff.ms` of the simulation.
const BACKOFF_MS: i64 = 40;

/// An acks=all produce waiting for the HW.
#[derive(Clone, Copy, Debug)]
struct PendingAck {
    offset: Offset,
    value: u64,
}

/// The request the fetcher waits for.
#[derive(Clone, Copy, Debug)]
struct Outstanding {
    id: u64,
    /// The leader epoch it was sent at.
    epoch: LeaderEpoch,
    sent_at: i64,
}

#[derive(Clone, Debug, Default)]
struct Fetcher {
    truncated_for: Option<LeaderEpoch>,
    parked_at: Option<LeaderEpoch>,
    outstanding: Option<Outstanding>,
    backoff_until: i64,
    /// Appended, not yet fsynced: the leader HW to follow once it is.
    awaiting_fsync: Option<Offset>,
}

#[derive(Debug)]
pub(super) struct Node {
    pub id: NodeId,
    pub alive: bool,
    // Durable.
    pub log: Vec<Entry>,
    pub durable_end: usize,
    /// The shortest the log was since the checks last looked (a cut may
    /// have replaced what they verified).
    pub low_water: usize,
    /// (epoch, start offset), as the `leader-epoch-checkpoint`.
    epochs: Vec<(LeaderEpoch, Offset)>,
    hw_checkpoint: Offset,
    // Volatile.
    pub leadership: Option<Leadership>,
    /// This process run (a restart makes a new one).
    pub incarnation: u64,
    /// The controller took this incarnation's registration: only then
    /// does it apply images (host the partition).
    pub registered: bool,
    /// The image version its registration was taken at: older ones (still
    /// on their way) are from before it.
    registered_at: u64,
    applied_version: u64,
    partition_epoch: i32,
    fetcher: Fetcher,
    acks: Vec<PendingAck>,
}

/// What a node sends back after an event: (to whom, what).
pub(super) type Answers = Vec<(super::net::Addr, Msg)>;

impl Node {
    pub fn new(id: NodeId) -> Node {
        Node {
            id,
            alive: true,
            log: Vec::new(),
            durable_end: 0,
            low_water: 0,
            epochs: Vec::new(),
            hw_checkpoint: Offset(0),
            leadership: None,
            incarnation: 0,
            registered: true,
            registered_at: 0,
            applied_version: 0,
            partition_epoch: 0,
            fetcher: Fetcher::default(),
            acks: Vec::new(),
        }
    }

    pub fn log_end(&self) -> Offset {
        Offset(self.log.len() as i64)
    }

    /// Its position for the HW rule (durable mode).
    fn position(&self) -> Offset {
        replica_position(self.log_end(), Offset(self.durable_end as i64), true)
    }

    pub fn high_watermark(&self) -> Offset {
        self.leadership.as_ref().map_or(self.hw_checkpoint, Leadership::high_watermark)
    }

    pub fn is_leader(&self) -> bool {
        self.leadership.as_ref().is_some_and(Leadership::is_leader)
    }

    /// One line for a failure's report.
    pub fn summary(&self) -> String {
        let l = self
            .leadership
            .as_ref()
            .map(|l| (l.leader().map(|n| n.get()), l.epoch().get(), l.isr().map(|n| n.get()).collect::<Vec<_>>()));
        format!(
            "node {} alive {} end {} durable {} hw {} epochs {:?} (leader, epoch, isr) {:?} image v{} fetcher {:?}",
            self.id,
            self.alive,
            self.log.len(),
            self.durable_end,
            self.high_watermark(),
            self.epochs.iter().map(|(e, s)| (e.get(), s.get())).collect::<Vec<_>>(),
            l,
            self.applied_version,
            self.fetcher
        )
    }

    /// Loses everything volatile and the log past its fsynced end.
    pub fn crash(&mut self) {
        self.alive = false;
        self.log.truncate(self.durable_end);
        self.low_water = self.low_water.min(self.log.len());
        let end = self.log_end();
        self.epochs.retain(|(_, start)| *start < end);
        self.hw_checkpoint = self.hw_checkpoint.min(end);
        self.leadership = None;
        self.registered = false;
        self.applied_version = 0;
        self.fetcher = Fetcher::default();
        self.acks.clear();
    }

    pub fn restart(&mut self) {
        debug_assert!(!self.alive && self.leadership.is_none());
        self.alive = true;
        self.incarnation += 1;
    }

    /// The epoch cache's `assign` (on becoming leader).
    fn assign_epoch(&mut self, epoch: LeaderEpoch) {
        if self.epochs.last().is_some_and(|(e, _)| *e >= epoch) {
            return;
        }
        let start = self.log_end();
        self.epochs.retain(|(_, s)| *s < start);
        self.epochs.push((epoch, start));
    }

    /// The epoch cache's `end_offset_for` (OffsetForLeaderEpoch).
    fn end_offset_for(&self, requested: LeaderEpoch) -> Option<(LeaderEpoch, Offset)> {
        let (latest, _) = *self.epochs.last()?;
        if latest == requested {
            return Some((requested, self.log_end()));
        }
        let (_, higher_start) = *self.epochs.iter().find(|(e, _)| *e > requested)?;
        let floor = self.epochs.iter().rev().find(|(e, _)| *e <= requested).map_or(requested, |(e, _)| *e);
        Some((floor, higher_start))
    }

    /// The controller took the registration of `incarnation` at `version`.
    pub fn registered(&mut self, incarnation: u64, version: u64) {
        if self.incarnation == incarnation && !self.registered {
            self.registered = true;
            self.registered_at = version;
        }
    }

    /// The controller's `version`-th image; answers failed produces when
    /// leadership moved away.
    pub fn apply_image(&mut self, version: u64, state: &LeaderAndIsr, partition_epoch: i32) -> Answers {
        if !self.registered || version < self.registered_at || version <= self.applied_version {
            return Vec::new();
        }
        self.applied_version = version;
        self.partition_epoch = partition_epoch;
        let position = self.position();
        let log_end = self.log_end();
        let (was_leader, became_leader) = match &mut self.leadership {
            None => {
                let hw = self.hw_checkpoint.min(self.log_end());
                let mut l = Leadership::new(self.id, state, hw);
                l.began_leading_at(log_end);
                l.update_position(self.id, position);
                let leads = l.is_leader().then(|| l.epoch());
                self.leadership = Some(l);
                (false, leads)
            }
            Some(l) => {
                let was = l.is_leader();
                let applied = l.apply(state);
                if applied.became_leader.is_some() {
                    l.began_leading_at(log_end);
                }
                l.update_position(self.id, position);
                (was, applied.became_leader)
            }
        };
        if let Some(epoch) = became_leader {
            self.assign_epoch(epoch);
        }
        let mut out = Vec::new();
        if was_leader && !self.is_leader() {
            // NOT_LEADER_OR_FOLLOWER to every waiting produce.
            for a in self.acks.drain(..) {
                out.push((super::net::Addr::Producer, Msg::Produced { value: a.value, offset: None }));
            }
        }
        out.extend(self.answer_acks());
        out
    }

    /// Produce (acks=all) of `value`.
    pub fn produce(&mut self, value: u64) -> Answers {
        let refused = vec![(super::net::Addr::Producer, Msg::Produced { value, offset: None })];
        let Some(l) = &self.leadership else { return refused };
        if l.check_epoch(None).is_err() || l.isr().count() < MIN_ISR {
            return refused;
        }
        let epoch = l.epoch();
        let offset = self.log_end();
        self.log.push(Entry { epoch, value });
        self.acks.push(PendingAck { offset, value });
        Vec::new()
    }

    /// The produces the HW now covers: acknowledged, or refused with
    /// NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR is below the minimum.
    fn answer_acks(&mut self) -> Answers {
        let Some(l) = &self.leadership else { return Vec::new() };
        if !l.is_leader() {
            return Vec::new();
        }
        let hw = l.high_watermark();
        let enough = l.isr().count() >= MIN_ISR;
        let (done, waiting): (Vec<_>, Vec<_>) = self.acks.iter().partition(|a| a.offset < hw);
        self.acks = waiting;
        done.into_iter()
            .map(|a| {
                let offset = enough.then_some(a.offset);
                (super::net::Addr::Producer, Msg::Produced { value: a.value, offset })
            })
            .collect()
    }

    /// An fsync covering the whole log: the position moves (the HW may),
    /// and a follower follows the HW its last fetch brought.
    pub fn fsync(&mut self) -> Answers {
        self.durable_end = self.log.len();
        let position = self.position();
        let end = self.log_end();
        if let Some(l) = &mut self.leadership {
            l.update_position(self.id, position);
            if let Some(leader_hw) = self.fetcher.awaiting_fsync.take() {
                l.follow_high_watermark(leader_hw, end);
            }
        }
        self.hw_checkpoint = self.high_watermark();
        self.answer_acks()
    }

    /// The leader's side of a follower's Fetch.
    pub fn on_fetch(&mut self, from: NodeId, epoch: LeaderEpoch, offset: Offset, now: i64) -> Result<Fetched, Refusal> {
        let end = self.log_end();
        let Some(l) = &mut self.leadership else { return Err(Refusal::NotLeaderOrFollower) };
        l.check_epoch(Some(epoch)).map_err(refusal)?;
        if !l.is_follower_replica(from) {
            return Ok(Fetched { from: offset, entries: Vec::new(), high_watermark: l.high_watermark() });
        }
        if offset > end {
            return Err(Refusal::OffsetOutOfRange { leader_hw: l.high_watermark() });
        }
        l.follower_fetched(from, offset, end, now);
        let hw = l.high_watermark();
        let upto = (offset.get() as usize + FETCH_MAX).min(self.log.len());
        let entries = self.log[offset.get() as usize..upto].to_vec();
        Ok(Fetched { from: offset, entries, high_watermark: hw })
    }

    /// The acks a follower's fetch may have released (call after `on_fetch`).
    pub fn released(&mut self) -> Answers {
        self.answer_acks()
    }

    /// The leader's side of OffsetForLeaderEpoch.
    pub fn on_epoch_query(
        &self,
        current: LeaderEpoch,
        requested: LeaderEpoch,
    ) -> Result<Option<(LeaderEpoch, Offset)>, Refusal> {
        let Some(l) = &self.leadership else { return Err(Refusal::NotLeaderOrFollower) };
        l.check_epoch(Some(current)).map_err(refusal)?;
        Ok(self.end_offset_for(requested))
    }

    /// The leader's ISR check: its AlterPartition, if it wants a change.
    pub fn isr_check(&mut self, now: i64, lag_max_ms: i64) -> Option<Msg> {
        let partition_epoch = self.partition_epoch;
        let l = self.leadership.as_mut()?;
        let epoch = l.epoch();
        l.isr_proposal(now, lag_max_ms).map(|isr| Msg::AlterPartition { epoch, partition_epoch, isr })
    }

    /// The fetcher's next request to its leader, if it sends one now.
    pub fn next_request(&mut self, now: i64, id: u64) -> Option<(NodeId, Msg)> {
        let l = self.leadership.as_ref()?;
        let leader = l.leader().filter(|l| *l != self.id)?;
        let epoch = l.epoch();
        let f = &mut self.fetcher;
        if let Some(o) = f.outstanding {
            if now - o.sent_at <= REQUEST_TIMEOUT_MS {
                return None;
            }
            f.outstanding = None;
            f.backoff_until = now + BACKOFF_MS;
        }
        if now < f.backoff_until || f.parked_at == Some(epoch) || f.awaiting_fsync.is_some() {
            return None;
        }
        if f.truncated_for != Some(epoch) {
            let Some((latest, _)) = self.epochs.last().copied() else {
                // No epochs: cut to the HW.
                let hw = self.high_watermark();
                self.truncate_to(hw);
                self.fetcher.truncated_for = Some(epoch);
                return None;
            };
            f.outstanding = Some(Outstanding { id, epoch, sent_at: now });
            return Some((leader, Msg::EpochQuery { id, current: epoch, requested: latest }));
        }
        f.outstanding = Some(Outstanding { id, epoch, sent_at: now });
        Some((leader, Msg::Fetch { id, epoch, offset: self.log_end() }))
    }

    /// The outstanding request `id` was answered: its epoch, if this node
    /// still follows at it (a stale answer is dropped, as a fetcher of an
    /// older assignment stops).
    fn answered(&mut self, id: u64) -> Option<LeaderEpoch> {
        let o = self.fetcher.outstanding.filter(|o| o.id == id)?;
        self.fetcher.outstanding = None;
        let l = self.leadership.as_ref()?;
        (!l.is_leader() && l.epoch() == o.epoch).then_some(o.epoch)
    }

    pub fn on_epoch_answer(&mut self, id: u64, answer: Result<Option<(LeaderEpoch, Offset)>, Refusal>, now: i64) {
        let Some(epoch) = self.answered(id) else { return };
        let Ok(found) = answer else {
            self.fetcher.backoff_until = now + BACKOFF_MS;
            return;
        };
        let decided =
            truncation(self.log_end(), self.high_watermark(), found.map(|(e, _)| e), found.map(|(_, o)| o), |e| {
                self.end_offset_for(e)
            });
        self.truncate_to(decided.to);
        if decided.complete {
            self.fetcher.truncated_for = Some(epoch);
        }
    }

    pub fn on_fetch_answer(&mut self, id: u64, answer: Result<Fetched, Refusal>, now: i64) {
        let Some(epoch) = self.answered(id) else { return };
        match answer {
            Err(Refusal::FencedLeaderEpoch) => self.fetcher.parked_at = Some(epoch),
            Err(Refusal::OffsetOutOfRange { leader_hw }) => self.truncate_to(leader_hw),
            Err(_) => self.fetcher.backoff_until = now + BACKOFF_MS,
            Ok(f) if f.from != self.log_end() => {}
            Ok(f) if f.entries.is_empty() => {
                let end = self.log_end();
                if let Some(l) = &mut self.leadership {
                    l.follow_high_watermark(f.high_watermark, end);
                }
            }
            Ok(f) => {
                for e in f.entries {
                    if self.epochs.last().is_none_or(|(latest, _)| e.epoch > *latest) {
                        let start = self.log_end();
                        self.epochs.push((e.epoch, start));
                    }
                    self.log.push(e);
                }
                self.fetcher.awaiting_fsync = Some(f.high_watermark);
            }
        }
    }

    /// Cuts the log to `to` (nothing past the end); the epoch cache and
    /// the leadership follow.
    fn truncate_to(&mut self, to: Offset) {
        if to < self.log_end() {
            self.log.truncate(to.get().max(0) as usize);
            self.low_water = self.low_water.min(self.log.len());
            self.durable_end = self.durable_end.min(self.log.len());
            self.epochs.retain(|(_, start)| *start < to);
        }
        let end = self.log_end();
        if let Some(l) = &mut self.leadership {
            l.truncated(end);
        }
        self.hw_checkpoint = self.hw_checkpoint.min(end);
    }
}

fn refusal(e: PartitionError) -> Refusal {
    match e {
        PartitionError::FencedLeaderEpoch { .. } => Refusal::FencedLeaderEpoch,
        PartitionError::UnknownLeaderEpoch { .. } => Refusal::UnknownLeaderEpoch,
        _ => Refusal::NotLeaderOrFollower,
    }
}
