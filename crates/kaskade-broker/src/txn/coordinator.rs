//! The transaction coordinator's engine: Kafka's `TransactionCoordinator`
//! state transitions with no I/O. Every call takes the time and returns a
//! decision: the metadata to persist in `__transaction_state` before
//! answering, and, when a transaction ends, an [`EndPlan`] (the markers to
//! write) that the service executes and reports back with
//! [`TxnCoordinator::complete`].
//!
//! Transitions (Kafka's): Empty/Complete* --AddPartitions--> Ongoing
//! --EndTxn--> PrepareCommit|PrepareAbort --markers written--> Complete*.
//! InitProducerId bumps the epoch; on an Ongoing transaction it first
//! aborts it with the bumped epoch (fencing the old producer) and answers
//! CONCURRENT_TRANSACTIONS so the client retries. A transaction open past
//! its timeout is aborted the same way. While markers are being written,
//! requests for the id answer CONCURRENT_TRANSACTIONS.
//!
//! Every state change is staged as a [`StateWrite`] that the service takes
//! ([`TxnCoordinator::take_writes`]), appends to `__transaction_state` and
//! resolves ([`TxnCoordinator::written`] / [`TxnCoordinator::failed`]).
//! Until then the id's append is in flight (Kafka's
//! `TransactionMetadata.pendingState`): every request for the id answers
//! CONCURRENT_TRANSACTIONS (after the producer checks Kafka makes first),
//! timeouts and expiry pass it by, and a failed append puts the state
//! before it back. Invariant: at most one append per id in flight.

use std::collections::{BTreeSet, HashMap};

use kafka_protocol::error::ResponseError;
use kaskade_log::txn::Marker;
use kaskade_types::{ProducerEpoch, ProducerId, ProducerIdAndEpoch, TopicPartition};

use super::state::{TxnMetadata, TxnState};

/// Markers to write for a transaction that is ending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndPlan {
    pub transactional_id: String,
    pub producer_id: ProducerId,
    /// The epoch the markers carry (bumped when fencing).
    pub producer_epoch: ProducerEpoch,
    pub marker: Marker,
    pub partitions: Vec<TopicPartition>,
    /// When the transaction began: tells this plan from a later
    /// transaction's with the same epoch, marker and partitions.
    pub start_ms: Option<i64>,
}

/// What InitProducerId decided.
#[derive(Debug, PartialEq, Eq)]
pub enum InitDecision {
    /// A new producer id is needed first (new id, or epoch exhausted): call
    /// again with one.
    NeedProducerId,
    /// Persist this, then answer with its producer id and epoch.
    Ready(TxnMetadata),
    /// An open transaction is being aborted first (persist, write the
    /// markers); answer CONCURRENT_TRANSACTIONS, the client retries.
    AbortFirst(TxnMetadata, EndPlan),
}

/// What EndTxn decided.
#[derive(Debug, PartialEq, Eq)]
pub enum EndDecision {
    /// A retry of a transaction that already ended this way: answer OK.
    AlreadyDone,
    /// Persist the Prepare* metadata, write the markers, then `complete`.
    Begin(TxnMetadata, EndPlan),
}

/// A state change to append to `__transaction_state`, staged by a
/// decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateWrite {
    pub transactional_id: String,
    /// Names this append when it is resolved: a resolution of an append
    /// that is no longer the id's in-flight one (unloaded, reloaded) is
    /// ignored.
    pub token: u64,
    /// The state to append; `None`: a tombstone (the id is removed).
    pub state: Option<TxnMetadata>,
}

/// An id's append in flight, and the state to put back if it fails.
#[derive(Debug)]
struct InFlight {
    token: u64,
    before: Option<TxnMetadata>,
}

#[derive(Debug, Default)]
pub struct TxnCoordinator {
    txns: HashMap<String, TxnMetadata>,
    /// Ids whose state append is not resolved yet.
    in_flight: HashMap<String, InFlight>,
    /// Writes decided and not yet taken by the service.
    staged: Vec<StateWrite>,
    next_token: u64,
    /// `transaction.max.timeout.ms`
    max_timeout_ms: i32,
}

fn bumped(epoch: ProducerEpoch) -> Option<ProducerEpoch> {
    // Kafka moves to a new producer id when the epoch would reach
    // Short.MAX_VALUE.
    (epoch.0 < i16::MAX - 1).then(|| ProducerEpoch(epoch.0.saturating_add(1).max(0)))
}

