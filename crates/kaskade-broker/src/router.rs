//! The route table: API key -> version range -> handler.
//!
//! This is the single place that says which APIs and versions the broker
//! implements. The network layer rejects what is not in it (as Kafka does),
//! and ApiVersions answers from it, so what is advertised is what is
//! implemented.
//!
//! Adding an API is one line in [`ROUTES`]; its handler lives in
//! `api/<name>.rs` in one form:
//!
//! ```ignore
//! pub async fn handle(broker: &Arc<Broker>, version: i16, request: MetadataRequest)
//!     -> Result<MetadataResponse, BrokerError> { ... }
//!
//! crate::route_to!(Metadata, handle);
//! ```
//!
//! A handler runs with the request's version in `header.request_api_version`
//! and returns the response body; the network layer encodes it at that
//! version, in request order. Handlers are started in request order on the
//! connection's task (each handler future is first polled in the order the
//! requests arrived) and run to completion even if the client goes away.
//! Errors Kafka reports in a response belong in the response; an `Err`
//! closes the connection.

use std::sync::Arc;

use futures::future::BoxFuture;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseKind};

use crate::api;
use crate::broker::Broker;
use crate::error::BrokerError;

/// The future a handler returns.
pub type HandlerFuture = BoxFuture<'static, Result<ResponseKind, BrokerError>>;

/// A request handler.
pub type HandlerFn = fn(Arc<Broker>, RequestHeader, RequestKind) -> HandlerFuture;

/// One API in the route table.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    /// The API.
    pub key: ApiKey,
    /// The lowest version handled.
    pub min_version: i16,
    /// The highest version handled.
    pub max_version: i16,
    /// The handler.
    pub handler: HandlerFn,
}

impl Route {
    /// A route (usable in the `ROUTES` static).
    pub const fn new(key: ApiKey, min_version: i16, max_version: i16, handler: HandlerFn) -> Self {
        Route { key, min_version, max_version, handler }
    }
}

