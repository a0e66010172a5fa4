//! Property: the indexed tick fires exactly what a scan of every group
//! fires. Two engines take the same random schedule of requests and clock
//! moves over several groups; one ticks through the deadline index, its
//! twin scans every group as the engine did before the index. Their answers
//! and groups must agree after every step, and the index must match a scan.

use bytes::Bytes;

use super::state::Group;
use super::*;

const GROUPS: [&str; 4] = ["g0", "g1", "g2", "g3"];

use kaskade_types::sim::SimRng as Rng;

/// One of `items`, chosen by `rng` (`None` when there is none).
fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> Option<&'a T> {
    (!items.is_empty()).then(|| &items[rng.below(items.len() as u64) as usize])
}

/// What is compared of a group (its maps' iteration orders differ between
/// two instances, so sets are sorted).
fn fingerprint(g: &Group) -> String {
    let members: Vec<String> = g
        .members
        .values()
        .map(|m| {
            format!(
                "{}:{:?}:{}:{}:{}",
                m.member_id,
                m.group_instance_id,
                m.session_deadline,
                m.is_awaiting_join(),
                m.is_awaiting_sync()
            )
        })
        .collect();
    let mut pending: Vec<(&String, &i64)> = g.pending_members.iter().collect();
    pending.sort();
    let mut pending_sync: Vec<&String> = g.pending_sync.iter().collect();
    pending_sync.sort();
    format!(
        "{} {:?} gen={} leader={:?} members={members:?} pending={pending:?} sync={pending_sync:?} join={:?} \
         syncd={:?} offsets={:?}",
        g.group_id, g.state, g.generation_id, g.leader_id, g.join_timer, g.sync_deadline, g.offsets
    )
}

fn snapshot(c: &GroupCoordinator) -> Vec<String> {
    let mut groups: Vec<String> = c.groups().map(fingerprint).collect();
    groups.sort();
    groups
}

/// The (group, member, generation) triples a client could speak for.
fn members(c: &GroupCoordinator) -> Vec<(String, String, i32)> {
    let mut all: Vec<(String, String, i32)> = c
        .groups()
        .flat_map(|g| g.members().map(|m| (g.group_id.clone(), m.member_id.clone(), g.generation_id)))
        .collect();
    all.sort();
    all
}

fn join_req(rng: &mut Rng, group: &str, member_id: &str) -> JoinRequest {
    let session = 6000 + rng.below(6000) as i32;
    JoinRequest {
        group_id: group.into(),
        session_timeout_ms: session,
        rebalance_timeout_ms: session + rng.below(4000) as i32,
        member_id: member_id.into(),
        group_instance_id: (rng.below(5) == 0).then(|| format!("instance-{}", rng.below(3))),
        protocol_type: "consumer".into(),
        protocols: vec![Protocol { name: "range".into(), metadata: Bytes::from_static(b"m") }],
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        require_known_member_id: rng.below(2) == 0,
    }
}

