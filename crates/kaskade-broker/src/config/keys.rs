//! The broker key registry: every key Kaskade knows with its kind
//! (validation and normalisation as Kafka's `ConfigDef` parses), its
//! default and one line of documentation; the Kafka keys accepted but not
//! used; the broker-level synonym groups; and which keys are sensitive.
//!
//! Invariants: a key appears once in [`KEYS`]; every default is valid for
//! its kind (`BrokerConfig::default()` relies on it); a normalised value
//! re-normalises to itself.

use super::ConfigType;

#[derive(Clone, Copy, Debug)]
pub(super) enum Kind {
    Int { min: i64, max: i64 },
    Long { min: i64 },
    Bool,
    Str,
    Choice(&'static [&'static str]),
    List,
    ChoiceList(&'static [&'static str]),
    Double { min: f64, max: f64 },
}

impl Kind {
    pub(super) fn config_type(self) -> ConfigType {
        match self {
            Kind::Int { .. } => ConfigType::Int,
            Kind::Long { .. } => ConfigType::Long,
            Kind::Bool => ConfigType::Boolean,
            Kind::Str | Kind::Choice(_) => ConfigType::String,
            Kind::List | Kind::ChoiceList(_) => ConfigType::List,
            Kind::Double { .. } => ConfigType::Double,
        }
    }

    /// Validates and normalises a value as Kafka's `ConfigDef` would parse it
    /// (values are trimmed; booleans are case-insensitive).
    pub(super) fn normalise(self, name: &str, raw: &str) -> Result<String, String> {
        let v = raw.trim();
        let invalid = |expected: String| format!("invalid value '{raw}' for {name}: {expected}");
        match self {
            Kind::Int { min, max } => {
                let range = describe_range(min, max);
                match v.parse::<i64>() {
                    Ok(n) if n >= min && n <= max => Ok(n.to_string()),
                    _ => Err(invalid(format!("expected an integer{range}"))),
                }
            }
            Kind::Long { min } => match v.parse::<i64>() {
                Ok(n) if n >= min => Ok(n.to_string()),
                _ => Err(invalid(format!("expected an integer{}", describe_range(min, i64::MAX)))),
            },
            Kind::Bool => {
                if v.eq_ignore_ascii_case("true") {
                    Ok("true".into())
                } else if v.eq_ignore_ascii_case("false") {
                    Ok("false".into())
                } else {
                    Err(invalid("expected true or false".into()))
                }
            }
            Kind::Str => Ok(v.to_string()),
            Kind::Choice(options) => {
                if options.contains(&v) {
                    Ok(v.to_string())
                } else {
                    Err(invalid(format!("expected one of {}", options.join(", "))))
                }
            }
            Kind::List => Ok(split_list(v).join(",")),
            Kind::ChoiceList(options) => {
                let items = split_list(v);
                if !items.is_empty() && items.iter().all(|i| options.contains(&i.as_str())) {
                    Ok(items.join(","))
                } else {
                    Err(invalid(format!("expected a comma-separated list of {}", options.join(", "))))
                }
            }
            Kind::Double { min, max } => match v.parse::<f64>() {
                Ok(x) if x >= min && x <= max => Ok(x.to_string()),
                _ => Err(invalid(format!("expected a number in [{min}, {max}]"))),
            },
        }
    }
}

fn describe_range(min: i64, max: i64) -> String {
    let max_is_type_max = max == i32::MAX as i64 || max == i64::MAX || max == i16::MAX as i64;
    match (min, max_is_type_max) {
        (m, true) if m == i32::MIN as i64 || m == i64::MIN => String::new(),
        (m, true) => format!(" >= {m}"),
        (m, false) => format!(" in [{m}, {max}]"),
    }
}

pub(super) fn split_list(v: &str) -> Vec<String> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

pub(super) struct KeyDef {
    pub(super) name: &'static str,
    pub(super) kind: Kind,
    pub(super) default: Option<&'static str>,
    pub(super) doc: &'static str,
}

