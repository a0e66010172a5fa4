//! `KAFKA_*` environment variables as configuration, mapped as Apache
//! Kafka's container image maps them (`KafkaDockerWrapper`), so a
//! `docker run -e KAFKA_...` set-up written for Kafka configures Kaskade the
//! same way. Variables the image and its scripts read for themselves
//! (`KAFKA_HEAP_OPTS`, `KAFKA_JMX_*`, ...) are not configuration.
//! `CLUSTER_ID`, which the Apache and Confluent images format the storage
//! with, is `cluster.id`.

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

/// Maps a `KAFKA_*` environment variable to a configuration key as Apache
/// Kafka's container image does: drop `KAFKA_`, lower-case, `_` -> `.`,
/// then `...` -> `-` and `..` -> `_` (so `___` means `-` and `__` means `_`).
/// `CLUSTER_ID` is `cluster.id`. `None` for other variables and for the
/// image's own variables (`KAFKA_HEAP_OPTS`, `KAFKA_OPTS`, `KAFKA_JMX_*`,
/// `KAFKA_VERSION`, ...).
pub fn env_var_to_key(name: &str) -> Option<String> {
    if name == "CLUSTER_ID" {
        return Some("cluster.id".into());
    }
    let rest = name.strip_prefix("KAFKA_")?;
    if rest.is_empty() || ENV_NOT_CONFIG.contains(&name) || name.starts_with("KAFKA_JMX_") {
        return None;
    }
    Some(rest.to_lowercase().replace('_', ".").replace("...", "-").replace("..", "_"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(env_var_to_key("CLUSTER_ID").as_deref(), Some("cluster.id"));
        assert_eq!(env_var_to_key("KAFKA_PROCESS_ROLES").as_deref(), Some("process.roles"));
        assert_eq!(env_var_to_key("KAFKA_CONTROLLER_QUORUM_VOTERS").as_deref(), Some("controller.quorum.voters"));
        assert_eq!(env_var_to_key("KAFKA_BROKER_RACK").as_deref(), Some("broker.rack"));
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
            "cluster_id",
            "MY_CLUSTER_ID",
            "MY_KAFKA_X",
        ] {
            assert_eq!(env_var_to_key(ignored), None, "{ignored}");
        }
    }

    #[test]
    fn runs_of_underscores_map_as_the_image_maps_them() {
        // The image replaces `_` by `.`, then `...` by `-`, then `..` by `_`,
        // left to right: longer runs give what those replacements give.
        assert_eq!(env_var_to_key("KAFKA_A____B").as_deref(), Some("a-.b"));
        assert_eq!(env_var_to_key("KAFKA_A_____B").as_deref(), Some("a-_b"));
        assert_eq!(env_var_to_key("KAFKA_A______B").as_deref(), Some("a--b"));
        // Lower-case names are configuration too; only the prefix is exact.
        assert_eq!(env_var_to_key("KAFKA_log_dirs").as_deref(), Some("log.dirs"));
        assert_eq!(env_var_to_key("kafka_log_dirs"), None);
        assert_eq!(env_var_to_key("KAFKA_JMX_ANYTHING"), None);
    }

    #[test]
    fn environment_values_load_with_their_source() {
        use crate::config::{BrokerConfig, ConfigSource, ConfigSources};
        let env = |pairs: &[(&str, &str)]| ConfigSources {
            env: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..ConfigSources::default()
        };
        let c = BrokerConfig::load(&env(&[
            ("KAFKA_NUM_PARTITIONS", " 5 "),
            ("KAFKA_LOG_CLEANUP_POLICY", "compact"),
            ("KAFKA_JMX_PORT", "not a config"),
            ("KAFKA_NUM_NETWORK_THREADS", "3"),
            ("CLUSTER_ID", "MkU3OEVBNTcwNTJENDM2Qk"),
        ]))
        .expect("valid environment");
        assert_eq!(c.num_partitions, 5);
        assert_eq!(c.source_of("num.partitions"), ConfigSource::Env);
        assert_eq!(c.log_cleanup_policy, vec!["compact".to_string()]);
        assert_eq!(c.value_of("num.network.threads").as_deref(), Some("3"));
        assert_eq!(c.cluster_id.as_deref(), Some("MkU3OEVBNTcwNTJENDM2Qk"));
        assert_eq!(c.source_of("cluster.id"), ConfigSource::Env);
        let err = BrokerConfig::load(&env(&[("KAFKA_NUM_PARTITIONS", "many")])).expect_err("invalid").to_string();
        assert_eq!(err, "invalid value 'many' for num.partitions: expected an integer >= 1 (from the environment)");
        // Variables that differ only in case name one key: the one sorting
        // last wins, so a load does not depend on the environment's order.
        let c = BrokerConfig::load(&env(&[("KAFKA_num_partitions", "7"), ("KAFKA_NUM_PARTITIONS", "6")]))
            .expect("valid environment");
        assert_eq!(c.num_partitions, 7);
    }
}
