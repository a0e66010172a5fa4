//! JoinGroup (v0..v9), answered by the group coordinator when the join
//! phase ends.

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::group::{self, Protocol};

pub async fn handle(broker: &Broker, version: i16, req: JoinGroupRequest) -> Result<JoinGroupResponse, BrokerError> {
    let caller = super::Caller::current();
    let request = group::JoinRequest {
        group_id: req.group_id.0.to_string(),
        session_timeout_ms: req.session_timeout_ms,
        // v0 has no rebalance timeout: the session timeout bounds the join.
        rebalance_timeout_ms: if version == 0 { req.session_timeout_ms } else { req.rebalance_timeout_ms },
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|s| s.to_string()),
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .into_iter()
            .map(|p| Protocol { name: p.name.to_string(), metadata: p.metadata })
            .collect(),
        client_id: caller.client_id,
        client_host: caller.client_host,
        require_known_member_id: version >= 4,
    };
    let r = broker.groups.join(request).await?;
    let mut resp = JoinGroupResponse::default();
    resp.error_code = r.error.map_or(0, |e| e.code());
    resp.generation_id = r.generation_id;
    resp.protocol_type = r.protocol_type.map(StrBytes::from_string);
    // Not nullable before v7.
    resp.protocol_name = match r.protocol_name {
        Some(name) => Some(StrBytes::from_string(name)),
        None if version < 7 => Some(StrBytes::default()),
        None => None,
    };
    resp.leader = StrBytes::from_string(r.leader);
    resp.skip_assignment = r.skip_assignment && version >= 9;
    resp.member_id = StrBytes::from_string(r.member_id);
    resp.members = r
        .members
        .into_iter()
        .map(|m| {
            let mut member = JoinGroupResponseMember::default();
            member.member_id = StrBytes::from_string(m.member_id);
            member.group_instance_id = m.group_instance_id.map(StrBytes::from_string);
            member.metadata = m.metadata;
            member
        })
        .collect();
    Ok(resp)
}

crate::route_to!(JoinGroup, handle);
