//! The controllers' own frame for openraft's RPCs (DESIGN.md allows Raft's
//! own frames on the CONTROLLER listener): `[u32 length][u8 kind][JSON]`,
//! big endian, the length counting the kind and the JSON.
//!
//! A connection opens with a [`RpcKind::Hello`] frame carrying the
//! client's [`Hello`] (JSON), answered with `Result<(), String>`: a
//! controller of another cluster (as KRaft answers INCONSISTENT_CLUSTER_ID)
//! or with another static voter set is refused and the connection closed,
//! so two clusters never mix their logs and two bootstraps with different
//! voters never meet (openraft would take their first membership entries,
//! which share a log id, for the same entry). After it, a request's kind names the RPC; a response has kind
//! [`RpcKind::Response`] and its JSON is `Result<response, RaftError>`. Frames are bounded by
//! [`MAX_FRAME`] before anything is allocated, and an empty or oversized
//! frame, an unknown kind or a short read is an error: the connection is
//! closed, never trusted further.

use std::collections::BTreeSet;
use std::io;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest frame either side accepts (a snapshot chunk or a batch of
/// entries; openraft splits entries when a frame would be larger).
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RpcKind {
    Response = 0,
    AppendEntries = 1,
    Vote = 2,
    InstallSnapshot = 3,
    Hello = 4,
    // 5 carried proposals a controller that did not lead forwarded to the
    // leader (every change now goes to the active controller in Kafka's
    // requests: AlterPartition, AllocateProducerIds, an Envelope...); 6 carried brokers' registrations and heartbeats, which are Kafka's
    // BrokerRegistration and BrokerHeartbeat now; 7 carried broker-only
    // nodes' fetches of the whole image, which are Kafka's Fetch and
    // FetchSnapshot of `__cluster_metadata` now (`metadata_serve`); 8 carried
    // a broker-only node's ask for DescribeQuorum's view, which is Kafka's
    // DescribeQuorum on the controller listener now (`describe_quorum`): all
    // unknown kinds.
}

impl RpcKind {
    fn from_byte(b: u8) -> Option<RpcKind> {
        match b {
            0 => Some(RpcKind::Response),
            1 => Some(RpcKind::AppendEntries),
            2 => Some(RpcKind::Vote),
            3 => Some(RpcKind::InstallSnapshot),
            4 => Some(RpcKind::Hello),
            _ => None,
        }
    }
}

/// What a controller says of itself when it connects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub cluster_id: String,
    /// `controller.quorum.voters` of a static quorum (checked when both
    /// sides have one); `None` for a dynamic quorum.
    pub static_voters: Option<BTreeSet<i32>>,
}

impl Hello {
    /// Why a controller saying `theirs` may not talk to this one, if it may not.
    pub fn refusal(&self, theirs: &Hello) -> Option<String> {
        if theirs.cluster_id != self.cluster_id {
            return Some(format!(
                "this controller belongs to cluster {:?}, not {:?}",
                self.cluster_id, theirs.cluster_id
            ));
        }
        match (&self.static_voters, &theirs.static_voters) {
            (Some(ours), Some(other)) if ours != other => {
                Some(format!("controller.quorum.voters differ: ids {ours:?} here, {other:?} there"))
            }
            _ => None,
        }
    }
}

/// How long a connect to another controller may take.
#[cfg(test)]
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Connects to the controller at `addr` and exchanges hellos: a
/// connection the controller accepted, or why not (nothing else was sent).
/// Tests only: controllers connect in `network`, observers speak Kafka's
/// protocol.
#[cfg(test)]
pub async fn connect(addr: &str, hello: &Hello) -> io::Result<tokio::io::BufStream<tokio::net::TcpStream>> {
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
        Ok(s) => s?,
        Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
    };
    stream.set_nodelay(true)?;
    let mut conn = tokio::io::BufStream::new(stream);
    write_frame(&mut conn, RpcKind::Hello, &serde_json::to_vec(hello).map_err(io::Error::other)?).await?;
    match read_frame(&mut conn).await? {
        Some((RpcKind::Response, body)) => match serde_json::from_slice::<Result<(), String>>(&body) {
            Ok(Ok(())) => Ok(conn),
            Ok(Err(refusal)) => Err(io::Error::new(io::ErrorKind::PermissionDenied, refusal)),
            Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        },
        _ => Err(io::Error::new(io::ErrorKind::InvalidData, "no answer to hello")),
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Whether a body of `len` bytes fits in a frame.
pub fn fits(len: usize) -> bool {
    len < MAX_FRAME
}

/// Writes one frame (and flushes it).
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, kind: RpcKind, body: &[u8]) -> io::Result<()> {
    if !fits(body.len()) {
        return Err(invalid(format!("a {} byte frame is over the {MAX_FRAME} byte limit", body.len())));
    }
    let mut buf = Vec::with_capacity(5 + body.len());
    buf.extend_from_slice(&((body.len() + 1) as u32).to_be_bytes());
    buf.push(kind as u8);
    buf.extend_from_slice(body);
    w.write_all(&buf).await?;
    w.flush().await
}

/// Reads one frame; `None` if the peer closed the connection between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Option<(RpcKind, Vec<u8>)>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 || len > MAX_FRAME {
        return Err(invalid(format!("frame length {len} outside 1..={MAX_FRAME}")));
    }
    let mut kind = [0u8; 1];
    r.read_exact(&mut kind).await?;
    let kind = RpcKind::from_byte(kind[0]).ok_or_else(|| invalid(format!("unknown frame kind {}", kind[0])))?;
    let mut body = vec![0u8; len - 1];
    r.read_exact(&mut body).await?;
    Ok(Some((kind, body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_bad_ones_are_errors() {
        let mut buf = Vec::new();
        write_frame(&mut buf, RpcKind::Vote, b"{}").await.expect("write");
        let (kind, body) = read_frame(&mut &buf[..]).await.expect("read").expect("a frame");
        assert_eq!((kind, body.as_slice()), (RpcKind::Vote, &b"{}"[..]));
        assert!(read_frame(&mut &[][..]).await.expect("clean end").is_none());
        // Oversized, empty, unknown kind, short body.
        let huge = ((MAX_FRAME + 1) as u32).to_be_bytes();
        assert!(read_frame(&mut &huge[..]).await.is_err());
        assert!(read_frame(&mut &[0u8, 0, 0, 0][..]).await.is_err());
        assert!(read_frame(&mut &[0u8, 0, 0, 2, 9, b'x'][..]).await.is_err());
        assert!(read_frame(&mut &[0u8, 0, 0, 9, 1, b'x'][..]).await.is_err());
        // The retired kinds (5 forwarded proposals, 6, 7, 8) are unknown.
        for retired in [5u8, 6, 7, 8] {
            assert!(read_frame(&mut &[0u8, 0, 0, 3, retired, b'{', b'}'][..]).await.is_err(), "kind {retired}");
        }
    }
}
