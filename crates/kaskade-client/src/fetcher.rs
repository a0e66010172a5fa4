//! ListOffsets and Fetch routed to each partition's leader. No consumer
//! group: the caller keeps the positions.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use kaskade_types::{NodeId, Offset, ProducerId};
use tokio::task::JoinSet;

use crate::cluster::{Client, TopicMetadata};
use crate::error::{ClientError, KafkaError, Result};
use crate::records::AbortedTxn;

/// ListOffsets timestamp for the log start offset.
const EARLIEST_TIMESTAMP: i64 = -2;
/// ListOffsets timestamp for the log end offset (high watermark).
const LATEST_TIMESTAMP: i64 = -1;

/// Which offset of a partition ListOffsets resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The log end offset (high watermark; the last stable offset under
    /// read_committed).
    Latest,
    /// The first offset whose timestamp is at or after this time (ms).
    Timestamp(i64),
}

impl OffsetSpec {
    /// The ListOffsets `timestamp` field.
    fn wire(self) -> i64 {
        match self {
            OffsetSpec::Earliest => EARLIEST_TIMESTAMP,
            OffsetSpec::Latest => LATEST_TIMESTAMP,
            OffsetSpec::Timestamp(ms) => ms,
        }
    }
}
/// Isolation levels of Fetch and ListOffsets.
pub const READ_UNCOMMITTED: i8 = 0;
pub const READ_COMMITTED: i8 = 1;

const MAX_ATTEMPTS: usize = 6;

/// Resolve partitions' offset specs to offsets, by partition. A partition
/// with no record at or after its `Timestamp` is absent from the answer.
pub async fn list_offsets(
    client: &Client,
    topic: &str,
    wanted: &BTreeMap<i32, OffsetSpec>,
) -> Result<BTreeMap<i32, Offset>> {
    list_offsets_isolated(client, topic, wanted, READ_UNCOMMITTED).await
}

/// [`list_offsets`] with an isolation level: under `READ_COMMITTED`,
/// `Latest` is the last stable offset rather than the high watermark.
pub async fn list_offsets_isolated(
    client: &Client,
    topic: &str,
    wanted: &BTreeMap<i32, OffsetSpec>,
    isolation_level: i8,
) -> Result<BTreeMap<i32, Offset>> {
    let mut out = BTreeMap::new();
    // (partition, ListOffsets timestamp) pairs still to resolve.
    let mut remaining: Vec<(i32, i64)> = wanted.iter().map(|(&p, spec)| (p, spec.wire())).collect();
    let mut backoff = Duration::from_millis(100);
    for attempt in 0..MAX_ATTEMPTS {
        let last = attempt + 1 == MAX_ATTEMPTS;
        let meta = client.topic(topic, attempt > 0).await?;
        let mut by_leader: BTreeMap<NodeId, Vec<(i32, i64)>> = BTreeMap::new();
        let mut retry: Vec<((i32, i64), ClientError)> = Vec::new();
        for (p, ts) in remaining.drain(..) {
            match meta.partition(p) {
                None => {
                    return Err(ClientError::InvalidInput(format!(
                        "topic '{topic}' has no partition {p} (it has {} partitions)",
                        meta.num_partitions()
                    )))
                }
                Some(pm) => match pm.leader {
                    None => retry.push(((p, ts), ClientError::Unavailable(format!("partition {p} has no leader")))),
                    Some(leader) => by_leader.entry(leader).or_default().push((p, ts)),
                },
            }
        }
        let mut tasks = JoinSet::new();
        for (leader, parts) in by_leader {
            let conn = match client.node_connection(leader).await {
                Ok(c) => c,
                Err(e) => {
                    retry.extend(parts.into_iter().map(|p| (p, e.clone())));
                    continue;
                }
            };
            let name = meta.name.clone();
            tasks.spawn(async move {
                let version = conn.version::<ListOffsetsRequest>()?;
                let req = build_list_offsets(name, &parts, version, isolation_level)?;
                let resp = conn.send(&req, version).await?;
                Ok::<_, ClientError>((parts, resp))
            });
        }
        while let Some(joined) = tasks.join_next().await {
            let (parts, resp) =
                joined.map_err(|e| ClientError::Protocol(format!("list-offsets task failed: {e}")))??;
            for (p, ts) in parts {
                let pr =
                    resp.topics.iter().flat_map(|t| t.partitions.iter()).find(|r| r.partition_index == p).ok_or_else(
                        || ClientError::Protocol(format!("ListOffsets response does not mention partition {p}")),
                    )?;
                let context = format!("listing offsets of topic '{topic}' partition {p}");
                let Some(e) = KafkaError::from_code(pr.error_code, None, context) else {
                    // -1: no record at or after the timestamp.
                    if pr.offset >= 0 {
                        out.insert(p, Offset(pr.offset));
                    }
                    continue;
                };
                if e.is_stale_metadata() || e.is(ResponseError::OffsetNotAvailable) {
                    retry.push(((p, ts), e.into()));
                } else {
                    return Err(e.into());
                }
            }
        }
        if retry.is_empty() {
            return Ok(out);
        }
        if last {
            let first = retry.into_iter().next().map(|(_, e)| e);
            debug_assert!(first.is_some(), "retry is not empty here");
            return Err(first.unwrap_or_else(|| {
                ClientError::Unavailable(format!("listing offsets of topic '{topic}': gave up retrying"))
            }));
        }
        client.invalidate_topic(topic);
        remaining = retry.into_iter().map(|(p, _)| p).collect();
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
    unreachable!("the last attempt returns")
}

pub(crate) fn build_list_offsets(
    topic: String,
    parts: &[(i32, i64)],
    version: i16,
    isolation_level: i8,
) -> Result<ListOffsetsRequest> {
    let mut req =
        ListOffsetsRequest::default().with_replica_id((-1).into()).with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic)))
            .with_partitions(
                parts
                    .iter()
                    .map(|(p, ts)| ListOffsetsPartition::default().with_partition_index(*p).with_timestamp(*ts))
                    .collect(),
            )]);
    if version >= 2 {
        req.isolation_level = isolation_level;
    } else if isolation_level != READ_UNCOMMITTED {
        return Err(ClientError::Unsupported(format!(
            "the broker's ListOffsets (v{version}) has no isolation level: it cannot read committed"
        )));
    }
    if version >= 10 {
        req.timeout_ms = 30_000;
    }
    Ok(req)
}

