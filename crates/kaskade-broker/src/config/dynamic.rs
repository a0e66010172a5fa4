//! Dynamic broker configuration (Kafka's `DynamicBrokerConfig`): values set
//! at run time with IncrementalAlterConfigs or AlterConfigs on a broker
//! resource, kept in the metadata log, per broker (`"<node.id>"`) or for the
//! whole cluster (`""`). Precedence, highest first: this broker's dynamic
//! value, the cluster-wide dynamic default, the static configuration, the
//! built-in default.
//!
//! What may change at run time: the broker synonyms of topic configurations
//! (`log.retention.ms`, `log.cleanup.policy`, `message.max.bytes`, ...),
//! which become new defaults of every topic that does not override them,
//! applied to the open logs at once; and the log cleaner's tuning keys,
//! which Kaskade accepts for compatibility. Other keys Kaskade knows are
//! refused as Kafka refuses a static key; keys it does not know are stored,
//! as Kafka stores them.

use std::collections::BTreeMap;

use super::keys::{is_sensitive, key_def, ACCEPTED_UNUSED};
use super::topic_keys::TOPIC_KEYS;
use super::{ConfigEntry, ConfigSource, ConfigSynonym, ConfigType};

/// Dynamic keys that are no topic key's synonym, with Kafka's defaults and
/// types (DescribeConfigs lists them as Kafka does): the cleaner's tuning
/// keys, accepted but not used (Kaskade's cleaner is not tuned by them), as
/// they are accepted statically; and the replication throttle rates, read
/// by `replica::throttle` at every replica fetch.
static ACCEPTED_DYNAMIC: &[(&str, &str, ConfigType)] = &[
    ("log.cleaner.threads", "1", ConfigType::Int),
    ("log.cleaner.io.max.bytes.per.second", "1.7976931348623157E308", ConfigType::Double),
    ("log.cleaner.io.buffer.load.factor", "0.9", ConfigType::Double),
    ("leader.replication.throttled.rate", "9223372036854775807", ConfigType::Long),
    ("follower.replication.throttled.rate", "9223372036854775807", ConfigType::Long),
];

fn accepted_dynamic(name: &str) -> Option<&'static (&'static str, &'static str, ConfigType)> {
    ACCEPTED_DYNAMIC.iter().find(|(k, _, _)| *k == name)
}

/// The static name of a key Kaskade knows as a broker key, if any.
fn static_name(name: &str) -> Option<&'static str> {
    key_def(name)
        .map(|d| d.name)
        .or_else(|| TOPIC_KEYS.iter().flat_map(|t| t.broker_keys.iter().copied()).find(|k| *k == name))
        .or_else(|| accepted_dynamic(name).map(|(k, _, _)| *k))
        .or_else(|| ACCEPTED_UNUSED.iter().copied().find(|k| *k == name))
}

/// Whether `name` may be changed at run time.
pub fn is_dynamic(name: &str) -> bool {
    accepted_dynamic(name).is_some() || TOPIC_KEYS.iter().any(|t| t.broker_keys.contains(&name))
}

/// Validates a dynamic value and returns it normalised; `Err` carries
/// Kafka's kind of message (answered as INVALID_REQUEST).
pub fn validate(name: &str, value: &str) -> Result<String, String> {
    if static_name(name).is_none() {
        // Kafka stores keys it does not know.
        return Ok(value.to_string());
    }
    if !is_dynamic(name) {
        return Err(format!("Cannot update these configs dynamically: [{name}]"));
    }
    if let Some(def) = key_def(name) {
        return def.kind.normalise(name, value);
    }
    if let Some((_, _, kind)) = accepted_dynamic(name) {
        let ok = match kind {
            ConfigType::Double => value.trim().parse::<f64>().is_ok(),
            _ => value.trim().parse::<i64>().is_ok(),
        };
        return if ok { Ok(value.trim().to_string()) } else { Err(format!("invalid value '{value}' for {name}")) };
    }
    match TOPIC_KEYS.iter().find(|t| t.broker_keys.contains(&name)) {
        // Units differ between synonyms (hours, minutes, ms), but each is a
        // number with the topic key's bounds or wider.
        Some(t) if t.broker_keys.first() == Some(&name) => t.kind.normalise(name, value),
        _ => value
            .trim()
            .parse::<i64>()
            .map(|n| n.to_string())
            .map_err(|_| format!("invalid value '{value}' for {name}")),
    }
}

