//! The message browser: read a partition (Fetch) from an offset, a
//! timestamp (ListOffsets) or the newest records, with a text filter; and
//! produce one record (Produce, acks=all). Both go to the partition's
//! leader, wherever it is in the cluster, as a Kafka client sends them.
//!
//! A browse is bounded: at most [`MAX_LIMIT`] records are returned and at
//! most [`MAX_SCAN`] are read looking for filter matches, so a filter over a
//! huge partition answers quickly with where it stopped (`next_offset`),
//! from which the page continues (and the live tail polls).

use axum::extract::{Path, Query};
use axum::Json;
use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use serde::{Deserialize, Serialize};

use super::State;
use crate::error::{ApiResult, Body, ConsoleError};
use crate::history::now_ms;
use crate::kafka::{check, sb, Kafka};
use crate::records::{self, Message, Outgoing};
use crate::view;

/// Records returned at most per browse.
pub const MAX_LIMIT: usize = 500;
/// Records read at most per browse when filtering.
pub const MAX_SCAN: i64 = 10_000;
/// Bytes one Fetch may return for the partition.
const FETCH_BYTES: i32 = 4 << 20;
/// How long a produce waits for acks=all.
const PRODUCE_TIMEOUT_MS: i32 = 30_000;

#[derive(Deserialize)]
pub struct Browse {
    #[serde(default)]
    partition: i32,
    /// "offset", "timestamp" or "newest" (default).
    from: Option<String>,
    /// The offset or timestamp (ms) for `from`.
    value: Option<i64>,
    limit: Option<usize>,
    filter: Option<String>,
}

#[derive(Serialize)]
pub struct Page {
    partition: i32,
    start_offset: i64,
    end_offset: i64,
    /// Where the read started and where the next read continues.
    first_offset: i64,
    next_offset: i64,
    messages: Vec<Message>,
}

/// Reads one Fetch worth of the partition from `offset`, from `leader`.
async fn fetch(
    kafka: &Kafka,
    leader: i32,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<(Vec<Message>, i64, i64), ConsoleError> {
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(FETCH_BYTES)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default().with_topic(TopicName(sb(topic))).with_partitions(vec![
            FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(FETCH_BYTES)
                .with_log_start_offset(-1)
                .with_current_leader_epoch(-1),
        ])]);
    let resp = kafka.call_on(leader, req, 12).await?;
    check(resp.error_code, None)?;
    let p = resp
        .responses
        .into_iter()
        .flat_map(|t| t.partitions)
        .find(|p| p.partition_index == partition)
        .ok_or_else(|| ConsoleError::Internal("Fetch answered without the partition".into()))?;
    check(p.error_code, None)?;
    let (messages, next) = records::decode(partition, p.records.unwrap_or_default(), offset)?;
    Ok((messages, next, p.high_watermark))
}

pub async fn browse(
    axum::extract::State(console): State,
    Path(topic): Path<String>,
    q: Result<Query<Browse>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Page> {
    let Query(q) = q?;
    let kafka = &console.kafka;
    let limit = q.limit.unwrap_or(50).clamp(1, MAX_LIMIT);
    // Read from the leader, as a consumer does.
    let leader = kafka.leader(&topic, q.partition).await?;
    let start = view::offset_on(kafka, leader, &topic, q.partition, view::EARLIEST).await?;
    let end = view::offset_on(kafka, leader, &topic, q.partition, view::LATEST).await?;
    let first = match (q.from.as_deref().unwrap_or("newest"), q.value) {
        ("newest", _) => (end - limit as i64).max(start),
        ("offset", Some(o)) => o.clamp(start, end),
        // -1: no record that late.
        ("timestamp", Some(ts)) if ts < 0 => {
            return Err(ConsoleError::BadRequest(format!("timestamp {ts}: expected milliseconds since 1970")))
        }
        ("timestamp", Some(ts)) => match view::offset_on(kafka, leader, &topic, q.partition, ts).await? {
            o if o >= 0 => o,
            _ => end,
        },
        (from, _) => {
            return Err(ConsoleError::BadRequest(format!(
                "from={from}: expected newest, offset=<n> or timestamp=<ms> (with value)"
            )))
        }
    };
    let needle = q.filter.as_deref().map(str::to_lowercase).filter(|f| !f.is_empty());
    let mut messages = Vec::new();
    let mut pos = first;
    while messages.len() < limit && pos < end && pos - first < MAX_SCAN {
        let (batch, next, _) = fetch(kafka, leader, &topic, q.partition, pos).await?;
        if next <= pos {
            break;
        }
        for m in batch {
            if messages.len() == limit {
                // Continue from the first record not returned.
                pos = m.offset;
                break;
            }
            pos = m.offset + 1;
            if needle.as_deref().is_none_or(|n| m.matches(n)) {
                messages.push(m);
            }
        }
        if messages.len() < limit {
            pos = pos.max(next);
        }
    }
    Ok(Json(Page {
        partition: q.partition,
        start_offset: start,
        end_offset: end,
        first_offset: first,
        next_offset: pos,
        messages,
    }))
}

#[derive(Deserialize)]
pub struct Header {
    key: String,
    value: Option<String>,
}

#[derive(Deserialize)]
pub struct NewMessage {
    #[serde(default)]
    partition: i32,
    key: Option<String>,
    value: Option<String>,
    #[serde(default)]
    headers: Vec<Header>,
}

pub async fn produce(
    axum::extract::State(console): State,
    Path(topic): Path<String>,
    m: Body<NewMessage>,
) -> ApiResult<serde_json::Value> {
    let Json(m) = m?;
    let batch = records::encode(Outgoing {
        key: m.key.map(Bytes::from),
        value: m.value.map(Bytes::from),
        headers: m.headers.into_iter().map(|h| (h.key, h.value.map(Bytes::from))).collect(),
        timestamp: now_ms(),
    })?;
    let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(PRODUCE_TIMEOUT_MS).with_topic_data(vec![
        TopicProduceData::default().with_name(TopicName(sb(&topic))).with_partition_data(vec![
            PartitionProduceData::default().with_index(m.partition).with_records(Some(batch)),
        ]),
    ]);
    // To the leader, as a producer sends it.
    let leader = console.kafka.leader(&topic, m.partition).await?;
    let resp = console.kafka.call_on(leader, req, 9).await?;
    let p = resp
        .responses
        .into_iter()
        .flat_map(|t| t.partition_responses)
        .find(|p| p.index == m.partition)
        .ok_or_else(|| ConsoleError::Internal("Produce answered without the partition".into()))?;
    check(p.error_code, p.error_message.as_ref())?;
    Ok(Json(serde_json::json!({ "partition": m.partition, "offset": p.base_offset })))
}
