//! Errors of the broker layer.
//!
//! A handler returns `Err(BrokerError)` only when it cannot build a Kafka
//! response at all; errors that Kafka reports per topic or partition belong in
//! the response body, with their Kafka error code. The connection turns an
//! `Err` into the action Kafka takes: [`BrokerError::CloseConnection`] (and
//! every other variant, since no valid response can be written) closes the
//! connection after the responses to earlier requests have been sent.

use kafka_protocol::ResponseError;

/// An error of the broker layer.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The request cannot be answered and Kafka closes the connection: a
    /// malformed frame, an unknown API key, a version Kafka does not accept,
    /// a body that does not decode.
    #[error("closing the connection: {0}")]
    CloseConnection(String),

    /// A Kafka error with its protocol error code.
    #[error("{}: {message}", .code.code())]
    Kafka {
        /// The Kafka error.
        code: ResponseError,
        /// What happened, for the log.
        message: String,
    },

    /// The configuration is invalid; the message names the key and the
    /// accepted values.
    #[error("{0}")]
    Config(String),

    /// A bug or an unexpected state inside the broker.
    #[error("internal error: {0}")]
    Internal(String),

    /// The request must get no response at all (Produce with acks=0);
    /// not a failure.
    #[error("no response")]
    NoResponse,

    /// An I/O error (sockets, files).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl BrokerError {
    /// A Kafka error with its code and a message for the log.
    pub fn kafka(code: ResponseError, message: impl Into<String>) -> Self {
        BrokerError::Kafka { code, message: message.into() }
    }

    /// An error that closes the connection.
    pub fn close(message: impl Into<String>) -> Self {
        BrokerError::CloseConnection(message.into())
    }

    /// An internal error.
    pub fn internal(message: impl Into<String>) -> Self {
        BrokerError::Internal(message.into())
    }

    /// The Kafka error code this error maps to, where one is meaningful.
    ///
    /// `CloseConnection` has none: Kafka answers nothing and closes. An
    /// internal or I/O error maps to `UNKNOWN_SERVER_ERROR` (-1), as Kafka
    /// maps an unexpected exception; a configuration error to
    /// `INVALID_CONFIG` (40).
    pub fn kafka_code(&self) -> Option<i16> {
        match self {
            BrokerError::CloseConnection(_) | BrokerError::NoResponse => None,
            BrokerError::Kafka { code, .. } => Some(code.code()),
            BrokerError::Config(_) => Some(ResponseError::InvalidConfig.code()),
            BrokerError::Internal(_) | BrokerError::Io(_) => Some(ResponseError::UnknownServerError.code()),
        }
    }

    /// Whether the connection must be closed without an answer.
    pub fn closes_connection(&self) -> bool {
        matches!(self, BrokerError::CloseConnection(_))
    }
}

/// Result of the broker layer.
pub type Result<T, E = BrokerError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(BrokerError::close("x").kafka_code(), None);
        assert!(BrokerError::close("x").closes_connection());
        assert_eq!(BrokerError::kafka(ResponseError::UnsupportedVersion, "v9").kafka_code(), Some(35));
        assert_eq!(BrokerError::internal("bug").kafka_code(), Some(-1));
        assert_eq!(BrokerError::Config("bad".into()).kafka_code(), Some(40));
        let io = BrokerError::from(std::io::Error::other("disk"));
        assert_eq!(io.kafka_code(), Some(-1));
        assert!(!io.closes_connection());
        assert_eq!(BrokerError::kafka(ResponseError::InvalidRequest, "bad field").to_string(), "42: bad field");
    }
}
