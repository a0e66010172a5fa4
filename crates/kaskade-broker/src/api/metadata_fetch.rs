//! Fetch (key 1) and FetchSnapshot (key 59) of `__cluster_metadata` on the
//! controller listener, for observers that begin their connection with
//! another request: Kafka's brokers (`NetworkClient`) send ApiVersions
//! first, so the quorum listener's sniff (which serves connections whose
//! first request is a Fetch itself, `kaskade_meta::quorum::metadata_serve`)
//! hands such a connection to the broker layer, and its fetches come here.
//! The answers are the same: this node's controller decides them
//! (`QuorumMetadataLog::answer_metadata_fetch`).
//!
//! A node that runs no controller of the quorum has no metadata log to
//! serve: the connection is closed, as Kafka closes one for an API its
//! listener does not serve.

use std::sync::Arc;

use kafka_protocol::messages::{FetchRequest, FetchResponse, FetchSnapshotRequest, FetchSnapshotResponse};
use kaskade_meta::quorum::metadata_serve::{FETCH_SNAPSHOT_VERSIONS, FETCH_VERSIONS};

use crate::broker::Broker;
use crate::error::BrokerError;

/// The Fetch versions the controller listener serves.
pub const FETCH_MIN: i16 = *FETCH_VERSIONS.start();
pub const FETCH_MAX: i16 = *FETCH_VERSIONS.end();
/// The FetchSnapshot versions the controller listener serves.
pub const SNAPSHOT_MIN: i16 = *FETCH_SNAPSHOT_VERSIONS.start();
pub const SNAPSHOT_MAX: i16 = *FETCH_SNAPSHOT_VERSIONS.end();

fn no_quorum() -> BrokerError {
    BrokerError::close("this node runs no controller: no metadata log to fetch")
}

pub async fn fetch(broker: &Arc<Broker>, _version: i16, req: FetchRequest) -> Result<FetchResponse, BrokerError> {
    let log = broker.quorum().ok_or_else(no_quorum)?;
    Ok(log.answer_metadata_fetch(req).await)
}

pub async fn fetch_snapshot(
    broker: &Arc<Broker>,
    _version: i16,
    req: FetchSnapshotRequest,
) -> Result<FetchSnapshotResponse, BrokerError> {
    let log = broker.quorum().ok_or_else(no_quorum)?;
    Ok(log.answer_metadata_fetch_snapshot(req))
}

pub mod fetch_route {
    crate::route_to!(Fetch, super::fetch);
}

pub mod snapshot_route {
    crate::route_to!(FetchSnapshot, super::fetch_snapshot);
}
