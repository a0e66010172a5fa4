//! Consumer-group administration: FindCoordinator, ListGroups,
//! DescribeGroups, DeleteGroups, OffsetFetch and OffsetCommit (the latter
//! as a manual-assign consumer sends it: generation -1, empty member id).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest, GroupId,
    ListGroupsRequest, OffsetCommitRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::ResponseError;
use kaskade_types::{NodeId, Offset, TopicPartition};

use crate::cluster::Client;
use crate::connection::Connection;
use crate::error::{ClientError, KafkaError, Outcome, Result};

/// FindCoordinator key type of a consumer group.
pub const KEY_TYPE_GROUP: i8 = 0;
/// FindCoordinator key type of a transactional id.
pub const KEY_TYPE_TRANSACTION: i8 = 1;

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn gid(s: &str) -> GroupId {
    GroupId(sb(s))
}

fn retriable_coordinator_error(code: i16) -> bool {
    code == ResponseError::CoordinatorNotAvailable.code()
        || code == ResponseError::NotCoordinator.code()
        || code == ResponseError::CoordinatorLoadInProgress.code()
}

/// The connection to `group`'s coordinator (retrying while it loads).
pub async fn coordinator(client: &Client, group: &str) -> Result<Arc<Connection>> {
    let context = format!("finding the coordinator of group '{group}'");
    Ok(find_coordinator(client, KEY_TYPE_GROUP, group, &context).await?.connection)
}

/// A group's or transactional id's coordinator.
#[derive(Debug, Clone)]
pub struct Coordinator {
    pub node: NodeId,
    pub connection: Arc<Connection>,
}

/// The coordinator of `key` (a group id, or a transactional id with
/// `KEY_TYPE_TRANSACTION`): its node id and a connection to it, retrying
/// while it loads.
pub async fn find_coordinator(client: &Client, key_type: i8, key: &str, context: &str) -> Result<Coordinator> {
    let mut backoff = std::time::Duration::from_millis(100);
    for attempt in 0..8 {
        let conn = client.any_connection().await?;
        let version = conn.version::<FindCoordinatorRequest>()?;
        let req = find_coordinator_request(key_type, key, version).map_err(|e| e.context(context))?;
        let resp = conn.send(&req, version).await?;
        let (code, msg, node) = if version >= 4 {
            let c = resp
                .coordinators
                .first()
                .ok_or_else(|| ClientError::Protocol(format!("{context}: empty FindCoordinator response")))?;
            (c.error_code, c.error_message.clone(), c.node_id.0)
        } else {
            (resp.error_code, resp.error_message.clone(), resp.node_id.0)
        };
        if let Some(e) = KafkaError::from_code(code, msg.map(|m| m.to_string()), context) {
            if retriable_coordinator_error(code) && attempt < 7 {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(std::time::Duration::from_secs(1));
                continue;
            }
            return Err(e.into());
        }
        // A coordinator is a broker: FindCoordinator answers an error code
        // otherwise, so a negative id here is a broken answer.
        if node < 0 {
            return Err(ClientError::Protocol(format!("{context}: FindCoordinator named node {node}")));
        }
        let node = NodeId(node);
        return Ok(Coordinator { node, connection: client.node_connection(node).await? });
    }
    Err(KafkaError::new(ResponseError::CoordinatorNotAvailable, None, context).into())
}

fn find_coordinator_request(key_type: i8, key: &str, version: i16) -> Result<FindCoordinatorRequest> {
    if key_type != KEY_TYPE_GROUP && version == 0 {
        // v0 has no key type: it only finds group coordinators.
        return Err(ClientError::Unsupported(
            "the broker's FindCoordinator (v0 only) cannot find other coordinators than groups'".to_string(),
        ));
    }
    let mut req = FindCoordinatorRequest::default();
    if version >= 1 {
        req.key_type = key_type;
    }
    if version >= 4 {
        req.coordinator_keys = vec![sb(key)];
    } else {
        req.key = sb(key);
    }
    Ok(req)
}

/// A group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGroup {
    pub group_id: String,
    /// Empty when the broker's ListGroups version does not carry it (< v4).
    pub state: String,
    pub protocol_type: String,
}

