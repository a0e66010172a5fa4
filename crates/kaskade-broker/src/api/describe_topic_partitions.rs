//! DescribeTopicPartitions (KIP-966; newer admin tools use it instead of
//! Metadata): topics sorted by name, paginated by partition count with a
//! cursor.

use kafka_protocol::ResponseError;
use std::sync::Arc;

use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::authorized_operations as ops;
use crate::broker::Broker;
use crate::error::BrokerError;

pub async fn handle(
    broker: &Arc<Broker>,
    _version: i16,
    req: DescribeTopicPartitionsRequest,
) -> Result<DescribeTopicPartitionsResponse, BrokerError> {
    let image = broker.topics.image();
    let mut names: Vec<String> = if req.topics.is_empty() {
        image.topics().map(|t| t.name.clone()).collect()
    } else {
        req.topics.iter().map(|t| t.name.to_string()).collect()
    };
    names.sort();
    names.dedup();
    let (start_topic, start_part) =
        req.cursor.as_ref().map(|c| (c.topic_name.to_string(), c.partition_index)).unwrap_or_default();
    let mut budget = if req.response_partition_limit > 0 { req.response_partition_limit } else { 2000 };
    let mut resp = DescribeTopicPartitionsResponse::default();
    for name in names.into_iter().filter(|n| n.as_str() >= start_topic.as_str()) {
        let mut rt = DescribeTopicPartitionsResponseTopic::default();
        rt.name = Some(TopicName(StrBytes::from_string(name.clone())));
        rt.topic_authorized_operations = ops::OMITTED;
        let Some(t) = image.topic(&name) else {
            rt.error_code = ResponseError::UnknownTopicOrPartition.code();
            resp.topics.push(rt);
            continue;
        };
        rt.topic_id = t.id;
        // Kafka always reports them here (the request has no flag).
        rt.topic_authorized_operations = ops::TOPIC;
        rt.is_internal = name.starts_with("__");
        let first = if name == start_topic { start_part.max(0) as usize } else { 0 };
        for (i, p) in t.partitions.iter().enumerate().skip(first) {
            if budget == 0 {
                let mut c = Cursor::default();
                c.topic_name = TopicName(StrBytes::from_string(name.clone()));
                c.partition_index = i as i32;
                resp.next_cursor = Some(c);
                break;
            }
            budget -= 1;
            let mut rp = DescribeTopicPartitionsResponsePartition::default();
            rp.partition_index = i as i32;
            // Kafka's -1: no leader.
            rp.leader_id = BrokerId(p.leader.map_or(-1, |n| n.get()));
            rp.leader_epoch = p.leader_epoch.get();
            rp.replica_nodes = p.replicas.iter().map(|b| BrokerId(b.get())).collect();
            rp.isr_nodes = p.isr.iter().map(|b| BrokerId(b.get())).collect();
            rp.eligible_leader_replicas = Some(Vec::new());
            rp.last_known_elr = Some(Vec::new());
            rt.partitions.push(rp);
        }
        resp.topics.push(rt);
        if resp.next_cursor.is_some() {
            break;
        }
    }
    Ok(resp)
}

crate::route_to!(DescribeTopicPartitions, handle);
