//! DescribeCluster: the live brokers, each with its endpoint on the
//! listener the client connected to and its rack, and the active controller.

use std::sync::Arc;

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
    resp.controller_id = BrokerId(broker.controller_id().map_or(-1, NodeId::get));
    resp.cluster_authorized_operations = ops::if_asked(req.include_cluster_authorized_operations, ops::CLUSTER);
    resp.brokers = super::metadata::broker_entries(broker, |id, host, port, rack| {
        DescribeClusterBroker::default().with_broker_id(id).with_host(host).with_port(port).with_rack(rack)
    });
    Ok(resp)
}

crate::route_to!(DescribeCluster, handle);

#[cfg(test)]
mod tests {
    use super::*;
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
