//! DeleteGroups (v0..v2): only empty groups go (NON_EMPTY_GROUP otherwise).

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use crate::broker::Broker;
use crate::error::BrokerError;

pub async fn handle(
    broker: &Broker,
    _version: i16,
    req: DeleteGroupsRequest,
) -> Result<DeleteGroupsResponse, BrokerError> {
    let ids: Vec<String> = req.groups_names.iter().map(|g| g.0.to_string()).collect();
    let errors = broker.groups.call_durable(move |engine, now| engine.delete_groups(now, &ids)).await?;
    let mut resp = DeleteGroupsResponse::default();
    for (id, error) in req.groups_names.into_iter().zip(errors) {
        let mut r = DeletableGroupResult::default();
        r.group_id = id;
        r.error_code = error.map_or(0, |e| e.code());
        resp.results.push(r);
    }
    Ok(resp)
}

crate::route_to!(DeleteGroups, handle);
