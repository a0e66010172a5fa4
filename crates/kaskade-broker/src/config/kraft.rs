//! KRaft-mode configuration: `process.roles`, the controller quorum
//! (`controller.quorum.voters`, `controller.quorum.bootstrap.servers`),
//! `inter.broker.listener.name` and `broker.rack`, parsed into types and
//! checked with Kafka's rules and Kafka's messages (`KafkaConfig`'s
//! `validateValues`, `QuorumConfig`'s voter and bootstrap parsing).
//!
//! Kaskade differs from Kafka in one place on purpose: `process.roles` may
//! be left unset. The node is then what it always was, a combined broker
//! and controller that forms a cluster on its own, and needs no voters.
//!
//! What a node can run today is a narrower question than what is valid
//! ([`KraftConfig::check_runnable`]). A broker-only node of a dynamic
//! quorum (`controller.quorum.bootstrap.servers` alone) fetches the
//! metadata log from the bootstrap servers and learns the controllers from
//! it ([`KraftConfig::observer_bootstrap`]). A controller of a dynamic quorum (KIP-853) either
//! forms it alone (`controller.quorum.standalone=true`, Kaskade's
//! `kafka-storage format --standalone`, only read on its first start), forms
//! it with the others named in `controller.quorum.initial.controllers`
//! (`--initial-controllers`, `initial_controllers`), or joins it as an
//! observer until `kafka-metadata-quorum add-controller` makes it a voter
//! ([`KraftConfig::dynamic_quorum`]).
//!
//! Invariants: voter ids are unique; every voter and bootstrap server has a
//! host and a port.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use kaskade_types::NodeId;

use super::initial_controllers::{self, InitialController};
use super::keys::split_list;
use super::ListenerSpec;

/// The security protocols a listener may use (`listener.security.protocol.map`).
pub(super) const SECURITY_PROTOCOLS: &[&str] = &["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];

/// `process.roles`: which of Kafka's two roles this node plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessRoles {
    /// Serves clients: produce, fetch, groups, transactions.
    pub broker: bool,
    /// Votes in the controller quorum and keeps the cluster metadata.
    pub controller: bool,
}

impl ProcessRoles {
    /// Both roles: Kafka's combined mode, Kaskade's default.
    pub const COMBINED: ProcessRoles = ProcessRoles { broker: true, controller: true };

    /// Parses `broker`, `controller` or both, as Kafka does (exact,
    /// lower-case role names; no duplicates). `Ok(None)` for an empty list.
    fn parse(value: &str) -> Result<Option<ProcessRoles>, String> {
        let items = split_list(value);
        let mut roles = ProcessRoles { broker: false, controller: false };
        for item in &items {
            let seen = match item.as_str() {
                "broker" => std::mem::replace(&mut roles.broker, true),
                "controller" => std::mem::replace(&mut roles.controller, true),
                other => {
                    return Err(format!(
                        "Unknown process role '{other}' (only 'broker' and 'controller' are allowed roles)"
                    ))
                }
            };
            if seen {
                return Err(format!("Duplicate role names found in `process.roles`: [{}]", items.join(", ")));
            }
        }
        Ok((roles.broker || roles.controller).then_some(roles))
    }
}

impl fmt::Display for ProcessRoles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.broker, self.controller) {
            (true, true) => f.write_str("broker,controller"),
            (true, false) => f.write_str("broker"),
            (false, true) => f.write_str("controller"),
            (false, false) => f.write_str(""),
        }
    }
}

/// A `host:port` address, as the quorum settings name controllers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// A host name or IP address (without IPv6 brackets).
    pub host: String,
    /// The port.
    pub port: u16,
}

