//! The KRaft settings as a whole configuration loads them: the seeds'
//! docker-compose environments, a 3-node variant, every validation failure
//! with Kafka's message, and what DescribeConfigs shows.

use super::*;
use kaskade_types::NodeId;

include!("seed_environments.rs");

fn load_env(pairs: &[(&str, &str)]) -> Result<BrokerConfig, ConfigError> {
    BrokerConfig::load(&ConfigSources {
        env: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..ConfigSources::default()
    })
}

fn load(pairs: &[(&str, &str)]) -> Result<BrokerConfig, String> {
    BrokerConfig::from_overrides(pairs.iter().copied()).map_err(|e| e.to_string())
}

fn controller_ports(c: &BrokerConfig) -> Vec<u16> {
    c.controller_listeners().iter().map(|l| l.port).collect()
}

#[test]
fn the_seeds_environments_load_as_a_combined_single_node() {
    for (seed, env) in SEED_ENVIRONMENTS {
        let c = load_env(env).unwrap_or_else(|e| panic!("{seed}: {e}"));
        assert_eq!(c.kraft.process_roles, Some(ProcessRoles::COMBINED), "{seed}");
        assert_eq!(c.node_id, NodeId(1), "{seed}");
        assert_eq!(c.kraft.voter_ids().into_iter().collect::<Vec<_>>(), vec![NodeId(1)], "{seed}");
        assert_eq!(c.kraft.voters[0].address.port, 9093, "{seed}");
        assert_eq!(c.controller_listeners().len(), 1, "{seed}");
        assert_eq!(c.controller_listeners()[0].name, "CONTROLLER", "{seed}");
        assert_eq!(c.client_listeners().len(), 1, "{seed}");
        assert_eq!(c.client_listeners()[0].port, 9092, "{seed}");
        assert_eq!(c.advertised_broker_listeners(), vec![ListenerSpec::parse("PLAINTEXT://localhost:9092").unwrap()]);
        assert_eq!(c.kraft.inter_broker_listener_name, "PLAINTEXT", "{seed}");
        assert_eq!(c.security_protocol_map().get("CONTROLLER").map(String::as_str), Some("PLAINTEXT"), "{seed}");
        let has_id = env.iter().any(|(k, _)| *k == "CLUSTER_ID");
        assert_eq!(c.cluster_id.as_deref(), has_id.then_some("MkU3OEVBNTcwNTJENDM2Qk"), "{seed}");
        assert_eq!(c.kraft.check_runnable(c.node_id, &controller_ports(&c)), Ok(()), "{seed}");
    }
}

