//! Unit tests of the group engine, one handler at a time: membership
//! (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, static members); the
//! offsets' handlers are in `offset_tests`, which shares this harness.

use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;
use kaskade_types::ProducerIdAndEpoch;

use super::*;

pub(super) const SESSION: i32 = 10_000;
pub(super) const REBALANCE: i32 = 30_000;

pub(super) fn config(initial_delay: i32) -> GroupConfig {
    GroupConfig { initial_rebalance_delay_ms: initial_delay, ..GroupConfig::default() }
}

pub(super) fn protocols(names: &[&str]) -> Vec<Protocol> {
    names.iter().map(|n| Protocol { name: n.to_string(), metadata: Bytes::from(format!("meta-{n}")) }).collect()
}

pub(super) fn join_req(group: &str, member_id: &str) -> JoinRequest {
    JoinRequest {
        group_id: group.into(),
        session_timeout_ms: SESSION,
        rebalance_timeout_ms: REBALANCE,
        member_id: member_id.into(),
        group_instance_id: None,
        protocol_type: "consumer".into(),
        protocols: protocols(&["range"]),
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        require_known_member_id: true,
    }
}

/// The coordinator under test with a running token counter.
pub(super) struct Harness {
    pub(super) c: GroupCoordinator,
    pub(super) now: i64,
    pub(super) token: Token,
}

impl Harness {
    pub(super) fn new(initial_delay: i32) -> Self {
        Harness { c: GroupCoordinator::new(config(initial_delay), 7), now: 0, token: 0 }
    }

    /// Sends a join; returns its token.
    pub(super) fn join(&mut self, req: JoinRequest) -> Token {
        self.token += 1;
        self.c.join(self.now, self.token, req);
        self.stored();
        self.token
    }

    /// Sends a SyncGroup; a leader's assignment is stored at once.
    pub(super) fn sync(&mut self, req: SyncRequest) -> Token {
        self.token += 1;
        self.c.sync(self.now, self.token, req);
        self.stored();
        self.token
    }

    /// Every write opened so far resolves Ok (a healthy
    /// `__consumer_offsets`; `write_tests` covers the failures).
    pub(super) fn stored(&mut self) {
        for (id, _) in self.c.take_opened_writes() {
            self.c.write_resolved(self.now, id, Ok(()));
        }
        self.c.check_deadline_index();
    }

    /// OffsetCommit, replicated at once.
    pub(super) fn commit_offsets(&mut self, req: &CommitRequest) -> Vec<Option<E>> {
        let errors = self.c.commit_offsets(self.now, req);
        self.stored();
        errors
    }

    /// TxnOffsetCommit, replicated at once.
    pub(super) fn txn_commit_offsets(&mut self, producer: ProducerIdAndEpoch, req: &CommitRequest) -> Vec<Option<E>> {
        let errors = self.c.txn_commit_offsets(self.now, producer, req);
        self.stored();
        errors
    }

    pub(super) fn advance(&mut self, ms: i64) {
        self.now += ms;
        self.c.tick(self.now);
        self.c.check_deadline_index();
    }

    /// Completions since the last call, by token.
    pub(super) fn replies(&mut self) -> Vec<Completion> {
        self.c.check_deadline_index();
        self.c.take_completions()
    }

    pub(super) fn join_reply(&mut self, token: Token) -> JoinResponse {
        let replies = self.replies();
        find_join(&replies, token).unwrap_or_else(|| panic!("no join reply for {token}: {replies:?}"))
    }

    /// First join (MEMBER_ID_REQUIRED) then the real one; returns the
    /// parked join's token and the member id.
    pub(super) fn join_dynamic(&mut self, group: &str) -> (Token, String) {
        let t = self.join(join_req(group, ""));
        let r = self.join_reply(t);
        assert_eq!(r.error, Some(E::MemberIdRequired));
        assert!(r.member_id.starts_with("client-"), "{}", r.member_id);
        let t = self.join(join_req(group, &r.member_id));
        (t, r.member_id)
    }

    pub(super) fn heartbeat(&mut self, group: &str, generation: i32, member: &str) -> Option<E> {
        self.c.heartbeat(
            self.now,
            &HeartbeatRequest {
                group_id: group.into(),
                generation_id: generation,
                member_id: member.into(),
                group_instance_id: None,
            },
        )
    }

