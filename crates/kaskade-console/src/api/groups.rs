//! Consumer groups: list (ListGroups, of every broker), describe
//! (DescribeGroups at the group's coordinator, the
//! members' assignments decoded from the consumer protocol, OffsetFetch
//! against ListOffsets for lag) and reset offsets (OffsetCommit as an
//! admin client sends it: generation -1, no member).
//!
//! A reset is refused while the group has members, with the message of
//! Kafka's `kafka-consumer-groups.sh`; the coordinator refuses such a
//! commit too (UNKNOWN_MEMBER_ID), so the check is not the only guard.

use std::collections::BTreeMap;

use axum::extract::Path;
use axum::Json;
use bytes::{Buf, Bytes};
use kafka_protocol::messages::consumer_protocol_assignment::ConsumerProtocolAssignment;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Decodable;
use serde::{Deserialize, Serialize};

use super::State;
use crate::error::{ApiResult, Body, ConsoleError};
use crate::history::LagPoint;
use crate::kafka::{check, sb, GROUP_COORDINATOR};
use crate::view::{self, GroupListing, Tp};

/// Group states in which a group has no members (Kafka's `GroupState`).
const INACTIVE: &[&str] = &["Empty", "Dead"];

#[derive(Serialize)]
pub struct GroupRow {
    #[serde(flatten)]
    listing: GroupListing,
    members: usize,
    lag: i64,
}

async fn lags(console: &crate::Console, group: &str) -> Result<Vec<OffsetRow>, ConsoleError> {
    let committed = view::committed_offsets(&console.kafka, group).await?;
    let tps: Vec<Tp> = committed.keys().cloned().collect();
    let ends = view::offsets_at(&console.kafka, &tps, view::LATEST).await?;
    Ok(committed
        .into_iter()
        .map(|(tp, c)| {
            let end = ends.get(&tp).copied();
            OffsetRow { lag: end.map(|e| (e - c).max(0)), topic: tp.0, partition: tp.1, committed: c, end_offset: end }
        })
        .collect())
}

struct Described {
    state: String,
    protocol_type: String,
    protocol: String,
    members: Vec<Member>,
}

async fn describe_group(console: &crate::Console, group: &str) -> Result<Described, ConsoleError> {
    let coordinator = console.kafka.coordinator(group, GROUP_COORDINATOR).await?;
    let req = DescribeGroupsRequest::default().with_groups(vec![GroupId(sb(group))]);
    let resp = console.kafka.call_on(coordinator, req, 5).await?;
    let g = resp
        .groups
        .into_iter()
        .next()
        .ok_or_else(|| ConsoleError::Internal("DescribeGroups answered without the group".into()))?;
    check(g.error_code, None)?;
    let consumer = g.protocol_type.as_str() == "consumer";
    let members = g
        .members
        .into_iter()
        .map(|m| Member {
            member_id: m.member_id.to_string(),
            instance_id: m.group_instance_id.map(|i| i.to_string()),
            client_id: m.client_id.to_string(),
            host: m.client_host.to_string(),
            assignment: if consumer { assignment(m.member_assignment) } else { Vec::new() },
        })
        .collect();
    Ok(Described {
        state: g.group_state.to_string(),
        protocol_type: g.protocol_type.to_string(),
        protocol: g.protocol_data.to_string(),
        members,
    })
}

pub async fn list(axum::extract::State(console): State) -> ApiResult<Vec<GroupRow>> {
    let mut rows = Vec::new();
    for listing in view::groups(&console.kafka).await? {
        let d = describe_group(&console, &listing.group_id).await?;
        let lag = lags(&console, &listing.group_id).await?.iter().filter_map(|r| r.lag).sum();
        rows.push(GroupRow { listing, members: d.members.len(), lag });
    }
    Ok(Json(rows))
}

#[derive(Serialize)]
pub struct Member {
    member_id: String,
    instance_id: Option<String>,
    client_id: String,
    host: String,
    /// Topic and partitions, from the consumer protocol's assignment.
    assignment: Vec<(String, Vec<i32>)>,
}

