//! Kafka's request and response frames (`[i32 size][header][body]`) for the
//! two Kafka APIs the quorum itself speaks, Fetch and FetchSnapshot of
//! `__cluster_metadata`: the controller reads requests and writes answers
//! (`metadata_serve`), an observer writes requests and reads answers
//! (`metadata_client`).
//!
//! Invariants: a frame's size is checked against a bound before anything is
//! allocated, and every decode error is an `io::Error` of kind
//! `InvalidData` (the caller closes the connection), never a panic.

use std::io;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest request a controller reads (Fetch and FetchSnapshot
/// requests are a few hundred bytes).
pub const MAX_REQUEST: usize = 1024 * 1024;
/// The largest answer an observer reads (a Fetch answer's records are
/// bounded by its `max_bytes`, a snapshot chunk by its own).
pub const MAX_RESPONSE: usize = 64 * 1024 * 1024;

pub(crate) fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Reads one size-prefixed frame of at most `max` bytes; `None` when the
/// peer closed between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> io::Result<Option<Bytes>> {
    let mut size = [0u8; 4];
    match r.read_exact(&mut size).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let size = i32::from_be_bytes(size);
    let len = usize::try_from(size).map_err(|_| invalid(format!("negative frame size {size}")))?;
    if len < 4 || len > max {
        return Err(invalid(format!("frame size {len} outside 4..={max}")));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    Ok(Some(Bytes::from(body)))
}

/// Writes `bytes` as one size-prefixed frame and flushes.
async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> io::Result<()> {
    let size = i32::try_from(bytes.len()).map_err(|_| invalid("a frame over 2 GiB"))?;
    w.write_all(&size.to_be_bytes()).await?;
    w.write_all(bytes).await?;
    w.flush().await
}

/// A request's API key and version, read without consuming them.
pub fn key_and_version(frame: &Bytes) -> io::Result<(i16, i16)> {
    if frame.len() < 4 {
        return Err(invalid("a request shorter than its header"));
    }
    let mut head = &frame[..4];
    Ok((head.get_i16(), head.get_i16()))
}

/// Decodes a request of type `R` at `version` (header, then body; nothing
/// may be left over).
pub fn decode_request<R: Request>(mut frame: Bytes, version: i16) -> io::Result<(RequestHeader, R)> {
    let header = RequestHeader::decode(&mut frame, R::header_version(version)).map_err(invalid)?;
    let body = R::decode(&mut frame, version).map_err(invalid)?;
    if frame.has_remaining() {
        return Err(invalid(format!("{} bytes after a request", frame.remaining())));
    }
    Ok((header, body))
}

/// Writes `response` to the request `correlation_id` at `version`.
pub async fn write_response<W, T>(w: &mut W, correlation_id: i32, version: i16, response: &T) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
    T: Encodable + HeaderVersion,
{
    let mut buf = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, T::header_version(version))
        .map_err(invalid)?;
    response.encode(&mut buf, version).map_err(invalid)?;
    write_frame(w, &buf).await
}

/// Writes `request` at `version` as request `correlation_id` from `client_id`.
pub async fn write_request<W, R>(
    w: &mut W,
    correlation_id: i32,
    client_id: &str,
    version: i16,
    request: &R,
) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
    R: Request,
{
    let mut buf = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_string(client_id.to_string())))
        .encode(&mut buf, R::header_version(version))
        .map_err(invalid)?;
    request.encode(&mut buf, version).map_err(invalid)?;
    write_frame(w, &buf).await
}

/// Reads the answer to request `correlation_id` of type `R` at `version`.
pub async fn read_response<Rd, R>(r: &mut Rd, correlation_id: i32, version: i16) -> io::Result<R::Response>
where
    Rd: AsyncRead + Unpin,
    R: Request,
{
    let Some(mut frame) = read_frame(r, MAX_RESPONSE).await? else {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed before the answer"));
    };
    let header =
        ResponseHeader::decode(&mut frame, <R::Response as HeaderVersion>::header_version(version)).map_err(invalid)?;
    if header.correlation_id != correlation_id {
        return Err(invalid(format!("answer {} to request {correlation_id}", header.correlation_id)));
    }
    <R::Response as Decodable>::decode(&mut frame, version).map_err(invalid)
}
