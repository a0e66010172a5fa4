//! BrokerHeartbeat (key 63), on the controller listener of a node of a
//! multi-node quorum: a registered broker's heartbeat to the active
//! controller (KRaft's `BrokerHeartbeatManager`, run by
//! `kaskade_meta::liveness`): its session moves on, and the answer says
//! whether it is caught up with the metadata log, fenced, and (after
//! `want_shut_down`) whether it may stop.
//!
//! The broker epoch must be the one its registration answered
//! (`broker_registration::broker_epoch` of the incarnation the image
//! holds for the id), else STALE_BROKER_EPOCH, as for an id that never
//! registered; NOT_CONTROLLER from a controller that is not the active one.
//!
//! `offline_log_dirs` (v1): a Kaskade broker has one log directory, so a
//! heartbeat naming any offline directory says every replica it holds is
//! offline. The controller then fences it as for `want_fence` (its
//! leaderships move to other ISR members, it leaves the ISRs it is not the
//! last member of) and keeps it fenced while the heartbeats name one, as
//! KRaft moves the partitions of an offline directory off the broker.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{BrokerHeartbeatRequest, BrokerHeartbeatResponse};

use kaskade_meta::quorum::{BrokerAnswer, BrokerCall};
use kaskade_meta::{MetadataLog, QuorumMetadataLog, Uuid};
use kaskade_types::NodeId;

use super::broker_registration::{broker_epoch, refusal_code};
use crate::broker::Broker;
use crate::error::BrokerError;

pub async fn handle(
    broker: &Arc<Broker>,
    _version: i16,
    req: BrokerHeartbeatRequest,
) -> Result<BrokerHeartbeatResponse, BrokerError> {
    Ok(match broker.quorum() {
        Some(quorum) => heartbeat(quorum, req).await,
        None => refused(ResponseError::NotController),
    })
}

crate::route_to!(BrokerHeartbeat, handle);

/// Kafka's answer to a refused heartbeat (fenced, as its defaults say).
fn refused(code: ResponseError) -> BrokerHeartbeatResponse {
    BrokerHeartbeatResponse::default().with_error_code(code.code()).with_is_fenced(true)
}

/// The active controller's answer to `req` (see the module docs).
pub async fn heartbeat(quorum: &QuorumMetadataLog, req: BrokerHeartbeatRequest) -> BrokerHeartbeatResponse {
    let node = NodeId(req.broker_id.0);
    // An epoch no registration of the id has is stale: the nil incarnation
    // is never registered, so the liveness machine refuses it (after the
    // active-controller check, so a non-active controller says NOT_CONTROLLER).
    let incarnation = quorum
        .committed()
        .image
        .brokers()
        .get(&node)
        .map(|b| b.incarnation_id)
        .filter(|i| broker_epoch(*i) == req.broker_epoch)
        .unwrap_or(Uuid::nil());
    let call = BrokerCall::Heartbeat {
        node_id: node.get(),
        incarnation_id: incarnation,
        metadata_offset: req.current_metadata_offset,
        want_fence: req.want_fence || !req.offline_log_dirs.is_empty(),
        want_shut_down: req.want_shut_down,
    };
    match quorum.handle_broker_call(call).await {
        Ok(BrokerAnswer::Heartbeat(a)) => BrokerHeartbeatResponse::default()
            .with_is_caught_up(a.is_caught_up)
            .with_is_fenced(a.is_fenced)
            .with_should_shut_down(a.should_shut_down),
        Ok(BrokerAnswer::Registered) => refused(ResponseError::UnknownServerError),
        Err(e) => refused(refusal_code(&e)),
    }
}
