//! How a node of a cluster reaches the metadata quorum: as one of its
//! voters (a controller, combined or dedicated: `QuorumMetadataLog`) or as
//! an observer (a broker-only node: `ObserverMetadataLog`, which fetches
//! the metadata log from the controllers with Kafka's Fetch and
//! FetchSnapshot of `__cluster_metadata`). Both give the node its
//! metadata log and the active controller's id (where its broker's
//! registration and heartbeats go, `controller_channel`).

use std::collections::BTreeMap;
use std::sync::Arc;

use kaskade_meta::{Committed, MetadataLog, MetadataVersion, ObserverMetadataLog, QuorumMetadataLog};
use kaskade_types::NodeId;
use tokio::sync::watch;

/// This node's place in the metadata quorum.
#[derive(Clone, Debug)]
pub enum QuorumLink {
    /// A voter: this node runs a controller.
    Voter(QuorumMetadataLog),
    /// An observer: a broker-only node.
    Observer(ObserverMetadataLog),
}

impl QuorumLink {
    pub fn node_id(&self) -> NodeId {
        match self {
            QuorumLink::Voter(q) => q.node_id(),
            QuorumLink::Observer(o) => o.node_id(),
        }
    }

    /// The active controller, if known.
    pub fn leader(&self) -> Option<NodeId> {
        match self {
            QuorumLink::Voter(q) => q.leader(),
            QuorumLink::Observer(o) => o.leader(),
        }
    }

    /// The controllers (node id -> `host:port` of each one's controller
    /// listener): a voter's from its applied membership, so controllers
    /// added or removed later (KIP-853) are found; an observer's from the
    /// membership it fetched (a broker-only node of a dynamic quorum learns
    /// them so), the configured voters until it has one.
    pub fn controllers(&self) -> BTreeMap<NodeId, String> {
        match self {
            QuorumLink::Voter(q) => q.voter_nodes().into_iter().map(|(id, n)| (id, n.addr)).collect(),
            QuorumLink::Observer(o) => o.controllers(),
        }
    }

    /// This node's controller, when it runs one.
    pub fn voter(&self) -> Option<&QuorumMetadataLog> {
        match self {
            QuorumLink::Voter(q) => Some(q),
            QuorumLink::Observer(_) => None,
        }
    }

    /// The metadata log the node runs on.
    pub fn metadata_log(&self) -> Arc<dyn MetadataLog> {
        match self {
            QuorumLink::Voter(q) => Arc::new(q.clone()),
            QuorumLink::Observer(o) => Arc::new(o.clone()),
        }
    }

    pub fn committed(&self) -> Committed {
        match self {
            QuorumLink::Voter(q) => q.committed(),
            QuorumLink::Observer(o) => o.committed(),
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<MetadataVersion> {
        match self {
            QuorumLink::Voter(q) => q.subscribe(),
            QuorumLink::Observer(o) => o.subscribe(),
        }
    }
}
