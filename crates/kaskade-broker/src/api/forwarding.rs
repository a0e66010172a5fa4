//! Admin requests carried out by the active controller, as Kafka's KRaft
//! brokers forward them (KIP-590, `ForwardingManager`): CreateTopics,
//! DeleteTopics, CreatePartitions, AlterConfigs, IncrementalAlterConfigs,
//! ElectLeaders, AlterPartitionReassignments and AlterUserScramCredentials.
//!
//! On a broker of a multi-node cluster the request, as the client encoded
//! it (header with its correlation id and client id, body at its version),
//! goes in an Envelope (API 58) with the client's principal and address to
//! the active controller's controller listener through this broker's
//! forwarding [`ControllerChannel`] (a controller answering NOT_CONTROLLER,
//! or one that cannot be reached, is followed by the next, until the
//! request's timeout). The controller decides on its image
//! (`api::envelope`) and answers with the encoded response, which is
//! relayed to the client as the controller made it. Kafka's rules for
//! failures: an envelope error UNSUPPORTED_VERSION closes the client's
//! connection; any other envelope error, or a response that does not
//! decode, is UNKNOWN_SERVER_ERROR; no answer within the timeout is
//! REQUEST_TIMED_OUT, for every resource of the request.
//!
//! Kaskade's guarantee on top of Kafka's: the answer goes to the client
//! once this broker's own image holds the controller's change (the
//! controller sends its committed offset in tagged field
//! [`COMMITTED_OFFSET_TAG`], which Kafka's brokers would ignore), bounded
//! by the same timeout, so a client told its topic exists finds it in this
//! broker's Metadata at once. A lone node decides itself (it is its
//! own active controller).
//!
//! On the controller listener the same APIs are served only by the active
//! controller ([`on_controller`]): another controller answers NOT_CONTROLLER
//! for every resource, and the active one commits its decisions only in its
//! own term (`topic::as_active_controller`), never forwarding them.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    alter_configs_response, alter_partition_reassignments_response, alter_user_scram_credentials_response,
    create_partitions_response, create_topics_request, create_topics_response, delete_topics_response,
    elect_leaders_response, incremental_alter_configs_response, AddRaftVoterResponse, AlterConfigsResponse,
    AlterPartitionReassignmentsResponse, AlterUserScramCredentialsResponse, ApiKey, CreatePartitionsResponse,
    CreateTopicsRequest, CreateTopicsResponse, DefaultPrincipalData, DeleteTopicsResponse, ElectLeadersResponse,
    EnvelopeRequest, EnvelopeResponse, IncrementalAlterConfigsResponse, RemoveRaftVoterResponse, RequestHeader,
    RequestKind, ResponseHeader, ResponseKind, TopicName, UpdateFeaturesResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kaskade_meta::TopicImage;

use crate::broker::Broker;
use crate::cluster::controller_channel::ControllerChannel;
use crate::error::BrokerError;
use crate::router::{HandlerFn, HandlerFuture};
use crate::topic::TopicError;

/// The Envelope response's tagged field (Kaskade's) carrying the
/// controller's committed metadata offset once the change was made.
pub const COMMITTED_OFFSET_TAG: i32 = 64;

/// How long a forwarded request is retried when the request names no
/// timeout: Kafka's `request.timeout.ms` default, which bounds its
/// forwarding channel.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest a request's own timeout may hold a client's request.
const MAX_TIMEOUT: Duration = Duration::from_secs(120);

/// The two routes of a forwardable API whose decision is the route
/// `$decide`: `route` on a broker listener ([`to_controller`]) and
/// `controller_route` on the controller listener ([`on_controller`]).
#[macro_export]
macro_rules! forwarded_routes {
    ($decide:path) => {
        /// On a broker listener: forwarded to the active controller in a cluster.
        pub fn route(
            broker: ::std::sync::Arc<$crate::broker::Broker>,
            header: ::kafka_protocol::messages::RequestHeader,
            body: ::kafka_protocol::messages::RequestKind,
        ) -> $crate::router::HandlerFuture {
            $crate::api::forwarding::to_controller(broker, header, body, $decide)
        }

        /// On the controller listener: the active controller decides.
        pub fn controller_route(
            broker: ::std::sync::Arc<$crate::broker::Broker>,
            header: ::kafka_protocol::messages::RequestHeader,
            body: ::kafka_protocol::messages::RequestKind,
        ) -> $crate::router::HandlerFuture {
            $crate::api::forwarding::on_controller(broker, header, body, $decide)
        }
    };
}

