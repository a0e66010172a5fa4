//! Topics: names, ids, partitions and configs (kept in the metadata log)
//! and the partition logs that hold their data.

pub mod config;
pub mod controller;
pub mod error;
pub mod manager;
pub mod manual_assignment;
pub mod placement;
pub mod replicas;

pub use error::TopicError;
pub use manager::TopicManager;

use std::sync::Arc;

tokio::task_local! {
    /// Set while the active controller carries out a request it took on
    /// its controller listener (or in an Envelope): [`on_blocking_pool`]
    /// then commits with `MetadataLog::append_as_active`.
    static AS_ACTIVE_CONTROLLER: ();
}

/// Runs `future` (a handler on the controller listener) so that the topic
/// changes it makes are committed only by this node as the active
/// controller of its term, never forwarded to another controller: a
/// controller deposed meanwhile answers NOT_CONTROLLER and the broker that
/// forwarded the request asks the next one, as Kafka's brokers do.
pub async fn as_active_controller<F: std::future::Future>(future: F) -> F::Output {
    AS_ACTIVE_CONTROLLER.scope((), future).await
}

/// Decides a change as the active controller, in its own term, on the
/// committed image (a controller-only node follows no other image):
/// `decide` gives the records to commit and the answer. Runs on the
/// blocking pool.
pub async fn decide_as_active<T: Send + 'static>(
    topics: &Arc<TopicManager>,
    mut decide: impl FnMut(&kaskade_meta::Image) -> (Vec<kaskade_meta::MetadataRecord>, T) + Send + 'static,
) -> Result<T, TopicError> {
    as_active_controller(on_blocking_pool(topics, move |tm| {
        tm.apply_committed()?;
        tm.update(|img| Ok::<_, TopicError>(decide(img)))
    }))
    .await
}

/// Whether the handler running now decides as the active controller
/// ([`as_active_controller`]).
pub fn deciding_as_active_controller() -> bool {
    AS_ACTIVE_CONTROLLER.try_with(|()| ()).is_ok()
}

/// Runs a topic change on the blocking pool (it fsyncs the metadata log and
/// creates or removes directories), folding a failed task into a
/// `TopicError` so handlers have one error shape to answer with.
pub async fn on_blocking_pool<T: Send + 'static>(
    topics: &Arc<TopicManager>,
    change: impl FnOnce(&TopicManager) -> Result<T, TopicError> + Send + 'static,
) -> Result<T, TopicError> {
    let tm = topics.clone();
    let as_active = AS_ACTIVE_CONTROLLER.try_with(|()| ()).is_ok();
    tokio::task::spawn_blocking(move || manager::deciding_as_active(as_active, || change(&tm))).await.unwrap_or_else(
        |e| {
            Err(TopicError::new(
                kafka_protocol::ResponseError::UnknownServerError,
                format!("topic change task failed: {e}"),
            ))
        },
    )
}
