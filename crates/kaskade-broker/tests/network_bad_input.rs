//! The network layer under bad input, driven with raw TCP: every bad input
//! closes only its own connection, and a fresh connection is still answered.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse, RequestHeader, RequestKind,
    ResponseKind, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kaskade_broker::api::handler;
use kaskade_broker::network::{self, ShutdownTrigger};
use kaskade_broker::router::{HandlerFuture, Route, Router};
use kaskade_broker::{Broker, BrokerConfig, BrokerError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

const WAIT: Duration = Duration::from_secs(10);

struct Server {
    addr: SocketAddr,
    trigger: ShutdownTrigger,
    task: JoinHandle<()>,
}

/// Starts the network layer on 127.0.0.1:0 with `routes`.
async fn start_with(routes: &[Route], overrides: &[(&str, &str)]) -> Server {
    let mut pairs = vec![("listeners", "PLAINTEXT://127.0.0.1:0")];
    pairs.extend_from_slice(overrides);
    let config = BrokerConfig::from_overrides(pairs).unwrap();
    let broker = Arc::new(Broker::for_tests(config, Router::new(routes)));
    let listeners = network::bind_config(&broker.config).await.unwrap();
    let addr = listeners[0].local_addr();
    let (trigger, signal) = network::shutdown_channel();
    let task = tokio::spawn(network::serve(broker, listeners, signal));
    Server { addr, trigger, task }
}

/// Only ApiVersions, as the broker routes today.
async fn start() -> Server {
    start_with(kaskade_broker::router::routes(), &[]).await
}

/// ApiVersions plus a test Metadata handler (v0-v12): it sleeps for the
/// number of milliseconds named by the first topic (`sleep-<ms>`), panics
/// for a topic named `panic`, and answers with the correlation id as the
/// throttle time so responses can be matched.
fn test_routes() -> Vec<Route> {
    // The real Metadata handler is replaced by one that echoes what the
    // guarded decoder produced.
    let mut routes = kaskade_broker::router::routes().to_vec();
    routes.retain(|r| r.key != ApiKey::Metadata);
    routes.push(Route::new(ApiKey::Metadata, 0, 12, test_metadata));
    routes
}

fn test_metadata(_: Arc<Broker>, header: RequestHeader, body: RequestKind) -> HandlerFuture {
    handler(async move {
        let RequestKind::Metadata(request) = body else {
            return Err(BrokerError::internal("not metadata"));
        };
        let first = request
            .topics
            .unwrap_or_default()
            .into_iter()
            .next()
            .and_then(|t| t.name)
            .map(|n| n.0.to_string())
            .unwrap_or_default();
        if first == "panic" {
            panic!("test handler panics on purpose");
        }
        if let Some(ms) = first.strip_prefix("sleep-") {
            tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
        }
        Ok(ResponseKind::Metadata(MetadataResponse::default().with_throttle_time_ms(header.correlation_id)))
    })
}

fn frame(key: ApiKey, version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut buf = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("bad-input-test")))
        .encode(&mut buf, key.request_header_version(version))
        .unwrap();
    buf.extend_from_slice(body);
    let mut out = (buf.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&buf);
    out
}

fn api_versions(version: i16, correlation_id: i32) -> Vec<u8> {
    let request = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("raw-test"))
        .with_client_software_version(StrBytes::from_static_str("1.0"));
    let mut body = BytesMut::new();
    if (0..=4).contains(&version) {
        request.encode(&mut body, version).unwrap();
    }
    frame(ApiKey::ApiVersions, version, correlation_id, &body)
}

fn metadata(version: i16, correlation_id: i32, topic: &str) -> Vec<u8> {
    let request = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(topic.to_string()))))
    ]));
    let mut body = BytesMut::new();
    request.encode(&mut body, version).unwrap();
    frame(ApiKey::Metadata, version, correlation_id, &body)
}

async fn connect(server: &Server) -> TcpStream {
    tokio::time::timeout(WAIT, TcpStream::connect(server.addr)).await.expect("connect timed out").unwrap()
}

/// Reads one response frame: (correlation id, the rest after it).
async fn read_response(stream: &mut TcpStream) -> (i32, Bytes) {
    let mut size = [0u8; 4];
    tokio::time::timeout(WAIT, stream.read_exact(&mut size))
        .await
        .expect("no response in time")
        .expect("connection closed instead of answering");
    let size = i32::from_be_bytes(size);
    assert!((4..10_000_000).contains(&size), "response size {size}");
    let mut buf = vec![0u8; size as usize];
    tokio::time::timeout(WAIT, stream.read_exact(&mut buf)).await.unwrap().unwrap();
    let id = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    (id, Bytes::from(buf).slice(4..))
}

