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

#[derive(Debug, Default)]
pub struct TxnCoordinator {
    txns: HashMap<String, TxnMetadata>,
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
        TxnCoordinator { txns: HashMap::new(), max_timeout_ms }
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
    }

    /// Loads a persisted state (start-up replay; later records win).
    pub fn load(&mut self, meta: TxnMetadata) {
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
            self.txns.insert(id.to_string(), meta.clone());
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
        self.txns.insert(id.to_string(), meta.clone());
        Ok(InitDecision::Ready(meta))
    }

    /// Kafka's producer checks for AddPartitions, AddOffsets and EndTxn.
    fn check_producer(&self, id: &str, producer: ProducerIdAndEpoch) -> Result<&TxnMetadata, ResponseError> {
        let meta = self.txns.get(id).ok_or(ResponseError::InvalidProducerIdMapping)?;
        if meta.producer_id != producer.id {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        if meta.producer_epoch != producer.epoch {
            return Err(ResponseError::ProducerFenced);
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
        self.txns.insert(id.to_string(), meta.clone());
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
        let meta = self.txns.get_mut(id).expect("checked by the caller");
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
        (meta.clone(), plan(meta, marker))
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
        let meta = self.txns.get_mut(&plan.transactional_id)?;
        meta.state = match plan.marker {
            Marker::Commit => TxnState::CompleteCommit,
            Marker::Abort => TxnState::CompleteAbort,
        };
        meta.partitions.clear();
        meta.start_ms = None;
        meta.update_ms = now;
        Some(meta.clone())
    }

    /// Transactions open longer than their timeout: aborted with a bumped
    /// epoch (Kafka's `abortTimedOutTransactions`), which fences the
    /// producer that let them hang.
    pub fn expire(&mut self, now: i64) -> Vec<(TxnMetadata, EndPlan)> {
        let expired: Vec<String> = self
            .txns
            .values()
            .filter(|m| m.state == TxnState::Ongoing && m.start_ms.is_some_and(|s| now > s + i64::from(m.timeout_ms)))
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
            })
            .map(|m| m.transactional_id.clone())
            .collect();
        for id in &expired {
            self.txns.remove(id);
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
mod tests {
    use super::*;

    fn tp(t: &str, p: i32) -> TopicPartition {
        TopicPartition::new(t, p)
    }

    fn e(epoch: i16) -> ProducerEpoch {
        ProducerEpoch(epoch)
    }

    fn p(id: i64, epoch: i16) -> ProducerIdAndEpoch {
        ProducerIdAndEpoch::new(ProducerId(id), ProducerEpoch(epoch))
    }

    fn ready(d: InitDecision) -> TxnMetadata {
        match d {
            InitDecision::Ready(m) => m,
            other => panic!("expected Ready, got {other:?}"),
        }
    }

    #[test]
    fn init_add_commit_and_the_next_transaction() {
        let mut c = TxnCoordinator::new(60_000);
        assert_eq!(c.init_producer_id(0, "t", 10_000, None, None), Ok(InitDecision::NeedProducerId));
        let m = ready(c.init_producer_id(0, "t", 10_000, None, Some(ProducerId(7))).unwrap());
        assert_eq!((m.producer(), m.state), (p(7, 0), TxnState::Empty));
        let m = c.add_partitions(1, "t", p(7, 0), &[tp("a", 0)]).unwrap().expect("changed");
        assert_eq!((m.state, m.start_ms), (TxnState::Ongoing, Some(1)));
        assert_eq!(c.add_partitions(2, "t", p(7, 0), &[tp("a", 0)]), Ok(None), "nothing new");
        c.add_partitions(2, "t", p(7, 0), &[tp("b", 1)]).unwrap();
        let EndDecision::Begin(m, plan) = c.end_txn(3, "t", p(7, 0), true).unwrap() else { panic!() };
        assert_eq!(m.state, TxnState::PrepareCommit);
        assert_eq!(plan.partitions, vec![tp("a", 0), tp("b", 1)]);
        assert_eq!(plan.marker, Marker::Commit);
        // While the markers are written.
        assert_eq!(c.add_partitions(4, "t", p(7, 0), &[tp("a", 0)]), Err(ResponseError::ConcurrentTransactions));
        assert_eq!(c.end_txn(4, "t", p(7, 0), true), Err(ResponseError::ConcurrentTransactions));
        assert_eq!(c.end_txn(4, "t", p(7, 0), false), Err(ResponseError::InvalidTxnState));
        let done = c.complete(5, &plan).expect("completed");
        assert_eq!((done.state, done.partitions.len()), (TxnState::CompleteCommit, 0));
        assert_eq!(c.end_txn(6, "t", p(7, 0), true), Ok(EndDecision::AlreadyDone), "a retried commit");
        assert_eq!(c.end_txn(6, "t", p(7, 0), false), Err(ResponseError::InvalidTxnState));
        // The next transaction starts from CompleteCommit.
        let m = c.add_partitions(7, "t", p(7, 0), &[tp("c", 0)]).unwrap().unwrap();
        assert_eq!((m.state, m.start_ms, m.partitions.len()), (TxnState::Ongoing, Some(7), 1));
    }

    #[test]
    fn producer_checks() {
        let mut c = TxnCoordinator::new(60_000);
        assert_eq!(
            c.init_producer_id(0, "t", 60_001, None, Some(ProducerId(1))),
            Err(ResponseError::InvalidTransactionTimeout)
        );
        ready(c.init_producer_id(0, "t", 1000, None, Some(ProducerId(1))).unwrap());
        assert_eq!(c.add_partitions(0, "t", p(2, 0), &[tp("a", 0)]), Err(ResponseError::InvalidProducerIdMapping));
        assert_eq!(c.add_partitions(0, "t", p(1, 1), &[tp("a", 0)]), Err(ResponseError::ProducerFenced));
        assert_eq!(c.add_partitions(0, "x", p(1, 0), &[tp("a", 0)]), Err(ResponseError::InvalidProducerIdMapping));
        assert_eq!(c.end_txn(0, "t", p(1, 0), true), Err(ResponseError::InvalidTxnState), "nothing open");
    }

    #[test]
    fn a_second_producer_fences_the_first_and_aborts_its_transaction() {
        let mut c = TxnCoordinator::new(60_000);
        ready(c.init_producer_id(0, "t", 1000, None, Some(ProducerId(1))).unwrap());
        c.add_partitions(0, "t", p(1, 0), &[tp("a", 0)]).unwrap();
        let InitDecision::AbortFirst(m, plan) = c.init_producer_id(1, "t", 1000, None, None).unwrap() else { panic!() };
        assert_eq!((m.state, m.producer_epoch), (TxnState::PrepareAbort, e(1)));
        assert_eq!((plan.producer_epoch, plan.marker), (e(1), Marker::Abort));
        assert_eq!(c.init_producer_id(1, "t", 1000, None, None), Err(ResponseError::ConcurrentTransactions));
        c.complete(2, &plan);
        let m = ready(c.init_producer_id(3, "t", 1000, None, None).unwrap());
        assert_eq!((m.producer(), m.state), (p(1, 2), TxnState::Empty));
        // The old producer is fenced everywhere.
        assert_eq!(c.add_partitions(4, "t", p(1, 0), &[tp("a", 0)]), Err(ResponseError::ProducerFenced));
        assert_eq!(c.end_txn(4, "t", p(1, 0), true), Err(ResponseError::ProducerFenced));
    }

    #[test]
    fn a_new_producers_bump_fences_the_old_epoch_for_retries_too() {
        let mut c = TxnCoordinator::new(60_000);
        ready(c.init_producer_id(0, "t", 1000, None, Some(ProducerId(1))).unwrap());
        // A second producer (no expected epoch) takes epoch 1.
        let m = ready(c.init_producer_id(1, "t", 1000, None, None).unwrap());
        assert_eq!((m.producer_epoch, m.last_producer_epoch), (e(1), None));
        // The first one's KIP-360 bump is fenced, not mistaken for a retry
        // of the second one's call (which would hand it epoch 1 too).
        assert_eq!(c.init_producer_id(2, "t", 1000, Some(p(1, 0)), None), Err(ResponseError::ProducerFenced));
        // A KIP-360 bump by the current producer, and its retry.
        let m = ready(c.init_producer_id(3, "t", 1000, Some(p(1, 1)), None).unwrap());
        assert_eq!((m.producer_epoch, m.last_producer_epoch), (e(2), Some(e(1))));
        let m = ready(c.init_producer_id(4, "t", 1000, Some(p(1, 1)), None).unwrap());
        assert_eq!((m.producer_epoch, m.last_producer_epoch), (e(2), Some(e(1))), "a retry: same epoch");
    }

    #[test]
    fn a_bump_naming_an_old_epoch_of_the_same_id_fences_an_open_transaction_as_kafka() {
        let mut c = TxnCoordinator::new(60_000);
        ready(c.init_producer_id(0, "t", 1000, None, Some(ProducerId(1))).unwrap());
        ready(c.init_producer_id(1, "t", 1000, Some(p(1, 0)), None).unwrap());
        c.add_partitions(2, "t", p(1, 1), &[tp("a", 0)]).unwrap();
        // A late copy of the bump (epoch 0): Kafka checks the producer id,
        // then aborts the open transaction and answers
        // CONCURRENT_TRANSACTIONS; the epoch is checked on the retry.
        let InitDecision::AbortFirst(m, plan) = c.init_producer_id(3, "t", 1000, Some(p(1, 0)), None).unwrap() else {
            panic!()
        };
        assert_eq!((m.state, m.producer_epoch, plan.marker), (TxnState::PrepareAbort, e(2), Marker::Abort));
        c.complete(4, &plan);
        assert_eq!(c.init_producer_id(5, "t", 1000, Some(p(1, 0)), None), Err(ResponseError::ProducerFenced));
        // Another producer id is fenced whatever the state.
        c.add_partitions(6, "t", p(1, 2), &[tp("a", 0)]).unwrap();
        assert_eq!(c.init_producer_id(7, "t", 1000, Some(p(9, 2)), None), Err(ResponseError::ProducerFenced));
    }

    #[test]
    fn a_retried_bump_is_answered_with_the_same_epoch_and_kafkas_transition() {
        let mut c = TxnCoordinator::new(60_000);
        ready(c.init_producer_id(0, "t", 1000, None, Some(ProducerId(1))).unwrap());
        let m = ready(c.init_producer_id(1, "t", 1000, Some(p(1, 0)), None).unwrap());
        assert_eq!((m.producer_epoch, m.last_producer_epoch), (e(1), Some(e(0))));
        c.add_partitions(2, "t", p(1, 1), &[tp("a", 0)]).unwrap();
        let EndDecision::Begin(_, plan) = c.end_txn(3, "t", p(1, 1), true).unwrap() else { panic!() };
        c.complete(4, &plan);
        // The bump again (its answer was lost): epoch 1, and the state Kafka
        // writes for it: Empty, with the timeout of the request.
        let m = ready(c.init_producer_id(5, "t", 2000, Some(p(1, 0)), None).unwrap());
        assert_eq!((m.producer_epoch, m.last_producer_epoch, m.state), (e(1), Some(e(0)), TxnState::Empty));
        assert_eq!((m.timeout_ms, m.update_ms, m.start_ms), (2000, 5, None));
        assert_eq!(c.get("t"), Some(&m));
    }

    #[test]
    fn timed_out_transactions_are_aborted_with_a_bumped_epoch() {
        let mut c = TxnCoordinator::new(60_000);
        ready(c.init_producer_id(0, "t", 1000, None, Some(ProducerId(1))).unwrap());
        c.add_partitions(100, "t", p(1, 0), &[tp("a", 0)]).unwrap();
        assert_eq!(c.next_deadline(), Some(1101));
        assert!(c.expire(1100).is_empty());
        let expired = c.expire(1101);
        assert_eq!(expired.len(), 1);
        let (m, plan) = &expired[0];
        assert_eq!((m.state, m.producer_epoch, plan.producer_epoch), (TxnState::PrepareAbort, e(1), e(1)));
        c.complete(1102, plan);
        // The producer that let it hang is fenced.
        assert_eq!(c.add_partitions(1103, "t", p(1, 0), &[tp("a", 0)]), Err(ResponseError::ProducerFenced));
        assert_eq!(c.end_txn(1103, "t", p(1, 0), false), Err(ResponseError::ProducerFenced));
        assert_eq!(c.end_txn(1103, "t", p(1, 0), true), Err(ResponseError::ProducerFenced));
        assert_eq!(c.next_deadline(), None);
        // Also its KIP-360 bump: the fence left no epoch to retry from.
        assert_eq!(c.init_producer_id(1104, "t", 1000, Some(p(1, 0)), None), Err(ResponseError::ProducerFenced));
    }

    #[test]
    fn the_producer_fenced_by_a_new_one_cannot_bump_its_way_back() {
        let mut c = TxnCoordinator::new(60_000);
        ready(c.init_producer_id(0, "t", 1000, None, Some(ProducerId(1))).unwrap());
        c.add_partitions(1, "t", p(1, 0), &[tp("a", 0)]).unwrap();
        let InitDecision::AbortFirst(m, plan) = c.init_producer_id(2, "t", 1000, None, None).unwrap() else { panic!() };
        assert_eq!((m.producer_epoch, m.last_producer_epoch), (e(1), None));
        c.complete(3, &plan);
        // Before the new producer retries, the old one (epoch 0) asks for a
        // KIP-360 bump: it must not be handed epoch 1.
        assert_eq!(c.init_producer_id(4, "t", 1000, Some(p(1, 0)), None), Err(ResponseError::ProducerFenced));
        let m = ready(c.init_producer_id(5, "t", 1000, None, None).unwrap());
        assert_eq!((m.producer_epoch, m.last_producer_epoch), (e(2), None));
    }

    #[test]
    fn a_producer_at_its_last_epoch_is_fenced_by_a_timeout_too() {
        let mut c = TxnCoordinator::new(60_000);
        let last = i16::MAX - 1;
        c.load(TxnMetadata {
            transactional_id: "t".into(),
            producer_id: ProducerId(1),
            producer_epoch: e(last),
            last_producer_epoch: None,
            timeout_ms: 1000,
            state: TxnState::CompleteCommit,
            partitions: BTreeSet::new(),
            start_ms: None,
            update_ms: 0,
        });
        c.add_partitions(0, "t", p(1, last), &[tp("a", 0)]).unwrap();
        let expired = c.expire(1001);
        let (m, plan) = &expired[0];
        assert_eq!((m.producer_epoch, plan.producer_epoch), (e(i16::MAX), e(i16::MAX)), "the abort fences");
        c.complete(1002, plan);
        assert_eq!(c.add_partitions(1003, "t", p(1, last), &[tp("a", 0)]), Err(ResponseError::ProducerFenced));
        assert_eq!(c.end_txn(1003, "t", p(1, last), true), Err(ResponseError::ProducerFenced));
        // The next producer gets a new producer id.
        assert_eq!(c.init_producer_id(1004, "t", 1000, None, None), Ok(InitDecision::NeedProducerId));
        let m = ready(c.init_producer_id(1004, "t", 1000, None, Some(ProducerId(2))).unwrap());
        assert_eq!(m.producer(), p(2, 0));
    }

    #[test]
    fn idle_transactional_ids_expire_but_open_ones_do_not() {
        let mut c = TxnCoordinator::new(60_000);
        ready(c.init_producer_id(0, "idle", 1000, None, Some(ProducerId(1))).unwrap());
        ready(c.init_producer_id(0, "open", 60_000, None, Some(ProducerId(2))).unwrap());
        c.add_partitions(10, "open", p(2, 0), &[tp("a", 0)]).unwrap();
        assert!(c.expire_ids(99, 100).is_empty());
        assert_eq!(c.expire_ids(100, 100), vec!["idle".to_string()]);
        assert!(c.get("idle").is_none());
        assert!(c.get("open").is_some(), "an open transaction keeps its id");
        // An expired id starts over with a new producer id.
        assert_eq!(c.init_producer_id(101, "idle", 1000, None, None), Ok(InitDecision::NeedProducerId));
    }

    #[test]
    fn a_retried_plan_does_not_complete_a_later_transaction() {
        let mut c = TxnCoordinator::new(60_000);
        ready(c.init_producer_id(0, "t", 1000, None, Some(ProducerId(1))).unwrap());
        c.add_partitions(1, "t", p(1, 0), &[tp("a", 0)]).unwrap();
        let EndDecision::Begin(_, first) = c.end_txn(2, "t", p(1, 0), true).unwrap() else { panic!() };
        assert!(c.complete(3, &first).is_some());
        // The next transaction, same epoch and partition, is aborted.
        c.add_partitions(4, "t", p(1, 0), &[tp("a", 0)]).unwrap();
        let EndDecision::Begin(_, second) = c.end_txn(5, "t", p(1, 0), false).unwrap() else { panic!() };
        // The first plan again (its Complete record failed to append and
        // the service retried it): nothing changes, the abort stands.
        assert!(!c.is_pending(&first) && c.is_pending(&second));
        assert_eq!(c.complete(6, &first), None);
        assert_eq!(c.get("t").map(|m| m.state), Some(TxnState::PrepareAbort));
        // Nor does a commit of the same partitions begun in another
        // transaction (a later start).
        c.complete(7, &second).expect("its own plan completes it");
        c.add_partitions(8, "t", p(1, 0), &[tp("a", 0)]).unwrap();
        let EndDecision::Begin(_, third) = c.end_txn(9, "t", p(1, 0), true).unwrap() else { panic!() };
        assert_eq!(c.complete(10, &first), None, "same epoch, marker and partitions, earlier transaction");
        assert_eq!(c.complete(10, &second), None);
        assert_eq!(c.complete(11, &third).map(|m| m.state), Some(TxnState::CompleteCommit));
    }

    #[test]
    fn a_restart_between_prepare_and_complete_rewrites_the_markers() {
        let mut c = TxnCoordinator::new(60_000);
        ready(c.init_producer_id(0, "t", 1000, None, Some(ProducerId(1))).unwrap());
        c.add_partitions(0, "t", p(1, 0), &[tp("a", 0)]).unwrap();
        let EndDecision::Begin(prepared, plan) = c.end_txn(1, "t", p(1, 0), false).unwrap() else { panic!() };
        let mut restarted = TxnCoordinator::new(60_000);
        restarted.load(prepared);
        assert_eq!(restarted.pending_plans(), vec![plan]);
    }
}