/// The route of a forwardable API on a broker listener: forwarded to the
/// active controller in a multi-node cluster, else `decide`d here.
pub fn to_controller(
    broker: Arc<Broker>,
    header: RequestHeader,
    body: RequestKind,
    decide: HandlerFn,
) -> HandlerFuture {
    match Forward::prepare(&broker) {
        Some(forward) => crate::api::handler(async move { forward.send(&broker, header, body).await }),
        None => decide(broker, header, body),
    }
}

/// The route of a forwardable API on a controller listener (directly, or
/// unwrapped from an Envelope): `decide`d by the active controller as
/// such, NOT_CONTROLLER from any other.
pub fn on_controller(
    broker: Arc<Broker>,
    header: RequestHeader,
    body: RequestKind,
    decide: HandlerFn,
) -> HandlerFuture {
    if !is_active_controller(&broker) {
        let version = header.request_api_version;
        let answer = error_response(&body, version, ResponseError::NotController, None);
        return crate::api::handler(
            async move { answer.ok_or_else(|| BrokerError::internal("not a forwardable request")) },
        );
    }
    // The handler starts once this node's served image caught up with the
    // committed one (a controller-only node follows no image otherwise),
    // with the caller it was sent by.
    let addr = crate::api::CLIENT_ADDR.try_with(|a| *a).ok();
    let listener = crate::api::CLIENT_LISTENER.try_with(Arc::clone).ok();
    crate::api::handler(crate::topic::as_active_controller(async move {
        if let Err(e) = crate::topic::on_blocking_pool(&broker.topics, |tm| tm.apply_committed()).await {
            tracing::warn!(error = %e, "the controller could not bring its image up to date before deciding");
        }
        let start = || decide(broker, header, body);
        let start = || match listener {
            Some(listener) => crate::api::CLIENT_LISTENER.sync_scope(listener, start),
            None => start(),
        };
        let decided = match addr {
            Some(addr) => crate::api::CLIENT_ADDR.sync_scope(addr, start),
            None => start(),
        };
        decided.await
    }))
}

/// A read-only API on the controller listener (DescribeConfigs), answered
/// by any controller from its committed image.
pub fn read_on_controller(
    broker: Arc<Broker>,
    header: RequestHeader,
    body: RequestKind,
    read: HandlerFn,
) -> HandlerFuture {
    let addr = crate::api::CLIENT_ADDR.try_with(|a| *a).ok();
    crate::api::handler(async move {
        if let Err(e) = crate::topic::on_blocking_pool(&broker.topics, |tm| tm.apply_committed()).await {
            tracing::warn!(error = %e, "the controller could not bring its image up to date before answering");
        }
        let start = || read(broker, header, body);
        match addr {
            Some(addr) => crate::api::CLIENT_ADDR.sync_scope(addr, start),
            None => start(),
        }
        .await
    })
}

/// Whether this node's controller leads the quorum now.
pub fn is_active_controller(broker: &Broker) -> bool {
    broker.quorum().is_some_and(|q| q.leader() == Some(q.node_id()))
}

/// A request about to be forwarded: the channel and who sent it.
pub struct Forward {
    channel: Arc<ControllerChannel>,
    client: IpAddr,
}

impl Forward {
    /// `Some` when this broker forwards admin requests (a node of a
    /// multi-node cluster). Reads the client's address now: it is known
    /// only while the handler is being started.
    pub fn prepare(broker: &Broker) -> Option<Forward> {
        let channel = broker.forwarding()?.clone();
        let client =
            crate::api::CLIENT_ADDR.try_with(|a| a.ip()).unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        Some(Forward { channel, client })
    }

