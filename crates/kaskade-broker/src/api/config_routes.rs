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
    alter_configs_request, alter_configs_response::AlterConfigsResourceResponse as AlterResult,
    incremental_alter_configs_request,
    incremental_alter_configs_response::AlterConfigsResourceResponse as IncrementalResult, AlterConfigsRequest,
    AlterConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, RequestHeader, RequestKind,
    ResponseKind,
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

/// What AlterConfigs and IncrementalAlterConfigs share on a broker
/// listener: resources split by `preprocess`, answers merged back.
trait ConfigChange: Sized + Send + 'static {
    type Resource: Send;
    type Result: Send;
    const API: &'static str;
    fn of(body: RequestKind) -> Option<Self>;
    fn resources(&mut self) -> &mut Vec<Self::Resource>;
    fn named(resource: &Self::Resource) -> (i8, &str);
    fn refused(kind: i8, name: StrBytes, code: i16, message: Option<StrBytes>) -> Self::Result;
    fn into_request(self) -> RequestKind;
    fn results(answer: ResponseKind) -> Option<Vec<Self::Result>>;
    fn response(results: Vec<Self::Result>) -> ResponseKind;
}

/// `ConfigChange` for one of the two APIs, whose messages differ only by
/// their types.
macro_rules! config_change {
    ($request:ident, $variant:ident, $resource:ty, $result:ty, $response:ident) => {
        impl ConfigChange for $request {
            type Resource = $resource;
            type Result = $result;
            const API: &'static str = stringify!($variant);
            fn of(body: RequestKind) -> Option<Self> {
                match body {
                    RequestKind::$variant(r) => Some(r),
                    _ => None,
                }
            }
            fn resources(&mut self) -> &mut Vec<Self::Resource> {
                &mut self.resources
            }
            fn named(r: &Self::Resource) -> (i8, &str) {
                (r.resource_type, r.resource_name.as_str())
            }
            fn refused(kind: i8, name: StrBytes, code: i16, message: Option<StrBytes>) -> $result {
                <$result>::default()
                    .with_resource_type(kind)
                    .with_resource_name(name)
                    .with_error_code(code)
                    .with_error_message(message)
            }
            fn into_request(self) -> RequestKind {
                RequestKind::$variant(self)
            }
            fn results(answer: ResponseKind) -> Option<Vec<$result>> {
                match answer {
                    ResponseKind::$variant(r) => Some(r.responses),
                    _ => None,
                }
            }
            fn response(results: Vec<$result>) -> ResponseKind {
                ResponseKind::$variant($response::default().with_responses(results))
            }
        }
    };
}

config_change!(
    AlterConfigsRequest,
    AlterConfigs,
    alter_configs_request::AlterConfigsResource,
    AlterResult,
    AlterConfigsResponse
);
config_change!(
    IncrementalAlterConfigsRequest,
    IncrementalAlterConfigs,
    incremental_alter_configs_request::AlterConfigsResource,
    IncrementalResult,
    IncrementalAlterConfigsResponse
);

/// A config change on a broker listener: refused resources answered here,
/// the rest forwarded in one request (see the module docs).
fn forward_change<C: ConfigChange>(
    broker: Arc<Broker>,
    header: RequestHeader,
    body: RequestKind,
    decide: crate::router::HandlerFn,
) -> HandlerFuture {
    let (Some(forward), Some(mut req)) = (Forward::prepare(&broker), C::of(body.clone())) else {
        return decide(broker, header, body);
    };
    let all = std::mem::take(req.resources());
    let names: Vec<(i8, StrBytes)> =
        all.iter().map(|r| C::named(r)).map(|(kind, name)| (kind, StrBytes::from_string(name.to_string()))).collect();
    let (kept, refused) = preprocess(&broker, all, C::named);
    let refused: Vec<(usize, C::Result)> = refused
        .into_iter()
        .map(|(i, message)| {
            let (code, message) = invalid(message);
            let (kind, name) = names[i].clone();
            (i, C::refused(kind, name, code, message))
        })
        .collect();
    *req.resources() = kept;
    crate::api::handler(async move {
        let forwarded = if req.resources().is_empty() {
            Vec::new()
        } else {
            let answer = forward.send(&broker, header, req.into_request()).await?;
            C::results(answer).ok_or_else(|| BrokerError::internal(format!("{} answered with another API", C::API)))?
        };
        Ok(C::response(merge(forwarded, refused)))
    })
}

/// AlterConfigs on a broker listener.
pub fn alter(broker: Arc<Broker>, header: RequestHeader, body: RequestKind) -> HandlerFuture {
    forward_change::<AlterConfigsRequest>(broker, header, body, alter_route::route)
}

/// IncrementalAlterConfigs on a broker listener.
pub fn incremental(broker: Arc<Broker>, header: RequestHeader, body: RequestKind) -> HandlerFuture {
    forward_change::<IncrementalAlterConfigsRequest>(broker, header, body, incremental_route::route)
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
