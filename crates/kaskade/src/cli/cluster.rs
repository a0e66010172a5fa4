//! `kaskade cluster ...`: the controller quorum and the brokers, from
//! Kafka's own APIs, so it works against Kaskade and Apache Kafka alike.
//!
//! - `status`: DescribeQuorum of `__cluster_metadata` (what
//!   `kafka-metadata-quorum describe --status --replication` prints): the
//!   cluster id, the active controller (the quorum's leader), its epoch and
//!   high watermark, then every voter and observer with its log end offset,
//!   its lag behind the high watermark, and how long ago it last fetched
//!   and was caught up. Any broker answers (it asks the active controller).
//! - `brokers`: DescribeCluster v2 with `include_fenced_brokers` (KIP-1073):
//!   every registered broker, fenced ones included, with its rack, its
//!   endpoint on the listener this command connected to, and its state
//!   (`unfenced` or `fenced`), and the active controller Metadata names.
//!   Kafka exposes no broker's controlled-shutdown state over its APIs
//!   (the controller keeps it), so neither does this command.

use anyhow::Result;
use clap::{Args, Subcommand};
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::describe_quorum_response::ReplicaState;
use kafka_protocol::messages::{DescribeClusterRequest, DescribeQuorumRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use serde_json::{json, Value};

use super::output::{print_json, write_stdout, OutputFormat, Table};
use kaskade_client::error::KafkaError;
use kaskade_client::Client;

/// The metadata log's topic, as KRaft names it.
const METADATA_TOPIC: &str = "__cluster_metadata";

#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Output format.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,

    #[command(subcommand)]
    pub command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// The controller quorum: the active controller, its epoch and high
    /// watermark, each controller's (and observer's) log end offset and lag.
    Status,
    /// Every registered broker: id, rack, endpoint, fenced or unfenced.
    Brokers,
}

pub async fn run(args: ClusterArgs, client: &Client) -> Result<i32> {
    match args.command {
        ClusterCommand::Status => status(client, args.output).await,
        ClusterCommand::Brokers => brokers(client, args.output).await,
    }
}

/// One replica of the quorum as `status` shows it.
struct Replica {
    id: i32,
    role: &'static str,
    log_end_offset: i64,
    /// Behind the high watermark (0 when at or past it).
    lag: i64,
    last_fetch_ms_ago: Option<i64>,
    last_caught_up_ms_ago: Option<i64>,
}

/// Milliseconds since `timestamp` (-1: unknown).
fn ago(now_ms: i64, timestamp: i64) -> Option<i64> {
    (timestamp >= 0).then(|| (now_ms - timestamp).max(0))
}

fn replicas(states: &[ReplicaState], leader: i32, high_watermark: i64, now_ms: i64, observer: bool) -> Vec<Replica> {
    states
        .iter()
        .map(|r| Replica {
            id: r.replica_id.0,
            role: match (observer, r.replica_id.0 == leader) {
                (true, _) => "Observer",
                (false, true) => "Leader",
                (false, false) => "Follower",
            },
            log_end_offset: r.log_end_offset,
            lag: (high_watermark - r.log_end_offset).max(0),
            last_fetch_ms_ago: ago(now_ms, r.last_fetch_timestamp),
            last_caught_up_ms_ago: ago(now_ms, r.last_caught_up_timestamp),
        })
        .collect()
}

fn ms_text(ms: Option<i64>) -> String {
    ms.map_or_else(|| "-".to_string(), |ms| format!("{ms} ms ago"))
}

