//! The console speaks Kafka to the broker it runs in.
//!
//! Every answer the console shows comes from a Kafka API (Metadata,
//! DescribeCluster, DescribeConfigs, ListOffsets, Fetch, Produce,
//! DescribeGroups, OffsetFetch, ListTransactions, ...) handled by the
//! broker's own route table, in process: no socket, no encoding, but the
//! same handlers, checks and error codes a client gets. Cluster-wide data
//! (brokers, topics, partitions, configs, groups) therefore comes from the
//! cluster metadata and the coordinators, not from this node's files, and in
//! a multi-node cluster the one place that must learn to forward a request
//! to another node (a partition's leader, a group's coordinator) is
//! [`Kafka::call`].
//!
//! Invariant: a request is sent at a version its route accepts; the route's
//! range is checked before the handler runs, as the network layer does.

use std::sync::Arc;

use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Request, StrBytes};
use kafka_protocol::ResponseError;
use kaskade_broker::{Broker, BrokerError};

use crate::error::ConsoleError;

/// The client id the broker sees for the console's requests.
const CLIENT_ID: &str = "kaskade-console";

/// A request the console can send, with the response variant it expects.
pub trait Exchange: Request + Into<RequestKind> {
    /// The response body, if `kind` is this request's response.
    fn response(kind: ResponseKind) -> Option<Self::Response>;
}

macro_rules! exchange {
    ($($variant:ident: $req:ty),* $(,)?) => {$(
        impl Exchange for $req {
            fn response(kind: ResponseKind) -> Option<Self::Response> {
                match kind {
                    ResponseKind::$variant(r) => Some(r),
                    _ => None,
                }
            }
        }
    )*};
}

exchange!(
    Metadata: MetadataRequest,
    DescribeCluster: DescribeClusterRequest,
    DescribeLogDirs: DescribeLogDirsRequest,
    CreateTopics: CreateTopicsRequest,
    DeleteTopics: DeleteTopicsRequest,
    DescribeConfigs: DescribeConfigsRequest,
    IncrementalAlterConfigs: IncrementalAlterConfigsRequest,
    ListOffsets: ListOffsetsRequest,
    Fetch: FetchRequest,
    Produce: ProduceRequest,
    ListGroups: ListGroupsRequest,
    DescribeGroups: DescribeGroupsRequest,
    OffsetFetch: OffsetFetchRequest,
    OffsetCommit: OffsetCommitRequest,
    ListTransactions: ListTransactionsRequest,
    DescribeTransactions: DescribeTransactionsRequest,
);

/// The broker, as the console's Kafka peer.
#[derive(Clone, Debug)]
pub struct Kafka {
    broker: Arc<Broker>,
}

impl Kafka {
    pub fn new(broker: Arc<Broker>) -> Self {
        Kafka { broker }
    }

    /// The broker (for facts no Kafka API carries: its start-up config).
    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// Sends `request` at `version` through the broker's route table.
    pub async fn call<R: Exchange>(&self, request: R, version: i16) -> Result<R::Response, ConsoleError> {
        let key = ApiKey::try_from(R::KEY)
            .map_err(|_| ConsoleError::Internal(format!("API key {} is not a Kafka API", R::KEY)))?;
        let route = self
            .broker
            .router
            .get(key)
            .filter(|r| (r.min_version..=r.max_version).contains(&version))
            .copied()
            .ok_or_else(|| ConsoleError::Internal(format!("the broker does not serve {key:?} v{version}")))?;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
        match (route.handler)(self.broker.clone(), header, request.into()).await {
            Ok(kind) => R::response(kind)
                .ok_or_else(|| ConsoleError::Internal(format!("{key:?} answered with another API's response"))),
            Err(BrokerError::Kafka { code, message }) => Err(ConsoleError::Kafka { code, message: Some(message) }),
            Err(e) => Err(ConsoleError::Internal(e.to_string())),
        }
    }
}

/// `Ok` for error code 0, else the Kafka error with the broker's message.
pub fn check(code: i16, message: Option<&StrBytes>) -> Result<(), ConsoleError> {
    match ResponseError::try_from_code(code) {
        None => Ok(()),
        Some(code) => Err(ConsoleError::Kafka { code, message: message.map(|m| m.to_string()) }),
    }
}

/// A `StrBytes` from a string.
pub fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}