    /// Advances time until the join phase of `group` ends; the replies.
    pub(super) fn settle(&mut self, group: &str) -> Vec<Completion> {
        let mut replies = Vec::new();
        for _ in 0..100 {
            if self.state(group) != GroupState::PreparingRebalance {
                break;
            }
            self.advance(1000);
            replies.extend(self.replies());
        }
        replies
    }

    pub(super) fn state(&self, group: &str) -> GroupState {
        self.c.group(group).map_or(GroupState::Dead, Group::state)
    }
}

pub(super) fn find_join(replies: &[Completion], token: Token) -> Option<JoinResponse> {
    replies.iter().find_map(|c| match &c.reply {
        Reply::Join(r) if c.token == token => Some(r.clone()),
        _ => None,
    })
}

pub(super) fn find_sync(replies: &[Completion], token: Token) -> Option<SyncResponse> {
    replies.iter().find_map(|c| match &c.reply {
        Reply::Sync(r) if c.token == token => Some(r.clone()),
        _ => None,
    })
}

pub(super) fn sync_req(group: &str, generation: i32, member: &str, assignments: Vec<(String, Bytes)>) -> SyncRequest {
    SyncRequest {
        group_id: group.into(),
        generation_id: generation,
        member_id: member.into(),
        assignments,
        ..Default::default()
    }
}

/// A Stable group of `n` dynamic members (no initial delay); returns the
/// member ids (the first is the leader) and the generation.
pub(super) fn stable_group(h: &mut Harness, group: &str, n: usize) -> (Vec<String>, i32) {
    let mut tokens = Vec::new();
    let mut ids = Vec::new();
    // Everyone joins within the initial delay.
    let delay = h.c.config.initial_rebalance_delay_ms;
    h.c.config.initial_rebalance_delay_ms = 1000;
    for _ in 0..n {
        let (t, id) = h.join_dynamic(group);
        tokens.push(t);
        ids.push(id);
    }
    let replies = h.settle(group);
    h.c.config.initial_rebalance_delay_ms = delay;
    let responses: Vec<JoinResponse> = tokens.iter().map(|t| find_join(&replies, *t).expect("join answered")).collect();
    let generation = responses[0].generation_id;
    let leader = responses[0].leader.clone();
    assert!(responses.iter().all(|r| r.error.is_none() && r.generation_id == generation && r.leader == leader));
    let assignments: Vec<(String, Bytes)> = ids.iter().map(|m| (m.clone(), Bytes::from(format!("a-{m}")))).collect();
    let mut sync_tokens = Vec::new();
    for id in &ids {
        let a = if *id == leader { assignments.clone() } else { Vec::new() };
        sync_tokens.push(h.sync(sync_req(group, generation, id, a)));
    }
    let replies = h.replies();
    for (t, id) in sync_tokens.iter().zip(&ids) {
        let r = find_sync(&replies, *t).expect("sync answered");
        assert_eq!(r.error, None);
        assert_eq!(r.assignment, Bytes::from(format!("a-{id}")));
    }
    assert_eq!(h.state(group), GroupState::Stable);
    // Leader first.
    let mut ordered = vec![leader.clone()];
    ordered.extend(ids.into_iter().filter(|m| *m != leader));
    (ordered, generation)
}

#[test]
fn first_join_requires_member_id_then_completes_after_initial_delay() {
    let mut h = Harness::new(3000);
    let (t, id) = h.join_dynamic("g");
    assert!(h.replies().is_empty(), "parked during the initial delay");
    assert_eq!(h.state("g"), GroupState::PreparingRebalance);
    h.advance(2999);
    assert!(h.replies().is_empty());
    h.advance(1);
    let r = h.join_reply(t);
    assert_eq!(r.error, None);
    assert_eq!(r.generation_id, 1);
    assert_eq!(r.leader, id);
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    assert_eq!(r.members.len(), 1, "the leader sees the members");
    assert_eq!(h.state("g"), GroupState::CompletingRebalance);
}

#[test]
fn initial_delay_extends_while_members_arrive_up_to_rebalance_timeout() {
    let mut h = Harness::new(3000);
    let (t1, _) = h.join_dynamic("g");
    h.advance(2000);
    let (t2, _) = h.join_dynamic("g");
    h.advance(1000); // first delay ends; a member arrived: extend by 3000
    assert!(h.replies().is_empty());
    h.advance(3000);
    let replies = h.replies();
    let (r1, r2) = (find_join(&replies, t1).unwrap(), find_join(&replies, t2).unwrap());
    assert_eq!(r1.generation_id, 1);
    assert_eq!(r2.generation_id, 1);
    assert_eq!(r1.leader, r2.leader);
    assert_eq!(r1.members.len() + r2.members.len(), 2, "only the leader gets the list");
}

