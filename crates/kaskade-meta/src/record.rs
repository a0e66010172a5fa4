//! Metadata records: the only way the image changes.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MetadataRecord {
    /// A topic exists with this name and id.
    Topic { name: String, id: Uuid },
    /// A partition of a topic and where it lives. A later record of the same
    /// partition replaces it (KRaft's PartitionChangeRecord); its
    /// `partition_epoch` moves on by one per change, so a leader's ISR
    /// change made against an older state is refused (AlterPartition's
    /// INVALID_UPDATE_VERSION). Absent in records written before it existed.
    /// During a reassignment `replicas` is the union of the old and the
    /// target replicas, and `adding_replicas` / `removing_replicas` say which
    /// are joining and leaving (KRaft's PartitionRecord fields); both are
    /// left out of the JSON when empty, so records of partitions not being
    /// moved keep their old bytes and old records load unchanged.
    Partition {
        topic_id: Uuid,
        partition: i32,
        leader: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
        leader_epoch: i32,
        #[serde(default)]
        partition_epoch: i32,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        adding_replicas: Vec<i32>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        removing_replicas: Vec<i32>,
    },
    /// A topic config set (`Some`) or removed (`None`).
    TopicConfig { topic_id: Uuid, name: String, value: Option<String> },
    /// A topic and its partitions are gone.
    RemoveTopic { id: Uuid },
    /// Producer ids below `next_block_start` may have been handed out; the
    /// next block starts there (KRaft's ProducerIdsRecord).
    ProducerIds { next_block_start: i64 },
    /// A SCRAM credential of a user (KRaft's UserScramCredentialRecord):
    /// `mechanism` is Kafka's code (1 SCRAM-SHA-256, 2 SCRAM-SHA-512); the
    /// stored and server keys of RFC 5802, never the salted password.
    ScramCredential {
        user: String,
        mechanism: i8,
        salt: Vec<u8>,
        stored_key: Vec<u8>,
        server_key: Vec<u8>,
        iterations: i32,
    },
    /// A dynamic broker config set (`Some`) or removed (`None`), for one
    /// broker (`resource` = its node id) or the whole cluster (`""`), as
    /// KRaft's ConfigRecord for the BROKER resource.
    BrokerConfig { resource: String, name: String, value: Option<String> },
    /// A user's SCRAM credential for one mechanism is gone.
    RemoveScramCredential { user: String, mechanism: i8 },
    /// A broker joined the cluster (KRaft's RegisterBrokerRecord): its id,
    /// the incarnation (a new one per process start), the listeners clients
    /// reach it on, its rack, and whether it is fenced. A later
    /// registration of the same id replaces the earlier one. `process`
    /// (Kaskade's own: the console's overview shows it) is absent in
    /// registrations written before it existed and loads as `None`.
    RegisterBroker {
        node_id: i32,
        incarnation_id: Uuid,
        endpoints: Vec<BrokerEndpoint>,
        rack: Option<String>,
        fenced: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        process: Option<BrokerProcess>,
    },
    /// A registered broker is fenced (KRaft's FenceBrokerRecord): its
    /// session expired or it shut down; it is not listed to clients, leads
    /// nothing and gets no new replicas until unfenced.
    FenceBroker { node_id: i32 },
    /// A fenced broker heartbeats again and has caught up with the metadata
    /// log (KRaft's UnfenceBrokerRecord).
    UnfenceBroker { node_id: i32 },
    /// The start of a snapshot (KRaft's SnapshotHeaderRecord): the next
    /// `records` records rebuild the image as it was at `end_offset`.
    Snapshot { end_offset: i64, records: i64 },
}

/// One advertised listener of a registered broker (KRaft's
/// BrokerEndpoint: listener name, host, port, security protocol).
///
/// Compatibility: registrations written before they carried every
/// listener hold only the first advertised one and no `security_protocol`
/// (it is left out of the JSON when `None`, and absent reads as `None`),
/// so old metadata logs and snapshots load unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerEndpoint {
    pub listener: String,
    pub host: String,
    pub port: u16,
    /// The listener's security protocol (`PLAINTEXT`, `SASL_SSL`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_protocol: Option<String>,
}

/// The broker process behind a registration: its software version and
/// when it started (wall clock, ms since the Unix epoch), so every node
/// can tell any broker's version and uptime. Not part of KRaft's record
/// (Kafka keeps these in JMX, per broker); a new one per incarnation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerProcess {
    pub version: String,
    pub start_time_ms: i64,
}