/// The epoch a fence aborts with: bumped even past the last epoch a
/// client may hold (`Short.MAX_VALUE - 1`), as Kafka's
/// `prepareFenceProducerEpoch`, so a producer at its last epoch is fenced
/// too (and its next InitProducerId moves to a new producer id).
fn fence_bumped(epoch: ProducerEpoch) -> Option<ProducerEpoch> {
    (epoch.0 < i16::MAX).then(|| ProducerEpoch(epoch.0.saturating_add(1).max(0)))
}

/// Whether the state holds an epoch at all: Kafka's metadata of an id whose
/// first InitProducerId has not completed carries none (-1), and then no
/// producer is fenced by it.
fn has_epoch(meta: &TxnMetadata) -> bool {
    meta.producer_epoch.0 >= 0
}

impl TxnCoordinator {
    pub fn new(max_timeout_ms: i32) -> Self {
        TxnCoordinator { max_timeout_ms, ..TxnCoordinator::default() }
    }

    /// Whether an append of `id`'s state is in flight.
    pub fn in_flight(&self, id: &str) -> bool {
        self.in_flight.contains_key(id)
    }

    /// Sets `id`'s state to `after` (`None`: removes it) and stages its
    /// append; the id is in flight until it is resolved.
    fn stage(&mut self, id: &str, after: Option<TxnMetadata>) {
        debug_assert!(!self.in_flight(id), "one append in flight per id ({id})");
        debug_assert!(after.as_ref().is_none_or(|m| m.transactional_id == id));
        let before = match &after {
            Some(meta) => self.txns.insert(id.to_string(), meta.clone()),
            None => self.txns.remove(id),
        };
        self.next_token += 1;
        let token = self.next_token;
        self.in_flight.insert(id.to_string(), InFlight { token, before });
        self.staged.push(StateWrite { transactional_id: id.to_string(), token, state: after });
    }

    /// The writes decided since the last call, in the order decided: the
    /// caller appends each and resolves it.
    pub fn take_writes(&mut self) -> Vec<StateWrite> {
        std::mem::take(&mut self.staged)
    }

    /// `write`'s append is durable: the id takes requests again. False if
    /// it was no longer the id's append in flight.
    pub fn written(&mut self, id: &str, token: u64) -> bool {
        if self.in_flight.get(id).is_none_or(|f| f.token != token) {
            return false;
        }
        self.in_flight.remove(id);
        true
    }

    /// `write`'s append failed: the id's state is the one before it again
    /// (as the log's), as Kafka drops a pending transition whose append
    /// failed. False if it was no longer the id's append in flight.
    pub fn failed(&mut self, id: &str, token: u64) -> bool {
        if self.in_flight.get(id).is_none_or(|f| f.token != token) {
            return false;
        }
        let Some(InFlight { before, .. }) = self.in_flight.remove(id) else { return false };
        match before {
            Some(state) => self.txns.insert(id.to_string(), state),
            None => self.txns.remove(id),
        };
        true
    }

    /// Forgets every id `unload` names (a partition this node no longer
    /// leads), with its append in flight: its resolution is ignored.
    pub fn unload_where(&mut self, unload: impl Fn(&str) -> bool) {
        self.txns.retain(|id, _| !unload(id));
        self.in_flight.retain(|id, _| !unload(id));
    }

    pub fn get(&self, id: &str) -> Option<&TxnMetadata> {
        self.txns.get(id)
    }

    pub fn all(&self) -> impl Iterator<Item = &TxnMetadata> {
        self.txns.values()
    }

    /// Forgets `id` (a tombstone in the replay).
    pub fn unload(&mut self, id: &str) {
        self.txns.remove(id);
        self.in_flight.remove(id);
    }

    /// Loads a persisted state (start-up replay; later records win).
    pub fn load(&mut self, meta: TxnMetadata) {
        // The log's state replaces whatever was in flight.
        self.in_flight.remove(&meta.transactional_id);
        if meta.state == TxnState::Dead {
            self.txns.remove(&meta.transactional_id);
        } else {
            self.txns.insert(meta.transactional_id.clone(), meta);
        }
    }

