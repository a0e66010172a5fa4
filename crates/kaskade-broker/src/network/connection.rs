//! One task per connection: read frames, start handlers, write responses in
//! request order.
//!
//! Requests may be pipelined. Each decoded request becomes a handler future
//! in a `FuturesOrdered`, polled on this task: handlers are first polled in
//! request order (what a handler does before its first suspension happens in
//! request order, as in Kafka, which handles one request per connection at a
//! time), run concurrently afterwards, and their responses come out in
//! request order. The task keeps reading while earlier requests are in
//! flight, up to [`MAX_IN_FLIGHT_REQUESTS`] requests and
//! `socket.request.max.bytes` of request bytes; past that it stops reading
//! and TCP pushes back on the client.
//!
//! The connection closes, after answering the requests before it, on a bad
//! frame (see [`super::frame`]), on a handler error or panic, when the
//! client closes, after `connections.max.idle.ms` without traffic and with
//! nothing in flight, and at shutdown once the requests in flight are
//! answered (at most [`SHUTDOWN_GRACE`]). Handler futures are never dropped
//! before they complete, except when the shutdown grace period expires.
//!
//! Fetch requests go to `api::fetch::route_ranged`, whose record sets are
//! segment file ranges: the response is queued as chunks
//! (`super::fetch_frame`) and the ranges are sent with `sendfile(2)`
//! (`super::outgoing`). Listeners are plaintext TCP only; a transport that
//! cannot take `sendfile` would use the route table's buffered handler.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use futures::TryFutureExt;
use futures::{FutureExt, StreamExt};
use kafka_protocol::messages::{ApiKey, ResponseKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{sleep_until, Instant};

use super::fetch_frame::{self, FetchAnswer};
use super::frame::{self, DecodedRequest};
use super::outgoing::Outgoing;
use super::ShutdownSignal;
use crate::broker::Broker;
use crate::error::BrokerError;

/// Requests in flight on one connection before the task stops reading.
///
/// Kafka handles one request per connection at a time; clients pipeline a
/// few (the Java producer and idempotent librdkafka producers at most 5 per
/// connection; consumers one fetch per broker). 64 leaves room for
/// non-idempotent librdkafka producers, whose pipeline hides fsync latency,
/// while the byte budget (`socket.request.max.bytes` of requests in flight)
/// bounds memory per connection.
pub const MAX_IN_FLIGHT_REQUESTS: usize = 64;

/// How long connections may take, after shutdown starts, to finish the
/// requests in flight.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Stop taking completed responses while this many bytes wait to be
/// written (the client is slow to read).
const OUTPUT_HIGH_WATER: usize = 4 << 20;

/// Read buffer headroom when no frame size is known yet.
const READ_RESERVE: usize = 8 << 10;

enum Failure {
    Error(BrokerError),
    Panic,
}

/// A handler's response.
enum Reply {
    Body(ResponseKind),
    /// Fetch, with its records as file ranges.
    Fetch(FetchAnswer),
}

struct Completed {
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    frame_len: usize,
    result: Result<Reply, Failure>,
}

/// Which route table a connection's requests go to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routes {
    /// The broker's (`Broker::router`).
    Broker,
    /// A multi-node quorum's controller listener's (`Broker::controller_router`).
    Controller,
}

/// Serves one connection, accepted on the listener named `listener`, until
/// it closes.
pub async fn run(
    broker: Arc<Broker>,
    stream: TcpStream,
    peer: SocketAddr,
    listener: Arc<str>,
    shutdown: ShutdownSignal,
) {
    run_on(broker, stream, peer, listener, shutdown, Routes::Broker).await
}

/// [`run`] with the route table `routes`.
pub async fn run_on(
    broker: Arc<Broker>,
    mut stream: TcpStream,
    peer: SocketAddr,
    listener: Arc<str>,
    shutdown: ShutdownSignal,
    routes: Routes,
) {
    tracing::debug!(%peer, %listener, ?routes, "connection opened");
    let mut conn = Connection::new(broker, peer, listener, shutdown, routes);
    conn.drive(&mut stream).await;
    let _ = stream.shutdown().await;
    tracing::debug!(%peer, reason = conn.close_reason.as_deref().unwrap_or("closed"), "connection closed");
}

struct Connection {
    broker: Arc<Broker>,
    peer: SocketAddr,
    /// The listener the connection came in on: handlers answer with its
    /// endpoints (Metadata, FindCoordinator, DescribeCluster).
    listener: Arc<str>,
    shutdown: ShutdownSignal,
    routes: Routes,
    max_frame: i32,
    rbuf: BytesMut,
    out: Outgoing,
    in_flight: FuturesOrdered<BoxFuture<'static, Completed>>,
    in_flight_bytes: usize,
    /// Still reading requests.
    reading: bool,
    /// Still taking responses (false after a failure: later responses are
    /// dropped, as the connection closes after the earlier ones).
    answering: bool,
    /// The socket still accepts writes.
    writable: bool,
    close_reason: Option<String>,
}

