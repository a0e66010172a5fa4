//! AllocateProducerIds (67) on the controller listener: a broker asks the
//! active controller for a block of producer ids, as Kafka's
//! `RPCProducerIdManager` asks its `ProducerIdControlManager`.
//!
//! [`decide`] is the whole decision, pure over the committed image: the
//! sender must be registered at the broker epoch it names, else
//! STALE_BROKER_EPOCH; a block past the id space is UNKNOWN_SERVER_ERROR
//! (Kafka: "Exhausted all producerIds"); otherwise the next
//! [`BLOCK_SIZE`] ids from the image's next one, recorded
//! (`MetadataRecord::ProducerIds`) before the answer names them, so no
//! two brokers, and no broker across restarts, ever get the same id.
//! Only the active controller decides, in its own term
//! (`topic::as_active_controller`); another answers NOT_CONTROLLER.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{AllocateProducerIdsRequest, AllocateProducerIdsResponse, ProducerId};
use kaskade_meta::{Image, MetadataRecord};
use kaskade_types::NodeId;

use super::broker_registration::broker_epoch;
use crate::broker::Broker;
use crate::error::BrokerError;
use crate::producer_ids::BLOCK_SIZE;

pub async fn handle(
    broker: &Arc<Broker>,
    _version: i16,
    req: AllocateProducerIdsRequest,
) -> Result<AllocateProducerIdsResponse, BrokerError> {
    if !crate::api::forwarding::is_active_controller(broker) {
        return Ok(refused(ResponseError::NotController));
    }
    let decided = crate::topic::decide_as_active(&broker.topics, move |img| decide(img, &req)).await;
    Ok(decided.unwrap_or_else(|e| {
        tracing::warn!(error = %e.message, "AllocateProducerIds not decided");
        refused(e.code)
    }))
}

crate::route_to!(AllocateProducerIds, handle);

/// A refusal: no block.
pub fn refused(code: ResponseError) -> AllocateProducerIdsResponse {
    AllocateProducerIdsResponse::default().with_error_code(code.code())
}

/// The controller's decision on `req` against `img`: the record of the
/// block and the answer naming it, or a refusal and no record.
pub fn decide(img: &Image, req: &AllocateProducerIdsRequest) -> (Vec<MetadataRecord>, AllocateProducerIdsResponse) {
    let registered = img.brokers().get(&NodeId(req.broker_id.0)).map(|b| broker_epoch(b.incarnation_id));
    if registered != Some(req.broker_epoch) {
        return (Vec::new(), refused(ResponseError::StaleBrokerEpoch));
    }
    let start = img.next_producer_id();
    let Some(end) = start.checked_add(BLOCK_SIZE) else {
        tracing::error!(start, "the producer id space is exhausted");
        return (Vec::new(), refused(ResponseError::UnknownServerError));
    };
    debug_assert!(start >= 0 && end > start);
    let answer = AllocateProducerIdsResponse::default()
        .with_producer_id_start(ProducerId(start))
        .with_producer_id_len(BLOCK_SIZE as i32);
    (vec![MetadataRecord::ProducerIds { next_block_start: end }], answer)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::BrokerId;
    use kaskade_meta::Uuid;

    use super::*;

    fn image(next: i64) -> (Image, i64) {
        let mut img = Image::default();
        let incarnation_id = Uuid::new_v4();
        img.apply(&MetadataRecord::RegisterBroker {
            node_id: 2,
            incarnation_id,
            endpoints: vec![],
            rack: None,
            fenced: false,
            process: None,
        });
        if next > 0 {
            img.apply(&MetadataRecord::ProducerIds { next_block_start: next });
        }
        (img, broker_epoch(incarnation_id))
    }

    fn ask(id: i32, epoch: i64) -> AllocateProducerIdsRequest {
        AllocateProducerIdsRequest::default().with_broker_id(BrokerId(id)).with_broker_epoch(epoch)
    }

    #[test]
    fn consecutive_blocks_never_overlap() {
        let (mut img, epoch) = image(0);
        let mut starts = Vec::new();
        for _ in 0..3 {
            let (records, answer) = decide(&img, &ask(2, epoch));
            assert_eq!((answer.error_code, answer.producer_id_len), (0, BLOCK_SIZE as i32));
            assert_eq!(records.len(), 1, "the block is recorded");
            img.apply(&records[0]);
            starts.push(answer.producer_id_start.0);
        }
        assert_eq!(starts, vec![0, BLOCK_SIZE, 2 * BLOCK_SIZE]);
        assert_eq!(img.next_producer_id(), 3 * BLOCK_SIZE);
    }

    #[test]
    fn a_stale_epoch_or_an_unregistered_broker_gets_no_block() {
        let (img, epoch) = image(5000);
        for req in [ask(2, epoch + 1), ask(2, -1), ask(7, epoch)] {
            let (records, answer) = decide(&img, &req);
            assert!(records.is_empty(), "{req:?}");
            assert_eq!(answer.error_code, ResponseError::StaleBrokerEpoch.code(), "{req:?}");
            assert_eq!(answer.producer_id_len, 0);
        }
    }

    #[test]
    fn an_exhausted_id_space_is_an_unknown_server_error() {
        let (img, epoch) = image(i64::MAX - 10);
        let (records, answer) = decide(&img, &ask(2, epoch));
        assert!(records.is_empty());
        assert_eq!(answer.error_code, ResponseError::UnknownServerError.code());
    }
}
