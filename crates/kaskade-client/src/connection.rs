//! One TCP connection to one broker: length-prefixed frames, correlation
//! ids, pipelined requests, and the ApiVersions handshake that picks the
//! highest version both sides speak for every API.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Message, Request, StrBytes, VersionRange};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use kafka_protocol::ResponseError;

use crate::error::{error_name, ClientError, KafkaError, Result};

/// Largest response frame we accept (a fetch asks for at most 50 MiB).
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// Timeouts and identity of a connection.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    pub client_id: String,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            client_id: "kaskade-cli".to_string(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

type Reply = std::result::Result<Bytes, String>;

#[derive(Default)]
struct Pending {
    waiting: HashMap<i32, oneshot::Sender<Reply>>,
    /// Set once the read side died; every later request fails with it.
    closed: Option<String>,
}

/// A connection to one broker. Requests may be sent concurrently from
/// several tasks; responses are matched to requests by correlation id.
pub struct Connection {
    addr: String,
    config: ConnectionConfig,
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    pending: Arc<Mutex<Pending>>,
    next_correlation_id: AtomicI32,
    /// The broker's supported range per API key, from ApiVersions.
    broker_versions: HashMap<i16, VersionRange>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("addr", &self.addr).finish()
    }
}

impl Connection {
    /// Connect to `addr` (`host:port`; every address the host resolves to
    /// is tried) and negotiate API versions.
    pub async fn connect(addr: &str, config: ConnectionConfig) -> Result<Arc<Connection>> {
        let stream = tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| {
                ClientError::Timeout(format!("timed out connecting to {addr} after {:?}", config.connect_timeout))
            })?
            .map_err(|error| ClientError::Io { context: format!("could not connect to {addr}"), error })?;
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        let pending = Arc::new(Mutex::new(Pending::default()));
        let reader = tokio::spawn(read_loop(read, pending.clone()));
        let mut conn = Connection {
            addr: addr.to_string(),
            config,
            writer: tokio::sync::Mutex::new(write),
            pending,
            next_correlation_id: AtomicI32::new(1),
            broker_versions: HashMap::new(),
            reader,
        };
        // The handshake is part of connection setup: something that accepts
        // TCP but never answers (not a Kafka broker, or a hung one) must not
        // keep the caller waiting for the full request timeout.
        conn.broker_versions =
            tokio::time::timeout(conn.config.connect_timeout, conn.negotiate()).await.map_err(|_| {
                ClientError::Timeout(format!(
                    "timed out after {:?} waiting for {addr} to answer ApiVersions (is it a Kafka broker?)",
                    conn.config.connect_timeout
                ))
            })??;
        Ok(Arc::new(conn))
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether the broker closed the connection (or reading from it failed).
    pub fn is_closed(&self) -> bool {
        self.pending().closed.is_some()
    }

    /// The broker's advertised range for an API, if it advertises it.
    pub fn broker_range(&self, api_key: ApiKey) -> Option<VersionRange> {
        self.broker_versions.get(&(api_key as i16)).copied()
    }

    /// The highest version of `R` that both we and the broker speak.
    pub fn version<R: Request>(&self) -> Result<i16> {
        let ours = <R as Message>::VERSIONS;
        let key = ApiKey::try_from(R::KEY).map_err(|_| ClientError::Protocol(format!("unknown api key {}", R::KEY)))?;
        pick_version(key, ours, self.broker_versions.get(&R::KEY).copied())
            .map_err(|e| e.context(format_args!("broker {}", self.addr)))
    }

    /// Send `req` at `version` (any version: this does not check it
    /// against the broker's range, so tests can ask at exact versions) and
    /// wait for its decoded response.
    pub async fn send<R: Request>(&self, req: &R, version: i16) -> Result<R::Response> {
        let mut body = self.request(req, version).await?;
        let header_version = <R::Response as HeaderVersion>::header_version(version);
        ResponseHeader::decode(&mut body, header_version).map_err(|e| {
            ClientError::Protocol(format!("decoding {} response header from {}: {e:#}", api_name(R::KEY), self.addr))
        })?;
        R::Response::decode(&mut body, version).map_err(|e| {
            ClientError::Protocol(format!(
                "decoding {} v{version} response from {}: {e:#}",
                api_name(R::KEY),
                self.addr
            ))
        })
    }

