//! The controller listener: the listeners named by
//! `controller.listener.names`, bound with the client listeners and never
//! advertised to clients (Metadata and DescribeCluster name the broker
//! listeners only).
//!
//! On a node that is its cluster's only controller and only broker, the
//! controller listener answers Kafka requests as the broker listeners do
//! ([`serve`]). Closing its connections instead was the alternative; it was
//! not taken because Kafka's tools speak Kafka's protocol to this listener
//! (`--bootstrap-controller`, KIP-919: ApiVersions, DescribeCluster,
//! DescribeConfigs, ...) and on a single node the broker's handlers give
//! the answers its controller would. The difference from Kafka: APIs a
//! Kafka controller does not serve (Produce, Fetch, groups) are answered
//! here too, where Kafka closes the connection.
//!
//! A node of a multi-node quorum gives the listener to the quorum's RPC
//! server (`crate::cluster`), which hands every connection whose first
//! frame is a Kafka request, unread, to [`serve_handed_over`]: those are
//! answered with the controller's route table (`router::controller_routes`:
//! ApiVersions, DescribeQuorum, DescribeCluster naming the controllers,
//! Fetch and FetchSnapshot of `__cluster_metadata` for observers), so
//! `kafka-metadata-quorum --bootstrap-controller` works against any
//! controller; any other API closes the connection, as on Kafka's
//! controller.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::connection::{self, Routes};
use super::{listener, BoundListener, ShutdownSignal};
use crate::broker::Broker;

/// Kafka connections the quorum's server took on one controller listener.
pub struct HandedOver {
    /// The listener's name (`CONTROLLER`).
    pub listener: Arc<str>,
    pub connections: mpsc::Receiver<(TcpStream, SocketAddr)>,
}

/// Serves the controller listeners until `shutdown`, then lets their
/// connections finish the requests in flight.
pub async fn serve(broker: Arc<Broker>, listeners: Vec<BoundListener>, shutdown: ShutdownSignal) {
    debug_assert!(
        listeners.iter().all(|l| broker.config.controller_listener_names.iter().any(|n| n == l.name())),
        "only controller listeners are served here"
    );
    listener::serve(broker, listeners, shutdown).await
}

/// Serves the Kafka connections handed over by the quorum's server on
/// each of `handed` with the controller's routes, until `shutdown` (or
/// until the server stops handing any), then lets them finish the requests
/// in flight.
pub async fn serve_handed_over(broker: Arc<Broker>, handed: Vec<HandedOver>, shutdown: ShutdownSignal) {
    let mut takers = JoinSet::new();
    for h in handed {
        takers.spawn(take(broker.clone(), h, shutdown.clone()));
    }
    while takers.join_next().await.is_some() {}
}

async fn take(broker: Arc<Broker>, mut handed: HandedOver, mut shutdown: ShutdownSignal) {
    let mut connections = JoinSet::new();
    loop {
        let next = tokio::select! {
            _ = shutdown.wait() => break,
            next = handed.connections.recv() => next,
        };
        let Some((stream, peer)) = next else { break };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(%peer, "cannot set TCP_NODELAY: {e}");
        }
        let (broker, name, shutdown) = (broker.clone(), handed.listener.clone(), shutdown.clone());
        connections.spawn(async move {
            let _open = crate::metrics::connections::OpenConnection::new();
            connection::run_on(broker, stream, peer, name, shutdown, Routes::Controller).await;
        });
        while connections.try_join_next().is_some() {}
    }
    // Connections handed over after this are dropped with the receiver: closed.
    drop(handed);
    while connections.join_next().await.is_some() {}
}