/// The effective dynamic values of a broker: the cluster-wide defaults
/// overlaid with its own.
pub fn effective(
    cluster: Option<&BTreeMap<String, String>>,
    own: Option<&BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let mut out = cluster.cloned().unwrap_or_default();
    out.extend(own.cloned().unwrap_or_default());
    out
}

/// The topic-level defaults the dynamic values change: topic key -> value.
pub fn topic_defaults(dynamic: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for t in TOPIC_KEYS {
        // The first synonym set wins, converted to the topic key's unit.
        let found = t.broker_keys.iter().find_map(|k| dynamic.get(*k).map(|v| (*k, v)));
        let Some((key, value)) = found else { continue };
        let scale = match key {
            "log.retention.minutes" => 60_000,
            "log.retention.hours" | "log.roll.hours" | "log.roll.jitter.hours" => 3_600_000,
            _ => 1,
        };
        let value = match value.parse::<i64>() {
            // -1 (unlimited retention) stays -1 whatever the unit.
            Ok(n) if scale > 1 && n >= 0 => n.saturating_mul(scale).to_string(),
            _ => value.clone(),
        };
        out.insert(t.name.to_string(), value);
    }
    out
}

/// DescribeConfigs of this broker: the static entries with the dynamic
/// values laid over them (value, source, synonyms), `read_only` as Kafka
/// marks it, and entries for dynamic keys the static list lacks.
pub fn describe(
    mut entries: Vec<ConfigEntry>,
    cluster: Option<&BTreeMap<String, String>>,
    own: Option<&BTreeMap<String, String>>,
) -> Vec<ConfigEntry> {
    let empty = BTreeMap::new();
    let (cluster, own) = (cluster.unwrap_or(&empty), own.unwrap_or(&empty));
    for (name, default, config_type) in ACCEPTED_DYNAMIC {
        if !entries.iter().any(|e| e.name == *name) {
            entries.push(ConfigEntry {
                name: name.to_string(),
                value: Some(default.to_string()),
                source: ConfigSource::Default,
                is_sensitive: false,
                read_only: false,
                config_type: *config_type,
                documentation: "Accepted for compatibility with Kafka; not used by Kaskade.",
                synonyms: vec![ConfigSynonym { name, value: Some(default.to_string()), source: ConfigSource::Default }],
            });
        }
    }
    for name in own.keys().chain(cluster.keys()) {
        if !entries.iter().any(|e| &e.name == name) {
            entries.push(ConfigEntry {
                name: name.clone(),
                value: None,
                source: ConfigSource::Default,
                is_sensitive: false,
                read_only: false,
                config_type: ConfigType::String,
                documentation: "",
                synonyms: Vec::new(),
            });
        }
    }
    for e in &mut entries {
        e.read_only = !is_dynamic(&e.name) && static_name(&e.name).is_some();
        // The dynamic values set for this key, highest precedence first.
        let set: Vec<(&String, ConfigSource)> =
            [(own.get(&e.name), ConfigSource::DynamicBroker), (cluster.get(&e.name), ConfigSource::DynamicDefault)]
                .into_iter()
                .filter_map(|(value, source)| value.map(|v| (v, source)))
                .collect();
        if let Some((value, source)) = set.first() {
            e.value = Some((*value).clone());
            e.source = *source;
        }
        if let Some(name) = static_name(&e.name) {
            let mut synonyms: Vec<ConfigSynonym> = set
                .iter()
                .map(|(v, source)| ConfigSynonym { name, value: Some((*v).clone()), source: *source })
                .collect();
            synonyms.append(&mut e.synonyms);
            e.synonyms = synonyms;
        }
    }
    for e in entries.iter_mut().filter(|e| is_sensitive(&e.name)) {
        e.value = None;
        e.is_sensitive = true;
        e.synonyms.iter_mut().for_each(|s| s.value = None);
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries
}

/// DescribeConfigs of the cluster-wide default resource (`""`): only the
/// dynamic defaults, as Kafka lists them.
pub fn describe_cluster_defaults(cluster: Option<&BTreeMap<String, String>>) -> Vec<ConfigEntry> {
    cluster
        .into_iter()
        .flatten()
        .map(|(name, value)| ConfigEntry {
            name: name.clone(),
            value: (!is_sensitive(name)).then(|| value.clone()),
            source: ConfigSource::DynamicDefault,
            is_sensitive: is_sensitive(name),
            read_only: false,
            config_type: key_def(name).map_or(ConfigType::String, |d| d.kind.config_type()),
            documentation: "",
            synonyms: static_name(name)
                .map(|n| {
                    vec![ConfigSynonym { name: n, value: Some(value.clone()), source: ConfigSource::DynamicDefault }]
                })
                .unwrap_or_default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn which_keys_may_change_at_run_time() {
        assert!(is_dynamic("log.retention.ms"));
        assert!(is_dynamic("log.retention.hours"));
        assert!(is_dynamic("message.max.bytes"));
        assert!(is_dynamic("log.cleaner.threads"));
        assert!(!is_dynamic("num.partitions"));
        assert_eq!(
            validate("num.partitions", "4").unwrap_err(),
            "Cannot update these configs dynamically: [num.partitions]"
        );
        assert_eq!(validate("broker.id", "4").unwrap_err(), "Cannot update these configs dynamically: [broker.id]");
        assert!(validate("message.max.bytes", "abc").is_err());
        assert_eq!(validate("log.cleanup.policy", " compact , delete").unwrap(), "compact,delete");
        assert_eq!(validate("no.such.key", "1").unwrap(), "1");
    }

    #[test]
    fn dynamic_values_become_topic_defaults_in_the_topic_unit() {
        let cluster = map(&[("log.retention.hours", "2"), ("log.segment.bytes", "2097152")]);
        let own = map(&[("log.cleanup.policy", "compact"), ("log.retention.ms", "1000")]);
        let d = topic_defaults(&effective(Some(&cluster), Some(&own)));
        // log.retention.ms outranks log.retention.hours.
        assert_eq!(d["retention.ms"], "1000");
        assert_eq!(d["segment.bytes"], "2097152");
        assert_eq!(d["cleanup.policy"], "compact");
        let d = topic_defaults(&cluster);
        assert_eq!(d["retention.ms"], "7200000");
        assert_eq!(topic_defaults(&map(&[("log.retention.hours", "-1")]))["retention.ms"], "-1");
    }

    #[test]
    fn describe_lays_dynamic_values_over_static_ones() {
        let entries = super::super::BrokerConfig::default().describe();
        let cluster = map(&[("log.retention.ms", "3600000")]);
        let own = map(&[("log.cleaner.threads", "2"), ("log.retention.ms", "1000"), ("custom.key", "x")]);
        let out = describe(entries, Some(&cluster), Some(&own));
        let get = |n: &str| out.iter().find(|e| e.name == n).unwrap_or_else(|| panic!("{n} described"));
        let r = get("log.retention.ms");
        assert_eq!((r.value.as_deref(), r.source, r.read_only), (Some("1000"), ConfigSource::DynamicBroker, false));
        let sources: Vec<_> = r.synonyms.iter().map(|s| s.source).collect();
        assert_eq!(&sources[..2], &[ConfigSource::DynamicBroker, ConfigSource::DynamicDefault]);
        assert_eq!(get("log.cleaner.threads").value.as_deref(), Some("2"));
        let unset = describe(super::super::BrokerConfig::default().describe(), None, None);
        let threads = unset.iter().find(|e| e.name == "log.cleaner.threads").expect("listed with Kafka's default");
        assert_eq!((threads.value.as_deref(), threads.source), (Some("1"), ConfigSource::Default));
        assert!(get("num.partitions").read_only);
        assert_eq!(get("custom.key").value.as_deref(), Some("x"));
        let secret = map(&[("listener.name.internal.ssl.key.password", "s3cret")]);
        let out = describe(super::super::BrokerConfig::default().describe(), None, Some(&secret));
        let e = out.iter().find(|e| e.name == "listener.name.internal.ssl.key.password").expect("listed");
        assert!(e.is_sensitive && e.value.is_none(), "a dynamic password is never shown");
        let defaults = describe_cluster_defaults(Some(&cluster));
        assert_eq!(defaults.len(), 1);
        assert_eq!(defaults[0].source, ConfigSource::DynamicDefault);
    }
}
