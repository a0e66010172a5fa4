// Test data shared by the KRaft configuration tests: `include!`d by
// crates/kaskade-broker/src/config/kraft_tests.rs (loads and validates them)
// and crates/kaskade/tests/kraft_config.rs (starts `kaskade serve` with them).

/// The cluster id the seeds' compose files set.
#[allow(dead_code)]
pub(crate) const SEED_CLUSTER_ID: &str = "MkU3OEVBNTcwNTJENDM2Qk";

/// The `environment:` blocks of the single-broker docker-compose files users
/// bring (shared/seeds 000 to 003), as the container sees them.
pub(crate) const SEED_ENVIRONMENTS: &[(&str, &[(&str, &str)])] = &[
    (
        "000 apache/kafka:3.8.0",
        &[
            ("KAFKA_NODE_ID", "1"),
            ("KAFKA_PROCESS_ROLES", "broker,controller"),
            ("KAFKA_LISTENERS", "PLAINTEXT://:9092,CONTROLLER://:9093"),
            ("KAFKA_ADVERTISED_LISTENERS", "PLAINTEXT://localhost:9092"),
            ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER"),
            ("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"),
            ("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@localhost:9093"),
            ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1"),
            ("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1"),
            ("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1"),
            ("CLUSTER_ID", SEED_CLUSTER_ID),
        ],
    ),
    (
        "001 confluentinc/cp-kafka:latest",
        &[
            ("KAFKA_NODE_ID", "1"),
            ("KAFKA_PROCESS_ROLES", "broker,controller"),
            ("KAFKA_LISTENERS", "PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093"),
            ("KAFKA_ADVERTISED_LISTENERS", "PLAINTEXT://localhost:9092"),
            ("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@kafka:9093"),
            ("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"),
            ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER"),
            ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1"),
            ("CLUSTER_ID", SEED_CLUSTER_ID),
        ],
    ),
    (
        "002 apache/kafka:3.7.0",
        &[
            ("KAFKA_NODE_ID", "1"),
            ("KAFKA_PROCESS_ROLES", "broker,controller"),
            ("KAFKA_LISTENERS", "PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093"),
            ("KAFKA_ADVERTISED_LISTENERS", "PLAINTEXT://localhost:9092"),
            ("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@kafka:9093"),
            ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER"),
            ("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"),
            ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1"),
            ("KAFKA_LOG_RETENTION_HOURS", "168"),
        ],
    ),
    (
        "003 confluentinc/cp-kafka:7.6.0",
        &[
            ("KAFKA_NODE_ID", "1"),
            ("KAFKA_PROCESS_ROLES", "broker,controller"),
            ("KAFKA_LISTENERS", "PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093"),
            ("KAFKA_ADVERTISED_LISTENERS", "PLAINTEXT://localhost:9092"),
            ("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@kafka:9093"),
            ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER"),
            ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1"),
            ("CLUSTER_ID", SEED_CLUSTER_ID),
        ],
    ),
];