    /// After loading: the transactions whose markers must be (re)written,
    /// because the node stopped between Prepare* and Complete*.
    pub fn pending_plans(&self) -> Vec<EndPlan> {
        self.txns
            .values()
            .filter_map(|m| {
                let marker = match m.state {
                    TxnState::PrepareCommit => Marker::Commit,
                    TxnState::PrepareAbort => Marker::Abort,
                    _ => return None,
                };
                Some(plan(m, marker))
            })
            .collect()
    }

    /// InitProducerId with a transactional id. `expected` is the producer
    /// id and epoch the client sent (KIP-360), `new_pid` one allocated for
    /// this call after `NeedProducerId`.
    pub fn init_producer_id(
        &mut self,
        now: i64,
        id: &str,
        timeout_ms: i32,
        expected: Option<ProducerIdAndEpoch>,
        new_pid: Option<ProducerId>,
    ) -> Result<InitDecision, ResponseError> {
        if timeout_ms <= 0 || timeout_ms > self.max_timeout_ms {
            return Err(ResponseError::InvalidTransactionTimeout);
        }
        if self.in_flight(id) {
            return Err(ResponseError::ConcurrentTransactions);
        }
        let Some(current) = self.txns.get(id) else {
            let Some(pid) = new_pid else { return Ok(InitDecision::NeedProducerId) };
            let meta = TxnMetadata {
                transactional_id: id.to_string(),
                producer_id: pid,
                producer_epoch: ProducerEpoch(0),
                last_producer_epoch: None,
                timeout_ms,
                state: TxnState::Empty,
                partitions: BTreeSet::new(),
                start_ms: None,
                update_ms: now,
            };
            self.stage(id, Some(meta.clone()));
            return Ok(InitDecision::Ready(meta));
        };
        if current.state.is_ending() || current.state == TxnState::Dead {
            return Err(ResponseError::ConcurrentTransactions);
        }
        if let Some(ProducerIdAndEpoch { id: pid, epoch }) = expected {
            // KIP-360: the client names the id and epoch it had. Another
            // producer id is fenced at once; the epoch only where Kafka
            // checks it, when bumping (an open transaction is fenced first,
            // whatever the epoch named: `prepareInitProducerIdTransit`).
            if has_epoch(current) && pid != current.producer_id {
                return Err(ResponseError::ProducerFenced);
            }
            if current.state != TxnState::Ongoing
                && has_epoch(current)
                && epoch != current.producer_epoch
                && Some(epoch) != current.last_producer_epoch
            {
                return Err(ResponseError::ProducerFenced);
            }
        }
        let is_retry = expected.is_some_and(|p| {
            has_epoch(current) && p.epoch != current.producer_epoch && Some(p.epoch) == current.last_producer_epoch
        });
        let mut meta = current.clone();
        if meta.state == TxnState::Ongoing {
            // Fence the old producer: abort its transaction with a bumped
            // epoch. The client retries and gets the next epoch.
            let Some(epoch) = fence_bumped(meta.producer_epoch) else {
                // Cannot bump: abort with the current epoch.
                let p = self.begin_end(now, id, Marker::Abort, None);
                return Ok(InitDecision::AbortFirst(p.0, p.1));
            };
            let p = self.begin_end(now, id, Marker::Abort, Some(epoch));
            return Ok(InitDecision::AbortFirst(p.0, p.1));
        }
        match bumped(meta.producer_epoch) {
            // A retry of a KIP-360 bump whose answer was lost: the same
            // epoch again, with the transition Kafka makes for it (Empty,
            // the request's timeout).
            _ if is_retry => {}
            Some(epoch) => {
                // Only a producer that named its current epoch may retry
                // this call with it (Kafka's `prepareIncrementProducerEpoch`):
                // after a new producer's bump the old epoch is fenced.
                meta.last_producer_epoch = Some(meta.producer_epoch).filter(|_| expected.is_some() && has_epoch(&meta));
                meta.producer_epoch = epoch;
            }
            None => {
                let Some(pid) = new_pid else { return Ok(InitDecision::NeedProducerId) };
                meta.producer_id = pid;
                meta.producer_epoch = ProducerEpoch(0);
                meta.last_producer_epoch = None;
            }
        }
        meta.timeout_ms = timeout_ms;
        meta.state = TxnState::Empty;
        meta.partitions.clear();
        meta.start_ms = None;
        meta.update_ms = now;
        self.stage(id, Some(meta.clone()));
        Ok(InitDecision::Ready(meta))
    }

