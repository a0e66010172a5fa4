//! The partition layer, between the API handlers and the storage engine
//! (Kafka's `ReplicaManager`/`Partition`). Today it holds the one mapping
//! from storage errors to Kafka error codes (`error`); leadership, the
//! high watermark and the delayed operations are to move here (issue 12).

pub mod error;

pub use error::storage_error;