/// Every group of every broker, sorted by id.
pub async fn list_groups(client: &Client) -> Result<Vec<ListedGroup>> {
    let meta = client.metadata(Some(&[])).await?;
    let mut conns = Vec::new();
    if meta.brokers.is_empty() {
        conns.push(client.any_connection().await?);
    }
    for id in meta.brokers.keys() {
        conns.push(client.node_connection(*id).await?);
    }
    let mut out = BTreeMap::new();
    for conn in conns {
        let version = conn.version::<ListGroupsRequest>()?;
        let resp = conn.send(&ListGroupsRequest::default(), version).await?;
        if let Some(e) = KafkaError::from_code(resp.error_code, None, "listing groups") {
            return Err(e.into());
        }
        for g in resp.groups {
            let id = g.group_id.0.to_string();
            out.insert(
                id.clone(),
                ListedGroup {
                    group_id: id,
                    state: g.group_state.to_string(),
                    protocol_type: g.protocol_type.to_string(),
                },
            );
        }
    }
    Ok(out.into_values().collect())
}

/// A member of a group, with its decoded assignment (consumer protocol).
#[derive(Debug, Clone)]
pub struct GroupMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Empty if not a consumer assignment.
    pub assignment: Vec<TopicPartition>,
}

#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<GroupMember>,
}

/// Decode a ConsumerProtocolAssignment (version prefix, then the body).
pub fn decode_assignment(data: &Bytes) -> Vec<TopicPartition> {
    if data.len() < 2 {
        return vec![];
    }
    let mut buf = data.clone();
    let version = i16::from_be_bytes([buf[0], buf[1]]);
    let _ = bytes::Buf::get_i16(&mut buf);
    let version = version.clamp(0, 3);
    match ConsumerProtocolAssignment::decode(&mut buf, version) {
        Ok(a) => a
            .assigned_partitions
            .iter()
            .flat_map(|tp| {
                let t: Arc<str> = Arc::from(tp.topic.0.as_str());
                tp.partitions.iter().map(move |p| TopicPartition::new(t.clone(), *p))
            })
            .collect(),
        Err(_) => vec![],
    }
}

/// DescribeGroups for one group (state "Dead" when it does not exist).
pub async fn describe_group(client: &Client, group: &str) -> Result<GroupDescription> {
    let context = format!("describing group '{group}'");
    let conn = coordinator(client, group).await?;
    let version = conn.version::<DescribeGroupsRequest>()?;
    let req = DescribeGroupsRequest::default().with_groups(vec![gid(group)]);
    let resp = conn.send(&req, version).await?;
    let g =
        resp.groups.into_iter().find(|g| g.group_id.0.as_str() == group).ok_or_else(|| {
            ClientError::Protocol(format!("{context}: the broker's response does not mention the group"))
        })?;
    if let Some(e) = KafkaError::from_code(g.error_code, g.error_message.map(|m| m.to_string()), context) {
        return Err(e.into());
    }
    let consumer = g.protocol_type.as_str() == "consumer";
    Ok(GroupDescription {
        group_id: group.to_string(),
        state: g.group_state.to_string(),
        protocol_type: g.protocol_type.to_string(),
        protocol: g.protocol_data.to_string(),
        members: g
            .members
            .iter()
            .map(|m| GroupMember {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.as_ref().map(|s| s.to_string()),
                client_id: m.client_id.to_string(),
                client_host: m.client_host.to_string(),
                assignment: if consumer { decode_assignment(&m.member_assignment) } else { vec![] },
            })
            .collect(),
    })
}

/// Committed offsets of a group (only partitions with a committed
/// offset), of `topics` (topic -> partitions; `None`: all).
pub async fn fetch_offsets(
    client: &Client,
    group: &str,
    topics: Option<&BTreeMap<String, Vec<i32>>>,
) -> Result<BTreeMap<TopicPartition, Offset>> {
    let context = format!("fetching committed offsets of group '{group}'");
    let mut backoff = std::time::Duration::from_millis(100);
    for attempt in 0..8 {
        let conn = coordinator(client, group).await?;
        // v8+ moved to batched groups; v7 carries everything we need.
        let version = conn.version::<OffsetFetchRequest>()?.min(7);
        let mut req = OffsetFetchRequest::default().with_group_id(gid(group));
        req.topics = topics.map(|ts| {
            ts.iter()
                .map(|(t, ps)| {
                    OffsetFetchRequestTopic::default().with_name(TopicName(sb(t))).with_partition_indexes(ps.clone())
                })
                .collect()
        });
        let resp = conn.send(&req, version).await?;
        if let Some(e) = KafkaError::from_code(resp.error_code, None, &context) {
            if retriable_coordinator_error(resp.error_code) && attempt < 7 {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(std::time::Duration::from_secs(1));
                continue;
            }
            return Err(e.into());
        }
        let mut out = BTreeMap::new();
        for t in resp.topics {
            for p in t.partitions {
                let at = || format!("{context} (topic '{}' partition {})", t.name.0, p.partition_index);
                if let Some(e) = KafkaError::from_code(p.error_code, None, at()) {
                    return Err(e.into());
                }
                if p.committed_offset >= 0 {
                    out.insert(TopicPartition::new(t.name.0.as_str(), p.partition_index), Offset(p.committed_offset));
                }
            }
        }
        return Ok(out);
    }
    Err(KafkaError::new(ResponseError::CoordinatorNotAvailable, None, context).into())
}

