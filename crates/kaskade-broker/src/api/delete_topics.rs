//! DeleteTopics by name (v0-5 `topic_names`, v6 `topics`) or by id (v6).

use std::sync::Arc;

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::error::BrokerError;

pub async fn handle(
    broker: &Arc<Broker>,
    version: i16,
    req: DeleteTopicsRequest,
) -> Result<DeleteTopicsResponse, BrokerError> {
    let targets: Vec<(Option<String>, uuid::Uuid)> = if version >= 6 {
        req.topics.iter().map(|t| (t.name.as_ref().map(|n| n.to_string()), t.topic_id)).collect()
    } else {
        req.topic_names.iter().map(|n| (Some(n.to_string()), uuid::Uuid::nil())).collect()
    };
    let mut resp = DeleteTopicsResponse::default();
    for (name, id) in targets {
        let n2 = name.clone();
        let by_id = if id.is_nil() { None } else { Some(id) };
        let res = crate::topic::on_blocking_pool(&broker.topics, move |tm| tm.delete(n2.as_deref(), by_id)).await;
        let mut r = DeletableTopicResult::default();
        r.name = name.map(|n| TopicName(StrBytes::from_string(n)));
        r.topic_id = id;
        match res {
            Ok((n, id)) => {
                forget_offsets(broker, &n).await;
                r.name = Some(TopicName(StrBytes::from_string(n)));
                r.topic_id = id;
            }
            Err(e) => {
                r.error_code = e.code();
                r.error_message = Some(StrBytes::from_string(e.message));
            }
        }
        resp.responses.push(r);
    }
    Ok(resp)
}

/// Drops every group's committed offsets for the deleted topic. The topic
/// is gone either way; a failure here leaves offsets that a re-created
/// topic of the same name would see, so it is logged loudly.
async fn forget_offsets(broker: &Arc<Broker>, topic: &str) {
    let name = topic.to_string();
    match broker.groups.call_durable(move |engine, now| engine.remove_topic_offsets(now, &name)).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(topic, offsets = n, "removed the deleted topic's committed offsets"),
        Err(e) => tracing::error!(topic, "could not remove the deleted topic's committed offsets: {e}"),
    }
}

crate::route_to!(DeleteTopics, handle);
