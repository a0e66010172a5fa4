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
    fn from(e: MetaError) -> Self {
        TopicError::new(ResponseError::KafkaStorageError, e.to_string())
    }
}

impl From<kaskade_log::LogError> for TopicError {
    fn from(e: kaskade_log::LogError) -> Self {
        let code = crate::partition::storage_error(&e);
        TopicError::new(code, e.to_string())
    }
}
