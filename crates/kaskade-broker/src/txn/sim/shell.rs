//! The service modelled without I/O: what `TxnService` does around the
//! engine. Every request's decision is persisted (appended to a simulated
//! `__transaction_state`, durable before the answer); ending transactions'
//! markers are written later, in any order, or refused (the coordinator
//! is stale: no Complete, the next load finishes the transaction); a
//! Complete append may stay in flight for a while (requests for the id
//! answer CONCURRENT_TRANSACTIONS meanwhile, as Kafka's pending state) and
//! then be durable or fail (Prepare* again, appended again); a restart
//! replays the durable records (and maybe the rest) into a fresh engine
//! and finishes the transactions left prepared. Every answer is compared
//! with [`oracle`]'s and every state reported to [`History`].

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;
use kaskade_log::txn::Marker;
use kaskade_types::{ProducerId, ProducerIdAndEpoch, TopicPartition};

use super::history::{key, History, TxnKey};
use super::oracle::{self, Init};
use crate::txn::coordinator::{EndDecision, EndPlan, InitDecision, StateWrite, TxnCoordinator};
use crate::txn::records::{self, StateValue};
use crate::txn::state::{TxnMetadata, TxnState};
use kaskade_types::sim::SimRng as Rng;

pub const MAX_TIMEOUT_MS: i32 = 30_000;

pub struct Shell {
    pub engine: TxnCoordinator,
    /// The simulated `__transaction_state`: (transactional id, value;
    /// `None` a tombstone), in the order the engine decided.
    log: Vec<(String, Option<Bytes>)>,
    /// Records before this index are durable.
    durable: usize,
    /// Ending transactions whose markers are not written yet.
    pub pending: Vec<(TxnKey, EndPlan)>,
    /// Plans already completed, that a retry may complete again.
    stale: Vec<(TxnKey, EndPlan)>,
    /// Complete appends in flight: the plan, the write, and where its
    /// record is in `log`.
    held: Vec<(TxnKey, EndPlan, StateWrite, usize)>,
    /// Plans whose markers were refused (a newer producer or coordinator
    /// epoch): left prepared, for the next load to finish.
    refused: Vec<(TxnKey, EndPlan)>,
    /// The last producer id allocated (allocation only goes up).
    last_pid: ProducerId,
    pub now: i64,
    pub history: History,
}

impl Shell {
    pub fn new() -> Self {
        Shell {
            engine: TxnCoordinator::new(MAX_TIMEOUT_MS),
            log: Vec::new(),
            durable: 0,
            pending: Vec::new(),
            stale: Vec::new(),
            held: Vec::new(),
            refused: Vec::new(),
            last_pid: ProducerId(999),
            now: 0,
            history: History::default(),
        }
    }

    /// Starts with `m` in `__transaction_state` (an id with a history).
    pub fn preload(&mut self, m: TxnMetadata) {
        self.persist(&m);
        self.engine.load(m);
    }

    /// Every request sees its own millisecond.
    fn clock(&mut self) -> i64 {
        self.now += 1;
        self.now
    }

    /// Appends the state and waits until it is durable (as the service
    /// does before answering).
    fn persist(&mut self, m: &TxnMetadata) {
        self.history.on_state(m);
        self.log.push((m.transactional_id.clone(), Some(records::value(m))));
        self.durable = self.log.len();
    }

    /// Whether `id`'s Complete append is in flight.
    fn is_held(&self, id: &str) -> bool {
        let held = self.held.iter().any(|(_, p, _, _)| p.transactional_id == id);
        assert_eq!(held, self.engine.in_flight(id), "{id}: in flight in the engine as in the shell");
        held
    }

    /// Kafka's answer while `id`'s append is in flight: the producer checks
    /// first, then CONCURRENT_TRANSACTIONS.
    fn busy<T>(&mut self, id: &str, want: Result<T, E>) -> Result<T, E> {
        if !self.is_held(id) {
            return want;
        }
        self.history.stats.busy += 1;
        match want {
            Err(e @ (E::InvalidProducerIdMapping | E::ProducerFenced)) => Err(e),
            _ => Err(E::ConcurrentTransactions),
        }
    }

