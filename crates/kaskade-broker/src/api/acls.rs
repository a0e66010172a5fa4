//! DescribeAcls, CreateAcls and DeleteAcls (keys 29-31) on a broker with no
//! authorizer: Kafka answers each with SECURITY_DISABLED and its own
//! messages, so tools and UIs say "security is off" instead of failing on a
//! closed connection. An authorizer will replace these answers.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::DeleteAclsFilterResult;
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse, DescribeAclsRequest,
    DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::error::BrokerError;

/// Kafka's message for DescribeAcls without an authorizer.
const DESCRIBE_DISABLED: &str = "No Authorizer is configured on the broker";
/// Kafka's message for CreateAcls and DeleteAcls without an authorizer.
const CHANGE_DISABLED: &str = "No Authorizer is configured.";

pub async fn describe(
    _broker: &Arc<Broker>,
    _version: i16,
    _req: DescribeAclsRequest,
) -> Result<DescribeAclsResponse, BrokerError> {
    let mut resp = DescribeAclsResponse::default();
    resp.error_code = ResponseError::SecurityDisabled.code();
    resp.error_message = Some(StrBytes::from_static_str(DESCRIBE_DISABLED));
    Ok(resp)
}

pub async fn create(
    _broker: &Arc<Broker>,
    _version: i16,
    req: CreateAclsRequest,
) -> Result<CreateAclsResponse, BrokerError> {
    let mut resp = CreateAclsResponse::default();
    resp.results = req
        .creations
        .iter()
        .map(|_| {
            let mut r = AclCreationResult::default();
            r.error_code = ResponseError::SecurityDisabled.code();
            r.error_message = Some(StrBytes::from_static_str(CHANGE_DISABLED));
            r
        })
        .collect();
    Ok(resp)
}

pub async fn delete(
    _broker: &Arc<Broker>,
    _version: i16,
    req: DeleteAclsRequest,
) -> Result<DeleteAclsResponse, BrokerError> {
    let mut resp = DeleteAclsResponse::default();
    resp.filter_results = req
        .filters
        .iter()
        .map(|_| {
            let mut r = DeleteAclsFilterResult::default();
            r.error_code = ResponseError::SecurityDisabled.code();
            r.error_message = Some(StrBytes::from_static_str(CHANGE_DISABLED));
            r
        })
        .collect();
    Ok(resp)
}

pub mod describe_route {
    crate::route_to!(DescribeAcls, super::describe);
}
pub mod create_route {
    crate::route_to!(CreateAcls, super::create);
}
pub mod delete_route {
    crate::route_to!(DeleteAcls, super::delete);
}
