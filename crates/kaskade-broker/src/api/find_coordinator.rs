//! FindCoordinator (v0..v6; batched keys from v4): this node coordinates
//! every group and every transactional id (one node leads every partition
//! of `__consumer_offsets` and `__transaction_state`). Another key type is
//! INVALID_REQUEST, with Kafka's "no node" answer (-1, "", -1).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use kaskade_types::Endpoint;

use crate::broker::Broker;
use crate::error::BrokerError;

/// Key type of a group coordinator.
const KEY_TYPE_GROUP: i8 = 0;
/// Key type of a transaction coordinator.
const KEY_TYPE_TRANSACTION: i8 = 1;

/// The coordinator of one key: its node id and endpoint.
fn locate(broker: &Broker, key_type: i8) -> Result<(i32, &Endpoint), ResponseError> {
    match key_type {
        KEY_TYPE_GROUP | KEY_TYPE_TRANSACTION => Ok((broker.node_id(), broker.endpoint())),
        _ => Err(ResponseError::InvalidRequest),
    }
}

/// The wire's (node id, host, port) of a lookup: Kafka's -1, "", -1 for
/// none.
fn wire(found: &Result<(i32, &Endpoint), ResponseError>) -> (i32, StrBytes, i32) {
    match found {
        Ok((node, e)) => (*node, StrBytes::from_string(e.host.clone()), e.port),
        Err(_) => (-1, StrBytes::default(), -1),
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
            let found = locate(broker, key_type);
            let error = found.as_ref().err().copied();
            let (node, host, port) = wire(&found);
            let mut c = Coordinator::default();
            c.key = key;
            c.node_id = BrokerId(node);
            c.host = host;
            c.port = port;
            c.error_code = error.map_or(0, |e| e.code());
            // Kafka answers an empty message, not null, for a found key.
            c.error_message = Some(error.map_or_else(StrBytes::default, |e| StrBytes::from_string(e.to_string())));
            resp.coordinators.push(c);
        }
    } else {
        let found = locate(broker, key_type);
        let error = found.as_ref().err().copied();
        let (node, host, port) = wire(&found);
        resp.error_code = error.map_or(0, |e| e.code());
        if version >= 1 {
            // Kafka names the error even when there is none: "NONE".
            resp.error_message =
                Some(error.map_or_else(|| StrBytes::from_static_str("NONE"), |e| StrBytes::from_string(e.to_string())));
        }
        resp.node_id = BrokerId(node);
        resp.host = host;
        resp.port = port;
    }
    Ok(resp)
}

crate::route_to!(FindCoordinator, handle);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;
    use crate::router::Router;

    #[tokio::test]
    async fn names_this_node_for_groups_and_transactions_and_refuses_other_key_types() {
        let broker = Broker::for_tests(BrokerConfig::default(), Router::default());
        let ask = |key_type: i8| {
            FindCoordinatorRequest::default()
                .with_key_type(key_type)
                .with_coordinator_keys(vec![StrBytes::from_static_str("k")])
        };
        for key_type in [KEY_TYPE_GROUP, KEY_TYPE_TRANSACTION] {
            let resp = handle(&broker, 4, ask(key_type)).await.expect("answered");
            let c = &resp.coordinators[0];
            assert_eq!((c.error_code, c.node_id, c.host.as_str(), c.port), (0, BrokerId(1), "localhost", 9092));
        }
        let resp = handle(&broker, 4, ask(2)).await.expect("answered");
        let c = &resp.coordinators[0];
        assert_eq!(c.error_code, ResponseError::InvalidRequest.code());
        assert_eq!((c.node_id, c.host.as_str(), c.port), (BrokerId(-1), "", -1), "Kafka's no node");
        // Before v4: one key, in the top-level fields.
        let old = FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("g")).with_key_type(2);
        let resp = handle(&broker, 3, old).await.expect("answered");
        assert_eq!(
            (resp.error_code, resp.node_id, resp.port),
            (ResponseError::InvalidRequest.code(), BrokerId(-1), -1)
        );
    }
}
