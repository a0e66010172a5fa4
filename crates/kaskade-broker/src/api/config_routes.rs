//! The routes of AlterConfigs, IncrementalAlterConfigs and DescribeConfigs
//! in a cluster (the decisions are in `api::configs`).
//!
//! On a broker listener the changes go to the active controller
//! (`api::forwarding`) after Kafka's `ConfigAdminManager.preprocess`: a
//! broker resource naming another broker than this one is answered here
//! with INVALID_REQUEST ("Unexpected broker id ..."), the other resources
//! are forwarded in one request, and the answers are merged back in the
//! request's order (nothing is forwarded when nothing is left). On the
//! controller listener the active controller decides the changes;
//! DescribeConfigs is answered by any controller from its committed image
//! (KIP-919's `kafka-configs --bootstrap-controller`).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    alter_configs_response::AlterConfigsResourceResponse as AlterResult,
    incremental_alter_configs_response::AlterConfigsResourceResponse as IncrementalResult, AlterConfigsResponse,
    IncrementalAlterConfigsResponse, RequestHeader, RequestKind, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;

use super::configs::{alter_route, broker_resource, describe_route, incremental_route, BROKER};
use super::forwarding::{self, Forward};
use crate::broker::Broker;
use crate::error::BrokerError;
use crate::router::HandlerFuture;

/// Splits `resources` into those to forward and the (index, message) of
/// broker resources naming another broker than this one.
fn preprocess<R>(broker: &Broker, resources: Vec<R>, of: impl Fn(&R) -> (i8, &str)) -> (Vec<R>, Vec<(usize, String)>) {
    let mut forwarded = Vec::new();
    let mut refused = Vec::new();
    for (i, resource) in resources.into_iter().enumerate() {
        let (kind, name) = of(&resource);
        match broker_resource(broker, name) {
            Err(message) if kind == BROKER => refused.push((i, message)),
            _ => forwarded.push(resource),
        }
    }
    (forwarded, refused)
}

/// The forwarded answers with the refused ones put back at their places.
fn merge<T>(forwarded: Vec<T>, refused: Vec<(usize, T)>) -> Vec<T> {
    let mut out = Vec::with_capacity(forwarded.len() + refused.len());
    let mut forwarded = forwarded.into_iter();
    let mut refused = refused.into_iter().peekable();
    loop {
        if let Some((_, r)) = refused.next_if(|(i, _)| *i == out.len()) {
            out.push(r);
        } else if let Some(f) = forwarded.next() {
            out.push(f);
        } else if let Some((_, r)) = refused.next() {
            out.push(r);
        } else {
            return out;
        }
    }
}

fn invalid(message: String) -> (i16, Option<StrBytes>) {
    (ResponseError::InvalidRequest.code(), Some(StrBytes::from_string(message)))
}

/// AlterConfigs on a broker listener.
pub fn alter(broker: Arc<Broker>, header: RequestHeader, body: RequestKind) -> HandlerFuture {
    let (Some(forward), RequestKind::AlterConfigs(mut req)) = (Forward::prepare(&broker), body.clone()) else {
        return alter_route::route(broker, header, body);
    };
    let all = std::mem::take(&mut req.resources);
    let names: Vec<(i8, StrBytes)> = all.iter().map(|r| (r.resource_type, r.resource_name.clone())).collect();
    let (kept, refused) = preprocess(&broker, all, |r| (r.resource_type, r.resource_name.as_str()));
    let refused: Vec<(usize, AlterResult)> = refused
        .into_iter()
        .map(|(i, message)| {
            let (code, message) = invalid(message);
            let (kind, name) = names[i].clone();
            let r = AlterResult::default().with_resource_type(kind).with_resource_name(name);
            (i, r.with_error_code(code).with_error_message(message))
        })
        .collect();
    req.resources = kept;
    crate::api::handler(async move {
        let forwarded = if req.resources.is_empty() {
            Vec::new()
        } else {
            match forward.send(&broker, header, RequestKind::AlterConfigs(req)).await? {
                ResponseKind::AlterConfigs(r) => r.responses,
                other => return Err(BrokerError::internal(format!("AlterConfigs answered with {other:?}"))),
            }
        };
        let responses = merge(forwarded, refused);
        Ok(ResponseKind::AlterConfigs(AlterConfigsResponse::default().with_responses(responses)))
    })
}

/// IncrementalAlterConfigs on a broker listener.
pub fn incremental(broker: Arc<Broker>, header: RequestHeader, body: RequestKind) -> HandlerFuture {
    let (Some(forward), RequestKind::IncrementalAlterConfigs(mut req)) = (Forward::prepare(&broker), body.clone())
    else {
        return incremental_route::route(broker, header, body);
    };
    let all = std::mem::take(&mut req.resources);
    let names: Vec<(i8, StrBytes)> = all.iter().map(|r| (r.resource_type, r.resource_name.clone())).collect();
    let (kept, refused) = preprocess(&broker, all, |r| (r.resource_type, r.resource_name.as_str()));
    let refused: Vec<(usize, IncrementalResult)> = refused
        .into_iter()
        .map(|(i, message)| {
            let (code, message) = invalid(message);
            let (kind, name) = names[i].clone();
            let r = IncrementalResult::default().with_resource_type(kind).with_resource_name(name);
            (i, r.with_error_code(code).with_error_message(message))
        })
        .collect();
    req.resources = kept;
    crate::api::handler(async move {
        let forwarded = if req.resources.is_empty() {
            Vec::new()
        } else {
            match forward.send(&broker, header, RequestKind::IncrementalAlterConfigs(req)).await? {
                ResponseKind::IncrementalAlterConfigs(r) => r.responses,
                other => return Err(BrokerError::internal(format!("IncrementalAlterConfigs answered with {other:?}"))),
            }
        };
        let responses = merge(forwarded, refused);
        Ok(ResponseKind::IncrementalAlterConfigs(IncrementalAlterConfigsResponse::default().with_responses(responses)))
    })
}

/// AlterConfigs on the controller listener.
pub fn alter_on_controller(broker: Arc<Broker>, header: RequestHeader, body: RequestKind) -> HandlerFuture {
    forwarding::on_controller(broker, header, body, alter_route::route)
}

/// IncrementalAlterConfigs on the controller listener.
pub fn incremental_on_controller(broker: Arc<Broker>, header: RequestHeader, body: RequestKind) -> HandlerFuture {
    forwarding::on_controller(broker, header, body, incremental_route::route)
}

/// DescribeConfigs on the controller listener.
pub fn describe_on_controller(broker: Arc<Broker>, header: RequestHeader, body: RequestKind) -> HandlerFuture {
    forwarding::read_on_controller(broker, header, body, describe_route::route)
}

#[cfg(test)]
mod tests {
    use super::merge;

    #[test]
    fn refused_answers_keep_their_places() {
        assert_eq!(merge(vec!["b", "d"], vec![(0, "a"), (2, "c")]), ["a", "b", "c", "d"]);
        assert_eq!(merge(vec!["a", "b"], vec![(2, "c"), (3, "d")]), ["a", "b", "c", "d"]);
        assert_eq!(merge(Vec::<&str>::new(), vec![(0, "a")]), ["a"]);
        assert_eq!(merge(vec!["a"], Vec::new()), ["a"]);
    }
}
