//! `KAFKA_*` environment variables as configuration, mapped as Apache
//! Kafka's container image maps them (`KafkaDockerWrapper`), so a
//! `docker run -e KAFKA_...` set-up written for Kafka configures Kaskade the
//! same way. Variables the image and its scripts read for themselves
//! (`KAFKA_HEAP_OPTS`, `KAFKA_JMX_*`, ...) are not configuration.

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
/// `None` for other variables and for the image's own variables
/// (`KAFKA_HEAP_OPTS`, `KAFKA_OPTS`, `KAFKA_JMX_*`, `KAFKA_VERSION`, ...).
pub fn env_var_to_key(name: &str) -> Option<String> {
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
}
