//! The listener itself: routes, limits, the console's mount point, shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower::ServiceExt;
use tower_http::limit::RequestBodyLimitLayer;

use crate::limited::LimitedListener;
use crate::probe::Probe;

/// The content type of Prometheus' text exposition format.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How long shutdown waits for open HTTP requests before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Resource bounds of the listener.
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    /// Connections open at once; more wait in the accept queue.
    pub max_connections: usize,
    /// Largest request body; larger ones get 413 Payload Too Large.
    pub max_request_bytes: usize,
}

impl Default for HttpLimits {
    /// 128 connections (an orchestrator, a Prometheus or two, a few console
    /// tabs); 2 MiB bodies (a record of `message.max.bytes`, 1 MiB, produced
    /// from the console, with room for its JSON encoding).
    fn default() -> Self {
        HttpLimits { max_connections: 128, max_request_bytes: 2 << 20 }
    }
}

/// Errors of the HTTP layer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The listener address cannot be bound (in use, not local, ...).
    #[error("cannot listen for HTTP on {addr}: {source}")]
    Bind {
        /// The address as configured.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

/// [`HttpServer::mount`] was called twice.
#[derive(Debug, thiserror::Error)]
#[error("a router is already mounted on the HTTP listener")]
pub struct AlreadyMounted;

/// What the handlers share.
#[derive(Clone)]
struct Shared {
    probe: Arc<dyn Probe>,
    /// The console's router once the broker runs; until then its paths 404.
    mounted: Arc<OnceLock<Router>>,
}

/// A running HTTP listener; see the crate docs.
pub struct HttpServer {
    local_addr: SocketAddr,
    mounted: Arc<OnceLock<Router>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Binds `addr` (`host:port`; port 0 picks a free one) and serves until
    /// [`HttpServer::shutdown`].
    pub async fn start(addr: &str, limits: HttpLimits, probe: Arc<dyn Probe>) -> Result<HttpServer, HttpError> {
        let bind_err = |source| HttpError::Bind { addr: addr.to_string(), source };
        let tcp = tokio::net::TcpListener::bind(addr).await.map_err(bind_err)?;
        let local_addr = tcp.local_addr().map_err(bind_err)?;
        let mounted = Arc::new(OnceLock::new());
        let app = app(Shared { probe, mounted: mounted.clone() }, limits);
        let (stop, stopped) = oneshot::channel::<()>();
        let listener = LimitedListener::new(tcp, limits.max_connections.max(1));
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stopped.await;
            });
            // `serve` only returns errors from the listener, which retries
            // its own accept errors; nothing is left to report but this.
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "http: listener stopped");
            }
        });
        Ok(HttpServer { local_addr, mounted, stop: Some(stop), task: Some(task) })
    }

    /// The bound address (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves `router`'s routes beside `/health`, `/ready` and `/metrics`
    /// (which take precedence), under `/`. Once only: the console mounts its
    /// router when the broker it shows is up.
    pub fn mount(&self, router: Router) -> Result<(), AlreadyMounted> {
        self.mounted.set(router).map_err(|_| AlreadyMounted)
    }

    /// Stops accepting, lets open requests finish for a few seconds, then
    /// drops the rest.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

fn app(shared: Shared, limits: HttpLimits) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .fallback(mounted_or_404)
        .with_state(shared)
        .layer(RequestBodyLimitLayer::new(limits.max_request_bytes))
}

async fn health() -> &'static str {
    "ok\n"
}

async fn ready(State(s): State<Shared>) -> Response {
    if s.probe.ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting: listeners or logs not ready\n").into_response()
    }
}

async fn metrics(State(s): State<Shared>) -> Response {
    let probe = s.probe.clone();
    // Rendering walks every partition: keep it off the async workers.
    let rendered = tokio::task::spawn_blocking(move || {
        let mut out = String::with_capacity(64 << 10);
        probe.render_metrics(&mut out);
        out
    })
    .await;
    match rendered {
        Ok(text) => ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], text).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "http: rendering metrics failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "rendering metrics failed\n").into_response()
        }
    }
}

async fn mounted_or_404(State(s): State<Shared>, req: Request) -> Response {
    match s.mounted.get() {
        Some(router) => {
            let r: Result<Response, Infallible> = router.clone().oneshot(req).await;
            match r {
                Ok(resp) => resp,
                Err(never) => match never {},
            }
        }
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}
