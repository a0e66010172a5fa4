//! Envelope (API 58, KIP-590) on the controller listener: a broker's
//! forwarded admin request, carried out by the active controller as Kafka's
//! `ControllerApis` and `EnvelopeUtils` do.
//!
//! The envelope holds the request as the client encoded it (header and
//! body), the client's principal and its address. Checks, in Kafka's order
//! and with its codes in the EnvelopeResponse (the inner request is then
//! not run): the sender must be a broker (Kafka: CLUSTER_ACTION on the
//! cluster; Kaskade, which has no authorizer and no authentication yet,
//! takes a connection that introduced itself as a broker registered in
//! this controller's image, client id `kaskade-broker-<id>`:
//! CLUSTER_AUTHORIZATION_FAILED otherwise); the principal must deserialize
//! (PRINCIPAL_DESERIALIZATION_FAILURE); the client address must be 4 or 16
//! bytes and the API one the controller takes forwarded (INVALID_REQUEST);
//! the inner header and body must decode at a version the controller
//! serves (UNSUPPORTED_VERSION). The inner request then runs through the
//! controller's own route for its API (`api::forwarding::on_controller`:
//! NOT_CONTROLLER unless this controller is the active one), with the
//! client's address as its caller, and is counted in the request metrics
//! under its own API. A response naming NOT_CONTROLLER anywhere is answered
//! as an EnvelopeResponse NOT_CONTROLLER (Kafka's `buildResponseSend`), so
//! the broker asks the next controller; otherwise the encoded response
//! (header with the client's correlation id, body at the client's
//! version) and, in tagged field `forwarding::COMMITTED_OFFSET_TAG`, the
//! controller's committed metadata offset.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, LazyLock};

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, DefaultPrincipalData, EnvelopeRequest, EnvelopeResponse};
use kafka_protocol::protocol::Decodable;

use crate::api::forwarding;
use crate::broker::Broker;
use crate::error::BrokerError;
use crate::network::frame;
use crate::router::{Route, Router};

/// What the controller takes forwarded, at the versions its controller
/// listener serves them (the broker's ranges: one binary).
#[rustfmt::skip]
static FORWARDED: &[Route] = &[
    Route::new(ApiKey::CreateTopics, 2, 7, crate::api::create_topics::controller_route),
    Route::new(ApiKey::DeleteTopics, 1, 6, crate::api::delete_topics::controller_route),
    Route::new(ApiKey::AlterConfigs, 0, 2, crate::api::config_routes::alter_on_controller),
    Route::new(ApiKey::CreatePartitions, 0, 3, crate::api::create_partitions::controller_route),
    Route::new(ApiKey::ElectLeaders, 0, 2, crate::api::elect_leaders::controller_route),
    Route::new(ApiKey::IncrementalAlterConfigs, 0, 1, crate::api::config_routes::incremental_on_controller),
    Route::new(ApiKey::AlterPartitionReassignments, 0, 1, crate::api::partition_reassignments::forwarded::controller_route),
    Route::new(ApiKey::AlterUserScramCredentials, 0, 0, crate::api::scram_credentials::forwarded::controller_route),
    Route::new(ApiKey::UpdateFeatures, 0, 2, crate::api::update_features::controller_route),
    Route::new(ApiKey::AddRaftVoter, 0, 0, crate::api::raft_voters::add_route::route),
    Route::new(ApiKey::RemoveRaftVoter, 0, 0, crate::api::raft_voters::remove_route::route),
];

static FORWARDED_ROUTER: LazyLock<Router> = LazyLock::new(|| Router::new(FORWARDED));

/// The routes an Envelope may carry.
pub fn forwarded_routes() -> &'static [Route] {
    FORWARDED
}

fn refused(code: ResponseError) -> EnvelopeResponse {
    EnvelopeResponse::default().with_error_code(code.code())
}

/// The registered broker a connection introduced itself as, if any.
fn sending_broker(broker: &Broker, client_id: &str) -> Option<i32> {
    let id: i32 = client_id.strip_prefix(crate::inter_broker::CLIENT_ID_PREFIX)?.parse().ok()?;
    // The committed image: a controller-only node serves no other.
    let image = broker.topics.metadata().committed().image;
    image.brokers().contains_key(&kaskade_types::NodeId(id)).then_some(id)
}

/// Kafka's `DefaultKafkaPrincipalBuilder.deserialize`: a version, then
/// `DefaultPrincipalData` at it.
fn principal(bytes: Option<&Bytes>) -> Option<DefaultPrincipalData> {
    let mut bytes = bytes?.clone();
    let version = bytes.try_get_i16().ok()?;
    if version != 0 {
        return None;
    }
    DefaultPrincipalData::decode(&mut bytes, version).ok()
}