/// The routes of the broker. One line per API.
// One line per API: key, lowest and highest version, handler.
#[rustfmt::skip]
static ROUTES: &[Route] = &[
    Route::new(ApiKey::Produce, 3, 13, api::produce::route),
    Route::new(ApiKey::Fetch, 4, 17, api::fetch::route),
    Route::new(ApiKey::ListOffsets, 1, 10, api::list_offsets::route),
    Route::new(ApiKey::Metadata, 0, 13, api::metadata::route),
    Route::new(ApiKey::OffsetCommit, 2, 9, api::offset_commit::route),
    Route::new(ApiKey::OffsetFetch, 1, 9, api::offset_fetch::route),
    Route::new(ApiKey::FindCoordinator, 0, 6, api::find_coordinator::route),
    Route::new(ApiKey::JoinGroup, 0, 9, api::join_group::route),
    Route::new(ApiKey::Heartbeat, 0, 4, api::heartbeat::route),
    Route::new(ApiKey::LeaveGroup, 0, 5, api::leave_group::route),
    Route::new(ApiKey::SyncGroup, 0, 5, api::sync_group::route),
    Route::new(ApiKey::DescribeGroups, 0, 6, api::describe_groups::route),
    Route::new(ApiKey::ListGroups, 0, 5, api::list_groups::route),
    Route::new(ApiKey::ApiVersions, 0, 4, api::api_versions::route),
    Route::new(ApiKey::CreateTopics, 2, 7, api::create_topics::route),
    Route::new(ApiKey::DeleteTopics, 1, 6, api::delete_topics::route),
    Route::new(ApiKey::DeleteRecords, 0, 2, api::delete_records::route),
    Route::new(ApiKey::InitProducerId, 0, 5, api::init_producer_id::route),
    Route::new(ApiKey::OffsetForLeaderEpoch, 2, 4, api::offset_for_leader_epoch::route),
    Route::new(ApiKey::AddPartitionsToTxn, 0, 3, api::add_partitions_to_txn::route),
    Route::new(ApiKey::AddOffsetsToTxn, 0, 4, api::add_offsets_to_txn::route),
    Route::new(ApiKey::EndTxn, 0, 4, api::end_txn::route),
    Route::new(ApiKey::WriteTxnMarkers, 1, 1, api::write_txn_markers::route),
    Route::new(ApiKey::TxnOffsetCommit, 0, 4, api::txn_offset_commit::route),
    Route::new(ApiKey::DescribeAcls, 1, 3, api::acls::describe_route::route),
    Route::new(ApiKey::CreateAcls, 1, 3, api::acls::create_route::route),
    Route::new(ApiKey::DeleteAcls, 1, 3, api::acls::delete_route::route),
    Route::new(ApiKey::DescribeConfigs, 1, 4, api::configs::describe_route::route),
    Route::new(ApiKey::AlterConfigs, 0, 2, api::config_routes::alter),
    Route::new(ApiKey::AlterReplicaLogDirs, 1, 2, api::alter_replica_log_dirs::route),
    Route::new(ApiKey::DescribeLogDirs, 1, 4, api::describe_log_dirs::route),
    Route::new(ApiKey::CreatePartitions, 0, 3, api::create_partitions::route),
    Route::new(ApiKey::DeleteGroups, 0, 2, api::delete_groups::route),
    Route::new(ApiKey::ElectLeaders, 0, 2, api::elect_leaders::route),
    Route::new(ApiKey::IncrementalAlterConfigs, 0, 1, api::config_routes::incremental),
    Route::new(ApiKey::AlterPartitionReassignments, 0, 1, api::partition_reassignments::forwarded::route),
    Route::new(ApiKey::ListPartitionReassignments, 0, 0, api::partition_reassignments::list_route::route),
    Route::new(ApiKey::OffsetDelete, 0, 0, api::offset_delete::route),
    Route::new(ApiKey::DescribeUserScramCredentials, 0, 0, api::scram_credentials::describe_route::route),
    Route::new(ApiKey::AlterUserScramCredentials, 0, 0, api::scram_credentials::forwarded::route),
    Route::new(ApiKey::DescribeQuorum, 0, 2, api::describe_quorum::route),
    Route::new(ApiKey::DescribeCluster, 0, 2, api::describe_cluster::route),
    Route::new(ApiKey::DescribeProducers, 0, 0, api::describe_producers::route),
    Route::new(ApiKey::DescribeTransactions, 0, 0, api::describe_transactions::route),
    Route::new(ApiKey::ListTransactions, 0, 1, api::list_transactions::route),
    Route::new(ApiKey::DescribeTopicPartitions, 0, 0, api::describe_topic_partitions::route),
    Route::new(ApiKey::UpdateFeatures, 0, 2, api::update_features::route),
    // KIP-853: forwarded to the active controller (Kafka's brokers do too).
    Route::new(ApiKey::AddRaftVoter, 0, 0, api::raft_voters::forwarded::add),
    Route::new(ApiKey::RemoveRaftVoter, 0, 0, api::raft_voters::forwarded::remove),
];