/// The seeds' environment for node `id` of three combined nodes, ports
/// varied per node as on one host.
fn three_node_env(id: u16) -> Vec<(String, String)> {
    let (client, controller) = (19090 + id * 10, 19091 + id * 10);
    let voters: Vec<String> = (1..=3).map(|n| format!("{n}@localhost:{}", 19091 + n * 10)).collect();
    [
        ("KAFKA_NODE_ID", id.to_string()),
        ("KAFKA_PROCESS_ROLES", "broker,controller".into()),
        ("KAFKA_LISTENERS", format!("PLAINTEXT://:{client},CONTROLLER://:{controller}")),
        ("KAFKA_ADVERTISED_LISTENERS", format!("PLAINTEXT://localhost:{client}")),
        ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER".into()),
        ("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT".into()),
        ("KAFKA_CONTROLLER_QUORUM_VOTERS", voters.join(",")),
        ("KAFKA_BROKER_RACK", format!("rack-{id}")),
        ("CLUSTER_ID", "MkU3OEVBNTcwNTJENDM2Qk".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

#[test]
fn a_three_node_combined_variant_and_dedicated_roles_run() {
    for id in 1..=3u16 {
        let env = three_node_env(id);
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let c = load_env(&pairs).unwrap_or_else(|e| panic!("node {id}: {e}"));
        assert_eq!(c.node_id, NodeId(i32::from(id)));
        assert_eq!(c.kraft.voter_ids().into_iter().collect::<Vec<_>>(), vec![NodeId(1), NodeId(2), NodeId(3)]);
        assert_eq!(c.kraft.voters[2].to_string(), "3@localhost:19121");
        assert_eq!(c.kraft.broker_rack.as_deref(), Some(format!("rack-{id}").as_str()));
        assert_eq!(controller_ports(&c), vec![19091 + id * 10]);
        assert_eq!(c.kraft.check_runnable(c.node_id, &controller_ports(&c)), Ok(()));
        assert_eq!(c.kraft.static_quorum(c.node_id).map(|q| q.len()), Some(3));
    }
    // Dedicated roles (Kafka's isolated mode): controllers 1..3 run the
    // quorum, broker 4 observes it.
    let voters = "1@localhost:19101,2@localhost:19111,3@localhost:19121";
    let controller = load(&[
        ("node.id", "2"),
        ("process.roles", "controller"),
        ("listeners", "CONTROLLER://:19111"),
        ("controller.listener.names", "CONTROLLER"),
        ("controller.quorum.voters", voters),
    ])
    .unwrap();
    assert_eq!(controller.client_listeners(), Vec::<ListenerSpec>::new());
    assert_eq!(controller.kraft.check_runnable(NodeId(2), &[19111]), Ok(()));
    assert_eq!(controller.kraft.static_quorum(NodeId(2)).map(|q| q.len()), Some(3));
    assert!(controller.advertised_broker_listeners().is_empty(), "a controller advertises nothing to clients");
    let broker = load(&[
        ("node.id", "4"),
        ("process.roles", "broker"),
        ("listeners", "PLAINTEXT://:19140"),
        ("advertised.listeners", "PLAINTEXT://localhost:19140"),
        ("controller.listener.names", "CONTROLLER"),
        ("controller.quorum.voters", voters),
    ])
    .unwrap();
    assert_eq!(broker.kraft.check_runnable(NodeId(4), &[]), Ok(()));
    assert_eq!(broker.kraft.static_quorum(NodeId(4)).map(|q| q.len()), Some(3), "it observes the three voters");
    assert!(broker.controller_listeners().is_empty(), "a broker-only node binds no controller listener");
}

#[test]
fn without_process_roles_a_node_needs_no_quorum_settings() {
    let c = BrokerConfig::default();
    assert_eq!(c.kraft.process_roles, None);
    assert_eq!(c.kraft.roles(), ProcessRoles::COMBINED);
    assert!(c.kraft.voters.is_empty() && c.kraft.bootstrap_servers.is_empty());
    assert_eq!(c.kraft.check_runnable(NodeId(1), &[]), Ok(()));
    // Kafka 4's sample server.properties: a dynamic quorum of itself.
    let c = load(&[
        ("process.roles", "broker,controller"),
        ("listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"),
        ("advertised.listeners", "PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093"),
        ("controller.listener.names", "CONTROLLER"),
        ("controller.quorum.bootstrap.servers", "localhost:9093"),
    ])
    .unwrap();
    assert_eq!(c.kraft.bootstrap_servers, vec![HostPort { host: "localhost".into(), port: 9093 }]);
    assert_eq!(c.kraft.check_runnable(NodeId(1), &controller_ports(&c)), Ok(()));
}

/// Every KRaft validation failure, with the message Kafka gives.
#[test]
fn invalid_kraft_settings_are_refused_with_kafkas_messages() {
    let combined = [
        ("process.roles", "broker,controller"),
        ("listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"),
        ("controller.listener.names", "CONTROLLER"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&'static str, &'static str)> {
        let mut v: Vec<_> = combined.to_vec();
        for (k, val) in extra {
            v.retain(|(key, _)| key != k);
            v.push((k, val));
        }
        v
    };
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (with(&[("process.roles", "broker,zookeeper")]), "Unknown process role 'zookeeper' (only 'broker' and 'controller' are allowed roles)"),
        (with(&[("process.roles", "controller,controller")]), "Duplicate role names found in `process.roles`"),
        (with(&[]), "If using process.roles, either controller.quorum.bootstrap.servers must contain the set of bootstrap controllers or controller.quorum.voters must contain a parseable set of controllers."),
        (with(&[("controller.quorum.voters", "2@localhost:9093")]), "If process.roles contains the 'controller' role, the node id 1 must be included in the set of voters controller.quorum.voters=Set(2)"),
        (with(&[("controller.quorum.voters", "1@localhost:9093,1@other:9093")]), "the voter id 1 appears more than once"),
        (with(&[("controller.quorum.voters", "1-localhost:9093")]), "Invalid configuration value for controller.quorum.voters. Each entry should be in the form `{id}@{host}:{port}`."),
        (with(&[("controller.quorum.voters", "one@localhost:9093")]), "Failed to parse voter ID as an integer from one"),
        (with(&[("controller.quorum.voters", "1@localhost")]), "Failed to parse host name from entry 1@localhost"),
        (with(&[("controller.quorum.voters", "1@localhost:x")]), "Failed to parse host port from entry 1@localhost:x"),
        (with(&[("controller.quorum.bootstrap.servers", "localhost")]), "Failed to parse host name from localhost for the configuration controller.quorum.bootstrap.servers"),
        (
            with(&[("controller.quorum.voters", "1@localhost:9093"), ("controller.listener.names", "")]),
            "controller.listener.names must contain at least one value appearing in the 'listeners' configuration when running the KRaft controller role",
        ),
        (
            with(&[("controller.quorum.voters", "1@localhost:9093"), ("controller.listener.names", "CONTROLLER,OTHER")]),
            "controller.listener.names must only contain values appearing in the 'listeners' configuration when running the KRaft controller role",
        ),
        (
            with(&[("controller.quorum.voters", "1@localhost:9093"), ("listeners", "CONTROLLER://:9093")]),
            "There must be at least one broker advertised listener. Perhaps all listeners appear in controller.listener.names?",
        ),
        (
            with(&[("controller.quorum.voters", "1@localhost:9093"), ("inter.broker.listener.name", "INTERNAL")]),
            "inter.broker.listener.name must be a listener name defined in advertised.listeners. The valid options based on currently configured listeners are PLAINTEXT",
        ),
        (
            with(&[
                ("controller.quorum.voters", "1@localhost:9093"),
                ("inter.broker.listener.name", "PLAINTEXT"),
                ("security.inter.broker.protocol", "PLAINTEXT"),
            ]),
            "Only one of inter.broker.listener.name and security.inter.broker.protocol should be set.",
        ),
        (
            with(&[("controller.quorum.voters", "1@localhost:9093"), ("advertised.listeners", "PLAINTEXT://localhost:9092,EXTERNAL://h:9094")]),
            "advertised.listeners listener names must be equal to or a subset of the ones defined in listeners. Found EXTERNAL,PLAINTEXT. The valid options based on the current configuration are CONTROLLER,PLAINTEXT",
        ),
        (
            with(&[("controller.quorum.voters", "1@localhost:9093"), ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT")]),
            "no security protocol for the listener name CONTROLLER in listener.security.protocol.map",
        ),
        (
            with(&[("controller.quorum.voters", "1@localhost:9093"), ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:SSL")]),
            "the controller listener must use PLAINTEXT",
        ),
        (
            with(&[("controller.quorum.voters", "1@localhost:9093"), ("listener.security.protocol.map", "PLAINTEXT,CONTROLLER:PLAINTEXT")]),
            "invalid value 'PLAINTEXT' for listener.security.protocol.map: expected NAME:PROTOCOL",
        ),
        (
            with(&[("controller.quorum.voters", "1@localhost:9093"), ("advertised.listeners", "PLAINTEXT://localhost:9092,CONTROLLER://0.0.0.0:9093")]),
            "cannot advertise the non-routable address 0.0.0.0",
        ),
        (with(&[("controller.quorum.voters", "1@localhost:9093"), ("cluster.id", "my-cluster")]), "invalid value 'my-cluster' for cluster.id: Input string `my-cluster` decoded as 7 bytes"),
        // Broker only.
        (
            vec![("process.roles", "broker"), ("controller.quorum.voters", "1@c:9093"), ("controller.listener.names", "CONTROLLER")],
            "If process.roles contains just the 'broker' role, the node id 1 must not be included in the set of voters controller.quorum.voters=Set(1)",
        ),
        (
            vec![("process.roles", "broker"), ("controller.quorum.voters", "2@c:9093")],
            "controller.listener.names must contain at least one value when running KRaft with just the broker role",
        ),
        (
            vec![
                ("process.roles", "broker"),
                ("controller.quorum.voters", "2@c:9093"),
                ("controller.listener.names", "CONTROLLER"),
                ("listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"),
            ],
            "controller.listener.names must not contain a value appearing in the 'listeners' configuration when running KRaft with just the broker role",
        ),
        (
            vec![
                ("process.roles", "broker"),
                ("controller.quorum.voters", "2@c:9093"),
                ("controller.listener.names", "CONTROLLER"),
                ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT"),
            ],
            "Controller listener with name CONTROLLER defined in controller.listener.names not found in listener.security.protocol.map",
        ),
        // Controller only.
        (
            vec![
                ("process.roles", "controller"),
                ("controller.quorum.voters", "1@c:9093"),
                ("controller.listener.names", "CONTROLLER"),
                ("listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"),
            ],
            "The listeners config must only contain KRaft controller listeners from controller.listener.names when process.roles=controller",
        ),
        (
            vec![
                ("process.roles", "controller"),
                ("controller.quorum.voters", "1@c:9093"),
                ("controller.listener.names", "CONTROLLER"),
                ("listeners", "CONTROLLER://:9093"),
                ("inter.broker.listener.name", "CONTROLLER"),
            ],
            "controller.listener.names must not contain an explicitly set inter.broker.listener.name configuration value when process.roles=controller",
        ),
        // No process.roles: voters, when given, must still name this node.
        (vec![("controller.quorum.voters", "2@c:9093")], "the node id 1 must be included in the set of voters"),
    ];
    for (pairs, want) in cases {
        let err = load(&pairs).expect_err(want);
        assert!(err.contains(want), "{pairs:?}\nwant: {want}\ngot:  {err}");
    }
}

#[test]
fn describe_configs_shows_the_kraft_values() {
    assert_eq!(load_env(SEED_ENVIRONMENTS[0].1).unwrap().kraft.broker_rack, None);
    let c = BrokerConfig::load(&ConfigSources {
        env: SEED_ENVIRONMENTS[0].1.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        overrides: vec![("broker.rack".into(), "eu-1a".into())],
        ..ConfigSources::default()
    })
    .unwrap();
    let d = c.describe();
    let entry = |n: &str| d.iter().find(|e| e.name == n).unwrap_or_else(|| panic!("{n} described")).clone();
    assert_eq!(entry("process.roles").value.as_deref(), Some("broker,controller"));
    assert_eq!(entry("process.roles").source, ConfigSource::Env);
    assert_eq!(entry("process.roles").config_type, ConfigType::List);
    assert_eq!(entry("controller.quorum.voters").value.as_deref(), Some("1@localhost:9093"));
    assert_eq!(entry("controller.quorum.bootstrap.servers").value.as_deref(), Some(""));
    assert_eq!(entry("controller.quorum.bootstrap.servers").source, ConfigSource::Default);
    assert_eq!(entry("controller.listener.names").value.as_deref(), Some("CONTROLLER"));
    assert_eq!(entry("cluster.id").value.as_deref(), Some("MkU3OEVBNTcwNTJENDM2Qk"));
    assert_eq!(entry("cluster.id").source, ConfigSource::Env);
    assert_eq!(entry("broker.rack").value.as_deref(), Some("eu-1a"));
    assert_eq!(entry("broker.rack").source, ConfigSource::Override);
    assert_eq!(entry("security.inter.broker.protocol").value.as_deref(), Some("PLAINTEXT"));
    assert_eq!(entry("inter.broker.listener.name").value, None);
    assert!(entry("process.roles").documentation.contains("combined"));
}

/// Kafka's isolated-mode docker-compose example (docker/examples,
/// cluster/isolated/plaintext): three controllers, three brokers with two
/// listeners each, its environment as given (ports as in the example).
fn isolated_env(id: u16) -> Vec<(&'static str, String)> {
    let voters = "1@controller-1:9093,2@controller-2:9093,3@controller-3:9093".to_string();
    let common = [
        ("KAFKA_NODE_ID", id.to_string()),
        ("KAFKA_CONTROLLER_QUORUM_VOTERS", voters),
        ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER".into()),
        ("CLUSTER_ID", "4L6g3nShT-eMCtK--X86sw".into()),
        ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1".into()),
        ("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0".into()),
        ("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1".into()),
        ("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1".into()),
        ("KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR", "1".into()),
        ("KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR", "1".into()),
        ("KAFKA_LOG_DIRS", "/tmp/kraft-combined-logs".into()),
    ];
    let own: Vec<(&'static str, String)> = if id <= 3 {
        vec![("KAFKA_PROCESS_ROLES", "controller".into()), ("KAFKA_LISTENERS", "CONTROLLER://:9093".into())]
    } else {
        let host_port = 29092 + (id - 4) * 10000;
        vec![
            ("KAFKA_PROCESS_ROLES", "broker".into()),
            ("KAFKA_LISTENERS", "PLAINTEXT://:19092,PLAINTEXT_HOST://:9092".into()),
            (
                "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
                "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT".into(),
            ),
            ("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT".into()),
            (
                "KAFKA_ADVERTISED_LISTENERS",
                format!("PLAINTEXT://kafka-{}:19092,PLAINTEXT_HOST://localhost:{host_port}", id - 3),
            ),
        ]
    };
    common.into_iter().chain(own).collect()
}

#[test]
fn kafkas_isolated_docker_compose_environment_runs_three_controllers_and_three_brokers() {
    for id in 1..=6u16 {
        let env = isolated_env(id);
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let c = load_env(&pairs).unwrap_or_else(|e| panic!("node {id}: {e}"));
        assert_eq!(c.kraft.check_runnable(c.node_id, &controller_ports(&c)), Ok(()), "node {id}");
        let quorum = c.kraft.static_quorum(c.node_id).expect("a static quorum");
        assert_eq!(quorum.get(&NodeId(2)).map(String::as_str), Some("controller-2:9093"), "node {id}");
        if id <= 3 {
            assert!(c.kraft.roles().controller && !c.kraft.roles().broker, "node {id}");
            assert!(c.client_listeners().is_empty(), "a controller serves no clients");
            assert_eq!(controller_ports(&c), vec![9093]);
        } else {
            assert!(c.kraft.roles().broker && !c.kraft.roles().controller, "node {id}");
            assert!(c.controller_listeners().is_empty(), "a broker binds no controller listener");
            let names: Vec<String> = c.advertised_broker_listeners().into_iter().map(|l| l.name).collect();
            assert_eq!(names, ["PLAINTEXT", "PLAINTEXT_HOST"], "both listeners are registered");
            assert_eq!(c.kraft.inter_broker_listener_name, "PLAINTEXT");
        }
    }
}
