//! Listeners: bind the configured addresses, accept connections, shut down.
//!
//! Hosts are bound as follows:
//! - `localhost`: every address it resolves to (127.0.0.1 and ::1), since
//!   clients such as librdkafka try `::1` first; an address family that
//!   cannot be bound is skipped with a warning. With port 0 the first address
//!   gets an ephemeral port and the others the same port.
//! - empty: every address, IPv4 and IPv6 (`[::]`, dual stack), falling back
//!   to `0.0.0.0` where IPv6 is unavailable; `0.0.0.0` binds every IPv4
//!   address, `::` every IPv6 one.
//! - anything else: each address the name resolves to.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{connection, ShutdownSignal};
use crate::broker::Broker;
use crate::config::{BrokerConfig, ListenerSpec};

/// A bound listening socket.
#[derive(Debug)]
pub struct BoundListener {
    spec: ListenerSpec,
    listener: TcpListener,
    local_addr: SocketAddr,
}

impl BoundListener {
    /// The address actually bound (with the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The listener name (`PLAINTEXT`).
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The listener as configured.
    pub fn spec(&self) -> &ListenerSpec {
        &self.spec
    }

    /// The listener as configured and its socket, for a server that runs
    /// its own accept loop (the controller quorum's).
    pub fn into_tcp(self) -> (ListenerSpec, TcpListener) {
        (self.spec, self.listener)
    }
}

/// Binds the client listeners of a configuration (`listeners` without the
/// controller listeners).
pub async fn bind_config(config: &BrokerConfig) -> io::Result<Vec<BoundListener>> {
    bind(&config.client_listeners()).await
}

/// Binds every listener. Fails if a listener cannot be bound at all.
pub async fn bind(specs: &[ListenerSpec]) -> io::Result<Vec<BoundListener>> {
    let mut bound = Vec::new();
    for spec in specs {
        let addrs = resolve(spec).await?;
        let mut port = spec.port;
        let mut count = 0;
        let mut last_error = None;
        for ip in addrs {
            match bind_one(SocketAddr::new(ip, port)) {
                Ok(listener) => {
                    let local_addr = listener.local_addr()?;
                    port = local_addr.port();
                    tracing::info!(listener = %spec.name, address = %local_addr, "listening");
                    bound.push(BoundListener { spec: spec.clone(), listener, local_addr });
                    count += 1;
                }
                Err(e) => {
                    tracing::warn!(listener = %spec, address = %SocketAddr::new(ip, port),
                        "cannot bind, skipping this address: {e}");
                    last_error = Some(e);
                }
            }
        }
        if count == 0 {
            let e = last_error.unwrap_or_else(|| io::Error::other("no address to bind"));
            return Err(io::Error::new(e.kind(), format!("cannot bind listener {spec}: {e}")));
        }
    }
    Ok(bound)
}

/// The addresses a listener binds.
async fn resolve(spec: &ListenerSpec) -> io::Result<Vec<IpAddr>> {
    let host = spec.host.as_str();
    if host.is_empty() {
        // `[::]` is dual stack on Linux; `bind` falls back to IPv4 below.
        return Ok(vec![IpAddr::V6(Ipv6Addr::UNSPECIFIED)]);
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let mut ips: Vec<IpAddr> = match tokio::net::lookup_host((host, 0)).await {
        Ok(addrs) => addrs.map(|a| a.ip()).collect(),
        Err(e) if host.eq_ignore_ascii_case("localhost") => {
            tracing::debug!("cannot resolve localhost ({e}); using 127.0.0.1 and ::1");
            Vec::new()
        }
        Err(e) => return Err(io::Error::new(e.kind(), format!("cannot resolve the host of listener {spec}: {e}"))),
    };
    if host.eq_ignore_ascii_case("localhost") {
        for ip in [IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)] {
            if !ips.contains(&ip) {
                ips.push(ip);
            }
        }
        // IPv4 first, so that a port 0 listener gets its port on 127.0.0.1.
        ips.sort_by_key(|ip| ip.is_ipv6());
    }
    ips.dedup();
    Ok(ips)
}

fn bind_one(addr: SocketAddr) -> io::Result<TcpListener> {
    match bind_socket(addr) {
        Err(e) if addr.ip() == IpAddr::V6(Ipv6Addr::UNSPECIFIED) => {
            tracing::debug!("cannot bind {addr} ({e}); binding 0.0.0.0");
            bind_socket(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), addr.port()))
        }
        other => other,
    }
}

