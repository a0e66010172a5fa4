//! Transaction administration (KIP-664): ListTransactions on every broker
//! (each lists the transactional ids it coordinates) and
//! DescribeTransactions at a transactional id's coordinator.

use std::time::Duration;

use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ListTransactionsRequest, ListTransactionsResponse,
    TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use kaskade_types::{NodeId, ProducerEpoch, ProducerId, TopicPartition};

use crate::cluster::Client;
use crate::error::{ClientError, KafkaError, Result};
use crate::group::{find_coordinator, KEY_TYPE_TRANSACTION};

/// Kafka's transaction state names (`TransactionState`), for hints.
pub const STATES: [&str; 7] =
    ["Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "PrepareEpochFence"];

const ATTEMPTS: usize = 6;

fn retriable(code: i16) -> bool {
    code == ResponseError::CoordinatorLoadInProgress.code()
        || code == ResponseError::CoordinatorNotAvailable.code()
        || code == ResponseError::NotCoordinator.code()
}

/// A transactional id as ListTransactions reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedTransaction {
    pub transactional_id: String,
    /// The broker that coordinates it (answered the listing).
    pub coordinator: NodeId,
    /// `None` when no producer id is assigned yet.
    pub producer_id: Option<ProducerId>,
    pub state: String,
}

/// Every transactional id of every broker, sorted by id; `states` keeps
/// only those states (Kafka's names; empty: all). A state name the broker
/// does not know is an error.
pub async fn list_transactions(client: &Client, states: &[String]) -> Result<Vec<ListedTransaction>> {
    let meta = client.metadata(Some(&[])).await?;
    let mut out = Vec::new();
    for &node in meta.brokers.keys() {
        let context = format!("listing transactions on broker {node}");
        let mut backoff = Duration::from_millis(100);
        for attempt in 0..ATTEMPTS {
            let conn = client.node_connection(node).await?;
            let version = conn.version::<ListTransactionsRequest>()?;
            let mut req = ListTransactionsRequest::default();
            req.state_filters = states.iter().map(|s| StrBytes::from_string(s.clone())).collect();
            let resp = conn.send(&req, version).await?;
            match listed(node, resp, &context, attempt + 1 == ATTEMPTS)? {
                Some(l) => {
                    out.extend(l);
                    break;
                }
                None => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
    out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
    Ok(out)
}

/// One broker's ListTransactions answer: the listing, or `None` to retry
/// (the coordinator is loading; never on the `last` attempt).
fn listed(
    node: NodeId,
    resp: ListTransactionsResponse,
    context: &str,
    last: bool,
) -> Result<Option<Vec<ListedTransaction>>> {
    if !resp.unknown_state_filters.is_empty() {
        let unknown: Vec<&str> = resp.unknown_state_filters.iter().map(|s| s.as_str()).collect();
        return Err(ClientError::InvalidInput(format!(
            "{context}: unknown transaction state(s) {}\n  hint: states are {}",
            unknown.join(", "),
            STATES.join(", ")
        )));
    }
    if let Some(e) = KafkaError::from_code(resp.error_code, None, context) {
        if retriable(resp.error_code) && !last {
            return Ok(None);
        }
        return Err(e.into());
    }
    Ok(Some(
        resp.transaction_states
            .into_iter()
            .map(|t| ListedTransaction {
                transactional_id: t.transactional_id.0.to_string(),
                coordinator: node,
                producer_id: ProducerId::from_wire(t.producer_id.0),
                state: t.transaction_state.to_string(),
            })
            .collect(),
    ))
}

/// What DescribeTransactions reports of one transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionDescription {
    pub coordinator: NodeId,
    pub transactional_id: String,
    /// `None` when no producer id is assigned yet.
    pub producer_id: Option<ProducerId>,
    /// `None` when the broker sends none (-1).
    pub producer_epoch: Option<ProducerEpoch>,
    pub state: String,
    pub timeout_ms: i32,
    /// When the open transaction began; `None` when none is open.
    pub start_ms: Option<i64>,
    /// (topic, partition) of the open (or ending) transaction.
    pub partitions: Vec<TopicPartition>,
}

/// DescribeTransactions for one transactional id at its coordinator.
pub async fn describe_transaction(client: &Client, id: &str) -> Result<TransactionDescription> {
    let context = format!("describing transactional id '{id}'");
    let mut backoff = Duration::from_millis(100);
    for attempt in 0..ATTEMPTS {
        let coordinator = find_coordinator(client, KEY_TYPE_TRANSACTION, id, &context).await?;
        let (node, conn) = (coordinator.node, coordinator.connection);
        let version = conn.version::<DescribeTransactionsRequest>()?;
        let req = DescribeTransactionsRequest::default()
            .with_transactional_ids(vec![TransactionalId(StrBytes::from_string(id.to_string()))]);
        let resp = conn.send(&req, version).await?;
        match described(node, id, resp, &context, attempt + 1 == ATTEMPTS)? {
            Some(d) => return Ok(d),
            None => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
    unreachable!("the last attempt returns")
}

/// The coordinator's DescribeTransactions answer for `id`, or `None` to
/// retry (the coordinator is loading; never on the `last` attempt).
fn described(
    node: NodeId,
    id: &str,
    resp: DescribeTransactionsResponse,
    context: &str,
    last: bool,
) -> Result<Option<TransactionDescription>> {
    let t = resp
        .transaction_states
        .into_iter()
        .find(|t| t.transactional_id.0.as_str() == id)
        .ok_or_else(|| ClientError::Protocol(format!("{context}: the broker's response does not mention it")))?;
    if let Some(e) = KafkaError::from_code(t.error_code, None, context) {
        if retriable(t.error_code) && !last {
            return Ok(None);
        }
        return Err(e.into());
    }
    let mut partitions: Vec<TopicPartition> = t
        .topics
        .iter()
        .flat_map(|td| td.partitions.iter().map(|&p| TopicPartition::new(td.topic.0.as_str(), p)))
        .collect();
    partitions.sort();
    Ok(Some(TransactionDescription {
        coordinator: node,
        transactional_id: id.to_string(),
        producer_id: ProducerId::from_wire(t.producer_id.0),
        producer_epoch: (t.producer_epoch >= 0).then_some(ProducerEpoch(t.producer_epoch)),
        state: t.transaction_state.to_string(),
        timeout_ms: t.transaction_timeout_ms,
        start_ms: (t.transaction_start_time_ms >= 0).then_some(t.transaction_start_time_ms),
        partitions,
    }))
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
    use kafka_protocol::messages::list_transactions_response::TransactionState as Listed;
    use kafka_protocol::messages::TopicName;

    use super::*;

    fn sb(s: &str) -> StrBytes {
        StrBytes::from_string(s.to_string())
    }

    #[test]
    fn list_answers() {
        let ok = ListTransactionsResponse::default().with_transaction_states(vec![Listed::default()
            .with_transactional_id(TransactionalId(sb("a")))
            .with_producer_id(5.into())
            .with_transaction_state(sb("Ongoing"))]);
        let l = listed(NodeId(2), ok, "ctx", false).unwrap().unwrap();
        let want = ListedTransaction {
            transactional_id: "a".into(),
            coordinator: NodeId(2),
            producer_id: Some(ProducerId(5)),
            state: "Ongoing".into(),
        };
        assert_eq!(l, vec![want]);
        let loading =
            ListTransactionsResponse::default().with_error_code(ResponseError::CoordinatorLoadInProgress.code());
        assert!(listed(NodeId(2), loading.clone(), "ctx", false).unwrap().is_none(), "retried");
        let err = listed(NodeId(2), loading, "ctx", true).unwrap_err();
        assert!(err.to_string().contains("ctx: COORDINATOR_LOAD_IN_PROGRESS"), "{err}");
        let denied =
            ListTransactionsResponse::default().with_error_code(ResponseError::ClusterAuthorizationFailed.code());
        let err = listed(NodeId(2), denied, "ctx", false).unwrap_err();
        assert!(err.to_string().contains("CLUSTER_AUTHORIZATION_FAILED"), "{err}");
        let unknown = ListTransactionsResponse::default().with_unknown_state_filters(vec![sb("X"), sb("Y")]);
        let err = listed(NodeId(2), unknown, "ctx", false).unwrap_err();
        assert!(err.to_string().contains("unknown transaction state(s) X, Y"), "{err}");
    }

    #[test]
    fn describe_answers() {
        let state = |code: i16| {
            TransactionState::default()
                .with_error_code(code)
                .with_transactional_id(TransactionalId(sb("tx")))
                .with_producer_id(9.into())
                .with_producer_epoch(3)
                .with_transaction_state(sb("Ongoing"))
                .with_transaction_timeout_ms(1000)
                .with_transaction_start_time_ms(77)
                .with_topics(vec![
                    TopicData::default().with_topic(TopicName(sb("b"))).with_partitions(vec![1, 0]),
                    TopicData::default().with_topic(TopicName(sb("a"))).with_partitions(vec![4]),
                ])
        };
        let resp = |code| DescribeTransactionsResponse::default().with_transaction_states(vec![state(code)]);
        let d = described(NodeId(1), "tx", resp(0), "ctx", false).unwrap().unwrap();
        assert_eq!(
            (d.coordinator, d.producer_id, d.producer_epoch, d.timeout_ms),
            (NodeId(1), Some(ProducerId(9)), Some(ProducerEpoch(3)), 1000)
        );
        assert_eq!((d.state.as_str(), d.start_ms), ("Ongoing", Some(77)));
        let tp = TopicPartition::new;
        assert_eq!(d.partitions, vec![tp("a", 4), tp("b", 0), tp("b", 1)]);
        let none = DescribeTransactionsResponse::default()
            .with_transaction_states(vec![state(0).with_transaction_start_time_ms(-1)]);
        assert_eq!(described(NodeId(1), "tx", none, "ctx", false).unwrap().unwrap().start_ms, None);

        let loading = ResponseError::CoordinatorLoadInProgress.code();
        assert!(described(NodeId(1), "tx", resp(loading), "ctx", false).unwrap().is_none(), "retried");
        let err = described(NodeId(1), "tx", resp(loading), "ctx", true).unwrap_err();
        assert!(err.to_string().contains("COORDINATOR_LOAD_IN_PROGRESS"), "{err}");
        let err =
            described(NodeId(1), "tx", resp(ResponseError::TransactionalIdNotFound.code()), "ctx", false).unwrap_err();
        assert!(err.to_string().contains("ctx: TRANSACTIONAL_ID_NOT_FOUND"), "{err}");
        let err = described(NodeId(1), "other", resp(0), "ctx", false).unwrap_err();
        assert!(err.to_string().contains("does not mention it"), "{err}");
    }
}