#[test]
fn join_without_member_id_v3_joins_at_once() {
    let mut h = Harness::new(0);
    let mut req = join_req("g", "");
    req.require_known_member_id = false;
    let t = h.join(req);
    h.advance(0);
    let r = h.join_reply(t);
    assert_eq!(r.error, None);
    assert_eq!(r.leader, r.member_id);
}

#[test]
fn join_validation_errors() {
    let mut h = Harness::new(0);
    let mut req = join_req("g", "");
    req.session_timeout_ms = 1000;
    let t = h.join(req);
    assert_eq!(h.join_reply(t).error, Some(E::InvalidSessionTimeout));
    let mut req = join_req("g", "");
    req.session_timeout_ms = 1_800_001;
    let t = h.join(req);
    assert_eq!(h.join_reply(t).error, Some(E::InvalidSessionTimeout));
    let mut req = join_req("g", "");
    req.protocols.clear();
    let t = h.join(req);
    assert_eq!(h.join_reply(t).error, Some(E::InconsistentGroupProtocol));
    let mut req = join_req("g", "");
    req.protocol_type.clear();
    let t = h.join(req);
    assert_eq!(h.join_reply(t).error, Some(E::InconsistentGroupProtocol));
    let t = h.join(join_req("", ""));
    assert_eq!(h.join_reply(t).error, Some(E::InvalidGroupId));
    let t = h.join(join_req("nosuch", "someone"));
    assert_eq!(h.join_reply(t).error, Some(E::UnknownMemberId));
    assert!(h.c.group("g").is_none(), "failed joins leave no group behind");
}

#[test]
fn protocol_type_and_protocols_must_match_the_group() {
    let mut h = Harness::new(0);
    stable_group(&mut h, "g", 1);
    let mut req = join_req("g", "");
    req.protocol_type = "connect".into();
    let t = h.join(req);
    assert_eq!(h.join_reply(t).error, Some(E::InconsistentGroupProtocol));
    let mut req = join_req("g", "");
    req.protocols = protocols(&["roundrobin"]);
    let t = h.join(req);
    assert_eq!(h.join_reply(t).error, Some(E::InconsistentGroupProtocol));
}

#[test]
fn protocol_is_chosen_by_votes_among_common_protocols() {
    let mut h = Harness::new(1000);
    let mut tokens = Vec::new();
    for prefs in [&["a", "b", "c"][..], &["b", "a"], &["b", "a", "c"]] {
        let mut req = join_req("g", "");
        req.protocols = protocols(prefs);
        req.require_known_member_id = false;
        tokens.push(h.join(req));
    }
    let replies = h.settle("g");
    for t in tokens {
        assert_eq!(find_join(&replies, t).unwrap().protocol_name.as_deref(), Some("b"));
    }
    // The leader gets each member's metadata for the chosen protocol.
    let leader = h.c.group("g").unwrap().leader_id().unwrap().to_string();
    let lr = find_join(&replies, 1).filter(|r| r.member_id == leader).or_else(|| {
        replies.iter().find_map(|c| match &c.reply {
            Reply::Join(r) if r.member_id == leader => Some(r.clone()),
            _ => None,
        })
    });
    let lr = lr.unwrap();
    assert_eq!(lr.members.len(), 3);
    assert!(lr.members.iter().all(|m| m.metadata == "meta-b"));
}