impl HostPort {
    /// Splits `host:port` or `[v6]:port` as Kafka's `Utils.getHost` /
    /// `getPort` do; `None` for the part that is missing or malformed.
    fn split(text: &str) -> (Option<String>, Option<u16>) {
        let Some((host, port)) = text.rsplit_once(':') else {
            return (None, None);
        };
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        let valid_host = !host.is_empty()
            && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '%'));
        (valid_host.then(|| host.to_string()), port.parse::<u16>().ok())
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A voter of the static controller quorum, `id@host:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Voter {
    /// The controller's `node.id`.
    pub id: NodeId,
    /// Its controller listener.
    pub address: HostPort,
}

impl Voter {
    /// Parses one `controller.quorum.voters` entry with Kafka's messages.
    fn parse(entry: &str) -> Result<Voter, String> {
        const FORM: &str = "Each entry should be in the form `{id}@{host}:{port}`.";
        let parts: Vec<&str> = entry.split('@').collect();
        let [id, address] = parts[..] else {
            return Err(format!("Invalid configuration value for controller.quorum.voters. {FORM}"));
        };
        let id = id.trim().parse::<i32>().map_err(|_| format!("Failed to parse voter ID as an integer from {id}"))?;
        let (host, port) = HostPort::split(address.trim());
        let host = host.ok_or_else(|| {
            format!(
                "Failed to parse host name from entry {entry} for the configuration controller.quorum.voters. {FORM}"
            )
        })?;
        let port = port.ok_or_else(|| {
            format!(
                "Failed to parse host port from entry {entry} for the configuration controller.quorum.voters. {FORM}"
            )
        })?;
        if host == "0.0.0.0" {
            return Err(format!("Host string ({host}) is not routeable"));
        }
        Ok(Voter { id: NodeId(id), address: HostPort { host, port } })
    }
}

impl fmt::Display for Voter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.id, self.address)
    }
}

/// Parses one `controller.quorum.bootstrap.servers` entry with Kafka's
/// messages.
fn parse_bootstrap_server(entry: &str) -> Result<HostPort, String> {
    const FORM: &str = "Each entry should be in the form \"{host}:{port}\"";
    let (host, port) = HostPort::split(entry);
    let host = host.ok_or_else(|| {
        format!(
            "Failed to parse host name from {entry} for the configuration controller.quorum.bootstrap.servers. {FORM}"
        )
    })?;
    let port = port.ok_or_else(|| {
        format!(
            "Failed to parse host port from {entry} for the configuration controller.quorum.bootstrap.servers. {FORM}"
        )
    })?;
    Ok(HostPort { host, port })
}

/// The KRaft settings of a node, typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KraftConfig {
    /// `process.roles`; `None` when unset (a combined single node).
    pub process_roles: Option<ProcessRoles>,
    /// `controller.quorum.voters`: the static quorum, in the order given.
    pub voters: Vec<Voter>,
    /// `controller.quorum.bootstrap.servers` (KIP-853, a dynamic quorum).
    pub bootstrap_servers: Vec<HostPort>,
    /// `inter.broker.listener.name`, else the listener named by
    /// `security.inter.broker.protocol` (upper case).
    pub inter_broker_listener_name: String,
    /// Whether `inter.broker.listener.name` was given (Kafka checks some
    /// rules only then).
    inter_broker_listener_name_given: bool,
    /// `broker.rack`.
    pub broker_rack: Option<String>,
    /// `controller.quorum.standalone` (Kaskade's; Kafka's `kafka-storage
    /// format --standalone`): on its first start this controller forms a
    /// dynamic quorum with itself as the only voter.
    pub standalone: bool,
    /// `controller.quorum.initial.controllers` (Kaskade's; Kafka's
    /// `kafka-storage format --initial-controllers`): on their first start
    /// the controllers named here form a dynamic quorum of exactly these
    /// voters.
    pub initial_controllers: Vec<InitialController>,
}

/// How a controller of a dynamic quorum (KIP-853) starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DynamicQuorum {
    /// Forms the quorum with itself as its only voter (first start only;
    /// later starts find the membership in the Raft log).
    Standalone,
    /// Waits, serving its controller listener, until the quorum's leader
    /// adds it (`add-controller`: learner, then voter), as Kafka's
    /// `--no-initial-controllers` observer does.
    Join,
    /// Forms the quorum of `controller.quorum.initial.controllers` with
    /// the others named there (first start only); a controller the list
    /// does not name waits to be added, as with [`Self::Join`].
    InitialControllers,
}

