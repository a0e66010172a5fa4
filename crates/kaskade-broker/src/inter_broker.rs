//! Connections from this broker to the other brokers of the cluster, by
//! node id: what the transaction coordinator sends WriteTxnMarkers on (and
//! what any other broker-to-broker caller may share).
//!
//! A connection is opened lazily, on first use, to the endpoint the broker
//! registered (the metadata image's `RegisterBroker`), on the listener
//! named by `inter.broker.listener.name`, and speaks Kafka's protocol
//! through kaskade-client's `Connection` (ApiVersions first, pipelined
//! requests). Invariants: at most one connection per node is open at a
//! time (callers racing for a missing one wait for the first to connect);
//! a connection is replaced when it closed, when the caller reports it
//! failed ([`InterBroker::disconnect`]), or when the node registered again
//! (a new incarnation, perhaps on a new address); connecting and every
//! request are bounded by `ConnectionConfig`'s timeouts.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kaskade_client::connection::{Connection, ConnectionConfig};
use kaskade_client::ClientError;
use kaskade_meta::{BrokerEndpoint, BrokerRegistration, Image, Uuid};
use kaskade_types::NodeId;

/// Where the current metadata image comes from (`TopicManager::image`).
pub type ImageSource = Arc<dyn Fn() -> Arc<Image> + Send + Sync>;

/// Bound on connecting to another broker (TCP and ApiVersions).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on one request to another broker (Kafka's `request.timeout.ms`
/// default).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How every broker introduces itself to the others (then its node id):
/// a request with this client id came from a broker, not a client.
/// (A broker-only node's DescribeQuorum to the active controller uses it too.)
pub const CLIENT_ID_PREFIX: &str = kaskade_meta::quorum::types::BROKER_CLIENT_ID_PREFIX;

/// Why no connection to a broker could be had.
#[derive(Debug, thiserror::Error)]
pub enum InterBrokerError {
    /// The image has no registration for the node.
    #[error("broker {0} is not registered")]
    NotRegistered(NodeId),
    /// The registration names no endpoint at all.
    #[error("broker {0} registered no endpoint")]
    NoEndpoint(NodeId),
    /// Connecting (or the ApiVersions handshake) failed or timed out.
    #[error("connecting to broker {node}: {error}")]
    Connect { node: NodeId, error: ClientError },
}

/// The connection to one node, and which registration it was opened for.
#[derive(Default)]
struct Peer {
    incarnation: Option<Uuid>,
    conn: Option<Arc<Connection>>,
}

/// This broker's connections to the others.
pub struct InterBroker {
    image: ImageSource,
    /// `inter.broker.listener.name`.
    listener: String,
    config: ConnectionConfig,
    /// One slot per node; its async lock is held while connecting, so
    /// callers racing for a connection open one.
    peers: parking_lot::Mutex<HashMap<NodeId, Arc<tokio::sync::Mutex<Peer>>>>,
}

impl InterBroker {
    /// Connections on `listener` to the brokers `image` registers,
    /// introducing this node as `client_id`.
    pub fn new(image: ImageSource, listener: impl Into<String>, client_id: impl Into<String>) -> Self {
        let config = ConnectionConfig {
            client_id: client_id.into(),
            connect_timeout: CONNECT_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
        };
        InterBroker { image, listener: listener.into(), config, peers: parking_lot::Mutex::new(HashMap::new()) }
    }

    /// The connections of the broker running on `topics` with `config`.
    pub fn for_broker(topics: &Arc<crate::topic::TopicManager>, config: &crate::config::BrokerConfig) -> Self {
        let t = topics.clone();
        InterBroker::new(
            Arc::new(move || t.image()),
            config.kraft.inter_broker_listener_name.clone(),
            format!("{CLIENT_ID_PREFIX}{}", config.node_id),
        )
    }

