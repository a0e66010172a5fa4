//! A seeded simulation: clients behaving like Kafka consumers (join, sync,
//! heartbeat, commit, leave, crash, restart, change protocols) against the
//! engine with a fake clock, while the coordinator now and then resigns and
//! reloads the group's partition and runs its offset expiry, OffsetDelete
//! and group deletion, and its `__consumer_offsets` appends resolve late,
//! out of order, and now and then fail (`writes`: a failed SyncGroup store
//! sends the members back to join, a failed commit never shows, a failed
//! deletion deletes nothing, a failed static rejoin keeps the old member
//! id); invariants are checked after every step (the committed offset is
//! exactly the one of the latest commit or deletion whose write resolved
//! Ok: a deletion shows nothing), and at the end every parked JoinGroup
//! and SyncGroup must have had its one answer.

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;

use super::*;

const GROUP: &str = "sim";
const SESSION: i32 = 6000;
const REBALANCE: i32 = 5000;
const HEARTBEAT_EVERY: i64 = 2000;
const PARTITIONS: usize = 8;

use kaskade_types::sim::SimRng as Rng;

#[derive(Clone, Debug, PartialEq)]
enum Phase {
    Offline,
    Joining,
    Syncing { generation: i32 },
    Stable { generation: i32 },
    Crashed,
}

struct Client {
    name: String,
    instance: Option<String>,
    member_id: String,
    phase: Phase,
    incarnation: u32,
    next_heartbeat: i64,
    protocols: Vec<Protocol>,
}

/// What a simulated append does to the sim's offset once it resolves Ok.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Effect {
    /// Not an offset write (a group record), or one a resign dropped.
    Nothing,
    /// An OffsetCommit of this offset.
    Set(i64),
    /// A deletion (OffsetDelete, DeleteGroups, expiry) of the offset.
    Delete,
}

#[derive(Clone, Copy)]
enum Kind {
    Join,
    Sync,
}

struct Sim {
    rng: Rng,
    now: i64,
    c: GroupCoordinator,
    clients: Vec<Client>,
    next_token: Token,
    /// token -> (client, incarnation, kind)
    inflight: HashMap<Token, (usize, u32, Kind)>,
    /// generation -> (leader, protocol) as the join responses told it.
    generations: BTreeMap<i32, (String, Option<String>)>,
    /// generation -> the assignments its leader sent.
    leader_sent: HashMap<i32, HashSet<Bytes>>,
    /// (member id, crash time) of crashed incarnations.
    crashed: Vec<(String, i64)>,
    last_generation: i32,
    /// member id -> group.instance.id, for static members.
    instances: HashMap<String, String>,
    /// Appends in flight: (write, when it resolves, whether it fails, its
    /// effect on the offset; `Nothing` once a resign dropped it).
    appends: Vec<(WriteId, i64, bool, Effect)>,
    /// The offset write that decides what OffsetFetch shows: the latest
    /// resolved Ok (`None` in it: deleted).
    committed: Option<(WriteId, Option<i64>)>,
    /// Whether appends may fail (not in the calm phase).
    failing: bool,
}

/// The partition the sim's clients commit.
fn sim_tp() -> kaskade_types::TopicPartition {
    kaskade_types::TopicPartition::new("t", 0)
}

fn protocol_set(rng: &mut Rng) -> Vec<Protocol> {
    let names: &[&str] = if rng.chance(500) { &["range", "roundrobin"] } else { &["roundrobin", "sticky"] };
    names.iter().map(|n| Protocol { name: n.to_string(), metadata: Bytes::from_static(b"sub") }).collect()
}

impl Sim {
    fn new(seed: u64, clients: usize, statics: usize) -> Self {
        let mut rng = Rng::new(seed);
        let clients = (0..clients)
            .map(|i| Client {
                name: format!("c{i}"),
                instance: (i < statics).then(|| format!("instance-{i}")),
                member_id: String::new(),
                phase: Phase::Offline,
                incarnation: 0,
                next_heartbeat: 0,
                protocols: protocol_set(&mut rng),
            })
            .collect();
        let config = GroupConfig { initial_rebalance_delay_ms: 1000, ..GroupConfig::default() };
        Sim {
            rng,
            now: 0,
            c: GroupCoordinator::new(config, seed),
            clients,
            next_token: 0,
            inflight: HashMap::new(),
            generations: BTreeMap::new(),
            leader_sent: HashMap::new(),
            crashed: Vec::new(),
            last_generation: 0,
            instances: HashMap::new(),
            appends: Vec::new(),
            committed: None,
            failing: true,
        }
    }