    /// Send a request the broker does not answer (Produce with acks=0).
    pub async fn send_no_response<R: Request>(&self, req: &R, version: i16) -> Result<()> {
        self.send_raw::<R>(req, version, false).await.map(|_| ())
    }

    /// Send a request that is answered; its response frame from the
    /// response header on.
    async fn request<R: Request>(&self, req: &R, version: i16) -> Result<Bytes> {
        self.send_raw::<R>(req, version, true).await?.ok_or_else(|| {
            debug_assert!(false, "send_raw answers a request that expects a response");
            ClientError::Protocol(format!("no response to {} from {}", api_name(R::KEY), self.addr))
        })
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        // The lock guards plain map updates that cannot panic midway.
        self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Frame and write a request; with `expect_response`, wait for the
    /// response body (starting at the response header).
    async fn send_raw<R: Request>(&self, req: &R, version: i16, expect_response: bool) -> Result<Option<Bytes>> {
        let correlation_id = self.next_correlation_id.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(broker = %self.addr, api = %api_name(R::KEY), version, correlation_id, "request");
        let frame = encode_frame(req, version, correlation_id, &self.config.client_id)?;

        let rx = if expect_response {
            let (tx, rx) = oneshot::channel();
            let mut p = self.pending();
            if let Some(reason) = &p.closed {
                return Err(ClientError::Disconnected(format!("connection to {} is closed: {reason}", self.addr)));
            }
            p.waiting.insert(correlation_id, tx);
            Some(rx)
        } else {
            None
        };

        let write = async {
            let mut w = self.writer.lock().await;
            w.write_all(&frame).await?;
            w.flush().await
        };
        if let Err(error) = write.await {
            self.pending().waiting.remove(&correlation_id);
            return Err(ClientError::Io { context: format!("sending {} to {}", api_name(R::KEY), self.addr), error });
        }

        let Some(rx) = rx else { return Ok(None) };
        // A fetch may legitimately park for its max_wait on top of this.
        match tokio::time::timeout(self.config.request_timeout, rx).await {
            Err(_) => {
                self.pending().waiting.remove(&correlation_id);
                Err(ClientError::Timeout(format!(
                    "{} request to {} timed out after {:?}",
                    api_name(R::KEY),
                    self.addr,
                    self.config.request_timeout
                )))
            }
            Ok(Err(_)) => Err(ClientError::Disconnected(format!("connection to {} closed", self.addr))),
            Ok(Ok(Err(reason))) => {
                Err(ClientError::Disconnected(format!("connection to {} failed: {reason}", self.addr)))
            }
            Ok(Ok(Ok(body))) => Ok(Some(body)),
        }
    }

    /// ApiVersions handshake. We send our highest ApiVersions version; a
    /// broker that does not know it answers UNSUPPORTED_VERSION with a v0
    /// body listing its own range, and we retry at the highest common one.
    async fn negotiate(&self) -> Result<HashMap<i16, VersionRange>> {
        let ours = <ApiVersionsRequest as Message>::VERSIONS;
        let mut version = ours.max;
        for _ in 0..2 {
            let req = ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("kaskade-cli"))
                .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
            let mut body = self.request(&req, version).await?;
            ResponseHeader::decode(&mut body, 0).map_err(|e| {
                ClientError::Protocol(format!("decoding ApiVersions response header from {}: {e:#}", self.addr))
            })?;
            let resp = match ApiVersionsResponse::decode(&mut body.clone(), version) {
                Ok(r) if r.error_code != ResponseError::UnsupportedVersion.code() => r,
                _ => {
                    // UNSUPPORTED_VERSION: the body is a v0 response.
                    let r = ApiVersionsResponse::decode(&mut body, 0).map_err(|e| {
                        ClientError::Protocol(format!("decoding ApiVersions response from {}: {e:#}", self.addr))
                    })?;
                    let theirs = r
                        .api_keys
                        .iter()
                        .find(|k| k.api_key == ApiKey::ApiVersions as i16)
                        .map(|k| k.max_version)
                        .unwrap_or(0);
                    let next = theirs.min(ours.max);
                    if next == version || next < ours.min {
                        return Err(ClientError::Unsupported(format!(
                            "broker {} rejected ApiVersions v{version} ({})",
                            self.addr,
                            error_name(r.error_code)
                        )));
                    }
                    version = next;
                    continue;
                }
            };
            if let Some(e) =
                KafkaError::from_code(resp.error_code, None, format!("ApiVersions from broker {}", self.addr))
            {
                return Err(e.into());
            }
            return Ok(resp
                .api_keys
                .iter()
                .map(|k| (k.api_key, VersionRange { min: k.min_version, max: k.max_version }))
                .collect());
        }
        Err(ClientError::Unsupported(format!("broker {} did not accept any ApiVersions version", self.addr)))
    }
}

