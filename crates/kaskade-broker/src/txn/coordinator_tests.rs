//! The engine's transitions, one event at a time.

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

/// The engine with every append durable as soon as it is decided (the
/// service's happy path); the in-flight tests drive it directly.
struct Settled(TxnCoordinator);

impl std::ops::Deref for Settled {
    type Target = TxnCoordinator;
    fn deref(&self) -> &TxnCoordinator {
        &self.0
    }
}

impl std::ops::DerefMut for Settled {
    fn deref_mut(&mut self) -> &mut TxnCoordinator {
        &mut self.0
    }
}

impl Settled {
    fn new(max_timeout_ms: i32) -> Self {
        Settled(TxnCoordinator::new(max_timeout_ms))
    }

    fn settle<R>(&mut self, r: R) -> R {
        for w in self.0.take_writes() {
            assert!(self.0.written(&w.transactional_id, w.token));
        }
        r
    }

    fn init_producer_id(
        &mut self,
        now: i64,
        id: &str,
        timeout_ms: i32,
        expected: Option<ProducerIdAndEpoch>,
        new_pid: Option<ProducerId>,
    ) -> Result<InitDecision, ResponseError> {
        let r = self.0.init_producer_id(now, id, timeout_ms, expected, new_pid);
        self.settle(r)
    }

    fn add_partitions(
        &mut self,
        now: i64,
        id: &str,
        producer: ProducerIdAndEpoch,
        partitions: &[TopicPartition],
    ) -> Result<Option<TxnMetadata>, ResponseError> {
        let r = self.0.add_partitions(now, id, producer, partitions);
        self.settle(r)
    }

    fn end_txn(
        &mut self,
        now: i64,
        id: &str,
        producer: ProducerIdAndEpoch,
        commit: bool,
    ) -> Result<EndDecision, ResponseError> {
        let r = self.0.end_txn(now, id, producer, commit);
        self.settle(r)
    }

    fn complete(&mut self, now: i64, plan: &EndPlan) -> Option<TxnMetadata> {
        let r = self.0.complete(now, plan);
        self.settle(r)
    }

    fn expire(&mut self, now: i64) -> Vec<(TxnMetadata, EndPlan)> {
        let r = self.0.expire(now);
        self.settle(r)
    }

    fn expire_ids(&mut self, now: i64, expiration_ms: i64) -> Vec<String> {
        let r = self.0.expire_ids(now, expiration_ms);
        self.settle(r)
    }
}

fn ready(d: InitDecision) -> TxnMetadata {
    match d {
        InitDecision::Ready(m) => m,
        other => panic!("expected Ready, got {other:?}"),
    }
}

