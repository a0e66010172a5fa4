//! ListGroups (v0..v5; states filter from v4, types filter from v5).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::error::BrokerError;

/// Every group here is a classic group.
const GROUP_TYPE: &str = "classic";

pub async fn handle(broker: &Broker, version: i16, req: ListGroupsRequest) -> Result<ListGroupsResponse, BrokerError> {
    let states: Vec<String> =
        if version >= 4 { req.states_filter.iter().map(|s| s.to_string()).collect() } else { Vec::new() };
    let types_ok = version < 5
        || req.types_filter.is_empty()
        || req.types_filter.iter().any(|t| t.as_str().eq_ignore_ascii_case(GROUP_TYPE));
    let mut resp = ListGroupsResponse::default();
    // No `__consumer_offsets`: no group exists, and this node leads none of
    // its partitions. Kafka creates the topic only for a FindCoordinator;
    // asking the coordinator here would create it (50 partitions) for a
    // read, as a monitoring tool polling ListGroups would.
    if !types_ok || broker.topics.image().topic(crate::group::records::OFFSETS_TOPIC).is_none() {
        return Ok(resp);
    }
    // While a partition loads, Kafka answers COORDINATOR_LOAD_IN_PROGRESS
    // with the groups of the loaded ones.
    let (loading, listed) = broker
        .groups
        .call_gated(move |engine, now, gate| (gate.any_loading(), engine.list_groups(now, &states)))
        .await?;
    if loading {
        resp.error_code = ResponseError::CoordinatorLoadInProgress.code();
    }
    for l in listed {
        let mut g = ListedGroup::default();
        g.group_id = GroupId(StrBytes::from_string(l.group_id));
        g.protocol_type = StrBytes::from_string(l.protocol_type);
        if version >= 4 {
            g.group_state = StrBytes::from_static_str(l.state);
        }
        if version >= 5 {
            g.group_type = StrBytes::from_static_str(GROUP_TYPE);
        }
        resp.groups.push(g);
    }
    Ok(resp)
}

crate::route_to!(ListGroups, handle);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::records::OFFSETS_TOPIC;

    #[tokio::test]
    async fn listing_groups_does_not_create_the_offsets_topic() {
        let broker = Broker::for_tests(crate::config::BrokerConfig::default(), crate::router::Router::default());
        let resp = handle(&broker, 4, ListGroupsRequest::default()).await.expect("answered");
        assert_eq!(resp.error_code, 0);
        assert!(resp.groups.is_empty());
        assert!(broker.topics.image().topic(OFFSETS_TOPIC).is_none(), "ListGroups created {OFFSETS_TOPIC}");
    }
}
