//! ElectLeaders (key 43, v0-v2; kafka-leader-election): PREFERRED or
//! UNCLEAN elections for the named partitions, or for every partition
//! when `topic_partitions` is null. The decision is
//! `kaskade_meta::leader_election::elect_leaders` on the committed image,
//! appended through `TopicManager::update`, which on a cluster goes to
//! the active controller (the metadata log forwards the proposal, as for
//! CreateTopics or IncrementalAlterConfigs) and is decided again if the
//! image moved meanwhile. Answers come once the change is committed.
//!
//! Kafka's answers: per partition NONE, ELECTION_NOT_NEEDED,
//! PREFERRED_LEADER_NOT_AVAILABLE, ELIGIBLE_LEADERS_NOT_AVAILABLE or
//! UNKNOWN_TOPIC_OR_PARTITION, with Kafka's messages; an unknown election
//! type is INVALID_REQUEST for the whole request (v1+), and a failed
//! metadata append answers every named partition with the error it maps
//! to. No ACLs are checked (Kaskade has no authorizer for this API).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kaskade_meta::leader_election::{self, ElectionKind, ElectionRefusal, RequestedPartitions, TopicElections};
use kaskade_meta::MetaError;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::topic::TopicError;

pub async fn handle(
    broker: &Arc<Broker>,
    version: i16,
    req: ElectLeadersRequest,
) -> Result<ElectLeadersResponse, BrokerError> {
    let mut resp = ElectLeadersResponse::default();
    // v0 has no election type: PREFERRED (the field's default, 0).
    let Some(kind) = ElectionKind::from_wire(if version >= 1 { req.election_type } else { 0 }) else {
        resp.error_code = ResponseError::InvalidRequest.code();
        return Ok(resp);
    };
    let requested: Option<Vec<RequestedPartitions>> = req.topic_partitions.map(|topics| {
        topics
            .into_iter()
            .map(|t| RequestedPartitions { topic: t.topic.0.to_string(), partitions: t.partitions })
            .collect()
    });
    let asked = requested.clone();
    // The metadata log fsyncs: off the async workers.
    let decided = crate::topic::on_blocking_pool(&broker.topics, move |tm| {
        Ok(tm.update(|image| {
            let out = leader_election::elect_leaders(image, requested.as_deref(), kind);
            Ok::<_, MetaError>((out.records, (out.results, out.unclean)))
        })?)
    })
    .await;
    let results = match decided {
        Ok((results, unclean)) => {
            for election in &unclean {
                election.warn();
            }
            results
        }
        Err(e) => {
            tracing::warn!(error = %e, "ElectLeaders: no leader was changed");
            return Ok(failed(asked, &e, version));
        }
    };
    resp.replica_election_results = results.into_iter().map(to_wire).collect();
    Ok(resp)
}

/// Kafka's error response (`ElectLeadersRequest.getErrorResponse`): the
/// error at the top (v1+: v0 has no such field, and cannot encode it) and
/// for every named partition.
fn failed(asked: Option<Vec<RequestedPartitions>>, e: &TopicError, version: i16) -> ElectLeadersResponse {
    let mut resp = ElectLeadersResponse::default();
    if version >= 1 {
        resp.error_code = e.code();
    }
    resp.replica_election_results = asked
        .unwrap_or_default()
        .into_iter()
        .map(|t| {
            let outcomes = t.partitions.into_iter().map(|p| (p, Err((e.code(), e.message.clone())))).collect();
            topic_result(t.topic, outcomes)
        })
        .collect();
    resp
}

/// Kafka's code and message of a refusal (the messages of `Errors`'
/// default exceptions, as KRaft's `ApiError(error)` carries them).
fn refusal(r: ElectionRefusal) -> (i16, String) {
    let (error, message) = match r {
        ElectionRefusal::UnknownTopicOrPartition(m) => (ResponseError::UnknownTopicOrPartition, m),
        ElectionRefusal::NotNeeded => {
            (ResponseError::ElectionNotNeeded, "Leader election not needed for topic partition.".into())
        }
        ElectionRefusal::PreferredLeaderNotAvailable => {
            (ResponseError::PreferredLeaderNotAvailable, "The preferred leader was not available.".into())
        }
        ElectionRefusal::EligibleLeadersNotAvailable => {
            (ResponseError::EligibleLeadersNotAvailable, "Eligible topic partition leaders are not available.".into())
        }
    };
    (error.code(), message)
}

fn to_wire(t: TopicElections) -> ReplicaElectionResult {
    let partitions = t.partitions.into_iter().map(|p| (p.partition, p.outcome.map_err(refusal))).collect();
    topic_result(t.topic, partitions)
}

