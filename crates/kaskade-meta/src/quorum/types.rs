//! The Raft type configuration of the controller quorum: what an entry
//! carries and what applying it answers.
//!
//! Raft node ids are Kafka's `node.id`s (non-negative `i32`s) widened to
//! `u64`, as openraft wants; [`to_kafka_id`] narrows them back. The
//! quorum's API speaks [`NodeId`]; its frames keep the plain integer
//! ([`wire_node_id`]).

use std::io::Cursor;

use kaskade_types::NodeId;
use serde::{Deserialize, Serialize};

use crate::metadata_log::MetadataVersion;
use crate::record::MetadataRecord;

/// The client id prefix of a broker's requests to other nodes
/// (`kaskade-broker-<node.id>`): a node answers such a request itself and
/// never forwards it again.
pub const BROKER_CLIENT_ID_PREFIX: &str = "kaskade-broker-";

/// A controller's id inside openraft (Kafka's `node.id`, never negative).
pub type RaftNodeId = u64;

/// A metadata change proposed by the active controller: the records it
/// decided against the image at `based_on`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub based_on: MetadataVersion,
    pub records: Vec<MetadataRecord>,
}

/// What applying an entry did, answered to the proposer by `client_write`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApplyOutcome {
    /// The records landed; the image is now at this version.
    Applied(MetadataVersion),
    /// The image had moved past `based_on`: nothing changed.
    Stale { actual: MetadataVersion },
    /// An entry of Raft's own (a new leader's blank entry, a membership
    /// change): the image is unchanged, its epoch is the entry's term.
    Raft(MetadataVersion),
}

/// A controller as the quorum's membership stores it: where its controller
/// listener is, and its directory id (KIP-853 identifies a voter by its id
/// and the id of its metadata directory, so a wiped controller that comes
/// back under the same id is a different voter). Serialized as openraft's
/// `BasicNode` (`{"addr": ...}`) plus the optional id, so membership
/// entries written before directory ids were kept still load.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerNode {
    /// `host:port` of its controller listener.
    pub addr: String,
    /// Its metadata directory's `directory.id` (`None`: a static quorum's
    /// voter, or one stored before directory ids were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_id: Option<uuid::Uuid>,
}

impl ControllerNode {
    pub fn new(addr: impl Into<String>) -> ControllerNode {
        ControllerNode { addr: addr.into(), directory_id: None }
    }
}

openraft::declare_raft_types!(
    /// The controller quorum's Raft types: proposals as entries, snapshots
    /// as in-memory JSON buffers, tokio as the runtime.
    pub TypeConfig:
        D = Proposal,
        R = ApplyOutcome,
        NodeId = RaftNodeId,
        Node = ControllerNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<RaftNodeId>;
pub type Vote = openraft::Vote<RaftNodeId>;
pub type StorageError = openraft::StorageError<RaftNodeId>;
pub type SnapshotMeta = openraft::SnapshotMeta<RaftNodeId, ControllerNode>;
pub type StoredMembership = openraft::StoredMembership<RaftNodeId, ControllerNode>;

/// A Raft node id as Kafka's `node.id` (ids above `i32::MAX` cannot come
/// from a Kafka configuration; they read as -1, Kafka's "none").
pub fn to_kafka_id(id: RaftNodeId) -> i32 {
    i32::try_from(id).unwrap_or(-1)
}

/// A Raft node id as a [`NodeId`] (see [`to_kafka_id`]).
pub fn to_node_id(id: RaftNodeId) -> NodeId {
    NodeId(to_kafka_id(id))
}

/// `Option<NodeId>` in a serialized frame, as the plain integer or null
/// that the frames carried before the id was typed, so controllers of
/// either build still understand each other (`#[serde(with = ...)]`).
pub mod wire_node_id {
    use kaskade_types::NodeId;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(id: &Option<NodeId>, s: S) -> Result<S::Ok, S::Error> {
        id.map(NodeId::get).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NodeId>, D::Error> {
        Ok(Option::<i32>::deserialize(d)?.map(NodeId))
    }
}

/// The epoch a term becomes in a [`MetadataVersion`] (terms beyond
/// `i32::MAX` would take four billion elections).
pub fn epoch_of(term: u64) -> i32 {
    i32::try_from(term).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use kaskade_types::NodeId;

    use crate::quorum::brokers::BrokerRefusal;

    #[test]
    fn typed_leader_ids_keep_the_frames_plain_integers() {
        let refusal = BrokerRefusal::NotController { leader: Some(NodeId(3)) };
        let json = serde_json::to_string(&refusal).expect("serialize");
        assert_eq!(json, r#"{"NotController":{"leader":3}}"#);
        assert_eq!(serde_json::from_str::<BrokerRefusal>(&json).expect("parse"), refusal);

        let none = BrokerRefusal::NotController { leader: None };
        let json = serde_json::to_string(&none).expect("serialize");
        assert_eq!(json, r#"{"NotController":{"leader":null}}"#);
        assert_eq!(serde_json::from_str::<BrokerRefusal>(&json).expect("parse"), none);
    }

    #[test]
    fn controller_nodes_read_openraft_basic_nodes() {
        use super::ControllerNode;
        let old: ControllerNode = serde_json::from_str(r#"{"addr":"c1:9093"}"#).expect("a BasicNode's JSON");
        assert_eq!(old, ControllerNode::new("c1:9093"));
        assert_eq!(serde_json::to_string(&old).expect("serialize"), r#"{"addr":"c1:9093"}"#);
        let id = uuid::Uuid::from_bytes([7; 16]);
        let new = ControllerNode { addr: "c2:9093".into(), directory_id: Some(id) };
        let json = serde_json::to_string(&new).expect("serialize");
        assert_eq!(serde_json::from_str::<ControllerNode>(&json).expect("parse"), new);
    }

    #[test]
    fn a_frame_whose_leader_is_not_an_id_is_refused() {
        for bad in [r#"{"NotController":{"leader":"1"}}"#, r#"{"NotController":{"leader":4294967296}}"#] {
            assert!(serde_json::from_str::<BrokerRefusal>(bad).is_err(), "{bad}");
        }
    }
}
