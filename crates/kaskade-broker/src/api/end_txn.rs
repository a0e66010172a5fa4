//! EndTxn (key 26), versions 0 to 4: commit or abort the producer's
//! transaction. Answered once the markers are durable on every partition
//! of the transaction.

use std::sync::Arc;

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};

use crate::broker::Broker;
use crate::error::BrokerError;

pub async fn handle(broker: &Arc<Broker>, version: i16, req: EndTxnRequest) -> Result<EndTxnResponse, BrokerError> {
    let mut resp = EndTxnResponse::default();
    let id = req.transactional_id.to_string();
    if let Err(e) =
        broker.txns.end_txn(&id, super::producer_of(req.producer_id, req.producer_epoch), req.committed).await
    {
        resp.error_code = super::fenced_for(version, 2, e);
    }
    Ok(resp)
}

crate::route_to!(EndTxn, handle);
