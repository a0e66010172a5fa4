//! Produce requests routed to each partition's leader, with retries when
//! the metadata was stale (the write did not happen).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use kaskade_types::{NodeId, Offset};
use tokio::task::JoinSet;

use crate::cluster::{Client, TopicMetadata};
use crate::connection::Connection;
use crate::error::{ClientError, KafkaError, Result};

const MAX_ATTEMPTS: usize = 5;

/// One encoded record batch for one partition.
#[derive(Debug, Clone)]
pub struct PartitionBatch {
    pub partition: i32,
    pub records: usize,
    pub data: Bytes,
}

/// What happened to one batch.
#[derive(Debug)]
pub struct ProduceResult {
    pub partition: i32,
    pub records: usize,
    /// The base offset the broker assigned; `None` with acks=0.
    pub outcome: Result<Option<Offset>>,
}

/// Send `batches` to `topic` with `acks` (-1, 0 or 1). Returns one result
/// per batch; an `Err` only when the topic itself cannot be used.
pub async fn produce(
    client: &Client,
    topic: &str,
    acks: i16,
    timeout_ms: i32,
    batches: Vec<PartitionBatch>,
) -> Result<Vec<ProduceResult>> {
    let mut remaining = batches;
    let mut done = Vec::new();
    let mut backoff = Duration::from_millis(100);
    for attempt in 0..MAX_ATTEMPTS {
        let last = attempt + 1 == MAX_ATTEMPTS;
        let meta = client.topic(topic, attempt > 0).await?;

        // Group by leader.
        let mut by_leader: BTreeMap<NodeId, Vec<PartitionBatch>> = BTreeMap::new();
        let mut retry = Vec::new();
        for b in remaining.drain(..) {
            match meta.partition(b.partition) {
                None => done.push(ProduceResult {
                    partition: b.partition,
                    records: b.records,
                    outcome: Err(ClientError::InvalidInput(format!(
                        "topic '{topic}' has no partition {} (it has {} partitions)",
                        b.partition,
                        meta.num_partitions()
                    ))),
                }),
                Some(p) => match p.leader {
                    None => retry.push((b, leader_not_available(topic, p.partition))),
                    Some(leader) => by_leader.entry(leader).or_default().push(b),
                },
            }
        }

        let mut tasks = JoinSet::new();
        for (leader, batches) in by_leader {
            let conn = match client.node_connection(leader).await {
                Ok(c) => c,
                Err(e) => {
                    for b in batches {
                        retry.push((b, e.clone()));
                    }
                    continue;
                }
            };
            let meta = meta.clone();
            tasks.spawn(async move {
                let sent = send_to_leader(&conn, &meta, acks, timeout_ms, &batches).await;
                (batches, sent)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            let (batches, sent) = joined.map_err(|e| ClientError::Protocol(format!("produce task failed: {e}")))?;
            match sent {
                // The request failed as a whole (connection, encoding):
                // its outcome is unknown, so it is not retried.
                Err(e) => {
                    for b in batches {
                        done.push(ProduceResult {
                            partition: b.partition,
                            records: b.records,
                            outcome: Err(e.clone()),
                        });
                    }
                }
                Ok(per_partition) => {
                    for (b, outcome) in batches.into_iter().zip(per_partition) {
                        match outcome {
                            Err(ke) if ke.is_stale_metadata() && !last => retry.push((b, ke.into())),
                            Err(ke) => done.push(ProduceResult {
                                partition: b.partition,
                                records: b.records,
                                outcome: Err(ke.into()),
                            }),
                            Ok(offset) => done.push(ProduceResult {
                                partition: b.partition,
                                records: b.records,
                                outcome: Ok(offset),
                            }),
                        }
                    }
                }
            }
        }

        if retry.is_empty() {
            break;
        }
        if last {
            for (b, e) in retry {
                done.push(ProduceResult { partition: b.partition, records: b.records, outcome: Err(e) });
            }
            break;
        }
        tracing::debug!(attempt, n = retry.len(), "retrying produce after metadata refresh");
        client.invalidate_topic(topic);
        remaining = retry.into_iter().map(|(b, _)| b).collect();
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
    done.sort_by_key(|r| r.partition);
    Ok(done)
}

fn leader_not_available(topic: &str, partition: i32) -> ClientError {
    KafkaError::new(
        ResponseError::LeaderNotAvailable,
        None,
        format!("producing to topic '{topic}' partition {partition}"),
    )
    .into()
}

/// The Produce version to use with this topic: v13+ addresses topics by
/// id, so without an id we stay at v12.
fn produce_version(conn: &Connection, meta: &TopicMetadata) -> Result<i16> {
    let v = conn.version::<ProduceRequest>()?;
    if v >= 13 && meta.topic_id.is_nil() {
        return Ok(12);
    }
    Ok(v)
}

/// One Produce request; per-batch outcome in `batches` order.
async fn send_to_leader(
    conn: &Arc<Connection>,
    meta: &TopicMetadata,
    acks: i16,
    timeout_ms: i32,
    batches: &[PartitionBatch],
) -> Result<Vec<std::result::Result<Option<Offset>, KafkaError>>> {
    let version = produce_version(conn, meta)?;
    let req = build_request(meta, version, acks, timeout_ms, batches);
    if acks == 0 {
        conn.send_no_response(&req, version).await?;
        return Ok(batches.iter().map(|_| Ok(None)).collect());
    }
    let resp = conn.send(&req, version).await?;
    Ok(match_response(&meta.name, &resp, batches))
}

pub(crate) fn build_request(
    meta: &TopicMetadata,
    version: i16,
    acks: i16,
    timeout_ms: i32,
    batches: &[PartitionBatch],
) -> ProduceRequest {
    let mut topic = TopicProduceData::default().with_partition_data(
        batches
            .iter()
            .map(|b| PartitionProduceData::default().with_index(b.partition).with_records(Some(b.data.clone())))
            .collect(),
    );
    if version >= 13 {
        topic.topic_id = meta.topic_id;
    } else {
        topic.name = TopicName(StrBytes::from_string(meta.name.clone()));
    }
    ProduceRequest::default().with_acks(acks).with_timeout_ms(timeout_ms).with_topic_data(vec![topic])
}

pub(crate) fn match_response(
    topic: &str,
    resp: &ProduceResponse,
    batches: &[PartitionBatch],
) -> Vec<std::result::Result<Option<Offset>, KafkaError>> {
    batches
        .iter()
        .map(|b| {
            let context = format!("producing to topic '{topic}' partition {}", b.partition);
            let p = resp.responses.iter().flat_map(|t| t.partition_responses.iter()).find(|p| p.index == b.partition);
            match p {
                None => Err(KafkaError::new(
                    ResponseError::UnknownServerError,
                    Some("the broker's response does not mention this partition".into()),
                    context,
                )),
                Some(p) if p.error_code != 0 => {
                    let error =
                        ResponseError::try_from_code(p.error_code).unwrap_or(ResponseError::Unknown(p.error_code));
                    let mut msg = p.error_message.as_ref().map(|m| m.as_str().to_string());
                    if let Some(re) = p.record_errors.first() {
                        let detail = format!(
                            "record {}{}",
                            re.batch_index,
                            re.batch_index_error_message
                                .as_ref()
                                .map(|m| format!(": {}", m.as_str()))
                                .unwrap_or_default()
                        );
                        msg = Some(match msg {
                            Some(m) => format!("{m}; {detail}"),
                            None => detail,
                        });
                    }
                    Err(KafkaError::new(error, msg, context))
                }
                Some(p) => Ok(Some(Offset(p.base_offset))),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
    use kafka_protocol::protocol::{Decodable, Encodable};
    use uuid::Uuid;

    fn meta(id: Uuid) -> TopicMetadata {
        TopicMetadata { name: "t".into(), error: None, topic_id: id, is_internal: false, partitions: vec![] }
    }

    #[test]
    fn request_names_topic_by_name_or_id() {
        let b = vec![PartitionBatch { partition: 2, records: 1, data: Bytes::from_static(b"xyz") }];
        let id = Uuid::from_u128(7);
        let r12 = build_request(&meta(id), 12, -1, 30000, &b);
        assert_eq!(r12.topic_data[0].name.0.as_str(), "t");
        assert!(r12.topic_data[0].topic_id.is_nil());
        let r13 = build_request(&meta(id), 13, -1, 30000, &b);
        assert_eq!(r13.topic_data[0].topic_id, id);
        for (r, v) in [(r12, 12), (r13, 13)] {
            let mut buf = bytes::BytesMut::new();
            r.encode(&mut buf, v).unwrap();
            let back = ProduceRequest::decode(&mut buf.freeze(), v).unwrap();
            assert_eq!(back.acks, -1);
            assert_eq!(back.topic_data[0].partition_data[0].index, 2);
        }
    }

    #[test]
    fn response_errors_are_named() {
        let b = vec![
            PartitionBatch { partition: 0, records: 1, data: Bytes::new() },
            PartitionBatch { partition: 1, records: 1, data: Bytes::new() },
            PartitionBatch { partition: 2, records: 1, data: Bytes::new() },
        ];
        let resp = ProduceResponse::default().with_responses(vec![TopicProduceResponse::default()
            .with_partition_responses(vec![
                PartitionProduceResponse::default().with_index(0).with_base_offset(41),
                PartitionProduceResponse::default().with_index(1).with_error_code(10),
            ])]);
        let out = match_response("t", &resp, &b);
        assert_eq!(out[0].as_ref().unwrap(), &Some(Offset(41)));
        let e = out[1].as_ref().unwrap_err();
        assert_eq!(e.name(), "MESSAGE_TOO_LARGE");
        assert!(e.to_string().contains("partition 1"));
        assert!(out[2].is_err());
    }
}
