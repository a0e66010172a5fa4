//! A Kafka connection at exact request versions, for tests that check
//! requests and answers a client library would hide. It is
//! `kaskade-client`'s [`Connection`] (frames, header versions, correlation
//! ids, ApiVersions on connect), used so that any failure panics naming
//! the API and version. Tests of malformed frames stay on raw TCP.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::Request;
use kaskade_client::connection::{Connection, ConnectionConfig};

/// How long a connect or a call waits for its answer.
const ANSWER_WAIT: Duration = Duration::from_secs(30);

fn config() -> ConnectionConfig {
    ConnectionConfig { client_id: "wire-test".to_string(), connect_timeout: ANSWER_WAIT, request_timeout: ANSWER_WAIT }
}

fn api(key: i16) -> String {
    ApiKey::try_from(key).map_or_else(|_| format!("api key {key}"), |k| format!("{k:?}"))
}

pub struct Conn(Arc<Connection>);

impl Conn {
    pub async fn connect(addr: SocketAddr) -> Conn {
        let conn = Connection::connect(&addr.to_string(), config())
            .await
            .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
        Conn(conn)
    }

    /// Sends `req` at `version` and decodes the answer; panics (naming
    /// the API and version) on any encoding, transport or decoding failure.
    pub async fn call<R: Request>(&mut self, version: i16, req: &R) -> R::Response {
        self.0.send(req, version).await.unwrap_or_else(|e| panic!("{} v{version}: {e}", api(R::KEY)))
    }
}

/// The blocking twin of `Conn`, for the synchronous librdkafka tests: the
/// connection lives on a runtime of its own.
pub struct SyncConn {
    conn: Conn,
    rt: tokio::runtime::Runtime,
}

impl SyncConn {
    pub fn connect(addr: SocketAddr) -> SyncConn {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        SyncConn { conn: rt.block_on(Conn::connect(addr)), rt }
    }

    /// As `Conn::call`.
    pub fn call<R: Request>(&mut self, version: i16, req: &R) -> R::Response {
        self.rt.block_on(self.conn.call(version, req))
    }

    /// Sends `req` at `version` without waiting for the answer (a request
    /// the broker is expected to park, such as a long-poll Fetch).
    pub fn start<R>(&mut self, version: i16, req: R) -> InFlight<R::Response>
    where
        R: Request + Send + Sync + 'static,
        R::Response: Send + 'static,
    {
        let conn = self.conn.0.clone();
        let task = self.rt.spawn(async move {
            conn.send(&req, version).await.unwrap_or_else(|e| panic!("{} v{version}: {e}", api(R::KEY)))
        });
        InFlight(task)
    }

    /// Whether `request` is still unanswered after `window`.
    pub fn unanswered_after<T>(&mut self, request: &InFlight<T>, window: Duration) -> bool {
        // The connection's tasks run while this runtime sleeps.
        self.rt.block_on(async { tokio::time::sleep(window).await });
        !request.0.is_finished()
    }

    /// The answer to a request `start`ed earlier.
    pub fn finish<T>(&mut self, request: InFlight<T>) -> T {
        self.rt.block_on(async {
            tokio::time::timeout(ANSWER_WAIT, request.0)
                .await
                .unwrap_or_else(|_| panic!("no answer within {ANSWER_WAIT:?}"))
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
        })
    }
}

/// A request sent with [`SyncConn::start`], its answer still to come.
pub struct InFlight<T>(tokio::task::JoinHandle<T>);