impl Default for KraftConfig {
    fn default() -> Self {
        KraftConfig {
            process_roles: None,
            voters: Vec::new(),
            bootstrap_servers: Vec::new(),
            inter_broker_listener_name: "PLAINTEXT".into(),
            inter_broker_listener_name_given: false,
            broker_rack: None,
            standalone: false,
            initial_controllers: Vec::new(),
        }
    }
}

impl KraftConfig {
    /// Reads the KRaft keys through `raw` (the given value, else the
    /// default), pushing one message per invalid value onto `errors`.
    /// `given` tells whether a key was set explicitly.
    pub(super) fn parse(
        raw: &dyn Fn(&str) -> Option<String>,
        given: &dyn Fn(&str) -> bool,
        errors: &mut Vec<String>,
    ) -> KraftConfig {
        let mut out = KraftConfig::default();
        match ProcessRoles::parse(&raw("process.roles").unwrap_or_default()) {
            Ok(roles) => out.process_roles = roles,
            Err(e) => errors.push(e),
        }
        let mut ids = BTreeSet::new();
        for entry in split_list(&raw("controller.quorum.voters").unwrap_or_default()) {
            match Voter::parse(&entry) {
                Ok(v) if !ids.insert(v.id) => errors.push(format!(
                    "invalid value for controller.quorum.voters: the voter id {} appears more than once",
                    v.id
                )),
                Ok(v) => out.voters.push(v),
                Err(e) => errors.push(e),
            }
        }
        for entry in split_list(&raw("controller.quorum.bootstrap.servers").unwrap_or_default()) {
            match parse_bootstrap_server(&entry) {
                Ok(s) => out.bootstrap_servers.push(s),
                Err(e) => errors.push(e),
            }
        }
        let listener_name = raw("inter.broker.listener.name").map(|n| n.trim().to_ascii_uppercase());
        match (listener_name.filter(|n| !n.is_empty()), given("security.inter.broker.protocol")) {
            (Some(_), true) => errors.push(
                "Only one of inter.broker.listener.name and security.inter.broker.protocol should be set.".into(),
            ),
            (Some(name), false) => {
                out.inter_broker_listener_name = name;
                out.inter_broker_listener_name_given = true;
            }
            (None, _) => {
                out.inter_broker_listener_name = raw("security.inter.broker.protocol").unwrap_or_default();
            }
        }
        out.broker_rack = raw("broker.rack").map(|r| r.trim().to_string()).filter(|r| !r.is_empty());
        out.standalone = raw("controller.quorum.standalone").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        match initial_controllers::parse_list(&raw(initial_controllers::KEY).unwrap_or_default()) {
            Ok(list) => out.initial_controllers = list,
            Err(e) => errors.push(e),
        }
        out
    }

    /// The roles this node plays: `process.roles`, else both.
    pub fn roles(&self) -> ProcessRoles {
        self.process_roles.unwrap_or(ProcessRoles::COMBINED)
    }

    /// The voter ids, sorted.
    pub fn voter_ids(&self) -> BTreeSet<NodeId> {
        self.voters.iter().map(|v| v.id).collect()
    }

    /// Kafka's cross-key checks of the KRaft settings (`KafkaConfig`'s
    /// `validateValues`), with its messages.
    pub(super) fn validate(&self, node: &NodeView<'_>, errors: &mut Vec<String>) {
        let ids = self.voter_ids();
        let ids_text = format!("Set({})", ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", "));
        let controller_listeners: Vec<&ListenerSpec> =
            node.listeners.iter().filter(|l| node.controller_listener_names.contains(&l.name)).collect();
        let names_in_listeners =
            node.controller_listener_names.iter().all(|n| node.listeners.iter().any(|l| l.name == *n));
        let roles_given = self.process_roles.is_some();
        let roles = self.roles();

