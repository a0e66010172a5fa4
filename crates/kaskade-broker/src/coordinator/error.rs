//! What a coordinator's seams can fail with, and the Kafka error each
//! answers to a client (the one mapping, used at the protocol edge).

use kafka_protocol::ResponseError;

/// A failure of a coordinator's interface to its node.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CoordinatorError {
    /// Another node leads the key's internal partition (or none does).
    #[error("not the coordinator")]
    NotCoordinator,
    /// The key's internal partition is being loaded here.
    #[error("the coordinator is loading")]
    LoadInProgress,
    /// An append or a read of the internal topic failed.
    #[error("internal topic unavailable: {0}")]
    Unavailable(String),
    /// The coordinator stopped (the node is shutting down).
    #[error("the coordinator stopped")]
    Stopped,
}

impl CoordinatorError {
    /// The error Kafka answers for it.
    pub fn response_error(&self) -> ResponseError {
        match self {
            CoordinatorError::NotCoordinator => ResponseError::NotCoordinator,
            CoordinatorError::LoadInProgress => ResponseError::CoordinatorLoadInProgress,
            CoordinatorError::Unavailable(_) | CoordinatorError::Stopped => ResponseError::CoordinatorNotAvailable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_to_kafka_codes() {
        assert_eq!(CoordinatorError::NotCoordinator.response_error(), ResponseError::NotCoordinator);
        assert_eq!(CoordinatorError::LoadInProgress.response_error(), ResponseError::CoordinatorLoadInProgress);
        assert_eq!(CoordinatorError::Stopped.response_error(), ResponseError::CoordinatorNotAvailable);
        assert_eq!(CoordinatorError::Unavailable("x".into()).response_error(), ResponseError::CoordinatorNotAvailable);
    }
}
