//! ApiVersions (key 18), versions 0 to 4, answered from the route table.
//!
//! As Kafka 4 (`ApiVersionsResponse`, `KafkaApis.handleApiVersionsRequest`):
//! - a version the broker does not know gets error UNSUPPORTED_VERSION (35)
//!   encoded as version 0, with `api_keys` holding only ApiVersions' own
//!   range, so the client can retry at a version it shares (KIP-511); the
//!   network layer sets the response version to 0;
//! - v3+ with a client software name or version that does not match
//!   `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?` gets INVALID_REQUEST (42);
//! - v3+ carries the KIP-584 features: supported features from their minimum
//!   level (a feature whose maximum is 0 is left out; below v4, features
//!   whose minimum is 0 are left out, KAFKA-17011), finalized features
//!   without level-0 ones, and the finalized-features epoch.
//!
//! The features follow the client listener's routes: `metadata.version` is
//! always there; `kraft.version` 0..1 where the KRaft quorum APIs are
//! routed (DescribeQuorum): Kaskade's quorum runs with static voters (level
//! 0, `controller.quorum.voters`) and with KIP-853's dynamic membership
//! (level 1, `controller.quorum.bootstrap.servers`), finalized at the level
//! the configuration gives; `group.version` 1 (KIP-848) only when
//! ConsumerGroupHeartbeat is routed, `transaction.version` 2 (KIP-890) only
//! when Produce v12+ and EndTxn v5+ are, so a Kafka 4 client never enables
//! a protocol Kaskade lacks. Features Kaskade does not implement
//! (`eligible.leader.replicas.version`, `share.version`,
//! `streams.version`) are not advertised (DIFFERENCES.md). The controller
//! listener lists its own APIs but the same features: they are the
//! cluster's, as Kafka's controllers report them too
//! (`kafka-features --bootstrap-controller describe`).
//!
//! Tagged fields are written only when they differ from their defaults
//! (`kafka-protocol` does that; a unit test below checks the bytes), as
//! Kafka writes them: older librdkafka mis-parses default-valued ones.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::router::Router;

use super::features::Features;

/// The handler. The frame decoder hands it a default body when the
/// request's version is unsupported (KIP-511: answered as v0).
pub async fn handle(
    broker: &Arc<Broker>,
    version: i16,
    request: ApiVersionsRequest,
) -> Result<ApiVersionsResponse, BrokerError> {
    Ok(respond(broker, version, &request))
}

crate::route_to!(ApiVersions, handle);

/// ApiVersions on the controller listener of a multi-node quorum: the
/// controller's APIs only, as Kafka's controller lists its `CONTROLLER`
/// listener's APIs.
pub async fn handle_controller(
    broker: &Arc<Broker>,
    version: i16,
    request: ApiVersionsRequest,
) -> Result<ApiVersionsResponse, BrokerError> {
    Ok(respond_from(broker, &broker.controller_router, version, &request))
}

pub mod controller_route {
    crate::route_to!(ApiVersions, super::handle_controller);
}

/// The ApiVersions response to a request of `version`.
pub fn respond(broker: &Broker, version: i16, request: &ApiVersionsRequest) -> ApiVersionsResponse {
    respond_from(broker, &broker.router, version, request)
}

/// The ApiVersions response listing `router`'s APIs.
fn respond_from(broker: &Broker, router: &Router, version: i16, request: &ApiVersionsRequest) -> ApiVersionsResponse {
    if !router.supports(ApiKey::ApiVersions, version) {
        return unsupported_version(router);
    }
    if version >= 3
        && !(valid_software_id(&request.client_software_name) && valid_software_id(&request.client_software_version))
    {
        return ApiVersionsResponse::default().with_error_code(ResponseError::InvalidRequest.code());
    }
    let mut response = ApiVersionsResponse::default().with_api_keys(api_keys(router));
    if version >= 3 {
        let features = Features::of_cluster(broker);
        response = response
            .with_supported_features(features.supported(version))
            .with_finalized_features(features.finalized())
            .with_finalized_features_epoch(super::features::epoch(&broker.topics.image()));
    }
    response
}