#[test]
fn second_member_triggers_rebalance_and_followers_wait_for_leader_sync() {
    let mut h = Harness::new(0);
    let (ids, generation) = stable_group(&mut h, "g", 1);
    // A new member: the group rebalances; the old member learns it by
    // heartbeat and rejoins.
    let (t_new, new_id) = h.join_dynamic("g");
    assert_eq!(h.state("g"), GroupState::PreparingRebalance);
    assert_eq!(h.heartbeat("g", generation, &ids[0]), Some(E::RebalanceInProgress));
    let t_old = h.join(join_req("g", &ids[0]));
    let replies = h.replies();
    let (r_new, r_old) = (find_join(&replies, t_new).unwrap(), find_join(&replies, t_old).unwrap());
    assert_eq!(r_new.generation_id, generation + 1);
    assert_eq!(r_old.leader, ids[0], "the leader stays the leader");
    assert_eq!(h.state("g"), GroupState::CompletingRebalance);
    // Follower syncs first: parked.
    let ts_new = h.sync(sync_req("g", generation + 1, &new_id, vec![]));
    assert!(h.replies().is_empty());
    assert_eq!(h.heartbeat("g", generation + 1, &new_id), None, "heartbeats fine while completing");
    let assignment = vec![(ids[0].clone(), Bytes::from("x")), (new_id.clone(), Bytes::from("y"))];
    let ts_old = h.sync(sync_req("g", generation + 1, &ids[0], assignment));
    let replies = h.replies();
    assert_eq!(find_sync(&replies, ts_new).unwrap().assignment, Bytes::from("y"));
    assert_eq!(find_sync(&replies, ts_old).unwrap().assignment, Bytes::from("x"));
    assert_eq!(h.state("g"), GroupState::Stable);
}

#[test]
fn members_that_do_not_rejoin_are_dropped_at_rebalance_timeout() {
    let mut h = Harness::new(0);
    let (ids, generation) = stable_group(&mut h, "g", 2);
    // The follower rejoins with new metadata: rebalance; the leader keeps
    // heartbeating but never rejoins.
    let mut req = join_req("g", &ids[1]);
    req.protocols = protocols(&["range", "roundrobin"]);
    let t = h.join(req);
    for _ in 0..5 {
        h.advance(5000);
        assert_eq!(h.heartbeat("g", generation, &ids[0]), Some(E::RebalanceInProgress));
    }
    h.advance(5000); // 30 s: the rebalance timeout
    let r = h.join_reply(t);
    assert_eq!(r.error, None);
    assert_eq!(r.leader, ids[1], "the leader left; the joined member leads");
    assert_eq!(h.c.group("g").unwrap().members().count(), 1);
    assert_eq!(h.heartbeat("g", generation + 1, &ids[0]), Some(E::UnknownMemberId));
}

#[test]
fn heartbeat_errors() {
    let mut h = Harness::new(0);
    let (ids, generation) = stable_group(&mut h, "g", 1);
    assert_eq!(h.heartbeat("g", generation, &ids[0]), None);
    assert_eq!(h.heartbeat("g", generation + 1, &ids[0]), Some(E::IllegalGeneration));
    assert_eq!(h.heartbeat("g", generation, "nobody"), Some(E::UnknownMemberId));
    assert_eq!(h.heartbeat("nosuch", generation, &ids[0]), Some(E::UnknownMemberId));
}

#[test]
fn session_timeout_removes_member_and_rebalances() {
    let mut h = Harness::new(0);
    let (ids, generation) = stable_group(&mut h, "g", 2);
    // Only the leader heartbeats.
    for _ in 0..2 {
        h.advance(4000);
        assert_eq!(h.heartbeat("g", generation, &ids[0]), None, "at {}", h.now);
    }
    assert_eq!(h.state("g"), GroupState::Stable);
    h.advance(4000);
    // 12 s > 10 s session: the follower is gone, the group rebalances.
    assert_eq!(h.state("g"), GroupState::PreparingRebalance);
    assert!(h.c.group("g").unwrap().member(&ids[1]).is_none());
    let t = h.join(join_req("g", &ids[0]));
    let r = h.join_reply(t);
    assert_eq!(r.generation_id, generation + 1);
    assert_eq!(r.members.len(), 1);
}

#[test]
fn sync_errors() {
    let mut h = Harness::new(0);
    let (ids, generation) = stable_group(&mut h, "g", 1);
    let t = h.sync(sync_req("g", generation + 5, &ids[0], vec![]));
    assert_eq!(find_sync(&h.replies(), t).unwrap().error, Some(E::IllegalGeneration));
    let t = h.sync(sync_req("g", generation, "nobody", vec![]));
    assert_eq!(find_sync(&h.replies(), t).unwrap().error, Some(E::UnknownMemberId));
    let t = h.sync(sync_req("nosuch", generation, &ids[0], vec![]));
    assert_eq!(find_sync(&h.replies(), t).unwrap().error, Some(E::UnknownMemberId));
    let mut req = sync_req("g", generation, &ids[0], vec![]);
    req.protocol_name = Some("roundrobin".into());
    let t = h.sync(req);
    assert_eq!(find_sync(&h.replies(), t).unwrap().error, Some(E::InconsistentGroupProtocol));
    // Stable: a repeated sync gets the current assignment.
    let t = h.sync(sync_req("g", generation, &ids[0], vec![]));
    let r = find_sync(&h.replies(), t).unwrap();
    assert_eq!(r.error, None);
    assert_eq!(r.assignment, Bytes::from(format!("a-{}", ids[0])));
    // Mid-rebalance: REBALANCE_IN_PROGRESS.
    let (_t, _) = h.join_dynamic("g");
    let t = h.sync(sync_req("g", generation, &ids[0], vec![]));
    assert_eq!(find_sync(&h.replies(), t).unwrap().error, Some(E::RebalanceInProgress));
}

