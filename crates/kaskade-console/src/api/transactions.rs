//! Open transactions: ListTransactions, then DescribeTransactions for
//! their partitions and start time.

use axum::Json;
use kafka_protocol::messages::*;
use serde::Serialize;

use super::State;
use crate::error::ApiResult;
use crate::history::now_ms;
use crate::kafka::{check, sb};

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
    let listed = kafka
        .call(
            ListTransactionsRequest::default()
                .with_state_filters(OPEN.iter().map(|s| sb(s)).collect())
                .with_duration_filter(-1),
            1,
        )
        .await?;
    check(listed.error_code, None)?;
    if listed.transaction_states.is_empty() {
        return Ok(Json(Vec::new()));
    }
    let ids = listed.transaction_states.into_iter().map(|t| t.transactional_id).collect();
    let described = kafka.call(DescribeTransactionsRequest::default().with_transactional_ids(ids), 0).await?;
    let now = now_ms();
    let mut out = Vec::new();
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
    out.sort_by_key(|t| std::cmp::Reverse(t.age_ms));
    Ok(Json(out))
}
