//! One module per Kafka API family. Each exposes
//! `pub fn route(broker, header, body) -> HandlerFuture`, registered with one
//! line in [`crate::router`]'s table.

use std::future::Future;

use kafka_protocol::messages::ResponseKind;

use crate::error::BrokerError;
use crate::router::HandlerFuture;

pub mod api_versions;
pub mod configs;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_log_dirs;
pub mod describe_topic_partitions;
pub mod fetch;
pub mod fetch_session;
pub mod list_offsets;
pub mod metadata;
pub mod offset_for_leader_epoch;
pub mod produce;

/// Boxes a handler's body: `handler(async move { ... })`.
pub fn handler<F>(future: F) -> HandlerFuture
where
    F: Future<Output = Result<ResponseKind, BrokerError>> + Send + 'static,
{
    Box::pin(future)
}

/// Unwraps the request body a handler expects:
/// `let request = request_body!(body, Metadata)?;` gives the
/// `MetadataRequest`, or an internal error if the router sent another kind.
#[macro_export]
macro_rules! request_body {
    ($body:expr, $variant:ident) => {
        match $body {
            ::kafka_protocol::messages::RequestKind::$variant(request) => {
                ::std::result::Result::<_, $crate::error::BrokerError>::Ok(request)
            }
            other => ::std::result::Result::Err($crate::error::BrokerError::internal(format!(
                "the {} handler received a {:?} body",
                stringify!($variant),
                $crate::network::frame::request_api_key(&other)
            ))),
        }
    };
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest, RequestKind};

    #[test]
    fn request_body_unwraps_or_errs() {
        let body = RequestKind::ApiVersions(ApiVersionsRequest::default());
        let ok: Result<ApiVersionsRequest, _> = request_body!(body, ApiVersions);
        assert!(ok.is_ok());
        let body = RequestKind::Metadata(MetadataRequest::default());
        let err = request_body!(body, ApiVersions).unwrap_err();
        assert!(err.to_string().contains("Some(Metadata)"), "{err}");
    }
}