    /// The engine's new writes go to the simulated `__consumer_offsets`:
    /// each resolves within a second, one in eight fails while faults run.
    fn schedule_writes(&mut self, effect: Effect) {
        for (id, group) in self.c.take_opened_writes() {
            assert_eq!(group, GROUP);
            let due = self.now + self.rng.below(1000) as i64;
            let fail = self.failing && self.rng.chance(8);
            self.appends.push((id, due, fail, effect));
        }
    }

    /// Resolves the appends due by now, in a random order (two tasks woken
    /// by one HW move race), as the driver reports them.
    fn resolve_writes(&mut self) {
        let (mut due, waiting): (Vec<_>, Vec<_>) = self.appends.drain(..).partition(|a| a.1 <= self.now);
        self.appends = waiting;
        for k in (1..due.len()).rev() {
            due.swap(k, self.rng.below(k as u64 + 1) as usize);
        }
        for (id, _, fail, effect) in due {
            let result = if fail {
                Err(if self.rng.chance(2) { E::NotCoordinator } else { E::CoordinatorNotAvailable })
            } else {
                Ok(())
            };
            let generation = self.c.group(GROUP).map(Group::generation_id);
            self.c.write_resolved(self.now, id, result);
            let value = match effect {
                Effect::Nothing => None,
                Effect::Set(offset) => Some(Some(offset)),
                Effect::Delete => Some(None),
            };
            if let (Some(value), false) = (value, fail) {
                if self.committed.is_none_or(|(latest, _)| latest < id) {
                    self.committed = Some((id, value));
                }
            }
            // A deletion that took the group (or left a fresh one for
            // later commits) starts its generations again.
            let now_generation = self.c.group(GROUP).map(Group::generation_id);
            if now_generation.is_none() || now_generation < generation {
                self.forget_group();
            }
            self.deliver();
        }
    }

    /// The group's offsets went (a resignation or a deletion): nothing is
    /// committed and the writes in flight were dropped with them.
    fn forget_offsets(&mut self) {
        self.committed = None;
        for a in &mut self.appends {
            a.3 = Effect::Nothing;
        }
    }

    fn token(&mut self, client: usize, kind: Kind) -> Token {
        self.next_token += 1;
        self.inflight.insert(self.next_token, (client, self.clients[client].incarnation, kind));
        self.next_token
    }

    fn send_join(&mut self, i: usize) {
        let t = self.token(i, Kind::Join);
        let cl = &mut self.clients[i];
        cl.phase = Phase::Joining;
        let req = JoinRequest {
            group_id: GROUP.into(),
            session_timeout_ms: SESSION,
            rebalance_timeout_ms: REBALANCE,
            member_id: cl.member_id.clone(),
            group_instance_id: cl.instance.clone(),
            protocol_type: "consumer".into(),
            protocols: cl.protocols.clone(),
            client_id: cl.name.clone(),
            client_host: "/10.0.0.1".into(),
            require_known_member_id: true,
        };
        self.c.join(self.now, t, req);
    }

