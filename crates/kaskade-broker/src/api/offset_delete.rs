//! OffsetDelete (v0): not while the group's members subscribe to the topic;
//! answered once the tombstones are replicated (`group::deletes`).

use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use kaskade_types::TopicPartition;

use crate::broker::Broker;
use crate::error::BrokerError;

pub async fn handle(
    broker: &Broker,
    _version: i16,
    req: OffsetDeleteRequest,
) -> Result<OffsetDeleteResponse, BrokerError> {
    let group_id = req.group_id.0.to_string();
    let partitions: Vec<TopicPartition> = req
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| TopicPartition::new(t.name.as_str(), p.partition_index)))
        .collect();
    let result = broker
        .groups
        .call_durable_gated(move |engine, now, gate| {
            gate.check(&group_id).and_then(|()| engine.delete_offsets(now, &group_id, &partitions))
        })
        .await
        .or_else(|e| match e {
            // The tombstones were not replicated: nothing was deleted, the
            // coordinator's error (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE)
            // is the answer, as Kafka's.
            BrokerError::Kafka { code, .. } => Ok(Err(code)),
            e => Err(e),
        })?;
    let mut resp = OffsetDeleteResponse::default();
    let errors = match result {
        Err(e) => {
            resp.error_code = e.code();
            return Ok(resp);
        }
        Ok(errors) => errors,
    };
    let mut errors = errors.into_iter();
    for t in req.topics {
        let mut topic = OffsetDeleteResponseTopic::default();
        topic.name = t.name;
        for p in t.partitions {
            let mut rp = OffsetDeleteResponsePartition::default();
            rp.partition_index = p.partition_index;
            rp.error_code = errors.next().flatten().map_or(0, |e| e.code());
            topic.partitions.push(rp);
        }
        resp.topics.push(topic);
    }
    Ok(resp)
}

crate::route_to!(OffsetDelete, handle);
