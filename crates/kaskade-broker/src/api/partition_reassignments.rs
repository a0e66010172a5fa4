//! AlterPartitionReassignments and ListPartitionReassignments (keys 45, 46,
//! kafka-reassign-partitions).
//!
//! Alter decides every named partition against the committed image with
//! `kaskade_meta::reassignment::alter` and appends all the records at once
//! through the metadata log (`TopicManager::update`), which a cluster's
//! quorum forwards to the active controller, as every metadata change is:
//! any broker takes the request and the controller's log orders it. The
//! records move the partitions (see `kaskade_meta::reassignment` for the
//! steps); the brokers act on the committed image (new replicas create
//! their logs and fetch, the leader admits them into the ISR, which
//! completes the move, removed replicas delete their logs). Each refusal is
//! mapped to its Kafka code here, once. A cancel that needs an unclean
//! election (only on a topic that allows one) is logged and counted as
//! every unclean election is.
//!
//! List is forwarded to the active controller by a broker of a multi-node
//! quorum that is not it (as Kafka's brokers forward it; at most once: a
//! request from another broker is answered here), which answers from its
//! image: the partitions with adding or removing replicas, with their full
//! replica set, all of them or the named ones (unknown names and partitions
//! are left out, as KRaft does). If the controller cannot be asked, this
//! node answers from its own image.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kaskade_meta::leader_election;
use kaskade_meta::reassignment::{self, Refusal};
use kaskade_meta::TopicImage;
use kaskade_types::NodeId;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::inter_broker;
use crate::topic::TopicError;

pub async fn list(
    broker: &Arc<Broker>,
    version: i16,
    req: ListPartitionReassignmentsRequest,
) -> Result<ListPartitionReassignmentsResponse, BrokerError> {
    if let Some(controller) = inter_broker::controller_to_ask(broker) {
        match inter_broker::forward(broker, controller, version, &req, FORWARD_TIMEOUT).await {
            Ok(resp) => return Ok(resp),
            Err(e) => tracing::warn!(controller = controller.get(), error = %e,
                "ListPartitionReassignments not forwarded to the active controller: answering from this node's image"),
        }
    }
    let image = broker.topics.image();
    let mut resp = ListPartitionReassignmentsResponse::default();
    resp.error_message = None;
    match req.topics {
        None => {
            for t in image.topics() {
                let all: Vec<i32> = (0..t.partitions.len()).filter_map(|i| i32::try_from(i).ok()).collect();
                push_ongoing(&mut resp, t, &all);
            }
        }
        Some(topics) => {
            for requested in topics {
                if let Some(t) = image.topic(requested.name.0.as_str()) {
                    push_ongoing(&mut resp, t, &requested.partition_indexes);
                }
            }
        }
    }
    Ok(resp)
}

/// How long the active controller may take to answer a forwarded list.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);

/// Adds topic `t`'s partitions among `indexes` that are being moved, if any.
fn push_ongoing(resp: &mut ListPartitionReassignmentsResponse, t: &TopicImage, indexes: &[i32]) {
    let mut topic = OngoingTopicReassignment::default();
    for &index in indexes {
        let Some(p) = usize::try_from(index).ok().and_then(|i| t.partitions.get(i)) else { continue };
        if !p.is_reassigning() {
            continue;
        }
        let mut o = OngoingPartitionReassignment::default();
        o.partition_index = index;
        o.replicas = broker_ids(&p.replicas);
        o.adding_replicas = broker_ids(&p.adding_replicas);
        o.removing_replicas = broker_ids(&p.removing_replicas);
        topic.partitions.push(o);
    }
    if !topic.partitions.is_empty() {
        topic.name = TopicName(StrBytes::from_string(t.name.clone()));
        resp.topics.push(topic);
    }
}

fn broker_ids(ids: &[NodeId]) -> Vec<BrokerId> {
    ids.iter().map(|n| BrokerId(n.get())).collect()
}