    fn on_join(&mut self, i: usize, r: JoinResponse) {
        match r.error {
            Some(E::MemberIdRequired) => {
                self.clients[i].member_id = r.member_id;
                self.send_join(i);
            }
            Some(E::UnknownMemberId) => {
                self.clients[i].member_id.clear();
                self.send_join(i);
            }
            Some(E::FencedInstanceId) => self.clients[i].phase = Phase::Offline,
            Some(E::GroupMaxSizeReached) | Some(E::InconsistentGroupProtocol) => self.clients[i].phase = Phase::Offline,
            Some(_) => self.send_join(i),
            None => {
                // One generation at a time: everyone agrees on its leader
                // and protocol.
                // (A static leader restarting within the generation hands
                // its place to its new member id, KIP-345.)
                if let Some(instance) = &self.clients[i].instance {
                    self.instances.insert(r.member_id.clone(), instance.clone());
                }
                let seen = self
                    .generations
                    .entry(r.generation_id)
                    .or_insert_with(|| (r.leader.clone(), r.protocol_name.clone()));
                assert_eq!(seen.1, r.protocol_name, "generation {} answered with two protocols", r.generation_id);
                if seen.0 != r.leader {
                    let same_instance = self.instances.contains_key(&seen.0)
                        && self.instances.get(&seen.0) == self.instances.get(&r.leader);
                    assert!(
                        same_instance,
                        "generation {} answered with two leaders: {} and {}",
                        r.generation_id, seen.0, r.leader
                    );
                    seen.0 = r.leader.clone();
                }
                assert!(r.generation_id >= self.last_generation, "generation went back");
                self.last_generation = r.generation_id;
                self.clients[i].member_id = r.member_id.clone();
                let is_leader = r.leader == r.member_id;
                let assignments = if is_leader && !r.skip_assignment {
                    assert!(!r.members.is_empty(), "the leader sees the members");
                    let mut members: Vec<&str> = r.members.iter().map(|m| m.member_id.as_str()).collect();
                    members.sort();
                    let mut parts: Vec<Vec<usize>> = vec![Vec::new(); members.len()];
                    for p in 0..PARTITIONS {
                        parts[p % members.len()].push(p);
                    }
                    let a: Vec<(String, Bytes)> = members
                        .iter()
                        .zip(parts)
                        .map(|(m, p)| (m.to_string(), Bytes::from(format!("{}|{m}|{p:?}", r.generation_id))))
                        .collect();
                    self.leader_sent.entry(r.generation_id).or_default().extend(a.iter().map(|(_, b)| b.clone()));
                    a
                } else {
                    Vec::new()
                };
                self.clients[i].phase = Phase::Syncing { generation: r.generation_id };
                let t = self.token(i, Kind::Sync);
                let cl = &self.clients[i];
                let req = SyncRequest {
                    group_id: GROUP.into(),
                    generation_id: r.generation_id,
                    member_id: cl.member_id.clone(),
                    group_instance_id: cl.instance.clone(),
                    protocol_type: r.protocol_type.clone(),
                    protocol_name: r.protocol_name.clone(),
                    assignments,
                };
                self.c.sync(self.now, t, req);
            }
        }
    }

    fn on_sync(&mut self, i: usize, r: SyncResponse) {
        let Phase::Syncing { generation } = self.clients[i].phase else {
            panic!("sync answer to a client not syncing");
        };
        match r.error {
            None => {
                // Every assignment came from the leader of that generation.
                if !r.assignment.is_empty() {
                    let text = String::from_utf8(r.assignment.to_vec()).unwrap();
                    let gen_of: i32 = text.split('|').next().unwrap().parse().unwrap();
                    assert!(
                        self.leader_sent.get(&gen_of).is_some_and(|s| s.contains(&r.assignment)),
                        "assignment {text} was not sent by the leader of generation {gen_of}"
                    );
                    if self.clients[i].instance.is_none() {
                        assert_eq!(gen_of, generation, "a dynamic member got another generation's assignment");
                        assert!(text.contains(&self.clients[i].member_id), "{text} is someone else's");
                    }
                }
                self.clients[i].phase = Phase::Stable { generation };
                self.clients[i].next_heartbeat = self.now + HEARTBEAT_EVERY;
            }
            Some(E::UnknownMemberId) => {
                self.clients[i].member_id.clear();
                self.send_join(i);
            }
            Some(E::FencedInstanceId) => self.clients[i].phase = Phase::Offline,
            Some(_) => self.send_join(i),
        }
    }

