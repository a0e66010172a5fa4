//! The seams between the coordinators (`group`, `txn`) and the node they run
//! on, so that a coordinator does not care where it runs (DESIGN.md,
//! "coordinators on the leader of their internal partition").
//!
//! A coordinator sees only:
//! - [`InternalPartitions`]: its internal topic's partitions this node
//!   leads: create the topic, append to partition N and get an [`Appended`]
//!   handle to await until durable (today) or replicated (later), read a
//!   partition's committed records to load it;
//! - [`MarkerWriter`]: write a transaction's markers to its partitions and
//!   await them (this node's logs for the partitions it leads,
//!   WriteTxnMarkers to the leaders of the others: `cluster_markers`);
//! - [`ProducerIdSource`]: producer ids for InitProducerId;
//! - `kaskade_types::Clock`: the time.
//!
//! [`Leadership`] is the per-partition Loading / Loaded / NotLeader state a
//! coordinator keeps: a group or transactional id is answered only when its
//! partition is Loaded here (COORDINATOR_LOAD_IN_PROGRESS while loading,
//! NOT_COORDINATOR when another node leads it), as Kafka's coordinators do.
//! `local` holds the implementations over this node's logs,
//! `cluster_markers` the marker writer that reaches other brokers; the
//! broker wires them. Neither service names `Broker` or `TopicManager`.

pub mod cluster_markers;
mod error;
#[cfg(test)]
pub mod fake;
mod leadership;
pub mod local;
mod markers;
mod partitions;
mod producer_ids;

pub use error::CoordinatorError;
pub use leadership::{FollowAction, Leadership, PartitionLoad};
pub use markers::{MarkerDisposition, MarkerError, MarkerWriter, MarkersWritten, TxnMarker};
pub use partitions::{Appended, InternalPartitions, InternalRecord};
pub use producer_ids::ProducerIdSource;
