//! DescribeCluster: the live brokers, each with its endpoint on the
//! listener the client connected to and its rack (v2 with
//! `include_fenced_brokers`: the fenced ones too, marked `is_fenced`), and
//! the active controller.
//!
//! On the controller listener of a multi-node quorum (`handle_controller`,
//! Kafka's `ControllerApis.handleDescribeCluster`, KIP-919) it names the
//! controllers instead: endpoint type CONTROLLER, every voter of
//! `controller.quorum.voters` (a dynamic quorum: of the current membership)
//! at its controller listener address, and the
//! active controller (-1 while none is known). A request for another
//! endpoint type gets MISMATCHED_ENDPOINT_TYPE (INVALID_REQUEST at v0,
//! which cannot name one), an unknown type UNSUPPORTED_ENDPOINT_TYPE, as
//! Kafka answers.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use kaskade_types::NodeId;

use super::authorized_operations as ops;
use crate::broker::Broker;
use crate::error::BrokerError;

pub async fn handle(
    broker: &Arc<Broker>,
    _version: i16,
    req: DescribeClusterRequest,
) -> Result<DescribeClusterResponse, BrokerError> {
    let mut resp = DescribeClusterResponse::default();
    // endpoint_type 1 = brokers; 2 = controllers (the same node here).
    resp.endpoint_type = if req.endpoint_type == 0 { 1 } else { req.endpoint_type };
    resp.cluster_id = StrBytes::from_string(broker.cluster_id().to_string());
    resp.cluster_authorized_operations = ops::if_asked(req.include_cluster_authorized_operations, ops::CLUSTER);
    resp.brokers = super::metadata::broker_entries(broker, |id, host, port, rack| {
        DescribeClusterBroker::default().with_broker_id(id).with_host(host).with_port(port).with_rack(rack)
    });
    // Named among the live brokers listed (not the fenced ones added below).
    let listed: Vec<NodeId> = resp.brokers.iter().map(|b| NodeId(b.broker_id.0)).collect();
    resp.controller_id = BrokerId(broker.controller_id(&listed).map_or(-1, NodeId::get));
    if req.include_fenced_brokers {
        resp.brokers.extend(fenced_entries(broker));
    }
    Ok(resp)
}

/// The registered brokers that are fenced, on the caller's listener (v2's
/// `include_fenced_brokers`, KIP-1073); a broker without that listener is
/// left out, as from the live ones.
fn fenced_entries(broker: &Broker) -> Vec<DescribeClusterBroker> {
    let listener = super::Caller::listener();
    let answering = broker.answering_listener(listener.as_deref()).listener.clone();
    let image = broker.topics.image();
    image
        .brokers()
        .values()
        .filter(|b| b.fenced)
        .filter_map(|b| {
            let e = b.endpoint(&answering)?;
            Some(
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(b.id.get()))
                    .with_host(StrBytes::from_string(e.host.clone()))
                    .with_port(i32::from(e.port))
                    .with_rack(b.rack.clone().map(StrBytes::from_string))
                    .with_is_fenced(true),
            )
        })
        .collect()
}

crate::route_to!(DescribeCluster, handle);

/// DescribeCluster's endpoint types (KIP-919).
const ENDPOINT_BROKER: i8 = 1;
const ENDPOINT_CONTROLLER: i8 = 2;

/// Kafka's refusal of a request for endpoint type `requested` at
/// `version` on an endpoint of type `served`, if it is refused.
fn endpoint_refusal(version: i16, requested: i8, served: i8) -> Option<(ResponseError, String)> {
    if requested != ENDPOINT_BROKER && requested != ENDPOINT_CONTROLLER {
        let code = if version == 0 { ResponseError::InvalidRequest } else { ResponseError::UnsupportedEndpointType };
        return Some((code, format!("Unsupported endpoint type {requested}")));
    }
    if requested != served {
        let code = if version == 0 { ResponseError::InvalidRequest } else { ResponseError::MismatchedEndpointType };
        let name = |t: i8| if t == ENDPOINT_CONTROLLER { "CONTROLLER" } else { "BROKER" };
        return Some((
            code,
            format!(
                "The request was sent to an endpoint of type {}, but we wanted an endpoint of type {}",
                name(served),
                name(requested)
            ),
        ));
    }
    None
}

/// The controller listener's answer; see the module docs.
pub async fn handle_controller(
    broker: &Arc<Broker>,
    version: i16,
    req: DescribeClusterRequest,
) -> Result<DescribeClusterResponse, BrokerError> {
    let mut resp = DescribeClusterResponse::default();
    if let Some((code, message)) = endpoint_refusal(version, req.endpoint_type, ENDPOINT_CONTROLLER) {
        resp.error_code = code.code();
        resp.error_message = Some(StrBytes::from_string(message));
        return Ok(resp);
    }
    resp.endpoint_type = ENDPOINT_CONTROLLER;
    resp.cluster_id = StrBytes::from_string(broker.cluster_id().to_string());
    resp.cluster_authorized_operations = ops::if_asked(req.include_cluster_authorized_operations, ops::CLUSTER);
    for (id, host, port) in controller_endpoints(broker) {
        let mut b = DescribeClusterBroker::default();
        b.broker_id = BrokerId(id.get());
        b.host = StrBytes::from_string(host);
        b.port = i32::from(port);
        resp.brokers.push(b);
    }
    // A leader Kafka cannot describe is named -1, so clients never look for it.
    let leader =
        broker.quorum().and_then(|q| q.leader()).filter(|id| resp.brokers.iter().any(|b| b.broker_id.0 == id.get()));
    resp.controller_id = BrokerId(leader.map_or(-1, NodeId::get));
    Ok(resp)
}

