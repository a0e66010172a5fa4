//! SyncGroup (v0..v5): followers wait for the leader's assignment.

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::group;

pub async fn handle(broker: &Broker, _version: i16, req: SyncGroupRequest) -> Result<SyncGroupResponse, BrokerError> {
    let request = group::SyncRequest {
        group_id: req.group_id.0.to_string(),
        generation_id: req.generation_id,
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|s| s.to_string()),
        protocol_type: req.protocol_type.map(|s| s.to_string()),
        protocol_name: req.protocol_name.map(|s| s.to_string()),
        assignments: req.assignments.into_iter().map(|a| (a.member_id.to_string(), a.assignment)).collect(),
    };
    let r = broker.groups.sync(request).await?;
    let mut resp = SyncGroupResponse::default();
    resp.error_code = r.error.map_or(0, |e| e.code());
    resp.protocol_type = r.protocol_type.map(StrBytes::from_string);
    resp.protocol_name = r.protocol_name.map(StrBytes::from_string);
    resp.assignment = r.assignment;
    Ok(resp)
}

crate::route_to!(SyncGroup, handle);