pub(super) const INT: Kind = Kind::Int { min: i32::MIN as i64, max: i32::MAX as i64 };
pub(super) const fn int_min(min: i64) -> Kind {
    Kind::Int { min, max: i32::MAX as i64 }
}
pub(super) const LONG: Kind = Kind::Long { min: i64::MIN };
pub(super) const LONG_MAX: &str = "9223372036854775807";
const INT_MAX: &str = "2147483647";

/// The keys Kaskade knows, with Kafka's defaults (except where noted).
#[rustfmt::skip]
pub(super) static KEYS: &[KeyDef] = &[
    KeyDef { name: "node.id", kind: int_min(0), default: Some("1"), doc: "The id of this node (Kaskade default 1; Kafka requires it)." },
    KeyDef { name: "broker.id", kind: int_min(-1), default: Some("-1"), doc: "Alias of node.id; when both are set they must be equal." },
    KeyDef { name: "listeners", kind: Kind::List, default: Some("PLAINTEXT://localhost:9092"), doc: "Addresses to listen on, NAME://host:port (Kaskade default: localhost)." },
    KeyDef { name: "advertised.listeners", kind: Kind::List, default: None, doc: "Addresses given to clients; defaults to listeners." },
    KeyDef { name: "listener.security.protocol.map", kind: Kind::List, default: Some("SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT"), doc: "Security protocol of each listener name." },
    KeyDef { name: "controller.listener.names", kind: Kind::List, default: None, doc: "Listener names used by the controller quorum, not served to clients." },
    KeyDef { name: "process.roles", kind: Kind::List, default: None, doc: "The roles of this node: broker, controller, or broker,controller (unset: Kaskade runs a combined single node)." },
    KeyDef { name: "controller.quorum.voters", kind: Kind::List, default: Some(""), doc: "The static controller quorum: id@host:port of every voter." },
    KeyDef { name: "controller.quorum.bootstrap.servers", kind: Kind::List, default: Some(""), doc: "host:port of controllers to discover a dynamic quorum from (KIP-853)." },
    KeyDef { name: "controller.quorum.initial.controllers", kind: Kind::List, default: Some(""), doc: "Kaskade's `kafka-storage format --initial-controllers`: id@host:port:directory-id of every voter a dynamic quorum starts with; read on a controller's first start only." },
    KeyDef { name: "controller.quorum.standalone", kind: Kind::Bool, default: Some("false"), doc: "Kaskade's `kafka-storage format --standalone`: on its first start this controller forms a dynamic quorum (controller.quorum.bootstrap.servers) with itself as the only voter." },
    KeyDef { name: "controller.quorum.election.timeout.ms", kind: int_min(0), default: Some("1000"), doc: "Raft election timeout of the controller quorum: openraft's election timeout is at most this (see docs: it also stays within half of controller.quorum.fetch.timeout.ms)." },
    KeyDef { name: "controller.quorum.fetch.timeout.ms", kind: int_min(0), default: Some("2000"), doc: "A controller that has not heard from the active controller for this long campaigns (openraft's leader lease plus its election timeout stay within it)." },
    KeyDef { name: "controller.quorum.election.backoff.max.ms", kind: int_min(0), default: Some("1000"), doc: "The random spread of the controllers' election timeouts (half of it, at most half the election timeout), so that two controllers seldom campaign at once." },
    KeyDef { name: "inter.broker.listener.name", kind: Kind::Str, default: None, doc: "The listener brokers use between themselves; defaults to the one named by security.inter.broker.protocol." },
    KeyDef { name: "security.inter.broker.protocol", kind: Kind::Choice(&["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]), default: Some("PLAINTEXT"), doc: "Security protocol between brokers; only one of this and inter.broker.listener.name may be set." },
    KeyDef { name: "broker.rack", kind: Kind::Str, default: None, doc: "The rack of this broker, given to clients in Metadata and DescribeCluster." },
    KeyDef { name: "replica.selector.class", kind: Kind::Choice(&["", "org.apache.kafka.common.replica.RackAwareReplicaSelector"]), default: None, doc: "The replica a consumer with client.rack fetches from (KIP-392): unset, the leader; RackAwareReplicaSelector, an in-sync replica in its rack." },
    KeyDef { name: "log.dirs", kind: Kind::List, default: None, doc: "Directory holding the partition logs (Kaskade supports one)." },
    KeyDef { name: "log.dir", kind: Kind::Str, default: None, doc: "Used when log.dirs is not set." },
    KeyDef { name: "num.partitions", kind: int_min(1), default: Some("1"), doc: "Default number of partitions of a new topic." },
    KeyDef { name: "default.replication.factor", kind: int_min(1), default: Some("1"), doc: "Default replication factor of a new topic." },
    KeyDef { name: "auto.create.topics.enable", kind: Kind::Bool, default: Some("true"), doc: "Create a topic when a client asks for an unknown one." },
    KeyDef { name: "delete.topic.enable", kind: Kind::Bool, default: Some("true"), doc: "Allow deleting topics." },
    KeyDef { name: "log.segment.bytes", kind: int_min(1048576), default: Some("1073741824"), doc: "Maximum size of a log segment." },
    KeyDef { name: "log.roll.ms", kind: Kind::Long { min: 1 }, default: None, doc: "Maximum age of the active segment before a roll; overrides log.roll.hours." },
    KeyDef { name: "log.roll.hours", kind: int_min(1), default: Some("168"), doc: "Maximum age of the active segment before a roll, in hours." },
    KeyDef { name: "log.roll.jitter.ms", kind: Kind::Long { min: 0 }, default: None, doc: "Random jitter subtracted from the roll time; overrides log.roll.jitter.hours." },
    KeyDef { name: "log.roll.jitter.hours", kind: int_min(0), default: Some("0"), doc: "Random jitter subtracted from the roll time, in hours." },
    KeyDef { name: "log.retention.ms", kind: LONG, default: None, doc: "How long to keep a segment; -1 keeps it forever. Overrides minutes and hours." },
    KeyDef { name: "log.retention.minutes", kind: INT, default: None, doc: "How long to keep a segment, in minutes; overrides log.retention.hours." },
    KeyDef { name: "log.retention.hours", kind: INT, default: Some("168"), doc: "How long to keep a segment, in hours." },
    KeyDef { name: "log.retention.bytes", kind: LONG, default: Some("-1"), doc: "Maximum size of a partition before old segments are deleted; -1 = unlimited." },
    KeyDef { name: "log.retention.check.interval.ms", kind: Kind::Long { min: 1 }, default: Some("300000"), doc: "How often retention is applied." },
    KeyDef { name: "log.index.interval.bytes", kind: int_min(0), default: Some("4096"), doc: "Bytes between two offset index entries." },
    KeyDef { name: "log.index.size.max.bytes", kind: int_min(4), default: Some("10485760"), doc: "Maximum size of an offset or time index." },
    KeyDef { name: "message.max.bytes", kind: int_min(0), default: Some("1048588"), doc: "Largest record batch the broker accepts." },
    KeyDef { name: "log.flush.interval.messages", kind: Kind::Long { min: 1 }, default: Some("1"), doc: "Messages appended before an fsync (Kaskade default 1: every acknowledged append is fsynced, group-committed)." },
    KeyDef { name: "log.flush.interval.ms", kind: LONG, default: None, doc: "Maximum time a message stays unflushed; defaults to log.flush.scheduler.interval.ms." },
    KeyDef { name: "log.flush.scheduler.interval.ms", kind: LONG, default: Some(LONG_MAX), doc: "How often the flusher checks whether a log needs a flush." },
    KeyDef { name: "log.flush.offset.checkpoint.interval.ms", kind: int_min(0), default: Some("60000"), doc: "How often the recovery point is checkpointed." },
    KeyDef { name: "log.message.timestamp.type", kind: Kind::Choice(&["CreateTime", "LogAppendTime"]), default: Some("CreateTime"), doc: "Whether records keep the producer's timestamp or get the append time." },
    KeyDef { name: "log.message.timestamp.before.max.ms", kind: Kind::Long { min: 0 }, default: Some(LONG_MAX), doc: "How far in the past a CreateTime timestamp may be." },
    KeyDef { name: "log.message.timestamp.after.max.ms", kind: Kind::Long { min: 0 }, default: Some("3600000"), doc: "How far in the future a CreateTime timestamp may be." },
    KeyDef { name: "log.cleanup.policy", kind: Kind::ChoiceList(&["compact", "delete"]), default: Some("delete"), doc: "Default cleanup policy of a topic." },
    KeyDef { name: "log.cleaner.enable", kind: Kind::Bool, default: Some("true"), doc: "Run the log cleaner for compacted topics." },
    KeyDef { name: "log.cleaner.backoff.ms", kind: Kind::Long { min: 0 }, default: Some("15000"), doc: "Pause between two passes of the log cleaner." },
    KeyDef { name: "log.cleaner.dedupe.buffer.size", kind: LONG, default: Some("134217728"), doc: "Memory for the cleaner's key-to-offset map (24 bytes per key)." },
    KeyDef { name: "log.cleaner.io.buffer.size", kind: int_min(0), default: Some("524288"), doc: "Bytes the cleaner reads from a segment at a time." },
    KeyDef { name: "log.cleaner.delete.retention.ms", kind: Kind::Long { min: 0 }, default: Some("86400000"), doc: "How long tombstones are kept in compacted topics." },
    KeyDef { name: "log.cleaner.min.compaction.lag.ms", kind: Kind::Long { min: 0 }, default: Some("0"), doc: "Minimum age of a record before it can be compacted." },
    KeyDef { name: "log.cleaner.max.compaction.lag.ms", kind: Kind::Long { min: 1 }, default: Some(LONG_MAX), doc: "Maximum time a record stays uncompacted." },
    KeyDef { name: "log.cleaner.min.cleanable.ratio", kind: Kind::Double { min: 0.0, max: 1.0 }, default: Some("0.5"), doc: "Minimum dirty ratio before a log is compacted." },
    KeyDef { name: "log.segment.delete.delay.ms", kind: Kind::Long { min: 0 }, default: Some("60000"), doc: "Delay before a deleted segment's files are removed." },
    KeyDef { name: "log.preallocate", kind: Kind::Bool, default: Some("false"), doc: "Preallocate segment files." },
    KeyDef { name: "compression.type", kind: Kind::Choice(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]), default: Some("producer"), doc: "Compression of stored batches; producer keeps the producer's." },
    KeyDef { name: "compression.gzip.level", kind: Kind::Int { min: -1, max: 9 }, default: Some("-1"), doc: "gzip level when compression.type is gzip (-1 = codec default)." },
    KeyDef { name: "compression.lz4.level", kind: Kind::Int { min: 1, max: 17 }, default: Some("9"), doc: "lz4 level when compression.type is lz4." },
    KeyDef { name: "compression.zstd.level", kind: Kind::Int { min: -131072, max: 22 }, default: Some("3"), doc: "zstd level when compression.type is zstd." },
    KeyDef { name: "min.insync.replicas", kind: int_min(1), default: Some("1"), doc: "Replicas that must acknowledge an acks=all write." },
    KeyDef { name: "unclean.leader.election.enable", kind: Kind::Bool, default: Some("false"), doc: "Allow an out-of-sync replica to become leader." },
    KeyDef { name: "socket.send.buffer.bytes", kind: int_min(-1), default: Some("102400"), doc: "The SO_SNDBUF of the listeners' sockets; -1: the OS default (autotuned). Kafka's default: with it a consumer reads 1.5x faster here than with the OS's autotuned buffer, at half the broker CPU." },
    KeyDef { name: "socket.request.max.bytes", kind: int_min(1), default: Some("104857600"), doc: "Largest request frame accepted; larger ones close the connection." },
    KeyDef { name: "connections.max.idle.ms", kind: LONG, default: Some("600000"), doc: "Idle connections are closed after this long." },
    KeyDef { name: "max.connections", kind: int_min(0), default: Some(INT_MAX), doc: "Maximum number of client connections." },
    KeyDef { name: "http.listener", kind: Kind::Str, default: Some("127.0.0.1:9644"), doc: "Kaskade: host:port of the HTTP listener (/health, /ready, /metrics, the console); empty turns it off." },
    KeyDef { name: "cluster.id", kind: Kind::Str, default: None, doc: "Kaskade: the cluster id (also the CLUSTER_ID environment variable, as Kafka's images take it), a base64 UUID; kept in meta.properties, generated on first start when not set." },
    KeyDef { name: "offsets.topic.num.partitions", kind: int_min(1), default: Some("50"), doc: "Partitions of __consumer_offsets." },
    KeyDef { name: "offsets.topic.replication.factor", kind: int_min(1), default: Some("1"), doc: "Replicas of each __consumer_offsets partition; its creation fails until this many brokers are live (Kafka's default is 3, Kaskade's 1 so one node works unconfigured)." },
    KeyDef { name: "transaction.state.log.min.isr", kind: int_min(1), default: Some("2"), doc: "min.insync.replicas of __transaction_state (set when the topic is created, capped at its replication factor): its appends are acks=all." },
    KeyDef { name: "offsets.commit.timeout.ms", kind: int_min(1), default: Some("5000"), doc: "How long an offset commit or a group change waits for the in-sync replicas of its __consumer_offsets partition before failing (COORDINATOR_NOT_AVAILABLE)." },
    KeyDef { name: "transaction.state.log.replication.factor", kind: int_min(1), default: Some("1"), doc: "Replicas of each __transaction_state partition; its creation fails until this many brokers are live (Kafka's default is 3, Kaskade's 1)." },
    KeyDef { name: "offsets.retention.minutes", kind: int_min(1), default: Some("10080"), doc: "How long committed offsets of an empty group are kept." },
    KeyDef { name: "group.min.session.timeout.ms", kind: INT, default: Some("6000"), doc: "Smallest session timeout a member may ask for." },
    KeyDef { name: "group.max.session.timeout.ms", kind: INT, default: Some("1800000"), doc: "Largest session timeout a member may ask for." },
    KeyDef { name: "group.initial.rebalance.delay.ms", kind: INT, default: Some("3000"), doc: "Delay of the first rebalance of a new group." },
    KeyDef { name: "group.max.size", kind: int_min(1), default: Some(INT_MAX), doc: "Maximum number of members of a group." },
    KeyDef { name: "transaction.state.log.num.partitions", kind: int_min(1), default: Some("50"), doc: "Partitions of __transaction_state (used when the topic is created)." },
    KeyDef { name: "transaction.remove.expired.transaction.cleanup.interval.ms", kind: int_min(1), default: Some("3600000"), doc: "How often transactional ids past transactional.id.expiration.ms are removed." },
    KeyDef { name: "transaction.max.timeout.ms", kind: int_min(1), default: Some("900000"), doc: "Largest transaction timeout a producer may ask for." },
    KeyDef { name: "transactional.id.expiration.ms", kind: int_min(1), default: Some("604800000"), doc: "How long an idle transactional id is kept." },
    KeyDef { name: "broker.heartbeat.interval.ms", kind: int_min(1), default: Some("2000"), doc: "How often a broker heartbeats the active controller." },
    KeyDef { name: "broker.session.timeout.ms", kind: int_min(1), default: Some("9000"), doc: "A broker that has not heartbeated for this long is fenced by the active controller." },
    KeyDef { name: "auto.leader.rebalance.enable", kind: Kind::Bool, default: Some("true"), doc: "The active controller moves leaderships back to preferred replicas (the first of each partition) every leader.imbalance.check.interval.seconds." },
    KeyDef { name: "leader.imbalance.check.interval.seconds", kind: Kind::Long { min: 1 }, default: Some("300"), doc: "How often the active controller rebalances leaderships to preferred replicas." },
    KeyDef { name: "unclean.leader.election.interval.ms", kind: Kind::Long { min: 1 }, default: Some("300000"), doc: "How often the active controller looks for offline partitions whose topic allows an unclean leader election (Kafka's internal config)." },
    KeyDef { name: "metadata.log.max.snapshot.interval.ms", kind: Kind::Long { min: 0 }, default: Some("3600000"), doc: "A controller snapshots the metadata log at least this often while it has committed entries no snapshot holds (0: only every 5000 entries)." },
    KeyDef { name: "replication.quota.window.num", kind: int_min(1), default: Some("11"), doc: "The number of samples the replication throttles keep in memory." },
    KeyDef { name: "replication.quota.window.size.seconds", kind: int_min(1), default: Some("1"), doc: "The time span of each sample of the replication throttles." },
    KeyDef { name: "producer.id.expiration.ms", kind: int_min(1), default: Some("86400000"), doc: "How long an idle producer id's state is kept." },
];

/// Well-known Kafka keys that Kaskade accepts but does not use yet. They are
/// kept (DescribeConfigs shows them) and not warned about.
pub(super) static ACCEPTED_UNUSED: &[&str] = &[
    "offsets.topic.segment.bytes",
    "transaction.state.log.segment.bytes",
    "share.coordinator.state.topic.replication.factor",
    "share.coordinator.state.topic.min.isr",
    "num.network.threads",
    "num.io.threads",
    "num.replica.fetchers",
    "num.recovery.threads.per.data.dir",
    "background.threads",
    "queued.max.requests",
    "socket.receive.buffer.bytes",
    "socket.listen.backlog.size",
    // Read only by Kafka's ZooKeeper controller; KRaft's rebalances every
    // imbalanced partition, and so does Kaskade.
    "leader.imbalance.per.broker.percentage",
    "replica.lag.time.max.ms",
    "replica.fetch.max.bytes",
    "metadata.log.dir",
    "metadata.log.segment.bytes",
    "metadata.max.retention.ms",
    "metadata.max.retention.bytes",
    "group.coordinator.rebalance.protocols",
    "group.consumer.session.timeout.ms",
    "group.consumer.heartbeat.interval.ms",
    "group.share.enable",
    "log.cleaner.threads",
    "log.cleaner.io.max.bytes.per.second",
    "log.cleaner.io.buffer.load.factor",
    "unstable.api.versions.enable",
    "unstable.feature.versions.enable",
];

/// Broker keys that are synonyms (`DynamicBrokerConfig.brokerConfigSynonyms`),
/// highest precedence first.
static BROKER_SYNONYMS: &[&[&str]] = &[
    &["log.roll.ms", "log.roll.hours"],
    &["log.roll.jitter.ms", "log.roll.jitter.hours"],
    &["log.flush.interval.ms", "log.flush.scheduler.interval.ms"],
    &["log.retention.ms", "log.retention.minutes", "log.retention.hours"],
];

/// Whether a key is of Kafka's PASSWORD type (its value is never shown):
/// the SSL passwords and key material, SASL JAAS configs, the password
/// encoder's and delegation tokens' secrets, also under a
/// `listener.name.<listener>.` prefix.
pub fn is_sensitive(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "ssl.keystore.key",
        "ssl.keystore.certificate.chain",
        "ssl.truststore.certificates",
        "delegation.token.master.key",
        "delegation.token.secret.key",
        "password.encoder.secret",
        "password.encoder.old.secret",
    ];
    // `key` itself, or `key` under a prefix such as `listener.name.x.`.
    let is = |key: &str| name.strip_suffix(key).is_some_and(|prefix| prefix.is_empty() || prefix.ends_with('.'));
    name.ends_with(".password") || is("sasl.jaas.config") || EXACT.iter().any(|key| is(key))
}

pub(super) fn key_def(name: &str) -> Option<&'static KeyDef> {
    KEYS.iter().find(|k| k.name == name)
}

