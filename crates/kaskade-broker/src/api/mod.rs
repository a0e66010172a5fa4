//! One module per Kafka API family. Each exposes
//! `pub fn route(broker, header, body) -> HandlerFuture`, registered with one
//! line in [`crate::router`]'s table.

use std::future::Future;

use kafka_protocol::messages::ResponseKind;

use crate::error::BrokerError;
use crate::router::HandlerFuture;

pub mod acls;
pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_replica_log_dirs;
pub mod api_versions;
pub mod authorized_operations;
pub mod configs;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_quorum;
pub mod describe_topic_partitions;
pub mod describe_transactions;
pub mod elect_leaders;
pub mod end_txn;
pub mod fetch;
pub mod fetch_session;
pub mod find_coordinator;
pub mod heartbeat;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod partition_reassignments;
pub mod produce;
pub mod scram_credentials;
pub mod sync_group;
pub mod txn_offset_commit;
pub mod write_txn_markers;

tokio::task_local! {
    /// The client's address, set while a handler is started (read it
    /// synchronously in `route`, before the handler's future runs).
    pub static CLIENT_ADDR: std::net::SocketAddr;
}

/// The client's host as Kafka shows it ("/127.0.0.1"), or "" outside a
/// connection.
pub fn client_host() -> String {
    CLIENT_ADDR.try_with(|a| format!("/{}", a.ip())).unwrap_or_default()
}

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

/// Defines a module's `route` for a handler
/// `async fn handle(broker: &Arc<Broker>, version: i16, request) -> Response`:
/// `route_to!(EndTxn, handle);`
#[macro_export]
macro_rules! route_to {
    ($variant:ident, $handle:path) => {
        pub fn route(
            broker: ::std::sync::Arc<$crate::broker::Broker>,
            header: ::kafka_protocol::messages::RequestHeader,
            body: ::kafka_protocol::messages::RequestKind,
        ) -> $crate::router::HandlerFuture {
            $crate::api::handler(async move {
                let request = $crate::request_body!(body, $variant)?;
                Ok(::kafka_protocol::messages::ResponseKind::$variant(
                    $handle(&broker, header.request_api_version, request).await,
                ))
            })
        }
    };
}

/// The `__consumer_offsets` partition that holds `group_id`'s offsets: what
/// a transaction adds (AddOffsetsToTxn) and must hold (TxnOffsetCommit).
pub fn offsets_partition_of(broker: &crate::broker::Broker, group_id: &str) -> (String, i32) {
    use crate::group::records::{partition_for, OFFSETS_TOPIC};
    let partitions = broker
        .topics
        .image()
        .topic(OFFSETS_TOPIC)
        .map_or(broker.config.offsets_topic_num_partitions, |t| t.partitions.len() as i32);
    (OFFSETS_TOPIC.to_string(), partition_for(group_id, partitions))
}

/// Kafka answers PRODUCER_FENCED only to request versions that know it
/// (KIP-588); older ones get INVALID_PRODUCER_EPOCH.
pub fn fenced_for(version: i16, since: i16, e: kafka_protocol::error::ResponseError) -> i16 {
    use kafka_protocol::error::ResponseError;
    if e == ResponseError::ProducerFenced && version < since {
        ResponseError::InvalidProducerEpoch.code()
    } else {
        e.code()
    }
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
