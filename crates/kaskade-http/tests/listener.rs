//! The HTTP listener against a real TCP client: probes, 404, body limit,
//! the mount seam and the connection bound.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use kaskade_http::{HttpLimits, HttpServer, Probe};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Default)]
struct FakeNode {
    ready: AtomicBool,
}

impl Probe for FakeNode {
    fn ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
    fn render_metrics(&self, out: &mut String) {
        out.push_str("# TYPE fake_total counter\nfake_total 7\n");
    }
}

/// One HTTP/1.1 exchange on a fresh connection: (status, head, body).
async fn request(addr: std::net::SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.expect("write head");
    // The server may answer 413 and close before reading the whole body.
    let _ = s.write_all(body).await;
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw)).await.expect("response in time");
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("no status in {text:?}"));
    (status, head.to_string(), body.to_string())
}

async fn start(limits: HttpLimits) -> (HttpServer, Arc<FakeNode>) {
    let node = Arc::new(FakeNode::default());
    let server = HttpServer::start("127.0.0.1:0", limits, node.clone()).await.expect("bind");
    (server, node)
}

#[tokio::test]
async fn health_is_alive_ready_follows_the_node_unknown_paths_404() {
    let (server, node) = start(HttpLimits::default()).await;
    let addr = server.local_addr();
    assert_eq!(request(addr, "GET", "/health", b"").await.0, 200);
    assert_eq!(request(addr, "GET", "/ready", b"").await.0, 503);
    node.ready.store(true, Ordering::SeqCst);
    assert_eq!(request(addr, "GET", "/ready", b"").await.0, 200);
    assert_eq!(request(addr, "GET", "/nope", b"").await.0, 404);
    assert_eq!(request(addr, "GET", "/", b"").await.0, 404);
    // Only GET on the probes.
    assert_eq!(request(addr, "POST", "/health", b"").await.0, 405);
    server.shutdown().await;
    assert!(TcpStream::connect(addr).await.is_err(), "still listening after shutdown");
}

#[tokio::test]
async fn metrics_are_served_as_prometheus_text() {
    let (server, _) = start(HttpLimits::default()).await;
    let (status, head, body) = request(server.local_addr(), "GET", "/metrics", b"").await;
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("content-type: text/plain; version=0.0.4"), "{head}");
    assert_eq!(body, "# TYPE fake_total counter\nfake_total 7\n");
    server.shutdown().await;
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let limits = HttpLimits { max_request_bytes: 1024, ..HttpLimits::default() };
    let (server, _) = start(limits).await;
    server.mount(axum::Router::new().route("/echo", axum::routing::post(|b: String| async move { b }))).unwrap();
    let addr = server.local_addr();
    let (status, _, body) = request(addr, "POST", "/echo", &[b'x'; 1024]).await;
    assert_eq!((status, body.len()), (200, 1024));
    assert_eq!(request(addr, "POST", "/echo", &[b'x'; 1025]).await.0, 413);
    assert_eq!(request(addr, "POST", "/metrics", &[b'x'; 64 << 10]).await.0, 413);
    server.shutdown().await;
}

#[tokio::test]
async fn a_mounted_router_serves_beside_the_probes_once() {
    let (server, _) = start(HttpLimits::default()).await;
    let addr = server.local_addr();
    assert_eq!(request(addr, "GET", "/console", b"").await.0, 404);
    let console =
        axum::Router::new().route("/console", get(|| async { "hello" })).route("/health", get(|| async { "shadowed" }));
    server.mount(console.clone()).expect("first mount");
    assert!(server.mount(console).is_err(), "mounted twice");
    let (status, _, body) = request(addr, "GET", "/console", b"").await;
    assert_eq!((status, body.as_str()), (200, "hello"));
    // The listener's own routes win.
    assert_eq!(request(addr, "GET", "/health", b"").await.2, "ok\n");
    assert_eq!(request(addr, "GET", "/elsewhere", b"").await.0, 404);
    server.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_bound_wait_until_one_closes() {
    let limits = HttpLimits { max_connections: 2, ..HttpLimits::default() };
    let (server, _) = start(limits).await;
    let addr = server.local_addr();
    // Two idle keep-alive connections hold both permits.
    let held_a = TcpStream::connect(addr).await.unwrap();
    let held_b = TcpStream::connect(addr).await.unwrap();
    // Let the server accept both before the third connects.
    let (status, _, _) = {
        let third = tokio::spawn(async move { request(addr, "GET", "/health", b"").await });
        tokio::task::yield_now().await;
        // The third sits in the backlog: no answer while both are held.
        let waited = tokio::time::timeout(Duration::from_millis(500), async {
            loop {
                if third.is_finished() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(waited.is_err(), "a third connection was served while two were held");
        drop(held_a);
        tokio::time::timeout(Duration::from_secs(10), third).await.expect("served once a slot freed").unwrap()
    };
    assert_eq!(status, 200);
    drop(held_b);
    server.shutdown().await;
}

#[tokio::test]
async fn a_taken_address_is_a_bind_error_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err =
        HttpServer::start(&addr, HttpLimits::default(), Arc::new(FakeNode::default())).await.err().expect("in use");
    assert!(err.to_string().contains(&addr), "{err}");
}
