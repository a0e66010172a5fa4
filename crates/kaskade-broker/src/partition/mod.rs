//! The partition layer, between the API handlers and the storage engine
//! (Kafka's `ReplicaManager`/`Partition`): `leadership` is a partition's
//! leader epoch, ISR and high-watermark rule as a state machine without
//! I/O; `error` is the layer's error type and the one mapping of partition
//! and storage errors to Kafka error codes.

pub mod error;
pub mod leadership;

pub use error::{storage_error, PartitionError};
pub use leadership::{LeaderAndIsr, Leadership};