/// The highest version in both ranges, or an error naming both ranges.
pub fn pick_version(key: ApiKey, ours: VersionRange, theirs: Option<VersionRange>) -> Result<i16> {
    let Some(theirs) = theirs else {
        return Err(ClientError::Unsupported(format!("does not support {key:?} (it is not in its ApiVersions)")));
    };
    let common = ours.intersect(&theirs);
    if common.is_empty() {
        return Err(ClientError::Unsupported(format!(
            "supports {key:?} versions {}..={}, kaskade speaks {}..={}: no common version",
            theirs.min, theirs.max, ours.min, ours.max
        )));
    }
    Ok(common.max)
}

fn api_name(key: i16) -> String {
    match ApiKey::try_from(key) {
        Ok(k) => format!("{k:?}"),
        Err(_) => format!("api key {key}"),
    }
}

/// Size prefix + request header + body.
pub fn encode_frame<R: Request>(req: &R, version: i16, correlation_id: i32, client_id: &str) -> Result<Bytes> {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_string(client_id.to_string())));
    let encoding = |e: anyhow::Error| ClientError::Protocol(format!("encoding {} v{version}: {e:#}", api_name(R::KEY)));
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i32(0);
    header.encode(&mut buf, <R as HeaderVersion>::header_version(version)).map_err(encoding)?;
    req.encode(&mut buf, version).map_err(encoding)?;
    let len = buf.len() - 4;
    let len = i32::try_from(len).map_err(|_| ClientError::InvalidInput(format!("request too large ({len} bytes)")))?;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.freeze())
}

async fn read_loop(mut read: OwnedReadHalf, pending: Arc<Mutex<Pending>>) {
    let reason = loop {
        match read_frame(&mut read).await {
            Ok(body) => {
                if body.len() < 4 {
                    break "response frame shorter than its correlation id".to_string();
                }
                let correlation_id = (&body[..4]).get_i32();
                let tx =
                    pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner).waiting.remove(&correlation_id);
                match tx {
                    Some(tx) => {
                        let _ = tx.send(Ok(body));
                    }
                    // A request we gave up on (timed out); drop its answer.
                    None => tracing::debug!(correlation_id, "response for unknown correlation id"),
                }
            }
            Err(e) => break e,
        }
    };
    let mut p = pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    p.closed = Some(reason.clone());
    for (_, tx) in p.waiting.drain() {
        let _ = tx.send(Err(reason.clone()));
    }
}

