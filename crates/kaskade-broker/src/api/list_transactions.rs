//! ListTransactions (key 66), versions 0 and 1 (KIP-664, KIP-994): every
//! transactional id the coordinator knows with its producer id and state,
//! as Kafka's `TransactionStateManager.listTransactionStates`:
//!
//! - `state_filters`: keep only these states (Kafka's names); names that
//!   are no state are echoed in `unknown_state_filters` (and match
//!   nothing);
//! - `producer_id_filters`: keep only these producer ids;
//! - `duration_filter` (v1): keep only transactions running for longer
//!   than this many ms; negative: no filter.
//!
//! Empty filters keep everything. Dead ids (being expired) are never
//! listed.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{ListTransactionsRequest, ListTransactionsResponse, TransactionalId};
use kafka_protocol::protocol::StrBytes;
use kaskade_types::ProducerId;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::group::now_ms;
use crate::txn::records::TXN_TOPIC;
use crate::txn::{TxnMetadata, TxnState};

/// Kafka's `TransactionState.fromName`.
fn state_named(name: &str) -> Option<TxnState> {
    (0..=7).filter_map(TxnState::from_id).find(|s| s.name() == name)
}

/// The request's filters, resolved.
#[derive(Debug)]
struct Filters {
    states: Option<HashSet<TxnState>>,
    producer_ids: BTreeSet<ProducerId>,
    /// Running longer than this many ms (the request's negative value:
    /// no filter).
    duration_ms: Option<i64>,
}

impl Filters {
    fn matches(&self, meta: &TxnMetadata, now: i64) -> bool {
        if meta.state == TxnState::Dead {
            return false;
        }
        if !self.producer_ids.is_empty() && !self.producer_ids.contains(&meta.producer_id) {
            return false;
        }
        if self.states.as_ref().is_some_and(|s| !s.contains(&meta.state)) {
            return false;
        }
        // Running longer than the filter: a transaction is running from
        // its start (AddPartitions) until it completes (start -1 again).
        self.duration_ms.is_none_or(|d| meta.start_ms.is_some_and(|start| now - start > d))
    }
}

pub async fn handle(
    broker: &Arc<Broker>,
    version: i16,
    req: ListTransactionsRequest,
) -> Result<ListTransactionsResponse, BrokerError> {
    let mut resp = ListTransactionsResponse::default();
    let mut states = HashSet::new();
    for name in &req.state_filters {
        match state_named(name.as_str()) {
            Some(s) => {
                states.insert(s);
            }
            None => resp.unknown_state_filters.push(name.clone()),
        }
    }
    let filters = Filters {
        states: (!req.state_filters.is_empty()).then_some(states),
        producer_ids: req.producer_id_filters.iter().map(|p| ProducerId(p.0)).collect(),
        duration_ms: Some(req.duration_filter).filter(|&d| version >= 1 && d >= 0),
    };
    // No `__transaction_state` yet: nothing to list (and asking the
    // coordinator would create its 50 partitions for a read).
    if broker.topics.image().topic(TXN_TOPIC).is_none() {
        return Ok(resp);
    }
    let all = match broker.txns.list().await {
        Ok(all) => all,
        Err(e) => {
            resp.error_code = e.code();
            return Ok(resp);
        }
    };
    let now = now_ms();
    let mut listed: Vec<&TxnMetadata> = all.iter().filter(|m| filters.matches(m, now)).collect();
    listed.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
    resp.transaction_states = listed
        .into_iter()
        .map(|m| {
            let mut t = TransactionState::default();
            t.transactional_id = TransactionalId(StrBytes::from_string(m.transactional_id.clone()));
            t.producer_id = m.producer_id.get().into();
            t.transaction_state = StrBytes::from_static_str(m.state.name());
            t
        })
        .collect();
    Ok(resp)
}

crate::route_to!(ListTransactions, handle);

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn meta(state: TxnState, pid: i64, start_ms: Option<i64>) -> TxnMetadata {
        TxnMetadata {
            transactional_id: format!("t{pid}"),
            producer_id: ProducerId(pid),
            producer_epoch: kaskade_types::ProducerEpoch(0),
            last_producer_epoch: None,
            timeout_ms: 60_000,
            state,
            partitions: BTreeSet::new(),
            start_ms,
            update_ms: 0,
        }
    }

    fn none() -> Filters {
        Filters { states: None, producer_ids: BTreeSet::new(), duration_ms: None }
    }

    /// A broker whose `__transaction_state` cannot be loaded (its
    /// partition's log is gone).
    pub(crate) fn broken_coordinator() -> Arc<Broker> {
        let broker =
            Arc::new(Broker::for_tests(crate::config::BrokerConfig::default(), crate::router::Router::default()));
        broker.topics.create(TXN_TOPIC, 1, 1, &[], &std::collections::BTreeMap::new(), false).expect("topic");
        broker.topics.logs().delete(&kaskade_log::TopicPartition::new(TXN_TOPIC, 0)).expect("delete the log");
        broker
    }

    #[tokio::test]
    async fn a_coordinator_that_cannot_load_answers_an_error() {
        let broker = broken_coordinator();
        let resp = handle(&broker, 1, ListTransactionsRequest::default()).await.expect("answered");
        assert_eq!(resp.error_code, kafka_protocol::error::ResponseError::CoordinatorLoadInProgress.code());
        assert!(resp.transaction_states.is_empty());
    }

    #[test]
    fn state_names_are_kafkas() {
        assert_eq!(state_named("Ongoing"), Some(TxnState::Ongoing));
        assert_eq!(state_named("CompleteAbort"), Some(TxnState::CompleteAbort));
        assert_eq!(state_named("PrepareEpochFence"), Some(TxnState::PrepareEpochFence));
        assert_eq!(state_named("ongoing"), None);
        assert_eq!(state_named("Bogus"), None);
    }

    #[test]
    fn filters() {
        let ongoing = meta(TxnState::Ongoing, 1, Some(1000));
        let done = meta(TxnState::CompleteCommit, 2, None);
        assert!(none().matches(&ongoing, 5000) && none().matches(&done, 5000));
        assert!(!none().matches(&meta(TxnState::Dead, 3, None), 5000));

        let f = Filters { states: Some(HashSet::from([TxnState::Ongoing])), ..none() };
        assert!(f.matches(&ongoing, 5000) && !f.matches(&done, 5000));
        // Only unknown names: nothing matches.
        let f = Filters { states: Some(HashSet::new()), ..none() };
        assert!(!f.matches(&ongoing, 5000) && !f.matches(&done, 5000));

        let f = Filters { producer_ids: BTreeSet::from([ProducerId(2)]), ..none() };
        assert!(!f.matches(&ongoing, 5000) && f.matches(&done, 5000));

        let f = Filters { duration_ms: Some(3999), ..none() };
        assert!(f.matches(&ongoing, 5000), "running 4000 ms");
        assert!(!f.matches(&done, 5000), "not running");
        let f = Filters { duration_ms: Some(4000), ..none() };
        assert!(!f.matches(&ongoing, 5000), "not longer than 4000 ms");
    }
}