/// The server closes the connection (EOF or reset) without answering.
async fn assert_closed(stream: &mut TcpStream) {
    let mut buf = [0u8; 64];
    match tokio::time::timeout(WAIT, stream.read(&mut buf)).await {
        Err(_) => panic!("the connection was not closed"),
        Ok(Ok(0)) | Ok(Err(_)) => {}
        Ok(Ok(n)) => panic!("expected a close, got {n} bytes: {:?}", &buf[..n]),
    }
}

fn decode_api_versions(body: Bytes, version: i16) -> ApiVersionsResponse {
    let mut body = body;
    ApiVersionsResponse::decode(&mut body, version).unwrap()
}

/// A fresh connection gets a valid ApiVersions v3 answer.
async fn assert_healthy(server: &Server) {
    let mut s = connect(server).await;
    s.write_all(&api_versions(3, 77)).await.unwrap();
    let (id, body) = read_response(&mut s).await;
    assert_eq!(id, 77);
    let r = decode_api_versions(body, 3);
    assert_eq!(r.error_code, 0);
    assert!(r.api_keys.iter().any(|k| k.api_key == 18 && k.max_version == 4));
}

#[tokio::test]
async fn answers_api_versions_at_every_version() {
    let server = start().await;
    let mut s = connect(&server).await;
    for version in 0..=4 {
        s.write_all(&api_versions(version, 100 + version as i32)).await.unwrap();
        let (id, body) = read_response(&mut s).await;
        assert_eq!(id, 100 + version as i32);
        let r = decode_api_versions(body, version);
        assert_eq!(r.error_code, 0, "v{version}");
        assert_eq!(r.api_keys.len(), kaskade_broker::router::routes().len());
        if version >= 3 {
            assert!(r.finalized_features_epoch >= 0);
            assert!(r.finalized_features.iter().any(|f| f.name.as_str() == "metadata.version"));
        }
    }
}

#[tokio::test]
async fn garbage_bytes_close_the_connection() {
    let server = start().await;
    let mut s = connect(&server).await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    assert_closed(&mut s).await;
    // Small garbage that parses as a frame with a nonsense header.
    let mut s = connect(&server).await;
    s.write_all(&[0, 0, 0, 6, 0xde, 0xad, 0xbe, 0xef, 0xff, 0xff]).await.unwrap();
    assert_closed(&mut s).await;
    assert_healthy(&server).await;
}

#[tokio::test]
async fn a_frame_size_of_2_pow_31_minus_1_is_refused_before_the_body() {
    let server = start().await;
    let mut s = connect(&server).await;
    // Only the size is sent: the server must not wait for 2 GiB.
    s.write_all(&i32::MAX.to_be_bytes()).await.unwrap();
    assert_closed(&mut s).await;
    assert_healthy(&server).await;
}

#[tokio::test]
async fn a_frame_over_socket_request_max_bytes_is_refused() {
    let server = start_with(kaskade_broker::router::routes(), &[("socket.request.max.bytes", "1000")]).await;
    let mut s = connect(&server).await;
    s.write_all(&1001i32.to_be_bytes()).await.unwrap();
    assert_closed(&mut s).await;
    // A frame of exactly the limit is read (and then fails to decode).
    let mut s = connect(&server).await;
    let mut f = 1000i32.to_be_bytes().to_vec();
    f.extend_from_slice(&[0u8; 1000]);
    s.write_all(&f).await.unwrap();
    assert_closed(&mut s).await;
    assert_healthy(&server).await;
}

#[tokio::test]
async fn a_negative_frame_size_is_refused() {
    let server = start().await;
    let mut s = connect(&server).await;
    s.write_all(&(-2i32).to_be_bytes()).await.unwrap();
    assert_closed(&mut s).await;
    assert_healthy(&server).await;
}

#[tokio::test]
async fn a_truncated_frame_then_close() {
    let server = start().await;
    let mut s = connect(&server).await;
    let full = api_versions(3, 1);
    s.write_all(&full[..full.len() - 3]).await.unwrap();
    s.shutdown().await.unwrap();
    assert_closed(&mut s).await;
    drop(s);
    assert_healthy(&server).await;
}

