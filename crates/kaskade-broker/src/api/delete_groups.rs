//! DeleteGroups (v0..v2): only empty groups go (NON_EMPTY_GROUP otherwise),
//! answered once their tombstones are replicated (`group::deletes`).

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::group::records::partition_for;

pub async fn handle(
    broker: &Broker,
    _version: i16,
    req: DeleteGroupsRequest,
) -> Result<DeleteGroupsResponse, BrokerError> {
    let ids: Vec<String> = req.groups_names.iter().map(|g| g.0.to_string()).collect();
    let (errors, outcomes, partitions) = broker
        .groups
        .call_durable_by_partition(move |engine, now, gate| {
            // Groups not served here keep their error; the others are
            // deleted together.
            let served: Vec<String> = ids.iter().filter(|id| gate.check(id).is_ok()).cloned().collect();
            let mut deleted = engine.delete_groups(now, &served).into_iter();
            let errors: Vec<_> =
                ids.iter().map(|id| gate.check(id).err().or_else(|| deleted.next().flatten())).collect();
            ids.into_iter().zip(errors).collect::<Vec<_>>()
        })
        .await?;
    // A group whose tombstones were not replicated was not deleted: it
    // answers its partition's coordinator error (NOT_COORDINATOR,
    // COORDINATOR_NOT_AVAILABLE), as Kafka answers per group.
    let errors = errors.into_iter().map(|(id, error)| {
        let failed = outcomes.get(&partition_for(&id, partitions)).and_then(|o| o.as_ref().err());
        match (error, failed) {
            (None, Some(e)) => Some(e.response_error()),
            (error, _) => error,
        }
    });
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