    /// Takes the engine's staged writes, which must be exactly `ids` (in
    /// order), and resolves them as durable.
    fn settle(&mut self, ids: Vec<&str>) {
        let writes = self.engine.take_writes();
        let staged: Vec<&str> = writes.iter().map(|w| w.transactional_id.as_str()).collect();
        assert_eq!(staged, ids, "the writes staged");
        for w in writes {
            assert!(self.engine.in_flight(&w.transactional_id), "{w:?} in flight until resolved");
            assert!(self.engine.written(&w.transactional_id, w.token), "{w:?} resolves");
        }
    }

    pub fn init(
        &mut self,
        id: &str,
        timeout_ms: i32,
        expected: Option<ProducerIdAndEpoch>,
    ) -> Result<ProducerIdAndEpoch, E> {
        let mut new_pid = None;
        // At most one pass asks for a producer id.
        for _ in 0..2 {
            let now = self.clock();
            let before = self.engine.get(id).cloned();
            let mut want = oracle::init(before.as_ref(), timeout_ms, MAX_TIMEOUT_MS, expected, new_pid);
            if self.is_held(id) && want != Init::Error(E::InvalidTransactionTimeout) {
                self.history.stats.busy += 1;
                want = Init::Error(E::ConcurrentTransactions);
            }
            let got = self.engine.init_producer_id(now, id, timeout_ms, expected, new_pid);
            let staged = matches!(got, Ok(InitDecision::Ready(_) | InitDecision::AbortFirst(..)));
            self.settle(if staged { vec![id] } else { vec![] });
            let context = || format!("InitProducerId({id}, expected {expected:?}, pid {new_pid:?}) on {before:?}");
            match (got, want) {
                (Ok(InitDecision::NeedProducerId), Init::NeedPid) => {
                    self.last_pid = ProducerId(self.last_pid.0 + 1);
                    new_pid = Some(self.last_pid);
                }
                (Ok(InitDecision::Ready(m)), Init::Ready { pid, epoch, last }) => {
                    assert_eq!(
                        (m.producer_id, m.producer_epoch, m.last_producer_epoch, m.state),
                        (pid, epoch, last, TxnState::Empty),
                        "{}",
                        context()
                    );
                    assert_eq!((m.timeout_ms, m.partitions.len()), (timeout_ms, 0), "{}", context());
                    self.persist(&m);
                    return Ok(ProducerIdAndEpoch::new(pid, epoch));
                }
                (Ok(InitDecision::AbortFirst(m, plan)), Init::AbortFirst { epoch }) => {
                    assert_eq!((m.producer_epoch, m.state), (epoch, TxnState::PrepareAbort), "{}", context());
                    assert_eq!((plan.producer_epoch, plan.marker), (epoch, Marker::Abort), "{}", context());
                    // Kafka's fence forgets the previous epoch: the fenced
                    // producer cannot pass for a retry.
                    assert_eq!(m.last_producer_epoch, None, "{}", context());
                    self.persist(&m);
                    self.pending.push((key(&m), plan));
                    return Err(E::ConcurrentTransactions);
                }
                (Err(e), Init::Error(w)) if e == w => return Err(e),
                (got, want) => panic!("{}: engine {got:?}, Kafka {want:?}", context()),
            }
        }
        panic!("InitProducerId({id}) asked for a producer id twice");
    }

    pub fn add(&mut self, id: &str, producer: ProducerIdAndEpoch, partitions: &[TopicPartition]) -> Result<(), E> {
        let now = self.clock();
        let before = self.engine.get(id).cloned();
        let want = oracle::add(before.as_ref(), producer, partitions);
        let want = self.busy(id, want);
        let got = self.engine.add_partitions(now, id, producer, partitions);
        self.settle(if matches!(got, Ok(Some(_))) { vec![id] } else { vec![] });
        let context = || format!("AddPartitions({id}, {producer}, {partitions:?}) on {before:?}");
        match (got, want) {
            (Ok(None), Ok(None)) => {}
            (Ok(Some(m)), Ok(Some(all))) => {
                assert_eq!(m.state, TxnState::Ongoing, "{}", context());
                assert_eq!(m.partitions.iter().cloned().collect::<Vec<_>>(), all, "{}", context());
                let started =
                    before.as_ref().filter(|b| b.state == TxnState::Ongoing).map_or(Some(now), |b| b.start_ms);
                assert_eq!(m.start_ms, started, "{}", context());
                self.persist(&m);
            }
            (Err(e), Err(w)) if e == w => return Err(e),
            (got, want) => panic!("{}: engine {got:?}, Kafka {want:?}", context()),
        }
        self.history.on_ok(id, producer);
        Ok(())
    }

