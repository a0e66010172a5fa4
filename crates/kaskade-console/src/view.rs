//! Cluster facts the pages show, each read through one Kafka API.
//!
//! Metadata is cluster-wide; the rest is asked where a Kafka client would
//! ask it: offsets of the partition leaders, committed offsets of the
//! group's coordinator, log directories and group listings of every broker
//! Metadata lists (`Kafka::call_on`).

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::*;
use serde::Serialize;

use crate::error::ConsoleError;
use crate::kafka::{answered, check, sb, Kafka};

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
/// -1 where no record is that late. Each leader is asked for its
/// partitions (ListOffsets, as a consumer sends it), all at once.
/// Partitions in error, without a leader or whose leader cannot be reached
/// are left out.
pub async fn offsets_at(kafka: &Kafka, tps: &[Tp], timestamp: i64) -> Result<HashMap<Tp, i64>, ConsoleError> {
    let mut names: Vec<String> = tps.iter().map(|(t, _)| t.clone()).collect();
    names.sort();
    names.dedup();
    let leaders: HashMap<Tp, i32> = if names.is_empty() {
        HashMap::new()
    } else {
        metadata(kafka, Some(&names))
            .await?
            .2
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| ((t.name.clone(), p.partition), p.leader)))
            .collect()
    };
    let mut by_leader: BTreeMap<i32, BTreeMap<&str, Vec<i32>>> = BTreeMap::new();
    for tp in tps {
        if let Some(leader) = leaders.get(tp).copied().filter(|l| *l >= 0) {
            by_leader.entry(leader).or_default().entry(tp.0.as_str()).or_default().push(tp.1);
        }
    }
    let calls = by_leader.into_iter().map(|(leader, by_topic)| {
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
        kafka.call_on(leader, req, 7)
    });
    let mut out = HashMap::new();
    for resp in futures::future::join_all(calls).await {
        let Ok(resp) = resp else { continue };
        for t in resp.topics {
            for p in t.partitions {
                if p.error_code == 0 {
                    out.insert((t.name.to_string(), p.partition_index), p.offset);
                }
            }
        }
    }
    Ok(out)
}

/// One partition's offset at `timestamp`, asked of its `leader`
/// (`Kafka::leader`); the broker's error if it has none (unknown topic or
/// partition, not leader, ...).
pub async fn offset_on(
    kafka: &Kafka,
    leader: i32,
    topic: &str,
    partition: i32,
    timestamp: i64,
) -> Result<i64, ConsoleError> {
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default().with_name(TopicName(sb(topic))).with_partitions(vec![
            ListOffsetsPartition::default().with_partition_index(partition).with_timestamp(timestamp),
        ])]);
    let resp = kafka.call_on(leader, req, 7).await?;
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

/// The log directories of every broker Metadata lists: DescribeLogDirs is
/// answered per broker, so each is asked (all at once). A broker that
/// cannot be reached shows as one directory entry with its error.
pub async fn log_dirs(kafka: &Kafka) -> Result<Vec<LogDir>, ConsoleError> {
    let answers = kafka
        .call_on_every_broker(|| DescribeLogDirsRequest::default().with_topics(None::<Vec<DescribableLogDirTopic>>), 4)
        .await?;
    Ok(merge_log_dirs(answers))
}

/// Every broker's DescribeLogDirs answer as directory rows, by broker and
/// path; a broker that failed is one row with its error.
pub fn merge_log_dirs(answers: Vec<(i32, Result<DescribeLogDirsResponse, ConsoleError>)>) -> Vec<LogDir> {
    let mut out = Vec::new();
    for (broker, answer) in answers {
        let resp = match answer.and_then(|r| check(r.error_code, None).map(|()| r)) {
            Ok(r) => r,
            Err(e) => {
                out.push(LogDir {
                    broker,
                    path: String::new(),
                    total_bytes: -1,
                    usable_bytes: -1,
                    used_bytes: 0,
                    error: Some(e.to_string()),
                    sizes: HashMap::new(),
                });
                continue;
            }
        };
        out.extend(resp.results.into_iter().map(|d| {
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
        }));
    }
    out.sort_by(|a, b| (a.broker, &a.path).cmp(&(b.broker, &b.path)));
    out
}

/// The size of one copy of each partition of `topics`: its leader's
/// replica, as `dirs` (every broker's) report it; with replication factor N
/// the directories together hold about N copies.
pub fn leader_sizes(topics: &[TopicInfo], dirs: &[LogDir]) -> HashMap<Tp, i64> {
    let mut out = HashMap::new();
    for t in topics {
        for p in &t.partitions {
            let tp = (t.name.clone(), p.partition);
            let size = dirs.iter().filter(|d| d.broker == p.leader).filter_map(|d| d.sizes.get(&tp)).sum::<i64>();
            out.insert(tp, size);
        }
    }
    out
}

#[derive(Clone, Debug, Serialize)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: String,
}

/// Every group the coordinators know: ListGroups answers with the groups
/// the asked broker coordinates, so every broker is asked (as Kafka's
/// admin client and Kafka UI do). A broker that cannot answer is skipped
/// (its groups are missing until it is back); if none answers, its error.
pub async fn groups(kafka: &Kafka) -> Result<Vec<GroupListing>, ConsoleError> {
    merge_groups(kafka.call_on_every_broker(ListGroupsRequest::default, 4).await?)
}

