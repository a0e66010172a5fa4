//! Cluster facts the pages show, each read through one Kafka API.
//!
//! Everything here is cluster-wide (metadata, coordinators) except
//! [`log_dirs`], which DescribeLogDirs answers per broker: in a cluster it
//! is asked of every broker Metadata lists (today: the one it runs in).

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::*;
use serde::Serialize;

use crate::error::ConsoleError;
use crate::kafka::{check, sb, Kafka};

/// ListOffsets' special timestamps (Kafka's `ListOffsetsRequest.LATEST_TIMESTAMP`
/// and `EARLIEST_TIMESTAMP`).
pub const LATEST: i64 = -1;
pub const EARLIEST: i64 = -2;

/// A topic and partition, as the pages name them.
pub type Tp = (String, i32);

#[derive(Clone, Debug, Serialize)]
pub struct PartitionInfo {
    pub partition: i32,
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub offline: Vec<i32>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TopicInfo {
    pub name: String,
    pub id: String,
    pub internal: bool,
    pub partitions: Vec<PartitionInfo>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BrokerInfo {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

/// Metadata for all topics (`None`) or some, and the brokers.
pub async fn metadata(
    kafka: &Kafka,
    only: Option<&[String]>,
) -> Result<(Vec<BrokerInfo>, i32, Vec<TopicInfo>), ConsoleError> {
    let req = MetadataRequest::default()
        .with_topics(only.map(|names| {
            names.iter().map(|n| MetadataRequestTopic::default().with_name(Some(TopicName(sb(n))))).collect()
        }))
        .with_allow_auto_topic_creation(false);
    let resp = kafka.call(req, 12).await?;
    let brokers = resp
        .brokers
        .iter()
        .map(|b| BrokerInfo {
            id: b.node_id.0,
            host: b.host.to_string(),
            port: b.port,
            rack: b.rack.as_ref().map(|r| r.to_string()),
        })
        .collect();
    let mut topics = Vec::new();
    for t in &resp.topics {
        check(t.error_code, None)?;
        let mut partitions: Vec<PartitionInfo> = t
            .partitions
            .iter()
            .map(|p| PartitionInfo {
                partition: p.partition_index,
                leader: p.leader_id.0,
                replicas: p.replica_nodes.iter().map(|n| n.0).collect(),
                isr: p.isr_nodes.iter().map(|n| n.0).collect(),
                offline: p.offline_replicas.iter().map(|n| n.0).collect(),
            })
            .collect();
        partitions.sort_by_key(|p| p.partition);
        topics.push(TopicInfo {
            name: t.name.as_ref().map(|n| n.to_string()).unwrap_or_default(),
            id: t.topic_id.to_string(),
            internal: t.is_internal,
            partitions,
        });
    }
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((brokers, resp.controller_id.0, topics))
}

/// Every topic.
pub async fn topics(kafka: &Kafka) -> Result<Vec<TopicInfo>, ConsoleError> {
    Ok(metadata(kafka, None).await?.2)
}

/// One topic, or UNKNOWN_TOPIC_OR_PARTITION as the broker says it.
pub async fn topic(kafka: &Kafka, name: &str) -> Result<TopicInfo, ConsoleError> {
    let (_, _, mut topics) = metadata(kafka, Some(&[name.to_string()])).await?;
    topics.pop().ok_or_else(|| ConsoleError::NotFound(format!("topic '{name}'")))
}

/// The offset per partition at `timestamp` (or [`LATEST`] / [`EARLIEST`]);
/// -1 where no record is that late. Partitions in error are left out.
pub async fn offsets_at(kafka: &Kafka, tps: &[Tp], timestamp: i64) -> Result<HashMap<Tp, i64>, ConsoleError> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in tps {
        by_topic.entry(t.as_str()).or_default().push(*p);
    }
    let req = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(
        by_topic
            .into_iter()
            .map(|(t, ps)| {
                ListOffsetsTopic::default().with_name(TopicName(sb(t))).with_partitions(
                    ps.into_iter()
                        .map(|p| ListOffsetsPartition::default().with_partition_index(p).with_timestamp(timestamp))
                        .collect(),
                )
            })
            .collect(),
    );
    let resp = kafka.call(req, 7).await?;
    let mut out = HashMap::new();
    for t in resp.topics {
        for p in t.partitions {
            if p.error_code == 0 {
                out.insert((t.name.to_string(), p.partition_index), p.offset);
            }
        }
    }
    Ok(out)
}

/// One partition's offset at `timestamp`; the broker's error if it has none
/// (unknown topic or partition, not leader, ...).
pub async fn offset_of(kafka: &Kafka, topic: &str, partition: i32, timestamp: i64) -> Result<i64, ConsoleError> {
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default().with_name(TopicName(sb(topic))).with_partitions(vec![
            ListOffsetsPartition::default().with_partition_index(partition).with_timestamp(timestamp),
        ])]);
    let resp = kafka.call(req, 7).await?;
    let p = resp
        .topics
        .into_iter()
        .flat_map(|t| t.partitions)
        .find(|p| p.partition_index == partition)
        .ok_or_else(|| ConsoleError::Internal("ListOffsets answered without the partition".into()))?;
    check(p.error_code, None)?;
    Ok(p.offset)
}

