//! The group APIs on the wire at every routed version (encoded and decoded
//! with the `kafka-protocol` crate over raw TCP), and Kafka's error codes
//! for bad group input. The behaviour itself is tested with librdkafka in
//! `rdkafka_groups.rs`; this checks every version encodes and answers.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kaskade_broker::network::{self, ShutdownTrigger};
use kaskade_broker::router::Router;
use kaskade_broker::{Broker, BrokerConfig};

#[path = "common/wire.rs"]
mod wire;
use wire::Conn;

const TOPIC: &str = "wire-topic";

async fn start() -> (Conn, ShutdownTrigger) {
    let config = BrokerConfig::from_overrides([
        ("listeners", "PLAINTEXT://127.0.0.1:0"),
        ("group.initial.rebalance.delay.ms", "0"),
    ])
    .unwrap();
    let broker = Arc::new(Broker::for_tests(config, Router::default()));
    broker.topics.create(TOPIC, 1, 1, &[], &BTreeMap::new(), false).expect("topic");
    let listeners = network::bind_config(&broker.config).await.unwrap();
    let addr = listeners[0].local_addr();
    let (trigger, signal) = network::shutdown_channel();
    tokio::spawn(network::serve(broker, listeners, signal));
    (Conn::connect(addr).await, trigger)
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn gid(v: &str) -> GroupId {
    GroupId(s(v))
}

fn join_request(group: &str, member: &str, session: i32) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(gid(group))
        .with_session_timeout_ms(session)
        .with_rebalance_timeout_ms(session)
        .with_member_id(s(member))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(Bytes::from_static(b"m"))])
}

/// One member through every group API, at versions derived from `v`.
async fn member_lifecycle(conn: &mut Conn, v: i16) {
    let group = format!("group-v{v}");
    let mut join: JoinGroupResponse = conn.call(v, &join_request(&group, "", 10_000)).await;
    if v >= 4 {
        assert_eq!(join.error_code, 79, "v{v}: MEMBER_ID_REQUIRED");
        let member = join.member_id.to_string();
        join = conn.call(v, &join_request(&group, &member, 10_000)).await;
    }
    assert_eq!(join.error_code, 0, "join v{v}");
    assert_eq!(join.generation_id, 1);
    assert_eq!(join.leader, join.member_id);
    assert_eq!(join.members.len(), 1);
    let member = join.member_id.to_string();

    let sv = v.min(5);
    let sync = SyncGroupRequest::default()
        .with_group_id(gid(&group))
        .with_generation_id(1)
        .with_member_id(s(&member))
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(s(&member))
            .with_assignment(Bytes::from_static(b"a"))]);
    let sync: SyncGroupResponse = conn.call(sv, &sync).await;
    assert_eq!((sync.error_code, sync.assignment.as_ref()), (0, &b"a"[..]), "sync v{sv}");

    let hv = v.min(4);
    let hb = HeartbeatRequest::default().with_group_id(gid(&group)).with_generation_id(1).with_member_id(s(&member));
    let hb: HeartbeatResponse = conn.call(hv, &hb).await;
    assert_eq!(hb.error_code, 0, "heartbeat v{hv}");

    let cv = v.clamp(2, 9);
    let commit = OffsetCommitRequest::default()
        .with_group_id(gid(&group))
        .with_generation_id_or_member_epoch(1)
        .with_member_id(s(&member))
        .with_topics(vec![OffsetCommitRequestTopic::default().with_name(TopicName(s(TOPIC))).with_partitions(vec![
            OffsetCommitRequestPartition::default().with_partition_index(0).with_committed_offset(7),
        ])]);
    let commit: OffsetCommitResponse = conn.call(cv, &commit).await;
    assert_eq!(commit.topics[0].partitions[0].error_code, 0, "commit v{cv}");

    let fv = v.clamp(1, 9);
    let fetch = if fv >= 8 {
        OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(gid(&group))
            .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                .with_name(TopicName(s(TOPIC)))
                .with_partition_indexes(vec![0])]))])
    } else {
        OffsetFetchRequest::default().with_group_id(gid(&group)).with_topics(Some(vec![
            OffsetFetchRequestTopic::default().with_name(TopicName(s(TOPIC))).with_partition_indexes(vec![0]),
        ]))
    };
    let fetch: OffsetFetchResponse = conn.call(fv, &fetch).await;
    let offset = if fv >= 8 {
        fetch.groups[0].topics[0].partitions[0].committed_offset
    } else {
        fetch.topics[0].partitions[0].committed_offset
    };
    assert_eq!(offset, 7, "fetch v{fv}");

    let dv = v.min(6);
    let describe: DescribeGroupsResponse =
        conn.call(dv, &DescribeGroupsRequest::default().with_groups(vec![gid(&group)])).await;
    let d = &describe.groups[0];
    assert_eq!((d.error_code, d.group_state.as_str(), d.members.len()), (0, "Stable", 1), "describe v{dv}");
    assert_eq!(d.members[0].client_id.as_str(), "wire-test");

    let lv = v.min(5);
    let list: ListGroupsResponse = conn.call(lv, &ListGroupsRequest::default()).await;
    assert!(list.groups.iter().any(|g| g.group_id.as_str() == group), "list v{lv}");

    let leave = if lv >= 3 {
        LeaveGroupRequest::default()
            .with_group_id(gid(&group))
            .with_members(vec![MemberIdentity::default().with_member_id(s(&member))])
    } else {
        LeaveGroupRequest::default().with_group_id(gid(&group)).with_member_id(s(&member))
    };
    let leave: LeaveGroupResponse = conn.call(lv, &leave).await;
    assert_eq!(leave.error_code, 0, "leave v{lv}");

    let xv = v.min(2);
    let delete: DeleteGroupsResponse =
        conn.call(xv, &DeleteGroupsRequest::default().with_groups_names(vec![gid(&group)])).await;
    assert_eq!(delete.results[0].error_code, 0, "delete v{xv}");
}