#[test]
fn parked_sync_fails_when_a_rebalance_starts() {
    let mut h = Harness::new(0);
    let (ids, generation) = stable_group(&mut h, "g", 2);
    // Rebalance to a new generation, then the follower syncs and the
    // leader leaves before syncing.
    h.join(join_req("g", &ids[0]));
    let t1 = h.join(join_req("g", &ids[1]));
    let g2 = find_join(&h.replies(), t1).unwrap().generation_id;
    assert_eq!(g2, generation + 1);
    let ts = h.sync(sync_req("g", g2, &ids[1], vec![]));
    let leave = h.c.leave(h.now, "g", &[LeavingMember { member_id: ids[0].clone(), group_instance_id: None }]);
    assert_eq!(leave.members[0].error, None);
    assert_eq!(find_sync(&h.replies(), ts).unwrap().error, Some(E::RebalanceInProgress));
}

#[test]
fn members_that_never_sync_are_removed_after_rebalance_timeout() {
    let mut h = Harness::new(0);
    let (ids, generation) = stable_group(&mut h, "g", 2);
    h.join(join_req("g", &ids[0]));
    h.join(join_req("g", &ids[1]));
    h.replies();
    // Only the leader syncs (and heartbeats); the follower never does.
    let assignment = vec![(ids[0].clone(), Bytes::from("x")), (ids[1].clone(), Bytes::from("y"))];
    h.sync(sync_req("g", generation + 1, &ids[0], assignment));
    for _ in 0..6 {
        h.advance(5000);
        h.heartbeat("g", generation + 1, &ids[0]);
    }
    let group = h.c.group("g").unwrap();
    assert!(group.member(&ids[1]).is_none());
    assert_eq!(group.state(), GroupState::PreparingRebalance);
}

#[test]
fn leave_group_batched() {
    let mut h = Harness::new(0);
    let (ids, _) = stable_group(&mut h, "g", 3);
    let leave = h.c.leave(
        h.now,
        "g",
        &[
            LeavingMember { member_id: ids[1].clone(), group_instance_id: None },
            LeavingMember { member_id: "nobody".into(), group_instance_id: None },
            LeavingMember { member_id: ids[2].clone(), group_instance_id: None },
        ],
    );
    assert_eq!(leave.error, None);
    let errors: Vec<_> = leave.members.iter().map(|m| m.error).collect();
    assert_eq!(errors, vec![None, Some(E::UnknownMemberId), None]);
    assert_eq!(h.state("g"), GroupState::PreparingRebalance);
    let t = h.join(join_req("g", &ids[0]));
    assert_eq!(h.join_reply(t).members.len(), 1);
    assert_eq!(h.c.leave(h.now, "nosuch", &[]).error, Some(E::UnknownMemberId));
    // Everyone gone: Empty, generation bumped.
    h.c.leave(h.now, "g", &[LeavingMember { member_id: ids[0].clone(), group_instance_id: None }]);
    // CompletingRebalance -> PreparingRebalance -> all (none) joined -> Empty.
    assert_eq!(h.state("g"), GroupState::Empty);
}

#[test]
fn last_member_leaving_mid_join_empties_the_group() {
    let mut h = Harness::new(0);
    let (ids, generation) = stable_group(&mut h, "g", 1);
    let leave = h.c.leave(h.now, "g", &[LeavingMember { member_id: ids[0].clone(), group_instance_id: None }]);
    assert_eq!(leave.members[0].error, None);
    // Stable -> PreparingRebalance -> (all 0 members joined) -> Empty.
    assert_eq!(h.state("g"), GroupState::Empty);
    assert_eq!(h.c.group("g").unwrap().generation_id(), generation + 1);
}