impl Connection {
    fn new(
        broker: Arc<Broker>,
        peer: SocketAddr,
        listener: Arc<str>,
        shutdown: ShutdownSignal,
        routes: Routes,
    ) -> Self {
        let max_frame = broker.config.socket_request_max_bytes;
        Connection {
            broker,
            peer,
            listener,
            shutdown,
            routes,
            max_frame,
            rbuf: BytesMut::with_capacity(READ_RESERVE),
            out: Outgoing::default(),
            in_flight: FuturesOrdered::new(),
            in_flight_bytes: 0,
            reading: true,
            answering: true,
            writable: true,
            close_reason: None,
        }
    }

    fn stop_reading(&mut self, reason: impl Into<String>) {
        self.reading = false;
        if self.close_reason.is_none() {
            self.close_reason = Some(reason.into());
        }
    }

    async fn drive(&mut self, stream: &mut TcpStream) {
        let idle = u64::try_from(self.broker.config.connections_max_idle_ms).ok().map(Duration::from_millis);
        let far = Duration::from_secs(86_400 * 365);
        let mut last_activity = Instant::now();
        let mut grace_deadline: Option<Instant> = None;
        let (mut rd, wr) = stream.split();

        loop {
            let flushed = self.out.is_empty() || !self.writable;
            if !self.reading && self.in_flight.is_empty() && flushed {
                return;
            }
            let can_read = self.reading
                && self.in_flight.len() < MAX_IN_FLIGHT_REQUESTS
                && self.in_flight_bytes < self.max_frame as usize;
            if can_read {
                self.ensure_read_space();
            }
            let take_responses = !self.in_flight.is_empty() && (self.out.len() < OUTPUT_HIGH_WATER || !self.writable);
            let idle_armed = idle.is_some() && self.in_flight.is_empty() && self.out.is_empty() && self.reading;
            let idle_at = last_activity + idle.unwrap_or(far);
            let grace_at = grace_deadline.unwrap_or_else(|| Instant::now() + far);
            let shutting_down = grace_deadline.is_some();

            tokio::select! {
                biased;
                _ = self.shutdown.wait(), if !shutting_down => {
                    grace_deadline = Some(Instant::now() + SHUTDOWN_GRACE);
                    self.stop_reading("the broker is shutting down");
                }
                _ = sleep_until(grace_at), if shutting_down => {
                    tracing::warn!(peer = %self.peer, in_flight = self.in_flight.len(),
                        "closing the connection: shutdown grace period expired");
                    self.close_reason = Some("shutdown grace period expired".into());
                    return;
                }
                Some(done) = self.in_flight.next(), if take_responses => {
                    self.complete(done);
                    // Completions free capacity: decode buffered requests.
                    self.decode_frames();
                }
                read = rd.read_buf(&mut self.rbuf), if can_read => match read {
                    Ok(0) => self.stop_reading("closed by the client"),
                    Ok(_) => {
                        last_activity = Instant::now();
                        self.decode_frames();
                    }
                    Err(e) => {
                        self.writable = false;
                        self.stop_reading(format!("read error: {e}"));
                    }
                },
                written = self.out.write_to(wr.as_ref()), if self.writable && !self.out.is_empty() => {
                    match written {
                        Ok(0) => {
                            self.writable = false;
                            self.out.clear();
                            self.stop_reading("the socket no longer accepts writes");
                        }
                        Ok(_) => last_activity = Instant::now(),
                        Err(e) => {
                            self.writable = false;
                            self.out.clear();
                            self.stop_reading(format!("write error: {e}"));
                        }
                    }
                }
                _ = sleep_until(idle_at), if idle_armed => {
                    self.close_reason = Some("idle longer than connections.max.idle.ms".into());
                    return;
                }
            }
        }
    }

    /// Makes room to read into. While a frame of known size is incomplete,
    /// `split_frame` has reserved exactly the rest of it; adding headroom
    /// then would reallocate (and copy) the whole frame, so only reserve
    /// when the next frame's size is not known yet.
    fn ensure_read_space(&mut self) {
        let len = self.rbuf.len();
        let spare = self.rbuf.capacity() - len;
        match frame::frame_length(&self.rbuf, self.max_frame) {
            Ok(Some(total)) if total > len => {
                if spare == 0 {
                    self.rbuf.reserve(total - len);
                }
            }
            _ => {
                if spare < READ_RESERVE / 2 {
                    self.rbuf.reserve(READ_RESERVE);
                }
            }
        }
    }

