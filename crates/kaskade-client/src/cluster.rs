//! The cluster as a client sees it: bootstrap servers, the metadata
//! (brokers, topics, partition leaders), and one connection per broker.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use kaskade_types::{LeaderEpoch, NodeId};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::connection::{Connection, ConnectionConfig};
use crate::error::{ClientError, KafkaError, Result};

/// A broker as listed in Metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    pub node_id: NodeId,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

impl BrokerInfo {
    pub fn addr(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A partition as listed in Metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    pub partition: i32,
    pub error: Option<ResponseError>,
    /// `None` when there is no leader.
    pub leader: Option<NodeId>,
    /// `None` when the broker's Metadata version does not carry it.
    pub leader_epoch: Option<LeaderEpoch>,
    pub replicas: Vec<NodeId>,
    pub isr: Vec<NodeId>,
    pub offline_replicas: Vec<NodeId>,
}

/// A topic as listed in Metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    pub name: String,
    pub error: Option<ResponseError>,
    /// Nil when the broker's Metadata version has no topic ids.
    pub topic_id: Uuid,
    pub is_internal: bool,
    /// Sorted by partition index.
    pub partitions: Vec<PartitionMetadata>,
}

impl TopicMetadata {
    pub fn partition(&self, p: i32) -> Option<&PartitionMetadata> {
        self.partitions.iter().find(|m| m.partition == p)
    }

    pub fn num_partitions(&self) -> i32 {
        self.partitions.len() as i32
    }

    pub fn replication_factor(&self) -> usize {
        self.partitions.first().map_or(0, |p| p.replicas.len())
    }
}

/// A Metadata response, in our own types.
#[derive(Debug, Clone, Default)]
pub struct ClusterMetadata {
    pub cluster_id: Option<String>,
    /// `None` if unknown.
    pub controller: Option<NodeId>,
    pub brokers: BTreeMap<NodeId, BrokerInfo>,
    pub topics: Vec<TopicMetadata>,
}

/// Split `host:port[,host:port...]`; `[v6]:port` is accepted; a missing
/// port means 9092.
pub fn parse_bootstrap(s: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (host, port) = if let Some(rest) = part.strip_prefix('[') {
            let (h, after) =
                rest.split_once(']').ok_or_else(|| bad(format!("bad bootstrap server '{part}': missing ']'")))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p,
                None if after.is_empty() => "9092",
                None => return Err(bad(format!("bad bootstrap server '{part}'"))),
            };
            (format!("[{h}]"), port.to_string())
        } else {
            match part.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => (h.to_string(), p.to_string()),
                Some(_) => {
                    return Err(bad(format!("bad bootstrap server '{part}': write IPv6 addresses as [addr]:port")))
                }
                None => (part.to_string(), "9092".to_string()),
            }
        };
        let port: u16 =
            port.parse().map_err(|_| bad(format!("bad bootstrap server '{part}': port '{port}' is not a number")))?;
        if host.is_empty() {
            return Err(bad(format!("bad bootstrap server '{part}': empty host")));
        }
        out.push(format!("{host}:{port}"));
    }
    if out.is_empty() {
        return Err(bad("no bootstrap server given".to_string()));
    }
    Ok(out)
}

fn bad(message: String) -> ClientError {
    ClientError::InvalidInput(message)
}

/// A client of one cluster. Cheap to share behind an `Arc`.
pub struct Client {
    bootstrap: Vec<String>,
    config: ConnectionConfig,
    /// The connection used for cluster-wide requests (metadata, admin).
    any: Mutex<Option<Arc<Connection>>>,
    /// Connections by broker node id.
    nodes: Mutex<HashMap<NodeId, Arc<Connection>>>,
    /// The last metadata seen: brokers and the controller.
    cluster: std::sync::Mutex<ClusterMetadata>,
    /// Cached topic metadata, refreshed on demand.
    topics: std::sync::Mutex<HashMap<String, TopicMetadata>>,
}

impl Client {
    /// A client for `bootstrap` (`host:port,...`). Connects lazily.
    pub fn new(bootstrap: &str) -> Result<Client> {
        Self::with_config(bootstrap, ConnectionConfig::default())
    }

    pub fn with_config(bootstrap: &str, config: ConnectionConfig) -> Result<Client> {
        Ok(Client {
            bootstrap: parse_bootstrap(bootstrap)?,
            config,
            any: Mutex::new(None),
            nodes: Mutex::new(HashMap::new()),
            cluster: std::sync::Mutex::new(ClusterMetadata::default()),
            topics: std::sync::Mutex::new(HashMap::new()),
        })
    }