async fn status(client: &Client, out: OutputFormat) -> Result<i32> {
    let conn = client.any_connection().await?;
    let version = conn.version::<DescribeQuorumRequest>()?;
    let mut partition = PartitionData::default();
    partition.partition_index = 0;
    let mut topic = TopicData::default();
    topic.topic_name = TopicName(StrBytes::from_static_str(METADATA_TOPIC));
    topic.partitions = vec![partition];
    let req = DescribeQuorumRequest::default().with_topics(vec![topic]);
    let resp = conn.send(&req, version).await?;
    let context = "describing the controller quorum";
    if let Some(e) = KafkaError::from_code(resp.error_code, resp.error_message.as_ref().map(|m| m.to_string()), context)
    {
        return Err(e.into());
    }
    let p = resp
        .topics
        .iter()
        .find(|t| t.topic_name.0.as_str() == METADATA_TOPIC)
        .and_then(|t| t.partitions.iter().find(|p| p.partition_index == 0))
        .ok_or_else(|| anyhow::anyhow!("{context}: the answer has no {METADATA_TOPIC} partition 0"))?;
    if let Some(e) = KafkaError::from_code(p.error_code, p.error_message.as_ref().map(|m| m.to_string()), context) {
        return Err(e.into());
    }
    let cluster = client.metadata(Some(&[])).await?;
    let cluster_id = cluster.cluster_id.clone().unwrap_or_default();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let leader = p.leader_id.0;
    let mut all = replicas(&p.current_voters, leader, p.high_watermark, now_ms, false);
    all.extend(replicas(&p.observers, leader, p.high_watermark, now_ms, true));
    let max_lag = all.iter().filter(|r| r.role == "Follower").map(|r| r.lag).max().unwrap_or(0);
    match out {
        OutputFormat::Table => {
            let mut text = format!(
                "ClusterId:         {cluster_id}\nActiveController:  {}\nLeaderEpoch:       {}\nHighWatermark:     \
                 {}\nMaxFollowerLag:    {max_lag}\n\n",
                if leader >= 0 { leader.to_string() } else { "none".to_string() },
                p.leader_epoch,
                p.high_watermark,
            );
            let mut t = Table::new(["NODE", "ROLE", "LOG END OFFSET", "LAG", "LAST FETCH", "LAST CAUGHT UP"]);
            for r in &all {
                t.row([
                    r.id.to_string(),
                    r.role.to_string(),
                    r.log_end_offset.to_string(),
                    r.lag.to_string(),
                    ms_text(r.last_fetch_ms_ago),
                    ms_text(r.last_caught_up_ms_ago),
                ]);
            }
            text.push_str(&t.render());
            write_stdout(&text);
        }
        OutputFormat::Json => print_json(&json!({
            "cluster_id": cluster_id,
            "active_controller": (leader >= 0).then_some(leader),
            "leader_epoch": p.leader_epoch,
            "high_watermark": p.high_watermark,
            "max_follower_lag": max_lag,
            "replicas": all.iter().map(|r| json!({
                "node_id": r.id,
                "role": r.role,
                "log_end_offset": r.log_end_offset,
                "lag": r.lag,
                "last_fetch_ms_ago": r.last_fetch_ms_ago,
                "last_caught_up_ms_ago": r.last_caught_up_ms_ago,
            })).collect::<Vec<Value>>(),
        })),
    }
    Ok(0)
}

async fn brokers(client: &Client, out: OutputFormat) -> Result<i32> {
    let conn = client.any_connection().await?;
    let version = conn.version::<DescribeClusterRequest>()?;
    let req = DescribeClusterRequest::default().with_include_fenced_brokers(true);
    let resp = conn.send(&req, version).await?;
    let context = "describing the cluster's brokers";
    if let Some(e) = KafkaError::from_code(resp.error_code, resp.error_message.as_ref().map(|m| m.to_string()), context)
    {
        return Err(e.into());
    }
    let mut brokers = resp.brokers.clone();
    brokers.sort_by_key(|b| b.broker_id.0);
    // Before v2 fenced brokers are left out and `is_fenced` is false.
    let state = |fenced: bool| if fenced { "fenced" } else { "unfenced" };
    let controller = (resp.controller_id.0 >= 0).then_some(resp.controller_id.0);
    match out {
        OutputFormat::Table => {
            let mut t = Table::new(["ID", "RACK", "ENDPOINT", "STATE", "CONTROLLER"]);
            for b in &brokers {
                t.row([
                    b.broker_id.0.to_string(),
                    b.rack.as_ref().map_or_else(|| "-".to_string(), |r| r.to_string()),
                    format!("{}:{}", b.host, b.port),
                    state(b.is_fenced).to_string(),
                    if controller == Some(b.broker_id.0) { "yes" } else { "" }.to_string(),
                ]);
            }
            write_stdout(&t.render());
        }
        OutputFormat::Json => print_json(&json!({
            "cluster_id": resp.cluster_id.to_string(),
            "controller": controller,
            "brokers": brokers.iter().map(|b| json!({
                "id": b.broker_id.0,
                "rack": b.rack.as_ref().map(|r| r.to_string()),
                "host": b.host.to_string(),
                "port": b.port,
                "state": state(b.is_fenced),
            })).collect::<Vec<Value>>(),
        })),
    }
    Ok(0)
}