fn all_partitions(topics: &[TopicInfo]) -> Vec<Tp> {
    topics.iter().flat_map(|t| t.partitions.iter().map(|p| (t.name.clone(), p.partition))).collect()
}

/// The end offset (log end, as consumers see it: the high watermark) of
/// every partition of `topics`.
pub async fn end_offsets(kafka: &Kafka, topics: &[TopicInfo]) -> Result<HashMap<Tp, i64>, ConsoleError> {
    offsets_at(kafka, &all_partitions(topics), LATEST).await
}

/// The start offset of every partition of `topics`.
pub async fn start_offsets(kafka: &Kafka, topics: &[TopicInfo]) -> Result<HashMap<Tp, i64>, ConsoleError> {
    offsets_at(kafka, &all_partitions(topics), EARLIEST).await
}

#[derive(Clone, Debug, Serialize)]
pub struct LogDir {
    pub broker: i32,
    pub path: String,
    /// File system size and free space (-1 when unknown).
    pub total_bytes: i64,
    pub usable_bytes: i64,
    /// Bytes of partition logs in this directory.
    pub used_bytes: i64,
    pub error: Option<String>,
    /// Size per partition.
    #[serde(skip)]
    pub sizes: HashMap<Tp, i64>,
}

/// The log directories of the node (DescribeLogDirs for every topic).
pub async fn log_dirs(kafka: &Kafka) -> Result<Vec<LogDir>, ConsoleError> {
    let req = DescribeLogDirsRequest::default().with_topics(None::<Vec<DescribableLogDirTopic>>);
    let resp = kafka.call(req, 4).await?;
    check(resp.error_code, None)?;
    let broker = kafka.broker().node_id().get();
    Ok(resp
        .results
        .into_iter()
        .map(|d| {
            let sizes: HashMap<Tp, i64> = d
                .topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| ((t.name.to_string(), p.partition_index), p.partition_size)))
                .collect();
            LogDir {
                broker,
                path: d.log_dir.to_string(),
                total_bytes: d.total_bytes,
                usable_bytes: d.usable_bytes,
                used_bytes: sizes.values().sum(),
                error: check(d.error_code, None).err().map(|e| e.to_string()),
                sizes,
            }
        })
        .collect())
}

#[derive(Clone, Debug, Serialize)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: String,
}

/// Every group the coordinators know.
pub async fn groups(kafka: &Kafka) -> Result<Vec<GroupListing>, ConsoleError> {
    let resp = kafka.call(ListGroupsRequest::default(), 4).await?;
    check(resp.error_code, None)?;
    let mut out: Vec<GroupListing> = resp
        .groups
        .into_iter()
        .map(|g| GroupListing {
            group_id: g.group_id.to_string(),
            protocol_type: g.protocol_type.to_string(),
            state: g.group_state.to_string(),
        })
        .collect();
    out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    Ok(out)
}

pub async fn group_ids(kafka: &Kafka) -> Result<Vec<String>, ConsoleError> {
    Ok(groups(kafka).await?.into_iter().map(|g| g.group_id).collect())
}

/// A group's committed offsets (OffsetFetch for all its partitions).
pub async fn committed_offsets(kafka: &Kafka, group: &str) -> Result<BTreeMap<Tp, i64>, ConsoleError> {
    let req = OffsetFetchRequest::default().with_group_id(GroupId(sb(group))).with_topics(None);
    let resp = kafka.call(req, 7).await?;
    check(resp.error_code, None)?;
    let mut out = BTreeMap::new();
    for t in resp.topics {
        for p in t.partitions {
            if p.error_code == 0 && p.committed_offset >= 0 {
                out.insert((t.name.to_string(), p.partition_index), p.committed_offset);
            }
        }
    }
    Ok(out)
}