fn client_address(bytes: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return Some(IpAddr::V4(Ipv4Addr::from(v4)));
    }
    <[u8; 16]>::try_from(bytes).ok().map(|v6| IpAddr::V6(Ipv6Addr::from(v6)))
}

pub async fn handle(
    broker: &Arc<Broker>,
    _version: i16,
    req: EnvelopeRequest,
) -> Result<EnvelopeResponse, BrokerError> {
    let caller = crate::api::Caller::current();
    let Some(from) = sending_broker(broker, &caller.client_id) else {
        tracing::warn!(client = %caller.client_host, client_id = %caller.client_id,
            "refused an Envelope from a connection that is not a registered broker");
        return Ok(refused(ResponseError::ClusterAuthorizationFailed));
    };
    let Some(principal) = principal(req.request_principal.as_ref()) else {
        return Ok(refused(ResponseError::PrincipalDeserializationFailure));
    };
    let Some(client) = client_address(&req.client_host_address) else {
        return Ok(refused(ResponseError::InvalidRequest));
    };
    let data = req.request_data;
    let Some(raw_key) = data.get(..2).map(|k| i16::from_be_bytes([k[0], k[1]])) else {
        return Ok(refused(ResponseError::UnsupportedVersion));
    };
    let forwardable = ApiKey::try_from(raw_key).ok().filter(|k| FORWARDED_ROUTER.get(*k).is_some());
    let Some(api_key) = forwardable else {
        tracing::warn!(from, api = raw_key, "an Envelope carried an API that is not forwarded");
        return Ok(refused(ResponseError::InvalidRequest));
    };
    // Kafka: a header or body that does not parse is UNSUPPORTED_VERSION,
    // telling it apart from a malformed envelope.
    let inner = match frame::decode_request(&FORWARDED_ROUTER, data) {
        Ok(inner) => inner,
        Err(e) => {
            tracing::warn!(from, api = ?api_key, "a forwarded request does not decode: {e}");
            return Ok(refused(ResponseError::UnsupportedVersion));
        }
    };
    tracing::debug!(from, api = ?api_key, client = %client, principal = %principal.name.as_str(), "forwarded request");
    let (version, correlation_id) = (inner.header.request_api_version, inner.header.correlation_id);
    let listener = caller.listener.unwrap_or_else(|| Arc::from("CONTROLLER"));
    let began = std::time::Instant::now();
    let started = crate::api::CLIENT_ADDR.sync_scope(SocketAddr::new(client, 0), || {
        crate::api::CLIENT_LISTENER.sync_scope(listener, || (inner.handler)(broker.clone(), inner.header, inner.body))
    });
    let outcome = started.await;
    crate::metrics::requests::record(
        api_key,
        began.elapsed(),
        outcome.is_err(),
        outcome.as_ref().ok().map(crate::metrics::requests::Answer::Body),
    );
    let response = match outcome {
        Ok(response) => response,
        Err(e) => {
            tracing::warn!(from, api = ?api_key, "a forwarded request failed: {e}");
            return Ok(refused(ResponseError::UnknownServerError));
        }
    };
    if forwarding::says_not_controller(&response) {
        return Ok(refused(ResponseError::NotController));
    }
    let mut out = BytesMut::new();
    frame::encode_response(api_key, version, correlation_id, &response, &mut out)?;
    let mut data = out.freeze();
    data.advance(frame::SIZE_PREFIX_LEN);
    let committed = broker.topics.metadata().committed().version.end_offset;
    Ok(EnvelopeResponse::default()
        .with_response_data(Some(data))
        .with_unknown_tagged_field(forwarding::COMMITTED_OFFSET_TAG, Bytes::copy_from_slice(&committed.to_be_bytes())))
}

crate::route_to!(Envelope, handle);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_principals_decode_as_kafka_encodes_them() {
        assert_eq!(client_address(&[127, 0, 0, 1]), Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_eq!(client_address(&Ipv6Addr::LOCALHOST.octets()), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert_eq!(client_address(&[1, 2, 3]), None);
        assert_eq!(client_address(&[]), None);
        let p = principal(Some(&forwarding::anonymous_principal())).expect("decodes");
        assert_eq!(p.name.as_str(), "ANONYMOUS");
        assert!(principal(None).is_none());
        assert!(principal(Some(&Bytes::from_static(&[0, 1, 0xff]))).is_none(), "unknown version");
        assert!(principal(Some(&Bytes::from_static(&[0]))).is_none(), "cut short");
    }

    #[test]
    fn the_forwarded_routes_are_the_brokers_versions() {
        let brokers = Router::default();
        for route in forwarded_routes() {
            let theirs = brokers.get(route.key).expect("the broker routes it");
            assert_eq!(
                (route.min_version, route.max_version),
                (theirs.min_version, theirs.max_version),
                "{:?}",
                route.key
            );
        }
        assert_eq!(FORWARDED_ROUTER.iter().count(), 11);
    }
}
