//! Broker configuration: Kafka's key names, defaults and validation.
//!
//! Sources, lowest to highest precedence:
//! 1. the defaults (Kafka 4's, except where Kaskade differs on purpose:
//!    `listeners` defaults to `PLAINTEXT://localhost:9092`,
//!    `log.flush.interval.messages` to 1 so every acknowledged append is
//!    fsynced, `node.id` to 1, and `log.dirs` is left to the binary);
//! 2. a `server.properties` file (Java properties format);
//! 3. `KAFKA_*` environment variables, mapped as Apache Kafka's container
//!    image maps them (`KAFKA_LOG_RETENTION_HOURS` -> `log.retention.hours`);
//! 4. explicit overrides (the CLI's `--override key=value`).
//!
//! Unknown keys are logged at warn and ignored; well-known Kafka keys that
//! Kaskade accepts but does not use (`process.roles`, ...) are kept, so
//! DescribeConfigs still shows them. An invalid value stops start-up with an
//! error naming the key and the accepted values.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub mod dynamic;

/// Where a configuration value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConfigSource {
    /// The built-in default.
    Default,
    /// The `server.properties` file.
    StaticFile,
    /// A `KAFKA_*` environment variable.
    Env,
    /// An explicit override (`--override key=value`).
    Override,
    /// A dynamic value set for this broker at run time.
    DynamicBroker,
    /// A dynamic value set at run time for every broker of the cluster.
    DynamicDefault,
}

impl ConfigSource {
    /// The DescribeConfigs `ConfigSource` code: `DEFAULT_CONFIG` (5) for
    /// defaults, `STATIC_BROKER_CONFIG` (4) for everything else (in Kafka the
    /// environment and `--override` both end up in the static broker config).
    pub fn kafka_code(self) -> i8 {
        match self {
            ConfigSource::Default => 5,
            ConfigSource::StaticFile | ConfigSource::Env | ConfigSource::Override => 4,
            ConfigSource::DynamicBroker => 2,
            ConfigSource::DynamicDefault => 3,
        }
    }
}

/// The type of a configuration, with DescribeConfigs' `ConfigType` codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigType {
    /// BOOLEAN (1)
    Boolean,
    /// STRING (2)
    String,
    /// INT (3)
    Int,
    /// SHORT (4)
    Short,
    /// LONG (5)
    Long,
    /// DOUBLE (6)
    Double,
    /// LIST (7)
    List,
    /// PASSWORD (9)
    Password,
}

impl ConfigType {
    /// The DescribeConfigs `ConfigType` code.
    pub fn kafka_code(self) -> i8 {
        match self {
            ConfigType::Boolean => 1,
            ConfigType::String => 2,
            ConfigType::Int => 3,
            ConfigType::Short => 4,
            ConfigType::Long => 5,
            ConfigType::Double => 6,
            ConfigType::List => 7,
            ConfigType::Password => 9,
        }
    }
}

/// One synonym of a configuration, as DescribeConfigs reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigSynonym {
    /// The broker-level key.
    pub name: &'static str,
    /// Its value, `None` when sensitive.
    pub value: Option<String>,
    /// Where the value came from.
    pub source: ConfigSource,
}

/// One broker configuration, as DescribeConfigs on the broker reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigEntry {
    /// The key.
    pub name: String,
    /// The value as Kafka renders it; `None` when unset without a default or
    /// sensitive.
    pub value: Option<String>,
    /// Where the value came from (the source of the first synonym).
    pub source: ConfigSource,
    /// Whether the value is hidden.
    pub is_sensitive: bool,
    /// Whether it cannot be changed at run time (all broker keys, for now).
    pub read_only: bool,
    /// The type.
    pub config_type: ConfigType,
    /// One line of documentation.
    pub documentation: &'static str,
    /// The synonyms, highest precedence first, computed as Kafka does.
    pub synonyms: Vec<ConfigSynonym>,
}

/// The default of one topic-level configuration, derived from the broker
/// configuration, with the broker-level synonyms DescribeConfigs reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicConfigDefault {
    /// The topic-level key (`retention.ms`).
    pub name: &'static str,
    /// The effective default for topics, as Kafka renders it.
    pub value: Option<String>,
    /// The source Kafka reports when the topic does not override it.
    pub source: ConfigSource,
    /// The type of the topic-level key.
    pub config_type: ConfigType,
    /// The broker-level synonyms, as Kafka lists them (Kafka's rule: set
    /// values in synonym order, then defaults in synonym order, then drop
    /// leading entries until the primary broker key).
    pub synonyms: Vec<ConfigSynonym>,
    /// The broker-level key names this topic key inherits from, primary first.
    pub broker_keys: &'static [&'static str],
}

/// The timestamp a partition stores for appended records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampType {
    /// The producer's timestamp.
    CreateTime,
    /// The broker's clock at append.
    LogAppendTime,
}

/// A listener, `NAME://host:port`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ListenerSpec {
    /// The listener name, upper case (`PLAINTEXT`).
    pub name: String,
    /// The host: empty means every address.
    pub host: String,
    /// The port; 0 asks for an ephemeral port.
    pub port: u16,
}

impl ListenerSpec {
    /// Parses `NAME://host:port`, `NAME://:port`, `NAME://[::1]:port`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (name, rest) =
            text.split_once("://").ok_or_else(|| format!("'{text}' is not of the form NAME://host:port"))?;
        if name.is_empty() {
            return Err(format!("'{text}' has no listener name"));
        }
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(format!("'{text}' has an invalid listener name '{name}'"));
        }
        let (host, port) = if let Some(after) = rest.strip_prefix('[') {
            let (host, tail) =
                after.split_once(']').ok_or_else(|| format!("'{text}' has an unterminated IPv6 address"))?;
            let port = tail.strip_prefix(':').ok_or_else(|| format!("'{text}' has no port"))?;
            (host, port)
        } else {
            rest.rsplit_once(':').ok_or_else(|| format!("'{text}' has no port"))?
        };
        let port: u16 =
            port.parse().map_err(|_| format!("'{text}' has an invalid port '{port}' (expected 0 to 65535)"))?;
        Ok(ListenerSpec { name: name.to_ascii_uppercase(), host: host.to_string(), port })
    }
}

impl fmt::Display for ListenerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.name, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.name, self.host, self.port)
        }
    }
}

/// A configuration error: the file cannot be read, or values are invalid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The properties file cannot be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// One or more values are invalid; one message per line.
    #[error("{}", .0.join("\n"))]
    Invalid(Vec<String>),
}

impl From<ConfigError> for crate::error::BrokerError {
    fn from(e: ConfigError) -> Self {
        crate::error::BrokerError::Config(e.to_string())
    }
}

/// The sources the broker configuration is loaded from.
#[derive(Clone, Debug, Default)]
pub struct ConfigSources {
    /// A `server.properties` file.
    pub properties_file: Option<PathBuf>,
    /// The process environment (only `KAFKA_*` variables are used); pass
    /// `std::env::vars().collect()`.
    pub env: Vec<(String, String)>,
    /// Explicit `key=value` overrides, in order (the last one wins).
    pub overrides: Vec<(String, String)>,
}

/// A value as given, with its source.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Setting {
    value: String,
    source: ConfigSource,
}

