//! Where the transaction coordinator gets new producer ids.

use futures::future::BoxFuture;
use kaskade_types::ProducerId;

use super::CoordinatorError;

/// Hands out producer ids never handed out before (today: blocks recorded
/// in the local metadata log; later: blocks from the controller).
pub trait ProducerIdSource: Send + Sync + 'static {
    fn next_id(&self) -> BoxFuture<'_, Result<ProducerId, CoordinatorError>>;
}