fn bind_socket(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Accepts connections on every listener until `shutdown`; then stops
/// accepting, lets the connections finish their requests in flight, and
/// returns once every connection is closed.
///
/// `max.connections` bounds the connections across listeners: at the limit,
/// accepting pauses until a connection closes (Kafka waits for a slot too).
pub async fn serve(broker: Arc<Broker>, listeners: Vec<BoundListener>, shutdown: ShutdownSignal) {
    let permits = usize::try_from(broker.config.max_connections).unwrap_or(0).min(Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(permits));
    let mut accept_loops = JoinSet::new();
    for listener in listeners {
        accept_loops.spawn(accept_loop(broker.clone(), listener, slots.clone(), shutdown.clone()));
    }
    while accept_loops.join_next().await.is_some() {}
}

async fn accept_loop(
    broker: Arc<Broker>,
    listener: BoundListener,
    slots: Arc<Semaphore>,
    mut shutdown: ShutdownSignal,
) {
    let mut connections = JoinSet::new();
    loop {
        let permit = tokio::select! {
            _ = shutdown.wait() => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = shutdown.wait() => break,
            accepted = listener.listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(%peer, "cannot set TCP_NODELAY: {e}");
                }
                if let Err(e) = super::socket_options::set_send_buffer(&stream, broker.config.socket_send_buffer_bytes)
                {
                    tracing::debug!(%peer, "cannot set SO_SNDBUF (socket.send.buffer.bytes): {e}");
                }
                let broker = broker.clone();
                let shutdown = shutdown.clone();
                let name: Arc<str> = Arc::from(listener.name());
                let open = crate::metrics::connections::OpenConnection::new();
                connections.spawn(async move {
                    let _open = open;
                    connection::run(broker, stream, peer, name, shutdown).await;
                    drop(permit);
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off briefly
                // rather than spin.
                tracing::warn!(listener = %listener.spec, "accept failed: {e}");
                drop(permit);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        while let Some(finished) = connections.try_join_next() {
            log_connection_task(finished);
        }
    }
    tracing::info!(listener = %listener.spec, address = %listener.local_addr, "stopped accepting");
    drop(listener);
    while let Some(finished) = connections.join_next().await {
        log_connection_task(finished);
    }
}

fn log_connection_task(finished: Result<(), tokio::task::JoinError>) {
    if let Err(e) = finished {
        if e.is_panic() {
            tracing::error!("a connection task panicked: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> ListenerSpec {
        ListenerSpec::parse(s).unwrap()
    }

    #[tokio::test]
    async fn port_zero_is_reported() {
        let bound = bind(&[spec("PLAINTEXT://127.0.0.1:0")]).await.unwrap();
        assert_eq!(bound.len(), 1);
        assert_ne!(bound[0].local_addr().port(), 0);
        assert_eq!(bound[0].name(), "PLAINTEXT");
    }

    #[tokio::test]
    async fn localhost_binds_ipv4_and_ipv6_on_one_port() {
        let bound = bind(&[spec("PLAINTEXT://localhost:0")]).await.unwrap();
        assert!(bound.iter().any(|b| b.local_addr().is_ipv4()));
        let port = bound[0].local_addr().port();
        assert!(bound.iter().all(|b| b.local_addr().port() == port));
        let v6_available = std::net::TcpListener::bind("[::1]:0").is_ok();
        assert_eq!(bound.iter().any(|b| b.local_addr().is_ipv6()), v6_available);
    }

    #[tokio::test]
    async fn empty_host_binds_everything() {
        let bound = bind(&[spec("PLAINTEXT://:0")]).await.unwrap();
        assert_eq!(bound.len(), 1);
        assert!(bound[0].local_addr().ip().is_unspecified());
        // Reachable over IPv4 loopback (dual stack or 0.0.0.0).
        let port = bound[0].local_addr().port();
        let listener = &bound[0].listener;
        let (connected, accepted) =
            tokio::join!(tokio::net::TcpStream::connect(("127.0.0.1", port)), listener.accept());
        connected.unwrap();
        accepted.unwrap();
    }

    #[tokio::test]
    async fn an_address_in_use_fails() {
        let first = bind(&[spec("PLAINTEXT://127.0.0.1:0")]).await.unwrap();
        let port = first[0].local_addr().port();
        let err = bind(&[spec(&format!("PLAINTEXT://127.0.0.1:{port}"))]).await.unwrap_err();
        assert!(err.to_string().contains("cannot bind listener"), "{err}");
    }
}