/// The broker configuration. Build it with [`BrokerConfig::load`] (or
/// [`BrokerConfig::from_overrides`] in tests) so that the typed fields and
/// [`BrokerConfig::describe`] agree.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// `node.id` (alias `broker.id`).
    pub node_id: i32,
    /// `listeners`, every one including controller listeners.
    pub listeners: Vec<ListenerSpec>,
    /// `advertised.listeners` (defaults to `listeners`).
    pub advertised_listeners: Vec<ListenerSpec>,
    /// `controller.listener.names`: listeners not served to clients.
    pub controller_listener_names: Vec<String>,
    /// `log.dirs` / `log.dir`; `None` lets the binary choose.
    pub log_dir: Option<PathBuf>,
    /// `num.partitions`.
    pub num_partitions: i32,
    /// `default.replication.factor`.
    pub default_replication_factor: i16,
    /// `auto.create.topics.enable`.
    pub auto_create_topics_enable: bool,
    /// `delete.topic.enable`.
    pub delete_topic_enable: bool,
    /// `log.segment.bytes`.
    pub log_segment_bytes: i32,
    /// `log.roll.ms`, else `log.roll.hours`.
    pub log_roll_ms: i64,
    /// `log.retention.ms`, else `.minutes`, else `.hours`; -1 = unlimited.
    pub log_retention_ms: i64,
    /// `log.retention.bytes`; -1 = unlimited.
    pub log_retention_bytes: i64,
    /// `log.retention.check.interval.ms`.
    pub log_retention_check_interval_ms: i64,
    /// `log.index.interval.bytes`.
    pub log_index_interval_bytes: i32,
    /// `log.index.size.max.bytes`.
    pub log_index_size_max_bytes: i32,
    /// `message.max.bytes`.
    pub message_max_bytes: i32,
    /// `log.flush.interval.messages` (Kaskade default 1).
    pub log_flush_interval_messages: i64,
    /// `log.flush.interval.ms`.
    pub log_flush_interval_ms: Option<i64>,
    /// `log.flush.offset.checkpoint.interval.ms`.
    pub log_flush_offset_checkpoint_interval_ms: i32,
    /// `log.message.timestamp.type`.
    pub log_message_timestamp_type: TimestampType,
    /// `log.cleanup.policy`.
    pub log_cleanup_policy: Vec<String>,
    /// `log.cleaner.enable`.
    pub log_cleaner_enable: bool,
    /// `log.cleaner.backoff.ms`.
    pub log_cleaner_backoff_ms: i64,
    /// `log.cleaner.dedupe.buffer.size`.
    pub log_cleaner_dedupe_buffer_size: i64,
    /// `log.cleaner.io.buffer.size`.
    pub log_cleaner_io_buffer_size: i32,
    /// `min.insync.replicas`.
    pub min_insync_replicas: i32,
    /// `compression.type`.
    pub compression_type: String,
    /// `socket.request.max.bytes`.
    pub socket_request_max_bytes: i32,
    /// `connections.max.idle.ms`.
    pub connections_max_idle_ms: i64,
    /// `max.connections`.
    pub max_connections: i32,
    /// `cluster.id` (Kaskade-specific): `None` lets the binary generate and
    /// persist one.
    pub cluster_id: Option<String>,
    /// `offsets.topic.num.partitions`.
    pub offsets_topic_num_partitions: i32,
    /// `offsets.retention.minutes`.
    pub offsets_retention_minutes: i32,
    /// `group.min.session.timeout.ms`.
    pub group_min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub group_max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms`.
    pub group_initial_rebalance_delay_ms: i32,
    /// `group.max.size`.
    pub group_max_size: i32,
    /// `transaction.max.timeout.ms`.
    pub transaction_max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`.
    pub transactional_id_expiration_ms: i32,
    /// `transaction.state.log.num.partitions`.
    pub transaction_state_log_num_partitions: i32,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`.
    pub transaction_remove_expired_interval_ms: i64,
    /// `producer.id.expiration.ms`.
    pub producer_id_expiration_ms: i32,
    /// Every value given explicitly (known and accepted-but-unused keys),
    /// normalised, with its source.
    settings: BTreeMap<String, Setting>,
}

// ---------------------------------------------------------------------------
// The key table.

#[derive(Clone, Copy, Debug)]
enum Kind {
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
    fn config_type(self) -> ConfigType {
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
    fn normalise(self, name: &str, raw: &str) -> Result<String, String> {
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

fn split_list(v: &str) -> Vec<String> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

struct KeyDef {
    name: &'static str,
    kind: Kind,
    default: Option<&'static str>,
    doc: &'static str,
}

const INT: Kind = Kind::Int { min: i32::MIN as i64, max: i32::MAX as i64 };
const fn int_min(min: i64) -> Kind {
    Kind::Int { min, max: i32::MAX as i64 }
}
const LONG: Kind = Kind::Long { min: i64::MIN };
const LONG_MAX: &str = "9223372036854775807";
const INT_MAX: &str = "2147483647";

/// The keys Kaskade knows, with Kafka's defaults (except where noted).
#[rustfmt::skip]
static KEYS: &[KeyDef] = &[
    KeyDef { name: "node.id", kind: int_min(0), default: Some("1"), doc: "The id of this node (Kaskade default 1; Kafka requires it)." },
    KeyDef { name: "broker.id", kind: int_min(-1), default: Some("-1"), doc: "Alias of node.id; when both are set they must be equal." },
    KeyDef { name: "listeners", kind: Kind::List, default: Some("PLAINTEXT://localhost:9092"), doc: "Addresses to listen on, NAME://host:port (Kaskade default: localhost)." },
    KeyDef { name: "advertised.listeners", kind: Kind::List, default: None, doc: "Addresses given to clients; defaults to listeners." },
    KeyDef { name: "listener.security.protocol.map", kind: Kind::List, default: Some("SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT"), doc: "Security protocol of each listener name." },
    KeyDef { name: "controller.listener.names", kind: Kind::List, default: None, doc: "Listener names used by the controller quorum, not served to clients." },
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
    KeyDef { name: "socket.request.max.bytes", kind: int_min(1), default: Some("104857600"), doc: "Largest request frame accepted; larger ones close the connection." },
    KeyDef { name: "connections.max.idle.ms", kind: LONG, default: Some("600000"), doc: "Idle connections are closed after this long." },
    KeyDef { name: "max.connections", kind: int_min(0), default: Some(INT_MAX), doc: "Maximum number of client connections." },
    KeyDef { name: "cluster.id", kind: Kind::Str, default: None, doc: "Kaskade: the cluster id; generated and persisted when not set." },
    KeyDef { name: "offsets.topic.num.partitions", kind: int_min(1), default: Some("50"), doc: "Partitions of __consumer_offsets." },
    KeyDef { name: "offsets.retention.minutes", kind: int_min(1), default: Some("10080"), doc: "How long committed offsets of an empty group are kept." },
    KeyDef { name: "group.min.session.timeout.ms", kind: INT, default: Some("6000"), doc: "Smallest session timeout a member may ask for." },
    KeyDef { name: "group.max.session.timeout.ms", kind: INT, default: Some("1800000"), doc: "Largest session timeout a member may ask for." },
    KeyDef { name: "group.initial.rebalance.delay.ms", kind: INT, default: Some("3000"), doc: "Delay of the first rebalance of a new group." },
    KeyDef { name: "group.max.size", kind: int_min(1), default: Some(INT_MAX), doc: "Maximum number of members of a group." },
    KeyDef { name: "transaction.state.log.num.partitions", kind: int_min(1), default: Some("50"), doc: "Partitions of __transaction_state (used when the topic is created)." },
    KeyDef { name: "transaction.remove.expired.transaction.cleanup.interval.ms", kind: int_min(1), default: Some("3600000"), doc: "How often transactional ids past transactional.id.expiration.ms are removed." },
    KeyDef { name: "transaction.max.timeout.ms", kind: int_min(1), default: Some("900000"), doc: "Largest transaction timeout a producer may ask for." },
    KeyDef { name: "transactional.id.expiration.ms", kind: int_min(1), default: Some("604800000"), doc: "How long an idle transactional id is kept." },
    KeyDef { name: "producer.id.expiration.ms", kind: int_min(1), default: Some("86400000"), doc: "How long an idle producer id's state is kept." },
];

/// Well-known Kafka keys that Kaskade accepts but does not use yet. They are
/// kept (DescribeConfigs shows them) and not warned about.
static ACCEPTED_UNUSED: &[&str] = &[
    "process.roles",
    "controller.quorum.voters",
    "controller.quorum.bootstrap.servers",
    "controller.quorum.election.timeout.ms",
    "controller.quorum.fetch.timeout.ms",
    "inter.broker.listener.name",
    "security.inter.broker.protocol",
    "offsets.topic.replication.factor",
    "offsets.topic.segment.bytes",
    "offsets.commit.timeout.ms",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    "transaction.state.log.segment.bytes",
    "share.coordinator.state.topic.replication.factor",
    "share.coordinator.state.topic.min.isr",
    "num.network.threads",
    "num.io.threads",
    "num.replica.fetchers",
    "num.recovery.threads.per.data.dir",
    "background.threads",
    "queued.max.requests",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "socket.listen.backlog.size",
    "auto.leader.rebalance.enable",
    "leader.imbalance.check.interval.seconds",
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

/// `KAFKA_*` variables that are not broker configuration: those Apache
/// Kafka's container image excludes (`KafkaDockerWrapper`), plus the ones
/// its scripts read (`KAFKA_HEAP_OPTS`, `KAFKA_JMX_*`, `KAFKA_HOME`, ...).
static ENV_NOT_CONFIG: &[&str] = &[
    "KAFKA_VERSION",
    "KAFKA_HEAP_OPT",
    "KAFKA_HEAP_OPTS",
    "KAFKA_LOG4J_OPTS",
    "KAFKA_OPTS",
    "KAFKA_JVM_PERFORMANCE_OPTS",
    "KAFKA_GC_LOG_OPTS",
    "KAFKA_LOG4J_ROOT_LOGLEVEL",
    "KAFKA_LOG4J_LOGGERS",
    "KAFKA_TOOLS_LOG4J_LOGLEVEL",
    "KAFKA_HOME",
    "KAFKA_DEBUG",
    "KAFKA_LOG_DIR_OPTS",
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

fn key_def(name: &str) -> Option<&'static KeyDef> {
    KEYS.iter().find(|k| k.name == name)
}

fn broker_synonyms(def: &'static KeyDef) -> &'static [&'static str] {
    BROKER_SYNONYMS.iter().find(|group| group.contains(&def.name)).copied().unwrap_or(std::slice::from_ref(&def.name))
}

/// A topic-level key, its type and validation, and its broker synonyms.
struct TopicKeyDef {
    name: &'static str,
    kind: Kind,
    broker_keys: &'static [&'static str],
    /// The default when no broker key backs it.
    fixed_default: Option<&'static str>,
}

#[rustfmt::skip]
static TOPIC_KEYS: &[TopicKeyDef] = &[
    TopicKeyDef { name: "cleanup.policy", kind: Kind::ChoiceList(&["compact", "delete"]), broker_keys: &["log.cleanup.policy"], fixed_default: None },
    TopicKeyDef { name: "compression.gzip.level", kind: Kind::Int { min: -1, max: 9 }, broker_keys: &["compression.gzip.level"], fixed_default: None },
    TopicKeyDef { name: "compression.lz4.level", kind: Kind::Int { min: 1, max: 17 }, broker_keys: &["compression.lz4.level"], fixed_default: None },
    TopicKeyDef { name: "compression.type", kind: Kind::Choice(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]), broker_keys: &["compression.type"], fixed_default: None },
    TopicKeyDef { name: "compression.zstd.level", kind: Kind::Int { min: -131072, max: 22 }, broker_keys: &["compression.zstd.level"], fixed_default: None },
    TopicKeyDef { name: "delete.retention.ms", kind: Kind::Long { min: 0 }, broker_keys: &["log.cleaner.delete.retention.ms"], fixed_default: None },
    TopicKeyDef { name: "file.delete.delay.ms", kind: Kind::Long { min: 0 }, broker_keys: &["log.segment.delete.delay.ms"], fixed_default: None },
    TopicKeyDef { name: "flush.messages", kind: Kind::Long { min: 1 }, broker_keys: &["log.flush.interval.messages"], fixed_default: None },
    TopicKeyDef { name: "flush.ms", kind: Kind::Long { min: 0 }, broker_keys: &["log.flush.interval.ms", "log.flush.scheduler.interval.ms"], fixed_default: None },
    TopicKeyDef { name: "follower.replication.throttled.replicas", kind: Kind::List, broker_keys: &[], fixed_default: Some("") },
    TopicKeyDef { name: "index.interval.bytes", kind: int_min(0), broker_keys: &["log.index.interval.bytes"], fixed_default: None },
    TopicKeyDef { name: "leader.replication.throttled.replicas", kind: Kind::List, broker_keys: &[], fixed_default: Some("") },
    TopicKeyDef { name: "max.compaction.lag.ms", kind: Kind::Long { min: 1 }, broker_keys: &["log.cleaner.max.compaction.lag.ms"], fixed_default: None },
    TopicKeyDef { name: "max.message.bytes", kind: int_min(0), broker_keys: &["message.max.bytes"], fixed_default: None },
    TopicKeyDef { name: "message.timestamp.after.max.ms", kind: Kind::Long { min: 0 }, broker_keys: &["log.message.timestamp.after.max.ms"], fixed_default: None },
    TopicKeyDef { name: "message.timestamp.before.max.ms", kind: Kind::Long { min: 0 }, broker_keys: &["log.message.timestamp.before.max.ms"], fixed_default: None },
    TopicKeyDef { name: "message.timestamp.type", kind: Kind::Choice(&["CreateTime", "LogAppendTime"]), broker_keys: &["log.message.timestamp.type"], fixed_default: None },
    TopicKeyDef { name: "min.cleanable.dirty.ratio", kind: Kind::Double { min: 0.0, max: 1.0 }, broker_keys: &["log.cleaner.min.cleanable.ratio"], fixed_default: None },
    TopicKeyDef { name: "min.compaction.lag.ms", kind: Kind::Long { min: 0 }, broker_keys: &["log.cleaner.min.compaction.lag.ms"], fixed_default: None },
    TopicKeyDef { name: "min.insync.replicas", kind: int_min(1), broker_keys: &["min.insync.replicas"], fixed_default: None },
    TopicKeyDef { name: "preallocate", kind: Kind::Bool, broker_keys: &["log.preallocate"], fixed_default: None },
    TopicKeyDef { name: "remote.storage.enable", kind: Kind::Bool, broker_keys: &[], fixed_default: Some("false") },
    TopicKeyDef { name: "retention.bytes", kind: LONG, broker_keys: &["log.retention.bytes"], fixed_default: None },
    TopicKeyDef { name: "retention.ms", kind: Kind::Long { min: -1 }, broker_keys: &["log.retention.ms", "log.retention.minutes", "log.retention.hours"], fixed_default: None },
    TopicKeyDef { name: "segment.bytes", kind: int_min(1048576), broker_keys: &["log.segment.bytes"], fixed_default: None },
    TopicKeyDef { name: "segment.index.bytes", kind: int_min(4), broker_keys: &["log.index.size.max.bytes"], fixed_default: None },
    TopicKeyDef { name: "segment.jitter.ms", kind: Kind::Long { min: 0 }, broker_keys: &["log.roll.jitter.ms", "log.roll.jitter.hours"], fixed_default: None },
    TopicKeyDef { name: "segment.ms", kind: Kind::Long { min: 1 }, broker_keys: &["log.roll.ms", "log.roll.hours"], fixed_default: None },
    TopicKeyDef { name: "unclean.leader.election.enable", kind: Kind::Bool, broker_keys: &["unclean.leader.election.enable"], fixed_default: None },
];

/// Validates a topic-level configuration value (CreateTopics, AlterConfigs)
/// and returns it normalised. `Err` carries a message naming the key and the
/// accepted values; an unknown key is an error too (Kafka answers
/// INVALID_CONFIG for both).
pub fn validate_topic_config(name: &str, value: &str) -> Result<String, String> {
    match TOPIC_KEYS.iter().find(|k| k.name == name) {
        Some(def) => def.kind.normalise(name, value),
        None => Err(format!("unknown topic configuration '{name}'")),
    }
}

/// Whether `name` is a topic-level configuration Kaskade knows.
pub fn is_topic_config(name: &str) -> bool {
    TOPIC_KEYS.iter().any(|k| k.name == name)
}

// ---------------------------------------------------------------------------
// Sources.

/// Maps a `KAFKA_*` environment variable to a configuration key as Apache
/// Kafka's container image does: drop `KAFKA_`, lower-case, `_` -> `.`,
/// then `...` -> `-` and `..` -> `_` (so `___` means `-` and `__` means `_`).
/// `None` for other variables and for the image's own variables
/// (`KAFKA_HEAP_OPTS`, `KAFKA_OPTS`, `KAFKA_JMX_*`, `KAFKA_VERSION`, ...).
pub fn env_var_to_key(name: &str) -> Option<String> {
    let rest = name.strip_prefix("KAFKA_")?;
    if rest.is_empty() || ENV_NOT_CONFIG.contains(&name) || name.starts_with("KAFKA_JMX_") {
        return None;
    }
    Some(rest.to_lowercase().replace('_', ".").replace("...", "-").replace("..", "_"))
}

/// Parses Java properties text (`java.util.Properties.load`): `key=value`,
/// `key: value` or `key value`; `#` and `!` comment lines; a line ending in
/// an odd number of backslashes continues on the next line (whose leading
/// whitespace is dropped); escapes `\t \n \r \f \uXXXX` and `\x` -> `x`.
/// Returns the pairs in order; later duplicates win when merged.
pub fn parse_properties(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = text.split(['\n', '\r']).peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start_matches([' ', '\t', '\u{c}']);
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
            continue;
        }
        // Join continuation lines into one logical line.
        let mut logical = String::from(trimmed);
        while ends_with_odd_backslashes(&logical) {
            logical.pop();
            match lines.next() {
                Some(next) => logical.push_str(next.trim_start_matches([' ', '\t', '\u{c}'])),
                None => break,
            }
        }
        out.push(split_key_value(&logical));
    }
    out
}

