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
//! Kaskade accepts but does not use (`num.network.threads`, ...) are kept,
//! so DescribeConfigs still shows them. An invalid value stops start-up with
//! an error naming the key and the accepted values. The environment
//! variable `CLUSTER_ID` (Kafka's container images format the storage with
//! it) sets `cluster.id`.
//!
//! Dynamic broker configs (`dynamic`) lie over all of these at run time.
//!
//! Files: `keys` (the broker key registry), `topic_keys` (topic-level keys),
//! `properties` (the file format), `env` (the `KAFKA_*` mapping),
//! `listener` (`NAME://host:port`), `kraft` (process roles, the controller
//! quorum, inter-broker listener, rack, with Kafka's KRaft checks),
//! `describe` (DescribeConfigs entries and synonyms), `dynamic` (run-time
//! values); this file holds the typed configuration and its loading.

use std::collections::BTreeMap;
use std::path::PathBuf;

use kaskade_types::NodeId;

mod describe;
pub mod dynamic;
mod env;
pub mod initial_controllers;
mod keys;
mod kraft;
mod listener;
mod properties;
mod topic_keys;

pub use describe::{ConfigEntry, ConfigSource, ConfigSynonym, ConfigType, TopicConfigDefault};
pub use env::env_var_to_key;
pub use initial_controllers::InitialController;
pub use keys::is_sensitive;
pub use kraft::{DynamicQuorum, HostPort, KraftConfig, ProcessRoles, Voter};
pub use listener::ListenerSpec;
pub use properties::{parse_properties, read_properties_file};
pub use topic_keys::{is_topic_config, validate_topic_config};

use keys::{key_def, split_list, ACCEPTED_UNUSED};