    pub fn bootstrap(&self) -> &[String] {
        &self.bootstrap
    }

    /// A live connection to some broker: the last one used, else the first
    /// bootstrap server (or known broker) that answers.
    pub async fn any_connection(&self) -> Result<Arc<Connection>> {
        let mut any = self.any.lock().await;
        if let Some(c) = any.as_ref() {
            if !c.is_closed() {
                return Ok(c.clone());
            }
        }
        let mut candidates = self.bootstrap.clone();
        let known: Vec<String> = self.cluster.lock().unwrap().brokers.values().map(|b| b.addr()).collect();
        candidates.extend(known.into_iter().filter(|a| !self.bootstrap.contains(a)));
        let mut errors = Vec::new();
        for addr in &candidates {
            match Connection::connect(addr, self.config.clone()).await {
                Ok(c) => {
                    *any = Some(c.clone());
                    return Ok(c);
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        Err(ClientError::Unreachable(format!("could not reach any broker: {}", errors.join("; "))))
    }

    /// The connection to broker `node_id`, connecting if needed.
    pub async fn node_connection(&self, node_id: NodeId) -> Result<Arc<Connection>> {
        let mut nodes = self.nodes.lock().await;
        if let Some(c) = nodes.get(&node_id) {
            if !c.is_closed() {
                return Ok(c.clone());
            }
        }
        let broker = self.cluster.lock().unwrap().brokers.get(&node_id).cloned();
        let broker = match broker {
            Some(b) => b,
            None => {
                drop(nodes);
                self.metadata(Some(&[])).await?;
                nodes = self.nodes.lock().await;
                self.cluster.lock().unwrap().brokers.get(&node_id).cloned().ok_or_else(|| {
                    ClientError::Unavailable(format!("broker {node_id} is not in the cluster metadata"))
                })?
            }
        };
        // Reuse the bootstrap connection when it is this broker.
        let reuse = self.any.lock().await.as_ref().filter(|c| !c.is_closed() && c.addr() == broker.addr()).cloned();
        let conn = match reuse {
            Some(c) => c,
            None => Connection::connect(&broker.addr(), self.config.clone())
                .await
                .map_err(|e| e.context(format_args!("connecting to broker {node_id} at {}", broker.addr())))?,
        };
        nodes.insert(node_id, conn.clone());
        Ok(conn)
    }

    /// The connection for admin requests: the controller Metadata names
    /// (in KRaft a broker, which forwards), else any broker.
    pub async fn admin_connection(&self) -> Result<Arc<Connection>> {
        let controller = self.cluster.lock().unwrap().controller;
        let controller = match controller {
            Some(c) => Some(c),
            None => self.metadata(Some(&[])).await?.controller,
        };
        if let Some(controller) = controller {
            if let Ok(c) = self.node_connection(controller).await {
                return Ok(c);
            }
        }
        self.any_connection().await
    }

    /// Forget the cached controller (after NOT_CONTROLLER).
    pub fn forget_controller(&self) {
        self.cluster.lock().unwrap().controller = None;
    }

    /// Metadata for `topics`: `None` for every topic, `Some(&[])` for
    /// brokers only. Never asks the broker to auto-create topics.
    pub async fn metadata(&self, topics: Option<&[String]>) -> Result<ClusterMetadata> {
        let conn = self.any_connection().await?;
        let version = conn.version::<MetadataRequest>()?;
        let req_topics = match topics {
            // v0 has no null: an empty list means "all".
            None if version == 0 => Some(vec![]),
            None => None,
            Some([]) if version == 0 => {
                return Err(ClientError::Unsupported("Metadata v0 cannot ask for brokers only".to_string()))
            }
            Some(names) => Some(
                names
                    .iter()
                    .map(|n| {
                        MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(n.clone()))))
                    })
                    .collect(),
            ),
        };
        let mut req = MetadataRequest::default().with_topics(req_topics);
        req.allow_auto_topic_creation = version < 4; // v0-3 always allow
        let resp = conn.send(&req, version).await?;
        let md = convert_metadata(resp);
        {
            let mut c = self.cluster.lock().unwrap();
            c.cluster_id = md.cluster_id.clone();
            c.controller = md.controller;
            c.brokers = md.brokers.clone();
        }
        {
            let mut cache = self.topics.lock().unwrap();
            for t in &md.topics {
                if t.error.is_none() {
                    cache.insert(t.name.clone(), t.clone());
                } else {
                    cache.remove(&t.name);
                }
            }
        }
        Ok(md)
    }

