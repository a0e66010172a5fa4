//! DeleteTopics by name (v0-5 `topic_names`, v6 `topics`) or by id (v6);
//! in a cluster carried out by the active controller (`api::forwarding`).
//! The node that took the client's request then drops the deleted topics'
//! committed offsets its group coordinator holds.

use std::sync::Arc;

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    DeleteTopicsRequest, DeleteTopicsResponse, RequestHeader, RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::api::forwarding;
use crate::broker::Broker;
use crate::error::BrokerError;
use crate::router::HandlerFuture;

/// Deletes the topics here (a lone node) and forgets their offsets.
pub async fn handle(
    broker: &Arc<Broker>,
    version: i16,
    req: DeleteTopicsRequest,
) -> Result<DeleteTopicsResponse, BrokerError> {
    let resp = delete(broker, version, req).await?;
    forget_deleted(broker, &resp).await;
    Ok(resp)
}

/// The deleted topics' offsets are the groups' business, not the
/// controller's: forgotten where the client's request came in.
async fn forget_deleted(broker: &Arc<Broker>, resp: &DeleteTopicsResponse) {
    for r in resp.responses.iter().filter(|r| r.error_code == 0) {
        if let Some(name) = &r.name {
            forget_offsets(broker, name.as_str()).await;
        }
    }
}

/// Deletes the topics (the decision, on this node's image).
async fn delete(
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

/// Decided on this node's image (a lone node).
mod decide {
    crate::route_to!(DeleteTopics, super::handle);
}

/// Decided by the active controller, which keeps no offsets.
mod decide_on_controller {
    crate::route_to!(DeleteTopics, super::delete);
}

/// On a broker listener: forwarded to the active controller in a cluster,
/// then the deleted topics' offsets forgotten here.
pub fn route(broker: Arc<Broker>, header: RequestHeader, body: RequestKind) -> HandlerFuture {
    let Some(forward) = forwarding::Forward::prepare(&broker) else {
        return decide::route(broker, header, body);
    };
    crate::api::handler(async move {
        let answer = forward.send(&broker, header, body).await?;
        if let ResponseKind::DeleteTopics(resp) = &answer {
            forget_deleted(&broker, resp).await;
        }
        Ok(answer)
    })
}

/// On the controller listener: the active controller decides.
pub fn controller_route(broker: Arc<Broker>, header: RequestHeader, body: RequestKind) -> HandlerFuture {
    forwarding::on_controller(broker, header, body, decide_on_controller::route)
}
