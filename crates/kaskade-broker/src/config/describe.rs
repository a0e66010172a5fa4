//! What DescribeConfigs reports about broker and topic configurations:
//! entries, their sources, types and synonyms, computed from a loaded
//! [`BrokerConfig`] with Kafka's rules (`ConfigHelper.configSynonyms`).
//!
//! Invariants: an entry's `source` is its first synonym's source; synonyms
//! are listed highest precedence first and start at the primary key (Kafka
//! drops the leading ones before it); a sensitive value is never rendered.

use super::keys::{broker_synonyms, is_sensitive, key_def, KEYS};
use super::topic_keys::TOPIC_KEYS;
use super::BrokerConfig;

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

impl BrokerConfig {
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
