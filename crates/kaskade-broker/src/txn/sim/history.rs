//! The invariants, checked as the simulation goes: what every transaction
//! was decided, which partitions it added, which epochs each
//! transactional id went through. A violation panics with what broke.

use std::collections::{BTreeSet, HashMap, HashSet};

use kaskade_log::txn::Marker;
use kaskade_types::{ProducerId, ProducerIdAndEpoch, TopicPartition};

use crate::txn::coordinator::{EndPlan, TxnCoordinator};
use crate::txn::state::{TxnMetadata, TxnState};

/// One transaction: its transactional id, producer id and start time
/// (the simulated clock moves at every request, so two transactions of an
/// id never start at the same millisecond).
pub type TxnKey = (String, ProducerId, Option<i64>);

pub fn key(m: &TxnMetadata) -> TxnKey {
    (m.transactional_id.clone(), m.producer_id, m.start_ms)
}

/// Counts reported for a run (and to see that a seed exercised something).
#[derive(Debug, Default)]
pub struct Stats {
    pub commits: u32,
    pub aborts: u32,
    pub timeouts: u32,
    pub fenced: u32,
    pub restarts: u32,
    pub lost_tails: u32,
    /// Completions retried after they took effect (refused unless the
    /// transaction is still ending).
    pub stale_replays: u32,
    pub expired_ids: u32,
    /// Markers refused (a stale coordinator): no Complete.
    pub refused_markers: u32,
    /// Complete appends left in flight, and those that failed.
    pub held_completes: u32,
    pub failed_completes: u32,
    /// Requests answered CONCURRENT_TRANSACTIONS for an append in flight.
    pub busy: u32,
}

#[derive(Default)]
pub struct History {
    /// The partitions each transaction added, as the engine acknowledged.
    added: HashMap<TxnKey, BTreeSet<TopicPartition>>,
    /// How each transaction was decided to end.
    decided: HashMap<TxnKey, Marker>,
    /// How each transaction completed (its markers written).
    completed: HashMap<TxnKey, Marker>,
    /// The newest producer id and epoch each transactional id had.
    epochs: HashMap<String, ProducerIdAndEpoch>,
    /// (transactional id, producer id and epoch) a client was told is fenced.
    fenced: HashSet<(String, ProducerIdAndEpoch)>,
    pub stats: Stats,
}

impl History {
    /// A state the engine decided (and the shell persisted).
    pub fn on_state(&mut self, m: &TxnMetadata) {
        let k = key(m);
        match m.state {
            TxnState::Ongoing => {
                self.added.entry(k).or_default().extend(m.partitions.iter().cloned());
            }
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                let marker = if m.state == TxnState::PrepareCommit { Marker::Commit } else { Marker::Abort };
                let first = *self.decided.entry(k.clone()).or_insert(marker);
                assert_eq!(first, marker, "{k:?} decided both ways");
                let added = self.added.get(&k).cloned().unwrap_or_default();
                assert!(m.partitions.is_subset(&added), "{k:?} ends with partitions it never added: {m:?}");
            }
            _ => {}
        }
    }

    /// Markers are written for `plan`, the end of transaction `k`.
    pub fn on_markers(&self, k: &TxnKey, plan: &EndPlan) {
        let added = self.added.get(k).cloned().unwrap_or_default();
        for p in &plan.partitions {
            assert!(added.contains(p), "a marker for {p:?}, never added to {k:?}");
        }
        assert_eq!(self.decided.get(k), Some(&plan.marker), "markers of {k:?} disagree with its decision");
    }

    /// The engine recorded `k` complete.
    pub fn on_complete(&mut self, k: &TxnKey, plan: &EndPlan) {
        assert_eq!(self.decided.get(k), Some(&plan.marker), "{k:?} completed other than decided");
        if let Some(before) = self.completed.insert(k.clone(), plan.marker) {
            // Only after a restart that lost the Complete record.
            assert_eq!(before, plan.marker, "{k:?} completed both ways");
        } else if plan.marker == Marker::Commit {
            self.stats.commits += 1;
        } else {
            self.stats.aborts += 1;
        }
    }

    pub fn on_fenced(&mut self, id: &str, producer: ProducerIdAndEpoch) {
        self.stats.fenced += 1;
        self.fenced.insert((id.to_string(), producer));
    }

    /// A client's AddPartitions or EndTxn succeeded with this epoch.
    pub fn on_ok(&self, id: &str, producer: ProducerIdAndEpoch) {
        assert!(!self.fenced.contains(&(id.to_string(), producer)), "{id} {producer} was fenced, then succeeded");
    }

    /// The transactional id expired: it starts over.
    pub fn forget(&mut self, id: &str) {
        self.stats.expired_ids += 1;
        self.epochs.remove(id);
    }

    /// After every step.
    pub fn check(&mut self, engine: &TxnCoordinator) {
        for m in engine.all() {
            let current = m.producer();
            if let Some(&ProducerIdAndEpoch { id: pid, epoch }) = self.epochs.get(&m.transactional_id) {
                if pid == m.producer_id {
                    assert!(m.producer_epoch >= epoch, "{} went back from epoch {epoch}: {m:?}", m.transactional_id);
                } else {
                    assert!(m.producer_id > pid, "{} went back from producer id {pid}: {m:?}", m.transactional_id);
                }
            }
            self.epochs.insert(m.transactional_id.clone(), current);
        }
    }

    /// Right after the timeout task ran: nothing is open past its timeout.
    pub fn check_timeouts(&self, engine: &TxnCoordinator, now: i64) {
        for m in engine.all().filter(|m| m.state == TxnState::Ongoing) {
            assert!(
                m.start_ms.is_some_and(|start| now <= start + i64::from(m.timeout_ms)),
                "open past its timeout at {now}: {m:?}"
            );
        }
    }

    /// At the end, with nothing in flight: every decided transaction
    /// completed, as decided.
    pub fn finish(&self, engine: &TxnCoordinator) {
        for (k, marker) in &self.decided {
            assert_eq!(self.completed.get(k), Some(marker), "{k:?} decided {marker:?} but never completed");
        }
        for m in engine.all() {
            assert!(!m.state.is_ending() && m.state != TxnState::Ongoing, "left open: {m:?}");
        }
    }
}
