//! Kaskade's small domain types, shared by the storage engine, the metadata
//! crate, the broker and the client.
//!
//! Each wraps the integer Kafka puts on the wire, so that an offset cannot
//! be passed where a leader epoch is expected (both are plain integers in
//! the protocol). The wrapped value is public: converting at the protocol
//! edge is a field access, and the type still carries the meaning through
//! every signature in between. Absent values are `Option`s, never the
//! wire's `-1`.

pub mod clock;
mod endpoint;
mod histogram;
mod ids;
pub mod sim;
mod topic_partition;

pub use clock::{Clock, ManualClock, SystemClock};
pub use endpoint::Endpoint;
pub use histogram::{HistogramSnapshot, LatencyHistogram, BUCKET_BOUNDS_US};
pub use ids::{LeaderEpoch, NodeId, Offset, ProducerEpoch, ProducerId, ProducerIdAndEpoch};
pub use topic_partition::{TopicIdPartition, TopicPartition};