    /// Auto-creates `name` with this broker's defaults (`num.partitions`,
    /// `default.replication.factor`) through the active controller
    /// (a Metadata request allowed it): a CreateTopics in an Envelope, as
    /// Kafka's `AutoTopicCreationManager` sends one for a client's request.
    /// The topic, once this broker's image holds it.
    pub async fn auto_create(self, broker: &Arc<Broker>, name: &str) -> Result<TopicImage, TopicError> {
        let version = 7;
        let caller = crate::api::Caller::current();
        let header = RequestHeader::default()
            .with_request_api_key(ApiKey::CreateTopics as i16)
            .with_request_api_version(version)
            .with_client_id(Some(StrBytes::from_string(caller.client_id)));
        let topic = create_topics_request::CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(name.to_string())))
            // This broker's defaults, as Kafka's broker fills them in.
            .with_num_partitions(broker.config.num_partitions)
            .with_replication_factor(broker.config.default_replication_factor);
        let request =
            CreateTopicsRequest::default().with_topics(vec![topic]).with_timeout_ms(DEFAULT_TIMEOUT.as_millis() as i32);
        let unknown = |message: String| TopicError::new(ResponseError::UnknownServerError, message);
        let answer =
            self.send(broker, header, RequestKind::CreateTopics(request)).await.map_err(|e| unknown(e.to_string()))?;
        let ResponseKind::CreateTopics(answer) = answer else {
            return Err(unknown(format!("CreateTopics answered with {answer:?}")));
        };
        let result = answer.topics.first().ok_or_else(|| unknown("CreateTopics answered no topic".into()))?;
        if result.error_code != 0 {
            let code = ResponseError::try_from_code(result.error_code).unwrap_or(ResponseError::UnknownServerError);
            let message = result.error_message.as_ref().map_or_else(String::new, |m| m.to_string());
            return Err(TopicError::new(code, message));
        }
        // Created; not yet here only if this broker's image is late.
        broker
            .topics
            .image()
            .topic(name)
            .cloned()
            .ok_or_else(|| TopicError::new(ResponseError::LeaderNotAvailable, format!("topic {name} is being created")))
    }

    /// Sends the request in an Envelope to the active controller and
    /// relays its answer (see the module docs for the failures).
    pub async fn send(
        self,
        broker: &Arc<Broker>,
        header: RequestHeader,
        body: RequestKind,
    ) -> Result<ResponseKind, BrokerError> {
        let version = header.request_api_version;
        let api_key = crate::network::frame::request_api_key(&body)
            .ok_or_else(|| BrokerError::internal("a request of no known API"))?;
        let fail = |code: ResponseError, message: String| {
            error_response(&body, version, code, Some(message))
                .ok_or_else(|| BrokerError::internal(format!("{api_key:?} is not forwardable")))
        };
        let mut data = BytesMut::new();
        header
            .encode(&mut data, api_key.request_header_version(version))
            .and_then(|()| body.encode(&mut data, version))
            .map_err(|e| BrokerError::internal(format!("cannot encode a {api_key:?} v{version} to forward: {e:#}")))?;
        let envelope = EnvelopeRequest::default()
            .with_request_data(data.freeze())
            .with_request_principal(Some(anonymous_principal()))
            .with_client_host_address(address_bytes(self.client));
        let within = timeout_of(&body);
        let deadline = tokio::time::Instant::now() + within;
        let answer = match self.channel.envelope(&envelope, within).await {
            Ok(answer) => answer,
            Err(refusal) => {
                tracing::debug!(api = ?api_key, error = %refusal, "forwarding to the active controller timed out");
                let message = format!("no active controller took the request within {within:?}: {refusal}");
                return fail(ResponseError::RequestTimedOut, message);
            }
        };
        if answer.error_code == ResponseError::UnsupportedVersion.code() {
            // Kafka's broker closes the client's connection, so that it asks
            // for the versions again.
            return Err(BrokerError::close(format!("the active controller does not take {api_key:?} v{version}")));
        }
        if answer.error_code != 0 {
            let message = format!("the active controller refused the envelope with error code {}", answer.error_code);
            tracing::warn!(api = ?api_key, code = answer.error_code, "forwarded request refused in its envelope");
            return fail(ResponseError::UnknownServerError, message);
        }
        let response = match decode_response(&answer, api_key, version, header.correlation_id) {
            Ok(response) => response,
            Err(e) => {
                tracing::warn!(api = ?api_key, "the active controller's forwarded response: {e}");
                return fail(ResponseError::UnknownServerError, e);
            }
        };
        if let Some(offset) = committed_offset(&answer) {
            wait_until_applied(broker, offset, deadline).await;
        }
        Ok(response)
    }
}

/// Waits (until `deadline` at most) for this broker's image to hold the
/// controller's committed `offset`, and for its replicas to follow it.
async fn wait_until_applied(broker: &Arc<Broker>, offset: i64, deadline: tokio::time::Instant) {
    let mut versions = broker.topics.metadata().subscribe();
    let reached = versions.wait_for(|v| v.end_offset >= offset);
    if !matches!(tokio::time::timeout_at(deadline, reached).await, Ok(Ok(_))) {
        tracing::debug!(offset, "answering a forwarded request before this broker applied the change");
        return;
    }
    if let Err(e) = crate::topic::on_blocking_pool(&broker.topics, |tm| tm.apply_committed()).await {
        tracing::warn!(error = %e, "could not apply the committed metadata after a forwarded change");
    }
}

