//! FindCoordinator (v0..v6; batched keys from v4): this node coordinates
//! every group. Transactions are not implemented yet, but this node is still
//! named their coordinator: a transactional client then asks it for
//! InitProducerId and fails at once with TRANSACTIONAL_ID_AUTHORIZATION_FAILED
//! (see `init_producer_id`), instead of retrying COORDINATOR_NOT_AVAILABLE
//! until its timeout.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::error::BrokerError;

/// Key type of a group coordinator.
const KEY_TYPE_GROUP: i8 = 0;
/// Key type of a transaction coordinator.
const KEY_TYPE_TRANSACTION: i8 = 1;

/// (error, node id, host, port) for one key.
fn locate(broker: &Broker, key_type: i8) -> (Option<ResponseError>, i32, String, i32) {
    match key_type {
        KEY_TYPE_GROUP | KEY_TYPE_TRANSACTION => {
            let (host, port) = broker.advertised();
            (None, broker.node_id(), host, port)
        }
        _ => (Some(ResponseError::InvalidRequest), -1, String::new(), -1),
    }
}

pub async fn handle(
    broker: &Broker,
    version: i16,
    req: FindCoordinatorRequest,
) -> Result<FindCoordinatorResponse, BrokerError> {
    let mut resp = FindCoordinatorResponse::default();
    let key_type = if version == 0 { KEY_TYPE_GROUP } else { req.key_type };
    if version >= 4 {
        for key in req.coordinator_keys {
            let (error, node, host, port) = locate(broker, key_type);
            let mut c = Coordinator::default();
            c.key = key;
            c.node_id = BrokerId(node);
            c.host = StrBytes::from_string(host);
            c.port = port;
            c.error_code = error.map_or(0, |e| e.code());
            // Kafka answers an empty message, not null, for a found key.
            c.error_message = Some(error.map_or_else(StrBytes::default, |e| StrBytes::from_string(e.to_string())));
            resp.coordinators.push(c);
        }
    } else {
        let (error, node, host, port) = locate(broker, key_type);
        resp.error_code = error.map_or(0, |e| e.code());
        if version >= 1 {
            // Kafka names the error even when there is none: "NONE".
            resp.error_message =
                Some(error.map_or_else(|| StrBytes::from_static_str("NONE"), |e| StrBytes::from_string(e.to_string())));
        }
        resp.node_id = BrokerId(node);
        resp.host = StrBytes::from_string(host);
        resp.port = port;
    }
    Ok(resp)
}

crate::route_to!(FindCoordinator, handle);
