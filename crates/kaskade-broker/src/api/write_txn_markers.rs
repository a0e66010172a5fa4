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
        // Every marker is appended first, then waited for: one group-committed
        // fsync covers them all.
        let mut appended = Vec::new();
        for topic in m.topics {
            let mut t = WritableTxnMarkerTopicResult::default();
            let is_offsets = topic.name.0.as_str() == OFFSETS_TOPIC;
            for &partition in &topic.partition_indexes {
                let mut p = WritableTxnMarkerPartitionResult::default();
                p.partition_index = partition;
                let written = broker
                    .topics
                    .log(topic.name.0.as_str(), partition)
                    .ok_or(ResponseError::UnknownTopicOrPartition)
                    .and_then(|log| {
                        let info = log
                            .append_marker(producer_id, m.producer_epoch, m.coordinator_epoch, marker, 0)
                            .map_err(|e| logged_storage_error(&e))?;
                        Ok((log, info.last_offset + 1))
                    });
                match written {
                    Ok((log, end)) => appended.push((
                        result.topics.len(),
                        t.partitions.len(),
                        log,
                        end,
                        is_offsets.then_some(partition),
                    )),
                    Err(e) => p.error_code = e.code(),
                }
                t.partitions.push(p);
            }
            t.name = topic.name;
            result.topics.push(t);
        }
        let mut settled_offsets = Vec::new();
        for (topic, partition, log, end, offsets_partition) in appended {
            match log.wait_durable(end).await {
                Ok(()) => settled_offsets.extend(offsets_partition),
                Err(e) => result.topics[topic].partitions[partition].error_code = logged_storage_error(&e).code(),
            }
        }
        if !settled_offsets.is_empty() {
            let settled = broker.groups.complete_txn(producer_id, marker == Marker::Commit, settled_offsets).await;
            if settled.is_err() {
                tracing::error!(producer_id, "WriteTxnMarkers: the group coordinator did not settle the offsets");
            }
        }
        resp.markers.push(result);
    }
    resp
}

fn logged_storage_error(e: &LogError) -> ResponseError {
    // A fenced producer is an expected answer, not a storage failure.
    if !matches!(e, LogError::InvalidProducerEpoch(_)) {
        tracing::error!("WriteTxnMarkers: {e}");
    }
    crate::partition::storage_error(e)
}

crate::route_to!(WriteTxnMarkers, handle);