    pub fn end(&mut self, id: &str, producer: ProducerIdAndEpoch, commit: bool) -> Result<(), E> {
        let now = self.clock();
        let before = self.engine.get(id).cloned();
        let want = oracle::end(before.as_ref(), producer, commit);
        let want = self.busy(id, want);
        let got = self.engine.end_txn(now, id, producer, commit);
        self.settle(if matches!(got, Ok(EndDecision::Begin(..))) { vec![id] } else { vec![] });
        let context = || format!("EndTxn({id}, {producer}, commit {commit}) on {before:?}");
        match (got, want) {
            (Ok(EndDecision::AlreadyDone), Ok(None)) => {}
            (Ok(EndDecision::Begin(m, plan)), Ok(Some(marker))) => {
                let b = before.as_ref().expect("the oracle saw a transaction");
                assert_eq!(plan.marker, marker, "{}", context());
                assert_eq!((plan.producer_id, plan.producer_epoch), (producer.id, producer.epoch), "{}", context());
                assert_eq!(plan.partitions, b.partitions.iter().cloned().collect::<Vec<_>>(), "{}", context());
                assert_eq!(key(&m), key(b), "{}", context());
                self.persist(&m);
                self.pending.push((key(&m), plan));
            }
            (Err(e), Err(w)) if e == w => return Err(e),
            (got, want) => panic!("{}: engine {got:?}, Kafka {want:?}", context()),
        }
        self.history.on_ok(id, producer);
        Ok(())
    }

    /// The timeout task: aborts what is open past its timeout.
    pub fn expire(&mut self) {
        let now = self.clock();
        let before: BTreeMap<String, TxnMetadata> =
            self.engine.all().map(|m| (m.transactional_id.clone(), m.clone())).collect();
        let mut expired = self.engine.expire(now);
        let staged: Vec<String> = expired.iter().map(|(m, _)| m.transactional_id.clone()).collect();
        self.settle(staged.iter().map(String::as_str).collect());
        // The engine's map has no order; a seed must replay exactly.
        expired.sort_by(|a, b| a.0.transactional_id.cmp(&b.0.transactional_id));
        for (m, plan) in expired {
            let b = &before[&m.transactional_id];
            let timed_out = b.start_ms.is_some_and(|start| now > start + i64::from(b.timeout_ms));
            assert!(b.state == TxnState::Ongoing && timed_out, "expired {b:?}");
            let epoch = oracle::fence_epoch(b.producer_epoch);
            assert_eq!((m.state, m.producer_epoch, plan.producer_epoch), (TxnState::PrepareAbort, epoch, epoch));
            assert_eq!(m.last_producer_epoch, None, "a timeout fences: {m:?}");
            self.history.stats.timeouts += 1;
            self.persist(&m);
            self.pending.push((key(&m), plan));
        }
        self.history.check_timeouts(&self.engine, now);
    }

    /// `transactional.id.expiration.ms`: tombstones for idle ids.
    pub fn expire_ids(&mut self, expiration_ms: i64) {
        let now = self.clock();
        let mut ids = self.engine.expire_ids(now, expiration_ms);
        self.settle(ids.iter().map(String::as_str).collect());
        ids.sort();
        for id in ids {
            self.history.forget(&id);
            self.log.push((id, None));
            self.durable = self.log.len();
        }
    }

