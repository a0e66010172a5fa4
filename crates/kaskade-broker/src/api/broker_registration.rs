//! BrokerRegistration (key 62), on the controller listener of a node of a
//! multi-node quorum: a broker process registers with the active
//! controller (KRaft's `ClusterControlManager.registerBroker`), fenced
//! until a heartbeat finds it caught up (`broker_heartbeat`).
//!
//! The answer is Kafka's: NOT_CONTROLLER from a controller that is not the
//! active one (the broker then asks another), INCONSISTENT_CLUSTER_ID for
//! another cluster's broker, DUPLICATE_BROKER_REGISTRATION while another
//! process with the id still heartbeats, INVALID_REQUEST for a listener
//! with an unknown security protocol, a nil incarnation id or a malformed
//! Kaskade process field;
//! else the broker epoch the heartbeats must carry.
//!
//! The broker epoch is [`broker_epoch`] of the registration's incarnation
//! id, not the offset of its record as in KRaft: the image keeps the
//! incarnation, so any controller that becomes active checks a heartbeat's
//! epoch against it without an offset the image does not store. Either
//! way the epoch is opaque to the broker, which echoes it.
//!
//! Kaskade's registration also carries the process's version and start
//! time (the console shows them) in a tagged field of its own,
//! [`PROCESS_TAG`]; Kafka ignores tagged fields it does not know, and a
//! registration without it (Kafka's brokers) registers without them.
//! Features are not checked: Kaskade finalizes none (`metadata.version`
//! and the rest are Kafka's alone), so no broker is refused for them.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{BrokerRegistrationRequest, BrokerRegistrationResponse};

use kaskade_meta::quorum::{BrokerAnswer, BrokerCall, BrokerRefusal};
use kaskade_meta::{BrokerEndpoint, BrokerProcess, QuorumMetadataLog, Uuid};

use crate::broker::Broker;
use crate::error::BrokerError;

/// The tagged field in which a Kaskade broker sends its process's version
/// and start time ([`process_field`]): far above the tags Kafka's schemas
/// use, and within the slack `network::frame`'s allocation guard allows a
/// tag number (a varint larger than the bytes left is refused there).
pub const PROCESS_TAG: i32 = 64;

/// The broker epoch of a registration of `incarnation`: 63 bits of it, so
/// never negative (-1 is Kafka's "none").
pub fn broker_epoch(incarnation: Uuid) -> i64 {
    let epoch = (incarnation.as_u128() >> 64) as i64 & i64::MAX;
    debug_assert!(epoch >= 0);
    epoch
}

/// Kafka's security protocol ids, as a registration's listeners carry them.
pub fn security_protocol_name(id: i16) -> Option<&'static str> {
    match id {
        0 => Some("PLAINTEXT"),
        1 => Some("SSL"),
        2 => Some("SASL_PLAINTEXT"),
        3 => Some("SASL_SSL"),
        _ => None,
    }
}

/// The id of a security protocol name (PLAINTEXT when unknown or absent:
/// what a registration of an earlier version stood for).
pub fn security_protocol_id(name: Option<&str>) -> i16 {
    match name {
        Some("SSL") => 1,
        Some("SASL_PLAINTEXT") => 2,
        Some("SASL_SSL") => 3,
        _ => 0,
    }
}

/// Kafka's code for a refused broker call.
pub fn refusal_code(refusal: &BrokerRefusal) -> ResponseError {
    match refusal {
        BrokerRefusal::NotController { .. } => ResponseError::NotController,
        BrokerRefusal::StaleBrokerEpoch => ResponseError::StaleBrokerEpoch,
        BrokerRefusal::DuplicateBrokerRegistration(_) => ResponseError::DuplicateBrokerRegistration,
        // The metadata log did not take the decision in time.
        BrokerRefusal::Unreachable(_) | BrokerRefusal::Failed(_) => ResponseError::RequestTimedOut,
    }
}

pub async fn handle(
    broker: &Arc<Broker>,
    _version: i16,
    req: BrokerRegistrationRequest,
) -> Result<BrokerRegistrationResponse, BrokerError> {
    Ok(match broker.quorum() {
        Some(quorum) => register(quorum, broker.cluster_id(), req).await,
        // Served only on a quorum's controller listener; a node without a
        // controller is never the active one.
        None => refused(ResponseError::NotController),
    })
}

