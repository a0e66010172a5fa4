//! The client side of openraft's RPCs: one connection per peer controller,
//! opened lazily, one request in flight at a time (openraft sends to a peer
//! from one replication task), each call bounded by openraft's TTL.
//!
//! A new connection first says which cluster and static voters it is of
//! (`Hello`); a peer that disagrees refuses it. Failures map onto openraft's retry semantics:
//! a refused or timed-out connect, or a refused hello, is `Unreachable`
//! (openraft backs off), a broken exchange is a
//! `Network` error (retried at once on a fresh connection), an expired TTL
//! is a `Timeout`, a frame over the limit is `PayloadTooLarge` (openraft
//! sends fewer entries). Any failure drops the connection, so a half-read
//! response is never mistaken for the next one.
//!
//! On the leader it also notes, per peer, when a replica last answered an
//! AppendEntries and when it last held everything committed: DescribeQuorum's
//! last fetch and last caught-up times.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::{RPCTypes, RaftNetwork, RaftNetworkFactory};

use super::types::ControllerNode;
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::BufStream;
use tokio::net::TcpStream;

use super::frame::{self, Hello, RpcKind};
use super::types::{RaftNodeId, TypeConfig};
use kaskade_types::Clock;

/// How long a connect may take before the peer counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// When a peer last answered and last was caught up, in clock ms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerTimes {
    pub last_fetch_ms: Option<i64>,
    pub last_caught_up_ms: Option<i64>,
}

/// Per-peer times, shared with the status report.
#[derive(Debug, Default)]
pub struct PeerClock {
    times: Mutex<BTreeMap<RaftNodeId, PeerTimes>>,
}

impl PeerClock {
    pub fn get(&self, id: RaftNodeId) -> PeerTimes {
        self.times.lock().get(&id).copied().unwrap_or_default()
    }

    fn answered(&self, id: RaftNodeId, now_ms: i64, caught_up: bool) {
        let mut times = self.times.lock();
        let t = times.entry(id).or_default();
        t.last_fetch_ms = Some(now_ms);
        if caught_up {
            t.last_caught_up_ms = Some(now_ms);
        }
    }
}

/// Makes a client per peer (openraft's network factory).
#[derive(Clone, Debug)]
pub struct Network {
    id: RaftNodeId,
    hello: Arc<Hello>,
    clock: Arc<dyn Clock>,
    peers: Arc<PeerClock>,
}

impl Network {
    pub fn new(id: RaftNodeId, hello: Hello, clock: Arc<dyn Clock>, peers: Arc<PeerClock>) -> Network {
        Network { id, hello: Arc::new(hello), clock, peers }
    }
}

/// The connection to one peer controller.
#[derive(Debug)]
pub struct PeerClient {
    net: Network,
    target: RaftNodeId,
    addr: String,
    conn: Option<BufStream<TcpStream>>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: RaftNodeId, node: &ControllerNode) -> PeerClient {
        PeerClient { net: self.clone(), target, addr: node.addr.clone(), conn: None }
    }
}

type RpcError<E> = RPCError<RaftNodeId, ControllerNode, RaftError<RaftNodeId, E>>;

/// How an exchange failed.
enum Failure {
    Connect(io::Error),
    Exchange(io::Error),
}