    /// A connection to broker `node`, opened now if there is none, the one
    /// there is closed, or the node registered again since it was opened.
    pub async fn connection(&self, node: NodeId) -> Result<Arc<Connection>, InterBrokerError> {
        let image = (self.image)();
        let registration = image.brokers().get(&node).ok_or(InterBrokerError::NotRegistered(node))?;
        let endpoint = self.endpoint(registration).ok_or(InterBrokerError::NoEndpoint(node))?;
        let slot = self.peers.lock().entry(node).or_default().clone();
        let mut peer = slot.lock().await;
        if let Some(conn) = &peer.conn {
            if !conn.is_closed() && peer.incarnation == Some(registration.incarnation_id) {
                return Ok(conn.clone());
            }
        }
        peer.conn = None;
        let addr = format!("{}:{}", endpoint.host, endpoint.port);
        let conn = Connection::connect(&addr, self.config.clone())
            .await
            .map_err(|error| InterBrokerError::Connect { node, error })?;
        tracing::debug!(node = node.get(), %addr, "connected to broker");
        peer.incarnation = Some(registration.incarnation_id);
        peer.conn = Some(conn.clone());
        Ok(conn)
    }

    /// Drops `conn` as node `node`'s connection after a request on it
    /// failed (timed out, broke): the next caller connects again. A newer
    /// connection someone opened meanwhile is kept.
    pub fn disconnect(&self, node: NodeId, conn: &Arc<Connection>) {
        let Some(slot) = self.peers.lock().get(&node).cloned() else { return };
        // Not waiting: a connect in progress holds the slot and replaces
        // the connection anyway.
        if let Ok(mut peer) = slot.try_lock() {
            if peer.conn.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
                peer.conn = None;
            }
        };
    }

    fn endpoint<'a>(&self, registration: &'a BrokerRegistration) -> Option<&'a BrokerEndpoint> {
        endpoint(registration, &self.listener)
    }
}

/// `registration`'s endpoint on the inter-broker `listener`
/// (`inter.broker.listener.name`), the one place a broker picks how to
/// reach another (transaction markers, forwarded requests, replica
/// fetchers). A registration carries every advertised listener
/// (`cluster::Controller::register`); one written by an earlier version
/// carries only the first, which then stands for all.
pub fn endpoint<'a>(registration: &'a BrokerRegistration, listener: &str) -> Option<&'a BrokerEndpoint> {
    registration.endpoint(listener)
}

/// The active controller, when this node is another controller of a
/// multi-node quorum and the request came from a client, not a broker (a
/// broker's forwarded request is answered where it lands: no loops).
/// `None` on a lone node, on the active controller, or while none is known.
pub fn controller_to_ask(broker: &crate::broker::Broker) -> Option<NodeId> {
    let quorum = broker.quorum()?;
    if crate::api::Caller::current().client_id.starts_with(CLIENT_ID_PREFIX) {
        return None;
    }
    match quorum.status() {
        Err(kaskade_meta::MetaError::NotLeader { leader: Some(leader) }) if leader != broker.node_id() => Some(leader),
        _ => None,
    }
}