/// The UNSUPPORTED_VERSION answer (to be encoded as v0): `api_keys` lists
/// ApiVersions only, as Kafka's `ApiVersionsRequest.getErrorResponse`.
pub fn unsupported_version(router: &Router) -> ApiVersionsResponse {
    let own = router
        .get(ApiKey::ApiVersions)
        .map(|r| {
            vec![ApiVersion::default()
                .with_api_key(ApiKey::ApiVersions as i16)
                .with_min_version(r.min_version)
                .with_max_version(r.max_version)]
        })
        .unwrap_or_default();
    ApiVersionsResponse::default().with_error_code(ResponseError::UnsupportedVersion.code()).with_api_keys(own)
}

/// Every routed API with its version range, by key.
pub fn api_keys(router: &Router) -> Vec<ApiVersion> {
    router
        .iter()
        .map(|r| {
            ApiVersion::default()
                .with_api_key(r.key as i16)
                .with_min_version(r.min_version)
                .with_max_version(r.max_version)
        })
        .collect()
}

/// Kafka's `SOFTWARE_NAME_VERSION_PATTERN`.
fn valid_software_id(s: &str) -> bool {
    let bytes = s.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && bytes.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::features::{METADATA_VERSION_LEVEL, METADATA_VERSION_MIN};
    use crate::api::handler;
    use crate::config::BrokerConfig;
    use crate::router::{HandlerFuture, Route, Router};
    use bytes::BytesMut;
    use kafka_protocol::messages::{RequestHeader, RequestKind};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn broker() -> Broker {
        Broker::for_tests(BrokerConfig::default(), crate::router::Router::default())
    }

    /// A broker routing only ApiVersions, for byte-exact encodings.
    fn api_versions_only() -> Broker {
        Broker::for_tests(BrokerConfig::default(), Router::new(&[Route::new(ApiKey::ApiVersions, 0, 4, route)]))
    }

    fn encode(r: &ApiVersionsResponse, version: i16) -> Vec<u8> {
        let mut buf = BytesMut::new();
        r.encode(&mut buf, version).unwrap();
        buf.to_vec()
    }

    fn request(name: &'static str, version: &'static str) -> ApiVersionsRequest {
        ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str(name))
            .with_client_software_version(StrBytes::from_static_str(version))
    }

    #[tokio::test]
    async fn a_controller_listener_lists_only_the_controller_apis() {
        let b = Arc::new(broker());
        let r = handle_controller(&b, 3, request("kafka-tools", "4.4.0")).await.expect("ApiVersions");
        assert_eq!(r.error_code, 0);
        let keys: Vec<i16> = r.api_keys.iter().map(|k| k.api_key).collect();
        let want = [
            ApiKey::ApiVersions as i16,
            ApiKey::DescribeQuorum as i16,
            ApiKey::DescribeCluster as i16,
            ApiKey::AddRaftVoter as i16,
            ApiKey::RemoveRaftVoter as i16,
            ApiKey::UpdateRaftVoter as i16,
        ];
        for key in want {
            assert!(keys.contains(&key), "{key} in {keys:?}");
        }
        assert!(!keys.contains(&(ApiKey::Produce as i16)), "{keys:?}");
        // An unknown version is answered as v0 listing ApiVersions only.
        let r = handle_controller(&b, 9, ApiVersionsRequest::default()).await.expect("ApiVersions");
        assert_eq!(r.error_code, ResponseError::UnsupportedVersion.code());
        assert_eq!(r.api_keys.len(), 1);
    }

    /// (name, min, max) supported and (name, level) finalized, at v4.
    type Advertised = (Vec<(String, i16, i16)>, Vec<(String, i16)>);

    fn advertised(r: &ApiVersionsResponse) -> Advertised {
        (
            r.supported_features.iter().map(|f| (f.name.to_string(), f.min_version, f.max_version)).collect(),
            r.finalized_features.iter().map(|f| (f.name.to_string(), f.max_version_level)).collect(),
        )
    }

    #[tokio::test]
    async fn both_listeners_advertise_the_same_features_and_kraft_version_follows_the_quorum() {
        let static_quorum = Arc::new(broker());
        let v4 = request("kafka-tools", "4.4.0");
        let client = respond(&static_quorum, 4, &v4);
        let controller = handle_controller(&static_quorum, 4, v4.clone()).await.expect("ApiVersions");
        assert_eq!(advertised(&client), advertised(&controller), "the cluster's features on both listeners");
        let (supported, finalized) = advertised(&client);
        assert!(supported.contains(&("kraft.version".into(), 0, 1)), "{supported:?}");
        assert!(supported.contains(&("metadata.version".into(), METADATA_VERSION_MIN, METADATA_VERSION_LEVEL)));
        assert!(!finalized.iter().any(|(n, _)| n == "kraft.version"), "level 0 is not finalized: {finalized:?}");
        for unimplemented in ["eligible.leader.replicas.version", "share.version", "streams.version"] {
            assert!(!supported.iter().any(|(n, _, _)| n == unimplemented), "{unimplemented} advertised");
        }
        // Every finalized level lies in its supported range.
        for (name, level) in &finalized {
            let (_, min, max) = supported.iter().find(|(n, _, _)| n == name).expect("finalized is supported");
            assert!((*min..=*max).contains(level), "{name} {level} outside {min}..={max}");
        }

        let mut config = BrokerConfig::default();
        config.kraft.standalone = true;
        let dynamic = Arc::new(Broker::for_tests(config, crate::router::Router::default()));
        let client = respond(&dynamic, 4, &v4);
        let controller = handle_controller(&dynamic, 4, v4).await.expect("ApiVersions");
        assert_eq!(advertised(&client), advertised(&controller));
        assert!(advertised(&client).1.contains(&("kraft.version".into(), 1)), "a dynamic quorum (KIP-853)");
    }

    #[test]
    fn lists_the_routes() {
        let b = broker();
        let r = respond(&b, 2, &ApiVersionsRequest::default());
        assert_eq!(r.error_code, 0);
        assert_eq!(r.api_keys.len(), b.router.iter().count());
        let own = r.api_keys.iter().find(|k| k.api_key == 18).unwrap();
        assert_eq!((own.min_version, own.max_version), (0, 4));
        assert!(r.supported_features.is_empty());
        assert_eq!(r.finalized_features_epoch, -1);
    }

    #[test]
    fn v0_bytes() {
        let b = api_versions_only();
        let r = respond(&b, 0, &ApiVersionsRequest::default());
        // error 0, array of one ApiVersion (18, 0, 4); no throttle in v0.
        assert_eq!(encode(&r, 0), vec![0, 0, 0, 0, 0, 1, 0, 18, 0, 0, 0, 4]);
    }

    #[test]
    fn unsupported_version_is_v0_with_own_range() {
        let b = broker();
        let r = respond(&b, 5, &ApiVersionsRequest::default());
        assert_eq!(r.error_code, 35);
        assert_eq!(encode(&r, 0), vec![0, 35, 0, 0, 0, 1, 0, 18, 0, 0, 0, 4]);
        let r = respond(&b, -1, &ApiVersionsRequest::default());
        assert_eq!(r.error_code, 35);
    }

    #[test]
    fn invalid_software_name_is_invalid_request() {
        let b = broker();
        let r = respond(&b, 3, &request("bad name!", "1.0"));
        assert_eq!(r.error_code, 42);
        assert!(r.api_keys.is_empty());
        let r = respond(&b, 3, &request("", "1.0"));
        assert_eq!(r.error_code, 42);
        let r = respond(&b, 3, &request("librdkafka", "2.3.0"));
        assert_eq!(r.error_code, 0);
        let r = respond(&b, 3, &request("confluent-kafka-python", "2.3.0-rdkafka-2.3.0"));
        assert_eq!(r.error_code, 0);
        // Not checked below v3 (the fields do not exist).
        assert_eq!(respond(&b, 2, &request("", "")).error_code, 0);
        assert!(valid_software_id("a"));
        assert!(!valid_software_id("-a"));
        assert!(!valid_software_id("a."));
    }

    #[test]
    fn v3_and_v4_features_bytes() {
        let b = api_versions_only();
        let r = respond(&b, 3, &request("kcat", "1.7.1"));
        let bytes = encode(&r, 3);
        // error_code, compact array of 1 (0x02) ApiVersion [18, 0, 4, no tags],
        // throttle_time_ms 0.
        let head = [0, 0, 2, 0, 18, 0, 0, 0, 4, 0, 0, 0, 0, 0];
        assert_eq!(&bytes[..head.len()], &head);
        let mut tail = vec![3u8]; // three tagged fields: 0, 1, 2 (no zk_migration_ready)
                                  // tag 0 supported_features: [metadata.version 7..25]
        let name = b"metadata.version";
        let feature_len = 1 + 1 + name.len() + 2 + 2 + 1;
        tail.extend([0, feature_len as u8, 2, name.len() as u8 + 1]);
        tail.extend(name);
        tail.extend([0, 7, 0, 25, 0]);
        // tag 1 finalized_features_epoch = 0 (an image of no record yet)
        tail.extend([1, 8, 0, 0, 0, 0, 0, 0, 0, 0]);
        // tag 2 finalized_features: [metadata.version max 25 min 25]
        tail.extend([2, feature_len as u8, 2, name.len() as u8 + 1]);
        tail.extend(name);
        tail.extend([0, 25, 0, 25, 0]);
        assert_eq!(&bytes[head.len()..], &tail[..]);
        // v4: the same here (no feature has a minimum of 0).
        assert_eq!(encode(&respond(&b, 4, &request("kcat", "1.7.1")), 4), bytes);
    }

    #[test]
    fn default_valued_tagged_fields_are_not_written() {
        // No features, epoch -1, zk_migration_ready false: the tagged-field
        // section is a single 0.
        let r = ApiVersionsResponse::default();
        assert_eq!(encode(&r, 3), vec![0, 0, 1, 0, 0, 0, 0, 0]);
        assert_eq!(encode(&r, 4), vec![0, 0, 1, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn features_follow_routes() {
        fn dummy(_: Arc<Broker>, _: RequestHeader, _: RequestKind) -> HandlerFuture {
            handler(async { Err(crate::error::BrokerError::internal("unused")) })
        }
        let router = Router::new(&[
            Route::new(ApiKey::ApiVersions, 0, 4, route),
            Route::new(ApiKey::ConsumerGroupHeartbeat, 0, 1, dummy),
            Route::new(ApiKey::Produce, 3, 12, dummy),
            Route::new(ApiKey::EndTxn, 0, 5, dummy),
        ]);
        let b = Broker::for_tests(BrokerConfig::default(), router);
        let v3 = respond(&b, 3, &request("x", "1"));
        let v4 = respond(&b, 4, &request("x", "1"));
        let names = |r: &ApiVersionsResponse| -> Vec<String> {
            r.supported_features.iter().map(|f| f.name.to_string()).collect()
        };
        // v3 hides features with a minimum of 0.
        assert_eq!(names(&v3), vec!["metadata.version"]);
        assert_eq!(names(&v4), vec!["metadata.version", "group.version", "transaction.version"]);
        let finalized: Vec<(String, i16)> =
            v4.finalized_features.iter().map(|f| (f.name.to_string(), f.max_version_level)).collect();
        assert_eq!(
            finalized,
            vec![
                ("metadata.version".to_string(), 25),
                ("group.version".to_string(), 1),
                ("transaction.version".to_string(), 2)
            ]
        );
        assert_eq!(v3.finalized_features.len(), 3);
        assert_eq!(v4.api_keys.len(), 4);
    }
}
