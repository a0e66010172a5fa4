//! Produce: append each partition's batch to its log; with `acks=all`
//! answer only once an fsync covered every batch of the request.
//!
//! Appends are done first for all partitions (each only a `pwrite` into
//! the page cache), then the durable waits run concurrently, so one request
//! touching many partitions costs one group-committed fsync round.

use kafka_protocol::ResponseError;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::partition::storage_error;
use kaskade_log::LogError;

fn partition_error(index: i32, code: i16, message: Option<String>) -> PartitionProduceResponse {
    let mut p = PartitionProduceResponse::default();
    p.index = index;
    p.error_code = code;
    p.base_offset = -1;
    p.log_append_time_ms = -1;
    p.log_start_offset = -1;
    p.error_message = message.map(StrBytes::from_string);
    p
}

/// The batch as the log stores it: recompressed when the topic's
/// `compression.type` names another codec than the batch's (Kafka's
/// LogValidator), on the blocking pool since it costs CPU per byte.
async fn recompress_for_log(
    target: Option<kaskade_log::recompress::Target>,
    records: bytes::Bytes,
) -> Result<bytes::Bytes, LogError> {
    let Some(target) = target else { return Ok(records) };
    // An unparsable header is refused by the log's own validation.
    let Ok(header) = kaskade_log::batch::BatchHeader::parse(&records) else { return Ok(records) };
    if !target.needs(header.compression()) {
        return Ok(records);
    }
    tokio::task::spawn_blocking(move || kaskade_log::recompress::recompress(&records, target))
        .await
        .map_err(|e| LogError::InvalidRecord(format!("recompression did not finish: {e}")))?
}

/// Compacted topics need a key on every record (Kafka's LogValidator), the
/// one check that needs the records decoded: the indexes (within the
/// batch) of the records without one; empty when the batch is accepted.
fn keyless_records(records: &bytes::Bytes) -> Vec<i32> {
    let mut buf = records.clone();
    match kafka_protocol::records::RecordBatchDecoder::decode(&mut buf) {
        Ok(set) => (0..).zip(&set.records).filter(|(_, r)| r.key.is_none()).map(|(i, _)| i).collect(),
        // Corrupt batches are refused by the log's own validation.
        Err(_) => Vec::new(),
    }
}

/// The answer to a batch refused for some of its records, as Kafka's
/// `LogValidator.processRecordErrors` words it: each refused record by its
/// index with its own message (clients fail those records with
/// INVALID_RECORD and the rest of the batch as "a different record was
/// invalid"), and a summary naming at most the first three.
fn record_errors_response(idx: i32, version: i16, refused: &[i32], message: &str) -> PartitionProduceResponse {
    let shown: Vec<String> =
        refused.iter().take(3).map(|i| format!("RecordError(batchIndex={i}, message='{message}')")).collect();
    let summary = format!(
        "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]",
        refused.len(),
        shown.join(", ")
    );
    let mut pr = partition_error(idx, ResponseError::InvalidRecord.code(), (version >= 8).then_some(summary));
    if version >= 8 {
        pr.record_errors = refused
            .iter()
            .map(|&i| {
                let mut e = BatchIndexAndErrorMessage::default();
                e.batch_index = i;
                e.batch_index_error_message = Some(StrBytes::from_string(message.to_string()));
                e
            })
            .collect();
    }
    pr
}

