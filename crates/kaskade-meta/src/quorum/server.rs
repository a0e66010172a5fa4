//! The server side of openraft's RPCs (and of proposals forwarded to the
//! leader, `forward`, brokers' calls, `brokers`, and broker-only nodes'
//! metadata fetches, `observer`): [`serve`] answers them on a given
//! listener (the CONTROLLER listener hands over its socket).
//!
//! One task per connection checks the client's cluster id and static voters
//! (its first frame, `Hello`), then reads request frames, hands each to the local Raft node and
//! writes the answer, in order. A frame that is too large, of an
//! unknown kind or not valid JSON for its kind closes the connection (a
//! controller that speaks another protocol is not answered), as does a peer
//! that stays silent longer than [`IDLE_TIMEOUT`] (leaders send heartbeats
//! far more often) or stalls inside a frame.

use std::io;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::BufStream;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::frame::{self, Hello, RpcKind};
use super::node::QuorumMetadataLog;
use super::types::TypeConfig;

/// How long a connection may stay without a request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long to wait after a failed accept (out of file descriptors, say)
/// before accepting again, so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves openraft's RPCs (and forwarded proposals, broker registrations
/// and heartbeats) on `listener` for the controller `log` to peers whose
/// hello agrees with `ours`, until the future is dropped (which also drops
/// every connection it serves).
pub async fn serve(listener: TcpListener, log: QuorumMetadataLog, ours: Hello) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let log = log.clone();
                    let ours = ours.clone();
                    connections.spawn(async move {
                        if let Err(e) = serve_connection(stream, log, &ours).await {
                            tracing::debug!(%peer, error = %e, "closing a controller connection");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "controller listener failed to accept");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> io::Result<T> {
    serde_json::from_slice(body).map_err(invalid)
}

fn encode<T: Serialize>(answer: &T) -> io::Result<Vec<u8>> {
    serde_json::to_vec(answer).map_err(invalid)
}

/// Reads the client's `Hello`; answers, and closes if it is refused.
async fn hello(conn: &mut BufStream<TcpStream>, ours: &Hello) -> io::Result<()> {
    let first = tokio::time::timeout(IDLE_TIMEOUT, frame::read_frame(conn))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no hello"))??;
    let Some((RpcKind::Hello, body)) = first else { return Err(invalid("the first frame is not a hello")) };
    let theirs: Hello = decode(&body)?;
    let answer: Result<(), String> = ours.refusal(&theirs).map_or(Ok(()), Err);
    frame::write_frame(conn, RpcKind::Response, &encode(&answer)?).await?;
    answer.map_err(|e| {
        tracing::error!(error = %e, "refusing a controller");
        invalid(e)
    })
}

async fn serve_connection(stream: TcpStream, log: QuorumMetadataLog, ours: &Hello) -> io::Result<()> {
    let raft = log.raft();
    stream.set_nodelay(true)?;
    let mut conn = BufStream::new(stream);
    hello(&mut conn, ours).await?;
    loop {
        let next = tokio::time::timeout(IDLE_TIMEOUT, frame::read_frame(&mut conn))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "idle controller connection"))?;
        let Some((kind, body)) = next? else { return Ok(()) };
        let answer = match kind {
            RpcKind::AppendEntries => encode(&raft.append_entries(decode(&body)?).await)?,
            RpcKind::Vote => encode(&raft.vote(decode(&body)?).await)?,
            RpcKind::InstallSnapshot => {
                let req: openraft::raft::InstallSnapshotRequest<TypeConfig> = decode(&body)?;
                encode(&raft.install_snapshot(req).await)?
            }
            RpcKind::Forward => encode(&super::forward::handle(raft, decode(&body)?).await)?,
            RpcKind::Broker => encode(&log.handle_broker_call(decode(&body)?).await)?,
            RpcKind::Fetch => encode(&log.answer_fetch(decode(&body)?).await)?,
            RpcKind::Status => encode(&log.answer_status())?,
            RpcKind::Response | RpcKind::Hello => return Err(invalid(format!("a {kind:?} frame sent as a request"))),
        };
        frame::write_frame(&mut conn, RpcKind::Response, &answer).await?;
    }
}
