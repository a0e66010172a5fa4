//! DescribeGroups (v0..v6). Never creates `__consumer_offsets`: without
//! it no group exists, and each is described as Kafka describes an unknown
//! one (Dead; GROUP_ID_NOT_FOUND from v6).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use super::authorized_operations as ops;
use crate::broker::Broker;
use crate::error::BrokerError;
use crate::group::records::OFFSETS_TOPIC;

pub async fn handle(
    broker: &Broker,
    version: i16,
    req: DescribeGroupsRequest,
) -> Result<DescribeGroupsResponse, BrokerError> {
    let include_ops = req.include_authorized_operations;
    let ids: Vec<String> = req.groups.iter().map(|g| g.0.to_string()).collect();
    let described = if broker.topics.image().topic(OFFSETS_TOPIC).is_none() {
        // No `__consumer_offsets`: no group exists (as ListGroups answers).
        // Asking the coordinator would create the topic for a read.
        ids.into_iter().map(|id| (id, Ok(None))).collect()
    } else {
        broker
            .groups
            .call_gated(move |engine, now, gate| {
                ids.into_iter()
                    .map(|id| {
                        let described = gate.check(&id).map(|()| engine.describe_group(now, &id));
                        (id, described)
                    })
                    .collect::<Vec<_>>()
            })
            .await?
    };
    let mut resp = DescribeGroupsResponse::default();
    for (id, d) in described {
        let mut g = DescribedGroup::default();
        g.group_id = kafka_protocol::messages::GroupId(StrBytes::from_string(id));
        if version >= 3 {
            g.authorized_operations = ops::if_asked(include_ops, ops::GROUP);
        }
        match d {
            Err(e) => g.error_code = e.code(),
            Ok(None) => {
                // Kafka: Dead; an error from v6 on.
                g.group_state = StrBytes::from_static_str("Dead");
                if version >= 6 {
                    let e = ResponseError::GroupIdNotFound;
                    g.error_code = e.code();
                    g.error_message = Some(StrBytes::from_string(format!("Group {} not found.", g.group_id.0)));
                }
            }
            Ok(Some(d)) => {
                g.group_state = StrBytes::from_static_str(d.state);
                g.protocol_type = StrBytes::from_string(d.protocol_type);
                g.protocol_data = StrBytes::from_string(d.protocol);
                g.members = d
                    .members
                    .into_iter()
                    .map(|m| {
                        let mut dm = DescribedGroupMember::default();
                        dm.member_id = StrBytes::from_string(m.member_id);
                        if version >= 4 {
                            dm.group_instance_id = m.group_instance_id.map(StrBytes::from_string);
                        }
                        dm.client_id = StrBytes::from_string(m.client_id);
                        dm.client_host = StrBytes::from_string(m.client_host);
                        dm.member_metadata = m.metadata;
                        dm.member_assignment = m.assignment;
                        dm
                    })
                    .collect();
            }
        }
        resp.groups.push(g);
    }
    Ok(resp)
}

crate::route_to!(DescribeGroups, handle);

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::GroupId;

    #[tokio::test]
    async fn describing_groups_does_not_create_the_offsets_topic() {
        let broker = Broker::for_tests(crate::config::BrokerConfig::default(), crate::router::Router::default());
        let req = DescribeGroupsRequest::default().with_groups(vec![GroupId(StrBytes::from_static_str("g"))]);
        let resp = handle(&broker, 6, req.clone()).await.expect("answered");
        assert_eq!(resp.groups.len(), 1);
        assert_eq!(resp.groups[0].error_code, ResponseError::GroupIdNotFound.code());
        assert_eq!(resp.groups[0].group_state.as_str(), "Dead");
        let resp = handle(&broker, 5, req).await.expect("answered");
        assert_eq!((resp.groups[0].error_code, resp.groups[0].group_state.as_str()), (0, "Dead"));
        assert!(broker.topics.image().topic(OFFSETS_TOPIC).is_none(), "DescribeGroups created {OFFSETS_TOPIC}");
    }
}