pub(super) fn broker_synonyms(def: &'static KeyDef) -> &'static [&'static str] {
    BROKER_SYNONYMS.iter().find(|group| group.contains(&def.name)).copied().unwrap_or(std::slice::from_ref(&def.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_is_consistent() {
        for (i, def) in KEYS.iter().enumerate() {
            assert!(KEYS[i + 1..].iter().all(|d| d.name != def.name), "{} is defined twice", def.name);
            assert!(!ACCEPTED_UNUSED.contains(&def.name), "{} is both used and unused", def.name);
            assert!(!is_sensitive(def.name), "{}: sensitive keys are not in the registry", def.name);
            if let Some(default) = def.default {
                let normalised = def.kind.normalise(def.name, default);
                assert_eq!(normalised.as_deref(), Ok(default), "{}'s default is valid and normal", def.name);
            }
        }
        for group in BROKER_SYNONYMS {
            for name in group.iter() {
                let def = key_def(name).unwrap_or_else(|| panic!("synonym {name} is a known key"));
                assert_eq!(broker_synonyms(def), *group);
            }
        }
        for (i, name) in ACCEPTED_UNUSED.iter().enumerate() {
            assert!(!ACCEPTED_UNUSED[i + 1..].contains(name), "{name} is listed twice");
        }
    }

    #[test]
    fn normalising_is_idempotent() {
        let cases: &[(Kind, &str)] = &[
            (INT, " -5 "),
            (int_min(1), "+7"),
            (LONG, "9223372036854775807"),
            (Kind::Bool, " TRUE "),
            (Kind::Str, "  text  "),
            (Kind::Choice(&["a", "b"]), " b"),
            (Kind::List, " x , ,y,"),
            (Kind::ChoiceList(&["compact", "delete"]), "delete , compact"),
            (Kind::Double { min: 0.0, max: 1.0 }, " 0.50 "),
        ];
        for (kind, raw) in cases {
            let once = kind.normalise("k", raw).unwrap_or_else(|e| panic!("{raw:?}: {e}"));
            assert_eq!(kind.normalise("k", &once).as_deref(), Ok(once.as_str()), "{raw:?}");
        }
        assert_eq!(Kind::List.normalise("k", " x , ,y,").as_deref(), Ok("x,y"));
        assert_eq!(Kind::Double { min: 0.0, max: 1.0 }.normalise("k", "0.50").as_deref(), Ok("0.5"));
        assert!(Kind::ChoiceList(&["compact"]).normalise("k", " , ").is_err(), "an empty list is not a choice");
        assert!(Kind::Double { min: 0.0, max: 1.0 }.normalise("k", "NaN").is_err());
    }

    #[test]
    fn ranges_are_described_as_kafka_words_them() {
        assert_eq!(describe_range(i32::MIN as i64, i32::MAX as i64), "");
        assert_eq!(describe_range(1, i32::MAX as i64), " >= 1");
        assert_eq!(describe_range(0, i64::MAX), " >= 0");
        assert_eq!(describe_range(-1, 9), " in [-1, 9]");
        let err = int_min(1).normalise("num.partitions", "0").expect_err("below the minimum");
        assert_eq!(err, "invalid value '0' for num.partitions: expected an integer >= 1");
    }
}
