//! The client's errors: [`ClientError`], what failed in a call (I/O, a
//! timeout, the protocol, no broker reachable, no leader or coordinator, or
//! the broker's Kafka error), and [`KafkaError`], a broker's error code as
//! an error a person can act on: Kafka's own name for it
//! (`TOPIC_ALREADY_EXISTS`), the broker's message, and a hint where the
//! caller knows one. The client speaks for no particular program, so its
//! errors name no command-line flags or commands: a program adds its own
//! hints (the `kaskade` CLI does, in its `hints` module).

use std::fmt;

use kafka_protocol::ResponseError;

/// Kafka's name for an error code, as in `Errors.java`: 36 ->
/// `TOPIC_ALREADY_EXISTS`, 0 -> `NONE`.
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".to_string(),
        Some(ResponseError::Unknown(c)) => format!("UNKNOWN_ERROR_CODE({c})"),
        // Display of a known variant is its CamelCase name.
        Some(e) => camel_to_screaming_snake(&e.to_string()),
    }
}

fn camel_to_screaming_snake(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// What went wrong in a client call: the one error type of this crate's
/// public API. Each variant's text is complete (it names what was being
/// done and why it failed) so that callers print it as it is.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The caller's input cannot make a request (a bad bootstrap list, a
    /// partition the topic does not have).
    #[error("{0}")]
    InvalidInput(String),
    /// Connecting to a broker, or writing to it, failed.
    #[error("{context}: {error}")]
    Io { context: String, error: std::io::Error },
    /// The connection closed (or reading from it failed) before the answer.
    #[error("{0}")]
    Disconnected(String),
    /// A broker did not answer (or accept a connection) in time.
    #[error("{0}")]
    Timeout(String),
    /// A request could not be encoded, an answer could not be decoded, or
    /// an answer lacks what the request asked about.
    #[error("{0}")]
    Protocol(String),
    /// The broker speaks no version of a request that this client speaks.
    #[error("{0}")]
    Unsupported(String),
    /// No broker of the bootstrap list accepted a connection.
    #[error("{0}")]
    Unreachable(String),
    /// There is no leader or coordinator to ask, or no broker answered.
    #[error("{0}")]
    Unavailable(String),
    /// The broker answered with a Kafka error code.
    #[error(transparent)]
    Kafka(#[from] KafkaError),
}

impl ClientError {
    /// The broker's Kafka error, when that is what this is.
    pub fn kafka(&self) -> Option<&KafkaError> {
        match self {
            ClientError::Kafka(k) => Some(k),
            _ => None,
        }
    }

    /// Whether the broker answered `e`.
    pub fn is(&self, e: ResponseError) -> bool {
        self.kafka().is_some_and(|k| k.error == e)
    }

    /// The same error, its text prefixed with what the caller was doing
    /// (`"connecting to broker 1 at h:9092: " + ...`).
    pub fn context(self, outer: impl fmt::Display) -> ClientError {
        use ClientError as E;
        match self {
            E::InvalidInput(m) => E::InvalidInput(format!("{outer}: {m}")),
            E::Io { context, error } => E::Io { context: format!("{outer}: {context}"), error },
            E::Disconnected(m) => E::Disconnected(format!("{outer}: {m}")),
            E::Timeout(m) => E::Timeout(format!("{outer}: {m}")),
            E::Protocol(m) => E::Protocol(format!("{outer}: {m}")),
            E::Unsupported(m) => E::Unsupported(format!("{outer}: {m}")),
            E::Unreachable(m) => E::Unreachable(format!("{outer}: {m}")),
            E::Unavailable(m) => E::Unavailable(format!("{outer}: {m}")),
            E::Kafka(mut k) => {
                k.context = format!("{outer}: {}", k.context);
                E::Kafka(k)
            }
        }
    }
}

// By hand: `std::io::Error` is not `Clone`; a copy keeps its kind and text.
impl Clone for ClientError {
    fn clone(&self) -> Self {
        use ClientError as E;
        match self {
            E::InvalidInput(m) => E::InvalidInput(m.clone()),
            E::Io { context, error } => {
                E::Io { context: context.clone(), error: std::io::Error::new(error.kind(), error.to_string()) }
            }
            E::Disconnected(m) => E::Disconnected(m.clone()),
            E::Timeout(m) => E::Timeout(m.clone()),
            E::Protocol(m) => E::Protocol(m.clone()),
            E::Unsupported(m) => E::Unsupported(m.clone()),
            E::Unreachable(m) => E::Unreachable(m.clone()),
            E::Unavailable(m) => E::Unavailable(m.clone()),
            E::Kafka(k) => E::Kafka(k.clone()),
        }
    }
}

/// What a broker answered for one named resource of a batched request
/// (a topic to delete, a group, a topic's configs).
#[derive(Debug, Clone)]
pub struct Outcome<T> {
    pub name: String,
    pub result: std::result::Result<T, KafkaError>,
}

/// The result of a client call.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// A Kafka error returned by a broker, with what was being done.
#[derive(Debug, Clone)]
pub struct KafkaError {
    /// The broker's error (never "none").
    pub error: ResponseError,
    /// The broker's error message, if it sent one.
    pub message: Option<String>,
    /// What we were doing, e.g. "creating topic 'orders'".
    pub context: String,
    /// What the user can do about it, where the caller knows (`None`
    /// from [`KafkaError::new`]: a program adds its own wording).
    pub hint: Option<String>,
}

impl KafkaError {
    pub fn new(error: ResponseError, message: Option<String>, context: impl Into<String>) -> Self {
        debug_assert!(error.code() != 0, "an error is never NONE");
        KafkaError { error, message: message.filter(|m| !m.is_empty()), context: context.into(), hint: None }
    }

    /// The error a response's `error_code` carries; `None` for 0 (no error).
    pub fn from_code(code: i16, message: Option<String>, context: impl Into<String>) -> Option<Self> {
        ResponseError::try_from_code(code).map(|e| KafkaError::new(e, message, context))
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Kafka's name for the error (`TOPIC_ALREADY_EXISTS`).
    pub fn name(&self) -> String {
        error_name(self.error.code())
    }

    pub fn is(&self, e: ResponseError) -> bool {
        self.error == e
    }

    /// Whether it means "your metadata is stale, refresh it and try again"
    /// (the request was not applied).
    pub fn is_stale_metadata(&self) -> bool {
        is_stale_metadata(self.error)
    }
}

/// Whether a produce/fetch/list-offsets error means "your metadata is
/// stale, refresh it and try again" (the request was not applied).
pub fn is_stale_metadata(e: ResponseError) -> bool {
    matches!(
        e,
        ResponseError::NotLeaderOrFollower
            | ResponseError::LeaderNotAvailable
            | ResponseError::UnknownTopicOrPartition
            | ResponseError::FencedLeaderEpoch
            | ResponseError::UnknownLeaderEpoch
            | ResponseError::NotController
            | ResponseError::KafkaStorageError
            | ResponseError::ReplicaNotAvailable
            | ResponseError::BrokerNotAvailable
    )
}

impl fmt::Display for KafkaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.context, self.name())?;
        if let Some(m) = &self.message {
            write!(f, " ({m})")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for KafkaError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_kafka_errors_java() {
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(6), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(error_name(17), "INVALID_TOPIC_EXCEPTION");
        assert_eq!(error_name(36), "TOPIC_ALREADY_EXISTS");
        assert_eq!(error_name(38), "INVALID_REPLICATION_FACTOR");
        assert_eq!(error_name(56), "KAFKA_STORAGE_ERROR");
        assert_eq!(error_name(100), "UNKNOWN_TOPIC_ID");
        assert_eq!(error_name(9999), "UNKNOWN_ERROR_CODE(9999)");
    }

    #[test]
    fn display_names_code_and_hint() {
        let e = KafkaError::new(
            ResponseError::TopicAlreadyExists,
            Some("Topic 'a' already exists.".into()),
            "creating topic 'a'",
        );
        assert_eq!(e.to_string(), "creating topic 'a': TOPIC_ALREADY_EXISTS (Topic 'a' already exists.)");
        let hinted = e.with_hint("pick another name");
        assert!(hinted.to_string().ends_with("\n  hint: pick another name"), "{hinted}");
        assert!(KafkaError::from_code(0, None, "x").is_none());
        let unknown = KafkaError::from_code(9999, None, "x").unwrap();
        assert_eq!(unknown.name(), "UNKNOWN_ERROR_CODE(9999)");
    }

    #[test]
    fn context_prefixes_every_kind_and_keeps_it() {
        let io = ClientError::Io {
            context: "could not connect to h:1".into(),
            error: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        };
        let e = io.context("connecting to broker 1 at h:1");
        assert!(matches!(e, ClientError::Io { .. }));
        assert!(e.to_string().starts_with("connecting to broker 1 at h:1: could not connect to h:1: "), "{e}");
        let k = ClientError::from(KafkaError::new(ResponseError::NotCoordinator, None, "committing")).context("outer");
        assert!(k.is(ResponseError::NotCoordinator));
        assert!(k.to_string().starts_with("outer: committing: NOT_COORDINATOR"), "{k}");
        assert!(!ClientError::Timeout("t".into()).is(ResponseError::RequestTimedOut));
    }
}
