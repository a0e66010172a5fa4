//! UpdateRaftVoter (key 82), KIP-853: a voter of a dynamic quorum that
//! starts with another controller listener address than the membership
//! holds tells the active controller (`cluster::endpoint_update` sends it),
//! which stores the new address and replicates there from then on. Served
//! on the controller listener (`router::controller_routes`).
//!
//! Checked in the order of Kafka's `KafkaRaftClient` and
//! `UpdateVoterHandler`, with their codes: INCONSISTENT_CLUSTER_ID for
//! another cluster's id; the leader epoch (the Raft term) against this
//! controller's: FENCED_LEADER_EPOCH when older, UNKNOWN_LEADER_EPOCH when
//! newer, NOT_LEADER_OR_FOLLOWER off the leader; INVALID_REQUEST for a
//! voter without a directory id, a `kraft.version` range without 1 (the
//! version of a dynamic quorum), or no endpoint on this controller
//! listener; then the quorum's refusals (`VoterChangeError`): another
//! change in flight or not yet committed REQUEST_TIMED_OUT, a static quorum
//! UNSUPPORTED_VERSION, an unknown voter key VOTER_NOT_FOUND. Every answer
//! names the leader this controller knows (`current_leader`), so the voter
//! can ask it next.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::update_raft_voter_response::CurrentLeader;
use kafka_protocol::messages::{BrokerId, UpdateRaftVoterRequest, UpdateRaftVoterResponse};
use kafka_protocol::protocol::StrBytes;

use kaskade_meta::quorum::VoterKey;
use kaskade_types::NodeId;

use super::raft_voters::{check_cluster, controller_endpoint, directory_id, refusal, Refusal};
use crate::broker::Broker;
use crate::error::BrokerError;

/// How long the update may take to commit (Kafka answers before the
/// commit; Kaskade answers once it committed, bounded).
const UPDATE_TIMEOUT: Duration = Duration::from_secs(30);

/// The `kraft.version` of a dynamic quorum (Kafka's `KRAFT_VERSION_1`).
const KRAFT_VERSION: i16 = 1;

/// The leader epoch a request carries, checked against `term`, Kafka's
/// `validateLeaderOnlyRequest`.
fn check_epoch(requested: i32, term: i32, leads: bool) -> Result<(), ResponseError> {
    match requested.cmp(&term) {
        std::cmp::Ordering::Less => Err(ResponseError::FencedLeaderEpoch),
        std::cmp::Ordering::Greater => Err(ResponseError::UnknownLeaderEpoch),
        std::cmp::Ordering::Equal if !leads => Err(ResponseError::NotLeaderOrFollower),
        std::cmp::Ordering::Equal => Ok(()),
    }
}

/// `host:port` (or `[v6]:port`) split for the answer's leader endpoint.
fn split_address(addr: &str) -> Option<(String, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    Some((host.to_string(), port.parse().ok()?))
}

