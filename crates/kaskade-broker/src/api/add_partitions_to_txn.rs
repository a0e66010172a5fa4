//! AddPartitionsToTxn (key 24), versions 0 to 3 (the client versions; v4+
//! is the broker-to-broker verification of KIP-890, not offered). Unknown
//! partitions fail the request as Kafka fails it: UNKNOWN_TOPIC_OR_PARTITION
//! for them, OPERATION_NOT_ATTEMPTED for the others.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};

use kaskade_types::TopicPartition;

use crate::broker::Broker;
use crate::error::BrokerError;

pub async fn handle(
    broker: &Arc<Broker>,
    version: i16,
    req: AddPartitionsToTxnRequest,
) -> Result<AddPartitionsToTxnResponse, BrokerError> {
    let image = broker.topics.image();
    let requested: Vec<TopicPartition> = req
        .v3_and_below_topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| TopicPartition::new(t.name.as_str(), *p)))
        .collect();
    let known = |tp: &TopicPartition| {
        image.topic(&tp.topic).is_some_and(|t| tp.partition >= 0 && (tp.partition as usize) < t.partitions.len())
    };
    let all_known = requested.iter().all(known);
    let mut code = 0;
    if all_known {
        let id = req.v3_and_below_transactional_id.to_string();
        let result = broker
            .txns
            .add_partitions(
                &id,
                super::producer_of(req.v3_and_below_producer_id, req.v3_and_below_producer_epoch),
                &requested,
            )
            .await;
        code = result.err().map_or(0, |e| super::fenced_for(version, 2, e));
    }
    let outcome = |p: &TopicPartition| {
        if all_known {
            code
        } else if known(p) {
            ResponseError::OperationNotAttempted.code()
        } else {
            ResponseError::UnknownTopicOrPartition.code()
        }
    };
    let mut resp = AddPartitionsToTxnResponse::default();
    for topic in &req.v3_and_below_topics {
        let mut t = AddPartitionsToTxnTopicResult::default();
        t.name = topic.name.clone();
        for p in &topic.partitions {
            let mut r = AddPartitionsToTxnPartitionResult::default();
            r.partition_index = *p;
            r.partition_error_code = outcome(&TopicPartition::new(topic.name.as_str(), *p));
            t.results_by_partition.push(r);
        }
        resp.results_by_topic_v3_and_below.push(t);
    }
    Ok(resp)
}

crate::route_to!(AddPartitionsToTxn, handle);