/// Handles a produce request. `None` means "send no response" (acks=0).
pub async fn handle(broker: &Arc<Broker>, version: i16, req: ProduceRequest) -> Result<ProduceResponse, BrokerError> {
    let acks = req.acks;
    let mut resp = ProduceResponse::default();
    let image = broker.topics.image();
    let mut waits = Vec::new();
    for topic in req.topic_data {
        let t = if version >= 13 { image.topic_by_id(&topic.topic_id) } else { image.topic(topic.name.as_str()) };
        let mut tr = TopicProduceResponse::default();
        tr.name = topic.name.clone();
        tr.topic_id = topic.topic_id;
        for part in topic.partition_data {
            let idx = part.index;
            if !matches!(acks, -1..=1) {
                tr.partition_responses.push(partition_error(idx, ResponseError::InvalidRequiredAcks.code(), None));
                continue;
            }
            let Some(t) = t else {
                let c = if version >= 13 {
                    ResponseError::UnknownTopicId.code()
                } else {
                    ResponseError::UnknownTopicOrPartition.code()
                };
                tr.partition_responses.push(partition_error(idx, c, None));
                continue;
            };
            if version >= 13 {
                tr.name = TopicName(StrBytes::from_string(t.name.clone()));
            }
            let (Some(p), Some(log)) =
                (t.partitions.get(idx.max(0) as usize).filter(|_| idx >= 0), broker.topics.log(&t.name, idx))
            else {
                tr.partition_responses.push(partition_error(idx, ResponseError::UnknownTopicOrPartition.code(), None));
                continue;
            };
            let Some(records) = part.records else {
                tr.partition_responses.push(partition_error(
                    idx,
                    ResponseError::CorruptMessage.code(),
                    (version >= 8).then(|| "no records".into()),
                ));
                continue;
            };
            // The topic's typed config, parsed when it last changed (topic
            // overrides or broker defaults), not per request.
            let log_config = log.config();
            if log_config.cleanup_policy.compacts() {
                let refused = keyless_records(&records);
                if !refused.is_empty() {
                    let msg = format!(
                        "Compacted topic cannot accept message without key in topic partition {}-{idx}.",
                        t.name
                    );
                    tr.partition_responses.push(record_errors_response(idx, version, &refused, &msg));
                    continue;
                }
            }
            let records = match recompress_for_log(log_config.recompression, records).await {
                Ok(r) => r,
                Err(e) => {
                    tr.partition_responses.push(partition_error(
                        idx,
                        storage_error(&e).code(),
                        (version >= 8).then(|| e.to_string()),
                    ));
                    continue;
                }
            };
            match log.append_client(records, p.leader_epoch) {
                Ok(info) => {
                    crate::metrics::traffic::produced(&log, &info);
                    if info.duplicate {
                        tracing::debug!(topic = %t.name, partition = idx, base_offset = info.first_offset, "duplicate idempotent batch: answered with its original offsets");
                    }
                    let mut pr = PartitionProduceResponse::default();
                    pr.index = idx;
                    pr.base_offset = info.first_offset;
                    pr.log_append_time_ms = info.log_append_time;
                    pr.log_start_offset = info.log_start_offset;
                    if acks == -1 {
                        waits.push((
                            resp.responses.len(),
                            tr.partition_responses.len(),
                            log.clone(),
                            info.last_offset + 1,
                        ));
                    }
                    tr.partition_responses.push(pr);
                }
                Err(e) => {
                    // error_message and record_errors exist from v8 on.
                    let mut pr = partition_error(idx, storage_error(&e).code(), (version >= 8).then(|| e.to_string()));
                    if version >= 8 && matches!(e, LogError::CorruptBatch(_) | LogError::InvalidRecord(_)) {
                        // Kafka names the offending batch: there is only one.
                        let mut be = BatchIndexAndErrorMessage::default();
                        be.batch_index = 0;
                        be.batch_index_error_message = Some(StrBytes::from_string(e.to_string()));
                        pr.record_errors.push(be);
                    }
                    tracing::debug!(topic = %t.name, partition = idx, error = %e, "produce rejected");
                    tr.partition_responses.push(pr);
                }
            }
        }
        resp.responses.push(tr);
    }
    if acks == 0 {
        // acks=0: the client expects no response.
        return Err(BrokerError::NoResponse);
    }
    if !waits.is_empty() {
        let _wait = crate::metrics::acks::AckWait::start();
        let timeout = Duration::from_millis(req.timeout_ms.max(0) as u64);
        let results = futures::future::join_all(waits.iter().map(|(_, _, log, end)| {
            let log = log.clone();
            let end = *end;
            async move { tokio::time::timeout(timeout, log.wait_durable(end)).await }
        }))
        .await;
        for ((ti, pi, _, _), r) in waits.into_iter().zip(results) {
            let code = match r {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => storage_error(&e).code(),
                Err(_) => ResponseError::RequestTimedOut.code(),
            };
            if let Some(p) = resp.responses.get_mut(ti).and_then(|t| t.partition_responses.get_mut(pi)) {
                p.error_code = code;
                p.base_offset = -1;
            }
        }
    }
    Ok(resp)
}

crate::route_to!(Produce, handle);
