//! CreatePartitions: grow a topic's partition count, placed automatically
//! or as the request's explicit assignments ask (checked as Kafka checks
//! them, `topic::manual_assignment`); in a cluster carried out by the
//! active controller (`api::forwarding`).

use std::sync::Arc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::error::BrokerError;

pub async fn handle(
    broker: &Arc<Broker>,
    _version: i16,
    req: CreatePartitionsRequest,
) -> Result<CreatePartitionsResponse, BrokerError> {
    let mut resp = CreatePartitionsResponse::default();
    for t in req.topics {
        let mut r = CreatePartitionsTopicResult::default();
        r.name = t.name.clone();
        let name = t.name.to_string();
        let (count, validate_only) = (t.count, req.validate_only);
        // The controller checks the lists against the registered brokers
        // and the topic's replication factor (Kafka's rules).
        let assignments: Option<Vec<Vec<i32>>> =
            t.assignments.map(|a| a.into_iter().map(|x| x.broker_ids.into_iter().map(|b| b.0).collect()).collect());
        let grown = crate::topic::on_blocking_pool(&broker.topics, move |tm| {
            tm.add_partitions(&name, count, assignments.as_deref(), validate_only)
        });
        if let Err(e) = grown.await {
            r.error_code = e.code();
            r.error_message = Some(StrBytes::from_string(e.message));
        }
        resp.results.push(r);
    }
    Ok(resp)
}

/// Decided on this node's image (a lone node, or the active controller).
mod decide {
    crate::route_to!(CreatePartitions, super::handle);
}

crate::forwarded_routes!(decide::route);