pub(super) fn static_join(group: &str, instance: &str, member_id: &str) -> JoinRequest {
    JoinRequest { group_instance_id: Some(instance.into()), ..join_req(group, member_id) }
}

#[test]
fn static_member_restart_replaces_old_member_without_rebalance() {
    let mut h = Harness::new(1000);
    let t1 = h.join(static_join("g", "i1", ""));
    let t2 = h.join(static_join("g", "i2", ""));
    let replies = h.replies();
    assert!(replies.is_empty(), "static members join without MEMBER_ID_REQUIRED");
    let replies = h.settle("g");
    let (r1, r2) = (find_join(&replies, t1).unwrap(), find_join(&replies, t2).unwrap());
    let generation = r1.generation_id;
    let a = vec![(r1.member_id.clone(), Bytes::from("A1")), (r2.member_id.clone(), Bytes::from("A2"))];
    h.sync(SyncRequest { group_instance_id: Some("i1".into()), ..sync_req("g", generation, &r1.member_id, a) });
    h.sync(SyncRequest { group_instance_id: Some("i2".into()), ..sync_req("g", generation, &r2.member_id, vec![]) });
    h.replies();
    assert_eq!(h.state("g"), GroupState::Stable);
    // i2 restarts: joins with no member id, same metadata.
    let t = h.join(static_join("g", "i2", ""));
    let r = h.join_reply(t);
    assert_eq!(r.error, None);
    assert_ne!(r.member_id, r2.member_id);
    assert_eq!(r.generation_id, generation, "no rebalance");
    assert_eq!(h.state("g"), GroupState::Stable);
    // Its sync returns the old assignment.
    let ts =
        h.sync(SyncRequest { group_instance_id: Some("i2".into()), ..sync_req("g", generation, &r.member_id, vec![]) });
    assert_eq!(find_sync(&h.replies(), ts).unwrap().assignment, Bytes::from("A2"));
    // The old incarnation is fenced.
    let hb = h.c.heartbeat(
        h.now,
        &HeartbeatRequest {
            group_id: "g".into(),
            generation_id: generation,
            member_id: r2.member_id.clone(),
            group_instance_id: Some("i2".into()),
        },
    );
    assert_eq!(hb, Some(E::FencedInstanceId));
    // The static leader restarting learns the members and skips assignment.
    let t = h.join(static_join("g", "i1", ""));
    let r = h.join_reply(t);
    assert!(r.skip_assignment);
    assert_eq!(r.leader, r.member_id);
    assert_eq!(r.members.len(), 2);
    assert_eq!(h.state("g"), GroupState::Stable);
}

#[test]
fn static_member_with_changed_protocols_triggers_rebalance() {
    let mut h = Harness::new(0);
    let t1 = h.join(static_join("g", "i1", ""));
    h.advance(0);
    let r1 = h.join_reply(t1);
    h.sync(SyncRequest {
        group_instance_id: Some("i1".into()),
        ..sync_req("g", r1.generation_id, &r1.member_id, vec![])
    });
    let mut req = static_join("g", "i1", "");
    req.protocols = protocols(&["roundrobin", "range"]);
    let t = h.join(req);
    // Selected protocol changes (roundrobin now preferred): rebalance, and
    // as the only member it completes at once.
    let r = h.join_reply(t);
    assert_eq!(r.generation_id, r1.generation_id + 1);
    assert_eq!(r.protocol_name.as_deref(), Some("roundrobin"));
}

#[test]
fn group_max_size() {
    let mut h = Harness {
        c: GroupCoordinator::new(
            GroupConfig { max_size: 2, initial_rebalance_delay_ms: 0, ..GroupConfig::default() },
            1,
        ),
        now: 0,
        token: 0,
    };
    stable_group(&mut h, "g", 2);
    let t = h.join(join_req("g", ""));
    assert_eq!(h.join_reply(t).error, Some(E::GroupMaxSizeReached));
}

#[test]
fn pending_member_id_expires() {
    let mut h = Harness::new(0);
    let (ids, generation) = stable_group(&mut h, "g", 1);
    let t = h.join(join_req("g", ""));
    let pending = h.join_reply(t).member_id;
    h.advance(5000);
    assert_eq!(h.heartbeat("g", generation, &ids[0]), None, "a pending member does not rebalance");
    h.advance(6000);
    let t = h.join(join_req("g", &pending));
    assert_eq!(h.join_reply(t).error, Some(E::UnknownMemberId));
}
