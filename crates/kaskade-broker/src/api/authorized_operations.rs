//! Authorized operations (KIP-430) as Kafka reports them with no
//! authorizer configured: every operation the resource type supports. A
//! bit field over Kafka's `AclOperation` codes; `OMITTED` when the client
//! did not ask.

/// Kafka's "not requested" value.
pub const OMITTED: i32 = i32::MIN;

// Kafka's AclOperation codes.
const READ: u8 = 3;
const WRITE: u8 = 4;
const CREATE: u8 = 5;
const DELETE: u8 = 6;
const ALTER: u8 = 7;
const DESCRIBE: u8 = 8;
const CLUSTER_ACTION: u8 = 9;
const DESCRIBE_CONFIGS: u8 = 10;
const ALTER_CONFIGS: u8 = 11;
const IDEMPOTENT_WRITE: u8 = 12;

const fn bits(ops: &[u8]) -> i32 {
    let mut field = 0i32;
    let mut i = 0;
    while i < ops.len() {
        field |= 1 << ops[i];
        i += 1;
    }
    field
}

/// A topic's 8 operations.
pub const TOPIC: i32 = bits(&[READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS]);
/// The cluster's 7 operations.
pub const CLUSTER: i32 =
    bits(&[CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE]);
/// A group's operations, as Kafka 4 lists them.
pub const GROUP: i32 = bits(&[READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS]);

/// `all` when the client asked for the operations, else `OMITTED`.
pub fn if_asked(asked: bool, all: i32) -> i32 {
    if asked {
        all
    } else {
        OMITTED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_what_apache_kafka_answers_without_an_authorizer() {
        // The values Apache Kafka 4.4 sent for Metadata, DescribeCluster and
        // DescribeGroups with the operations asked for.
        assert_eq!(TOPIC, 3576);
        assert_eq!(CLUSTER, 8096);
        assert_eq!(GROUP, 3400);
        assert_eq!(TOPIC.count_ones(), 8);
        assert_eq!(CLUSTER.count_ones(), 7);
        assert_eq!(if_asked(false, TOPIC), OMITTED);
    }
}
