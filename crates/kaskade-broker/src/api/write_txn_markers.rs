//! WriteTxnMarkers (key 27): the transaction markers a coordinator on
//! another broker sends to the partitions this broker leads
//! (`coordinator::cluster_markers`), and what `Admin.abortTransaction`
//! (kafka-transactions abort) sends to end a hanging transaction. Each
//! marker is appended to its partition's log if the image names this
//! broker its leader (NOT_LEADER_OR_FOLLOWER otherwise, so the coordinator
//! retries on a newer image), ending the producer's open transaction
//! there; the answer waits until it is durable and, on
//! `__consumer_offsets`, until the transaction's pending offsets are
//! settled with the group coordinator, as Kafka's
//! `ReplicaManager.appendRecords` (acks=-1) plus
//! `GroupCoordinator.onTransactionCompleted`.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use kaskade_log::txn::Marker;
use kaskade_types::{ProducerEpoch, ProducerId, TopicPartition};

use crate::broker::Broker;
use crate::coordinator::{MarkerError, TxnMarker};
use crate::error::BrokerError;

pub async fn handle(
    broker: &Arc<Broker>,
    _version: i16,
    req: WriteTxnMarkersRequest,
) -> Result<WriteTxnMarkersResponse, BrokerError> {
    let mut resp = WriteTxnMarkersResponse::default();
    for m in req.markers {
        let marker = TxnMarker {
            producer_id: ProducerId(m.producer_id.0),
            producer_epoch: ProducerEpoch(m.producer_epoch),
            coordinator_epoch: m.coordinator_epoch,
            marker: if m.transaction_result { Marker::Commit } else { Marker::Abort },
        };
        let mut result = WritableTxnMarkerResult::default();
        result.producer_id = m.producer_id;
        // Every marker is appended first, then waited for: one group-committed
        // fsync covers them all.
        let mut appended = Vec::new();
        for topic in m.topics {
            let mut t = WritableTxnMarkerTopicResult::default();
            for &partition in &topic.partition_indexes {
                let mut p = WritableTxnMarkerPartitionResult::default();
                p.partition_index = partition;
                match broker.local_markers.write_one(&TopicPartition::new(topic.name.0.as_str(), partition), marker) {
                    Ok(wait) => appended.push((result.topics.len(), t.partitions.len(), wait)),
                    Err(e) => p.error_code = marker_error(&e).code(),
                }
                t.partitions.push(p);
            }
            t.name = topic.name;
            result.topics.push(t);
        }
        for (topic, partition, wait) in appended {
            if let Err(e) = wait.await {
                result.topics[topic].partitions[partition].error_code = marker_error(&e).code();
            }
        }
        resp.markers.push(result);
    }
    Ok(resp)
}

fn marker_error(e: &MarkerError) -> ResponseError {
    match e {
        MarkerError::UnknownPartition => ResponseError::UnknownTopicOrPartition,
        MarkerError::InvalidProducerEpoch(_) => ResponseError::InvalidProducerEpoch,
        MarkerError::CoordinatorFenced(_) => ResponseError::TransactionCoordinatorFenced,
        MarkerError::Failed(code, message) => {
            tracing::error!("WriteTxnMarkers: {message}");
            *code
        }
    }
}

crate::route_to!(WriteTxnMarkers, handle);