    /// Writes one ending transaction's markers and completes it; with
    /// `faults`, the markers may be refused (no Complete) or the Complete
    /// append stay in flight.
    pub fn execute(&mut self, rng: &mut Rng, faults: bool) {
        if self.pending.is_empty() {
            return;
        }
        let (k, plan) = self.pending.swap_remove(rng.below(self.pending.len() as u64) as usize);
        if faults && rng.chance(50) {
            // INVALID_PRODUCER_EPOCH / TRANSACTION_COORDINATOR_FENCED: the
            // service stops and writes nothing.
            self.history.stats.refused_markers += 1;
            assert!(self.engine.is_pending(&plan), "{k:?}: refused markers leave it prepared");
            self.refused.push((k, plan));
            return;
        }
        self.history.on_markers(&k, &plan);
        let hold = faults && rng.chance(300);
        assert!(self.complete(&k, &plan, hold), "{k:?}: its own plan did not complete it");
        if !hold {
            self.stale.push((k, plan));
        }
    }

    /// Resolves Complete appends in flight: most become durable, some fail
    /// (the transaction is Prepare* again and its Complete appended again).
    pub fn resolve_held(&mut self, rng: &mut Rng, all: bool) {
        let mut i = 0;
        while i < self.held.len() {
            if !all && !rng.chance(500) {
                i += 1;
                continue;
            }
            let (k, plan, write, at) = self.held.swap_remove(i);
            let id = &write.transactional_id;
            if !all && rng.chance(200) {
                self.history.stats.failed_completes += 1;
                assert!(self.engine.failed(id, write.token), "{write:?} resolves");
                assert!(self.engine.is_pending(&plan), "{k:?}: a failed Complete leaves it prepared");
                // The record never made it.
                self.log.remove(at);
                self.durable = self.durable.min(self.log.len());
                for (_, _, _, later) in &mut self.held {
                    if *later > at {
                        *later -= 1;
                    }
                }
                self.pending.push((k, plan));
            } else {
                assert!(self.engine.written(id, write.token), "{write:?} resolves");
                self.history.on_complete(&k, &plan);
                self.durable = self.durable.max(at + 1);
                self.stale.push((k, plan));
            }
        }
    }

    /// A completion retried after it took effect (the service retries a
    /// plan whose Complete record failed to append): it must change
    /// nothing unless it is the plan of the transaction ending now.
    pub fn replay_stale(&mut self, rng: &mut Rng) {
        if self.stale.is_empty() {
            return;
        }
        let (k, plan) = self.stale[rng.below(self.stale.len() as u64) as usize].clone();
        self.history.stats.stale_replays += 1;
        self.complete(&k, &plan, false);
    }

    /// `complete`, checked: it takes effect exactly when the id is ending
    /// the transaction the plan is of, the way the plan says.
    /// `hold`: its append stays in flight (see [`Shell::resolve_held`]).
    fn complete(&mut self, k: &TxnKey, plan: &EndPlan, hold: bool) -> bool {
        let now = self.clock();
        let before = self.engine.get(&plan.transactional_id).cloned();
        let prepared = match plan.marker {
            Marker::Commit => TxnState::PrepareCommit,
            Marker::Abort => TxnState::PrepareAbort,
        };
        let is_current = before
            .as_ref()
            .is_some_and(|b| b.state == prepared && key(b) == *k && b.producer_epoch == plan.producer_epoch);
        assert_eq!(self.engine.is_pending(plan), is_current, "is_pending({plan:?}) on {before:?}");
        let in_flight = self.is_held(&plan.transactional_id);
        let got = self.engine.complete(now, plan);
        assert!(!(in_flight && got.is_some()), "complete over an append in flight: {plan:?}");
        let write = if hold && got.is_some() {
            let mut writes = self.engine.take_writes();
            assert_eq!(writes.len(), 1, "{writes:?}");
            Some(writes.remove(0))
        } else {
            self.settle(if got.is_some() { vec![plan.transactional_id.as_str()] } else { vec![] });
            None
        };
        assert_eq!(got.is_some(), is_current, "complete({plan:?}) on {before:?}: {got:?}");
        let Some(m) = got else { return false };
        let done = match plan.marker {
            Marker::Commit => TxnState::CompleteCommit,
            Marker::Abort => TxnState::CompleteAbort,
        };
        assert_eq!((m.state, m.partitions.len(), m.start_ms), (done, 0, None));
        self.log.push((m.transactional_id.clone(), Some(records::value(&m))));
        match write {
            Some(write) => {
                self.history.stats.held_completes += 1;
                self.held.push((k.clone(), plan.clone(), write, self.log.len() - 1));
            }
            None => {
                self.history.on_complete(k, plan);
                self.durable = self.log.len();
            }
        }
        true
    }