fn ends_with_odd_backslashes(s: &str) -> bool {
    s.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

fn split_key_value(line: &str) -> (String, String) {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    let mut key_end = chars.len();
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '=' | ':' | ' ' | '\t' | '\u{c}' => {
                key_end = i;
                break;
            }
            _ => i += 1,
        }
    }
    let key_end = key_end.min(chars.len());
    let mut j = key_end;
    while j < chars.len() && matches!(chars[j], ' ' | '\t' | '\u{c}') {
        j += 1;
    }
    if j < chars.len() && matches!(chars[j], '=' | ':') {
        j += 1;
        while j < chars.len() && matches!(chars[j], ' ' | '\t' | '\u{c}') {
            j += 1;
        }
    }
    let key: String = chars[..key_end].iter().collect();
    let value: String = chars[j.min(chars.len())..].iter().collect();
    (unescape(&key), unescape(&value))
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.clone().take(4).collect();
                match (hex.len() == 4).then(|| u32::from_str_radix(&hex, 16).ok()).flatten().and_then(char::from_u32) {
                    Some(ch) => {
                        out.push(ch);
                        for _ in 0..4 {
                            chars.next();
                        }
                    }
                    // Java throws on a malformed \u escape; keep the text.
                    None => out.push('u'),
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Loading.

impl BrokerConfig {
    /// Loads the configuration from its sources; see the module docs.
    pub fn load(sources: &ConfigSources) -> Result<Self, ConfigError> {
        let mut given: Vec<(String, String, ConfigSource)> = Vec::new();
        if let Some(path) = &sources.properties_file {
            let bytes = std::fs::read(path).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
            for (k, v) in parse_properties(&String::from_utf8_lossy(&bytes)) {
                given.push((k, v, ConfigSource::StaticFile));
            }
        }
        let mut env: Vec<&(String, String)> = sources.env.iter().collect();
        env.sort();
        for (name, value) in env {
            if let Some(key) = env_var_to_key(name) {
                given.push((key, value.clone(), ConfigSource::Env));
            }
        }
        for (k, v) in &sources.overrides {
            given.push((k.trim().to_string(), v.clone(), ConfigSource::Override));
        }
        Self::from_given(given)
    }

    /// Builds a configuration from `key=value` pairs given as overrides, on
    /// top of the defaults (for tests and embedding).
    pub fn from_overrides<K: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, ConfigError> {
        Self::load(&ConfigSources {
            overrides: pairs.into_iter().map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string())).collect(),
            ..ConfigSources::default()
        })
    }

    fn from_given(given: Vec<(String, String, ConfigSource)>) -> Result<Self, ConfigError> {
        let mut errors = Vec::new();
        let mut settings: BTreeMap<String, Setting> = BTreeMap::new();
        let mut unknown: BTreeMap<String, ConfigSource> = BTreeMap::new();
        let mut unused: Vec<String> = Vec::new();
        for (key, value, source) in given {
            if key.is_empty() {
                continue;
            }
            let normalised = if let Some(def) = key_def(&key) {
                match def.kind.normalise(&key, &value) {
                    Ok(v) => v,
                    Err(e) => {
                        errors.push(format!("{e} (from {})", source_name(source)));
                        continue;
                    }
                }
            } else if ACCEPTED_UNUSED.contains(&key.as_str()) {
                if !unused.contains(&key) {
                    unused.push(key.clone());
                }
                value.trim().to_string()
            } else {
                unknown.insert(key, source);
                continue;
            };
            settings.insert(key, Setting { value: normalised, source });
        }
        for (key, source) in &unknown {
            tracing::warn!("ignoring unknown configuration '{key}' (from {})", source_name(*source));
        }
        if !unused.is_empty() {
            tracing::info!("accepted Kafka configurations that Kaskade does not use: {}", unused.join(", "));
        }
        if !errors.is_empty() {
            return Err(ConfigError::Invalid(errors));
        }
        let cfg = Self::typed(settings, &mut errors);
        if errors.is_empty() {
            cfg.validate(&mut errors);
        }
        if errors.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError::Invalid(errors))
        }
    }

    fn typed(settings: BTreeMap<String, Setting>, errors: &mut Vec<String>) -> Self {
        let raw = |name: &str| -> Option<String> {
            settings
                .get(name)
                .map(|s| s.value.clone())
                .or_else(|| key_def(name).and_then(|d| d.default).map(str::to_string))
        };
        let num = |name: &str| -> i64 { raw(name).and_then(|v| v.parse().ok()).unwrap_or(0) };
        let opt_num = |name: &str| -> Option<i64> { raw(name).and_then(|v| v.parse::<i64>().ok()) };
        let flag = |name: &str| raw(name).as_deref() == Some("true");
        let list = |name: &str| raw(name).map(|v| split_list(&v)).unwrap_or_default();

        let node_id = match (settings.get("node.id"), settings.get("broker.id")) {
            (Some(n), Some(b)) if n.value != b.value && b.value != "-1" => {
                errors.push(format!("broker.id ({}) must equal node.id ({}) when both are set", b.value, n.value));
                0
            }
            (None, Some(b)) if b.value != "-1" => num("broker.id") as i32,
            _ => num("node.id") as i32,
        };

        let mut parse_listeners = |name: &str, value: Option<String>| -> Vec<ListenerSpec> {
            let mut out = Vec::new();
            for item in value.map(|v| split_list(&v)).unwrap_or_default() {
                match ListenerSpec::parse(&item) {
                    Ok(l) => out.push(l),
                    Err(e) => errors.push(format!("invalid value for {name}: {e}")),
                }
            }
            out
        };
        let listeners = parse_listeners("listeners", raw("listeners"));
        let advertised_listeners = match raw("advertised.listeners") {
            Some(v) => parse_listeners("advertised.listeners", Some(v)),
            None => listeners.clone(),
        };

        let log_dir = match settings.get("log.dirs") {
            Some(s) => {
                let dirs = split_list(&s.value);
                if dirs.len() > 1 {
                    errors
                        .push(format!("invalid value '{}' for log.dirs: Kaskade supports one log directory", s.value));
                }
                dirs.into_iter().next().map(PathBuf::from)
            }
            None => raw("log.dir").filter(|d| !d.is_empty()).map(PathBuf::from),
        };

        let hour_ms = 3_600_000i64;
        let log_roll_ms = opt_num("log.roll.ms").unwrap_or_else(|| num("log.roll.hours") * hour_ms);
        let retention = opt_num("log.retention.ms")
            .or_else(|| opt_num("log.retention.minutes").map(|m| m * 60_000))
            .unwrap_or_else(|| num("log.retention.hours") * hour_ms);
        let log_retention_ms = if retention < 0 { -1 } else { retention };

        let log_message_timestamp_type = if raw("log.message.timestamp.type").as_deref() == Some("LogAppendTime") {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        };

        let cfg = BrokerConfig {
            node_id,
            controller_listener_names: list("controller.listener.names")
                .into_iter()
                .map(|n| n.to_ascii_uppercase())
                .collect(),
            listeners,
            advertised_listeners,
            log_dir,
            num_partitions: num("num.partitions") as i32,
            default_replication_factor: num("default.replication.factor").min(i16::MAX as i64) as i16,
            auto_create_topics_enable: flag("auto.create.topics.enable"),
            delete_topic_enable: flag("delete.topic.enable"),
            log_segment_bytes: num("log.segment.bytes") as i32,
            log_roll_ms,
            log_retention_ms,
            log_retention_bytes: num("log.retention.bytes"),
            log_retention_check_interval_ms: num("log.retention.check.interval.ms"),
            log_index_interval_bytes: num("log.index.interval.bytes") as i32,
            log_index_size_max_bytes: num("log.index.size.max.bytes") as i32,
            message_max_bytes: num("message.max.bytes") as i32,
            log_flush_interval_messages: num("log.flush.interval.messages"),
            log_flush_interval_ms: opt_num("log.flush.interval.ms"),
            log_flush_offset_checkpoint_interval_ms: num("log.flush.offset.checkpoint.interval.ms") as i32,
            log_message_timestamp_type,
            log_cleanup_policy: list("log.cleanup.policy"),
            log_cleaner_enable: flag("log.cleaner.enable"),
            log_cleaner_backoff_ms: num("log.cleaner.backoff.ms"),
            log_cleaner_dedupe_buffer_size: num("log.cleaner.dedupe.buffer.size"),
            log_cleaner_io_buffer_size: num("log.cleaner.io.buffer.size") as i32,
            min_insync_replicas: num("min.insync.replicas") as i32,
            compression_type: raw("compression.type").unwrap_or_default(),
            socket_request_max_bytes: num("socket.request.max.bytes") as i32,
            connections_max_idle_ms: num("connections.max.idle.ms"),
            max_connections: num("max.connections") as i32,
            cluster_id: raw("cluster.id").filter(|c| !c.is_empty()),
            offsets_topic_num_partitions: num("offsets.topic.num.partitions") as i32,
            offsets_retention_minutes: num("offsets.retention.minutes") as i32,
            group_min_session_timeout_ms: num("group.min.session.timeout.ms") as i32,
            group_max_session_timeout_ms: num("group.max.session.timeout.ms") as i32,
            group_initial_rebalance_delay_ms: num("group.initial.rebalance.delay.ms") as i32,
            group_max_size: num("group.max.size") as i32,
            transaction_max_timeout_ms: num("transaction.max.timeout.ms") as i32,
            transactional_id_expiration_ms: num("transactional.id.expiration.ms") as i32,
            transaction_state_log_num_partitions: num("transaction.state.log.num.partitions") as i32,
            transaction_remove_expired_interval_ms: num("transaction.remove.expired.transaction.cleanup.interval.ms"),
            producer_id_expiration_ms: num("producer.id.expiration.ms") as i32,
            settings: BTreeMap::new(),
        };
        BrokerConfig { settings, ..cfg }
    }

    /// Cross-key checks, as Kafka makes them at start-up.
    fn validate(&self, errors: &mut Vec<String>) {
        if self.listeners.is_empty() {
            errors.push("invalid value '' for listeners: expected at least one NAME://host:port".into());
        }
        let mut names = std::collections::HashSet::new();
        for l in &self.listeners {
            if !names.insert(l.name.clone()) {
                errors.push(format!("invalid value for listeners: the listener name {} is used twice", l.name));
            }
        }
        let protocol_map = self.security_protocol_map();
        for l in &self.listeners {
            if self.controller_listener_names.contains(&l.name) {
                continue;
            }
            match protocol_map.get(&l.name) {
                Some(p) if p == "PLAINTEXT" => {}
                Some(p) => errors.push(format!(
                    "listener {l} uses security protocol {p}, which Kaskade does not support yet (supported: PLAINTEXT)"
                )),
                None => errors.push(format!(
                    "listener {l}: no security protocol for the listener name {} in listener.security.protocol.map",
                    l.name
                )),
            }
        }
        for l in &self.advertised_listeners {
            if l.host == "0.0.0.0" || l.host == "::" {
                errors.push(format!(
                    "invalid value '{l}' for advertised.listeners: cannot advertise the non-routable address {}; set advertised.listeners to a routable host",
                    l.host
                ));
            }
        }
        if self.group_min_session_timeout_ms > self.group_max_session_timeout_ms {
            errors.push(format!(
                "group.min.session.timeout.ms ({}) must not exceed group.max.session.timeout.ms ({})",
                self.group_min_session_timeout_ms, self.group_max_session_timeout_ms
            ));
        }
    }

    /// `listener.security.protocol.map` as a map; a controller listener not
    /// in it maps to PLAINTEXT, as KRaft does.
    pub fn security_protocol_map(&self) -> BTreeMap<String, String> {
        let raw = self.value_of("listener.security.protocol.map").unwrap_or_default();
        let mut map = BTreeMap::new();
        for item in split_list(&raw) {
            if let Some((name, proto)) = item.split_once(':') {
                map.insert(name.trim().to_ascii_uppercase(), proto.trim().to_ascii_uppercase());
            }
        }
        for name in &self.controller_listener_names {
            map.entry(name.clone()).or_insert_with(|| "PLAINTEXT".into());
        }
        map
    }

    /// The listeners served to clients: `listeners` without the controller
    /// listeners.
    pub fn client_listeners(&self) -> Vec<ListenerSpec> {
        self.listeners.iter().filter(|l| !self.controller_listener_names.contains(&l.name)).cloned().collect()
    }

    /// The effective value of a key as a string (the given value, else the
    /// default), as DescribeConfigs shows it. `None` for unset keys without a
    /// default and for unknown keys.
    pub fn value_of(&self, name: &str) -> Option<String> {
        self.settings
            .get(name)
            .map(|s| s.value.clone())
            .or_else(|| key_def(name).and_then(|d| d.default).map(str::to_string))
    }

    /// Where the value of a key came from.
    pub fn source_of(&self, name: &str) -> ConfigSource {
        self.settings.get(name).map(|s| s.source).unwrap_or(ConfigSource::Default)
    }

    /// The synonym list Kafka's DescribeConfigs computes for a broker key
    /// (`ConfigHelper.configSynonyms`): the set values of the synonyms in
    /// order, then their non-null defaults in order, then leading entries
    /// are dropped until `primary`.
    fn synonyms(&self, primary: &str, keys: &[&'static str]) -> Vec<ConfigSynonym> {
        let mut all = Vec::new();
        for &k in keys {
            if let Some(s) = self.settings.get(k) {
                all.push(ConfigSynonym { name: k, value: Some(s.value.clone()), source: s.source });
            }
        }
        for &k in keys {
            if let Some(d) = key_def(k).and_then(|d| d.default) {
                all.push(ConfigSynonym { name: k, value: Some(d.to_string()), source: ConfigSource::Default });
            }
        }
        let first = all.iter().position(|s| s.name == primary).unwrap_or(all.len());
        all.split_off(first)
    }

    /// Every broker configuration, as DescribeConfigs on this broker's
    /// resource reports it: the known keys (set or not) and the accepted
    /// Kafka keys that were given.
    pub fn describe(&self) -> Vec<ConfigEntry> {
        let mut out: Vec<ConfigEntry> = KEYS
            .iter()
            .map(|def| {
                let mut synonyms = self.synonyms(def.name, broker_synonyms(def));
                let mut value = self.value_of(def.name);
                if def.name == "broker.id" && !self.settings.contains_key("broker.id") {
                    // In KRaft mode Kafka mirrors node.id into broker.id.
                    value = Some(self.node_id.to_string());
                    synonyms.insert(
                        0,
                        ConfigSynonym { name: def.name, value: value.clone(), source: self.source_of("node.id") },
                    );
                }
                ConfigEntry {
                    name: def.name.to_string(),
                    value,
                    source: synonyms.first().map(|s| s.source).unwrap_or(ConfigSource::Default),
                    is_sensitive: false,
                    read_only: true,
                    config_type: def.kind.config_type(),
                    documentation: def.doc,
                    synonyms,
                }
            })
            .collect();
        for (name, setting) in &self.settings {
            if key_def(name).is_none() {
                let sensitive = is_sensitive(name);
                out.push(ConfigEntry {
                    name: name.clone(),
                    // Kafka never shows a password-type value.
                    value: (!sensitive).then(|| setting.value.clone()),
                    source: setting.source,
                    is_sensitive: sensitive,
                    read_only: true,
                    config_type: if sensitive { ConfigType::Password } else { ConfigType::String },
                    documentation: "Accepted for compatibility with Kafka; not used by Kaskade.",
                    synonyms: Vec::new(),
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// The topic-level configuration defaults, named as Kafka names them at
    /// topic level, with their broker-level synonyms, for topic
    /// DescribeConfigs and for creating topics.
    pub fn topic_defaults(&self) -> Vec<TopicConfigDefault> {
        TOPIC_KEYS
            .iter()
            .map(|def| {
                let value = match def.name {
                    "retention.ms" => Some(self.log_retention_ms.to_string()),
                    "segment.ms" => Some(self.log_roll_ms.to_string()),
                    "segment.jitter.ms" => {
                        let ms = self.value_of("log.roll.jitter.ms").and_then(|v| v.parse::<i64>().ok());
                        let hours =
                            self.value_of("log.roll.jitter.hours").and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
                        Some(ms.unwrap_or(hours * 3_600_000).to_string())
                    }
                    "flush.ms" => self
                        .value_of("log.flush.interval.ms")
                        .or_else(|| self.value_of("log.flush.scheduler.interval.ms")),
                    _ => match def.broker_keys.first() {
                        Some(k) => self.value_of(k),
                        None => def.fixed_default.map(str::to_string),
                    },
                };
                let synonyms = match def.broker_keys.first() {
                    Some(primary) => self.synonyms(primary, def.broker_keys),
                    None => Vec::new(),
                };
                TopicConfigDefault {
                    name: def.name,
                    value,
                    source: synonyms.first().map(|s| s.source).unwrap_or(ConfigSource::Default),
                    config_type: def.kind.config_type(),
                    synonyms,
                    broker_keys: def.broker_keys,
                }
            })
            .collect()
    }
}

impl Default for BrokerConfig {
    /// The defaults alone.
    fn default() -> Self {
        BrokerConfig::from_given(Vec::new()).expect("the built-in defaults are valid")
    }
}

fn source_name(source: ConfigSource) -> &'static str {
    match source {
        ConfigSource::Default => "the defaults",
        ConfigSource::StaticFile => "the properties file",
        ConfigSource::Env => "the environment",
        ConfigSource::Override => "an override",
        ConfigSource::DynamicBroker | ConfigSource::DynamicDefault => "a dynamic broker config",
    }
}

/// Reads the `server.properties` pairs of a file (for tools that want the raw
/// pairs, e.g. to show what a file sets).
pub fn read_properties_file(path: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    Ok(parse_properties(&String::from_utf8_lossy(&bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_type_keys_are_sensitive_and_never_shown() {
        for k in [
            "ssl.keystore.password",
            "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config",
            "sasl.jaas.config",
            "ssl.keystore.key",
            "password.encoder.secret",
        ] {
            assert!(is_sensitive(k), "{k}");
        }
        for k in ["log.retention.ms", "ssl.keystore.location", "sasl.enabled.mechanisms"] {
            assert!(!is_sensitive(k), "{k}");
        }
        // A password given statically is never described with its value.
        let c = BrokerConfig::from_overrides([("ssl.keystore.password", "s3cret")]).expect("accepted");
        assert!(!c.describe().iter().any(|e| e.value.as_deref() == Some("s3cret")));
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_are_kafkas() {
        let c = BrokerConfig::default();
        assert_eq!(c.node_id, 1);
        assert_eq!(c.listeners, vec![ListenerSpec::parse("PLAINTEXT://localhost:9092").unwrap()]);
        assert_eq!(c.advertised_listeners, c.listeners);
        assert_eq!(c.log_dir, None);
        assert_eq!(c.num_partitions, 1);
        assert_eq!(c.default_replication_factor, 1);
        assert!(c.auto_create_topics_enable);
        assert!(c.delete_topic_enable);
        assert_eq!(c.log_segment_bytes, 1_073_741_824);
        assert_eq!(c.log_roll_ms, 168 * 3_600_000);
        assert_eq!(c.log_retention_ms, 168 * 3_600_000);
        assert_eq!(c.log_retention_bytes, -1);
        assert_eq!(c.log_retention_check_interval_ms, 300_000);
        assert_eq!(c.log_index_interval_bytes, 4096);
        assert_eq!(c.log_index_size_max_bytes, 10_485_760);
        assert_eq!(c.message_max_bytes, 1_048_588);
        assert_eq!(c.log_flush_interval_messages, 1);
        assert_eq!(c.log_flush_interval_ms, None);
        assert_eq!(c.log_flush_offset_checkpoint_interval_ms, 60_000);
        assert_eq!(c.log_message_timestamp_type, TimestampType::CreateTime);
        assert_eq!(c.socket_request_max_bytes, 104_857_600);
        assert_eq!(c.connections_max_idle_ms, 600_000);
        assert_eq!(c.max_connections, i32::MAX);
        assert_eq!(c.cluster_id, None);
        assert_eq!(c.offsets_topic_num_partitions, 50);
        assert_eq!(c.group_min_session_timeout_ms, 6000);
        assert_eq!(c.group_max_session_timeout_ms, 1_800_000);
        assert_eq!(c.group_initial_rebalance_delay_ms, 3000);
        assert_eq!(c.group_max_size, i32::MAX);
        assert_eq!(c.log_cleanup_policy, vec!["delete".to_string()]);
        assert!(c.log_cleaner_enable);
        assert_eq!(c.log_cleaner_backoff_ms, 15_000);
        assert_eq!(c.log_cleaner_dedupe_buffer_size, 128 << 20);
        assert_eq!(c.log_cleaner_io_buffer_size, 512 << 10);
        assert_eq!(c.compression_type, "producer");
        assert_eq!(c.min_insync_replicas, 1);
    }

    #[test]
    fn properties_format() {
        let text = "# comment\n! also comment\n\n  a=1\nb : 2\nc 3\nd=\ne\\=x=4\n\
                    long=one, \\\n    two, \\\n    three\nesc=tab\\there\\u0041\\\\\n\
                    spaces =  padded  \r\nwin=dos\r\n#x=continued\\\nnot.continued=5\n";
        let props = parse_properties(text);
        let get = |k: &str| props.iter().rev().find(|(kk, _)| kk == k).map(|(_, v)| v.as_str());
        assert_eq!(get("a"), Some("1"));
        assert_eq!(get("b"), Some("2"));
        assert_eq!(get("c"), Some("3"));
        assert_eq!(get("d"), Some(""));
        assert_eq!(get("e=x"), Some("4"));
        assert_eq!(get("long"), Some("one, two, three"));
        assert_eq!(get("esc"), Some("tab\thereA\\"));
        assert_eq!(get("spaces"), Some("padded  "));
        assert_eq!(get("win"), Some("dos"));
        assert_eq!(get("not.continued"), Some("5"));
        assert_eq!(get("#x"), None);
        assert_eq!(props.len(), 10);
    }

    #[test]
    fn env_mapping_as_kafka_image() {
        assert_eq!(env_var_to_key("KAFKA_NODE_ID").as_deref(), Some("node.id"));
        assert_eq!(env_var_to_key("KAFKA_LISTENERS").as_deref(), Some("listeners"));
        assert_eq!(env_var_to_key("KAFKA_ADVERTISED_LISTENERS").as_deref(), Some("advertised.listeners"));
        assert_eq!(env_var_to_key("KAFKA_LOG_DIRS").as_deref(), Some("log.dirs"));
        assert_eq!(env_var_to_key("KAFKA_LOG_RETENTION_HOURS").as_deref(), Some("log.retention.hours"));
        assert_eq!(env_var_to_key("KAFKA_AUTO_CREATE_TOPICS_ENABLE").as_deref(), Some("auto.create.topics.enable"));
        assert_eq!(env_var_to_key("KAFKA_A__B").as_deref(), Some("a_b"));
        assert_eq!(env_var_to_key("KAFKA_A___B").as_deref(), Some("a-b"));
        assert_eq!(env_var_to_key("KAFKA_LISTENER_NAME_X___Y__Z_SASL").as_deref(), Some("listener.name.x-y_z.sasl"));
        for ignored in [
            "KAFKA_HEAP_OPTS",
            "KAFKA_OPTS",
            "KAFKA_JMX_OPTS",
            "KAFKA_JMX_PORT",
            "KAFKA_JMX_HOSTNAME",
            "KAFKA_VERSION",
            "KAFKA_LOG4J_OPTS",
            "KAFKA_JVM_PERFORMANCE_OPTS",
            "KAFKA_",
            "PATH",
            "MY_KAFKA_X",
        ] {
            assert_eq!(env_var_to_key(ignored), None, "{ignored}");
        }
    }

    #[test]
    fn precedence_defaults_file_env_override() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("server.properties");
        std::fs::write(&file, "num.partitions=2\nlog.retention.hours=10\nmessage.max.bytes=100\nlog.dirs=/from/file\n")
            .unwrap();
        let sources = ConfigSources {
            properties_file: Some(file),
            env: env(&[
                ("KAFKA_NUM_PARTITIONS", "3"),
                ("KAFKA_LOG_RETENTION_HOURS", "20"),
                ("KAFKA_HEAP_OPTS", "-Xmx1G"),
                ("HOME", "/root"),
            ]),
            overrides: vec![("num.partitions".into(), "4".into())],
        };
        let c = BrokerConfig::load(&sources).unwrap();
        assert_eq!(c.num_partitions, 4);
        assert_eq!(c.source_of("num.partitions"), ConfigSource::Override);
        assert_eq!(c.log_retention_ms, 20 * 3_600_000);
        assert_eq!(c.source_of("log.retention.hours"), ConfigSource::Env);
        assert_eq!(c.message_max_bytes, 100);
        assert_eq!(c.source_of("message.max.bytes"), ConfigSource::StaticFile);
        assert_eq!(c.log_dir, Some(PathBuf::from("/from/file")));
        assert_eq!(c.source_of("log.segment.bytes"), ConfigSource::Default);
        assert_eq!(c.source_of("log.segment.bytes").kafka_code(), 5);
        assert_eq!(c.source_of("num.partitions").kafka_code(), 4);
    }

    #[test]
    fn retention_precedence_ms_minutes_hours() {
        let c = BrokerConfig::from_overrides([("log.retention.hours", "1")]).unwrap();
        assert_eq!(c.log_retention_ms, 3_600_000);
        let c = BrokerConfig::from_overrides([("log.retention.hours", "1"), ("log.retention.minutes", "2")]).unwrap();
        assert_eq!(c.log_retention_ms, 120_000);
        let c = BrokerConfig::from_overrides([
            ("log.retention.hours", "1"),
            ("log.retention.minutes", "2"),
            ("log.retention.ms", "3"),
        ])
        .unwrap();
        assert_eq!(c.log_retention_ms, 3);
        let c = BrokerConfig::from_overrides([("log.retention.ms", "-1")]).unwrap();
        assert_eq!(c.log_retention_ms, -1);
        let c = BrokerConfig::from_overrides([("log.retention.hours", "-1")]).unwrap();
        assert_eq!(c.log_retention_ms, -1);
        let c = BrokerConfig::from_overrides([("log.roll.hours", "2")]).unwrap();
        assert_eq!(c.log_roll_ms, 7_200_000);
        let c = BrokerConfig::from_overrides([("log.roll.hours", "2"), ("log.roll.ms", "5")]).unwrap();
        assert_eq!(c.log_roll_ms, 5);
    }

    #[test]
    fn error_messages_name_key_and_accepted_values() {
        let err = BrokerConfig::from_overrides([("num.partitions", "abc")]).unwrap_err().to_string();
        assert_eq!(err, "invalid value 'abc' for num.partitions: expected an integer >= 1 (from an override)");
        let err = BrokerConfig::from_overrides([("num.partitions", "0")]).unwrap_err().to_string();
        assert!(err.contains("expected an integer >= 1"), "{err}");
        let err = BrokerConfig::from_overrides([("auto.create.topics.enable", "yes")]).unwrap_err().to_string();
        assert!(err.contains("invalid value 'yes' for auto.create.topics.enable: expected true or false"), "{err}");
        let err = BrokerConfig::from_overrides([("log.message.timestamp.type", "Now")]).unwrap_err().to_string();
        assert!(err.contains("expected one of CreateTime, LogAppendTime"), "{err}");
        let err = BrokerConfig::from_overrides([("log.cleanup.policy", "delete,forever")]).unwrap_err().to_string();
        assert!(err.contains("comma-separated list of compact, delete"), "{err}");
        let err = BrokerConfig::from_overrides([("compression.gzip.level", "10")]).unwrap_err().to_string();
        assert!(err.contains("expected an integer in [-1, 9]"), "{err}");
        // Several errors are reported together.
        let err = BrokerConfig::from_overrides([("num.partitions", "x"), ("message.max.bytes", "y")])
            .unwrap_err()
            .to_string();
        assert_eq!(err.lines().count(), 2, "{err}");
        // Out of the int range.
        let err = BrokerConfig::from_overrides([("num.partitions", "3000000000")]).unwrap_err().to_string();
        assert!(err.contains("num.partitions"), "{err}");
    }

    #[test]
    fn values_are_trimmed_and_normalised() {
        let c =
            BrokerConfig::from_overrides([("num.partitions", " 7 "), ("auto.create.topics.enable", "FALSE")]).unwrap();
        assert_eq!(c.num_partitions, 7);
        assert!(!c.auto_create_topics_enable);
        assert_eq!(c.value_of("auto.create.topics.enable").as_deref(), Some("false"));
    }

    #[test]
    fn node_id_and_broker_id() {
        assert_eq!(BrokerConfig::from_overrides([("broker.id", "5")]).unwrap().node_id, 5);
        assert_eq!(BrokerConfig::from_overrides([("node.id", "6")]).unwrap().node_id, 6);
        assert_eq!(BrokerConfig::from_overrides([("node.id", "6"), ("broker.id", "6")]).unwrap().node_id, 6);
        let err = BrokerConfig::from_overrides([("node.id", "6"), ("broker.id", "7")]).unwrap_err().to_string();
        assert!(err.contains("broker.id (7) must equal node.id (6)"), "{err}");
    }

    #[test]
    fn listeners() {
        let l = ListenerSpec::parse("PLAINTEXT://:9092").unwrap();
        assert_eq!((l.name.as_str(), l.host.as_str(), l.port), ("PLAINTEXT", "", 9092));
        let l = ListenerSpec::parse("plaintext://[::1]:0").unwrap();
        assert_eq!((l.name.as_str(), l.host.as_str(), l.port), ("PLAINTEXT", "::1", 0));
        assert_eq!(l.to_string(), "PLAINTEXT://[::1]:0");
        assert!(ListenerSpec::parse("localhost:9092").is_err());
        assert!(ListenerSpec::parse("PLAINTEXT://localhost").is_err());
        assert!(ListenerSpec::parse("PLAINTEXT://localhost:99999").is_err());

        // Kafka 4's sample server.properties loads without errors: the
        // controller listener is known and not served to clients.
        let c = BrokerConfig::from_overrides([
            ("process.roles", "broker,controller"),
            ("listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"),
            ("advertised.listeners", "PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093"),
            ("controller.listener.names", "CONTROLLER"),
            ("inter.broker.listener.name", "PLAINTEXT"),
            (
                "listener.security.protocol.map",
                "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
            ),
            ("controller.quorum.bootstrap.servers", "localhost:9093"),
            ("offsets.topic.replication.factor", "1"),
            ("transaction.state.log.replication.factor", "1"),
            ("num.network.threads", "3"),
        ])
        .unwrap();
        assert_eq!(c.client_listeners(), vec![ListenerSpec::parse("PLAINTEXT://:9092").unwrap()]);
        assert_eq!(c.advertised_listeners.len(), 2);

        let err = BrokerConfig::from_overrides([("listeners", "SSL://:9093")]).unwrap_err().to_string();
        assert!(err.contains("security protocol SSL"), "{err}");
        let err = BrokerConfig::from_overrides([("listeners", "FOO://:9093")]).unwrap_err().to_string();
        assert!(err.contains("no security protocol for the listener name FOO"), "{err}");
        let err = BrokerConfig::from_overrides([("listeners", "PLAINTEXT://0.0.0.0:9092")]).unwrap_err().to_string();
        assert!(err.contains("advertised.listeners"), "{err}");
        assert!(BrokerConfig::from_overrides([
            ("listeners", "PLAINTEXT://0.0.0.0:9092"),
            ("advertised.listeners", "PLAINTEXT://myhost:9092"),
        ])
        .is_ok());
        let err = BrokerConfig::from_overrides([("listeners", "nonsense")]).unwrap_err().to_string();
        assert!(err.contains("invalid value for listeners"), "{err}");
    }

    #[test]
    fn log_dirs() {
        let c = BrokerConfig::from_overrides([("log.dir", "/a")]).unwrap();
        assert_eq!(c.log_dir, Some(PathBuf::from("/a")));
        let c = BrokerConfig::from_overrides([("log.dir", "/a"), ("log.dirs", "/b")]).unwrap();
        assert_eq!(c.log_dir, Some(PathBuf::from("/b")));
        assert!(BrokerConfig::from_overrides([("log.dirs", "/a,/b")]).is_err());
    }

    #[test]
    fn unknown_keys_are_ignored_and_unused_ones_kept() {
        let c = BrokerConfig::from_overrides([
            ("zookeeper.connect", "localhost:2181"),
            ("process.roles", "broker,controller"),
        ])
        .unwrap();
        let names: Vec<String> = c.describe().into_iter().map(|e| e.name).collect();
        assert!(names.contains(&"process.roles".to_string()));
        assert!(!names.contains(&"zookeeper.connect".to_string()));
        assert_eq!(c.value_of("zookeeper.connect"), None);
    }

    #[test]
    fn describe_reports_sources_and_synonyms_as_kafka() {
        let c = BrokerConfig::from_overrides([("log.retention.ms", "1000")]).unwrap();
        let d = c.describe();
        let entry = |n: &str| d.iter().find(|e| e.name == n).unwrap().clone();
        let ms = entry("log.retention.ms");
        assert_eq!(ms.value.as_deref(), Some("1000"));
        assert_eq!(ms.source, ConfigSource::Override);
        assert_eq!(ms.config_type, ConfigType::Long);
        assert_eq!(
            ms.synonyms,
            vec![
                ConfigSynonym { name: "log.retention.ms", value: Some("1000".into()), source: ConfigSource::Override },
                ConfigSynonym { name: "log.retention.hours", value: Some("168".into()), source: ConfigSource::Default },
            ]
        );
        let hours = entry("log.retention.hours");
        assert_eq!(hours.source, ConfigSource::Default);
        assert_eq!(hours.synonyms.len(), 1);
        let minutes = entry("log.retention.minutes");
        assert_eq!(minutes.value, None);
        assert!(minutes.synonyms.is_empty());
        assert_eq!(entry("num.partitions").synonyms.len(), 1);
        assert_eq!(entry("num.partitions").config_type.kafka_code(), 3);
    }

    #[test]
    fn topic_defaults_with_synonyms() {
        let c =
            BrokerConfig::from_overrides([("log.segment.bytes", "2097152"), ("log.retention.hours", "24")]).unwrap();
        let t = c.topic_defaults();
        let get = |n: &str| t.iter().find(|e| e.name == n).unwrap().clone();

        let seg = get("segment.bytes");
        assert_eq!(seg.value.as_deref(), Some("2097152"));
        assert_eq!(seg.source, ConfigSource::Override);
        assert_eq!(
            seg.synonyms,
            vec![
                ConfigSynonym {
                    name: "log.segment.bytes",
                    value: Some("2097152".into()),
                    source: ConfigSource::Override
                },
                ConfigSynonym {
                    name: "log.segment.bytes",
                    value: Some("1073741824".into()),
                    source: ConfigSource::Default
                },
            ]
        );
        // Kafka drops synonyms before the primary key (log.retention.ms), so
        // a retention set in hours shows no synonyms and DEFAULT_CONFIG.
        let ret = get("retention.ms");
        assert_eq!(ret.value.as_deref(), Some("86400000"));
        assert_eq!(ret.config_type, ConfigType::Long);
        assert!(ret.synonyms.is_empty());
        assert_eq!(ret.source, ConfigSource::Default);
        assert_eq!(ret.broker_keys, &["log.retention.ms", "log.retention.minutes", "log.retention.hours"]);

        assert_eq!(get("cleanup.policy").value.as_deref(), Some("delete"));
        assert_eq!(get("max.message.bytes").value.as_deref(), Some("1048588"));
        assert_eq!(get("max.message.bytes").synonyms[0].name, "message.max.bytes");
        assert_eq!(get("segment.ms").value.as_deref(), Some("604800000"));
        assert_eq!(get("flush.messages").value.as_deref(), Some("1"));
        assert_eq!(get("flush.ms").value.as_deref(), Some(LONG_MAX));
        assert_eq!(get("min.insync.replicas").value.as_deref(), Some("1"));
        assert_eq!(get("compression.type").value.as_deref(), Some("producer"));
        assert_eq!(get("message.timestamp.type").value.as_deref(), Some("CreateTime"));
        assert_eq!(get("segment.index.bytes").value.as_deref(), Some("10485760"));
        assert_eq!(get("index.interval.bytes").value.as_deref(), Some("4096"));
        assert_eq!(get("retention.bytes").value.as_deref(), Some("-1"));
        assert_eq!(get("segment.jitter.ms").value.as_deref(), Some("0"));
        assert_eq!(get("remote.storage.enable").value.as_deref(), Some("false"));
        assert!(get("remote.storage.enable").synonyms.is_empty());
    }

    #[test]
    fn topic_config_validation() {
        assert_eq!(validate_topic_config("retention.ms", " 1000 ").unwrap(), "1000");
        assert_eq!(validate_topic_config("retention.ms", "-1").unwrap(), "-1");
        assert!(validate_topic_config("retention.ms", "-2").is_err());
        assert_eq!(validate_topic_config("cleanup.policy", "compact, delete").unwrap(), "compact,delete");
        let err = validate_topic_config("segment.bytes", "100").unwrap_err();
        assert!(err.contains("expected an integer >= 1048576"), "{err}");
        assert!(validate_topic_config("no.such.key", "1").is_err());
        assert!(is_topic_config("max.message.bytes"));
        assert!(!is_topic_config("log.retention.ms"));
    }
}
