//! Open transactions: ListTransactions of every broker (each lists what it
//! coordinates), then DescribeTransactions, at the broker that listed
//! them, for their partitions and start time.

use axum::Json;
use kafka_protocol::messages::*;
use serde::Serialize;

use super::State;
use crate::error::{ApiResult, ConsoleError};
use crate::history::now_ms;
use crate::kafka::{answered, check, sb};

/// Transaction states that have not finished (Kafka's `TransactionState`).
const OPEN: &[&str] = &["Ongoing", "PrepareCommit", "PrepareAbort"];

#[derive(Serialize)]
pub struct Txn {
    transactional_id: String,
    producer_id: i64,
    producer_epoch: i16,
    state: String,
    timeout_ms: i32,
    start_time_ms: i64,
    age_ms: Option<i64>,
    partitions: Vec<(String, Vec<i32>)>,
}

pub async fn list(axum::extract::State(console): State) -> ApiResult<Vec<Txn>> {
    let kafka = &console.kafka;
    // Each transaction coordinator lists its own transactions: every broker
    // is asked, then each describes what it listed.
    let listed = kafka
        .call_on_every_broker(
            || {
                ListTransactionsRequest::default()
                    .with_state_filters(OPEN.iter().map(|s| sb(s)).collect())
                    .with_duration_filter(-1)
            },
            1,
        )
        .await?;
    // Each broker describes what it listed, all at once.
    let describes = answered(listed, "ListTransactions", |r| r.error_code)?.into_iter().filter_map(|(broker, r)| {
        let ids: Vec<_> = r.transaction_states.into_iter().map(|t| t.transactional_id).collect();
        (!ids.is_empty()).then_some(async move {
            let req = DescribeTransactionsRequest::default().with_transactional_ids(ids);
            (broker, kafka.call_on(broker, req, 0).await)
        })
    });
    let described = futures::future::join_all(describes).await;
    Ok(Json(open_transactions(described, now_ms())))
}

/// The open transactions of every broker's DescribeTransactions answer,
/// oldest first. A broker whose DescribeTransactions failed (gone since it
/// listed them) is left out, as if it had not answered the listing; a
/// transaction that ended between the two calls is simply gone.
fn open_transactions(described: Vec<(i32, Result<DescribeTransactionsResponse, ConsoleError>)>, now: i64) -> Vec<Txn> {
    let mut out = Vec::new();
    for (broker, answer) in described {
        let described = match answer {
            Ok(d) => d,
            Err(e) => {
                tracing::debug!(broker, error = %e, "DescribeTransactions failed: its transactions are left out");
                continue;
            }
        };
        for t in described.transaction_states {
            if check(t.error_code, None).is_err() || !OPEN.contains(&t.transaction_state.as_str()) {
                continue;
            }
            out.push(Txn {
                transactional_id: t.transactional_id.to_string(),
                producer_id: t.producer_id.0,
                producer_epoch: t.producer_epoch,
                state: t.transaction_state.to_string(),
                timeout_ms: t.transaction_timeout_ms,
                start_time_ms: t.transaction_start_time_ms,
                age_ms: (t.transaction_start_time_ms >= 0).then(|| (now - t.transaction_start_time_ms).max(0)),
                partitions: t.topics.into_iter().map(|tp| (tp.topic.to_string(), tp.partitions)).collect(),
            });
        }
    }
    out.sort_by_key(|t| std::cmp::Reverse(t.age_ms));
    out
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::describe_transactions_response::TransactionState;
    use kafka_protocol::ResponseError;

    use super::*;

    fn described(states: &[(&str, &str, i64)]) -> DescribeTransactionsResponse {
        DescribeTransactionsResponse::default().with_transaction_states(
            states
                .iter()
                .map(|(id, state, start)| {
                    TransactionState::default()
                        .with_transactional_id(TransactionalId(sb(id)))
                        .with_transaction_state(sb(state))
                        .with_transaction_start_time_ms(*start)
                })
                .collect(),
        )
    }

    #[test]
    fn a_broker_whose_describe_failed_after_it_listed_is_left_out_and_the_others_kept() {
        let gone = ConsoleError::Kafka {
            code: ResponseError::BrokerNotAvailable,
            message: Some("broker 2 is not available: connection reset".into()),
        };
        let txns = open_transactions(
            vec![
                (1, Ok(described(&[("young", "Ongoing", 9_000), ("done", "CompleteCommit", 1_000)]))),
                (2, Err(gone)),
                (3, Ok(described(&[("old", "PrepareCommit", 2_000)]))),
            ],
            10_000,
        );
        let got: Vec<_> = txns.iter().map(|t| (t.transactional_id.as_str(), t.age_ms)).collect();
        assert_eq!(got, vec![("old", Some(8_000)), ("young", Some(1_000))], "oldest first, broker 2's share left out");
    }
}