    /// Delivers every completion (which may cause more requests).
    fn deliver(&mut self) {
        loop {
            self.schedule_writes(Effect::Nothing);
            let completions = self.c.take_completions();
            if completions.is_empty() {
                return;
            }
            for c in completions {
                let (i, incarnation, kind) = self.inflight.remove(&c.token).expect("a known token, answered once");
                if self.clients[i].incarnation != incarnation || self.clients[i].phase == Phase::Crashed {
                    continue; // the process that asked is gone
                }
                match (kind, c.reply) {
                    (Kind::Join, Reply::Join(r)) => self.on_join(i, r),
                    (Kind::Sync, Reply::Sync(r)) => self.on_sync(i, r),
                    _ => panic!("reply of the wrong kind"),
                }
            }
        }
    }

    fn act(&mut self, i: usize, churn: bool) {
        let phase = self.clients[i].phase.clone();
        match phase {
            Phase::Crashed => {
                if !churn || self.rng.chance(20) {
                    // Restart: a new process, a static member keeps its id.
                    let cl = &mut self.clients[i];
                    cl.incarnation += 1;
                    cl.member_id.clear();
                    cl.phase = Phase::Offline;
                }
            }
            Phase::Offline => {
                if !churn || self.rng.chance(100) {
                    self.send_join(i);
                }
            }
            Phase::Joining | Phase::Syncing { .. } => {}
            Phase::Stable { generation } => {
                if churn && self.rng.chance(3) {
                    let cl = &mut self.clients[i];
                    self.crashed.push((cl.member_id.clone(), self.now));
                    cl.phase = Phase::Crashed;
                    return;
                }
                if churn && self.rng.chance(3) {
                    let cl = &self.clients[i];
                    let leaving =
                        LeavingMember { member_id: cl.member_id.clone(), group_instance_id: cl.instance.clone() };
                    let r = self.c.leave(self.now, GROUP, &[leaving]);
                    // UNKNOWN_MEMBER_ID: the group went with its partition
                    // (a resignation that did not reload it).
                    let gone = r.error == Some(E::UnknownMemberId) && self.c.group(GROUP).is_none();
                    assert!(r.error.is_none() || gone, "leave: {:?}", r.error);
                    let cl = &mut self.clients[i];
                    cl.member_id.clear();
                    cl.phase = Phase::Offline;
                    return;
                }
                if churn && self.rng.chance(3) {
                    self.clients[i].protocols = protocol_set(&mut self.rng);
                    self.send_join(i);
                    return;
                }
                if self.rng.chance(4) {
                    let cl = &self.clients[i];
                    let offset = self.now;
                    let req = CommitRequest {
                        group_instance_id: cl.instance.clone(),
                        ..CommitRequest::of_t0(GROUP, offset).by(Some(generation), &cl.member_id)
                    };
                    // Refused (a rebalance under way, an older generation)
                    // or written; the error path never writes.
                    if self.c.commit_offsets(self.now, &req)[0].is_none() {
                        self.schedule_writes(Effect::Set(offset));
                    }
                }
                if self.now >= self.clients[i].next_heartbeat {
                    let cl = &self.clients[i];
                    let req = HeartbeatRequest {
                        group_id: GROUP.into(),
                        generation_id: generation,
                        member_id: cl.member_id.clone(),
                        group_instance_id: cl.instance.clone(),
                    };
                    let error = self.c.heartbeat(self.now, &req);
                    self.clients[i].next_heartbeat = self.now + HEARTBEAT_EVERY;
                    match error {
                        None => {}
                        Some(E::UnknownMemberId) => {
                            self.clients[i].member_id.clear();
                            self.send_join(i);
                        }
                        Some(E::FencedInstanceId) => self.clients[i].phase = Phase::Offline,
                        Some(_) => self.send_join(i),
                    }
                }
            }
        }
    }

    /// The group is gone (not reloaded, expired or deleted): a group of
    /// that name starts again from generation 0, so what was seen of the
    /// old one's generations no longer applies.
    fn forget_group(&mut self) {
        self.generations.clear();
        self.leader_sent.clear();
        self.last_generation = 0;
    }