#[test]
fn init_add_commit_and_the_next_transaction() {
    let mut c = Settled::new(60_000);
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
    let mut c = Settled::new(60_000);
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
    let mut c = Settled::new(60_000);
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
    let mut c = Settled::new(60_000);
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
    let mut c = Settled::new(60_000);
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
    let mut c = Settled::new(60_000);
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
    let mut c = Settled::new(60_000);
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
    let mut c = Settled::new(60_000);
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
    let mut c = Settled::new(60_000);
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
    let mut c = Settled::new(60_000);
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
    let mut c = Settled::new(60_000);
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

/// Takes the one write staged, of `id`.
fn staged(c: &mut TxnCoordinator, id: &str) -> StateWrite {
    let mut writes = c.take_writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    let w = writes.remove(0);
    assert_eq!(w.transactional_id, id);
    assert!(c.in_flight(id));
    w
}

/// Every request for an id whose append is in flight answers
/// CONCURRENT_TRANSACTIONS, after the checks Kafka makes first; one
/// event each: InitProducerId, AddPartitions, EndTxn's Prepare,
/// Complete, a tombstone.
#[test]
fn an_id_whose_append_is_in_flight_answers_concurrent_transactions() {
    let mut c = TxnCoordinator::new(60_000);
    let busy = |c: &mut TxnCoordinator| {
        assert_eq!(c.init_producer_id(9, "t", 1000, None, None), Err(ResponseError::ConcurrentTransactions));
        assert_eq!(c.add_partitions(9, "t", p(1, 0), &[tp("b", 0)]), Err(ResponseError::ConcurrentTransactions));
        assert_eq!(c.end_txn(9, "t", p(1, 0), true), Err(ResponseError::ConcurrentTransactions));
        assert!(c.take_writes().is_empty(), "a refusal stages nothing");
    };
    ready(c.init_producer_id(0, "t", 1000, None, Some(ProducerId(1))).unwrap());
    let w = staged(&mut c, "t");
    assert_eq!(w.state.as_ref().map(|m| m.state), Some(TxnState::Empty));
    busy(&mut c);
    // Kafka's checks before the pending one still answer.
    assert_eq!(c.init_producer_id(9, "t", 0, None, None), Err(ResponseError::InvalidTransactionTimeout));
    assert_eq!(c.add_partitions(9, "t", p(2, 0), &[tp("a", 0)]), Err(ResponseError::InvalidProducerIdMapping));
    assert_eq!(c.end_txn(9, "t", p(1, 7), true), Err(ResponseError::ProducerFenced));
    assert!(c.written("t", w.token) && !c.in_flight("t"));

    c.add_partitions(1, "t", p(1, 0), &[tp("a", 0)]).unwrap().expect("changed");
    let w = staged(&mut c, "t");
    busy(&mut c);
    assert!(c.written("t", w.token));

    let EndDecision::Begin(_, plan) = c.end_txn(2, "t", p(1, 0), true).unwrap() else { panic!() };
    let w = staged(&mut c, "t");
    busy(&mut c);
    assert!(c.written("t", w.token));

    c.complete(3, &plan).expect("completes");
    let w = staged(&mut c, "t");
    assert_eq!(w.state.as_ref().map(|m| m.state), Some(TxnState::CompleteCommit));
    busy(&mut c);
    assert_eq!(c.complete(3, &plan), None);
    assert!(c.written("t", w.token));

    assert_eq!(c.expire_ids(100_000, 1000), vec!["t".to_string()]);
    let w = staged(&mut c, "t");
    assert_eq!(w.state, None, "a tombstone");
    busy(&mut c);
    assert!(c.written("t", w.token));
    assert_eq!(c.init_producer_id(100_001, "t", 1000, None, None), Ok(InitDecision::NeedProducerId));
}

/// A failed append puts the state before it back, for each event, and
/// the id takes requests again.
#[test]
fn a_failed_append_puts_the_state_before_it_back() {
    let mut c = TxnCoordinator::new(60_000);
    ready(c.init_producer_id(0, "t", 1000, None, Some(ProducerId(1))).unwrap());
    let w = staged(&mut c, "t");
    assert!(c.failed("t", w.token));
    assert_eq!(c.get("t"), None, "the new id is gone again");
    assert!(!c.in_flight("t"));
    let empty = ready(c.init_producer_id(1, "t", 1000, None, Some(ProducerId(1))).unwrap());
    let w = staged(&mut c, "t");
    assert!(c.written("t", w.token));

    c.add_partitions(2, "t", p(1, 0), &[tp("a", 0)]).unwrap();
    let w = staged(&mut c, "t");
    assert!(c.failed("t", w.token));
    assert_eq!(c.get("t"), Some(&empty));
    c.add_partitions(3, "t", p(1, 0), &[tp("a", 0)]).unwrap();
    let w = staged(&mut c, "t");
    assert!(c.written("t", w.token));
    let ongoing = c.get("t").cloned();

    let EndDecision::Begin(_, plan) = c.end_txn(4, "t", p(1, 0), false).unwrap() else { panic!() };
    let w = staged(&mut c, "t");
    assert!(c.failed("t", w.token));
    assert_eq!(c.get("t").cloned(), ongoing, "no abort decided");
    assert!(!c.is_pending(&plan));
    let EndDecision::Begin(prepared, plan) = c.end_txn(5, "t", p(1, 0), false).unwrap() else { panic!() };
    let w = staged(&mut c, "t");
    assert!(c.written("t", w.token));

    c.complete(6, &plan).expect("completes");
    let w = staged(&mut c, "t");
    assert!(c.failed("t", w.token));
    assert_eq!(c.get("t"), Some(&prepared), "still prepared: Complete is appended again");
    assert!(c.is_pending(&plan));
    c.complete(7, &plan).expect("completes");
    let w = staged(&mut c, "t");
    assert!(c.written("t", w.token));
    let done = c.get("t").cloned();

    assert_eq!(c.expire_ids(100_000, 1000).len(), 1);
    let w = staged(&mut c, "t");
    assert!(c.failed("t", w.token));
    assert_eq!(c.get("t").cloned(), done, "the id is back");
}

#[test]
fn timeouts_and_expiry_pass_an_id_in_flight_by() {
    let mut c = TxnCoordinator::new(60_000);
    ready(c.init_producer_id(0, "t", 1000, None, Some(ProducerId(1))).unwrap());
    let w = staged(&mut c, "t");
    assert!(c.expire_ids(100_000, 1000).is_empty(), "its first state is in flight");
    assert!(c.written("t", w.token));
    c.add_partitions(10, "t", p(1, 0), &[tp("a", 0)]).unwrap();
    let w = staged(&mut c, "t");
    assert!(c.expire(5000).is_empty(), "its Ongoing is in flight");
    assert!(c.written("t", w.token));
    assert_eq!(c.expire(5000).len(), 1, "then it times out");
}

/// An append's resolution after its id was unloaded or loaded again
/// (the partition moved) changes nothing.
#[test]
fn a_resolution_after_a_reload_is_ignored() {
    let mut c = TxnCoordinator::new(60_000);
    let m = ready(c.init_producer_id(0, "t", 1000, None, Some(ProducerId(1))).unwrap());
    let w = staged(&mut c, "t");
    assert!(c.written("t", w.token));
    c.add_partitions(1, "t", p(1, 0), &[tp("a", 0)]).unwrap();
    let w = staged(&mut c, "t");
    c.load(m.clone());
    assert!(!c.in_flight("t"));
    assert!(!c.failed("t", w.token) && !c.written("t", w.token));
    assert_eq!(c.get("t"), Some(&m));
    c.add_partitions(2, "t", p(1, 0), &[tp("a", 0)]).unwrap();
    let w = staged(&mut c, "t");
    c.unload_where(|id| id == "t");
    assert!(!c.in_flight("t") && c.get("t").is_none());
    assert!(!c.failed("t", w.token));
    assert!(c.get("t").is_none(), "not put back");
}

#[test]
fn a_restart_between_prepare_and_complete_rewrites_the_markers() {
    let mut c = Settled::new(60_000);
    ready(c.init_producer_id(0, "t", 1000, None, Some(ProducerId(1))).unwrap());
    c.add_partitions(0, "t", p(1, 0), &[tp("a", 0)]).unwrap();
    let EndDecision::Begin(prepared, plan) = c.end_txn(1, "t", p(1, 0), false).unwrap() else { panic!() };
    let mut restarted = TxnCoordinator::new(60_000);
    restarted.load(prepared);
    assert_eq!(restarted.pending_plans(), vec![plan]);
}
