//! AddRaftVoter (key 80) and RemoveRaftVoter (key 81), KIP-853: what
//! `kafka-metadata-quorum --bootstrap-controller H:P add-controller` and
//! `remove-controller --controller-id N --controller-directory-id D` send to
//! the active controller, served on the controller listener of a dynamic
//! quorum (`router::controller_routes`).
//!
//! The request is checked as Kafka's `KafkaRaftClient` checks it
//! (INCONSISTENT_CLUSTER_ID for another cluster's id; INVALID_REQUEST for
//! AddRaftVoter without a directory id or without an endpoint on this
//! controller listener), then the quorum decides and carries out the change
//! (`QuorumMetadataLog::add_voter` / `remove_voter`, openraft's learner then
//! joint consensus), whose refusals map to Kafka's codes here: NOT_LEADER_OR_
//! FOLLOWER, REQUEST_TIMED_OUT, DUPLICATE_VOTER, VOTER_NOT_FOUND,
//! UNSUPPORTED_VERSION (a static quorum). The answer comes once the change
//! committed, or when `timeout_ms` (AddRaftVoter) or the quorum's append
//! timeout (RemoveRaftVoter) ran out.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    AddRaftVoterRequest, AddRaftVoterResponse, RemoveRaftVoterRequest, RemoveRaftVoterResponse,
};
use kafka_protocol::protocol::StrBytes;

use kaskade_meta::quorum::{VoterChangeError, VoterKey};
use kaskade_types::NodeId;

use crate::broker::Broker;
use crate::error::BrokerError;

/// How long a removal may take to commit (Kafka bounds it by the leader's
/// `request.timeout.ms`; RemoveRaftVoter carries no timeout).
const REMOVE_TIMEOUT: Duration = Duration::from_secs(30);
/// Bounds on AddRaftVoter's `timeout_ms`.
const MIN_ADD_TIMEOUT: Duration = Duration::from_millis(100);
const MAX_ADD_TIMEOUT: Duration = Duration::from_secs(300);

/// A refusal: Kafka's code and message.
pub(super) type Refusal = (ResponseError, String);

/// Kafka's code for a quorum's refusal.
pub(super) fn refusal(e: VoterChangeError) -> Refusal {
    let code = match &e {
        VoterChangeError::NotLeader { .. } => ResponseError::NotLeaderOrFollower,
        VoterChangeError::Unsupported(_) => ResponseError::UnsupportedVersion,
        VoterChangeError::TimedOut(_) => ResponseError::RequestTimedOut,
        VoterChangeError::Duplicate(_) => ResponseError::DuplicateVoter,
        VoterChangeError::NotFound(_) => ResponseError::VoterNotFound,
        VoterChangeError::Invalid(_) => ResponseError::InvalidRequest,
        VoterChangeError::Failed(_) => ResponseError::UnknownServerError,
    };
    (code, e.to_string())
}

/// INCONSISTENT_CLUSTER_ID when the request names another cluster (an
/// absent or empty id is accepted, as Kafka accepts it).
pub(super) fn check_cluster(broker: &Broker, cluster_id: Option<&StrBytes>) -> Result<(), Refusal> {
    match cluster_id.map(|c| c.as_str()).filter(|c| !c.is_empty()) {
        Some(theirs) if theirs != broker.cluster_id() => Err((
            ResponseError::InconsistentClusterId,
            format!("The request names cluster {theirs}, this controller belongs to {}", broker.cluster_id()),
        )),
        _ => Ok(()),
    }
}

/// The directory id Kafka sends, `None` for the zero UUID (no id).
pub(super) fn directory_id(id: uuid::Uuid) -> Option<uuid::Uuid> {
    (!id.is_nil()).then_some(id)
}

/// A node running no quorum (a lone node) has a static voter set, so a
/// change is UNSUPPORTED_VERSION, as Kafka answers for `kraft.version` 0.
pub(super) fn no_quorum() -> Refusal {
    (ResponseError::UnsupportedVersion, "this node runs no dynamic controller quorum (kraft.version 0)".into())
}

/// The new voter's key and the `host:port` of its endpoint on this
/// controller listener (the one the leader's replication will use).
fn new_voter(broker: &Broker, req: &AddRaftVoterRequest) -> Result<(VoterKey, String), Refusal> {
    if req.voter_id < 0 {
        return Err((ResponseError::InvalidRequest, format!("Invalid voter id {}", req.voter_id)));
    }
    let Some(dir) = directory_id(req.voter_directory_id) else {
        return Err((ResponseError::InvalidRequest, "Add voter request didn't include a valid directory id".into()));
    };
    let listeners = req.listeners.iter().map(|l| (l.name.as_str(), l.host.as_str(), l.port));
    let addr = controller_endpoint(broker, "Add", listeners)?;
    Ok((VoterKey { id: NodeId(req.voter_id), directory_id: Some(dir) }, addr))
}

