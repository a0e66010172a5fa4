//! DescribeTransactions (key 65), version 0 (KIP-664): per transactional
//! id its state, timeout, start time, producer id and epoch, and the
//! partitions of its open (or ending) transaction, as Kafka's
//! `TransactionCoordinator.handleDescribeTransactions`: an empty id is
//! INVALID_REQUEST, an unknown one TRANSACTIONAL_ID_NOT_FOUND.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{DescribeTransactionsRequest, DescribeTransactionsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::txn::records::TXN_TOPIC;
use crate::txn::TxnMetadata;

pub async fn handle(
    broker: &Arc<Broker>,
    _version: i16,
    req: DescribeTransactionsRequest,
) -> Result<DescribeTransactionsResponse, BrokerError> {
    // No `__transaction_state` yet: no transactional id is known. Asking
    // the coordinator would create its 50 partitions for a read.
    let no_state = broker.topics.image().topic(TXN_TOPIC).is_none();
    let mut resp = DescribeTransactionsResponse::default();
    for id in req.transactional_ids {
        let mut state = TransactionState::default();
        let found = if id.0.is_empty() {
            Err(ResponseError::InvalidRequest)
        } else if no_state {
            Ok(None)
        } else {
            broker.txns.describe(id.0.as_str()).await
        };
        state.transactional_id = id;
        match found {
            Err(e) => state.error_code = e.code(),
            Ok(None) => state.error_code = ResponseError::TransactionalIdNotFound.code(),
            Ok(Some(meta)) => fill(&mut state, &meta),
        }
        resp.transaction_states.push(state);
    }
    Ok(resp)
}

fn fill(state: &mut TransactionState, meta: &TxnMetadata) {
    state.transaction_state = StrBytes::from_static_str(meta.state.name());
    state.transaction_timeout_ms = meta.timeout_ms;
    // Kafka's -1: no transaction open.
    state.transaction_start_time_ms = meta.start_ms.unwrap_or(-1);
    state.producer_id = meta.producer_id.get().into();
    state.producer_epoch = meta.producer_epoch.get();
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in &meta.partitions {
        topics.entry(&tp.topic).or_default().push(tp.partition);
    }
    state.topics = topics
        .into_iter()
        .map(|(topic, partitions)| {
            let mut t = TopicData::default();
            t.topic = TopicName(StrBytes::from_string(topic.to_string()));
            t.partitions = partitions;
            t
        })
        .collect();
}

crate::route_to!(DescribeTransactions, handle);

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use kaskade_types::{ProducerEpoch, ProducerId, TopicPartition};

    use super::*;
    use crate::txn::TxnState;

    #[tokio::test]
    async fn a_coordinator_that_cannot_load_answers_an_error_per_id() {
        let broker = crate::api::list_transactions::tests::broken_coordinator();
        let req = DescribeTransactionsRequest::default().with_transactional_ids(vec![
            kafka_protocol::messages::TransactionalId(StrBytes::from_static_str("tx")),
            kafka_protocol::messages::TransactionalId(StrBytes::from_static_str("")),
        ]);
        let resp = handle(&broker, 0, req).await.expect("answered");
        let codes: Vec<i16> = resp.transaction_states.iter().map(|t| t.error_code).collect();
        assert_eq!(codes, [ResponseError::CoordinatorLoadInProgress.code(), ResponseError::InvalidRequest.code()]);
    }

    #[test]
    fn fill_groups_partitions_by_topic() {
        let meta = TxnMetadata {
            transactional_id: "t".into(),
            producer_id: ProducerId(7),
            producer_epoch: ProducerEpoch(2),
            last_producer_epoch: Some(ProducerEpoch(1)),
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: BTreeSet::from([
                TopicPartition::new("b", 1),
                TopicPartition::new("a", 3),
                TopicPartition::new("b", 0),
            ]),
            start_ms: Some(123),
            update_ms: 456,
        };
        let mut s = TransactionState::default();
        fill(&mut s, &meta);
        assert_eq!(s.transaction_state.as_str(), "Ongoing");
        assert_eq!((s.producer_id.0, s.producer_epoch, s.transaction_timeout_ms), (7, 2, 60_000));
        assert_eq!(s.transaction_start_time_ms, 123);
        let topics: Vec<(&str, Vec<i32>)> =
            s.topics.iter().map(|t| (t.topic.0.as_str(), t.partitions.clone())).collect();
        assert_eq!(topics, vec![("a", vec![3]), ("b", vec![0, 1])]);
    }
}