/// Commit offsets for `topic` as a consumer outside any generation does
/// (generation -1, empty member id): the broker accepts this only while
/// the group has no members.
pub async fn commit_offsets(client: &Client, group: &str, topic: &str, offsets: &BTreeMap<i32, Offset>) -> Result<()> {
    commit_offsets_as(client, group, topic, offsets, -1, "").await
}

/// Commit offsets as member `member_id` of `generation` (-1 and "" for a
/// consumer outside the group's generations).
pub async fn commit_offsets_as(
    client: &Client,
    group: &str,
    topic: &str,
    offsets: &BTreeMap<i32, Offset>,
    generation: i32,
    member_id: &str,
) -> Result<()> {
    if offsets.is_empty() {
        return Ok(());
    }
    let context = format!("committing offsets of group '{group}' for topic '{topic}'");
    let mut backoff = std::time::Duration::from_millis(100);
    for attempt in 0..8 {
        let conn = coordinator(client, group).await?;
        // v9+ (KIP-848 member epochs) needs nothing else; cap to be safe.
        let version = conn.version::<OffsetCommitRequest>()?.min(8);
        let req = OffsetCommitRequest::default()
            .with_group_id(gid(group))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(sb(member_id))
            .with_retention_time_ms(-1)
            .with_topics(vec![OffsetCommitRequestTopic::default().with_name(TopicName(sb(topic))).with_partitions(
                offsets
                    .iter()
                    .map(|(&p, &o)| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(p)
                            .with_committed_offset(o.get())
                            .with_committed_leader_epoch(-1)
                            .with_committed_metadata(Some(sb("")))
                    })
                    .collect(),
            )]);
        let resp = conn.send(&req, version).await?;
        let mut retry = false;
        for t in &resp.topics {
            for p in &t.partitions {
                let at = format!("{context} (partition {})", p.partition_index);
                let Some(mut e) = KafkaError::from_code(p.error_code, None, at) else { continue };
                if retriable_coordinator_error(p.error_code) && attempt < 7 {
                    retry = true;
                    continue;
                }
                if e.is(ResponseError::UnknownMemberId)
                    || e.is(ResponseError::IllegalGeneration)
                    || e.is(ResponseError::RebalanceInProgress)
                {
                    e = e
                        .with_hint("the group has active members; stop its consumers before committing offsets for it");
                }
                return Err(e.into());
            }
        }
        if !retry {
            return Ok(());
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(std::time::Duration::from_secs(1));
    }
    Err(KafkaError::new(ResponseError::CoordinatorNotAvailable, None, context).into())
}

