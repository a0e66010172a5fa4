//! The controller quorum: the metadata log replicated among the controllers
//! with `openraft` (Raft), implementing [`crate::MetadataLog`].
//!
//! One file per concept: [`types`] (the Raft type configuration: entries are
//! [`Proposal`]s, batches of [`crate::MetadataRecord`]s decided against a
//! version), [`log_store`] (the Raft log and vote, fsynced in
//! `<dir>/kaskade-metadata/raft/`), [`state_machine`] (applies committed
//! proposals to the [`crate::Image`] with the image's own `apply`, builds and
//! installs JSON snapshots of it), [`frame`] + [`network`] + [`server`]
//! (openraft's RPCs between controllers over TCP in length-prefixed frames),
//! [`node`] ([`QuorumMetadataLog`]: start a controller, append through the
//! leader), [`voter_changes`] (its voters and the changes to them),
//! [`observer`] ([`ObserverMetadataLog`]: a broker-only node's copy of the
//! committed log, fetched from the controllers with Kafka's Fetch /
//! FetchSnapshot of `__cluster_metadata`: [`metadata_fetch`] decides the
//! controller's answers, [`metadata_serve`] serves them, [`metadata_client`]
//! asks, [`observer_state`] applies), [`brokers`] (broker registrations and heartbeats, run by
//! the active controller), [`membership`] (whether AddRaftVoter /
//! RemoveRaftVoter may start, as Kafka checks it), [`leadership`] (the
//! active controller's own leader elections: preferred-leader rebalancing
//! and unclean elections) and [`status`] (what DescribeQuorum reports).
//!
//! Invariants: a proposal lands only if the image is still at the version it
//! was decided against, checked by every replica's state machine at apply
//! time (so two racing decisions never both land and all replicas agree on
//! which one did); the image only moves on committed entries; every file
//! write that Raft relies on (vote, log, snapshot) is fsynced before it is
//! acknowledged, and blocking file I/O runs on the blocking pool, never on
//! an async worker.

pub mod brokers;
pub mod describe_quorum;
mod files;
pub mod frame;
mod kafka_wire;
mod leadership;
pub mod log_store;
pub mod membership;
mod metadata_client;
pub mod metadata_fetch;
pub mod metadata_serve;
pub mod network;
pub mod node;
pub mod observer;
mod observer_state;
pub mod observers;
pub mod server;
mod snapshot_timer;
pub mod state_machine;
pub mod status;
pub mod timing;
pub mod types;
mod voter_changes;

#[cfg(test)]
mod brokers_tests;
#[cfg(test)]
mod storage_tests;
#[cfg(test)]
mod tests;

pub use brokers::{BrokerAnswer, BrokerCall, BrokerRefusal, HeartbeatAnswer};
pub use membership::{VoterChangeError, VoterKey};
pub use node::{QuorumConfig, QuorumMetadataLog};
pub use observer::{ObserverConfig, ObserverMetadataLog};
pub use server::serve;
pub use status::{QuorumStatus, ReplicaStatus};
pub use timing::{KraftTimeouts, RaftTiming};
pub use types::{ApplyOutcome, ControllerNode, Proposal, RaftNodeId, TypeConfig};