fn committed_offset(answer: &EnvelopeResponse) -> Option<i64> {
    let raw = answer.unknown_tagged_fields.get(&COMMITTED_OFFSET_TAG)?;
    Some(i64::from_be_bytes(raw.as_ref().try_into().ok()?))
}

fn decode_response(
    answer: &EnvelopeResponse,
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
) -> Result<ResponseKind, String> {
    let mut data: Bytes = answer.response_data.clone().ok_or("the envelope carries no response")?;
    let header = ResponseHeader::decode(&mut data, api_key.response_header_version(version))
        .map_err(|e| format!("its header does not decode: {e:#}"))?;
    if header.correlation_id != correlation_id {
        return Err(format!("it answers correlation id {}, not {correlation_id}", header.correlation_id));
    }
    ResponseKind::decode(api_key, &mut data, version).map_err(|e| format!("its body does not decode: {e:#}"))
}

/// The principal of a PLAINTEXT client, serialized as Kafka's
/// `DefaultKafkaPrincipalBuilder` does: the version (0), then
/// `DefaultPrincipalData` at it.
pub fn anonymous_principal() -> Bytes {
    let principal = DefaultPrincipalData::default()
        .with_type(StrBytes::from_static_str("User"))
        .with_name(StrBytes::from_static_str("ANONYMOUS"));
    let mut out = BytesMut::new();
    out.extend_from_slice(&0i16.to_be_bytes());
    // Encoding two short strings and a bool into memory cannot fail.
    if let Err(e) = principal.encode(&mut out, 0) {
        tracing::error!("cannot encode the anonymous principal: {e:#}");
    }
    out.freeze()
}

/// The client's address as Kafka's `InetAddress.getAddress` gives it.
pub fn address_bytes(ip: IpAddr) -> Bytes {
    match ip {
        IpAddr::V4(v4) => Bytes::copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => Bytes::copy_from_slice(&v6.octets()),
    }
}

/// How long a forwarded request may take: its own timeout where the API
/// has one (at most [`MAX_TIMEOUT`]), else [`DEFAULT_TIMEOUT`].
fn timeout_of(body: &RequestKind) -> Duration {
    let ms = match body {
        RequestKind::CreateTopics(r) => r.timeout_ms,
        RequestKind::DeleteTopics(r) => r.timeout_ms,
        RequestKind::CreatePartitions(r) => r.timeout_ms,
        RequestKind::ElectLeaders(r) => r.timeout_ms,
        RequestKind::AlterPartitionReassignments(r) => r.timeout_ms,
        RequestKind::AddRaftVoter(r) => r.timeout_ms,
        RequestKind::UpdateFeatures(r) => r.timeout_ms,
        _ => 0,
    };
    if ms > 0 {
        Duration::from_millis(ms as u64).min(MAX_TIMEOUT)
    } else {
        DEFAULT_TIMEOUT
    }
}

