//! AddOffsetsToTxn (key 25), versions 0 to 4: adds the group's
//! `__consumer_offsets` partition to the transaction, so its
//! TxnOffsetCommits are ended by the transaction's markers.

use std::sync::Arc;

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use crate::broker::Broker;
use crate::error::BrokerError;

pub async fn handle(
    broker: &Arc<Broker>,
    version: i16,
    req: AddOffsetsToTxnRequest,
) -> Result<AddOffsetsToTxnResponse, BrokerError> {
    let mut resp = AddOffsetsToTxnResponse::default();
    let partition = super::offsets_partition_of(broker, &req.group_id);
    let id = req.transactional_id.to_string();
    if let Err(e) =
        broker.txns.add_partitions(&id, super::producer_of(req.producer_id, req.producer_epoch), &[partition]).await
    {
        resp.error_code = super::fenced_for(version, 2, e);
    }
    Ok(resp)
}

crate::route_to!(AddOffsetsToTxn, handle);