    /// Kafka's producer checks for AddPartitions, AddOffsets and EndTxn.
    /// Then, as Kafka, an id whose append is in flight answers
    /// CONCURRENT_TRANSACTIONS.
    fn check_producer(&self, id: &str, producer: ProducerIdAndEpoch) -> Result<&TxnMetadata, ResponseError> {
        let Some(meta) = self.txns.get(id) else {
            // Its tombstone is in flight: Kafka still holds it, pending Dead.
            let removing = self.in_flight.get(id).and_then(|f| f.before.as_ref());
            return Err(match removing {
                Some(m) if m.producer_id == producer.id => ResponseError::ConcurrentTransactions,
                _ => ResponseError::InvalidProducerIdMapping,
            });
        };
        if meta.producer_id != producer.id {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        if meta.producer_epoch != producer.epoch {
            return Err(ResponseError::ProducerFenced);
        }
        if self.in_flight(id) {
            return Err(ResponseError::ConcurrentTransactions);
        }
        Ok(meta)
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: the metadata to persist before
    /// answering, or `None` when nothing changed.
    pub fn add_partitions(
        &mut self,
        now: i64,
        id: &str,
        producer: ProducerIdAndEpoch,
        partitions: &[TopicPartition],
    ) -> Result<Option<TxnMetadata>, ResponseError> {
        let meta = self.check_producer(id, producer)?;
        if meta.state.is_ending() {
            return Err(ResponseError::ConcurrentTransactions);
        }
        if meta.state == TxnState::Ongoing && partitions.iter().all(|p| meta.partitions.contains(p)) {
            return Ok(None);
        }
        let mut meta = meta.clone();
        if meta.state != TxnState::Ongoing {
            meta.partitions.clear();
            meta.start_ms = Some(now);
        }
        meta.state = TxnState::Ongoing;
        meta.partitions.extend(partitions.iter().cloned());
        meta.update_ms = now;
        self.stage(id, Some(meta.clone()));
        Ok(Some(meta))
    }

    /// EndTxn.
    pub fn end_txn(
        &mut self,
        now: i64,
        id: &str,
        producer: ProducerIdAndEpoch,
        commit: bool,
    ) -> Result<EndDecision, ResponseError> {
        // Any other epoch is fenced, including the one a timeout abort
        // bumped away (Kafka's transaction protocol version 1).
        let meta = self.check_producer(id, producer)?;
        let want = if commit { Marker::Commit } else { Marker::Abort };
        match (meta.state, want) {
            (TxnState::Ongoing, _) => {
                let (m, p) = self.begin_end(now, id, want, None);
                Ok(EndDecision::Begin(m, p))
            }
            (TxnState::CompleteCommit, Marker::Commit) | (TxnState::CompleteAbort, Marker::Abort) => {
                Ok(EndDecision::AlreadyDone)
            }
            (TxnState::PrepareCommit, Marker::Commit) | (TxnState::PrepareAbort, Marker::Abort) => {
                Err(ResponseError::ConcurrentTransactions)
            }
            _ => Err(ResponseError::InvalidTxnState),
        }
    }

    /// Moves `id` to Prepare* (bumping the epoch to `fence_epoch` if given).
    fn begin_end(
        &mut self,
        now: i64,
        id: &str,
        marker: Marker,
        fence_epoch: Option<ProducerEpoch>,
    ) -> (TxnMetadata, EndPlan) {
        let mut meta = self.txns.get(id).cloned().expect("checked by the caller");
        if let Some(epoch) = fence_epoch {
            // A fence leaves no epoch a retry may name (Kafka's
            // `prepareFenceProducerEpoch`): the fenced producer's
            // InitProducerId with its old epoch is PRODUCER_FENCED.
            meta.last_producer_epoch = None;
            meta.producer_epoch = epoch;
        }
        meta.state = match marker {
            Marker::Commit => TxnState::PrepareCommit,
            Marker::Abort => TxnState::PrepareAbort,
        };
        meta.update_ms = now;
        let plan = plan(&meta, marker);
        self.stage(id, Some(meta.clone()));
        (meta, plan)
    }

    /// Whether `plan` is the plan of the transaction ending now (same
    /// state, producer id and epoch, start and partitions). A retry of a
    /// plan that already completed is not, and must not write its markers
    /// again: the same epoch may have a later transaction on them.
    pub fn is_pending(&self, plan: &EndPlan) -> bool {
        let Some(meta) = self.txns.get(&plan.transactional_id) else { return false };
        let prepared = match plan.marker {
            Marker::Commit => TxnState::PrepareCommit,
            Marker::Abort => TxnState::PrepareAbort,
        };
        meta.state == prepared
            && meta.producer_id == plan.producer_id
            && meta.producer_epoch == plan.producer_epoch
            && meta.start_ms == plan.start_ms
            && meta.partitions.iter().eq(plan.partitions.iter())
    }

    /// The markers of `plan` are written: the transaction is complete. The
    /// metadata to persist, or `None` if `plan` is not of the transaction
    /// ending now: a retried plan whose transaction already completed must
    /// not complete (nor turn into a commit) a later one.
    pub fn complete(&mut self, now: i64, plan: &EndPlan) -> Option<TxnMetadata> {
        if !self.is_pending(plan) {
            return None;
        }
        // Prepare* is durable before its markers are written, and no
        // request changes a Prepare* id: nothing can be in flight here.
        debug_assert!(!self.in_flight(&plan.transactional_id), "Complete over an append in flight");
        if self.in_flight(&plan.transactional_id) {
            return None;
        }
        let mut meta = self.txns.get(&plan.transactional_id)?.clone();
        meta.state = match plan.marker {
            Marker::Commit => TxnState::CompleteCommit,
            Marker::Abort => TxnState::CompleteAbort,
        };
        meta.partitions.clear();
        meta.start_ms = None;
        meta.update_ms = now;
        self.stage(&plan.transactional_id, Some(meta.clone()));
        Some(meta)
    }

    /// Transactions open longer than their timeout: aborted with a bumped
    /// epoch (Kafka's `abortTimedOutTransactions`), which fences the
    /// producer that let them hang.
    pub fn expire(&mut self, now: i64) -> Vec<(TxnMetadata, EndPlan)> {
        let expired: Vec<String> = self
            .txns
            .values()
            .filter(|m| m.state == TxnState::Ongoing && m.start_ms.is_some_and(|s| now > s + i64::from(m.timeout_ms)))
            // Kafka skips an id with a pending transition; the next check
            // sees it again.
            .filter(|m| !self.in_flight(&m.transactional_id))
            .map(|m| m.transactional_id.clone())
            .collect();
        expired
            .into_iter()
            .map(|id| {
                let epoch = self.txns.get(&id).and_then(|m| fence_bumped(m.producer_epoch));
                self.begin_end(now, &id, Marker::Abort, epoch)
            })
            .collect()
    }

    /// `transactional.id.expiration.ms`: forgets ids whose last transaction
    /// ended (or that never began one) more than `expiration_ms` ago, as
    /// Kafka's `removeExpiredTransactionalIds`. Returns them; each needs a
    /// tombstone in `__transaction_state`.
    pub fn expire_ids(&mut self, now: i64, expiration_ms: i64) -> Vec<String> {
        let expired: Vec<String> = self
            .txns
            .values()
            .filter(|m| {
                matches!(m.state, TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort)
                    && m.update_ms.saturating_add(expiration_ms) <= now
                    && !self.in_flight(&m.transactional_id)
            })
            .map(|m| m.transactional_id.clone())
            .collect();
        for id in &expired {
            self.stage(id, None);
        }
        expired
    }

    /// When the next transaction times out, if one is open.
    pub fn next_deadline(&self) -> Option<i64> {
        self.txns
            .values()
            .filter(|m| m.state == TxnState::Ongoing)
            .filter_map(|m| m.start_ms.map(|s| s + i64::from(m.timeout_ms) + 1))
            .min()
    }
}

fn plan(meta: &TxnMetadata, marker: Marker) -> EndPlan {
    EndPlan {
        transactional_id: meta.transactional_id.clone(),
        producer_id: meta.producer_id,
        producer_epoch: meta.producer_epoch,
        marker,
        partitions: meta.partitions.iter().cloned().collect(),
        start_ms: meta.start_ms,
    }
}

#[cfg(test)]
#[path = "coordinator_tests.rs"]
mod tests;