/// Kafka's `getErrorResponse` for a forwardable request: `code` for every
/// resource it names. `None` for another API.
pub fn error_response(
    body: &RequestKind,
    version: i16,
    code: ResponseError,
    message: Option<String>,
) -> Option<ResponseKind> {
    let code = code.code();
    let message = message.map(StrBytes::from_string);
    Some(match body {
        RequestKind::CreateTopics(r) => ResponseKind::CreateTopics(
            CreateTopicsResponse::default().with_topics(
                r.topics
                    .iter()
                    .map(|t| {
                        create_topics_response::CreatableTopicResult::default()
                            .with_name(t.name.clone())
                            .with_error_code(code)
                            .with_error_message(message.clone())
                            .with_num_partitions(-1)
                            .with_replication_factor(-1)
                    })
                    .collect(),
            ),
        ),
        RequestKind::DeleteTopics(r) => {
            let targets: Vec<(Option<TopicName>, uuid::Uuid)> = if version >= 6 {
                r.topics.iter().map(|t| (t.name.clone(), t.topic_id)).collect()
            } else {
                r.topic_names.iter().map(|n| (Some(n.clone()), uuid::Uuid::nil())).collect()
            };
            ResponseKind::DeleteTopics(
                DeleteTopicsResponse::default().with_responses(
                    targets
                        .into_iter()
                        .map(|(name, id)| {
                            delete_topics_response::DeletableTopicResult::default()
                                .with_name(name)
                                .with_topic_id(id)
                                .with_error_code(code)
                                .with_error_message(message.clone())
                        })
                        .collect(),
                ),
            )
        }
        RequestKind::CreatePartitions(r) => ResponseKind::CreatePartitions(
            CreatePartitionsResponse::default().with_results(
                r.topics
                    .iter()
                    .map(|t| {
                        create_partitions_response::CreatePartitionsTopicResult::default()
                            .with_name(t.name.clone())
                            .with_error_code(code)
                            .with_error_message(message.clone())
                    })
                    .collect(),
            ),
        ),
        RequestKind::AlterConfigs(r) => ResponseKind::AlterConfigs(
            AlterConfigsResponse::default().with_responses(
                r.resources
                    .iter()
                    .map(|res| {
                        alter_configs_response::AlterConfigsResourceResponse::default()
                            .with_resource_type(res.resource_type)
                            .with_resource_name(res.resource_name.clone())
                            .with_error_code(code)
                            .with_error_message(message.clone())
                    })
                    .collect(),
            ),
        ),
        RequestKind::IncrementalAlterConfigs(r) => ResponseKind::IncrementalAlterConfigs(
            IncrementalAlterConfigsResponse::default().with_responses(
                r.resources
                    .iter()
                    .map(|res| {
                        incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                            .with_resource_type(res.resource_type)
                            .with_resource_name(res.resource_name.clone())
                            .with_error_code(code)
                            .with_error_message(message.clone())
                    })
                    .collect(),
            ),
        ),
        RequestKind::ElectLeaders(r) => {
            let results = r.topic_partitions.iter().flatten().map(|t| {
                let partitions = t.partitions.iter().map(|p| {
                    elect_leaders_response::PartitionResult::default()
                        .with_partition_id(*p)
                        .with_error_code(code)
                        .with_error_message(message.clone())
                });
                elect_leaders_response::ReplicaElectionResult::default()
                    .with_topic(t.topic.clone())
                    .with_partition_result(partitions.collect())
            });
            let top = if version >= 1 { code } else { 0 };
            ResponseKind::ElectLeaders(
                ElectLeadersResponse::default().with_error_code(top).with_replica_election_results(results.collect()),
            )
        }
        RequestKind::AlterPartitionReassignments(r) => {
            let responses = r.topics.iter().map(|t| {
                let partitions = t.partitions.iter().map(|p| {
                    alter_partition_reassignments_response::ReassignablePartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                        .with_error_message(message.clone())
                });
                alter_partition_reassignments_response::ReassignableTopicResponse::default()
                    .with_name(t.name.clone())
                    .with_partitions(partitions.collect())
            });
            ResponseKind::AlterPartitionReassignments(
                AlterPartitionReassignmentsResponse::default()
                    .with_error_code(code)
                    .with_error_message(message.clone())
                    .with_responses(responses.collect()),
            )
        }
        RequestKind::AlterUserScramCredentials(r) => {
            let mut users: Vec<StrBytes> = r.deletions.iter().map(|d| d.name.clone()).collect();
            users.extend(r.upsertions.iter().map(|u| u.name.clone()));
            let mut seen = std::collections::HashSet::new();
            users.retain(|u| seen.insert(u.clone()));
            let results = users.into_iter().map(|user| {
                alter_user_scram_credentials_response::AlterUserScramCredentialsResult::default()
                    .with_user(user)
                    .with_error_code(code)
                    .with_error_message(message.clone())
            });
            ResponseKind::AlterUserScramCredentials(
                AlterUserScramCredentialsResponse::default().with_results(results.collect()),
            )
        }
        RequestKind::AddRaftVoter(_) => ResponseKind::AddRaftVoter(
            AddRaftVoterResponse::default().with_error_code(code).with_error_message(message),
        ),
        RequestKind::RemoveRaftVoter(_) => ResponseKind::RemoveRaftVoter(
            RemoveRaftVoterResponse::default().with_error_code(code).with_error_message(message),
        ),
        RequestKind::UpdateFeatures(_) => ResponseKind::UpdateFeatures(
            UpdateFeaturesResponse::default().with_error_code(code).with_error_message(message),
        ),
        _ => return None,
    })
}