#[tokio::test]
async fn an_unknown_api_key_closes_the_connection() {
    let server = start().await;
    let mut s = connect(&server).await;
    let mut f = vec![0, 0, 0, 10];
    f.extend_from_slice(&999i16.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0xff, 0xff]);
    s.write_all(&f).await.unwrap();
    assert_closed(&mut s).await;
    // A key Kafka knows but this broker does not route (Produce) closes too.
    let mut s = connect(&server).await;
    s.write_all(&frame(ApiKey::Produce, 9, 5, &[0; 12])).await.unwrap();
    assert_closed(&mut s).await;
    assert_healthy(&server).await;
}

#[tokio::test]
async fn an_unsupported_api_versions_version_gets_the_v0_error_answer() {
    let server = start().await;
    let mut s = connect(&server).await;
    // v127 (header v2, body not parsed).
    let mut f = api_versions(127, 3);
    f.extend_from_slice(&[]);
    s.write_all(&f).await.unwrap();
    let (id, body) = read_response(&mut s).await;
    assert_eq!(id, 3);
    // v0 body: error 35, [ApiVersions 0..4], nothing else.
    assert_eq!(&body[..], &[0, 35, 0, 0, 0, 1, 0, 18, 0, 0, 0, 4]);
    // The connection stays open: the client retries at v3.
    s.write_all(&api_versions(3, 4)).await.unwrap();
    let (id, body) = read_response(&mut s).await;
    assert_eq!(id, 4);
    assert_eq!(decode_api_versions(body, 3).error_code, 0);
}

#[tokio::test]
async fn an_unsupported_version_of_another_api_closes_the_connection() {
    let server = start_with(&test_routes(), &[]).await;
    let mut s = connect(&server).await;
    s.write_all(&frame(ApiKey::Metadata, 13, 1, &[0, 0, 0])).await.unwrap();
    assert_closed(&mut s).await;
    assert_healthy(&server).await;
}

#[tokio::test]
async fn absurd_array_lengths_close_the_connection() {
    let server = start_with(&test_routes(), &[]).await;
    let rss_before = resident_kib();
    // Metadata v1 claiming 2^31 - 1 topics.
    let mut s = connect(&server).await;
    s.write_all(&frame(ApiKey::Metadata, 1, 1, &i32::MAX.to_be_bytes())).await.unwrap();
    assert_closed(&mut s).await;
    // Metadata v12 (flexible) claiming 2^32 - 2 topics.
    let mut s = connect(&server).await;
    s.write_all(&frame(ApiKey::Metadata, 12, 2, &[0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0])).await.unwrap();
    assert_closed(&mut s).await;
    // ApiVersions v3 with a 4 GiB client software name.
    let mut s = connect(&server).await;
    s.write_all(&frame(ApiKey::ApiVersions, 3, 3, &[0xff, 0xff, 0xff, 0xff, 0x0f, b'x'])).await.unwrap();
    assert_closed(&mut s).await;
    assert_healthy(&server).await;
    // The broker runs in this process: claiming billions of elements must
    // not have allocated for them (64 MiB is far below any such claim).
    let grown = resident_kib().saturating_sub(rss_before);
    assert!(grown < 64 * 1024, "resident memory grew by {grown} KiB");
}

/// This process's resident set size (VmRSS), in KiB.
fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn fifty_pipelined_requests_are_answered_in_order() {
    let server = start().await;
    let mut s = connect(&server).await;
    let mut batch = Vec::new();
    for i in 0..50 {
        batch.extend(api_versions((i % 5) as i16, 1000 + i));
    }
    s.write_all(&batch).await.unwrap();
    for i in 0..50 {
        let (id, body) = read_response(&mut s).await;
        assert_eq!(id, 1000 + i, "response {i} out of order");
        assert_eq!(decode_api_versions(body, (i % 5) as i16).error_code, 0);
    }
}

#[tokio::test]
async fn slow_and_fast_handlers_run_together_and_answer_in_order() {
    let server = start_with(&test_routes(), &[]).await;
    let mut s = connect(&server).await;
    // The first request is the slowest; all are sent at once.
    let delays = [400, 300, 200, 100, 0, 0, 50, 0];
    let mut batch = Vec::new();
    for (i, ms) in delays.iter().enumerate() {
        batch.extend(metadata(12, i as i32, &format!("sleep-{ms}")));
        batch.extend(api_versions(3, 500 + i as i32));
    }
    let started = Instant::now();
    s.write_all(&batch).await.unwrap();
    for i in 0..delays.len() as i32 {
        let (id, body) = read_response(&mut s).await;
        assert_eq!(id, i);
        // Metadata v12 responses have header v1: one empty tagged-field byte.
        let mut body = body.slice(1..);
        let r = MetadataResponse::decode(&mut body, 12).unwrap();
        assert_eq!(r.throttle_time_ms, i);
        let (id, _) = read_response(&mut s).await;
        assert_eq!(id, 500 + i);
    }
    // Concurrent: well under the 1050 ms the delays add up to.
    assert!(started.elapsed() < Duration::from_millis(900), "{:?}", started.elapsed());
}

