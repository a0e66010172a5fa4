//! What a person at the `kaskade` command line can do about an error: the
//! CLI's own hints, naming its commands and flags. The client crate's
//! errors carry no such wording (it serves other programs too); every
//! error the CLI prints passes through here first, so a Kafka error
//! without a hint of its own gets the generic one for its code, and an
//! unreachable bootstrap list says how to start or point at a broker.

use kafka_protocol::ResponseError;
use kaskade_client::{ClientError, KafkaError};

/// No broker of the bootstrap list could be reached.
const UNREACHABLE: &str = "is a broker running? Start one with `kaskade serve`, or point at one with --bootstrap-server HOST:PORT (or KASKADE_BOOTSTRAP)";

/// `e` as the CLI prints it (after `error: `), with its hint.
pub fn report(mut e: anyhow::Error) -> String {
    if let Some(k) = e.downcast_mut::<KafkaError>() {
        fill(k);
        return format!("{e:#}");
    }
    let extra = match e.downcast_mut::<ClientError>() {
        Some(ClientError::Kafka(k)) => {
            fill(k);
            None
        }
        Some(ClientError::Unreachable(_)) => Some(UNREACHABLE),
        _ => None,
    };
    match extra {
        Some(h) => format!("{e:#}\n  hint: {h}"),
        None => format!("{e:#}"),
    }
}

/// `e` with, when it says that topic `name` does not exist, the hint to
/// create it (more precise than the generic one).
pub fn for_topic(e: ClientError, name: &str) -> ClientError {
    match e {
        ClientError::Kafka(k) if k.is(ResponseError::UnknownTopicOrPartition) && k.hint.is_none() => {
            ClientError::Kafka(k.with_hint(format!("create it with `kaskade topic create {name}`")))
        }
        e => e,
    }
}

/// A Kafka error with the generic hint for its code, unless it has one.
pub fn kafka(mut e: KafkaError) -> KafkaError {
    fill(&mut e);
    e
}

fn fill(e: &mut KafkaError) {
    if e.hint.is_none() {
        e.hint = for_code(e.error).map(str::to_string);
    }
}

/// Hints for codes whose cure does not depend on the command; commands
/// set their own with `with_hint` where they know better.
pub fn for_code(error: ResponseError) -> Option<&'static str> {
    use ResponseError as E;
    Some(match error {
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
    fn kafka_errors_get_the_generic_hint_unless_they_have_one() {
        let bare = KafkaError::new(ResponseError::TopicAlreadyExists, None, "creating topic 'a'");
        assert!(
            report(bare.clone().into()).ends_with("hint: pass --if-not-exists to treat an existing topic as success")
        );
        let wrapped = anyhow::Error::from(ClientError::from(bare.clone()));
        assert!(report(wrapped).contains("hint: pass --if-not-exists"));
        let own = bare.with_hint("pick another name");
        assert!(report(own.clone().into()).ends_with("hint: pick another name"));
        assert_eq!(kafka(own).hint.as_deref(), Some("pick another name"));
        let missing = ClientError::from(KafkaError::new(ResponseError::UnknownTopicOrPartition, None, "looking up"));
        assert!(report(for_topic(missing, "nope").into()).ends_with("hint: create it with `kaskade topic create nope`"));
        let unhinted = KafkaError::new(ResponseError::NotCoordinator, None, "committing");
        assert_eq!(kafka(unhinted).hint, None, "no generic hint for every code");
    }

    #[test]
    fn an_unreachable_bootstrap_says_how_to_reach_a_broker() {
        let e = anyhow::Error::from(ClientError::Unreachable("could not reach any broker: h:1: refused".into()));
        let text = report(e);
        assert!(text.starts_with("could not reach any broker: h:1: refused\n  hint: is a broker running?"), "{text}");
        assert!(text.contains("--bootstrap-server"));
        let other = anyhow::Error::from(ClientError::Unavailable("partition 0 has no leader".into()));
        assert_eq!(report(other), "partition 0 has no leader");
    }
}