/// Delete groups; one outcome per group, in order.
pub async fn delete_groups(client: &Client, groups: &[String]) -> Result<Vec<Outcome<()>>> {
    let mut out = Vec::new();
    for group in groups {
        let context = format!("deleting group '{group}'");
        let conn = coordinator(client, group).await?;
        let version = conn.version::<DeleteGroupsRequest>()?;
        let req = DeleteGroupsRequest::default().with_groups_names(vec![gid(group)]);
        let resp = conn.send(&req, version).await?;
        let outcome = match resp.results.iter().find(|r| r.group_id.0.as_str() == group.as_str()) {
            None => Err(KafkaError::new(
                ResponseError::UnknownServerError,
                Some("the broker's response does not mention the group".into()),
                context,
            )),
            Some(r) => match KafkaError::from_code(r.error_code, None, context) {
                Some(e) if e.is(ResponseError::NonEmptyGroup) => {
                    Err(e.with_hint("the group still has active members; stop its consumers first"))
                }
                Some(e) => Err(e),
                None => Ok(()),
            },
        };
        out.push(Outcome { name: group.clone(), result: outcome });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn find_coordinator_requests_at_every_version() {
        for v in 0..=6 {
            let req = find_coordinator_request(KEY_TYPE_GROUP, "g", v).unwrap();
            let mut buf = bytes::BytesMut::new();
            req.encode(&mut buf, v).unwrap_or_else(|e| panic!("v{v}: {e}"));
            if v == 0 {
                let err = find_coordinator_request(KEY_TYPE_TRANSACTION, "tx", v).unwrap_err();
                assert!(err.to_string().contains("v0 only"), "{err}");
                continue;
            }
            let req = find_coordinator_request(KEY_TYPE_TRANSACTION, "tx", v).unwrap();
            assert_eq!(req.key_type, KEY_TYPE_TRANSACTION);
            let mut buf = bytes::BytesMut::new();
            req.encode(&mut buf, v).unwrap_or_else(|e| panic!("v{v}: {e}"));
            let back = FindCoordinatorRequest::decode(&mut buf.freeze(), v).unwrap();
            let key = if v >= 4 { back.coordinator_keys[0].to_string() } else { back.key.to_string() };
            assert_eq!((back.key_type, key.as_str()), (KEY_TYPE_TRANSACTION, "tx"));
        }
    }

    /// A FindCoordinator answer without an error but naming no broker is
    /// a broken answer: a protocol error, not a connection to node -1.
    #[tokio::test]
    async fn a_coordinator_without_a_node_is_a_protocol_error() {
        use bytes::{BufMut, BytesMut};
        use kafka_protocol::messages::api_versions_response::ApiVersion;
        use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, FindCoordinatorResponse, ResponseHeader};
        use kafka_protocol::protocol::{decode_request_header_from_buffer, HeaderVersion};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            loop {
                let mut len = [0u8; 4];
                if sock.read_exact(&mut len).await.is_err() {
                    return;
                }
                let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
                sock.read_exact(&mut body).await.unwrap();
                let h = decode_request_header_from_buffer(&mut Bytes::from(body)).unwrap();
                let v = h.request_api_version;
                let mut out = BytesMut::new();
                if h.request_api_key == ApiKey::ApiVersions as i16 {
                    ResponseHeader::default().with_correlation_id(h.correlation_id).encode(&mut out, 0).unwrap();
                    let range = |k: ApiKey| ApiVersion::default().with_api_key(k as i16).with_max_version(3);
                    ApiVersionsResponse::default()
                        .with_api_keys(vec![range(ApiKey::ApiVersions), range(ApiKey::FindCoordinator)])
                        .encode(&mut out, v)
                        .unwrap();
                } else {
                    ResponseHeader::default()
                        .with_correlation_id(h.correlation_id)
                        .encode(&mut out, <FindCoordinatorResponse as HeaderVersion>::header_version(v))
                        .unwrap();
                    FindCoordinatorResponse::default().with_node_id((-1).into()).encode(&mut out, v).unwrap();
                }
                let mut framed = BytesMut::new();
                framed.put_i32(out.len() as i32);
                framed.extend_from_slice(&out);
                sock.write_all(&framed).await.unwrap();
            }
        });
        let client = Client::new(&addr).unwrap();
        let e =
            find_coordinator(&client, KEY_TYPE_GROUP, "g", "finding the coordinator of group 'g'").await.unwrap_err();
        assert!(matches!(e, ClientError::Protocol(_)), "{e:?}");
        assert!(e.to_string().contains("named node -1"), "{e}");
        server.abort();
    }

    #[test]
    fn range_assignor() {
        let m = |id: &str, ts: &[&str]| (id.to_string(), ts.iter().map(|t| t.to_string()).collect::<Vec<_>>());
        let members: BTreeMap<String, Vec<String>> =
            [m("b", &["t", "u"]), m("a", &["t"]), m("c", &["t"])].into_iter().collect();
        let counts: BTreeMap<String, i32> = [("t".to_string(), 4), ("u".to_string(), 2)].into();
        let got = range_assign(&members, &counts);
        let tp = kaskade_types::TopicPartition::new;
        assert_eq!(got["a"], vec![tp("t", 0), tp("t", 1)]);
        assert_eq!(got["b"], vec![tp("t", 2), tp("u", 0), tp("u", 1)]);
        assert_eq!(got["c"], vec![tp("t", 3)]);
        let sub = encode_subscription(&["t".into(), "u".into()]).unwrap();
        assert_eq!(decode_subscription(&sub), vec!["t".to_string(), "u".to_string()]);
        let a = encode_assignment(&got["b"]).unwrap();
        assert_eq!(decode_assignment(&a), got["b"]);
    }

    #[test]
    fn assignment_roundtrip() {
        let a = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![TopicPartition::default()
            .with_topic(TopicName(sb("t")))
            .with_partitions(vec![0, 2])]);
        let mut buf = bytes::BytesMut::new();
        bytes::BufMut::put_i16(&mut buf, 1);
        a.encode(&mut buf, 1).unwrap();
        let tp = kaskade_types::TopicPartition::new;
        assert_eq!(decode_assignment(&buf.freeze()), vec![tp("t", 0), tp("t", 2)]);
        assert!(decode_assignment(&Bytes::new()).is_empty());
    }
}

