//! BrokerConfig as a whole: defaults, precedence of the sources, typed
//! values, start-up errors, and what DescribeConfigs reports.

use super::keys::LONG_MAX;
use super::*;
use std::path::PathBuf;

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
    assert_eq!(c.node_id, NodeId(1));
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
    assert_eq!((c.broker_heartbeat_interval_ms, c.broker_session_timeout_ms), (2000, 9000), "Kafka's defaults");
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
    let err =
        BrokerConfig::from_overrides([("num.partitions", "x"), ("message.max.bytes", "y")]).unwrap_err().to_string();
    assert_eq!(err.lines().count(), 2, "{err}");
    // Out of the int range.
    let err = BrokerConfig::from_overrides([("num.partitions", "3000000000")]).unwrap_err().to_string();
    assert!(err.contains("num.partitions"), "{err}");
}

#[test]
fn values_are_trimmed_and_normalised() {
    let c = BrokerConfig::from_overrides([("num.partitions", " 7 "), ("auto.create.topics.enable", "FALSE")]).unwrap();
    assert_eq!(c.num_partitions, 7);
    assert!(!c.auto_create_topics_enable);
    assert_eq!(c.value_of("auto.create.topics.enable").as_deref(), Some("false"));
}

#[test]
fn node_id_and_broker_id() {
    assert_eq!(BrokerConfig::from_overrides([("broker.id", "5")]).unwrap().node_id, NodeId(5));
    assert_eq!(BrokerConfig::from_overrides([("node.id", "6")]).unwrap().node_id, NodeId(6));
    assert_eq!(BrokerConfig::from_overrides([("node.id", "6"), ("broker.id", "6")]).unwrap().node_id, NodeId(6));
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
    let c =
        BrokerConfig::from_overrides([("zookeeper.connect", "localhost:2181"), ("num.network.threads", "3")]).unwrap();
    let names: Vec<String> = c.describe().into_iter().map(|e| e.name).collect();
    assert!(names.contains(&"num.network.threads".to_string()));
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
    let c = BrokerConfig::from_overrides([("log.segment.bytes", "2097152"), ("log.retention.hours", "24")]).unwrap();
    let t = c.topic_defaults();
    let get = |n: &str| t.iter().find(|e| e.name == n).unwrap().clone();

    let seg = get("segment.bytes");
    assert_eq!(seg.value.as_deref(), Some("2097152"));
    assert_eq!(seg.source, ConfigSource::Override);
    assert_eq!(
        seg.synonyms,
        vec![
            ConfigSynonym { name: "log.segment.bytes", value: Some("2097152".into()), source: ConfigSource::Override },
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
fn http_listener_defaults_to_localhost_9644_and_can_be_turned_off() {
    assert_eq!(BrokerConfig::default().http_listener.as_deref(), Some("127.0.0.1:9644"));
    let from_env = BrokerConfig::load(&ConfigSources {
        env: env(&[("KAFKA_HTTP_LISTENER", "0.0.0.0:19644")]),
        ..ConfigSources::default()
    })
    .unwrap();
    assert_eq!(from_env.http_listener.as_deref(), Some("0.0.0.0:19644"));
    assert_eq!(BrokerConfig::from_overrides([("http.listener", "")]).unwrap().http_listener, None);
    assert_eq!(
        BrokerConfig::from_overrides([("http.listener", " [::1]:0 ")]).unwrap().http_listener.as_deref(),
        Some("[::1]:0")
    );
    for bad in ["localhost", ":9644", "localhost:http", "h:70000"] {
        let err = BrokerConfig::from_overrides([("http.listener", bad)]).unwrap_err().to_string();
        assert!(err.contains("http.listener") && err.contains("host:port"), "{bad}: {err}");
    }
}

#[test]
fn quorum_timing_keys_default_to_kafkas_and_reject_negative_values() {
    use kaskade_meta::quorum::KraftTimeouts;
    let c = BrokerConfig::default();
    assert_eq!(c.quorum_timeouts, KraftTimeouts::default());
    assert_eq!(
        (c.quorum_timeouts.election_timeout_ms, c.quorum_timeouts.fetch_timeout_ms),
        (1000, 2000),
        "Kafka's defaults"
    );
    let c = BrokerConfig::from_overrides([
        ("controller.quorum.election.timeout.ms", "300"),
        ("controller.quorum.fetch.timeout.ms", "900"),
        ("controller.quorum.election.backoff.max.ms", "0"),
    ])
    .unwrap();
    assert_eq!(
        c.quorum_timeouts,
        KraftTimeouts { election_timeout_ms: 300, fetch_timeout_ms: 900, election_backoff_max_ms: 0 }
    );
    for key in [
        "controller.quorum.election.timeout.ms",
        "controller.quorum.fetch.timeout.ms",
        "controller.quorum.election.backoff.max.ms",
    ] {
        let err = BrokerConfig::from_overrides([(key, "-1")]).unwrap_err().to_string();
        assert!(err.contains(key), "{key}: {err}");
        assert!(BrokerConfig::from_overrides([(key, "soon")]).is_err(), "{key}: not a number");
        let described = c.describe().into_iter().find(|e| e.name == key);
        assert!(described.is_some(), "{key} is described");
    }
}

/// `socket.send.buffer.bytes`: Kafka's default 102400, -1 for the OS's
/// buffer, anything below -1 refused at load.
#[test]
fn the_listeners_send_buffer_is_kafkas_by_default() {
    let c = BrokerConfig::from_overrides::<&str, &str>([]).expect("defaults");
    assert_eq!(c.socket_send_buffer_bytes, 102_400);
    let c = BrokerConfig::from_overrides([("socket.send.buffer.bytes", "-1")]).expect("the OS default");
    assert_eq!(c.socket_send_buffer_bytes, crate::network::socket_options::OS_DEFAULT);
    assert!(BrokerConfig::from_overrides([("socket.send.buffer.bytes", "-2")]).is_err());
}
