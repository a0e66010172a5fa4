//! ElectLeaders (key 43, kafka-leader-election). On one node every
//! partition is already led by its preferred (and only) replica, so each
//! named partition gets ELECTION_NOT_NEEDED, as Kafka answers for a
//! partition led by its preferred replica; a partition that does not exist
//! gets UNKNOWN_TOPIC_OR_PARTITION. With no partitions named (all of them)
//! Kafka lists every topic with no per-partition results, and so do we.
//! Replication will make elections real.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::error::BrokerError;

pub async fn handle(
    broker: &Arc<Broker>,
    _version: i16,
    req: ElectLeadersRequest,
) -> Result<ElectLeadersResponse, BrokerError> {
    let image = broker.topics.image();
    let mut resp = ElectLeadersResponse::default();
    let Some(topics) = req.topic_partitions else {
        resp.replica_election_results = image
            .topics()
            .map(|t| {
                let mut r = ReplicaElectionResult::default();
                r.topic = TopicName(StrBytes::from_string(t.name.clone()));
                r
            })
            .collect();
        return Ok(resp);
    };
    for requested in topics {
        let mut r = ReplicaElectionResult::default();
        let name = requested.topic.0.to_string();
        let count = image.topic(&name).map_or(0, |t| t.partitions.len() as i32);
        for partition in requested.partitions {
            let mut p = PartitionResult::default();
            p.partition_id = partition;
            if (0..count).contains(&partition) {
                p.error_code = ResponseError::ElectionNotNeeded.code();
                p.error_message = Some(StrBytes::from_static_str("Leader election not needed for topic partition."));
            } else {
                p.error_code = ResponseError::UnknownTopicOrPartition.code();
                p.error_message = Some(StrBytes::from_string(format!("No such partition as {name}-{partition}")));
            }
            r.partition_result.push(p);
        }
        r.topic = requested.topic;
        resp.replica_election_results.push(r);
    }
    Ok(resp)
}

crate::route_to!(ElectLeaders, handle);