// ------------------------------------------------------------------ membership

/// This process's membership in a group (classic protocol, "range").
#[derive(Debug, Clone)]
pub struct Membership {
    pub group: String,
    pub member_id: String,
    pub generation: i32,
    /// Partitions of `topic` assigned to us.
    pub partitions: Vec<i32>,
}

/// The range assignor: per topic, members (member id -> subscribed
/// topics) sorted by id each get a contiguous run of partitions, the first
/// ones one more.
pub fn range_assign(
    members: &BTreeMap<String, Vec<String>>,
    partition_counts: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<TopicPartition>> {
    let mut out: BTreeMap<String, Vec<TopicPartition>> = members.keys().map(|m| (m.clone(), Vec::new())).collect();
    for (topic, &n) in partition_counts {
        let mut subs: Vec<&String> = members.iter().filter(|(_, ts)| ts.contains(topic)).map(|(m, _)| m).collect();
        subs.sort();
        if subs.is_empty() {
            continue;
        }
        let (per, extra) = (n / subs.len() as i32, n % subs.len() as i32);
        let mut next = 0;
        for (i, m) in subs.iter().enumerate() {
            let len = per + i32::from((i as i32) < extra);
            for p in next..next + len {
                out.entry((*m).clone()).or_default().push(TopicPartition::new(topic.as_str(), p));
            }
            next += len;
        }
    }
    out
}

fn encode_subscription(topics: &[String]) -> Result<Bytes> {
    use kafka_protocol::messages::ConsumerProtocolSubscription;
    use kafka_protocol::protocol::Encodable;
    let s = ConsumerProtocolSubscription::default().with_topics(topics.iter().map(|t| sb(t)).collect());
    let mut buf = bytes::BytesMut::new();
    bytes::BufMut::put_i16(&mut buf, 1);
    s.encode(&mut buf, 1).map_err(|e| ClientError::Protocol(format!("encoding a consumer subscription: {e:#}")))?;
    Ok(buf.freeze())
}

fn decode_subscription(data: &Bytes) -> Vec<String> {
    use kafka_protocol::messages::ConsumerProtocolSubscription;
    if data.len() < 2 {
        return vec![];
    }
    let mut buf = data.clone();
    let version = bytes::Buf::get_i16(&mut buf).clamp(0, 3);
    ConsumerProtocolSubscription::decode(&mut buf, version)
        .map(|s| s.topics.iter().map(|t| t.to_string()).collect())
        .unwrap_or_default()
}

fn encode_assignment(parts: &[TopicPartition]) -> Result<Bytes> {
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
    use kafka_protocol::protocol::Encodable;
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in parts {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    let a = ConsumerProtocolAssignment::default().with_assigned_partitions(
        by_topic
            .into_iter()
            .map(|(t, ps)| TopicPartition::default().with_topic(TopicName(sb(t))).with_partitions(ps))
            .collect(),
    );
    let mut buf = bytes::BytesMut::new();
    bytes::BufMut::put_i16(&mut buf, 1);
    a.encode(&mut buf, 1).map_err(|e| ClientError::Protocol(format!("encoding a consumer assignment: {e:#}")))?;
    Ok(buf.freeze())
}

pub const SESSION_TIMEOUT_MS: i32 = 10_000;
const REBALANCE_TIMEOUT_MS: i32 = 30_000;

/// JoinGroup + SyncGroup (as the leader, assigning with the range
/// assignor) until this member has a generation and an assignment.
pub async fn join(client: &Client, group: &str, topic: &str, member_id: &str) -> Result<Membership> {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
    use kafka_protocol::messages::{JoinGroupRequest, SyncGroupRequest};
    let context = format!("joining group '{group}'");
    let mut member_id = member_id.to_string();
    let metadata = encode_subscription(&[topic.to_string()])?;
    let mut backoff = std::time::Duration::from_millis(100);
    for _ in 0..20 {
        let conn = coordinator(client, group).await?;
        let version = conn.version::<JoinGroupRequest>()?;
        let req = JoinGroupRequest::default()
            .with_group_id(gid(group))
            .with_session_timeout_ms(SESSION_TIMEOUT_MS)
            .with_rebalance_timeout_ms(REBALANCE_TIMEOUT_MS)
            .with_member_id(sb(&member_id))
            .with_protocol_type(sb("consumer"))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(sb("range"))
                .with_metadata(metadata.clone())]);
        let resp = conn.send(&req, version).await?;
        if resp.error_code == ResponseError::MemberIdRequired.code() {
            member_id = resp.member_id.to_string();
            continue;
        }
        if resp.error_code == ResponseError::UnknownMemberId.code() {
            member_id.clear();
            continue;
        }
        if retriable_coordinator_error(resp.error_code) || resp.error_code == ResponseError::RebalanceInProgress.code()
        {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(std::time::Duration::from_secs(1));
            continue;
        }
        if let Some(e) = KafkaError::from_code(resp.error_code, None, &context) {
            return Err(e.into());
        }
        member_id = resp.member_id.to_string();
        let generation = resp.generation_id;
        let mut assignments = Vec::new();
        if resp.leader.as_str() == member_id {
            let members: BTreeMap<String, Vec<String>> =
                resp.members.iter().map(|m| (m.member_id.to_string(), decode_subscription(&m.metadata))).collect();
            let topics: BTreeSet<String> = members.values().flat_map(|ts| ts.iter().cloned()).collect();
            let mut counts = BTreeMap::new();
            for t in topics {
                if let Ok(meta) = client.topic(&t, true).await {
                    counts.insert(t, meta.num_partitions());
                }
            }
            for (m, parts) in range_assign(&members, &counts) {
                assignments.push(
                    SyncGroupRequestAssignment::default()
                        .with_member_id(sb(&m))
                        .with_assignment(encode_assignment(&parts)?),
                );
            }
        }
        let sversion = conn.version::<SyncGroupRequest>()?;
        let sreq = SyncGroupRequest::default()
            .with_group_id(gid(group))
            .with_generation_id(generation)
            .with_member_id(sb(&member_id))
            .with_protocol_type(Some(sb("consumer")))
            .with_protocol_name(resp.protocol_name.clone().or(Some(sb("range"))))
            .with_assignments(assignments);
        let sresp = conn.send(&sreq, sversion).await?;
        if sresp.error_code == ResponseError::RebalanceInProgress.code()
            || sresp.error_code == ResponseError::IllegalGeneration.code()
            || retriable_coordinator_error(sresp.error_code)
        {
            continue;
        }
        if sresp.error_code == ResponseError::UnknownMemberId.code() {
            member_id.clear();
            continue;
        }
        if let Some(e) = KafkaError::from_code(sresp.error_code, None, format!("syncing group '{group}'")) {
            return Err(e.into());
        }
        let partitions = decode_assignment(&sresp.assignment)
            .into_iter()
            .filter(|tp| &*tp.topic == topic)
            .map(|tp| tp.partition)
            .collect();
        return Ok(Membership { group: group.to_string(), member_id, generation, partitions });
    }
    Err(ClientError::Unavailable(format!("{context}: gave up after repeated rebalances")))
}

