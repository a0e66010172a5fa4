//! Topics: names, ids, partitions and configs (kept in the metadata log)
//! and the partition logs that hold their data.

pub mod config;
pub mod controller;
pub mod error;
pub mod manager;
pub mod placement;
pub mod replicas;

pub use error::TopicError;
pub use manager::TopicManager;

use std::sync::Arc;

/// Runs a topic change on the blocking pool (it fsyncs the metadata log and
/// creates or removes directories), folding a failed task into a
/// `TopicError` so handlers have one error shape to answer with.
pub async fn on_blocking_pool<T: Send + 'static>(
    topics: &Arc<TopicManager>,
    change: impl FnOnce(&TopicManager) -> Result<T, TopicError> + Send + 'static,
) -> Result<T, TopicError> {
    let tm = topics.clone();
    tokio::task::spawn_blocking(move || change(&tm)).await.unwrap_or_else(|e| {
        Err(TopicError::new(
            kafka_protocol::ResponseError::UnknownServerError,
            format!("topic change task failed: {e}"),
        ))
    })
}