/// One random step applied to both engines.
fn step(rng: &mut Rng, now: &mut i64, token: &mut Token, engines: &mut [GroupCoordinator; 2]) {
    let known = members(&engines[0]);
    let group = GROUPS[rng.below(GROUPS.len() as u64) as usize];
    match rng.below(10) {
        0 | 1 => {
            // A clock move and a tick: the one place the two engines differ.
            *now += rng.below(4000) as i64;
            engines[0].tick(*now);
            engines[1].tick_by_full_scan(*now);
            assert!(engines[0].next_deadline().is_none_or(|d| d > *now), "a tick leaves nothing due");
        }
        2 | 3 => {
            *token += 1;
            let member_id = match pick(rng, &known) {
                Some((g, m, _)) if rng.below(2) == 0 => {
                    let req = join_req(rng, g, m);
                    engines.iter_mut().for_each(|c| c.join(*now, *token, req.clone()));
                    return;
                }
                _ => String::new(),
            };
            let req = join_req(rng, group, &member_id);
            engines.iter_mut().for_each(|c| c.join(*now, *token, req.clone()));
            // Join again with the id MEMBER_ID_REQUIRED handed out.
            let handed: Vec<String> = engines[0]
                .group(group)
                .map(|g| {
                    let mut ids: Vec<String> = g.pending_members.keys().cloned().collect();
                    ids.sort();
                    ids
                })
                .unwrap_or_default();
            if let Some(id) = pick(rng, &handed).cloned() {
                *token += 1;
                let req = join_req(rng, group, &id);
                engines.iter_mut().for_each(|c| c.join(*now, *token, req.clone()));
            }
        }
        4 | 5 => {
            if let Some((g, m, generation)) = pick(rng, &known).cloned() {
                *token += 1;
                let assignments = known
                    .iter()
                    .filter(|(o, _, _)| *o == g)
                    .map(|(_, id, _)| (id.clone(), Bytes::from(id.clone())))
                    .collect();
                let req = SyncRequest {
                    group_id: g,
                    generation_id: generation,
                    member_id: m,
                    assignments,
                    ..SyncRequest::default()
                };
                engines.iter_mut().for_each(|c| c.sync(*now, *token, req.clone()));
            }
        }
        6 | 7 => {
            if let Some((g, m, generation)) = pick(rng, &known).cloned() {
                let req =
                    HeartbeatRequest { group_id: g, generation_id: generation, member_id: m, group_instance_id: None };
                let [a, b] = engines;
                assert_eq!(a.heartbeat(*now, &req), b.heartbeat(*now, &req));
            }
        }
        8 => {
            if let Some((g, m, _)) = pick(rng, &known).cloned() {
                let leaving = [LeavingMember { member_id: m, group_instance_id: None }];
                let [a, b] = engines;
                assert_eq!(a.leave(*now, &g, &leaving), b.leave(*now, &g, &leaving));
            }
        }
        _ => {
            let req = CommitRequest::of_t0(group, *now);
            let [a, b] = engines;
            assert_eq!(a.commit_offsets(*now, &req), b.commit_offsets(*now, &req));
            if rng.below(3) == 0 {
                let ids = [group.to_string()];
                assert_eq!(a.delete_groups(*now, &ids), b.delete_groups(*now, &ids));
            }
        }
    }
}

#[test]
fn indexed_tick_fires_what_a_full_scan_fires() {
    let mut expirations = 0;
    for seed in 1..=60u64 {
        let mut rng = Rng::new(seed);
        let mut engines =
            [GroupCoordinator::new(GroupConfig::default(), seed), GroupCoordinator::new(GroupConfig::default(), seed)];
        let (mut now, mut token) = (0, 0);
        for i in 0..400 {
            let before = engines[0].groups().map(|g| g.members().count()).sum::<usize>();
            step(&mut rng, &mut now, &mut token, &mut engines);
            // Every write is stored at once (failures: `write_tests`, `sim`).
            for c in &mut engines {
                for (id, _) in c.take_opened_writes() {
                    c.write_resolved(now, id, Ok(()));
                }
            }
            let after = engines[0].groups().map(|g| g.members().count()).sum::<usize>();
            expirations += before.saturating_sub(after);
            for c in &engines {
                c.check_deadline_index();
            }
            let mut replies: Vec<Vec<Completion>> = engines.iter_mut().map(|c| c.take_completions()).collect();
            for r in &mut replies {
                r.sort_by_key(|c| c.token);
            }
            assert_eq!(replies[0], replies[1], "seed {seed} step {i}: the same answers");
            assert_eq!(snapshot(&engines[0]), snapshot(&engines[1]), "seed {seed} step {i}: the same groups");
        }
    }
    // The schedules do exercise the timers (members dropped by them or by
    // leaving).
    assert!(expirations > 100, "{expirations} members went");
}
