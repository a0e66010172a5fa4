//! The console speaks Kafka to the broker it runs in.
//!
//! Every answer the console shows comes from a Kafka API (Metadata,
//! DescribeCluster, DescribeConfigs, ListOffsets, Fetch, Produce,
//! DescribeGroups, OffsetFetch, ListTransactions, ...) handled by the
//! broker's own route table, in process: no socket, no encoding, but the
//! same handlers, checks and error codes a client gets. Cluster-wide data
//! (brokers, topics, partitions, configs) therefore comes from the cluster
//! metadata, not from this node's files.
//!
//! What one broker answers for itself (a partition's leader: Produce,
//! Fetch, ListOffsets; a group's or transaction's coordinator; every broker
//! for DescribeLogDirs, ListGroups, ListTransactions) goes where a Kafka
//! client would send it: [`Kafka::call_on`] names the node, and a request
//! for another node travels over a Kafka connection to its registered
//! inter-broker endpoint, introduced as client `kaskade-console` (so the
//! other node treats it as a client, not as a broker). [`Kafka::leader`] and
//! [`Kafka::coordinator`] find the node, from Metadata and FindCoordinator.
//!
//! Invariant: a request is sent at a version its route accepts; the route's
//! range is checked before the handler runs, as the network layer does
//! (the other nodes run the same route table). A node that cannot be
//! reached is BROKER_NOT_AVAILABLE with what failed, never a hang: the
//! connection and every request are bounded by the inter-broker timeouts.

use std::sync::Arc;

use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Request, StrBytes};
use kafka_protocol::ResponseError;
use kaskade_broker::inter_broker::InterBroker;
use kaskade_broker::{Broker, BrokerError};
use kaskade_types::NodeId;

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
    FindCoordinator: FindCoordinatorRequest,
);

/// FindCoordinator's key types (Kafka's `CoordinatorType`).
pub const GROUP_COORDINATOR: i8 = 0;
pub const TRANSACTION_COORDINATOR: i8 = 1;

/// The broker, as the console's Kafka peer.
#[derive(Clone)]
pub struct Kafka {
    broker: Arc<Broker>,
    /// Connections to the other nodes, as client `kaskade-console`.
    others: Arc<InterBroker>,
}

impl std::fmt::Debug for Kafka {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kafka").field("node", &self.broker.node_id()).finish_non_exhaustive()
    }
}

impl Kafka {
    pub fn new(broker: Arc<Broker>) -> Self {
        let topics = broker.topics.clone();
        let others = Arc::new(InterBroker::new(
            Arc::new(move || topics.image()),
            broker.config.kraft.inter_broker_listener_name.clone(),
            CLIENT_ID,
        ));
        Kafka { broker, others }
    }

    /// The node the console runs in.
    pub fn node_id(&self) -> i32 {
        self.broker.node_id().get()
    }

    /// Sends `request` at `version` to node `node`: through the route table
    /// when it is this node, else over a connection to it.
    pub async fn call_on<R: Exchange>(&self, node: i32, request: R, version: i16) -> Result<R::Response, ConsoleError> {
        if node == self.broker.node_id().get() {
            return self.call(request, version).await;
        }
        let unavailable = |what: String| ConsoleError::Kafka {
            code: ResponseError::BrokerNotAvailable,
            message: Some(format!("broker {node} is not available: {what}")),
        };
        let conn = self.others.connection(NodeId(node)).await.map_err(|e| unavailable(e.to_string()))?;
        match conn.send(&request, version).await {
            Ok(r) => Ok(r),
            Err(e) => {
                // The next request connects again.
                self.others.disconnect(NodeId(node), &conn);
                Err(unavailable(e.to_string()))
            }
        }
    }

    /// The leader of `topic`'s `partition` (Metadata): UNKNOWN_TOPIC_OR_PARTITION
    /// when there is no such partition, LEADER_NOT_AVAILABLE when no replica
    /// leads it (offline).
    pub async fn leader(&self, topic: &str, partition: i32) -> Result<i32, ConsoleError> {
        let t = crate::view::topic(self, topic).await?;
        let p = t.partitions.iter().find(|p| p.partition == partition).ok_or_else(|| ConsoleError::Kafka {
            code: ResponseError::UnknownTopicOrPartition,
            message: Some(format!("topic '{topic}' has no partition {partition}")),
        })?;
        if p.leader < 0 {
            return Err(ConsoleError::Kafka {
                code: ResponseError::LeaderNotAvailable,
                message: Some(format!("partition {topic}-{partition} is offline: no live replica leads it")),
            });
        }
        Ok(p.leader)
    }

    /// The coordinator of group (`key_type` [`GROUP_COORDINATOR`]) or
    /// transactional id `key`, as FindCoordinator names it.
    pub async fn coordinator(&self, key: &str, key_type: i8) -> Result<i32, ConsoleError> {
        let req = FindCoordinatorRequest::default().with_key(sb(key)).with_key_type(key_type);
        let resp = self.call(req, 3).await?;
        check(resp.error_code, resp.error_message.as_ref())?;
        Ok(resp.node_id.0)
    }

    /// Sends a request made by `request` to every broker Metadata lists, at
    /// once; each broker's answer or error, by broker id.
    pub async fn call_on_every_broker<R: Exchange>(
        &self,
        request: impl Fn() -> R,
        version: i16,
    ) -> Result<Vec<(i32, Result<R::Response, ConsoleError>)>, ConsoleError> {
        let (brokers, _, _) = crate::view::metadata(self, Some(&[])).await?;
        let calls = brokers.iter().map(|b| {
            let req = request();
            async move { (b.id, self.call_on(b.id, req, version).await) }
        });
        Ok(futures::future::join_all(calls).await)
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

/// Of every broker's answer (see [`Kafka::call_on_every_broker`]), those
/// that answered with error code 0 (`code` reads it); a broker that failed
/// is left out, so one node down hides only its own share; if no broker
/// answered, the last failure (never an empty answer that looks true).
pub fn answered<T>(
    answers: Vec<(i32, Result<T, ConsoleError>)>,
    what: &str,
    code: impl Fn(&T) -> i16,
) -> Result<Vec<(i32, T)>, ConsoleError> {
    let mut out = Vec::new();
    let mut failed = None;
    for (broker, answer) in answers {
        match answer.and_then(|r| check(code(&r), None).map(|()| r)) {
            Ok(r) => out.push((broker, r)),
            Err(e) => {
                tracing::debug!(broker, error = %e, "{what} failed on a broker: its share is left out");
                failed = Some(e);
            }
        }
    }
    match failed {
        Some(e) if out.is_empty() => Err(e),
        _ => Ok(out),
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