        if roles_given && ids.is_empty() && self.bootstrap_servers.is_empty() {
            errors.push(
                "If using process.roles, either controller.quorum.bootstrap.servers must contain the set of bootstrap \
                 controllers or controller.quorum.voters must contain a parseable set of controllers."
                    .into(),
            );
        }
        if roles.controller && !ids.is_empty() && !ids.contains(&node.node_id) {
            errors.push(format!(
                "If process.roles contains the 'controller' role, the node id {} must be included in the set of voters controller.quorum.voters={ids_text}",
                node.node_id
            ));
        }
        if roles_given && roles.controller {
            if controller_listeners.is_empty() {
                errors.push(
                    "controller.listener.names must contain at least one value appearing in the 'listeners' configuration when running the KRaft controller role".into(),
                );
            } else if !names_in_listeners {
                errors.push(
                    "controller.listener.names must only contain values appearing in the 'listeners' configuration when running the KRaft controller role".into(),
                );
            }
        }
        if roles_given && !roles.controller {
            if ids.contains(&node.node_id) {
                errors.push(format!(
                    "If process.roles contains just the 'broker' role, the node id {} must not be included in the set of voters controller.quorum.voters={ids_text}",
                    node.node_id
                ));
            }
            if node.controller_listener_names.is_empty() {
                errors.push(
                    "controller.listener.names must contain at least one value when running KRaft with just the broker role".into(),
                );
            }
            if !controller_listeners.is_empty() {
                errors.push(
                    "controller.listener.names must not contain a value appearing in the 'listeners' configuration when running KRaft with just the broker role".into(),
                );
            }
            for name in node.controller_listener_names {
                if !node.security_protocols.contains_key(name) {
                    errors.push(format!(
                        "Controller listener with name {name} defined in controller.listener.names not found in listener.security.protocol.map  (an explicit security mapping for each controller listener is required if listener.security.protocol.map is non-empty, or if there are security protocols other than PLAINTEXT in use)"
                    ));
                }
            }
        }
        if roles_given && !roles.broker {
            if controller_listeners.len() != node.listeners.len() {
                errors.push(
                    "The listeners config must only contain KRaft controller listeners from controller.listener.names when process.roles=controller".into(),
                );
            }
            if self.inter_broker_listener_name_given
                && node.controller_listener_names.contains(&self.inter_broker_listener_name)
            {
                errors.push(
                    "controller.listener.names must not contain an explicitly set inter.broker.listener.name configuration value when process.roles=controller'".into(),
                );
            }
        }
        if roles.broker {
            let advertised: BTreeSet<&str> = node.advertised_broker_listeners.iter().map(|l| l.name.as_str()).collect();
            let listed: BTreeSet<&str> = node.listeners.iter().map(|l| l.name.as_str()).collect();
            let join = |s: &BTreeSet<&str>| s.iter().copied().collect::<Vec<_>>().join(",");
            if advertised.is_empty() {
                errors.push(
                    "There must be at least one broker advertised listener. Perhaps all listeners appear in controller.listener.names?".into(),
                );
            } else if !advertised.contains(self.inter_broker_listener_name.as_str()) {
                errors.push(format!(
                    "inter.broker.listener.name must be a listener name defined in advertised.listeners. The valid options based on currently configured listeners are {}",
                    join(&advertised)
                ));
            }
            if !advertised.is_subset(&listed) {
                errors.push(format!(
                    "advertised.listeners listener names must be equal to or a subset of the ones defined in listeners. Found {}. The valid options based on the current configuration are {}",
                    join(&advertised),
                    join(&listed)
                ));
            }
        }
    }

    /// Whether this node can run with what Kaskade has today: a combined
    /// node (`process.roles=broker,controller`, or no roles: a single
    /// node) whose quorum is its own (static voters naming just itself, or
    /// one bootstrap server on its own controller port, or neither); a
    /// node of a static quorum (`controller.quorum.voters`, see
    /// [`Self::static_quorum`]): combined, controller-only, or broker-only
    /// (an observer of the voters); a controller (combined or dedicated)
    /// of a dynamic quorum ([`Self::dynamic_quorum`]); a broker-only node
    /// of a dynamic quorum (an observer that bootstraps from
    /// `controller.quorum.bootstrap.servers`, [`Self::observer_bootstrap`]).
    pub fn check_runnable(&self, node_id: NodeId, controller_ports: &[u16]) -> Result<(), String> {
        let roles = self.roles();
        if self.standalone && !self.voters.is_empty() {
            return Err(format!(
                "controller.quorum.standalone forms a dynamic quorum, but controller.quorum.voters ({}) names a \
                 static one; use controller.quorum.bootstrap.servers",
                self.quorum_text()
            ));
        }
        if self.standalone && !roles.controller {
            return Err(format!("controller.quorum.standalone needs the controller role (process.roles={roles})"));
        }
        if !self.initial_controllers.is_empty() {
            // Kafka's format takes one of --standalone, --initial-controllers
            // and --no-initial-controllers, and none with static voters.
            if self.standalone {
                return Err(format!(
                    "controller.quorum.standalone and {} both say how the dynamic quorum forms; give one",
                    initial_controllers::KEY
                ));
            }
            if !self.voters.is_empty() {
                return Err(format!(
                    "{} forms a dynamic quorum, but controller.quorum.voters ({}) names a static one; use \
                     controller.quorum.bootstrap.servers",
                    initial_controllers::KEY,
                    self.quorum_text()
                ));
            }
            if !roles.controller {
                return Err(format!("{} needs the controller role (process.roles={roles})", initial_controllers::KEY));
            }
        }
        if !roles.controller {
            if self.voters.is_empty() && self.bootstrap_servers.is_empty() {
                return Err(format!(
                    "process.roles={roles} needs controller.quorum.voters or controller.quorum.bootstrap.servers"
                ));
            }
            // Kafka's checks (`validate`) already keep a broker out of the voters.
            return Ok(());
        }
        if !self.voters.is_empty() {
            if !self.voters.iter().any(|v| v.id == node_id) {
                return Err(format!(
                    "controller.quorum.voters ({}) does not name this node ({node_id}), which has the controller \
                     role",
                    self.quorum_text()
                ));
            }
            return Ok(());
        }
        if !roles.broker && self.dynamic_quorum(controller_ports).is_none() {
            return Err(format!(
                "process.roles={roles} needs controller.quorum.voters, or controller.quorum.bootstrap.servers \
                 (with controller.quorum.standalone=true for the first controller)"
            ));
        }
        Ok(())
    }

    /// How this controller runs in a dynamic quorum (KIP-853), if it is in
    /// one: no `controller.quorum.voters`, and either
    /// `controller.quorum.standalone` (it forms the quorum),
    /// `controller.quorum.initial.controllers` (those named form it) or
    /// `controller.quorum.bootstrap.servers` naming other controllers (it
    /// joins). A combined node whose only bootstrap server is its own
    /// controller listener, without `standalone`, stays what it always was:
    /// a cluster of its own on the local metadata log (`None`).
    pub fn dynamic_quorum(&self, controller_ports: &[u16]) -> Option<DynamicQuorum> {
        let roles = self.roles();
        if !self.voters.is_empty() || !roles.controller {
            return None;
        }
        if self.standalone {
            return Some(DynamicQuorum::Standalone);
        }
        if !self.initial_controllers.is_empty() {
            return Some(DynamicQuorum::InitialControllers);
        }
        let own_bootstrap = match &self.bootstrap_servers[..] {
            [] => return None,
            [one] => controller_ports.contains(&one.port),
            _ => false,
        };
        if own_bootstrap && roles.broker {
            return None;
        }
        Some(DynamicQuorum::Join)
    }

    /// The static quorum this node runs in (node id -> `host:port` of its
    /// controller listener), if `controller.quorum.voters` names any node
    /// besides this one, or this node has one role only (a lone dedicated
    /// controller still serves its brokers); `None` for a combined node
    /// that is its own quorum (it keeps the local metadata log).
    pub fn static_quorum(&self, node_id: NodeId) -> Option<BTreeMap<NodeId, String>> {
        let roles = self.roles();
        let dedicated = !(roles.broker && roles.controller);
        if self.voters.is_empty() || (!dedicated && self.voters.iter().all(|v| v.id == node_id)) {
            return None;
        }
        Some(self.voters.iter().map(|v| (v.id, format!("{}:{}", v.address.host, v.address.port))).collect())
    }

    /// Where a broker-only node of a dynamic quorum fetches the metadata
    /// log until an answer names the leader: its
    /// `controller.quorum.bootstrap.servers` (`host:port` each); `None` for
    /// any other node.
    pub fn observer_bootstrap(&self) -> Option<Vec<String>> {
        let roles = self.roles();
        (!roles.controller && self.voters.is_empty() && !self.bootstrap_servers.is_empty())
            .then(|| self.bootstrap_servers.iter().map(HostPort::to_string).collect())
    }

    fn quorum_text(&self) -> String {
        if self.voters.is_empty() {
            self.bootstrap_servers.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(",")
        } else {
            self.voters.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(",")
        }
    }
}

