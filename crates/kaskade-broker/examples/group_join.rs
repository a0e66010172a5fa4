//! Benchmark: how long a group of N members takes to go from the last
//! JoinGroup to every member holding its assignment (issue #4).
//!
//! Drives a running broker over raw TCP with the protocol codecs, so the
//! figure is the coordinator's, not a client library's timers. The N
//! members first form the group together (a new group waits
//! `group.initial.rebalance.delay.ms`, extended while members arrive, as
//! Kafka does: about 2 x 3 s with the default). Then, per round, every
//! member rejoins at once with new subscription metadata (what a
//! subscription change does: the Stable group rebalances); the clock
//! starts when the last JoinGroup is sent and stops when the last
//! SyncGroup answer (the assignment) arrives.
//!
//! ```text
//! kaskade serve &
//! cargo run --release -p kaskade-broker --example group_join -- 127.0.0.1:9092 10 50
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Barrier;

const JOIN_VERSION: i16 = 5;
const SYNC_VERSION: i16 = 3;

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Wire {
    stream: TcpStream,
    correlation: i32,
}

impl Wire {
    async fn request<Req: Encodable + HeaderVersion, Resp: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        body: &Req,
    ) -> Result<Resp, Error> {
        self.correlation += 1;
        let mut frame = BytesMut::new();
        frame.put_i32(0);
        let mut header = RequestHeader::default();
        header.request_api_key = key as i16;
        header.request_api_version = version;
        header.correlation_id = self.correlation;
        header.client_id = Some(StrBytes::from_static_str("group-join-bench"));
        header.encode(&mut frame, key.request_header_version(version))?;
        body.encode(&mut frame, version)?;
        let len = (frame.len() - 4) as i32;
        frame[..4].copy_from_slice(&len.to_be_bytes());
        self.stream.write_all(&frame).await?;
        let len = self.stream.read_i32().await?;
        let mut answer = vec![0u8; usize::try_from(len)?];
        self.stream.read_exact(&mut answer).await?;
        let mut answer = Bytes::from(answer);
        ResponseHeader::decode(&mut answer, key.response_header_version(version))?;
        Ok(Resp::decode(&mut answer, version)?)
    }
}

fn join_request(group: &str, member: &StrBytes, subscription: &Bytes) -> JoinGroupRequest {
    let mut protocol = JoinGroupRequestProtocol::default();
    protocol.name = StrBytes::from_static_str("range");
    protocol.metadata = subscription.clone();
    let mut req = JoinGroupRequest::default();
    req.group_id = GroupId(StrBytes::from_string(group.to_string()));
    req.session_timeout_ms = 10_000;
    req.rebalance_timeout_ms = 30_000;
    req.member_id = member.clone();
    req.protocol_type = StrBytes::from_static_str("consumer");
    req.protocols = vec![protocol];
    req
}

/// ConsumerProtocolSubscription v0 for one topic, `tag` as user data.
fn subscription(tag: u32) -> Bytes {
    let mut sub = BytesMut::new();
    sub.put_i16(0);
    sub.put_i32(1);
    sub.put_i16(5);
    sub.put_slice(b"bench");
    sub.put_i32(4);
    sub.put_u32(tag);
    sub.freeze()
}

/// JoinGroup with `member`, then SyncGroup (as the leader, with an empty
/// assignment for everyone); the member id the group knows it by.
async fn join_and_sync(wire: &mut Wire, group: &str, member: &StrBytes, sub: &Bytes) -> Result<StrBytes, Error> {
    let joined: JoinGroupResponse =
        wire.request(ApiKey::JoinGroup, JOIN_VERSION, &join_request(group, member, sub)).await?;
    if joined.error_code != 0 {
        return Err(format!("JoinGroup: error {}", joined.error_code).into());
    }
    let mut sync = SyncGroupRequest::default();
    sync.group_id = GroupId(StrBytes::from_string(group.to_string()));
    sync.generation_id = joined.generation_id;
    sync.member_id = joined.member_id.clone();
    if joined.leader == joined.member_id {
        // The leader hands every member an (empty) assignment, as a client
        // leader must for the others to leave CompletingRebalance.
        sync.assignments = joined
            .members
            .iter()
            .map(|m| {
                let mut a = SyncGroupRequestAssignment::default();
                a.member_id = m.member_id.clone();
                a.assignment = Bytes::from_static(&[0, 0, 0, 0, 0, 0, 255, 255, 255, 255]);
                a
            })
            .collect();
    }
    let synced: SyncGroupResponse = wire.request(ApiKey::SyncGroup, SYNC_VERSION, &sync).await?;
    if synced.error_code != 0 {
        return Err(format!("SyncGroup: error {}", synced.error_code).into());
    }
    Ok(joined.member_id)
}

/// One member: joins the group (all members together, so the group forms
/// in one generation), then for every round rejoins with the others at
/// once and reports when its JoinGroup left and when its assignment came.
async fn member(
    addr: String,
    group: String,
    rounds: usize,
    start: Arc<Barrier>,
) -> Result<Vec<(Instant, Instant)>, Error> {
    let mut wire = Wire { stream: TcpStream::connect(&addr).await?, correlation: 0 };
    wire.stream.set_nodelay(true)?;
    let sub = subscription(0);
    let first: JoinGroupResponse =
        wire.request(ApiKey::JoinGroup, JOIN_VERSION, &join_request(&group, &StrBytes::default(), &sub)).await?;
    if first.error_code != 79 {
        return Err(format!("first JoinGroup: error {} (expected 79 MEMBER_ID_REQUIRED)", first.error_code).into());
    }
    start.wait().await;
    let member_id = join_and_sync(&mut wire, &group, &first.member_id, &sub).await?;
    let mut times = Vec::with_capacity(rounds);
    for round in 1..=rounds {
        // New subscription metadata: a Stable group rebalances when a
        // member's metadata changes (an unchanged follower would just get
        // its current assignment back, as in Kafka).
        let sub = subscription(round as u32);
        start.wait().await;
        let sent = Instant::now();
        join_and_sync(&mut wire, &group, &member_id, &sub).await?;
        times.push((sent, Instant::now()));
    }
    Ok(times)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let addr = args.get(1).cloned().unwrap_or_else(|| "127.0.0.1:9092".into());
    let members: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(10);
    let rounds: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(50);
    let group = format!("join-bench-{}", std::process::id());
    let start = Arc::new(Barrier::new(members));
    let formed = Instant::now();
    let tasks: Vec<_> =
        (0..members).map(|_| tokio::spawn(member(addr.clone(), group.clone(), rounds, start.clone()))).collect();
    let mut per_member = Vec::with_capacity(members);
    for t in tasks {
        per_member.push(t.await??);
    }
    let mut times: Vec<Duration> = (0..rounds)
        .map(|r| {
            let last_join = per_member.iter().map(|m| m[r].0).max();
            let last_assigned = per_member.iter().map(|m| m[r].1).max();
            match (last_join, last_assigned) {
                (Some(j), Some(a)) => a.saturating_duration_since(j),
                _ => Duration::ZERO,
            }
        })
        .collect();
    times.sort();
    println!("{members} members: group formed and {rounds} rebalances done in {:.2} s", formed.elapsed().as_secs_f64());
    println!(
        "last JoinGroup -> every member assigned: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3,
        times.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    Ok(())
}