/// The routes of a controller listener in a multi-node quorum (Kafka's
/// `ControllerApis` as `kafka-metadata-quorum --bootstrap-controller` and
/// the Admin client's `bootstrap.controllers` use it, KIP-919): ApiVersions
/// lists only these, DescribeCluster names the controllers, brokers
/// register and heartbeat; the topic and config changes Kafka's controller
/// takes (`kafka-configs --bootstrap-controller`), decided by the active
/// controller (NOT_CONTROLLER from another), and brokers' admin requests
/// forwarded in an Envelope (`api::forwarding`, `api::envelope`). Kafka's
/// controller serves more (the other controllers' Raft RPCs, which
/// Kaskade's controllers exchange in their own frames); a request for an
/// API not here closes the connection, as Kafka closes one for an API its
/// listener does not enable.
#[rustfmt::skip]
static CONTROLLER_ROUTES: &[Route] = &[
    // Observers of `__cluster_metadata` whose connection began with
    // ApiVersions (Kafka's brokers).
    Route::new(ApiKey::Fetch, api::metadata_fetch::FETCH_MIN, api::metadata_fetch::FETCH_MAX, api::metadata_fetch::fetch_route::route),
    Route::new(ApiKey::ApiVersions, 0, 4, api::api_versions::controller_route::route),
    Route::new(ApiKey::CreateTopics, 2, 7, api::create_topics::controller_route),
    Route::new(ApiKey::DeleteTopics, 1, 6, api::delete_topics::controller_route),
    Route::new(ApiKey::DescribeConfigs, 1, 4, api::config_routes::describe_on_controller),
    Route::new(ApiKey::AlterConfigs, 0, 2, api::config_routes::alter_on_controller),
    Route::new(ApiKey::CreatePartitions, 0, 3, api::create_partitions::controller_route),
    Route::new(ApiKey::ElectLeaders, 0, 2, api::elect_leaders::controller_route),
    Route::new(ApiKey::IncrementalAlterConfigs, 0, 1, api::config_routes::incremental_on_controller),
    Route::new(ApiKey::AlterPartitionReassignments, 0, 1, api::partition_reassignments::forwarded::controller_route),
    Route::new(ApiKey::AlterUserScramCredentials, 0, 0, api::scram_credentials::forwarded::controller_route),
    Route::new(ApiKey::UpdateFeatures, 0, 2, api::update_features::controller_route),
    Route::new(ApiKey::DescribeQuorum, 0, 2, api::describe_quorum::route),
    // A partition leader's ISR change (KRaft's AlterPartitionManager).
    Route::new(ApiKey::AlterPartition, 2, 3, api::alter_partition::route),
    // Admin requests brokers forward (KIP-590).
    Route::new(ApiKey::Envelope, 0, 0, api::envelope::route),
    Route::new(ApiKey::DescribeCluster, 0, 2, api::describe_cluster::controller_route::route),
    // Brokers' registrations and heartbeats to the active controller.
    Route::new(ApiKey::BrokerRegistration, 0, 4, api::broker_registration::route),
    Route::new(ApiKey::BrokerHeartbeat, 0, 1, api::broker_heartbeat::route),
    // Brokers' producer id blocks (KRaft's RPCProducerIdManager).
    Route::new(ApiKey::AllocateProducerIds, 0, 0, api::allocate_producer_ids::route),
    // KIP-853: kafka-metadata-quorum add-controller / remove-controller.
    Route::new(ApiKey::AddRaftVoter, 0, 0, api::raft_voters::add_route::route),
    Route::new(ApiKey::RemoveRaftVoter, 0, 0, api::raft_voters::remove_route::route),
    // KIP-853: a voter whose controller listener moved tells the leader.
    Route::new(ApiKey::UpdateRaftVoter, 0, 0, api::update_raft_voter::route),
    Route::new(ApiKey::FetchSnapshot, api::metadata_fetch::SNAPSHOT_MIN, api::metadata_fetch::SNAPSHOT_MAX, api::metadata_fetch::snapshot_route::route),
];

/// The broker's route table.
pub fn routes() -> &'static [Route] {
    ROUTES
}

/// The controller listener's route table (a node of a multi-node quorum).
pub fn controller_routes() -> &'static [Route] {
    CONTROLLER_ROUTES
}

/// The route table indexed by API key.
#[derive(Clone, Debug)]
pub struct Router {
    by_key: Vec<Option<Route>>,
}