/// Heartbeat; `Ok(false)` when the group is rebalancing (or forgot us)
/// and this member must join again.
pub async fn heartbeat(client: &Client, m: &Membership) -> Result<bool> {
    use kafka_protocol::messages::HeartbeatRequest;
    let conn = coordinator(client, &m.group).await?;
    let version = conn.version::<HeartbeatRequest>()?;
    let req = HeartbeatRequest::default()
        .with_group_id(gid(&m.group))
        .with_generation_id(m.generation)
        .with_member_id(sb(&m.member_id));
    let resp = conn.send(&req, version).await?;
    Ok(resp.error_code == 0)
}

/// LeaveGroup (best effort).
pub async fn leave(client: &Client, m: &Membership) -> Result<()> {
    use kafka_protocol::messages::leave_group_request::MemberIdentity;
    use kafka_protocol::messages::LeaveGroupRequest;
    let conn = coordinator(client, &m.group).await?;
    let version = conn.version::<LeaveGroupRequest>()?;
    let mut req = LeaveGroupRequest::default().with_group_id(gid(&m.group));
    if version >= 3 {
        req.members = vec![MemberIdentity::default().with_member_id(sb(&m.member_id))];
    } else {
        req.member_id = sb(&m.member_id);
    }
    conn.send(&req, version).await?;
    Ok(())
}