/// Whether a forwardable API's response holds NOT_CONTROLLER anywhere
/// (Kafka then answers the Envelope itself with NOT_CONTROLLER, so that
/// the broker asks the next controller).
pub fn says_not_controller(response: &ResponseKind) -> bool {
    let not = ResponseError::NotController.code();
    match response {
        ResponseKind::CreateTopics(r) => r.topics.iter().any(|t| t.error_code == not),
        ResponseKind::DeleteTopics(r) => r.responses.iter().any(|t| t.error_code == not),
        ResponseKind::CreatePartitions(r) => r.results.iter().any(|t| t.error_code == not),
        ResponseKind::AlterConfigs(r) => r.responses.iter().any(|t| t.error_code == not),
        ResponseKind::IncrementalAlterConfigs(r) => r.responses.iter().any(|t| t.error_code == not),
        ResponseKind::ElectLeaders(r) => {
            r.error_code == not
                || r.replica_election_results.iter().flat_map(|t| &t.partition_result).any(|p| p.error_code == not)
        }
        ResponseKind::AlterPartitionReassignments(r) => {
            r.error_code == not || r.responses.iter().flat_map(|t| &t.partitions).any(|p| p.error_code == not)
        }
        ResponseKind::AlterUserScramCredentials(r) => r.results.iter().any(|u| u.error_code == not),
        ResponseKind::UpdateFeatures(r) => r.error_code == not,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::{create_topics_request, CreateTopicsRequest, DeleteTopicsRequest};

    use super::*;

    #[test]
    fn error_responses_name_every_resource_and_are_recognised() {
        let mut req = CreateTopicsRequest::default();
        for name in ["a", "b"] {
            req.topics.push(
                create_topics_request::CreatableTopic::default().with_name(TopicName(StrBytes::from_static_str(name))),
            );
        }
        let body = RequestKind::CreateTopics(req);
        let answer = error_response(&body, 7, ResponseError::NotController, None).expect("forwardable");
        let ResponseKind::CreateTopics(r) = &answer else { panic!("{answer:?}") };
        assert_eq!(r.topics.len(), 2);
        assert!(r.topics.iter().all(|t| t.error_code == 41 && t.num_partitions == -1));
        assert!(says_not_controller(&answer));
        let timed_out = error_response(&body, 7, ResponseError::RequestTimedOut, Some("x".into())).expect("fwd");
        assert!(!says_not_controller(&timed_out));

        // DeleteTopics by name before v6, by id from v6.
        let old = DeleteTopicsRequest::default().with_topic_names(vec![TopicName(StrBytes::from_static_str("t"))]);
        let ResponseKind::DeleteTopics(r) =
            error_response(&RequestKind::DeleteTopics(old), 5, ResponseError::RequestTimedOut, None).expect("fwd")
        else {
            panic!()
        };
        assert_eq!(r.responses[0].name.as_ref().map(|n| n.as_str()), Some("t"));
        assert_eq!(r.responses[0].error_code, 7);
        assert!(error_response(&RequestKind::Metadata(Default::default()), 12, ResponseError::NotController, None)
            .is_none());
    }

    #[test]
    fn the_principal_and_address_are_encoded_as_kafka_does() {
        let mut principal = anonymous_principal();
        assert_eq!(&principal[..2], &[0, 0], "version 0 first");
        let _ = bytes::Buf::get_i16(&mut principal);
        let decoded = DefaultPrincipalData::decode(&mut principal, 0).expect("decodes");
        assert_eq!((decoded._type.as_str(), decoded.name.as_str()), ("User", "ANONYMOUS"));
        assert_eq!(address_bytes("10.1.2.3".parse().expect("ip")).as_ref(), &[10, 1, 2, 3]);
        assert_eq!(address_bytes("::1".parse().expect("ip")).len(), 16);
    }

    #[test]
    fn the_timeout_is_the_requests_own_when_it_has_one() {
        let create = |ms| RequestKind::CreateTopics(CreateTopicsRequest::default().with_timeout_ms(ms));
        assert_eq!(timeout_of(&create(5_000)), Duration::from_secs(5));
        assert_eq!(timeout_of(&create(0)), DEFAULT_TIMEOUT);
        assert_eq!(timeout_of(&create(i32::MAX)), MAX_TIMEOUT);
        assert_eq!(timeout_of(&RequestKind::AlterConfigs(Default::default())), DEFAULT_TIMEOUT);
    }
}
