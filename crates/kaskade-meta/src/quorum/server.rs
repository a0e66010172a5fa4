//! The server side of openraft's RPCs (and of broker-only nodes' Kafka
//! Fetch / FetchSnapshot of `__cluster_metadata`, `metadata_serve`): [`serve`] answers them on a given
//! listener (the CONTROLLER listener hands over its socket).
//!
//! One task per connection checks the client's cluster id and static voters
//! (its first frame, `Hello`), then reads request frames, hands each to the local Raft node and
//! writes the answer, in order. A frame that is too large, of an
//! unknown kind or not valid JSON for its kind closes the connection (a
//! controller that speaks another protocol is not answered), as does a peer
//! that stays silent longer than [`IDLE_TIMEOUT`] (leaders send heartbeats
//! far more often) or stalls inside a frame.
//!
//! Kafka's protocol on the same listener: a connection's first frame tells
//! the two apart without consuming it ([`sniff`]). A frame of ours starts
//! with its kind, and the first is always a `Hello` (4); a Kafka request
//! starts with its API key as a big-endian i16, whose first byte is 0 for
//! every key Kafka has (< 256). A Kafka connection whose first request is a
//! Fetch or FetchSnapshot (the next byte, the key's low one) is an
//! observer following the metadata log: served here (`metadata_serve`).
//! Any other Kafka connection is handed, unread, to
//! the [`KafkaConnections`] channel the node gave (its broker layer answers
//! the controller's Kafka APIs: brokers' BrokerRegistration and
//! BrokerHeartbeat, `kafka-metadata-quorum --bootstrap-controller`), or closed when there is none or it is full.

use std::io;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::BufStream;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::frame::{self, Hello, RpcKind};
use super::node::QuorumMetadataLog;
use super::types::TypeConfig;

/// How long a connection may stay without a request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long to wait after a failed accept (out of file descriptors, say)
/// before accepting again, so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Where connections speaking Kafka's protocol go, unread.
pub type KafkaConnections = mpsc::Sender<(TcpStream, std::net::SocketAddr)>;

/// The protocol a connection speaks, from its first frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// The controllers' own frames (`frame`).
    Quorum,
    /// Kafka's request frames.
    Kafka,
    /// Kafka's Fetch / FetchSnapshot of the metadata log (observers).
    MetadataFetch,
}

/// How long a connection may take to send the first 6 bytes of its first
/// frame before it is closed.
const SNIFF_TIMEOUT: Duration = IDLE_TIMEOUT;

/// Between two looks at a first frame that arrived in pieces.
const SNIFF_PAUSE: Duration = Duration::from_millis(5);

/// The protocol of a first frame's first 6 bytes (length, then the first
/// two body bytes): 0 first is a Kafka API key's high byte, never a kind of
/// ours that opens a connection; the next byte is then the key's low byte.
pub fn protocol_of(head: &[u8; 6]) -> Protocol {
    if head[4] != 0 {
        Protocol::Quorum
    } else if super::metadata_serve::serves(i16::from(head[5])) {
        Protocol::MetadataFetch
    } else {
        Protocol::Kafka
    }
}

/// Looks at the first 6 bytes of `stream` without consuming them (every
/// first frame has them: a `Hello` and a Kafka request header are longer).
async fn sniff(stream: &TcpStream) -> io::Result<Protocol> {
    let look = async {
        let mut head = [0u8; 6];
        loop {
            let n = stream.peek(&mut head).await?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed before its first frame"));
            }
            if n == head.len() {
                return Ok(protocol_of(&head));
            }
            if n == 5 && head[4] != 0 {
                // Ours (its kind is not 0) even if its body is empty.
                return Ok(Protocol::Quorum);
            }
            if n >= 4
                && !(1..=frame::MAX_FRAME)
                    .contains(&(u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize))
            {
                // No first byte will follow a length no frame has: our
                // reader refuses it and closes.
                return Ok(Protocol::Quorum);
            }
            // peek returns at once while the bytes seen are still there.
            tokio::time::sleep(SNIFF_PAUSE).await;
        }
    };
    tokio::time::timeout(SNIFF_TIMEOUT, look)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no first frame"))?
}

/// Serves openraft's RPCs (and observers' fetches) on `listener` for the controller `log` to peers whose
/// hello agrees with `ours`, and hands connections speaking Kafka's
/// protocol to `kafka`, until the future is dropped (which also drops
/// every connection it serves).
pub async fn serve(listener: TcpListener, log: QuorumMetadataLog, ours: Hello, kafka: Option<KafkaConnections>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let log = log.clone();
                    let ours = ours.clone();
                    let kafka = kafka.clone();
                    connections.spawn(async move {
                        match sniff(&stream).await {
                            Ok(Protocol::Quorum) => {
                                if let Err(e) = serve_connection(stream, log, &ours).await {
                                    tracing::debug!(%peer, error = %e, "closing a controller connection");
                                }
                            }
                            Ok(Protocol::MetadataFetch) => {
                                if let Err(e) = super::metadata_serve::serve_connection(stream, log, &ours).await {
                                    tracing::debug!(%peer, error = %e, "closing a metadata fetch connection");
                                }
                            }
                            Ok(Protocol::Kafka) => match kafka {
                                Some(to) => {
                                    if to.try_send((stream, peer)).is_err() {
                                        tracing::warn!(%peer, "no room for a Kafka connection on the controller listener: closed");
                                    }
                                }
                                None => tracing::debug!(%peer, "a Kafka connection on the controller listener: closed"),
                            },
                            Err(e) => tracing::debug!(%peer, error = %e, "closing a controller connection"),
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
            RpcKind::Response | RpcKind::Hello => return Err(invalid(format!("a {kind:?} frame sent as a request"))),
        };
        frame::write_frame(&mut conn, RpcKind::Response, &answer).await?;
    }
}
