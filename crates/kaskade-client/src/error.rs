//! Kafka error codes as errors a person can act on: Kafka's own name for
//! the code (`TOPIC_ALREADY_EXISTS`), the broker's message, and a hint.

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

/// Whether a produce/fetch/list-offsets error means "your metadata is stale,
/// refresh it and try again" (the request was not applied).
pub fn is_stale_metadata(code: i16) -> bool {
    matches!(
        ResponseError::try_from_code(code),
        Some(
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
    )
}

/// An error code returned by a broker, with what was being done.
#[derive(Debug, Clone)]
pub struct KafkaError {
    /// Kafka error code.
    pub code: i16,
    /// The broker's error message, if it sent one.
    pub message: Option<String>,
    /// What we were doing, e.g. "creating topic 'orders'".
    pub context: String,
    /// What the user can do about it.
    pub hint: Option<String>,
}

impl KafkaError {
    pub fn new(code: i16, message: Option<String>, context: impl Into<String>) -> Self {
        let context = context.into();
        let hint = default_hint(code).map(str::to_string);
        KafkaError { code, message: message.filter(|m| !m.is_empty()), context, hint }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn name(&self) -> String {
        error_name(self.code)
    }

    pub fn is(&self, e: ResponseError) -> bool {
        self.code == e.code()
    }
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

/// Generic hints for codes whose cure does not depend on the command.
/// Commands override these with `with_hint` where they know better.
fn default_hint(code: i16) -> Option<&'static str> {
    use ResponseError as E;
    Some(match ResponseError::try_from_code(code)? {
        E::TopicAlreadyExists => "pass --if-not-exists to treat an existing topic as success",
        E::UnknownTopicOrPartition => "list topics with `kaskade topic list`; create one with `kaskade topic create NAME`",
        E::UnknownTopicId => "the topic was deleted or re-created; run the command again",
        E::InvalidTopicException => "topic names are 1-249 characters of ASCII letters, digits, '.', '_' and '-', and may not be '.' or '..'",
        E::InvalidPartitions => "the partition count must be positive, and a topic's partition count can only grow",
        E::InvalidReplicationFactor => "the replication factor must be between 1 and the number of brokers (see `kaskade topic describe` or the broker list)",
        E::InvalidReplicaAssignment => "check the replica assignment against the live brokers",
        E::InvalidConfig => "check the config name and value; topic configs are Kafka's topic-level names, e.g. retention.ms=86400000, cleanup.policy=compact",
        E::PolicyViolation => "the broker's create/alter policy rejected the request",
        E::TopicDeletionDisabled => "the broker runs with delete.topic.enable=false",
        E::TopicAuthorizationFailed | E::ClusterAuthorizationFailed | E::GroupAuthorizationFailed | E::TransactionalIdAuthorizationFailed => {
            "the broker's ACLs deny this principal; ask an operator to grant access"
        }
        E::MessageTooLarge | E::RecordListTooLarge => "a record (or batch) is larger than the topic's max.message.bytes; send smaller records, use --compression, lower --batch-size, or raise max.message.bytes with `kaskade topic alter TOPIC --config max.message.bytes=N`",
        E::NotEnoughReplicas | E::NotEnoughReplicasAfterAppend => "fewer in-sync replicas than min.insync.replicas; bring brokers back or produce with --acks 1",
        E::InvalidRequiredAcks => "use --acks 0, 1 or all",
        E::UnsupportedCompressionType => "the broker or topic does not accept this compression; try --compression none",
        E::CorruptMessage | E::InvalidRecord => "the broker rejected the batch as invalid",
        E::RequestTimedOut => "the broker did not finish in time; check that it is healthy and try again",
        E::UnsupportedVersion => "the broker does not support a version of this request that kaskade speaks",
        E::ThrottlingQuotaExceeded => "the broker throttled the request; retry later",
        E::OffsetOutOfRange => "the offset is outside the partition's log; use --offset earliest or --offset latest",
        E::UnknownServerError => "the broker hit an unexpected error; see its log",
        E::TransactionalIdNotFound => "no producer has used this transactional.id (or it expired); list the known ones with `kaskade txn list`",
        _ => return None,
    })
}

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
        let e = KafkaError::new(36, Some("Topic 'a' already exists.".into()), "creating topic 'a'");
        let s = e.to_string();
        assert!(s.starts_with("creating topic 'a': TOPIC_ALREADY_EXISTS (Topic 'a' already exists.)"));
        assert!(s.contains("hint: pass --if-not-exists"));
    }
}