/// Every broker's ListGroups answer as one listing, by group id. A broker
/// that failed is left out; if every broker failed, the last error.
pub fn merge_groups(
    answers: Vec<(i32, Result<ListGroupsResponse, ConsoleError>)>,
) -> Result<Vec<GroupListing>, ConsoleError> {
    let mut out: BTreeMap<String, GroupListing> = BTreeMap::new();
    for (_, resp) in answered(answers, "ListGroups", |r| r.error_code)? {
        for g in resp.groups {
            let listing = GroupListing {
                group_id: g.group_id.to_string(),
                protocol_type: g.protocol_type.to_string(),
                state: g.group_state.to_string(),
            };
            out.insert(listing.group_id.clone(), listing);
        }
    }
    Ok(out.into_values().collect())
}

pub async fn group_ids(kafka: &Kafka) -> Result<Vec<String>, ConsoleError> {
    Ok(groups(kafka).await?.into_iter().map(|g| g.group_id).collect())
}

/// A group's committed offsets (OffsetFetch for all its partitions, from
/// its coordinator).
pub async fn committed_offsets(kafka: &Kafka, group: &str) -> Result<BTreeMap<Tp, i64>, ConsoleError> {
    let coordinator = kafka.coordinator(group, crate::kafka::GROUP_COORDINATOR).await?;
    let req = OffsetFetchRequest::default().with_group_id(GroupId(sb(group))).with_topics(None);
    let resp = kafka.call_on(coordinator, req, 7).await?;
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

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::describe_log_dirs_response::{
        DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
    };
    use kafka_protocol::messages::list_groups_response::ListedGroup;
    use kafka_protocol::ResponseError;

    use super::*;

    fn unreachable(node: i32) -> ConsoleError {
        ConsoleError::Kafka {
            code: ResponseError::BrokerNotAvailable,
            message: Some(format!("broker {node} is not available: connection refused")),
        }
    }

    fn dirs(path: &str, sizes: &[(&str, i32, i64)]) -> DescribeLogDirsResponse {
        let topics = sizes
            .iter()
            .map(|(t, p, size)| {
                DescribeLogDirsTopic::default().with_name(TopicName(sb(t))).with_partitions(vec![
                    DescribeLogDirsPartition::default().with_partition_index(*p).with_partition_size(*size),
                ])
            })
            .collect();
        DescribeLogDirsResponse::default().with_results(vec![DescribeLogDirsResult::default()
            .with_log_dir(sb(path))
            .with_total_bytes(1000)
            .with_usable_bytes(400)
            .with_topics(topics)])
    }

    #[test]
    fn log_dirs_of_every_broker_and_a_row_with_the_error_of_one_that_failed() {
        let merged = merge_log_dirs(vec![
            (3, Ok(dirs("/data/3", &[("t", 0, 30)]))),
            (1, Ok(dirs("/data/1", &[("t", 0, 10), ("u", 1, 5)]))),
            (2, Err(unreachable(2))),
        ]);
        let rows: Vec<(i32, &str, i64)> = merged.iter().map(|d| (d.broker, d.path.as_str(), d.used_bytes)).collect();
        assert_eq!(rows, vec![(1, "/data/1", 15), (2, "", 0), (3, "/data/3", 30)]);
        assert!(merged[1].error.as_deref().is_some_and(|e| e.contains("BrokerNotAvailable") && e.contains("broker 2")));
        assert_eq!((merged[1].total_bytes, merged[1].usable_bytes), (-1, -1), "unknown, not zero");
        assert!(merged[0].error.is_none() && merged[2].error.is_none());

        // A topic's size counts its leader's copy only.
        let topic = TopicInfo {
            name: "t".into(),
            id: String::new(),
            internal: false,
            partitions: vec![PartitionInfo {
                partition: 0,
                leader: 3,
                replicas: vec![3, 1],
                isr: vec![3, 1],
                offline: vec![],
            }],
        };
        assert_eq!(leader_sizes(&[topic], &merged).get(&("t".to_string(), 0)), Some(&30));
    }

    fn listed(groups: &[(&str, &str)]) -> ListGroupsResponse {
        ListGroupsResponse::default().with_groups(
            groups
                .iter()
                .map(|(g, state)| {
                    ListedGroup::default()
                        .with_group_id(GroupId(sb(g)))
                        .with_protocol_type(sb("consumer"))
                        .with_group_state(sb(state))
                })
                .collect(),
        )
    }

    #[test]
    fn groups_of_every_coordinator_are_merged_and_a_failed_broker_left_out() {
        let merged = merge_groups(vec![
            (1, Ok(listed(&[("b", "Stable")]))),
            (2, Err(unreachable(2))),
            (3, Ok(listed(&[("a", "Empty"), ("c", "Stable")]))),
        ])
        .expect("two brokers answered");
        let ids: Vec<&str> = merged.iter().map(|g| g.group_id.as_str()).collect();
        assert_eq!(ids, vec!["a", "b", "c"]);
        assert_eq!(merged[0].state, "Empty");

        // A broker's own error code counts as its failure.
        let refused = ListGroupsResponse::default().with_error_code(ResponseError::CoordinatorNotAvailable.code());
        let merged = merge_groups(vec![(1, Ok(refused)), (2, Ok(listed(&[("x", "Stable")])))]).expect("one answered");
        assert_eq!(merged.len(), 1);

        // Nobody answered: the error, not an empty list that looks true.
        let err = merge_groups(vec![(1, Err(unreachable(1))), (2, Err(unreachable(2)))]).expect_err("no answer");
        assert!(err.to_string().contains("BrokerNotAvailable"), "{err}");
    }
}