#[tokio::test]
async fn earlier_requests_are_answered_before_a_bad_frame_closes() {
    let server = start_with(&test_routes(), &[]).await;
    let mut s = connect(&server).await;
    let mut batch = metadata(12, 1, "sleep-100");
    batch.extend(api_versions(3, 2));
    batch.extend([0, 0, 0, 4, 0x03, 0xe7, 0, 0]); // API key 999
    batch.extend(api_versions(3, 3)); // after the bad frame: never answered
    s.write_all(&batch).await.unwrap();
    assert_eq!(read_response(&mut s).await.0, 1);
    assert_eq!(read_response(&mut s).await.0, 2);
    assert_closed(&mut s).await;
    assert_healthy(&server).await;
}

#[tokio::test]
async fn a_panicking_handler_closes_only_its_connection() {
    let server = start_with(&test_routes(), &[]).await;
    let mut s = connect(&server).await;
    s.write_all(&metadata(1, 1, "panic")).await.unwrap();
    assert_closed(&mut s).await;
    assert_healthy(&server).await;
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let server = start_with(kaskade_broker::router::routes(), &[("connections.max.idle.ms", "300")]).await;
    let mut s = connect(&server).await;
    s.write_all(&api_versions(3, 1)).await.unwrap();
    read_response(&mut s).await;
    let started = Instant::now();
    assert_closed(&mut s).await;
    let idle = started.elapsed();
    assert!(idle >= Duration::from_millis(250) && idle < Duration::from_secs(5), "{idle:?}");
}

#[tokio::test]
async fn shutdown_finishes_requests_in_flight_then_returns() {
    let server = start_with(&test_routes(), &[]).await;
    let mut busy = connect(&server).await;
    let mut idle = connect(&server).await;
    busy.write_all(&metadata(12, 9, "sleep-300")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.trigger.shutdown();
    // The request in flight is answered, then the connection closes.
    let (id, _) = read_response(&mut busy).await;
    assert_eq!(id, 9);
    assert_closed(&mut busy).await;
    assert_closed(&mut idle).await;
    tokio::time::timeout(WAIT, server.task).await.expect("serve did not return").unwrap();
    assert!(TcpStream::connect(server.addr).await.is_err(), "still accepting");
}

#[tokio::test]
async fn max_connections_defers_new_connections() {
    let server = start_with(kaskade_broker::router::routes(), &[("max.connections", "1")]).await;
    let mut first = connect(&server).await;
    first.write_all(&api_versions(3, 1)).await.unwrap();
    read_response(&mut first).await;
    // The second connection is accepted by the kernel but not served yet.
    let mut second = connect(&server).await;
    second.write_all(&api_versions(3, 2)).await.unwrap();
    let mut probe = [0u8; 4];
    let waited = tokio::time::timeout(Duration::from_millis(300), second.read_exact(&mut probe)).await;
    assert!(waited.is_err(), "the second connection was served over the limit");
    drop(first);
    let (id, _) = read_response(&mut second).await;
    assert_eq!(id, 2);
}

#[tokio::test]
async fn a_large_request_in_small_pieces_then_a_small_one() {
    let server = start_with(&test_routes(), &[]).await;
    let mut s = connect(&server).await;
    let topics: Vec<MetadataRequestTopic> = (0..60_000)
        .map(|i| {
            MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(format!("topic-{i:06}")))))
        })
        .collect();
    let mut body = BytesMut::new();
    MetadataRequest::default().with_topics(Some(topics)).encode(&mut body, 12).unwrap();
    let mut bytes = frame(ApiKey::Metadata, 12, 41, &body);
    assert!(bytes.len() > 1_000_000);
    bytes.extend(api_versions(3, 42));
    for piece in bytes.chunks(7_919) {
        s.write_all(piece).await.unwrap();
    }
    let (id, _) = read_response(&mut s).await;
    assert_eq!(id, 41);
    let (id, _) = read_response(&mut s).await;
    assert_eq!(id, 42);
}
