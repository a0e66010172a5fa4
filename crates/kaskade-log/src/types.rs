//! The shared domain types the storage engine speaks (`kaskade-types`).

pub use kaskade_types::{LeaderEpoch, Offset, ProducerEpoch, ProducerId, TopicIdPartition, TopicPartition};
