//! Open transactions: ListTransactions of every broker (each lists what it
//! coordinates), then DescribeTransactions, at the broker that listed
//! them, for their partitions and start time.

use axum::Json;
use kafka_protocol::messages::*;
use serde::Serialize;

use super::State;
use crate::error::ApiResult;
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
    let mut out = Vec::new();
    for (broker, r) in answered(listed, "ListTransactions", |r| r.error_code)? {
        let ids: Vec<_> = r.transaction_states.into_iter().map(|t| t.transactional_id).collect();
        if ids.is_empty() {
            continue;
        }
        let described =
            match kafka.call_on(broker, DescribeTransactionsRequest::default().with_transactional_ids(ids), 0).await {
                Ok(d) => d,
                // Gone since it listed them: as if it had not answered.
                Err(e) => {
                    tracing::debug!(broker, error = %e, "DescribeTransactions failed: its transactions are left out");
                    continue;
                }
            };
        let now = now_ms();
        for t in described.transaction_states {
            // A transaction that ended between the two calls is simply gone.
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
    Ok(Json(out))
}
