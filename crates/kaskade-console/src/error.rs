//! The console's one error type, and its HTTP form.
//!
//! A Kafka error keeps the broker's error code, its name and the message the
//! broker gave, so the page shows what a Kafka client would have been told.
//! The body is always JSON (`{"error", "code", "message"}`), never an empty
//! page.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kafka_protocol::ResponseError;

#[derive(Debug)]
pub enum ConsoleError {
    /// The broker answered with a Kafka error code.
    Kafka { code: ResponseError, message: Option<String> },
    /// The request to the console was malformed (missing or bad field).
    BadRequest(String),
    /// No such thing (topic, partition, group).
    NotFound(String),
    /// Refused in the current state (as Kafka's tools refuse it).
    Conflict(String),
    /// The console or the broker failed unexpectedly.
    Internal(String),
}

impl ConsoleError {
    /// The status, error name, Kafka code (0 when not a Kafka error) and message.
    fn parts(&self) -> (StatusCode, String, i16, String) {
        match self {
            ConsoleError::Kafka { code, message } => {
                let status = match code {
                    ResponseError::UnknownTopicOrPartition
                    | ResponseError::UnknownTopicId
                    | ResponseError::GroupIdNotFound
                    | ResponseError::TransactionalIdNotFound => StatusCode::NOT_FOUND,
                    ResponseError::TopicAlreadyExists | ResponseError::NonEmptyGroup => StatusCode::CONFLICT,
                    ResponseError::InvalidTopicException
                    | ResponseError::InvalidPartitions
                    | ResponseError::InvalidReplicationFactor
                    | ResponseError::InvalidConfig
                    | ResponseError::InvalidRequest
                    | ResponseError::PolicyViolation
                    | ResponseError::CorruptMessage
                    | ResponseError::MessageTooLarge
                    | ResponseError::RecordListTooLarge
                    | ResponseError::InvalidRecord
                    | ResponseError::OffsetOutOfRange
                    | ResponseError::UnknownMemberId => StatusCode::BAD_REQUEST,
                    // A node the console could not reach (not retriable in
                    // Kafka's table, but the node may well come back).
                    ResponseError::BrokerNotAvailable => StatusCode::SERVICE_UNAVAILABLE,
                    _ if code.is_retriable() => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::UNPROCESSABLE_ENTITY,
                };
                let text = match message {
                    Some(m) if !m.is_empty() => m.clone(),
                    _ => format!("{code}"),
                };
                (status, format!("{code}"), code.code(), text)
            }
            ConsoleError::BadRequest(m) => (StatusCode::BAD_REQUEST, "BadRequest".into(), 0, m.clone()),
            ConsoleError::NotFound(m) => (StatusCode::NOT_FOUND, "NotFound".into(), 0, m.clone()),
            ConsoleError::Conflict(m) => (StatusCode::CONFLICT, "Conflict".into(), 0, m.clone()),
            ConsoleError::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, "Internal".into(), 0, m.clone()),
        }
    }
}

impl std::fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (_, name, _, message) = self.parts();
        write!(f, "{name}: {message}")
    }
}

impl std::error::Error for ConsoleError {}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, error, code, message) = self.parts();
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::warn!(%message, "console request failed");
        }
        (status, Json(serde_json::json!({ "error": error, "code": code, "message": message }))).into_response()
    }
}

impl From<axum::extract::rejection::JsonRejection> for ConsoleError {
    fn from(r: axum::extract::rejection::JsonRejection) -> Self {
        ConsoleError::BadRequest(r.body_text())
    }
}

impl From<axum::extract::rejection::QueryRejection> for ConsoleError {
    fn from(r: axum::extract::rejection::QueryRejection) -> Self {
        ConsoleError::BadRequest(r.body_text())
    }
}

/// A JSON body; a malformed one is a [`ConsoleError::BadRequest`] with a
/// JSON answer like every other error.
pub type Body<T> = Result<axum::Json<T>, axum::extract::rejection::JsonRejection>;

/// The result of a console API handler.
pub type ApiResult<T> = Result<Json<T>, ConsoleError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_errors_keep_the_broker_message_and_code() {
        let e = ConsoleError::Kafka {
            code: ResponseError::TopicAlreadyExists,
            message: Some("Topic 'a' already exists.".into()),
        };
        let (status, name, code, message) = e.parts();
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(name, "TopicAlreadyExists");
        assert_eq!(code, ResponseError::TopicAlreadyExists.code());
        assert_eq!(message, "Topic 'a' already exists.");
    }

    #[test]
    fn kafka_errors_without_a_message_name_the_error() {
        let e = ConsoleError::Kafka { code: ResponseError::NotController, message: None };
        let (status, _, _, message) = e.parts();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(message, "NotController");
    }
}
