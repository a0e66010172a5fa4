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
pub mod allocate_producer_ids;
pub mod alter_partition;
pub mod alter_replica_log_dirs;
pub mod api_versions;
pub mod authorized_operations;
pub mod broker_heartbeat;
pub mod broker_registration;
pub mod config_routes;
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
pub mod envelope;
pub mod features;
pub mod fetch;
pub mod fetch_session;
pub mod find_coordinator;
pub mod forwarding;
pub mod heartbeat;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_transactions;
pub mod metadata;
pub mod metadata_fetch;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod partition_reassignments;
pub mod produce;
pub mod raft_voters;
pub mod scram_credentials;
pub mod sync_group;
pub mod txn_offset_commit;
pub mod update_features;
pub mod update_raft_voter;
pub mod write_txn_markers;

tokio::task_local! {
    /// The client's address, set by the connection while a handler is
    /// started (read synchronously, by [`route_to!`]).
    pub static CLIENT_ADDR: std::net::SocketAddr;
}

tokio::task_local! {
    /// The name of the listener the request came in on, set with
    /// [`CLIENT_ADDR`].
    pub static CLIENT_LISTENER: std::sync::Arc<str>;
}

tokio::task_local! {
    /// Who sent the request being handled: set by [`route_to!`] for the
    /// whole life of the handler's future.
    static CALLER: Caller;
}

/// The sender of a request, as group membership records it.
#[derive(Clone, Debug, Default)]
pub struct Caller {
    /// The client's host as Kafka shows it ("/127.0.0.1"), or "".
    pub client_host: String,
    /// The request header's client id, or "".
    pub client_id: String,
    /// The listener the request came in on (`None` outside a connection).
    pub listener: Option<std::sync::Arc<str>>,
}

impl Caller {
    /// The caller of the request whose handler is being started.
    pub fn from_header(header: &kafka_protocol::messages::RequestHeader) -> Self {
        Caller {
            client_host: CLIENT_ADDR.try_with(|a| format!("/{}", a.ip())).unwrap_or_default(),
            client_id: header.client_id.as_ref().map(|s| s.to_string()).unwrap_or_default(),
            listener: CLIENT_LISTENER.try_with(std::sync::Arc::clone).ok(),
        }
    }

    /// The listener the request being handled came in on (`None` outside
    /// a handler started by a connection).
    pub fn listener() -> Option<std::sync::Arc<str>> {
        CALLER.try_with(|c| c.listener.clone()).ok().flatten()
    }

    /// The caller of the request being handled (empty outside a handler).
    pub fn current() -> Self {
        CALLER.try_with(Caller::clone).unwrap_or_default()
    }

    /// Runs `future` with `self` as the current caller.
    pub async fn scope<F: Future>(self, future: F) -> F::Output {
        CALLER.scope(self, future).await
    }
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

/// The one form of an API's route: `route_to!(EndTxn, handle);` defines the
/// module's `route` (what [`crate::router`]'s table names) for
///
/// ```ignore
/// async fn handle(broker: &Arc<Broker>, version: i16, request: EndTxnRequest)
///     -> Result<EndTxnResponse, BrokerError>
/// ```
///
/// An `Err` closes the connection (errors Kafka reports belong in the
/// response), except [`BrokerError::NoResponse`] (acks=0). The handler can
/// ask [`Caller::current`] who sent the request.
#[macro_export]
macro_rules! route_to {
    ($variant:ident, $handle:path) => {
        pub fn route(
            broker: ::std::sync::Arc<$crate::broker::Broker>,
            header: ::kafka_protocol::messages::RequestHeader,
            body: ::kafka_protocol::messages::RequestKind,
        ) -> $crate::router::HandlerFuture {
            let caller = $crate::api::Caller::from_header(&header);
            $crate::api::handler(caller.scope(async move {
                let request = $crate::request_body!(body, $variant)?;
                let response = $handle(&broker, header.request_api_version, request).await?;
                Ok(::kafka_protocol::messages::ResponseKind::$variant(response))
            }))
        }
    };
}

/// The `__consumer_offsets` partition that holds `group_id`'s offsets: what
/// a transaction adds (AddOffsetsToTxn) and must hold (TxnOffsetCommit).
pub fn offsets_partition_of(broker: &crate::broker::Broker, group_id: &str) -> kaskade_types::TopicPartition {
    use crate::group::records::{partition_for, OFFSETS_TOPIC};
    let partitions = broker
        .topics
        .image()
        .topic(OFFSETS_TOPIC)
        .map_or(broker.config.offsets_topic_num_partitions, |t| t.partitions.len() as i32);
    kaskade_types::TopicPartition::new(OFFSETS_TOPIC, partition_for(group_id, partitions))
}

/// The producer a transactional request names. Taken as sent: a -1 the
/// coordinator knows no producer by is INVALID_PRODUCER_ID_MAPPING there.
pub fn producer_of(id: kafka_protocol::messages::ProducerId, epoch: i16) -> kaskade_types::ProducerIdAndEpoch {
    kaskade_types::ProducerIdAndEpoch::new(kaskade_types::ProducerId(id.0), kaskade_types::ProducerEpoch(epoch))
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
