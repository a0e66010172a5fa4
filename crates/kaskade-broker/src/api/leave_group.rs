//! LeaveGroup (v0..v5; a batch of members from v3).

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::group::{LeaveResponse, LeavingMember};

pub async fn handle(broker: &Broker, version: i16, req: LeaveGroupRequest) -> Result<LeaveGroupResponse, BrokerError> {
    let group_id = req.group_id.0.to_string();
    let members: Vec<LeavingMember> = if version >= 3 {
        req.members
            .into_iter()
            .map(|m| LeavingMember {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.map(|s| s.to_string()),
            })
            .collect()
    } else {
        vec![LeavingMember { member_id: req.member_id.to_string(), group_instance_id: None }]
    };
    let r = broker
        .groups
        .call_gated(move |engine, now, gate| match gate.check(&group_id) {
            Err(e) => LeaveResponse { error: Some(e), members: Vec::new() },
            Ok(()) => engine.leave(now, &group_id, &members),
        })
        .await?;
    let mut resp = LeaveGroupResponse::default();
    if version >= 3 {
        resp.error_code = r.error.map_or(0, |e| e.code());
        resp.members = r
            .members
            .into_iter()
            .map(|left| {
                let mut m = MemberResponse::default();
                m.member_id = StrBytes::from_string(left.member_id);
                m.group_instance_id = left.group_instance_id.map(StrBytes::from_string);
                m.error_code = left.error.map_or(0, |e| e.code());
                m
            })
            .collect();
    } else {
        // One member: its error is the response's.
        resp.error_code = r.error.or_else(|| r.members.first().and_then(|m| m.error)).map_or(0, |e| e.code());
    }
    Ok(resp)
}

crate::route_to!(LeaveGroup, handle);