/// A partition's outcome on the wire: NONE, or Kafka's code and message.
type Outcome = (i32, Result<(), (i16, String)>);

fn topic_result(topic: String, partitions: Vec<Outcome>) -> ReplicaElectionResult {
    let mut r = ReplicaElectionResult::default();
    r.topic = TopicName(StrBytes::from_string(topic));
    for (partition, outcome) in partitions {
        let mut p = PartitionResult::default();
        p.partition_id = partition;
        // Kafka's ApiError.NONE has a null message.
        p.error_message = None;
        if let Err((code, message)) = outcome {
            p.error_code = code;
            p.error_message = Some(StrBytes::from_string(message));
        }
        r.partition_result.push(p);
    }
    r
}

/// Decided on this node's image (a lone node, or the active controller).
mod decide {
    crate::route_to!(ElectLeaders, super::handle);
}

/// On a broker listener: forwarded to the active controller in a cluster.
///
/// v0 is forwarded as v1: v0 has no top-level error code, so a v0 answer
/// for a null partition list cannot carry NOT_CONTROLLER, and the Envelope
/// of a controller that just lost its leadership would come back as an
/// empty success instead of being retried on the next controller (Kafka
/// loses that error too). v1 adds only `election_type`, whose default,
/// PREFERRED, is v0's election; the top-level code is dropped again for
/// the v0 client, which cannot receive it.
pub fn route(
    broker: Arc<Broker>,
    header: kafka_protocol::messages::RequestHeader,
    body: kafka_protocol::messages::RequestKind,
) -> crate::router::HandlerFuture {
    if header.request_api_version != 0 {
        return crate::api::forwarding::to_controller(broker, header, body, decide::route);
    }
    let answer = crate::api::forwarding::to_controller(broker, as_v1(header), body, decide::route);
    crate::api::handler(async move { answer.await.map(for_v0) })
}

/// A v0 request's header as v1's (the body is the same at both versions
/// but for v1's `election_type`, which defaults to PREFERRED).
fn as_v1(header: kafka_protocol::messages::RequestHeader) -> kafka_protocol::messages::RequestHeader {
    debug_assert_eq!(header.request_api_version, 0);
    header.with_request_api_version(1)
}

/// A v1 answer as a v0 client receives it: no top-level error code.
fn for_v0(mut answer: kafka_protocol::messages::ResponseKind) -> kafka_protocol::messages::ResponseKind {
    if let kafka_protocol::messages::ResponseKind::ElectLeaders(r) = &mut answer {
        r.error_code = 0;
    }
    answer
}

