//! Forwarding a proposal to the active controller: a controller that is not
//! the Raft leader sends the records it decided to the leader over the
//! controllers' own connection (a [`RpcKind::Forward`] frame after the
//! usual `Hello`), and the leader proposes them through `client_write`.
//!
//! Why the quorum forwards and not the broker: every metadata change of a
//! node goes through the one `MetadataLog::append` seam (topic admin,
//! dynamic configs, SCRAM credentials, producer-id blocks, registrations),
//! so forwarding there covers them all at once, and the decision stays
//! optimistic as on one node: the leader's state machine refuses a
//! proposal whose `based_on` is no longer the image's version, and the
//! forwarder decides again once its own image has caught up. Kafka forwards
//! the Kafka request instead (KIP-590's Envelope); the observable outcome
//! (any broker accepts an admin change, the active controller decides it)
//! is the same.
//!
//! The answer is `Result<ApplyOutcome, ForwardRefusal>`. A refused or
//! failed connect, and a leader that says it no longer leads, are safe to
//! retry (the proposal was not made); a connection lost after the frame was
//! sent is not (the proposal may have landed): `MetaError::Unconfirmed`,
//! answered REQUEST_TIMED_OUT as Kafka answers a forwarded request whose
//! answer did not come back.

use std::io;
use std::time::Duration;

use kaskade_types::NodeId;
use serde::{Deserialize, Serialize};
use tokio::io::BufStream;
use tokio::net::TcpStream;

use super::frame::{self, Hello, RpcKind};
use super::types::{to_node_id, ApplyOutcome, Proposal, Raft};
use openraft::error::{ClientWriteError, RaftError};

/// Why the leader did not take a forwarded proposal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForwardRefusal {
    /// The receiver is not (or no longer) the leader; `leader` is the one it knows.
    NotLeader {
        #[serde(with = "super::types::wire_node_id")]
        leader: Option<NodeId>,
    },
    /// Proposing failed (the Raft node stopped, storage failed).
    Failed(String),
}

/// How a forward ended, as the forwarding controller sees it.
#[derive(Debug)]
pub enum ForwardError {
    /// Nothing was sent (no connection, or the hello was refused): retry.
    Unreachable(io::Error),
    /// The leader refused it: retry at `leader` if `NotLeader`.
    Refused(ForwardRefusal),
    /// The connection broke after the proposal was sent, or the answer was
    /// not valid: the proposal may or may not have landed.
    Lost(io::Error),
}

/// The kinds of `records` ("Partition,TopicConfig"), for the warning a
/// forward logs: every change Kafka makes with its own request is sent so
/// (AlterPartition, AllocateProducerIds, CreateTopics, an Envelope), and a
/// forward that still happens names the caller left to move.
pub fn kinds(records: &[crate::MetadataRecord]) -> String {
    let kind = |r: &crate::MetadataRecord| {
        let debug = format!("{r:?}");
        debug.split(|c: char| !c.is_alphanumeric()).next().unwrap_or_default().to_string()
    };
    records.iter().map(kind).collect::<Vec<_>>().join(",")
}

/// How long a connect to the leader may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Sends `proposal` to the controller at `addr` and returns what applying it did.
pub async fn forward(addr: &str, hello: &Hello, proposal: &Proposal) -> Result<ApplyOutcome, ForwardError> {
    let mut conn = connect(addr, hello).await.map_err(ForwardError::Unreachable)?;
    let body = serde_json::to_vec(proposal).map_err(|e| ForwardError::Unreachable(io::Error::other(e)))?;
    if !frame::fits(body.len()) {
        return Err(ForwardError::Refused(ForwardRefusal::Failed(format!(
            "a {} byte metadata change is over the controllers' frame limit",
            body.len()
        ))));
    }
    frame::write_frame(&mut conn, RpcKind::Forward, &body).await.map_err(ForwardError::Lost)?;
    let answer = match frame::read_frame(&mut conn).await.map_err(ForwardError::Lost)? {
        Some((RpcKind::Response, body)) => body,
        _ => return Err(ForwardError::Lost(io::Error::new(io::ErrorKind::InvalidData, "no answer to a forward"))),
    };
    let answer: Result<ApplyOutcome, ForwardRefusal> = serde_json::from_slice(&answer)
        .map_err(|e| ForwardError::Lost(io::Error::new(io::ErrorKind::InvalidData, e)))?;
    answer.map_err(ForwardError::Refused)
}

/// Connects to the controller at `addr` and exchanges hellos: a
/// connection the controller accepted, or why not (nothing was sent).
pub async fn connect(addr: &str, hello: &Hello) -> io::Result<BufStream<TcpStream>> {
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(s) => s?,
        Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
    };
    stream.set_nodelay(true)?;
    let mut conn = BufStream::new(stream);
    frame::write_frame(&mut conn, RpcKind::Hello, &serde_json::to_vec(hello).map_err(io::Error::other)?).await?;
    match frame::read_frame(&mut conn).await? {
        Some((RpcKind::Response, body)) => match serde_json::from_slice::<Result<(), String>>(&body) {
            Ok(Ok(())) => Ok(conn),
            Ok(Err(refusal)) => Err(io::Error::new(io::ErrorKind::PermissionDenied, refusal)),
            Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        },
        _ => Err(io::Error::new(io::ErrorKind::InvalidData, "no answer to hello")),
    }
}

/// The leader's side: proposes a forwarded proposal (the state machine
/// checks its `based_on` at apply time, as for a local one).
pub async fn handle(raft: &Raft, proposal: Proposal) -> Result<ApplyOutcome, ForwardRefusal> {
    match raft.client_write(proposal).await {
        Ok(response) => Ok(response.data),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
            Err(ForwardRefusal::NotLeader { leader: f.leader_id.map(to_node_id) })
        }
        Err(e) => Err(ForwardRefusal::Failed(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;
    use crate::MetadataVersion;

    /// A leader that answers the hello, then closes the connection once it
    /// has read `frames` frames in all.
    async fn leader_closing_after(frames: usize) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.expect("accept");
            let mut conn = BufStream::new(stream);
            for n in 0..frames {
                if frame::read_frame(&mut conn).await.expect("read").is_none() {
                    return;
                }
                if n == 0 {
                    let ok = serde_json::to_vec(&Ok::<(), String>(())).expect("json");
                    frame::write_frame(&mut conn, RpcKind::Response, &ok).await.expect("hello answered");
                }
            }
        });
        addr
    }

    fn hello() -> Hello {
        Hello { cluster_id: "c".into(), static_voters: None }
    }

    fn proposal() -> Proposal {
        Proposal { based_on: MetadataVersion::default(), records: Vec::new() }
    }

    #[tokio::test]
    async fn a_connection_lost_after_the_proposal_was_sent_is_not_retriable() {
        let addr = leader_closing_after(2).await;
        let sent = forward(&addr, &hello(), &proposal()).await;
        assert!(matches!(sent, Err(ForwardError::Lost(_))), "{sent:?}");
    }

    #[tokio::test]
    async fn a_connection_lost_before_the_proposal_was_sent_is_retriable() {
        let addr = leader_closing_after(0).await;
        let sent = forward(&addr, &hello(), &proposal()).await;
        assert!(matches!(sent, Err(ForwardError::Unreachable(_))), "{sent:?}");
    }
}
