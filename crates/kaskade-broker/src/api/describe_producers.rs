//! DescribeProducers (key 61), version 0 (KIP-664): per partition the
//! producers its log knows (idempotent and transactional), as Kafka's
//! `UnifiedLog.activeProducers`: producer id, epoch, last sequence, the
//! max timestamp of the last batch, the coordinator epoch of the last
//! marker, and the first offset of the open transaction (-1: none). A
//! partition this broker does not have is UNKNOWN_TOPIC_OR_PARTITION.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_producers_response::{PartitionResponse, ProducerState, TopicResponse};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse};
use kaskade_log::producer_state::ProducerEntry;

use crate::broker::Broker;
use crate::error::BrokerError;

pub async fn handle(
    broker: &Arc<Broker>,
    _version: i16,
    req: DescribeProducersRequest,
) -> Result<DescribeProducersResponse, BrokerError> {
    let mut resp = DescribeProducersResponse::default();
    for topic in req.topics {
        let mut t = TopicResponse::default();
        for &partition in &topic.partition_indexes {
            let mut p = PartitionResponse::default();
            p.partition_index = partition;
            match broker.topics.log(topic.name.0.as_str(), partition) {
                None => p.error_code = ResponseError::UnknownTopicOrPartition.code(),
                Some(log) => {
                    let mut entries = log.producer_entries();
                    entries.sort_by_key(|e| e.producer_id);
                    p.active_producers = entries.iter().map(producer_state).collect();
                }
            }
            t.partitions.push(p);
        }
        t.name = topic.name;
        resp.topics.push(t);
    }
    Ok(resp)
}

fn producer_state(e: &ProducerEntry) -> ProducerState {
    let mut s = ProducerState::default();
    s.producer_id = e.producer_id.into();
    s.producer_epoch = i32::from(e.epoch);
    s.last_sequence = e.last_seq();
    s.last_timestamp = e.last_timestamp;
    s.coordinator_epoch = e.coordinator_epoch;
    s.current_txn_start_offset = e.current_txn_first_offset;
    s
}

crate::route_to!(DescribeProducers, handle);