/// On the controller listener: the active controller decides.
pub fn controller_route(
    broker: Arc<Broker>,
    header: kafka_protocol::messages::RequestHeader,
    body: kafka_protocol::messages::RequestKind,
) -> crate::router::HandlerFuture {
    crate::api::forwarding::on_controller(broker, header, body, decide::route)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::BrokerConfig;
    use kafka_protocol::messages::elect_leaders_request::TopicPartitions;

    fn request(election_type: i8, partitions: Option<&[(&str, &[i32])]>) -> ElectLeadersRequest {
        let mut req = ElectLeadersRequest::default();
        req.election_type = election_type;
        req.topic_partitions = partitions.map(|ps| {
            ps.iter()
                .map(|(t, ps)| {
                    let mut tp = TopicPartitions::default();
                    tp.topic = TopicName(StrBytes::from_string(t.to_string()));
                    tp.partitions = ps.to_vec();
                    tp
                })
                .collect()
        });
        req
    }

    fn codes(resp: &ElectLeadersResponse) -> Vec<(String, i32, i16, Option<String>)> {
        resp.replica_election_results
            .iter()
            .flat_map(|t| {
                t.partition_result.iter().map(|p| {
                    (
                        t.topic.0.to_string(),
                        p.partition_id,
                        p.error_code,
                        p.error_message.as_ref().map(|m| m.to_string()),
                    )
                })
            })
            .collect()
    }

    #[tokio::test]
    async fn on_one_node_every_partition_already_has_its_preferred_leader() {
        let broker = Arc::new(Broker::for_tests(BrokerConfig::default(), crate::router::Router::default()));
        broker.topics.create("e", 2, -1, &[], &BTreeMap::new(), false).expect("create");
        let not_needed = || Some("Leader election not needed for topic partition.".to_string());

        let named = handle(&broker, 2, request(0, Some(&[("e", &[0, 1, 2]), ("nope", &[0])]))).await.expect("answered");
        assert_eq!(named.error_code, 0);
        assert_eq!(
            codes(&named),
            vec![
                ("e".into(), 0, ResponseError::ElectionNotNeeded.code(), not_needed()),
                ("e".into(), 1, ResponseError::ElectionNotNeeded.code(), not_needed()),
                ("e".into(), 2, ResponseError::UnknownTopicOrPartition.code(), Some("No such partition as e-2".into())),
                ("nope".into(), 0, ResponseError::UnknownTopicOrPartition.code(), Some("No such topic as nope".into())),
            ]
        );

        // Every partition: the topic listed, nothing needed.
        let all = handle(&broker, 1, request(0, None)).await.expect("answered");
        assert!(all.replica_election_results.iter().any(|t| t.topic.0.as_str() == "e"));
        assert_eq!(codes(&all), vec![]);

        // UNCLEAN on a led partition; v0 has no election type (PREFERRED).
        let unclean = handle(&broker, 1, request(1, Some(&[("e", &[0])]))).await.expect("answered");
        assert_eq!(codes(&unclean), vec![("e".into(), 0, ResponseError::ElectionNotNeeded.code(), not_needed())]);
        let v0 = handle(&broker, 0, request(7, Some(&[("e", &[1])]))).await.expect("answered");
        assert_eq!(codes(&v0), vec![("e".into(), 1, ResponseError::ElectionNotNeeded.code(), not_needed())]);
    }

    #[tokio::test]
    async fn an_unknown_election_type_is_an_invalid_request() {
        let broker = Arc::new(Broker::for_tests(BrokerConfig::default(), crate::router::Router::default()));
        let resp = handle(&broker, 2, request(2, Some(&[("e", &[0])]))).await.expect("answered");
        assert_eq!(resp.error_code, ResponseError::InvalidRequest.code());
        assert!(resp.replica_election_results.is_empty());
    }

    #[test]
    fn a_failed_metadata_append_answers_every_named_partition_with_its_error() {
        let e = TopicError::new(ResponseError::NotController, "no active controller");
        let asked = |topic: &str, partitions: Vec<i32>| RequestedPartitions { topic: topic.into(), partitions };
        let resp = failed(Some(vec![asked("a", vec![0, 1]), asked("b", vec![])]), &e, 2);
        assert_eq!(resp.error_code, ResponseError::NotController.code());
        let code = ResponseError::NotController.code();
        let message = Some("no active controller".to_string());
        assert_eq!(codes(&resp), vec![("a".into(), 0, code, message.clone()), ("a".into(), 1, code, message)]);
        assert_eq!(resp.replica_election_results.len(), 2, "every named topic is answered");
        assert!(failed(None, &e, 2).replica_election_results.is_empty());
        // v0 has no top-level code: the named partitions carry it alone,
        // and the answer encodes.
        let v0 = failed(Some(vec![asked("a", vec![0])]), &e, 0);
        assert_eq!((v0.error_code, codes(&v0).len()), (0, 1));
        let mut out = bytes::BytesMut::new();
        kafka_protocol::protocol::Encodable::encode(&v0, &mut out, 0).expect("v0 encodes");
    }

    #[test]
    fn v0_is_forwarded_as_v1_and_answered_without_the_top_level_code() {
        use kafka_protocol::messages::{RequestHeader, ResponseKind};
        let header = RequestHeader::default().with_request_api_version(0).with_correlation_id(9);
        let v1 = as_v1(header.clone());
        assert_eq!((v1.request_api_version, v1.correlation_id), (1, 9));
        // What the broker's forwarding answers a v1 request with a null list
        // when no controller took it: the top-level code alone.
        let not_controller = ElectLeadersResponse::default().with_error_code(ResponseError::NotController.code());
        assert!(crate::api::forwarding::says_not_controller(&ResponseKind::ElectLeaders(not_controller.clone())));
        let ResponseKind::ElectLeaders(v0) = for_v0(ResponseKind::ElectLeaders(not_controller)) else {
            panic!("an ElectLeaders answer");
        };
        assert_eq!(v0.error_code, 0);
        let mut out = bytes::BytesMut::new();
        kafka_protocol::protocol::Encodable::encode(&v0, &mut out, 0).expect("v0 encodes");
        // The request itself: v0's body is v1's with PREFERRED.
        let req = request(0, None);
        let mut at_v1 = bytes::BytesMut::new();
        kafka_protocol::protocol::Encodable::encode(&req, &mut at_v1, 1).expect("v1");
        let decoded: ElectLeadersRequest =
            kafka_protocol::protocol::Decodable::decode(&mut at_v1.freeze(), 1).expect("decodes");
        assert_eq!((decoded.election_type, decoded.topic_partitions), (0, None), "PREFERRED, every partition");
    }
}