/// The timestamp a partition stores for appended records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampType {
    /// The producer's timestamp.
    CreateTime,
    /// The broker's clock at append.
    LogAppendTime,
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
    pub node_id: NodeId,
    /// `listeners`, every one including controller listeners.
    pub listeners: Vec<ListenerSpec>,
    /// `advertised.listeners` (defaults to `listeners`).
    pub advertised_listeners: Vec<ListenerSpec>,
    /// `controller.listener.names`: listeners not served to clients.
    pub controller_listener_names: Vec<String>,
    /// The KRaft settings: `process.roles`, the controller quorum,
    /// `inter.broker.listener.name`, `broker.rack`.
    pub kraft: KraftConfig,
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
    /// `socket.send.buffer.bytes`: SO_SNDBUF of accepted connections (-1: the OS's).
    pub socket_send_buffer_bytes: i32,
    /// `connections.max.idle.ms`.
    pub connections_max_idle_ms: i64,
    /// `max.connections`.
    pub max_connections: i32,
    /// `http.listener` (Kaskade-specific): `host:port` of the HTTP listener;
    /// `None` when set empty (no listener).
    pub http_listener: Option<String>,
    /// `cluster.id` (Kaskade-specific; also the `CLUSTER_ID` environment
    /// variable): the id a new data directory is formatted with, and that an
    /// existing one must carry. `None` keeps the stored id, or generates one.
    pub cluster_id: Option<String>,
    /// `offsets.topic.num.partitions`.
    pub offsets_topic_num_partitions: i32,
    /// `offsets.topic.replication.factor`.
    pub offsets_topic_replication_factor: i16,
    /// `transaction.state.log.replication.factor`.
    pub transaction_state_log_replication_factor: i16,
    /// `transaction.state.log.min.isr`.
    pub transaction_state_log_min_isr: i16,
    /// `offsets.commit.timeout.ms`.
    pub offsets_commit_timeout_ms: i64,
    /// `offsets.retention.minutes`.
    pub offsets_retention_minutes: i32,
    /// `broker.heartbeat.interval.ms`: how often this broker heartbeats the active controller.
    pub broker_heartbeat_interval_ms: i64,
    /// `broker.session.timeout.ms`: the active controller fences a broker silent this long.
    pub broker_session_timeout_ms: i64,
    /// `controller.quorum.election.timeout.ms`, `controller.quorum.fetch.timeout.ms` and
    /// `controller.quorum.election.backoff.max.ms`: the controllers' Raft timers.
    pub quorum_timeouts: kaskade_meta::quorum::KraftTimeouts,
    /// `auto.leader.rebalance.enable`: the active controller moves leaderships back to preferred replicas.
    pub auto_leader_rebalance_enable: bool,
    /// `leader.imbalance.check.interval.seconds`: how often it does.
    pub leader_imbalance_check_interval_seconds: i64,
    /// `unclean.leader.election.enable`: the default of topics without their own value.
    pub unclean_leader_election_enable: bool,
    /// `unclean.leader.election.interval.ms`: how often the active controller looks for unclean elections to make.
    pub unclean_leader_election_interval_ms: i64,
    /// `metadata.log.max.snapshot.interval.ms`: a controller's timed metadata snapshots (0: none).
    pub metadata_log_max_snapshot_interval_ms: i64,
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
    /// `replication.quota.window.num` and `replication.quota.window.size.seconds`:
    /// the samples the replication throttles measure their rate over.
    pub replication_quota_window: crate::replica::throttle::QuotaWindow,
    /// Every value given explicitly (known and accepted-but-unused keys),
    /// normalised, with its source.
    settings: BTreeMap<String, Setting>,
}

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
        let node_id = NodeId(node_id);

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

        let kraft = KraftConfig::parse(&raw, &|name| settings.contains_key(name), errors);
        let cluster_id = raw("cluster.id").map(|c| c.trim().to_string()).filter(|c| !c.is_empty());
        if let Some(id) = &cluster_id {
            if let Err(e) = crate::meta_properties::validate_cluster_id(id) {
                errors.push(format!("invalid value '{id}' for cluster.id: {e}"));
            }
        }

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
            kraft,
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
            socket_send_buffer_bytes: num("socket.send.buffer.bytes") as i32,
            connections_max_idle_ms: num("connections.max.idle.ms"),
            max_connections: num("max.connections") as i32,
            http_listener: raw("http.listener").map(|v| v.trim().to_string()).filter(|v| !v.is_empty()),
            cluster_id,
            offsets_topic_num_partitions: num("offsets.topic.num.partitions") as i32,
            offsets_topic_replication_factor: num("offsets.topic.replication.factor").min(i16::MAX as i64) as i16,
            transaction_state_log_replication_factor: num("transaction.state.log.replication.factor")
                .min(i16::MAX as i64) as i16,
            transaction_state_log_min_isr: num("transaction.state.log.min.isr").min(i16::MAX as i64) as i16,
            offsets_commit_timeout_ms: num("offsets.commit.timeout.ms"),
            offsets_retention_minutes: num("offsets.retention.minutes") as i32,
            broker_heartbeat_interval_ms: num("broker.heartbeat.interval.ms"),
            broker_session_timeout_ms: num("broker.session.timeout.ms"),
            quorum_timeouts: kaskade_meta::quorum::KraftTimeouts {
                election_timeout_ms: u32::try_from(num("controller.quorum.election.timeout.ms")).unwrap_or(0),
                fetch_timeout_ms: u32::try_from(num("controller.quorum.fetch.timeout.ms")).unwrap_or(0),
                election_backoff_max_ms: u32::try_from(num("controller.quorum.election.backoff.max.ms")).unwrap_or(0),
            },
            auto_leader_rebalance_enable: flag("auto.leader.rebalance.enable"),
            leader_imbalance_check_interval_seconds: num("leader.imbalance.check.interval.seconds"),
            unclean_leader_election_enable: flag("unclean.leader.election.enable"),
            unclean_leader_election_interval_ms: num("unclean.leader.election.interval.ms"),
            metadata_log_max_snapshot_interval_ms: num("metadata.log.max.snapshot.interval.ms"),
            group_min_session_timeout_ms: num("group.min.session.timeout.ms") as i32,
            group_max_session_timeout_ms: num("group.max.session.timeout.ms") as i32,
            group_initial_rebalance_delay_ms: num("group.initial.rebalance.delay.ms") as i32,
            group_max_size: num("group.max.size") as i32,
            transaction_max_timeout_ms: num("transaction.max.timeout.ms") as i32,
            transactional_id_expiration_ms: num("transactional.id.expiration.ms") as i32,
            transaction_state_log_num_partitions: num("transaction.state.log.num.partitions") as i32,
            transaction_remove_expired_interval_ms: num("transaction.remove.expired.transaction.cleanup.interval.ms"),
            producer_id_expiration_ms: num("producer.id.expiration.ms") as i32,
            replication_quota_window: crate::replica::throttle::QuotaWindow::new(
                num("replication.quota.window.num"),
                num("replication.quota.window.size.seconds"),
            ),
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
        for item in split_list(&self.value_of("listener.security.protocol.map").unwrap_or_default()) {
            let valid = item.split_once(':').is_some_and(|(name, p)| {
                !name.trim().is_empty() && kraft::SECURITY_PROTOCOLS.contains(&p.trim().to_ascii_uppercase().as_str())
            });
            if !valid {
                errors.push(format!(
                    "invalid value '{item}' for listener.security.protocol.map: expected NAME:PROTOCOL with a protocol of {}",
                    kraft::SECURITY_PROTOCOLS.join(", ")
                ));
            }
        }
        let advertised_broker = self.advertised_broker_listeners();
        self.kraft.validate(
            &kraft::NodeView {
                node_id: self.node_id,
                listeners: &self.listeners,
                advertised_broker_listeners: &advertised_broker,
                controller_listener_names: &self.controller_listener_names,
                security_protocols: &protocol_map,
            },
            errors,
        );
        for l in &self.listeners {
            match protocol_map.get(&l.name) {
                Some(p) if p == "PLAINTEXT" => {}
                Some(_) if self.controller_listener_names.contains(&l.name) => errors.push(format!(
                    "listener {l}: the controller listener must use PLAINTEXT, the only security protocol Kaskade supports yet"
                )),
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
        if let Some(http) = &self.http_listener {
            // host:port with a port; `[::1]:9644` for IPv6.
            let port_ok =
                http.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !port_ok {
                errors.push(format!(
                    "invalid value '{http}' for http.listener: expected host:port (e.g. 127.0.0.1:9644), or empty to turn the HTTP listener off"
                ));
            }
        }
        // Kafka checks the broker listeners clients are told, and the
        // controller listeners named in advertised.listeners itself (a
        // controller listener taken from `listeners` binds 0.0.0.0 fine).
        let explicit = self.settings.contains_key("advertised.listeners");
        let checked =
            self.advertised_listeners.iter().filter(|l| explicit || !self.controller_listener_names.contains(&l.name));
        for l in checked {
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

    /// `listener.security.protocol.map` as a map. When the map is not set
    /// and no listener is named SSL or SASL_*, controller listeners map to
    /// PLAINTEXT, as Kafka's `effectiveListenerSecurityProtocolMap` does; a
    /// map that is set must name them.
    pub fn security_protocol_map(&self) -> BTreeMap<String, String> {
        let raw = self.value_of("listener.security.protocol.map").unwrap_or_default();
        let mut map = BTreeMap::new();
        for item in split_list(&raw) {
            if let Some((name, proto)) = item.split_once(':') {
                map.insert(name.trim().to_ascii_uppercase(), proto.trim().to_ascii_uppercase());
            }
        }
        let secure = |name: &str| name != "PLAINTEXT" && kraft::SECURITY_PROTOCOLS.contains(&name);
        let any_secure =
            self.controller_listener_names.iter().any(|n| secure(n)) || self.listeners.iter().any(|l| secure(&l.name));
        if !self.settings.contains_key("listener.security.protocol.map") && !any_secure {
            for name in &self.controller_listener_names {
                map.entry(name.clone()).or_insert_with(|| "PLAINTEXT".into());
            }
        }
        map
    }

    /// The security protocol of listener `name` in `map` (a
    /// [`BrokerConfig::security_protocol_map`]): its entry, else the name
    /// itself when it is a protocol's (Kafka's default map), else PLAINTEXT.
    pub fn security_protocol_in(map: &BTreeMap<String, String>, name: &str) -> String {
        map.get(name).cloned().unwrap_or_else(|| {
            if kraft::SECURITY_PROTOCOLS.contains(&name) {
                name.to_string()
            } else {
                "PLAINTEXT".to_string()
            }
        })
    }

    /// The controller listeners among `listeners`: bound, never advertised
    /// to clients.
    pub fn controller_listeners(&self) -> Vec<ListenerSpec> {
        self.listeners.iter().filter(|l| self.controller_listener_names.contains(&l.name)).cloned().collect()
    }

    /// The advertised listeners clients may be told: `advertised.listeners`
    /// (else `listeners`) without the controller listeners.
    pub fn advertised_broker_listeners(&self) -> Vec<ListenerSpec> {
        self.advertised_listeners
            .iter()
            .filter(|l| !self.controller_listener_names.contains(&l.name))
            .cloned()
            .collect()
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

#[cfg(test)]
mod kraft_tests;
#[cfg(test)]
mod tests;