crate::route_to!(BrokerRegistration, handle);

fn refused(code: ResponseError) -> BrokerRegistrationResponse {
    BrokerRegistrationResponse::default().with_error_code(code.code()).with_broker_epoch(-1)
}

/// The active controller's answer to `req` (see the module docs).
pub async fn register(
    quorum: &QuorumMetadataLog,
    cluster_id: &str,
    req: BrokerRegistrationRequest,
) -> BrokerRegistrationResponse {
    if req.cluster_id.as_str() != cluster_id {
        tracing::warn!(
            broker = req.broker_id.0,
            "refusing a registration: expected cluster ID {cluster_id}, but got cluster ID {}",
            req.cluster_id.as_str()
        );
        return refused(ResponseError::InconsistentClusterId);
    }
    // The nil incarnation stands for "no registration" in `broker_heartbeat`.
    if req.incarnation_id.is_nil() {
        return refused(ResponseError::InvalidRequest);
    }
    let mut endpoints = Vec::with_capacity(req.listeners.len());
    for l in &req.listeners {
        let Some(protocol) = security_protocol_name(l.security_protocol) else {
            return refused(ResponseError::InvalidRequest);
        };
        endpoints.push(BrokerEndpoint {
            listener: l.name.to_string(),
            host: l.host.to_string(),
            port: l.port,
            security_protocol: Some(protocol.to_string()),
        });
    }
    let process = match req.unknown_tagged_fields.get(&PROCESS_TAG) {
        None => None,
        Some(bytes) => match parse_process(bytes) {
            Some(p) => Some(p),
            None => return refused(ResponseError::InvalidRequest),
        },
    };
    let call = BrokerCall::Register {
        node_id: req.broker_id.0,
        incarnation_id: req.incarnation_id,
        endpoints,
        rack: req.rack.as_ref().map(|r| r.to_string()),
        process,
    };
    match quorum.handle_broker_call(call).await {
        Ok(BrokerAnswer::Registered) => {
            BrokerRegistrationResponse::default().with_broker_epoch(broker_epoch(req.incarnation_id))
        }
        Ok(BrokerAnswer::Heartbeat(_)) => refused(ResponseError::UnknownServerError),
        Err(e) => refused(refusal_code(&e)),
    }
}

/// The tagged field carrying `process` (see [`PROCESS_TAG`]): the start
/// time (i64, big endian), then the version (UTF-8, the rest).
pub fn process_field(process: &BrokerProcess) -> Bytes {
    let mut field = Vec::with_capacity(8 + process.version.len());
    field.extend_from_slice(&process.start_time_ms.to_be_bytes());
    field.extend_from_slice(process.version.as_bytes());
    Bytes::from(field)
}

/// The process a [`process_field`] carries; `None` if it is malformed.
pub fn parse_process(field: &[u8]) -> Option<BrokerProcess> {
    let (time, version) = field.split_first_chunk::<8>()?;
    let version = std::str::from_utf8(version).ok()?.to_string();
    Some(BrokerProcess { version, start_time_ms: i64::from_be_bytes(*time) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_are_never_negative_and_follow_the_incarnation() {
        let a = Uuid::from_u128(u128::MAX);
        assert_eq!(broker_epoch(a), i64::MAX);
        assert_eq!(broker_epoch(Uuid::nil()), 0);
        let b = Uuid::new_v4();
        assert_eq!(broker_epoch(b), broker_epoch(b));
    }

    #[test]
    fn the_process_field_round_trips_and_a_short_one_is_malformed() {
        let process = BrokerProcess { version: "1.2.3".into(), start_time_ms: 1_700_000_000_000 };
        assert_eq!(parse_process(&process_field(&process)), Some(process));
        assert_eq!(parse_process(&[0; 7]), None);
        assert_eq!(parse_process(&[0, 0, 0, 0, 0, 0, 0, 1, 0xff]), None, "not UTF-8");
    }

    #[test]
    fn security_protocols_round_trip() {
        for id in 0..4 {
            assert_eq!(security_protocol_id(security_protocol_name(id)), id);
        }
        assert_eq!(security_protocol_name(4), None);
        assert_eq!(security_protocol_id(None), 0);
    }
}