    /// The coordinator moves: it resigns the group's partition (parked
    /// requests answer NOT_COORDINATOR) and, elected again, reloads the
    /// group from its last stored record. Kafka stores a group when a
    /// generation gets its assignment or the group empties, so a group
    /// reloads as it was then; one caught mid-rebalance (or on a protocol
    /// not every client has, see below) reloads as nothing (its members
    /// rejoin from scratch). No request reaches the group
    /// while it loads (COORDINATOR_LOAD_IN_PROGRESS), so the reload comes
    /// before the answers are delivered.
    fn resign_and_reload(&mut self) {
        let stored = self
            .c
            .group(GROUP)
            .filter(|g| match g.state() {
                GroupState::Empty => true,
                // A stored member keeps only the selected protocol (as in
                // Kafka): a client whose set lacks it would be refused
                // (INCONSISTENT_GROUP_PROTOCOL) until a rebalance that a
                // settled group never starts. Every client's set has
                // roundrobin, so only groups on it reload.
                GroupState::Stable => g.protocol_name.as_deref() == Some("roundrobin"),
                _ => false,
            })
            .map(records::group_value);
        self.c.unload_partition(0, 1);
        assert!(self.c.group(GROUP).is_none(), "an unloaded group is gone");
        // The reload below restores the group record only.
        self.forget_offsets();
        if stored.is_none() {
            self.forget_group();
        }
        if let Some(value) = stored {
            let Some(records::OffsetsRecord::GroupMetadata(id, group)) =
                records::decode(&records::group_key(GROUP), Some(&value))
            else {
                panic!("a stored group decodes");
            };
            self.c.load_group(self.now, id, group);
            // Restored members start a new session now.
            for (_, at) in &mut self.crashed {
                *at = (*at).max(self.now);
            }
        }
        self.deliver();
    }

    fn step(&mut self, churn: bool) {
        self.now += 50 + self.rng.below(400) as i64;
        self.c.tick(self.now);
        self.deliver();
        self.resolve_writes();
        if churn && self.rng.chance(2) {
            self.resign_and_reload();
        }
        // Now and then everyone leaves: the group empties, and deletions
        // (tried more often then) apply.
        let left = churn && self.rng.chance(10);
        if left {
            self.leave_all();
        }
        if churn && (self.rng.chance(40) || left && self.rng.chance(700)) {
            // Only an Empty group is touched; the others must not notice.
            // Each deletion takes effect when its write resolves Ok.
            self.deliver();
            let shown = self.shown();
            let offset_delete = self.c.delete_offsets(self.now, GROUP, &[sim_tp()]);
            let empty = self.c.group(GROUP).is_some_and(|g| g.state() == GroupState::Empty);
            match offset_delete {
                Ok(errors) if empty => assert_eq!(errors, vec![None]),
                Ok(errors) => assert!(errors.iter().all(|e| *e == Some(E::GroupSubscribedToTopic)), "{errors:?}"),
                Err(e) => assert!(matches!(e, E::GroupIdNotFound | E::NonEmptyGroup), "{e:?}"),
            }
            self.schedule_writes(Effect::Delete);
            self.c.expire_offsets(self.now, 0);
            self.schedule_writes(Effect::Delete);
            self.c.delete_groups(self.now, &[GROUP.to_string()]);
            self.schedule_writes(Effect::Delete);
            assert_eq!(self.shown(), shown, "nothing deleted before its write resolves");
            self.deliver();
        }
        let mut order: Vec<usize> = (0..self.clients.len()).collect();
        for k in (1..order.len()).rev() {
            order.swap(k, self.rng.below(k as u64 + 1) as usize);
        }
        for i in order {
            self.act(i, churn);
            self.deliver();
        }
        self.check();
    }

    /// Every stable client leaves the group.
    fn leave_all(&mut self) {
        for i in 0..self.clients.len() {
            if !matches!(self.clients[i].phase, Phase::Stable { .. }) {
                continue;
            }
            let cl = &self.clients[i];
            let leaving = LeavingMember { member_id: cl.member_id.clone(), group_instance_id: cl.instance.clone() };
            self.c.leave(self.now, GROUP, &[leaving]);
            let cl = &mut self.clients[i];
            cl.member_id.clear();
            cl.phase = Phase::Offline;
            self.deliver();
        }
    }

    /// The offset OffsetFetch shows.
    fn shown(&self) -> Option<i64> {
        self.c.group(GROUP).and_then(|g| g.offsets().get(&sim_tp())).map(|c| c.offset.get())
    }