#[tokio::test]
async fn every_group_api_answers_at_every_version() {
    let (mut conn, _trigger) = start().await;
    for v in 0..=9 {
        member_lifecycle(&mut conn, v).await;
    }
    for v in 0..=6 {
        let req = if v >= 4 {
            FindCoordinatorRequest::default().with_key_type(0).with_coordinator_keys(vec![s("g1"), s("g2")])
        } else {
            FindCoordinatorRequest::default().with_key(s("g1"))
        };
        let r: FindCoordinatorResponse = conn.call(v, &req).await;
        if v >= 4 {
            assert_eq!(r.coordinators.len(), 2);
            assert!(r.coordinators.iter().all(|c| c.error_code == 0 && c.port > 0));
        } else {
            assert_eq!((r.error_code, r.node_id.0), (0, 1), "find coordinator v{v}");
        }
    }
    // Transactions are not implemented, but this node is named coordinator
    // so a transactional client fails fast at InitProducerId (53).
    let r: FindCoordinatorResponse =
        conn.call(6, &FindCoordinatorRequest::default().with_key_type(1).with_coordinator_keys(vec![s("tx")])).await;
    assert_eq!(r.coordinators[0].error_code, 0);
    assert_eq!(r.coordinators[0].node_id.0, 1);
    // OffsetDelete.
    let r: OffsetDeleteResponse = conn.call(0, &OffsetDeleteRequest::default().with_group_id(gid("nosuch"))).await;
    assert_eq!(r.error_code, 69, "GROUP_ID_NOT_FOUND");
}

