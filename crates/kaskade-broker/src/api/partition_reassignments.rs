//! ListPartitionReassignments and AlterPartitionReassignments (keys 46, 45,
//! kafka-reassign-partitions) on one node: nothing is ever being moved, so
//! the list is empty; a reassignment to the replica set a partition already
//! has succeeds with nothing to do, one naming another broker is refused as
//! Kafka refuses an unregistered broker, and a cancellation finds none in
//! progress. Replication will make reassignments real.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::error::BrokerError;

pub async fn list(
    _broker: &Arc<Broker>,
    _version: i16,
    _req: ListPartitionReassignmentsRequest,
) -> Result<ListPartitionReassignmentsResponse, BrokerError> {
    // No reassignment is ever in progress, whatever was asked for.
    let mut resp = ListPartitionReassignmentsResponse::default();
    resp.error_message = None;
    Ok(resp)
}

pub async fn alter(
    broker: &Arc<Broker>,
    version: i16,
    req: AlterPartitionReassignmentsRequest,
) -> Result<AlterPartitionReassignmentsResponse, BrokerError> {
    let image = broker.topics.image();
    let mut resp = AlterPartitionReassignmentsResponse::default();
    resp.error_message = None;
    if version >= 1 {
        resp.allow_replication_factor_change = req.allow_replication_factor_change;
    }
    for topic in req.topics {
        let mut t = ReassignableTopicResponse::default();
        let name = topic.name.0.to_string();
        let current = image.topic(&name);
        for requested in topic.partitions {
            let mut p = ReassignablePartitionResponse::default();
            p.partition_index = requested.partition_index;
            p.error_message = None;
            let partition =
                current.and_then(|t| usize::try_from(requested.partition_index).ok().and_then(|i| t.partitions.get(i)));
            let refusal = match (partition, requested.replicas) {
                (None, _) => Some((
                    ResponseError::UnknownTopicOrPartition,
                    Some(format!("Unable to find partition {name}:{}.", requested.partition_index)),
                )),
                (Some(_), None) => Some((ResponseError::NoReassignmentInProgress, None)),
                (Some(_), Some(replicas)) if replicas.is_empty() => Some((
                    ResponseError::InvalidReplicaAssignment,
                    Some("The manual partition assignment includes an empty replica list.".to_string()),
                )),
                (Some(_), Some(replicas)) => replicas.iter().find(|b| b.0 != broker.node_id().get()).map(|b| {
                    (
                        ResponseError::InvalidReplicaAssignment,
                        Some(format!(
                            "The manual partition assignment includes broker {}, but no such broker is registered.",
                            b.0
                        )),
                    )
                }),
            };
            if let Some((error, message)) = refusal {
                p.error_code = error.code();
                p.error_message = message.map(StrBytes::from_string);
            }
            t.partitions.push(p);
        }
        t.name = topic.name;
        resp.responses.push(t);
    }
    Ok(resp)
}

pub mod list_route {
    crate::route_to!(ListPartitionReassignments, super::list);
}
pub mod alter_route {
    crate::route_to!(AlterPartitionReassignments, super::alter);
}
