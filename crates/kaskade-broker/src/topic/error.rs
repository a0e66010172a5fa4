//! The topic layer's error: a Kafka error (as `kafka_protocol`'s
//! `ResponseError`) with the message Kafka would send. Storage and metadata
//! errors map to codes here, once.

use kafka_protocol::ResponseError;
use kaskade_meta::MetaError;

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct TopicError {
    pub code: ResponseError,
    pub message: String,
}

impl TopicError {
    pub fn new(code: ResponseError, message: impl Into<String>) -> Self {
        TopicError { code, message: message.into() }
    }

    /// The wire code, for response fields.
    pub fn code(&self) -> i16 {
        self.code.code()
    }

    /// Kafka's answer for a topic or partition this cluster does not have.
    pub fn unknown_topic_or_partition() -> Self {
        TopicError::new(ResponseError::UnknownTopicOrPartition, "This server does not host this topic-partition.")
    }
}

impl From<MetaError> for TopicError {
    /// A change this node could not make is Kafka's NOT_CONTROLLER (it is
    /// not the active controller: the sender asks the next one after a
    /// Metadata refresh) or REQUEST_TIMED_OUT (proposed, not known to be
    /// committed). Anything else failed storing it.
    fn from(e: MetaError) -> Self {
        let code = match &e {
            MetaError::NotLeader { .. } => ResponseError::NotController,
            // Proposed: it may have landed, so neither success nor a
            // failure that says it did not happen.
            MetaError::Timeout(_) => ResponseError::RequestTimedOut,
            _ => ResponseError::KafkaStorageError,
        };
        TopicError::new(code, e.to_string())
    }
}

impl From<kaskade_log::LogError> for TopicError {
    fn from(e: kaskade_log::LogError) -> Self {
        let code = crate::partition::storage_error(&e);
        TopicError::new(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_failures_map_to_kafkas_codes() {
        let not_leader = TopicError::from(MetaError::NotLeader { leader: None });
        assert_eq!(not_leader.code, ResponseError::NotController);
        let timeout = TopicError::from(MetaError::Timeout(std::time::Duration::from_secs(1)));
        assert_eq!(timeout.code, ResponseError::RequestTimedOut);
        let failed = TopicError::from(MetaError::Quorum("stopped".into()));
        assert_eq!(failed.code, ResponseError::KafkaStorageError);
    }
}