/// Fetch tuning, Kafka consumer defaults.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    pub max_wait_ms: i32,
    pub min_bytes: i32,
    pub max_bytes: i32,
    pub partition_max_bytes: i32,
    /// `READ_UNCOMMITTED` or `READ_COMMITTED`.
    pub isolation_level: i8,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            max_wait_ms: 500,
            min_bytes: 1,
            max_bytes: 52_428_800,
            partition_max_bytes: 1_048_576,
            isolation_level: READ_UNCOMMITTED,
        }
    }
}

/// One partition of a fetch.
#[derive(Debug, Clone)]
pub struct FetchedPartition {
    pub partition: i32,
    /// The offset this fetch asked for.
    pub fetch_offset: Offset,
    /// Why there is no data, if there is none (NETWORK_EXCEPTION when the leader could
    /// not be reached, LEADER_NOT_AVAILABLE when there is none).
    pub error: Option<ResponseError>,
    pub error_detail: Option<String>,
    /// `None` when the partition could not be read.
    pub high_watermark: Option<Offset>,
    /// `None` when the partition could not be read or the broker's Fetch
    /// version does not carry it.
    pub log_start_offset: Option<Offset>,
    /// read_committed: the aborted transactions the records overlap.
    pub aborted_transactions: Vec<AbortedTxn>,
    pub records: Bytes,
}