/// One requested partition: topic, index, target (`None`: cancel).
type Requested = (String, i32, Option<Vec<i32>>);

pub async fn alter(
    broker: &Arc<Broker>,
    version: i16,
    req: AlterPartitionReassignmentsRequest,
) -> Result<AlterPartitionReassignmentsResponse, BrokerError> {
    // KIP-860: from v1 the request may forbid changing the replication factor.
    let allow_rf_change = version < 1 || req.allow_replication_factor_change;
    let mut requested: Vec<Requested> = Vec::new();
    for t in &req.topics {
        for p in &t.partitions {
            let target = p.replicas.as_ref().map(|r| r.iter().map(|b| b.0).collect());
            requested.push((t.name.0.to_string(), p.partition_index, target));
        }
    }
    let asked = requested.clone();
    let me = Some(broker.node_id());
    let unclean_default = broker.config.unclean_leader_election_enable;
    let decided = crate::topic::on_blocking_pool(&broker.topics, move |tm| {
        tm.update(|img| -> Result<_, TopicError> {
            let mut records = Vec::new();
            let mut outcomes = Vec::with_capacity(requested.len());
            for (topic, partition, target) in &requested {
                match reassignment::alter(
                    img,
                    topic,
                    *partition,
                    target.as_deref(),
                    allow_rf_change,
                    me,
                    unclean_default,
                ) {
                    Ok(record) => {
                        records.extend(record);
                        outcomes.push(None);
                    }
                    Err(refusal) => outcomes.push(Some(refusal)),
                }
            }
            // A cancel on a topic allowing unclean elections may make one.
            let unclean = leader_election::unclean_in(img, &records);
            Ok((records, (outcomes, unclean)))
        })
    })
    .await;
    let outcomes: Vec<Option<(ResponseError, String)>> = match decided {
        Ok((outcomes, unclean)) => {
            for election in &unclean {
                election.warn();
            }
            outcomes.into_iter().map(|o| o.map(|r| (code(&r), r.to_string()))).collect()
        }
        // Nothing was written: every partition gets the failure.
        Err(e) => asked.iter().map(|_| Some((e.code, e.message.clone()))).collect(),
    };
    let mut resp = AlterPartitionReassignmentsResponse::default();
    resp.error_message = None;
    if version >= 1 {
        resp.allow_replication_factor_change = req.allow_replication_factor_change;
    }
    // The outcomes come in request order, topic by topic.
    let mut outcomes = outcomes.into_iter();
    for topic in req.topics {
        let mut t = ReassignableTopicResponse::default();
        for requested in topic.partitions {
            let mut p = ReassignablePartitionResponse::default();
            p.partition_index = requested.partition_index;
            p.error_message = None;
            match outcomes.next().flatten() {
                None => {
                    tracing::info!(topic = %topic.name.0, partition = p.partition_index, "partition reassignment altered")
                }
                Some((error, message)) => {
                    tracing::info!(topic = %topic.name.0, partition = p.partition_index, reason = %message,
                        "partition reassignment refused");
                    p.error_code = error.code();
                    p.error_message = Some(StrBytes::from_string(message));
                }
            }
            t.partitions.push(p);
        }
        t.name = topic.name;
        resp.responses.push(t);
    }
    Ok(resp)
}

/// The Kafka error of a refusal: the one place they are mapped.
fn code(refusal: &Refusal) -> ResponseError {
    match refusal {
        Refusal::UnknownTopicOrPartition(_) => ResponseError::UnknownTopicOrPartition,
        Refusal::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
        Refusal::NoReassignmentInProgress => ResponseError::NoReassignmentInProgress,
        Refusal::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
    }
}

pub mod list_route {
    crate::route_to!(ListPartitionReassignments, super::list);
}
pub mod alter_route {
    crate::route_to!(AlterPartitionReassignments, super::alter);
}

/// AlterPartitionReassignments's routes: forwarded to the active controller in a cluster.
pub mod forwarded {
    crate::forwarded_routes!(super::alter_route::route);
}