async fn read_frame(read: &mut OwnedReadHalf) -> std::result::Result<Bytes, String> {
    let mut len = [0u8; 4];
    match read.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err("the broker closed the connection".to_string())
        }
        Err(e) => return Err(e.to_string()),
    }
    let len = i32::from_be_bytes(len);
    if len < 0 || len as usize > MAX_RESPONSE_BYTES {
        return Err(format!("invalid response frame size {len}"));
    }
    let mut body = vec![0u8; len as usize];
    read.read_exact(&mut body).await.map_err(|e| e.to_string())?;
    Ok(Bytes::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::MetadataRequest;
    use kafka_protocol::protocol::decode_request_header_from_buffer;

    #[test]
    fn picks_highest_common_version() {
        let ours = VersionRange { min: 0, max: 13 };
        assert_eq!(pick_version(ApiKey::Metadata, ours, Some(VersionRange { min: 0, max: 12 })).unwrap(), 12);
        assert_eq!(pick_version(ApiKey::Metadata, ours, Some(VersionRange { min: 4, max: 20 })).unwrap(), 13);
        let e = pick_version(ApiKey::Metadata, ours, Some(VersionRange { min: 14, max: 20 })).unwrap_err().to_string();
        assert!(e.contains("no common version"), "{e}");
        assert!(pick_version(ApiKey::Metadata, ours, None).is_err());
    }

    #[test]
    fn frame_has_size_prefix_and_header() {
        let req = MetadataRequest::default().with_topics(None).with_allow_auto_topic_creation(false);
        let frame = encode_frame(&req, 12, 42, "test-client").unwrap();
        let len = (&frame[..4]).get_i32() as usize;
        assert_eq!(len, frame.len() - 4);
        let mut rest = frame.slice(4..);
        let header = decode_request_header_from_buffer(&mut rest).unwrap();
        assert_eq!(header.request_api_key, ApiKey::Metadata as i16);
        assert_eq!(header.request_api_version, 12);
        assert_eq!(header.correlation_id, 42);
        assert_eq!(header.client_id.as_ref().map(|s| s.as_str()), Some("test-client"));
        let decoded = MetadataRequest::decode(&mut rest, 12).unwrap();
        assert_eq!(decoded, req);
    }

    /// A fake broker that knows ApiVersions only up to v3 (so the client
    /// must fall back) and answers two pipelined Metadata requests in
    /// reverse order (so responses must be matched by correlation id).
    #[tokio::test]
    async fn negotiates_down_and_matches_out_of_order_responses() {
        use kafka_protocol::messages::api_versions_response::ApiVersion;
        use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
        use kafka_protocol::messages::MetadataResponse;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let versions = vec![
                ApiVersion::default().with_api_key(ApiKey::ApiVersions as i16).with_min_version(0).with_max_version(3),
                ApiVersion::default().with_api_key(ApiKey::Metadata as i16).with_min_version(0).with_max_version(9),
            ];
            let mut held: Vec<(i32, i16, i32)> = Vec::new();
            loop {
                let mut len = [0u8; 4];
                if sock.read_exact(&mut len).await.is_err() {
                    return;
                }
                let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
                sock.read_exact(&mut body).await.unwrap();
                let mut body = Bytes::from(body);
                let h = decode_request_header_from_buffer(&mut body).unwrap();
                let mut out = BytesMut::new();
                if h.request_api_key == ApiKey::ApiVersions as i16 {
                    ResponseHeader::default().with_correlation_id(h.correlation_id).encode(&mut out, 0).unwrap();
                    if h.request_api_version > 3 {
                        ApiVersionsResponse::default()
                            .with_error_code(35)
                            .with_api_keys(versions.clone())
                            .encode(&mut out, 0)
                            .unwrap();
                    } else {
                        ApiVersionsResponse::default()
                            .with_api_keys(versions.clone())
                            .encode(&mut out, h.request_api_version)
                            .unwrap();
                    }
                } else {
                    assert_eq!(h.request_api_version, 9, "highest common Metadata version");
                    let req = MetadataRequest::decode(&mut body, 9).unwrap();
                    let node = req.topics.as_ref().map_or(0, |t| t.len() as i32);
                    held.push((h.correlation_id, h.request_api_version, node));
                    if held.len() < 2 {
                        continue;
                    }
                    // Answer the second request first.
                    for (corr, v, node) in held.drain(..).rev() {
                        let mut one = BytesMut::new();
                        ResponseHeader::default()
                            .with_correlation_id(corr)
                            .encode(&mut one, <MetadataResponse as HeaderVersion>::header_version(v))
                            .unwrap();
                        MetadataResponse::default()
                            .with_brokers(vec![MetadataResponseBroker::default()
                                .with_node_id(node.into())
                                .with_host(StrBytes::from_static_str("h"))
                                .with_port(1)])
                            .encode(&mut one, v)
                            .unwrap();
                        out.put_i32(one.len() as i32);
                        out.extend_from_slice(&one);
                    }
                    sock.write_all(&out).await.unwrap();
                    continue;
                }
                let mut framed = BytesMut::new();
                framed.put_i32(out.len() as i32);
                framed.extend_from_slice(&out);
                sock.write_all(&framed).await.unwrap();
            }
        });

        let conn = Connection::connect(&addr, ConnectionConfig::default()).await.unwrap();
        assert_eq!(conn.broker_range(ApiKey::Metadata), Some(VersionRange { min: 0, max: 9 }));
        let v = conn.version::<MetadataRequest>().unwrap();
        assert_eq!(v, 9);
        assert!(conn.version::<kafka_protocol::messages::ProduceRequest>().is_err());
        // Request A names no topic (node id 0 in the answer), B one topic (1).
        let a = MetadataRequest::default().with_topics(Some(vec![])).with_allow_auto_topic_creation(false);
        let b = MetadataRequest::default()
            .with_topics(Some(vec![Default::default()]))
            .with_allow_auto_topic_creation(false);
        let (ra, rb) = tokio::join!(conn.send(&a, v), conn.send(&b, v));
        assert_eq!(ra.unwrap().brokers[0].node_id.0, 0);
        assert_eq!(rb.unwrap().brokers[0].node_id.0, 1);
        drop(conn);
        server.abort();
    }

    fn quick() -> ConnectionConfig {
        ConnectionConfig {
            connect_timeout: Duration::from_millis(300),
            request_timeout: Duration::from_millis(300),
            ..ConnectionConfig::default()
        }
    }

    #[tokio::test]
    async fn a_refused_connection_is_an_io_error_naming_the_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let e = Connection::connect(&addr, quick()).await.unwrap_err();
        assert!(matches!(e, ClientError::Io { .. }), "{e:?}");
        assert!(e.to_string().starts_with(&format!("could not connect to {addr}: ")), "{e}");
    }

    #[tokio::test]
    async fn a_peer_that_never_answers_is_a_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        // Accepts and reads, never writes.
        let server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut sink = Vec::new();
            let _ = sock.read_to_end(&mut sink).await;
        });
        let e = Connection::connect(&addr, quick()).await.unwrap_err();
        assert!(matches!(e, ClientError::Timeout(_)), "{e:?}");
        assert!(e.to_string().contains("ApiVersions"), "{e}");
        server.abort();
    }

    #[tokio::test]
    async fn a_peer_that_closes_is_a_disconnection_and_garbage_is_a_protocol_error() {
        for garbage in [false, true] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            let server = tokio::spawn(async move {
                let (mut sock, _) = listener.accept().await.unwrap();
                let mut len = [0u8; 4];
                sock.read_exact(&mut len).await.unwrap();
                let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
                sock.read_exact(&mut body).await.unwrap();
                if garbage {
                    // The request's correlation id, then bytes that are no
                    // ApiVersions response.
                    let mut out = BytesMut::new();
                    out.put_i32(6);
                    out.extend_from_slice(&body[4..8]);
                    out.extend_from_slice(&[0xff, 0xff]);
                    sock.write_all(&out).await.unwrap();
                }
            });
            let e = Connection::connect(&addr, quick()).await.unwrap_err();
            if garbage {
                assert!(matches!(e, ClientError::Protocol(_)), "{e:?}");
            } else {
                assert!(matches!(e, ClientError::Disconnected(_)), "{e:?}");
                assert!(e.to_string().contains("closed"), "{e}");
            }
            server.abort();
        }
    }
}