/// What the KRaft checks need to know of the rest of the configuration.
pub(super) struct NodeView<'a> {
    pub(super) node_id: NodeId,
    pub(super) listeners: &'a [ListenerSpec],
    pub(super) advertised_broker_listeners: &'a [ListenerSpec],
    pub(super) controller_listener_names: &'a [String],
    pub(super) security_protocols: &'a BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_roles_parse_as_kafka() {
        assert_eq!(ProcessRoles::parse("broker,controller"), Ok(Some(ProcessRoles::COMBINED)));
        assert_eq!(ProcessRoles::parse(" controller , broker "), Ok(Some(ProcessRoles::COMBINED)));
        assert_eq!(ProcessRoles::parse("broker"), Ok(Some(ProcessRoles { broker: true, controller: false })));
        assert_eq!(ProcessRoles::parse("controller"), Ok(Some(ProcessRoles { broker: false, controller: true })));
        assert_eq!(ProcessRoles::parse(""), Ok(None));
        assert_eq!(
            ProcessRoles::parse("broker,zookeeper"),
            Err("Unknown process role 'zookeeper' (only 'broker' and 'controller' are allowed roles)".into())
        );
        assert_eq!(
            ProcessRoles::parse("Broker"),
            Err("Unknown process role 'Broker' (only 'broker' and 'controller' are allowed roles)".into())
        );
        assert_eq!(
            ProcessRoles::parse("broker,broker"),
            Err("Duplicate role names found in `process.roles`: [broker, broker]".into())
        );
        assert_eq!(ProcessRoles::COMBINED.to_string(), "broker,controller");
    }

    #[test]
    fn voters_parse_with_kafkas_messages() {
        let v = Voter::parse("3@kafka-3:9093").unwrap();
        assert_eq!(v, Voter { id: NodeId(3), address: HostPort { host: "kafka-3".into(), port: 9093 } });
        assert_eq!(v.to_string(), "3@kafka-3:9093");
        let v6 = Voter::parse("1@[::1]:9093").unwrap();
        assert_eq!(v6.address.host, "::1");
        assert_eq!(v6.to_string(), "1@[::1]:9093");
        assert_eq!(
            Voter::parse("kafka:9093").unwrap_err(),
            "Invalid configuration value for controller.quorum.voters. Each entry should be in the form `{id}@{host}:{port}`."
        );
        assert_eq!(Voter::parse("x@kafka:9093").unwrap_err(), "Failed to parse voter ID as an integer from x");
        assert_eq!(
            Voter::parse("1@:9093").unwrap_err(),
            "Failed to parse host name from entry 1@:9093 for the configuration controller.quorum.voters. Each entry should be in the form `{id}@{host}:{port}`."
        );
        assert_eq!(
            Voter::parse("1@kafka").unwrap_err(),
            "Failed to parse host name from entry 1@kafka for the configuration controller.quorum.voters. Each entry should be in the form `{id}@{host}:{port}`."
        );
        assert_eq!(
            Voter::parse("1@kafka:port").unwrap_err(),
            "Failed to parse host port from entry 1@kafka:port for the configuration controller.quorum.voters. Each entry should be in the form `{id}@{host}:{port}`."
        );
        assert_eq!(Voter::parse("1@0.0.0.0:9093").unwrap_err(), "Host string (0.0.0.0) is not routeable");
    }

    #[test]
    fn bootstrap_servers_parse_with_kafkas_messages() {
        assert_eq!(parse_bootstrap_server("localhost:9093"), Ok(HostPort { host: "localhost".into(), port: 9093 }));
        assert_eq!(
            parse_bootstrap_server("localhost").unwrap_err(),
            "Failed to parse host name from localhost for the configuration controller.quorum.bootstrap.servers. Each entry should be in the form \"{host}:{port}\""
        );
        assert_eq!(
            parse_bootstrap_server("localhost:x").unwrap_err(),
            "Failed to parse host port from localhost:x for the configuration controller.quorum.bootstrap.servers. Each entry should be in the form \"{host}:{port}\""
        );
    }

    fn kraft(voters: &[&str], bootstrap: &[&str], roles: Option<ProcessRoles>) -> KraftConfig {
        KraftConfig {
            process_roles: roles,
            voters: voters.iter().map(|v| Voter::parse(v).unwrap()).collect(),
            bootstrap_servers: bootstrap.iter().map(|b| parse_bootstrap_server(b).unwrap()).collect(),
            ..KraftConfig::default()
        }
    }

    #[test]
    fn combined_nodes_run_alone_or_in_a_static_quorum() {
        let combined = Some(ProcessRoles::COMBINED);
        assert_eq!(kraft(&[], &[], None).check_runnable(NodeId(1), &[]), Ok(()));
        assert_eq!(kraft(&["1@kafka:9093"], &[], combined).check_runnable(NodeId(1), &[9093]), Ok(()));
        assert_eq!(kraft(&[], &["localhost:9093"], combined).check_runnable(NodeId(1), &[9093]), Ok(()));

        let three = kraft(&["1@a:9093", "2@b:9093", "3@c:9093"], &[], combined);
        assert_eq!(three.check_runnable(NodeId(1), &[9093]), Ok(()), "a static quorum of combined nodes runs");
        let quorum = three.static_quorum(NodeId(1)).expect("a quorum of three");
        assert_eq!(quorum.get(&NodeId(3)).map(String::as_str), Some("c:9093"));
        assert_eq!(kraft(&["1@kafka:9093"], &[], combined).static_quorum(NodeId(1)), None, "its own quorum");
        let err = three.check_runnable(NodeId(4), &[9093]).unwrap_err();
        assert!(err.contains("does not name this node (4)"), "{err}");

        assert_eq!(kraft(&[], &[], None).dynamic_quorum(&[]), None, "a single node");
        assert_eq!(kraft(&[], &["localhost:9093"], combined).dynamic_quorum(&[9093]), None, "its own quorum");

        // Dedicated roles run in a static quorum, even a lone controller's.
        let broker_only = Some(ProcessRoles { broker: true, controller: false });
        let broker = kraft(&["2@c:9093"], &[], broker_only);
        assert_eq!(broker.check_runnable(NodeId(1), &[]), Ok(()), "a broker-only node observes the voters");
        assert_eq!(broker.static_quorum(NodeId(1)).map(|q| q.len()), Some(1));
        let controller = kraft(&["1@c:9093"], &[], Some(ProcessRoles { broker: false, controller: true }));
        assert_eq!(controller.check_runnable(NodeId(1), &[9093]), Ok(()), "a controller-only node");
        assert!(controller.static_quorum(NodeId(1)).is_some(), "a lone controller still runs the quorum");
        // A broker-only node of a dynamic quorum observes it from the bootstrap servers.
        let dynamic = kraft(&[], &["c:9093", "d:9094"], broker_only);
        assert_eq!(dynamic.check_runnable(NodeId(1), &[]), Ok(()));
        assert_eq!(dynamic.observer_bootstrap(), Some(vec!["c:9093".to_string(), "d:9094".to_string()]));
        assert_eq!(dynamic.static_quorum(NodeId(1)), None);
        assert_eq!(broker.observer_bootstrap(), None, "a static quorum's observer has voters");
        assert_eq!(kraft(&[], &["c:9093"], Some(ProcessRoles::COMBINED)).observer_bootstrap(), None);
    }

    #[test]
    fn controllers_form_or_join_a_dynamic_quorum() {
        let combined = Some(ProcessRoles::COMBINED);
        let controller_only = Some(ProcessRoles { broker: false, controller: true });
        let standalone = |roles, bootstrap: &[&str]| KraftConfig { standalone: true, ..kraft(&[], bootstrap, roles) };
        for roles in [combined, controller_only, None] {
            let first = standalone(roles, &["localhost:9093"]);
            assert_eq!(first.check_runnable(NodeId(1), &[9093]), Ok(()), "{roles:?}");
            assert_eq!(first.dynamic_quorum(&[9093]), Some(DynamicQuorum::Standalone), "{roles:?}");
            assert_eq!(first.static_quorum(NodeId(1)), None);
        }
        // Bootstrap servers elsewhere: a combined or dedicated controller joins.
        for roles in [combined, controller_only] {
            let joiner = kraft(&[], &["other:9093"], roles);
            assert_eq!(joiner.check_runnable(NodeId(2), &[9095]), Ok(()), "{roles:?}");
            assert_eq!(joiner.dynamic_quorum(&[9095]), Some(DynamicQuorum::Join), "{roles:?}");
            let several = kraft(&[], &["a:9093", "b:9093"], roles);
            assert_eq!(several.dynamic_quorum(&[9093]), Some(DynamicQuorum::Join), "{roles:?}");
        }
        // A dedicated controller naming only itself waits to be added (it
        // cannot be a cluster of its own: it hosts no partitions).
        assert_eq!(kraft(&[], &["c:9093"], controller_only).dynamic_quorum(&[9093]), Some(DynamicQuorum::Join));
        // Refused: standalone with static voters, or without the controller role.
        let both = KraftConfig { standalone: true, ..kraft(&["1@c:9093"], &[], combined) };
        let err = both.check_runnable(NodeId(1), &[9093]).unwrap_err();
        assert!(err.contains("controller.quorum.voters (1@c:9093) names a static one"), "{err}");
        let broker = standalone(Some(ProcessRoles { broker: true, controller: false }), &["c:9093"]);
        let err = broker.check_runnable(NodeId(1), &[]).unwrap_err();
        assert!(err.contains("controller.quorum.standalone needs the controller role (process.roles=broker)"), "{err}");
        assert_eq!(broker.dynamic_quorum(&[]), None);
    }

    #[test]
    fn initial_controllers_form_a_dynamic_quorum_alone_of_the_other_ways() {
        let combined = Some(ProcessRoles::COMBINED);
        let list = initial_controllers::parse_list(
            "1@c1:9093:K90IZ-0DRNazJ49kCZ1EMQ,2@c2:9093:AQEBAQEBAQEBAQEBAQEBAQ,3@c3:9093:AgICAgICAgICAgICAgICAg",
        )
        .expect("list");
        let initial = |voters: &[&str], roles| KraftConfig {
            initial_controllers: list.clone(),
            ..kraft(voters, &["c1:9093", "c2:9093"], roles)
        };
        for roles in [combined, Some(ProcessRoles { broker: false, controller: true }), None] {
            let c = initial(&[], roles);
            assert_eq!(c.check_runnable(NodeId(2), &[9093]), Ok(()), "{roles:?}");
            assert_eq!(c.dynamic_quorum(&[9093]), Some(DynamicQuorum::InitialControllers), "{roles:?}");
            assert_eq!(c.static_quorum(NodeId(2)), None);
        }
        let with_standalone = KraftConfig { standalone: true, ..initial(&[], combined) };
        let err = with_standalone.check_runnable(NodeId(1), &[9093]).unwrap_err();
        assert!(err.contains("both say how the dynamic quorum forms"), "{err}");
        let err = initial(&["1@c1:9093"], combined).check_runnable(NodeId(1), &[9093]).unwrap_err();
        assert!(err.contains("controller.quorum.voters (1@c1:9093) names a static one"), "{err}");
        let broker = initial(&[], Some(ProcessRoles { broker: true, controller: false }));
        let err = broker.check_runnable(NodeId(4), &[]).unwrap_err();
        assert!(err.contains("controller.quorum.initial.controllers needs the controller role"), "{err}");
    }
}
