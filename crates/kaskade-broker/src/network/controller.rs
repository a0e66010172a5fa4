//! The controller listener: the listeners named by
//! `controller.listener.names`, bound with the client listeners and never
//! advertised to clients (Metadata and DescribeCluster name the broker
//! listeners only).
//!
//! On a node that is its cluster's only controller and only broker, the
//! controller listener answers Kafka requests as the broker listeners do
//! (a node of a multi-node quorum gives the listener to the quorum's RPC
//! server instead, `crate::cluster`). Closing its connections instead was
//! the alternative; it was not taken because Kafka's tools speak Kafka's
//! protocol to this listener (`--bootstrap-controller`, KIP-919: ApiVersions,
//! DescribeCluster, DescribeConfigs, ...) and on a single node the broker's
//! handlers give the answers its controller would. The difference from
//! Kafka: APIs a Kafka controller does not serve (Produce, Fetch, groups)
//! are answered here too, where Kafka closes the connection.
//!
//! The seam: [`serve`] receives the bound sockets; in a quorum the RPC
//! server takes each listener's `TcpListener` ([`BoundListener::into_tcp`])
//! and serves openraft's frames there (the controller's Kafka APIs are not
//! served on it yet).

use std::sync::Arc;

use super::{listener, BoundListener, ShutdownSignal};
use crate::broker::Broker;

/// Serves the controller listeners until `shutdown`, then lets their
/// connections finish the requests in flight.
pub async fn serve(broker: Arc<Broker>, listeners: Vec<BoundListener>, shutdown: ShutdownSignal) {
    debug_assert!(
        listeners.iter().all(|l| broker.config.controller_listener_names.iter().any(|n| n == l.name())),
        "only controller listeners are served here"
    );
    listener::serve(broker, listeners, shutdown).await
}