    /// Decodes the complete frames in the read buffer, up to the in-flight
    /// limit, and starts their handlers.
    fn decode_frames(&mut self) {
        while self.reading && self.in_flight.len() < MAX_IN_FLIGHT_REQUESTS {
            let frame = match frame::split_frame(&mut self.rbuf, self.max_frame) {
                Ok(Some(frame)) => frame,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(peer = %self.peer, "{e}");
                    self.stop_reading(e.to_string());
                    return;
                }
            };
            let frame_len = frame.len();
            let router = match self.routes {
                Routes::Broker => &self.broker.router,
                Routes::Controller => &self.broker.controller_router,
            };
            match frame::decode_request(router, frame) {
                Ok(request) => {
                    self.in_flight_bytes += frame_len;
                    self.in_flight.push_back(dispatch(
                        self.broker.clone(),
                        matches!(self.routes, Routes::Broker),
                        request,
                        frame_len,
                        self.peer,
                        self.listener.clone(),
                    ));
                }
                Err(e) => {
                    tracing::warn!(peer = %self.peer, "{e}");
                    self.stop_reading(e.to_string());
                    return;
                }
            }
        }
    }

    fn complete(&mut self, done: Completed) {
        self.in_flight_bytes = self.in_flight_bytes.saturating_sub(done.frame_len);
        if !self.answering || !self.writable {
            return;
        }
        let failure = match done.result {
            Ok(Reply::Body(response)) => {
                let encoded = frame::encode_response(
                    done.api_key,
                    done.version,
                    done.correlation_id,
                    &response,
                    self.out.buffer(),
                );
                self.out.appended();
                match encoded {
                    Ok(()) => return,
                    Err(e) => e.to_string(),
                }
            }
            Ok(Reply::Fetch(answer)) => match fetch_frame::encode_fetch(done.version, done.correlation_id, answer) {
                Ok(chunks) => {
                    self.out.push_chunks(chunks);
                    return;
                }
                Err(e) => e.to_string(),
            },
            // acks=0: the client expects nothing back.
            Err(Failure::Error(BrokerError::NoResponse)) => return,
            Err(Failure::Error(e)) => e.to_string(),
            Err(Failure::Panic) => "the handler panicked".to_string(),
        };
        tracing::warn!(
            peer = %self.peer,
            api = ?done.api_key,
            version = done.version,
            correlation_id = done.correlation_id,
            "closing the connection: {failure}"
        );
        self.answering = false;
        self.stop_reading(failure);
    }
}

/// Starts a request's handler and turns its outcome, panics included, into a
/// [`Completed`]. On a broker listener (`partition_fetch`) a Fetch reads
/// partitions and is encoded by ranges (`fetch_frame`); on the controller
/// listener it is an observer's fetch of the metadata log, routed as any API.
fn dispatch(
    broker: Arc<Broker>,
    partition_fetch: bool,
    request: DecodedRequest,
    frame_len: usize,
    peer: SocketAddr,
    listener: Arc<str>,
) -> BoxFuture<'static, Completed> {
    let DecodedRequest { api_key, header, body, response_version, handler } = request;
    let correlation_id = header.correlation_id;
    let began = std::time::Instant::now();
    let started = std::panic::catch_unwind(AssertUnwindSafe(|| {
        crate::api::CLIENT_ADDR.sync_scope(peer, || {
            crate::api::CLIENT_LISTENER.sync_scope(listener, || match api_key {
                ApiKey::Fetch if partition_fetch => {
                    crate::api::fetch::route_ranged(broker, header, body).map_ok(Reply::Fetch).boxed()
                }
                _ => handler(broker, header, body).map_ok(Reply::Body).boxed(),
            })
        })
    }));
    async move {
        let result = match started {
            Ok(future) => match AssertUnwindSafe(future).catch_unwind().await {
                Ok(Ok(response)) => Ok(response),
                Ok(Err(e)) => Err(Failure::Error(e)),
                Err(_) => Err(Failure::Panic),
            },
            Err(_) => Err(Failure::Panic),
        };
        // acks=0 produce answers nothing by design: not a failure.
        let failed = !matches!(&result, Ok(_) | Err(Failure::Error(BrokerError::NoResponse)));
        let answer = result.as_ref().ok().map(|reply| match reply {
            Reply::Body(r) => crate::metrics::requests::Answer::Body(r),
            Reply::Fetch(f) => crate::metrics::requests::Answer::Fetch(&f.response),
        });
        crate::metrics::requests::record(api_key, began.elapsed(), failed, answer);
        Completed { api_key, version: response_version, correlation_id, frame_len, result }
    }
    .boxed()
}