/// Sends `req` to `node` over its inter-broker connection, at `version` or
/// the highest `node` takes if lower, and waits up to `within`. A failed
/// connection is dropped, so the next call connects afresh.
pub async fn forward<R: kafka_protocol::protocol::Request>(
    broker: &crate::broker::Broker,
    node: NodeId,
    version: i16,
    req: &R,
    within: Duration,
) -> Result<R::Response, String> {
    let conn = broker.peers.connection(node).await.map_err(|e| e.to_string())?;
    let theirs = conn.version::<R>().map_err(|e| e.to_string())?;
    match tokio::time::timeout(within, conn.send(req, version.min(theirs))).await {
        Ok(Ok(resp)) => Ok(resp),
        failed => {
            broker.peers.disconnect(node, &conn);
            Err(match failed {
                Ok(Err(e)) => e.to_string(),
                _ => format!("no answer within {within:?}"),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::ApiVersionsRequest;
    use kaskade_meta::MetadataRecord;

    use super::*;
    use crate::config::BrokerConfig;
    use crate::network;
    use crate::router::Router;
    use crate::topic::TopicError;
    use crate::Broker;

    /// A broker served on an ephemeral loopback port, and its address.
    async fn serve() -> (Arc<Broker>, std::net::SocketAddr, network::ShutdownTrigger) {
        let config = BrokerConfig::from_overrides([("listeners", "PLAINTEXT://127.0.0.1:0")]).expect("config");
        let broker = Arc::new(Broker::for_tests(config, Router::default()));
        let listeners = network::bind_config(&broker.config).await.expect("bind");
        let addr = listeners[0].local_addr();
        let (trigger, signal) = network::shutdown_channel();
        tokio::spawn(network::serve(broker.clone(), listeners, signal));
        (broker, addr, trigger)
    }

    fn register(broker: &Broker, node: i32, port: u16) -> Uuid {
        let incarnation_id = Uuid::new_v4();
        let record = MetadataRecord::RegisterBroker {
            node_id: node,
            incarnation_id,
            endpoints: vec![BrokerEndpoint {
                listener: "PLAINTEXT".into(),
                host: "127.0.0.1".into(),
                port,
                security_protocol: None,
            }],
            rack: None,
            fenced: false,
            process: None,
        };
        broker.topics.update(|_| Ok::<_, TopicError>((vec![record.clone()], ()))).expect("registered");
        incarnation_id
    }

    async fn api_versions(conn: &Connection) -> Result<i16, ClientError> {
        conn.send(&ApiVersionsRequest::default(), 0).await.map(|r| r.error_code)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connects_by_node_id_reuses_and_reconnects_on_failure_or_a_new_registration() {
        let (broker, addr, _stop) = serve().await;
        let peers = InterBroker::for_broker(&broker.topics, &broker.config);
        let node = NodeId(7);
        assert!(matches!(peers.connection(node).await, Err(InterBrokerError::NotRegistered(NodeId(7)))));

        register(&broker, 7, addr.port());
        let first = peers.connection(node).await.expect("connected");
        assert_eq!(api_versions(&first).await.expect("answered"), 0);
        assert!(Arc::ptr_eq(&first, &peers.connection(node).await.expect("again")), "one connection, reused");

        // A failed request's connection is replaced; an unrelated one is not dropped.
        peers.disconnect(node, &first);
        let second = peers.connection(node).await.expect("reconnected");
        assert!(!Arc::ptr_eq(&first, &second));
        peers.disconnect(node, &first);
        assert!(Arc::ptr_eq(&second, &peers.connection(node).await.expect("kept")));

        // The node registers again (a restart): a new connection.
        register(&broker, 7, addr.port());
        let third = peers.connection(node).await.expect("new incarnation");
        assert!(!Arc::ptr_eq(&second, &third));
        assert_eq!(api_versions(&third).await.expect("answered"), 0);
        broker.topics.logs().shutdown().expect("shutdown");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_broker_that_does_not_listen_fails_within_the_connect_bound() {
        let (broker, _, _stop) = serve().await;
        // A port nobody listens on: bound now, closed before use.
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        register(&broker, 9, port);
        let peers = InterBroker::for_broker(&broker.topics, &broker.config);
        let started = std::time::Instant::now();
        let err = peers.connection(NodeId(9)).await.expect_err("nothing listens");
        assert!(matches!(err, InterBrokerError::Connect { node: NodeId(9), .. }), "{err}");
        assert!(started.elapsed() <= CONNECT_TIMEOUT + Duration::from_secs(1));

        // A registration without endpoints.
        let record = MetadataRecord::RegisterBroker {
            node_id: 10,
            incarnation_id: Uuid::new_v4(),
            endpoints: vec![],
            rack: None,
            fenced: false,
            process: None,
        };
        broker.topics.update(|_| Ok::<_, TopicError>((vec![record.clone()], ()))).expect("registered");
        assert!(matches!(peers.connection(NodeId(10)).await, Err(InterBrokerError::NoEndpoint(NodeId(10)))));
        broker.topics.logs().shutdown().expect("shutdown");
    }
}
