//! WriteTxnMarkers (key 27): the transaction markers a coordinator sends to
//! partition leaders, and what `Admin.abortTransaction`
//! (kafka-transactions abort) sends to end a hanging transaction. Each
//! marker is appended to its partition's log (ending the producer's open
//! transaction there), made durable, and, on `__consumer_offsets`, settles
//! the transaction's pending offsets with the group coordinator, as
//! Kafka's `ReplicaManager.appendRecords` plus `GroupCoordinator.onTransactionCompleted`.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use kaskade_log::txn::Marker;
use kaskade_log::LogError;

use crate::broker::Broker;
use crate::group::records::OFFSETS_TOPIC;

pub async fn handle(broker: &Arc<Broker>, _version: i16, req: WriteTxnMarkersRequest) -> WriteTxnMarkersResponse {
    let mut resp = WriteTxnMarkersResponse::default();
    for m in req.markers {
        let marker = if m.transaction_result { Marker::Commit } else { Marker::Abort };
        let producer_id = m.producer_id.0;
        let mut result = WritableTxnMarkerResult::default();
        result.producer_id = m.producer_id;
        let mut settled_offsets = Vec::new();
        for topic in m.topics {
            let mut t = WritableTxnMarkerTopicResult::default();
            for &partition in &topic.partition_indexes {
                let error = match broker.topics.log(topic.name.0.as_str(), partition) {
                    None => Some(ResponseError::UnknownTopicOrPartition),
                    Some(log) => {
                        match log.append_marker(producer_id, m.producer_epoch, m.coordinator_epoch, marker, 0) {
                            Ok(info) => match log.wait_durable(info.last_offset + 1).await {
                                Ok(()) => {
                                    if topic.name.0.as_str() == OFFSETS_TOPIC {
                                        settled_offsets.push(partition);
                                    }
                                    None
                                }
                                Err(e) => Some(storage_error(&e)),
                            },
                            Err(LogError::InvalidProducerEpoch(_)) => Some(ResponseError::InvalidProducerEpoch),
                            Err(e) => Some(storage_error(&e)),
                        }
                    }
                };
                let mut p = WritableTxnMarkerPartitionResult::default();
                p.partition_index = partition;
                p.error_code = error.map_or(0, |e| e.code());
                t.partitions.push(p);
            }
            t.name = topic.name;
            result.topics.push(t);
        }
        if !settled_offsets.is_empty() {
            let commit = marker == Marker::Commit;
            let count = broker.topics.image().topic(OFFSETS_TOPIC).map_or(0, |t| t.partitions.len() as i32);
            let settled = broker
                .groups
                .call(move |engine, now| {
                    for p in settled_offsets {
                        engine.complete_txn(now, producer_id, commit, p, count);
                    }
                })
                .await;
            if settled.is_err() {
                tracing::error!(producer_id, "WriteTxnMarkers: the group coordinator did not settle the offsets");
            }
        }
        resp.markers.push(result);
    }
    resp
}

fn storage_error(e: &LogError) -> ResponseError {
    tracing::error!("WriteTxnMarkers: {e}");
    ResponseError::try_from_code(e.kafka_code()).unwrap_or(ResponseError::KafkaStorageError)
}

crate::route_to!(WriteTxnMarkers, handle);