/// The `host:port` of a voter's endpoint on this controller listener (the
/// one the leader's replication uses), from a request's listeners (name,
/// host, port); INVALID_REQUEST naming the `verb`'s request without it.
pub(super) fn controller_endpoint<'a>(
    broker: &Broker,
    verb: &str,
    mut listeners: impl Iterator<Item = (&'a str, &'a str, u16)>,
) -> Result<String, Refusal> {
    let listener = broker.config.controller_listener_names.first().cloned().unwrap_or_default();
    let endpoint = listeners.find(|(name, host, port)| *name == listener && !host.is_empty() && *port != 0);
    let Some((_, host, port)) = endpoint else {
        return Err((
            ResponseError::InvalidRequest,
            format!("{verb} voter request didn't include the endpoint for the default listener {listener}"),
        ));
    };
    Ok(if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") })
}

async fn add(broker: &Broker, req: &AddRaftVoterRequest) -> Result<(), Refusal> {
    check_cluster(broker, req.cluster_id.as_ref())?;
    let (key, addr) = new_voter(broker, req)?;
    let quorum = broker.quorum().ok_or_else(no_quorum)?;
    let within =
        Duration::from_millis(u64::try_from(req.timeout_ms).unwrap_or(0)).clamp(MIN_ADD_TIMEOUT, MAX_ADD_TIMEOUT);
    tracing::info!(voter = %key, addr, "AddRaftVoter");
    quorum.add_voter(key, &addr, within).await.map_err(refusal)
}

async fn remove(broker: &Broker, req: &RemoveRaftVoterRequest) -> Result<(), Refusal> {
    check_cluster(broker, req.cluster_id.as_ref())?;
    let quorum = broker.quorum().ok_or_else(no_quorum)?;
    let key = VoterKey { id: NodeId(req.voter_id), directory_id: directory_id(req.voter_directory_id) };
    tracing::info!(voter = %key, "RemoveRaftVoter");
    quorum.remove_voter(key, REMOVE_TIMEOUT).await.map_err(refusal)
}

pub async fn handle_add(
    broker: &Arc<Broker>,
    _version: i16,
    req: AddRaftVoterRequest,
) -> Result<AddRaftVoterResponse, BrokerError> {
    let mut resp = AddRaftVoterResponse::default();
    if let Err((code, message)) = add(broker, &req).await {
        resp.error_code = code.code();
        resp.error_message = Some(StrBytes::from_string(message));
    }
    Ok(resp)
}

pub async fn handle_remove(
    broker: &Arc<Broker>,
    _version: i16,
    req: RemoveRaftVoterRequest,
) -> Result<RemoveRaftVoterResponse, BrokerError> {
    let mut resp = RemoveRaftVoterResponse::default();
    if let Err((code, message)) = remove(broker, &req).await {
        resp.error_code = code.code();
        resp.error_message = Some(StrBytes::from_string(message));
    }
    Ok(resp)
}

pub mod add_route {
    crate::route_to!(AddRaftVoter, super::handle_add);
}

pub mod remove_route {
    crate::route_to!(RemoveRaftVoter, super::handle_remove);
}

/// On a broker listener: sent on to the active controller in an Envelope,
/// as Kafka's broker does (`forwardToControllerOrFail`), so
/// `kafka-metadata-quorum --bootstrap-server ... add-controller` works
/// through any broker; answered here on a lone node. The controller checks
/// and carries out the change itself (the quorum's leader decides).
pub mod forwarded {
    use std::sync::Arc;

    use kafka_protocol::messages::{RequestHeader, RequestKind};

    use crate::broker::Broker;
    use crate::router::HandlerFuture;

    pub fn add(broker: Arc<Broker>, header: RequestHeader, body: RequestKind) -> HandlerFuture {
        crate::api::forwarding::to_controller(broker, header, body, super::add_route::route)
    }

    pub fn remove(broker: Arc<Broker>, header: RequestHeader, body: RequestKind) -> HandlerFuture {
        crate::api::forwarding::to_controller(broker, header, body, super::remove_route::route)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use kafka_protocol::messages::add_raft_voter_request::Listener;

    use super::*;
    use crate::config::BrokerConfig;

    /// A standalone controller-only node (no quorum running).
    pub(crate) fn controller() -> Arc<Broker> {
        let config = BrokerConfig::from_overrides([
            ("process.roles", "controller"),
            ("node.id", "1"),
            ("controller.quorum.bootstrap.servers", "c1:9093"),
            ("controller.quorum.standalone", "true"),
            ("controller.listener.names", "CONTROLLER"),
            ("listeners", "CONTROLLER://:9093"),
        ])
        .expect("config");
        Arc::new(Broker::for_tests(config, crate::router::Router::default()))
    }

    fn add_request(listener: &str) -> AddRaftVoterRequest {
        let mut l = Listener::default();
        l.name = StrBytes::from_string(listener.into());
        l.host = StrBytes::from_static_str("c2");
        l.port = 9093;
        let mut req = AddRaftVoterRequest::default();
        req.voter_id = 2;
        req.voter_directory_id = uuid::Uuid::from_u128(7);
        req.timeout_ms = 30_000;
        req.listeners.push(l);
        req
    }

    async fn add_answer(broker: &Arc<Broker>, req: AddRaftVoterRequest) -> (i16, String) {
        let resp = handle_add(broker, 0, req).await.expect("answered");
        (resp.error_code, resp.error_message.map(|m| m.to_string()).unwrap_or_default())
    }

    #[tokio::test]
    async fn bad_add_requests_are_refused_as_kafka_refuses_them() {
        let broker = controller();
        let mut other = add_request("CONTROLLER");
        other.cluster_id = Some(StrBytes::from_static_str("another-cluster"));
        assert_eq!(add_answer(&broker, other).await.0, ResponseError::InconsistentClusterId.code());

        let mut no_dir = add_request("CONTROLLER");
        no_dir.voter_directory_id = uuid::Uuid::nil();
        let (code, message) = add_answer(&broker, no_dir).await;
        assert_eq!(
            (code, message.as_str()),
            (ResponseError::InvalidRequest.code(), "Add voter request didn't include a valid directory id")
        );

        let (code, message) = add_answer(&broker, add_request("PLAINTEXT")).await;
        assert_eq!(code, ResponseError::InvalidRequest.code());
        assert!(message.contains("the default listener CONTROLLER"), "{message}");

        let mut negative = add_request("CONTROLLER");
        negative.voter_id = -1;
        assert_eq!(add_answer(&broker, negative).await.0, ResponseError::InvalidRequest.code());

        // A well-formed request on a node running no quorum (this test's):
        // its voters are static, as Kafka answers for kraft.version 0.
        assert_eq!(add_answer(&broker, add_request("CONTROLLER")).await.0, ResponseError::UnsupportedVersion.code());
        let resp =
            handle_remove(&broker, 0, RemoveRaftVoterRequest::default().with_voter_id(2)).await.expect("answered");
        assert_eq!(resp.error_code, ResponseError::UnsupportedVersion.code());
    }

    #[tokio::test]
    async fn a_lone_node_answers_the_broker_listeners_requests_itself() {
        use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseKind};
        let broker = controller();
        let header = |key: ApiKey| RequestHeader::default().with_request_api_key(key as i16);
        let add = forwarded::add(
            Arc::clone(&broker),
            header(ApiKey::AddRaftVoter),
            RequestKind::AddRaftVoter(add_request("CONTROLLER")),
        );
        let Ok(ResponseKind::AddRaftVoter(r)) = add.await else { panic!("an AddRaftVoter answer") };
        assert_eq!(r.error_code, ResponseError::UnsupportedVersion.code());
        let remove = forwarded::remove(
            broker,
            header(ApiKey::RemoveRaftVoter),
            RequestKind::RemoveRaftVoter(RemoveRaftVoterRequest::default().with_voter_id(2)),
        );
        let Ok(ResponseKind::RemoveRaftVoter(r)) = remove.await else { panic!("a RemoveRaftVoter answer") };
        assert_eq!(r.error_code, ResponseError::UnsupportedVersion.code());
    }

    #[test]
    fn quorum_refusals_map_to_kafkas_codes() {
        let cases = [
            (VoterChangeError::NotLeader { leader: None }, ResponseError::NotLeaderOrFollower),
            (VoterChangeError::Unsupported("static".into()), ResponseError::UnsupportedVersion),
            (VoterChangeError::TimedOut("pending".into()), ResponseError::RequestTimedOut),
            (VoterChangeError::Duplicate("dup".into()), ResponseError::DuplicateVoter),
            (VoterChangeError::NotFound("gone".into()), ResponseError::VoterNotFound),
            (VoterChangeError::Invalid("bad".into()), ResponseError::InvalidRequest),
            (VoterChangeError::Failed("other".into()), ResponseError::UnknownServerError),
        ];
        for (e, code) in cases {
            assert_eq!(refusal(e).0, code);
        }
    }
}