impl Router {
    /// A router over `routes`.
    ///
    /// # Panics
    /// When an API is routed twice, or a version range is empty or outside
    /// what the protocol crate can decode: both are programming errors in the
    /// route table (unit-tested for [`routes()`]).
    pub fn new(routes: &[Route]) -> Self {
        let mut by_key: Vec<Option<Route>> = Vec::new();
        for route in routes {
            let valid = route.key.valid_versions();
            assert!(
                route.min_version <= route.max_version
                    && route.min_version >= valid.min
                    && route.max_version <= valid.max,
                "route {:?} v{}..=v{} is outside the decodable versions v{}..=v{}",
                route.key,
                route.min_version,
                route.max_version,
                valid.min,
                valid.max
            );
            let index = route.key as i16 as usize;
            if by_key.len() <= index {
                by_key.resize(index + 1, None);
            }
            assert!(by_key[index].is_none(), "{:?} is routed twice", route.key);
            by_key[index] = Some(*route);
        }
        Router { by_key }
    }

    /// The route of an API, if it is implemented.
    pub fn get(&self, key: ApiKey) -> Option<&Route> {
        self.by_key.get(key as i16 as usize).and_then(Option::as_ref)
    }

    /// Whether an API is implemented at this version.
    pub fn supports(&self, key: ApiKey, version: i16) -> bool {
        self.get(key).is_some_and(|r| (r.min_version..=r.max_version).contains(&version))
    }

    /// The highest implemented version of an API.
    pub fn max_version(&self, key: ApiKey) -> Option<i16> {
        self.get(key).map(|r| r.max_version)
    }

    /// Every route, by API key.
    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.by_key.iter().flatten()
    }
}

impl Default for Router {
    /// The broker's route table, [`routes()`].
    fn default() -> Self {
        Router::new(routes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_table_is_consistent() {
        // Panics on duplicates and out-of-range versions.
        let router = Router::default();
        assert_eq!(router.iter().count(), routes().len());
        let api_versions = router.get(ApiKey::ApiVersions).expect("ApiVersions is routed");
        assert_eq!((api_versions.min_version, api_versions.max_version), (0, 4));
        assert!(router.supports(ApiKey::ApiVersions, 3));
        assert!(!router.supports(ApiKey::ApiVersions, 5));
        // Sorted by key.
        let keys: Vec<i16> = router.iter().map(|r| r.key as i16).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }

    #[test]
    fn the_controller_routes_are_consistent_and_a_subset_of_kafkas_controller_apis() {
        let router = Router::new(controller_routes());
        let keys: Vec<ApiKey> = router.iter().map(|r| r.key).collect();
        assert_eq!(
            keys,
            [
                ApiKey::Fetch,
                ApiKey::ApiVersions,
                ApiKey::CreateTopics,
                ApiKey::DeleteTopics,
                ApiKey::DescribeConfigs,
                ApiKey::AlterConfigs,
                ApiKey::CreatePartitions,
                ApiKey::ElectLeaders,
                ApiKey::IncrementalAlterConfigs,
                ApiKey::AlterPartitionReassignments,
                ApiKey::AlterUserScramCredentials,
                ApiKey::DescribeQuorum,
                ApiKey::AlterPartition,
                ApiKey::UpdateFeatures,
                ApiKey::Envelope,
                ApiKey::FetchSnapshot,
                ApiKey::DescribeCluster,
                ApiKey::BrokerRegistration,
                ApiKey::BrokerHeartbeat,
                ApiKey::AllocateProducerIds,
                ApiKey::AddRaftVoter,
                ApiKey::RemoveRaftVoter,
                ApiKey::UpdateRaftVoter
            ]
        );
        assert!(router.get(ApiKey::Produce).is_none() && router.get(ApiKey::Metadata).is_none());
    }

    #[test]
    #[should_panic(expected = "routed twice")]
    fn duplicate_routes_panic() {
        Router::new(&[
            Route::new(ApiKey::ApiVersions, 0, 4, api::api_versions::route),
            Route::new(ApiKey::ApiVersions, 0, 3, api::api_versions::route),
        ]);
    }

    #[test]
    #[should_panic(expected = "outside the decodable versions")]
    fn undecodable_versions_panic() {
        Router::new(&[Route::new(ApiKey::ApiVersions, 0, 5, api::api_versions::route)]);
    }
}
