//! The Raft type configuration of the controller quorum: what an entry
//! carries and what applying it answers.
//!
//! Raft node ids are Kafka's `node.id`s (non-negative `i32`s) widened to
//! `u64`, as openraft wants; [`to_kafka_id`] narrows them back.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::metadata_log::MetadataVersion;
use crate::record::MetadataRecord;

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

openraft::declare_raft_types!(
    /// The controller quorum's Raft types: proposals as entries, snapshots
    /// as in-memory JSON buffers, tokio as the runtime.
    pub TypeConfig:
        D = Proposal,
        R = ApplyOutcome,
        NodeId = RaftNodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<RaftNodeId>;
pub type Vote = openraft::Vote<RaftNodeId>;
pub type StorageError = openraft::StorageError<RaftNodeId>;
pub type SnapshotMeta = openraft::SnapshotMeta<RaftNodeId, openraft::BasicNode>;
pub type StoredMembership = openraft::StoredMembership<RaftNodeId, openraft::BasicNode>;

/// A Raft node id as Kafka's `node.id` (ids above `i32::MAX` cannot come
/// from a Kafka configuration; they read as -1, Kafka's "none").
pub fn to_kafka_id(id: RaftNodeId) -> i32 {
    i32::try_from(id).unwrap_or(-1)
}

/// The epoch a term becomes in a [`MetadataVersion`] (terms beyond
/// `i32::MAX` would take four billion elections).
pub fn epoch_of(term: u64) -> i32 {
    i32::try_from(term).unwrap_or(i32::MAX)
}