/// The voters at their controller listeners: `controller.quorum.voters`
/// for a static quorum; for a dynamic one (KIP-853) the quorum's current
/// membership as this controller applied it.
pub(crate) fn controller_endpoints(broker: &Broker) -> Vec<(NodeId, String, u16)> {
    if !broker.config.kraft.voters.is_empty() {
        return broker.config.kraft.voters.iter().map(|v| (v.id, v.address.host.clone(), v.address.port)).collect();
    }
    let Some(quorum) = broker.quorum() else { return Vec::new() };
    quorum
        .voter_nodes()
        .into_iter()
        .filter_map(|(id, node)| {
            let (host, port) = node.addr.rsplit_once(':')?;
            let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
            Some((id, host.to_string(), port.parse().ok()?))
        })
        .collect()
}

pub mod controller_route {
    crate::route_to!(DescribeCluster, super::handle_controller);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_controller_refuses_other_endpoint_types_as_kafka_does() {
        assert_eq!(endpoint_refusal(1, ENDPOINT_CONTROLLER, ENDPOINT_CONTROLLER), None);
        let (code, message) = endpoint_refusal(1, ENDPOINT_BROKER, ENDPOINT_CONTROLLER).expect("refused");
        assert_eq!(code, ResponseError::MismatchedEndpointType);
        assert!(message.contains("type CONTROLLER, but we wanted an endpoint of type BROKER"), "{message}");
        // v0 carries no endpoint type (BROKER): INVALID_REQUEST.
        assert_eq!(
            endpoint_refusal(0, ENDPOINT_BROKER, ENDPOINT_CONTROLLER).map(|r| r.0),
            Some(ResponseError::InvalidRequest)
        );
        assert_eq!(
            endpoint_refusal(1, 7, ENDPOINT_CONTROLLER).map(|r| r.0),
            Some(ResponseError::UnsupportedEndpointType)
        );
        assert_eq!(endpoint_refusal(0, 7, ENDPOINT_CONTROLLER).map(|r| r.0), Some(ResponseError::InvalidRequest));
    }

    #[tokio::test]
    async fn a_controller_names_the_voters_at_their_controller_listeners() {
        let config = BrokerConfig::from_overrides([
            ("process.roles", "controller"),
            ("node.id", "2"),
            ("controller.quorum.voters", "1@c1:9093,2@c2:9094,3@c3:9095"),
            ("controller.listener.names", "CONTROLLER"),
            ("listeners", "CONTROLLER://:9094"),
        ])
        .expect("config");
        let broker = Arc::new(Broker::for_tests(config, crate::router::Router::default()));
        let req = DescribeClusterRequest::default().with_endpoint_type(ENDPOINT_CONTROLLER);
        let resp = handle_controller(&broker, 1, req).await.expect("DescribeCluster");
        assert_eq!((resp.error_code, resp.endpoint_type), (0, ENDPOINT_CONTROLLER));
        let named: Vec<(i32, String, i32)> =
            resp.brokers.iter().map(|b| (b.broker_id.0, b.host.to_string(), b.port)).collect();
        assert_eq!(named, [(1, "c1".into(), 9093), (2, "c2".into(), 9094), (3, "c3".into(), 9095)]);
        // No quorum runs in this test: no leader known.
        assert_eq!(resp.controller_id, BrokerId(-1));
        let refused = handle_controller(&broker, 1, DescribeClusterRequest::default()).await.expect("answered");
        assert_eq!(refused.error_code, ResponseError::MismatchedEndpointType.code());
        assert!(refused.brokers.is_empty());
    }
    use crate::config::BrokerConfig;
    use kafka_protocol::messages::MetadataRequest;

    #[tokio::test]
    async fn broker_rack_is_given_to_clients() {
        let config = BrokerConfig::from_overrides([("broker.rack", "eu-west-1a")]).expect("config");
        let broker = Arc::new(Broker::for_tests(config, crate::router::Router::default()));
        let cluster = handle(&broker, 1, DescribeClusterRequest::default()).await.expect("DescribeCluster");
        assert_eq!(cluster.brokers[0].rack.as_deref(), Some("eu-west-1a"));
        let md = crate::api::metadata::handle(&broker, 12, MetadataRequest::default()).await.expect("Metadata");
        assert_eq!(md.brokers[0].rack.as_deref(), Some("eu-west-1a"));

        let norack = Arc::new(Broker::for_tests(BrokerConfig::default(), crate::router::Router::default()));
        let cluster = handle(&norack, 1, DescribeClusterRequest::default()).await.expect("DescribeCluster");
        assert_eq!(cluster.brokers[0].rack, None);
    }
}