    /// The coordinator restarts: a fresh engine from the records (all of
    /// them, or only the durable ones), then the transactions left
    /// prepared are finished again.
    pub fn restart(&mut self, rng: &mut Rng) {
        self.history.stats.restarts += 1;
        let before: BTreeMap<String, TxnMetadata> =
            self.engine.all().map(|m| (m.transactional_id.clone(), m.clone())).collect();
        let lost: Vec<String> =
            if rng.chance(500) { self.log.drain(self.durable..).map(|(id, _)| id).collect() } else { Vec::new() };
        if !lost.is_empty() {
            self.history.stats.lost_tails += 1;
        }
        let mut replayed = BTreeMap::new();
        for (id, value) in &self.log {
            let key = records::key(id);
            let id = records::decode_key(&key).expect("a key we wrote");
            let m = records::decode_value(&id, value.as_deref()).expect("a value we wrote");
            replayed.insert(id, m);
        }
        self.engine = TxnCoordinator::new(MAX_TIMEOUT_MS);
        for (id, state) in replayed {
            match state {
                StateValue::Metadata(m) => self.engine.load(m),
                StateValue::Removed => self.engine.unload(&id),
            }
        }
        let after: BTreeMap<String, TxnMetadata> =
            self.engine.all().map(|m| (m.transactional_id.clone(), m.clone())).collect();
        assert_eq!(before.keys().collect::<Vec<_>>(), after.keys().collect::<Vec<_>>(), "ids after a reload");
        for (id, b) in &before {
            let a = &after[id];
            // Kafka does not persist the previous epoch either: a retry
            // across a coordinator move is fenced.
            let b = TxnMetadata { last_producer_epoch: None, ..b.clone() };
            if b == *a {
                continue;
            }
            // Only a Complete record can be lost: the transaction is
            // prepared again and its markers are written again.
            assert!(lost.contains(id), "{id} reloaded as {a:?}, was {b:?}");
            assert!(a.state.is_ending() && matches!(b.state, TxnState::CompleteCommit | TxnState::CompleteAbort));
            assert_eq!((a.producer_id, a.producer_epoch), (b.producer_id, b.producer_epoch), "{id}");
        }
        // What was pending, and what lost its Complete record, is pending
        // again; nothing else.
        // A Complete in flight whose record survived completed its
        // transaction; one lost is pending again (below). Refused markers
        // are the new load's to write.
        for (k, plan, _, _) in std::mem::take(&mut self.held) {
            if !self.engine.is_pending(&plan) {
                self.history.on_complete(&k, &plan);
            }
        }
        let mut expected: Vec<String> = self.pending.iter().map(|(_, p)| p.transactional_id.clone()).collect();
        expected.extend(self.refused.drain(..).map(|(_, p)| p.transactional_id));
        expected.extend(
            after
                .values()
                .filter(|a| a.state.is_ending() && !before[&a.transactional_id].state.is_ending())
                .map(|a| a.transactional_id.clone()),
        );
        expected.sort();
        self.pending = self
            .engine
            .pending_plans()
            .into_iter()
            .map(|p| {
                let m = self.engine.get(&p.transactional_id).expect("a pending plan's id");
                (key(m), p)
            })
            .collect();
        self.pending.sort_by(|a, b| a.0.cmp(&b.0));
        let mut now_pending: Vec<String> = self.pending.iter().map(|(_, p)| p.transactional_id.clone()).collect();
        now_pending.sort();
        assert_eq!(expected, now_pending, "the plans pending after a reload");
        // The process that retried completions is gone.
        self.stale.clear();
        self.durable = self.log.len();
    }
}