impl PeerClient {
    /// Says which cluster (and voters) this controller is of; the peer
    /// answers or closes.
    async fn hello(&self, conn: &mut BufStream<TcpStream>) -> io::Result<()> {
        let hello = serde_json::to_vec(&*self.net.hello).map_err(io::Error::other)?;
        frame::write_frame(conn, RpcKind::Hello, &hello).await?;
        let answer = match frame::read_frame(conn).await? {
            Some((RpcKind::Response, body)) => serde_json::from_slice::<Result<(), String>>(&body),
            _ => return Err(io::Error::new(io::ErrorKind::InvalidData, "no answer to hello")),
        };
        match answer {
            Ok(Ok(())) => Ok(()),
            Ok(Err(refusal)) => {
                tracing::error!(peer = self.target, %refusal, "a controller refused this one");
                Err(io::Error::new(io::ErrorKind::PermissionDenied, refusal))
            }
            Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }

    async fn exchange(&mut self, kind: RpcKind, body: &[u8]) -> Result<Vec<u8>, Failure> {
        if self.conn.is_none() {
            let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.addr)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(Failure::Connect(e)),
                Err(_) => return Err(Failure::Connect(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))),
            };
            // Raft's small messages (votes, heartbeats) must not wait for Nagle.
            stream.set_nodelay(true).map_err(Failure::Connect)?;
            let mut conn = BufStream::new(stream);
            self.hello(&mut conn).await.map_err(Failure::Connect)?;
            self.conn = Some(conn);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(Failure::Connect(io::Error::other("no connection")));
        };
        frame::write_frame(conn, kind, body).await.map_err(Failure::Exchange)?;
        match frame::read_frame(conn).await.map_err(Failure::Exchange)? {
            Some((RpcKind::Response, body)) => Ok(body),
            Some((other, _)) => Err(Failure::Exchange(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a {other:?} frame where a response was due"),
            ))),
            None => Err(Failure::Exchange(io::Error::new(io::ErrorKind::UnexpectedEof, "the peer closed"))),
        }
    }

    /// Sends one RPC and decodes the peer's `Result`.
    async fn call<Req, Resp, E>(
        &mut self,
        kind: RpcKind,
        action: RPCTypes,
        req: &Req,
        ttl: Duration,
    ) -> Result<Resp, RpcError<E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let body = serde_json::to_vec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        if !frame::fits(body.len()) {
            return Err(RPCError::PayloadTooLarge(PayloadTooLarge::new_entries_hint(0)));
        }
        let out = match tokio::time::timeout(ttl, self.exchange(kind, &body)).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(failure)) => {
                self.conn = None;
                return Err(match failure {
                    Failure::Connect(e) => RPCError::Unreachable(Unreachable::new(&e)),
                    Failure::Exchange(e) => RPCError::Network(NetworkError::new(&e)),
                });
            }
            Err(_) => {
                self.conn = None;
                return Err(RPCError::Timeout(Timeout { action, id: self.net.id, target: self.target, timeout: ttl }));
            }
        };
        let answer: Result<Resp, RaftError<RaftNodeId, E>> = serde_json::from_slice(&out).map_err(|e| {
            self.conn = None;
            RPCError::Network(NetworkError::new(&e))
        })?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<RaftNodeId>, RpcError<openraft::error::Infallible>> {
        let entries = rpc.entries.len() as u64;
        // What the replica holds once this succeeds, and whether that is
        // everything the leader has committed.
        let upto = rpc.entries.last().map(|e| e.log_id).or(rpc.prev_log_id);
        let committed = rpc.leader_commit.map(|l| l.index);
        let res = self.call(RpcKind::AppendEntries, RPCTypes::AppendEntries, &rpc, option.hard_ttl()).await;
        match &res {
            Ok(AppendEntriesResponse::Success) => {
                let caught_up = upto.map(|l| l.index) >= committed;
                self.net.peers.answered(self.target, self.net.clock.now_ms(), caught_up);
            }
            Ok(AppendEntriesResponse::PartialSuccess(matched)) => {
                let caught_up = matched.map(|l| l.index) >= committed;
                self.net.peers.answered(self.target, self.net.clock.now_ms(), caught_up);
            }
            Err(RPCError::PayloadTooLarge(_)) => {
                return Err(RPCError::PayloadTooLarge(PayloadTooLarge::new_entries_hint((entries / 2).max(1))));
            }
            _ => {}
        }
        res
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<RaftNodeId>, RpcError<InstallSnapshotError>> {
        self.call(RpcKind::InstallSnapshot, RPCTypes::InstallSnapshot, &rpc, option.hard_ttl()).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<RaftNodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<RaftNodeId>, RpcError<openraft::error::Infallible>> {
        self.call(RpcKind::Vote, RPCTypes::Vote, &rpc, option.hard_ttl()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaskade_types::SystemClock;
    use openraft::raft::VoteRequest;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    async fn client(addr: String) -> PeerClient {
        client_of("c", addr).await
    }

    async fn client_of(cluster_id: &str, addr: String) -> PeerClient {
        let hello = Hello { cluster_id: cluster_id.into(), static_voters: None };
        let mut net = Network::new(1, hello, Arc::new(SystemClock), Arc::default());
        net.new_client(2, &ControllerNode::new(addr)).await
    }

    fn vote() -> VoteRequest<RaftNodeId> {
        VoteRequest::new(openraft::Vote::new(1, 1), None)
    }

    const TTL: Duration = Duration::from_millis(300);

    #[tokio::test]
    async fn failures_map_to_openraft_retry_semantics() {
        // Nobody listening: unreachable (openraft backs off).
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let closed = l.local_addr().expect("addr").to_string();
        drop(l);
        let res = client(closed).await.vote(vote(), RPCOption::new(TTL)).await;
        assert!(matches!(res, Err(RPCError::Unreachable(_))), "{res:?}");

        // A peer that never answers: a timeout after the TTL.
        let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let mut c = client(silent.local_addr().expect("addr").to_string()).await;
        let res = c.vote(vote(), RPCOption::new(TTL)).await;
        assert!(matches!(res, Err(RPCError::Timeout(_))), "{res:?}");
        assert!(c.conn.is_none(), "a timed-out connection is not reused");

        // A peer of another cluster refuses the hello: unreachable.
        let other = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let mut c = client_of("mine", other.local_addr().expect("addr").to_string()).await;
        let server = tokio::spawn(async move {
            let (mut s, _) = other.accept().await.expect("accept");
            frame::read_frame(&mut s).await.expect("hello").expect("a frame");
            let refusal = frame_bytes(RpcKind::Response, br#"{"Err":"another cluster"}"#).await;
            s.write_all(&refusal).await.expect("refuse");
        });
        let res = c.vote(vote(), RPCOption::new(Duration::from_secs(5))).await;
        assert!(matches!(res, Err(RPCError::Unreachable(_))), "{res:?}");
        server.await.expect("server");

        // A peer that answers with a request frame, or with garbage: a
        // network error, and the connection is dropped.
        for answer in [frame_bytes(RpcKind::Vote, b"{}").await, frame_bytes(RpcKind::Response, b"nonsense").await] {
            let peer = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let mut c = client(peer.local_addr().expect("addr").to_string()).await;
            let server = tokio::spawn(async move {
                let (mut s, _) = peer.accept().await.expect("accept");
                frame::read_frame(&mut s).await.expect("hello").expect("a frame");
                s.write_all(&frame_bytes(RpcKind::Response, br#"{"Ok":null}"#).await).await.expect("welcome");
                frame::read_frame(&mut s).await.expect("request").expect("a frame");
                s.write_all(&answer).await.expect("answer");
                // Hold the connection until the client is done with it.
                let _ = frame::read_frame(&mut s).await;
            });
            let res = c.vote(vote(), RPCOption::new(Duration::from_secs(5))).await;
            assert!(matches!(res, Err(RPCError::Network(_))), "{res:?}");
            assert!(c.conn.is_none());
            drop(c);
            server.await.expect("server");
        }
    }

    async fn frame_bytes(kind: RpcKind, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        frame::write_frame(&mut out, kind, body).await.expect("frame");
        out
    }
}