    /// Metadata of one topic, from the cache unless `refresh`. Retries a
    /// little while the topic has no leaders yet (just created).
    pub async fn topic(&self, name: &str, refresh: bool) -> Result<TopicMetadata> {
        if !refresh {
            if let Some(t) = self.topics.lock().unwrap().get(name) {
                return Ok(t.clone());
            }
        }
        let mut backoff = Duration::from_millis(50);
        for attempt in 0..8 {
            let md = self.metadata(Some(&[name.to_string()])).await?;
            let t = md.topics.into_iter().find(|t| t.name == name).ok_or_else(|| {
                ClientError::Protocol(format!("the broker's Metadata response does not mention topic '{name}'"))
            })?;
            let retriable = match t.error {
                None => t.partitions.iter().any(|p| p.leader.is_none()),
                Some(e) => e == ResponseError::LeaderNotAvailable,
            };
            if t.error == Some(ResponseError::UnknownTopicOrPartition) {
                return Err(unknown_topic(name).into());
            }
            if retriable && attempt < 7 {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
            if let Some(e) = t.error {
                return Err(KafkaError::new(e, None, format!("looking up topic '{name}'")).into());
            }
            return Ok(t);
        }
        unreachable!("the last attempt returns")
    }

    /// Drop the cached metadata of `name` so the next lookup asks again.
    pub fn invalidate_topic(&self, name: &str) {
        self.topics.lock().unwrap().remove(name);
    }

    pub fn cached_brokers(&self) -> BTreeMap<NodeId, BrokerInfo> {
        self.cluster.lock().unwrap().brokers.clone()
    }
}

/// The error for a topic that does not exist.
pub fn unknown_topic(name: &str) -> KafkaError {
    KafkaError::new(
        ResponseError::UnknownTopicOrPartition,
        Some(format!("topic '{name}' does not exist")),
        format!("looking up topic '{name}'"),
    )
}

/// A node id from the wire; negative (-1) means none.
fn node(id: kafka_protocol::messages::BrokerId) -> Option<NodeId> {
    (id.0 >= 0).then_some(NodeId(id.0))
}

fn s(b: &StrBytes) -> String {
    b.as_str().to_string()
}

fn convert_metadata(resp: MetadataResponse) -> ClusterMetadata {
    let brokers = resp
        .brokers
        .iter()
        .map(|b| {
            let node_id = NodeId(b.node_id.0);
            (node_id, BrokerInfo { node_id, host: s(&b.host), port: b.port, rack: b.rack.as_ref().map(s) })
        })
        .collect();
    let topics = resp
        .topics
        .iter()
        .map(|t| {
            let mut partitions: Vec<PartitionMetadata> = t
                .partitions
                .iter()
                .map(|p| PartitionMetadata {
                    partition: p.partition_index,
                    error: ResponseError::try_from_code(p.error_code),
                    leader: node(p.leader_id),
                    leader_epoch: LeaderEpoch::from_wire(p.leader_epoch),
                    replicas: p.replica_nodes.iter().filter_map(|n| node(*n)).collect(),
                    isr: p.isr_nodes.iter().filter_map(|n| node(*n)).collect(),
                    offline_replicas: p.offline_replicas.iter().filter_map(|n| node(*n)).collect(),
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            TopicMetadata {
                name: t.name.as_ref().map(|n| s(&n.0)).unwrap_or_default(),
                error: ResponseError::try_from_code(t.error_code),
                topic_id: t.topic_id,
                is_internal: t.is_internal,
                partitions,
            }
        })
        .collect();
    ClusterMetadata {
        cluster_id: resp.cluster_id.as_ref().map(s),
        controller: node(resp.controller_id),
        brokers,
        topics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_parsing() {
        assert_eq!(parse_bootstrap("localhost:9092").unwrap(), vec!["localhost:9092"]);
        assert_eq!(parse_bootstrap("a:1, b:2 ,c").unwrap(), vec!["a:1", "b:2", "c:9092"]);
        assert_eq!(parse_bootstrap("[::1]:9093").unwrap(), vec!["[::1]:9093"]);
        assert_eq!(parse_bootstrap("[::1]").unwrap(), vec!["[::1]:9092"]);
        assert!(parse_bootstrap("").is_err());
        assert!(parse_bootstrap("host:notaport").is_err());
        assert!(parse_bootstrap("::1:9092").is_err());
    }

    #[test]
    fn broker_addr_brackets_ipv6() {
        let b = BrokerInfo { node_id: NodeId(1), host: "::1".into(), port: 9092, rack: None };
        assert_eq!(b.addr(), "[::1]:9092");
        let b = BrokerInfo { node_id: NodeId(1), host: "localhost".into(), port: 9092, rack: None };
        assert_eq!(b.addr(), "localhost:9092");
    }
}