    fn check(&self) {
        self.c.check_deadline_index();
        // OffsetFetch shows exactly the latest commit the ISR holds: never
        // one in flight, never one whose write failed.
        assert_eq!(self.shown(), self.committed.and_then(|(_, o)| o), "the committed offset");
        let Some(group) = self.c.group(GROUP) else {
            return;
        };
        // Sessions: nobody outlives an expired session, unless a parked
        // JoinGroup/SyncGroup (bounded by the join and sync timers) holds it.
        for m in group.members() {
            if !m.is_awaiting_join() && !m.is_awaiting_sync() {
                assert!(m.session_deadline > self.now, "{} outlived its session", m.member_id);
            }
        }
        // Crashed processes are gone within the bounds of the timers.
        let bound = i64::from(SESSION) + 2 * i64::from(REBALANCE) + 1000 + 500;
        for (member, at) in &self.crashed {
            if self.now > at + bound {
                assert!(group.member(member).is_none(), "crashed {member} still in the group");
            }
        }
        // Stable: every member's assignment is one its generation's leader sent.
        if group.state() == GroupState::Stable {
            let sent = self.leader_sent.get(&group.generation_id());
            for m in group.members() {
                if !m.assignment.is_empty() {
                    let ok = sent.is_some_and(|s| s.contains(&m.assignment)) || m.group_instance_id.is_some();
                    assert!(ok, "{}'s assignment is not from the leader", m.member_id);
                }
            }
            assert!(group.leader_id().is_some_and(|l| group.member(l).is_some()));
        }
        let parked_joins = group.members().filter(|m| m.is_awaiting_join()).count();
        if group.state() != GroupState::PreparingRebalance {
            assert_eq!(parked_joins, 0, "a join parked outside PreparingRebalance");
        }
        if group.state() != GroupState::CompletingRebalance {
            assert!(group.members().all(|m| !m.is_awaiting_sync()), "a sync parked outside CompletingRebalance");
        }
    }
}

fn run(seed: u64, clients: usize, statics: usize, steps: usize) {
    let mut sim = Sim::new(seed, clients, statics);
    for _ in 0..steps {
        sim.step(true);
    }
    // Calm: no more churn or failed appends; everyone (re)starts and the
    // group settles.
    sim.failing = false;
    for _ in 0..400 {
        sim.step(false);
    }
    // Liveness: every parked JoinGroup and SyncGroup got its answer, the
    // crashed clients' ones included (the join and sync timers bound them).
    assert!(sim.inflight.is_empty(), "seed {seed}: parked requests never answered: {:?}", sim.inflight.keys());
    let group = sim.c.group(GROUP).expect("group exists");
    if seed.is_multiple_of(20) {
        eprintln!(
            "seed {seed}: t={}s, {} generations, {} crashes, {} members",
            sim.now / 1000,
            group.generation_id(),
            sim.crashed.len(),
            group.members().count()
        );
    }
    assert_eq!(group.state(), GroupState::Stable, "seed {seed}: group settles");
    let generation = group.generation_id();
    let mut live: Vec<&str> = Vec::new();
    for cl in &sim.clients {
        assert_eq!(cl.phase, Phase::Stable { generation }, "seed {seed}: {} is stable", cl.name);
        live.push(&cl.member_id);
    }
    let mut members: Vec<&str> = group.members().map(|m| m.member_id.as_str()).collect();
    live.sort();
    members.sort();
    assert_eq!(live, members, "seed {seed}: the group is exactly the live clients");
}

/// Seeds per test: 40, or `GROUP_SIM_SEEDS` for a longer search.
fn seeds() -> u64 {
    std::env::var("GROUP_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(40)
}

#[test]
fn simulation_dynamic_members() {
    for seed in 1..=seeds() {
        run(seed, 5, 0, 1500);
    }
}

#[test]
fn simulation_with_static_members() {
    for seed in 100_000..100_000 + seeds() {
        run(seed, 5, 2, 1500);
    }
}

#[test]
fn simulation_larger_mixed_group() {
    for seed in 200_000..200_000 + seeds() / 2 {
        run(seed, 8, 4, 1500);
    }
}
