//! DescribeQuorum (key 55, kafka-metadata-quorum): the metadata quorum as
//! it is. A single Kaskade node is the only voter and always the leader of
//! `__cluster_metadata`; its log end and high watermark are the metadata
//! log's record count (every record is fsynced before it is applied). A
//! node of a multi-node quorum answers from the quorum's `status()` on the
//! leader (its real voters, Raft positions and times); any other node
//! forwards the request to the leader and relays its answer, as Kafka's
//! brokers forward DescribeQuorum to the active controller (so
//! `kafka-metadata-quorum --bootstrap-server` works through any node); a
//! broker-only node, which has no controller, asks the active controller
//! for its view with DescribeQuorum on the controller listener
//! (`ObserverMetadataLog::status`). The status is written into the answer
//! by `kaskade_meta::quorum::describe_quorum::write_partition`, the one
//! writer the observer's reader inverts.
//!
//! Invariants: a request is forwarded at most once (a request from another
//! broker, `inter_broker::CLIENT_ID_PREFIX`, is answered from this node's
//! own view), so a leadership moving meanwhile cannot make two nodes bounce
//! it; when the leader cannot be asked, the answer is this node's own:
//! NOT_LEADER_OR_FOLLOWER naming the leader.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_quorum_response::{Listener, Node, PartitionData, ReplicaState, TopicData};
use kafka_protocol::messages::{BrokerId, DescribeQuorumRequest, DescribeQuorumResponse};
use kafka_protocol::protocol::StrBytes;

use kaskade_meta::quorum::describe_quorum::{write_partition, METADATA_TOPIC};
use kaskade_meta::{MetaError, QuorumStatus};
use kaskade_types::NodeId;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::inter_broker;

/// The leader epoch of a quorum that has only ever had one leader.
const SINGLE_LEADER_EPOCH: i32 = 1;
/// Bound on asking the leader: well under a client's `request.timeout.ms`
/// (30 s by default), so a leader that stopped answering (paused, cut off)
/// gets the client this node's own answer instead of a timeout.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn handle(
    broker: &Arc<Broker>,
    version: i16,
    req: DescribeQuorumRequest,
) -> Result<DescribeQuorumResponse, BrokerError> {
    if let Some(leader) = forward_to(broker, &req) {
        match inter_broker::forward(broker, leader, version, &req, FORWARD_TIMEOUT).await {
            Ok(resp) => return Ok(resp),
            Err(e) => tracing::warn!(leader = leader.get(), error = %e, "DescribeQuorum not forwarded to the leader"),
        }
    }
    // A broker-only node runs no controller: it asks the active one.
    let observed = match broker.observer() {
        Some(o) => Some(o.status(FORWARD_TIMEOUT).await),
        None => None,
    };
    Ok(answer(broker, version, req, observed))
}

/// A copy of an observer's status answer, for each partition asked.
fn again(status: &Result<QuorumStatus, MetaError>) -> Result<QuorumStatus, MetaError> {
    match status {
        Ok(s) => Ok(s.clone()),
        Err(MetaError::NotLeader { leader }) => Err(MetaError::NotLeader { leader: *leader }),
        Err(e) => Err(MetaError::Quorum(e.to_string())),
    }
}

/// The quorum's leader, when this node is not it and should ask it: the
/// request asks for the metadata partition and no broker forwarded it here.
fn forward_to(broker: &Broker, req: &DescribeQuorumRequest) -> Option<NodeId> {
    let asks_metadata = req
        .topics
        .iter()
        .any(|t| t.topic_name.0.as_str() == METADATA_TOPIC && t.partitions.iter().any(|p| p.partition_index == 0));
    if !asks_metadata {
        return None;
    }
    inter_broker::controller_to_ask(broker)
}

/// This node's own answer.
fn answer(
    broker: &Broker,
    version: i16,
    req: DescribeQuorumRequest,
    observed: Option<Result<QuorumStatus, MetaError>>,
) -> DescribeQuorumResponse {
    let end = broker.topics.image().end_offset();
    let now = crate::group::now_ms();
    // Kafka answers empty messages (not null) where there is no error.
    let mut resp = DescribeQuorumResponse::default();
    for topic in req.topics {
        let mut t = TopicData::default();
        for requested in topic.partitions {
            let mut p = PartitionData::default();
            p.partition_index = requested.partition_index;
            if topic.topic_name.0.as_str() != METADATA_TOPIC || requested.partition_index != 0 {
                p.error_code = ResponseError::UnknownTopicOrPartition.code();
                p.error_message = Some(StrBytes::from_static_str("This server does not host this topic-partition."));
            } else if let Some(quorum) = broker.quorum() {
                write_partition(&mut p, quorum.status(), version);
            } else if let Some(status) = &observed {
                write_partition(&mut p, again(status), version);
            } else {
                p.leader_id = BrokerId(broker.node_id().get());
                p.leader_epoch = SINGLE_LEADER_EPOCH;
                p.high_watermark = end;
                let mut voter = ReplicaState::default();
                voter.replica_id = BrokerId(broker.node_id().get());
                voter.log_end_offset = end;
                if version >= 1 {
                    // The leader is always caught up with itself.
                    voter.last_fetch_timestamp = now;
                    voter.last_caught_up_timestamp = now;
                }
                p.current_voters.push(voter);
            }
            t.partitions.push(p);
        }
        t.topic_name = topic.topic_name;
        resp.topics.push(t);
    }
    let answered = resp.topics.iter().flat_map(|t| &t.partitions).any(|p| p.error_code == 0);
    if version >= 2 && answered && (broker.quorum().is_some() || observed.is_some()) {
        // The voters (as configured, or a dynamic quorum's membership), on
        // their controller listener.
        let name = broker.config.controller_listener_names.first().cloned().unwrap_or_default();
        for (id, host, port) in super::describe_cluster::controller_endpoints(broker) {
            let mut node = Node::default();
            node.node_id = BrokerId(id.get());
            let mut listener = Listener::default();
            listener.name = StrBytes::from_string(name.clone());
            listener.host = StrBytes::from_string(host);
            listener.port = port;
            node.listeners.push(listener);
            resp.nodes.push(node);
        }
    } else if version >= 2 && answered {
        let endpoint = broker.endpoint();
        let mut node = Node::default();
        node.node_id = BrokerId(broker.node_id().get());
        let mut listener = Listener::default();
        // The node's one listener serves the controller's requests too.
        listener.name = StrBytes::from_string(
            broker.config.listeners.first().map_or_else(|| "PLAINTEXT".to_string(), |l| l.name.clone()),
        );
        listener.host = StrBytes::from_string(endpoint.host.clone());
        listener.port = u16::try_from(endpoint.port).unwrap_or_default();
        node.listeners.push(listener);
        resp.nodes.push(node);
    }
    resp
}

crate::route_to!(DescribeQuorum, handle);
