//! Heartbeat (v0..v4).

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::group;

pub async fn handle(broker: &Broker, _version: i16, req: HeartbeatRequest) -> Result<HeartbeatResponse, BrokerError> {
    let request = group::HeartbeatRequest {
        group_id: req.group_id.0.to_string(),
        generation_id: req.generation_id,
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|s| s.to_string()),
    };
    let error = broker
        .groups
        .call_gated(move |engine, now, gate| match gate.check(&request.group_id) {
            Err(e) => Some(e),
            Ok(()) => engine.heartbeat(now, &request),
        })
        .await?;
    let mut resp = HeartbeatResponse::default();
    resp.error_code = error.map_or(0, |e| e.code());
    Ok(resp)
}

crate::route_to!(Heartbeat, handle);