#[tokio::test]
async fn bad_group_input_gets_kafkas_error_codes() {
    let (mut conn, _trigger) = start().await;
    // No protocols.
    let r: JoinGroupResponse = conn.call(5, &join_request("bad", "", 10_000).with_protocols(Vec::new())).await;
    assert_eq!(r.error_code, 23, "INCONSISTENT_GROUP_PROTOCOL");
    // Session timeout outside group.min/max.session.timeout.ms.
    let r: JoinGroupResponse = conn.call(5, &join_request("bad", "", 100)).await;
    assert_eq!(r.error_code, 26, "INVALID_SESSION_TIMEOUT");
    // Heartbeat from an unknown member.
    let hb = HeartbeatRequest::default().with_group_id(gid("bad")).with_generation_id(1).with_member_id(s("ghost"));
    let r: HeartbeatResponse = conn.call(4, &hb).await;
    assert_eq!(r.error_code, 25, "UNKNOWN_MEMBER_ID");
    // A real member, then a commit with a stale generation.
    let join: JoinGroupResponse = conn.call(3, &join_request("bad", "", 10_000)).await;
    assert_eq!(join.error_code, 0);
    let commit = OffsetCommitRequest::default()
        .with_group_id(gid("bad"))
        .with_generation_id_or_member_epoch(join.generation_id - 1)
        .with_member_id(join.member_id.clone())
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s(TOPIC)))
            .with_partitions(vec![OffsetCommitRequestPartition::default().with_partition_index(0)])]);
    let r: OffsetCommitResponse = conn.call(8, &commit).await;
    assert_eq!(r.topics[0].partitions[0].error_code, 22, "ILLEGAL_GENERATION");
    // The group is unharmed: the member still heartbeats (CompletingRebalance).
    let hb = HeartbeatRequest::default()
        .with_group_id(gid("bad"))
        .with_generation_id(join.generation_id)
        .with_member_id(join.member_id.clone());
    let r: HeartbeatResponse = conn.call(4, &hb).await;
    assert_eq!(r.error_code, 0);
    // A group with a member cannot be deleted.
    let r: DeleteGroupsResponse =
        conn.call(2, &DeleteGroupsRequest::default().with_groups_names(vec![gid("bad")])).await;
    assert_eq!(r.results[0].error_code, 68, "NON_EMPTY_GROUP");
}

/// kafkajs's raw calls join with `rebalance_timeout_ms = 0`. Apache Kafka
/// 4.4, sent this exact sequence side by side, completes the join phase at
/// once and then no longer knows the member when its SyncGroup arrives
/// (UNKNOWN_MEMBER_ID, and the same for its Heartbeat); Kaskade answers the
/// same. A member that joins with a real rebalance timeout is unaffected.
#[tokio::test]
async fn a_zero_rebalance_timeout_is_answered_as_kafka_answers_it() {
    let (mut conn, _stop) = start().await;
    let group = "zero-rebalance-timeout";
    let join = |member: &str| join_request(group, member, 30_000).with_rebalance_timeout_ms(0);
    let first: JoinGroupResponse = conn.call(5, &join("")).await;
    assert_eq!(first.error_code, 79, "MEMBER_ID_REQUIRED first");
    let member = first.member_id.to_string();
    let joined: JoinGroupResponse = conn.call(5, &join(&member)).await;
    assert_eq!((joined.error_code, joined.generation_id), (0, 1));
    let sync = SyncGroupRequest::default()
        .with_group_id(gid(group))
        .with_generation_id(1)
        .with_member_id(s(&member))
        .with_assignments(vec![SyncGroupRequestAssignment::default().with_member_id(s(&member))]);
    let synced: SyncGroupResponse = conn.call(3, &sync).await;
    assert_eq!(synced.error_code, 25, "UNKNOWN_MEMBER_ID, as Kafka");
    let beat = HeartbeatRequest::default().with_group_id(gid(group)).with_generation_id(1).with_member_id(s(&member));
    let beat: HeartbeatResponse = conn.call(3, &beat).await;
    assert_eq!(beat.error_code, 25, "UNKNOWN_MEMBER_ID, as Kafka");
}