/// One round of long-poll fetches from `positions` (partition -> offset
/// to read from), one request per leader, concurrently. Every position
/// gets a `FetchedPartition` back.
pub async fn fetch(
    client: &Client,
    meta: &TopicMetadata,
    positions: &BTreeMap<i32, Offset>,
    opts: &FetchOptions,
) -> Result<Vec<FetchedPartition>> {
    let mut out = Vec::new();
    let mut by_leader: BTreeMap<NodeId, Vec<(i32, Offset)>> = BTreeMap::new();
    for (&p, &offset) in positions {
        match meta.partition(p).and_then(|pm| pm.leader) {
            Some(leader) => by_leader.entry(leader).or_default().push((p, offset)),
            None => out.push(failed(p, offset, ResponseError::LeaderNotAvailable, None)),
        }
    }
    let mut tasks = JoinSet::new();
    for (leader, parts) in by_leader {
        let conn = match client.node_connection(leader).await {
            Ok(c) => c,
            Err(e) => {
                let msg = e.to_string();
                out.extend(
                    parts.iter().map(|&(p, o)| failed(p, o, ResponseError::NetworkException, Some(msg.clone()))),
                );
                continue;
            }
        };
        let meta = meta.clone();
        let opts = opts.clone();
        tasks.spawn(async move {
            let result = async {
                let mut version = conn.version::<FetchRequest>()?;
                if version >= 13 && meta.topic_id.is_nil() {
                    version = 12;
                }
                let req = build_fetch(&meta, version, &parts, &opts);
                conn.send(&req, version).await
            }
            .await;
            (parts, result)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let (parts, result) = joined.map_err(|e| ClientError::Protocol(format!("fetch task failed: {e}")))?;
        match result {
            Err(e) => {
                let msg = e.to_string();
                out.extend(
                    parts.iter().map(|&(p, o)| failed(p, o, ResponseError::NetworkException, Some(msg.clone()))),
                );
            }
            Ok(resp) => out.extend(match_fetch(&resp, &parts)),
        }
    }
    out.sort_by_key(|f| f.partition);
    Ok(out)
}

fn failed(partition: i32, fetch_offset: Offset, error: ResponseError, detail: Option<String>) -> FetchedPartition {
    FetchedPartition {
        partition,
        fetch_offset,
        error: Some(error),
        error_detail: detail,
        high_watermark: None,
        log_start_offset: None,
        aborted_transactions: Vec::new(),
        records: Bytes::new(),
    }
}

pub(crate) fn build_fetch(
    meta: &TopicMetadata,
    version: i16,
    parts: &[(i32, Offset)],
    opts: &FetchOptions,
) -> FetchRequest {
    let mut topic = FetchTopic::default().with_partitions(
        parts
            .iter()
            .map(|&(p, offset)| {
                FetchPartition::default()
                    .with_partition(p)
                    .with_fetch_offset(offset.get())
                    .with_partition_max_bytes(opts.partition_max_bytes)
            })
            .collect(),
    );
    if version >= 13 {
        topic.topic_id = meta.topic_id;
    } else {
        topic.topic = TopicName(StrBytes::from_string(meta.name.clone()));
    }
    FetchRequest::default()
        .with_max_wait_ms(opts.max_wait_ms)
        .with_min_bytes(opts.min_bytes)
        .with_max_bytes(opts.max_bytes)
        .with_isolation_level(opts.isolation_level)
        // Sessionless fetch: session id 0, epoch -1 (FINAL_EPOCH).
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(vec![topic])
}

pub(crate) fn match_fetch(resp: &FetchResponse, parts: &[(i32, Offset)]) -> Vec<FetchedPartition> {
    parts
        .iter()
        .map(|&(p, offset)| {
            if let Some(e) = ResponseError::try_from_code(resp.error_code) {
                return failed(p, offset, e, None);
            }
            let pd = resp.responses.iter().flat_map(|t| t.partitions.iter()).find(|d| d.partition_index == p);
            match pd {
                None => failed(
                    p,
                    offset,
                    ResponseError::UnknownServerError,
                    Some("the broker's Fetch response does not mention this partition".into()),
                ),
                Some(d) => FetchedPartition {
                    partition: p,
                    fetch_offset: offset,
                    error: ResponseError::try_from_code(d.error_code),
                    error_detail: None,
                    high_watermark: (d.high_watermark >= 0).then_some(Offset(d.high_watermark)),
                    log_start_offset: (d.log_start_offset >= 0).then_some(Offset(d.log_start_offset)),
                    aborted_transactions: d
                        .aborted_transactions
                        .iter()
                        .flatten()
                        .map(|a| AbortedTxn {
                            producer_id: ProducerId(a.producer_id.0),
                            first_offset: Offset(a.first_offset),
                        })
                        .collect(),
                    records: d.records.clone().unwrap_or_default(),
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::protocol::{Decodable, Encodable};
    use uuid::Uuid;

    fn meta() -> TopicMetadata {
        TopicMetadata {
            name: "t".into(),
            error: None,
            topic_id: Uuid::from_u128(9),
            is_internal: false,
            partitions: vec![],
        }
    }

    #[test]
    fn fetch_request_encodes_at_every_version() {
        for v in 4..=18 {
            let req = build_fetch(&meta(), v, &[(0, Offset(5)), (3, Offset(7))], &FetchOptions::default());
            let mut buf = bytes::BytesMut::new();
            req.encode(&mut buf, v).unwrap_or_else(|e| panic!("v{v}: {e}"));
            let back = FetchRequest::decode(&mut buf.freeze(), v).unwrap();
            assert_eq!(back.max_wait_ms, 500);
            assert_eq!(back.session_epoch, -1);
            assert_eq!(back.topics[0].partitions[1].fetch_offset, 7);
            if v >= 13 {
                assert_eq!(back.topics[0].topic_id, Uuid::from_u128(9));
            } else {
                assert_eq!(back.topics[0].topic.0.as_str(), "t");
            }
        }
    }

    #[test]
    fn list_offsets_isolation_needs_v2() {
        for v in 1..=10 {
            let req = build_list_offsets("t".into(), &[(0, LATEST_TIMESTAMP)], v, READ_UNCOMMITTED).unwrap();
            let mut buf = bytes::BytesMut::new();
            req.encode(&mut buf, v).unwrap_or_else(|e| panic!("v{v}: {e}"));
            if v >= 2 {
                let req = build_list_offsets("t".into(), &[(0, LATEST_TIMESTAMP)], v, READ_COMMITTED).unwrap();
                let mut buf = bytes::BytesMut::new();
                req.encode(&mut buf, v).unwrap_or_else(|e| panic!("v{v}: {e}"));
                let back = ListOffsetsRequest::decode(&mut buf.freeze(), v).unwrap();
                assert_eq!(back.isolation_level, READ_COMMITTED);
            }
        }
        let err = build_list_offsets("t".into(), &[(0, LATEST_TIMESTAMP)], 1, READ_COMMITTED).unwrap_err();
        assert!(err.to_string().contains("cannot read committed"), "{err}");
    }

    #[test]
    fn read_committed_fetch_carries_isolation_and_aborted_transactions() {
        let opts = FetchOptions { isolation_level: READ_COMMITTED, ..FetchOptions::default() };
        let req = build_fetch(&meta(), 4, &[(0, Offset(0))], &opts);
        let mut buf = bytes::BytesMut::new();
        req.encode(&mut buf, 4).unwrap();
        assert_eq!(FetchRequest::decode(&mut buf.freeze(), 4).unwrap().isolation_level, READ_COMMITTED);

        use kafka_protocol::messages::fetch_response::AbortedTransaction;
        let resp =
            FetchResponse::default().with_responses(vec![FetchableTopicResponse::default().with_partitions(vec![
                PartitionData::default().with_partition_index(0).with_aborted_transactions(Some(vec![
                    AbortedTransaction::default().with_producer_id(7.into()).with_first_offset(3),
                ])),
                PartitionData::default().with_partition_index(1),
            ])]);
        let out = match_fetch(&resp, &[(0, Offset(0)), (1, Offset(0))]);
        assert_eq!(
            out[0].aborted_transactions,
            vec![AbortedTxn { producer_id: ProducerId(7), first_offset: Offset(3) }]
        );
        assert!(out[1].aborted_transactions.is_empty());
    }

    #[test]
    fn fetch_response_matching() {
        let resp =
            FetchResponse::default().with_responses(vec![FetchableTopicResponse::default().with_partitions(vec![
                PartitionData::default()
                    .with_partition_index(1)
                    .with_high_watermark(10)
                    .with_records(Some(Bytes::from_static(b"abc"))),
            ])]);
        let out = match_fetch(&resp, &[(1, Offset(3)), (2, Offset(0))]);
        assert_eq!(out[0].high_watermark, Some(Offset(10)));
        assert_eq!(out[0].records.as_ref(), b"abc");
        assert_eq!(out[0].fetch_offset, Offset(3));
        assert_eq!(out[0].error, None);
        assert!(out[1].error.is_some());
        let top = FetchResponse::default().with_error_code(ResponseError::FetchSessionIdNotFound.code());
        assert_eq!(match_fetch(&top, &[(0, Offset(0))])[0].error, Some(ResponseError::FetchSessionIdNotFound));
    }
}
