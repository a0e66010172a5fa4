//! Produce: append each partition's batch through the partition layer
//! (`Partition::append_as_leader`: leadership check, leader epoch stamp);
//! with `acks=all` answer only once the high watermark passed every batch
//! of the request (`Partition::wait_for_replicas`; on one node in durable
//! mode the HW is the durable end, so only after an fsync covered them).
//!
//! Appends are done first for all partitions (each only a `pwrite` into
//! the page cache), then the waits run concurrently, so one request
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
use crate::partition::{storage_error, PartitionError};
use kaskade_log::LogError;
use kaskade_types::Offset;

fn partition_error(index: i32, error: ResponseError, message: Option<String>) -> PartitionProduceResponse {
    let mut p = PartitionProduceResponse::default();
    p.index = index;
    p.error_code = error.code();
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
    let mut pr = partition_error(idx, ResponseError::InvalidRecord, (version >= 8).then_some(summary));
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
                tr.partition_responses.push(partition_error(idx, ResponseError::InvalidRequiredAcks, None));
                continue;
            }
            let Some(t) = t else {
                let e =
                    if version >= 13 { ResponseError::UnknownTopicId } else { ResponseError::UnknownTopicOrPartition };
                tr.partition_responses.push(partition_error(idx, e, None));
                continue;
            };
            if version >= 13 {
                tr.name = TopicName(StrBytes::from_string(t.name.clone()));
            }
            let partition = match broker.topics.partition(&t.name, idx) {
                Ok(p) => p,
                Err(e) => {
                    tr.partition_responses.push(partition_error(idx, e.response_error(), None));
                    continue;
                }
            };
            let Some(records) = part.records else {
                tr.partition_responses.push(partition_error(
                    idx,
                    ResponseError::CorruptMessage,
                    (version >= 8).then(|| "no records".into()),
                ));
                continue;
            };
            // The topic's typed config, parsed when it last changed (topic
            // overrides or broker defaults), not per request.
            let log_config = partition.config();
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
                        storage_error(&e),
                        (version >= 8).then(|| e.to_string()),
                    ));
                    continue;
                }
            };
            match partition.append_as_leader_stamped(records, (acks == -1).then_some(log_config.min_insync_replicas)) {
                Ok((info, stamped)) => {
                    crate::metrics::traffic::produced(partition.traffic(), &info);
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
                            partition.clone(),
                            Offset(info.last_offset).next(),
                            log_config.min_insync_replicas,
                            stamped,
                        ));
                    }
                    tr.partition_responses.push(pr);
                }
                Err(e) => {
                    // error_message and record_errors exist from v8 on.
                    let mut pr = partition_error(idx, e.response_error(), (version >= 8).then(|| e.to_string()));
                    if version >= 8
                        && matches!(e, PartitionError::Storage(LogError::CorruptBatch(_) | LogError::InvalidRecord(_)))
                    {
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
        let results = futures::future::join_all(waits.iter().map(|(_, _, partition, end, min_isr, stamped)| {
            tokio::time::timeout(timeout, partition.wait_for_replicas(*end, *min_isr, *stamped))
        }))
        .await;
        for ((ti, pi, _, _, _, _), r) in waits.iter().zip(results) {
            let error = match r {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => e.response_error(),
                Err(_) => ResponseError::RequestTimedOut,
            };
            if let Some(p) = resp.responses.get_mut(*ti).and_then(|t| t.partition_responses.get_mut(*pi)) {
                p.error_code = error.code();
                p.base_offset = -1;
            }
        }
    }
    Ok(resp)
}

crate::route_to!(Produce, handle);