/// A consumer-protocol assignment; empty when it does not decode (a client
/// may put anything there).
fn assignment(mut bytes: Bytes) -> Vec<(String, Vec<i32>)> {
    if bytes.remaining() < 2 {
        return Vec::new();
    }
    let version = bytes.get_i16();
    match ConsumerProtocolAssignment::decode(&mut bytes, version.clamp(0, 3)) {
        Ok(a) => a.assigned_partitions.into_iter().map(|t| (t.topic.to_string(), t.partitions)).collect(),
        Err(_) => Vec::new(),
    }
}

#[derive(Serialize)]
pub struct OffsetRow {
    topic: String,
    partition: i32,
    committed: i64,
    end_offset: Option<i64>,
    lag: Option<i64>,
}

#[derive(Serialize)]
pub struct GroupDetail {
    group_id: String,
    state: String,
    protocol_type: String,
    protocol: String,
    members: Vec<Member>,
    offsets: Vec<OffsetRow>,
    lag_history: Vec<LagPoint>,
}

pub async fn describe(axum::extract::State(console): State, Path(group): Path<String>) -> ApiResult<GroupDetail> {
    let d = describe_group(&console, &group).await?;
    if d.state == "Dead" {
        return Err(ConsoleError::NotFound(format!("group '{group}' does not exist")));
    }
    Ok(Json(GroupDetail {
        offsets: lags(&console, &group).await?,
        lag_history: console.history.lag(&group),
        group_id: group,
        state: d.state,
        protocol_type: d.protocol_type,
        protocol: d.protocol,
        members: d.members,
    }))
}

#[derive(Deserialize)]
pub struct Reset {
    /// Only this topic's committed partitions (default: every one).
    topic: Option<String>,
    /// "earliest", "latest" or "offset".
    to: String,
    offset: Option<i64>,
}

pub async fn reset(
    axum::extract::State(console): State,
    Path(group): Path<String>,
    reset: Body<Reset>,
) -> ApiResult<serde_json::Value> {
    let Json(reset) = reset?;
    let d = describe_group(&console, &group).await?;
    if !INACTIVE.contains(&d.state.as_str()) {
        return Err(ConsoleError::Conflict(format!(
            "Assignments can only be reset if the group '{group}' is inactive, but the current state is {}.",
            d.state
        )));
    }
    let committed = view::committed_offsets(&console.kafka, &group).await?;
    let tps: Vec<Tp> = committed.into_keys().filter(|(t, _)| reset.topic.as_ref().is_none_or(|x| x == t)).collect();
    if tps.is_empty() {
        return Err(ConsoleError::BadRequest(format!("group '{group}' has no committed offsets to reset")));
    }
    let targets: BTreeMap<Tp, i64> = match (reset.to.as_str(), reset.offset) {
        ("earliest", _) => view::offsets_at(&console.kafka, &tps, view::EARLIEST).await?.into_iter().collect(),
        ("latest", _) => view::offsets_at(&console.kafka, &tps, view::LATEST).await?.into_iter().collect(),
        ("offset", Some(o)) if o >= 0 => tps.iter().map(|tp| (tp.clone(), o)).collect(),
        (to, _) => {
            return Err(ConsoleError::BadRequest(format!(
                "to={to}: expected earliest, latest or offset (with a non-negative offset)"
            )))
        }
    };
    let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for ((t, p), o) in &targets {
        by_topic.entry(t).or_default().push(
            OffsetCommitRequestPartition::default()
                .with_partition_index(*p)
                .with_committed_offset(*o)
                .with_committed_leader_epoch(-1),
        );
    }
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(sb(&group)))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(sb(""))
        .with_topics(
            by_topic
                .into_iter()
                .map(|(t, ps)| OffsetCommitRequestTopic::default().with_name(TopicName(sb(t))).with_partitions(ps))
                .collect(),
        );
    let coordinator = console.kafka.coordinator(&group, GROUP_COORDINATOR).await?;
    let resp = console.kafka.call_on(coordinator, req, 8).await?;
    for t in &resp.topics {
        for p in &t.partitions {
            check(p.error_code, None)?;
        }
    }
    Ok(Json(serde_json::json!({
        "group": group,
        "offsets": targets.iter().map(|((t, p), o)| serde_json::json!({"topic": t, "partition": p, "offset": o})).collect::<Vec<_>>(),
    })))
}
