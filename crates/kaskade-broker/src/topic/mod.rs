//! Topics: names, ids, partitions and configs (kept in the metadata log)
//! and the partition logs that hold their data.

pub mod config;
pub mod manager;

pub use manager::{TopicError, TopicManager};