async fn update(
    broker: &Broker,
    req: &UpdateRaftVoterRequest,
    resp: &mut UpdateRaftVoterResponse,
) -> Result<(), Refusal> {
    check_cluster(broker, req.cluster_id.as_ref())?;
    // Only a voter of a running quorum sends it: this node leads none.
    let quorum = broker
        .quorum()
        .ok_or_else(|| (ResponseError::NotLeaderOrFollower, "this node runs no controller quorum".to_string()))?;
    let (leader, term) = quorum.leader_and_epoch();
    let term = i32::try_from(term).unwrap_or(i32::MAX);
    let mut current = CurrentLeader::default();
    current.leader_id = BrokerId(leader.as_ref().map_or(-1, |(id, _)| id.get()));
    current.leader_epoch = term;
    if let Some((host, port)) = leader.as_ref().and_then(|(_, a)| a.as_deref()).and_then(split_address) {
        current.host = StrBytes::from_string(host);
        current.port = i32::from(port);
    }
    resp.current_leader = current;
    let leads = leader.is_some_and(|(id, _)| id == quorum.node_id());
    check_epoch(req.current_leader_epoch, term, leads).map_err(|code| (code, String::new()))?;
    if req.voter_id < 0 {
        return Err((ResponseError::InvalidRequest, format!("Invalid voter id {}", req.voter_id)));
    }
    let Some(dir) = directory_id(req.voter_directory_id) else {
        return Err((ResponseError::InvalidRequest, "Update voter request didn't include a directory id".into()));
    };
    let range = &req.k_raft_version_feature;
    if !(range.min_supported_version..=range.max_supported_version).contains(&KRAFT_VERSION) {
        return Err((ResponseError::InvalidRequest, "the voter does not support kraft.version 1".into()));
    }
    let listeners = req.listeners.iter().map(|l| (l.name.as_str(), l.host.as_str(), l.port));
    let addr = controller_endpoint(broker, "Update", listeners)?;
    let key = VoterKey { id: NodeId(req.voter_id), directory_id: Some(dir) };
    tracing::info!(voter = %key, addr, "UpdateRaftVoter");
    quorum.update_voter(key, &addr, UPDATE_TIMEOUT).await.map_err(refusal)
}

pub async fn handle(
    broker: &Arc<Broker>,
    _version: i16,
    req: UpdateRaftVoterRequest,
) -> Result<UpdateRaftVoterResponse, BrokerError> {
    let mut resp = UpdateRaftVoterResponse::default();
    resp.current_leader.leader_id = BrokerId(-1);
    resp.current_leader.leader_epoch = -1;
    if let Err((code, message)) = update(broker, &req, &mut resp).await {
        // The response has no message field: the log keeps it.
        if !message.is_empty() {
            tracing::info!(voter = req.voter_id, code = ?code, "UpdateRaftVoter refused: {message}");
        }
        resp.error_code = code.code();
    }
    Ok(resp)
}

crate::route_to!(UpdateRaftVoter, handle);

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::update_raft_voter_request::Listener;

    use super::*;
    use crate::api::raft_voters::tests::controller;

    #[test]
    fn the_leader_epoch_is_checked_as_kafka_checks_it() {
        assert_eq!(check_epoch(3, 4, true), Err(ResponseError::FencedLeaderEpoch));
        assert_eq!(check_epoch(-1, 4, true), Err(ResponseError::FencedLeaderEpoch));
        assert_eq!(check_epoch(5, 4, true), Err(ResponseError::UnknownLeaderEpoch));
        assert_eq!(check_epoch(4, 4, false), Err(ResponseError::NotLeaderOrFollower));
        assert_eq!(check_epoch(4, 4, true), Ok(()));
    }

    #[test]
    fn leader_addresses_split_for_the_answer() {
        assert_eq!(split_address("c1:9093"), Some(("c1".into(), 9093)));
        assert_eq!(split_address("[::1]:9093"), Some(("::1".into(), 9093)));
        assert_eq!(split_address("c1"), None);
    }

    #[tokio::test]
    async fn another_cluster_or_a_node_without_a_quorum_is_refused() {
        let broker = controller();
        let mut l = Listener::default();
        l.name = StrBytes::from_static_str("CONTROLLER");
        l.host = StrBytes::from_static_str("c2");
        l.port = 9094;
        let mut req = UpdateRaftVoterRequest::default();
        req.voter_id = 2;
        req.voter_directory_id = uuid::Uuid::from_u128(2);
        req.listeners.push(l);
        req.cluster_id = Some(StrBytes::from_static_str("another-cluster"));
        let resp = handle(&broker, 0, req.clone()).await.expect("answered");
        assert_eq!(resp.error_code, ResponseError::InconsistentClusterId.code());
        assert_eq!((resp.current_leader.leader_id.0, resp.current_leader.leader_epoch), (-1, -1));
        req.cluster_id = None;
        let resp = handle(&broker, 0, req).await.expect("answered");
        assert_eq!(resp.error_code, ResponseError::NotLeaderOrFollower.code(), "no quorum here");
    }
}
