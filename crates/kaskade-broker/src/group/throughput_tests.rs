//! The engine's request rate against the number of groups it holds: a
//! request addressed to one group must not cost more when there are more
//! groups (timers are indexed, not scanned). Printed by an ignored test:
//! `cargo test -p kaskade-broker --lib group::throughput -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use indexmap::IndexMap;
use kaskade_types::TopicPartition;

use super::state::{Group, GroupState, Member};
use super::*;

const MEMBERS: usize = 3;
const SESSION: i32 = 45_000;

/// A Stable group of `MEMBERS` members, as a restart restores it (no
/// request, so building 10,000 groups costs the same whatever the engine).
fn stable_group(id: &str) -> Group {
    let mut g = Group::new(id.to_string(), 0);
    g.state = GroupState::Stable;
    g.generation_id = 1;
    g.protocol_type = Some(CONSUMER_PROTOCOL_TYPE.to_string());
    g.protocol_name = Some("range".to_string());
    let members: IndexMap<String, Member> = (0..MEMBERS)
        .map(|m| {
            let member_id = format!("{id}-m{m}");
            let member = Member {
                member_id: member_id.clone(),
                group_instance_id: None,
                client_id: "bench".to_string(),
                client_host: "/127.0.0.1".to_string(),
                rebalance_timeout_ms: SESSION,
                session_timeout_ms: SESSION,
                protocol_type: CONSUMER_PROTOCOL_TYPE.to_string(),
                protocols: vec![Protocol { name: "range".to_string(), metadata: Bytes::new() }],
                assignment: Bytes::new(),
                join_token: None,
                sync_token: None,
                session_deadline: 0,
            };
            (member_id, member)
        })
        .collect();
    g.leader_id = members.keys().next().cloned();
    g.members = members;
    g
}

/// Heartbeats and offset commits of random members of `groups` groups for
/// about `run`; returns requests per second.
fn rate(groups: usize, run: Duration) -> f64 {
    let mut c = GroupCoordinator::new(GroupConfig::default(), 7);
    let ids: Vec<String> = (0..groups).map(|i| format!("bench-{i}")).collect();
    for id in &ids {
        c.load_group(0, id.clone(), Some(Box::new(stable_group(id))));
    }
    let mut rng: u64 = 0x9E37_79B9;
    let mut now = 1;
    let mut requests: u64 = 0;
    let started = Instant::now();
    while started.elapsed() < run {
        // The clock moves 1 ms per 100 requests: no session (45 s) expires
        // during a run, so every request finds its member.
        now += 1;
        for _ in 0..100 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let group = &ids[(rng % groups as u64) as usize];
            let member_id = format!("{group}-m{}", (rng >> 32) % MEMBERS as u64);
            if requests.is_multiple_of(4) {
                let req = CommitRequest::of_t0(group, i64::try_from(requests).unwrap_or(0)).by(Some(1), &member_id);
                assert_eq!(c.commit_offsets(now, &req), vec![None]);
                c.take_offset_changes();
                for (id, _) in c.take_opened_writes() {
                    c.write_resolved(now, id, Ok(()));
                }
            } else {
                let req =
                    HeartbeatRequest { group_id: group.clone(), generation_id: 1, member_id, group_instance_id: None };
                assert_eq!(c.heartbeat(now, &req), None);
            }
            requests += 1;
        }
    }
    assert!(c.groups().all(|g| g.state() == GroupState::Stable && g.members().count() == MEMBERS));
    assert!(c.groups().any(|g| g.offsets().contains_key(&TopicPartition::new("t", 0))));
    requests as f64 / started.elapsed().as_secs_f64()
}

#[test]
#[ignore = "a benchmark: prints requests/s"]
fn requests_per_second_by_group_count() {
    for groups in [10, 1_000, 10_000] {
        let per_s = rate(groups, Duration::from_secs(3));
        eprintln!("{groups:>6} groups: {per_s:>10.0} requests/s (3/4 Heartbeat, 1/4 OffsetCommit)");
    }
}
