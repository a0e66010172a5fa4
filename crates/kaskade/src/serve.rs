//! `kaskade serve`: load the configuration (defaults < server.properties <
//! KAFKA_* environment and CLUSTER_ID < flags), open the HTTP listener
//! (`http.listener`), open the data directory, serve until SIGINT/SIGTERM,
//! then shut down cleanly. A configuration that is invalid, names a quorum
//! of other controllers, or a data directory of another cluster or node
//! stops it with the reason on stderr and exit status 1.
//!
//! The HTTP listener opens first, so `/health` answers while the logs load
//! and `/ready` turns 200 only once the Kafka listeners are bound and the
//! logs loaded (and back to 503 when shutdown starts).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use kaskade_broker::config::{BrokerConfig, ConfigSources};
use kaskade_broker::metrics::{self, NodeMetrics};
use kaskade_broker::Server;
use kaskade_http::{HttpLimits, HttpServer, Probe};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// A server.properties file (Kafka's format and key names).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where data lives (same as log.dirs). Default: log.dirs, else
    /// $XDG_DATA_HOME/kaskade, else ~/.local/share/kaskade.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Listeners, e.g. PLAINTEXT://localhost:9092 (same as listeners).
    #[arg(long)]
    listeners: Option<String>,
    /// Form a dynamic controller quorum (KIP-853) with this node as its only
    /// voter on its first start (Kafka's `kafka-storage format --standalone`;
    /// same as controller.quorum.standalone=true). Other controllers join with
    /// controller.quorum.bootstrap.servers and `kafka-metadata-quorum
    /// add-controller`.
    #[arg(long, conflicts_with = "initial_controllers")]
    standalone: bool,
    /// Form a dynamic controller quorum (KIP-853) of these voters on the
    /// first start, `id@host:port:directory-id,...` (Kafka's `kafka-storage
    /// format --initial-controllers`; same as
    /// controller.quorum.initial.controllers). Every controller named gets
    /// the same list; each writes its entry's directory id into its
    /// meta.properties.
    #[arg(long, value_name = "VOTERS")]
    initial_controllers: Option<String>,
    /// Any Kafka config key: --override num.partitions=3 (repeatable).
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

fn default_data_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("kaskade");
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(h) => PathBuf::from(h).join(".local/share/kaskade"),
        None => PathBuf::from("kaskade-data"),
    }
}

/// Raises the open-files soft limit to the hard limit: every partition keeps
/// its active segment's three files open, so thousands of partitions need
/// more than the usual soft limit of 1024 (Kafka's docs ask for 100000).
fn raise_open_files_limit() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the rlimit struct we own and pass by a
    // valid pointer; on failure we do not use the value.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return;
    }
    if lim.rlim_cur < lim.rlim_max {
        let want = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
        // SAFETY: setrlimit only reads the struct we pass by a valid pointer.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } != 0 {
            tracing::warn!(soft = lim.rlim_cur, hard = lim.rlim_max, "could not raise the open-files limit");
        }
    }
}

/// The node as the HTTP listener sees it: process metrics only until the
/// broker runs.
#[derive(Default)]
struct NodeProbe {
    broker: OnceLock<NodeMetrics>,
    stopping: AtomicBool,
}

impl Probe for NodeProbe {
    fn ready(&self) -> bool {
        self.broker.get().is_some() && !self.stopping.load(Ordering::Acquire)
    }

    fn render_metrics(&self, out: &mut String) {
        metrics::process::render(out);
        if let Some(node) = self.broker.get() {
            node.render(out);
        }
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    raise_open_files_limit();
    let mut overrides = Vec::new();
    for o in &args.overrides {
        let (k, v) = o
            .split_once('=')
            .with_context(|| format!("--override {o}: expected KEY=VALUE, e.g. --override num.partitions=3"))?;
        overrides.push((k.trim().to_string(), v.trim().to_string()));
    }
    if let Some(l) = &args.listeners {
        overrides.push(("listeners".into(), l.clone()));
    }
    if let Some(d) = &args.data_dir {
        overrides.push(("log.dirs".into(), d.display().to_string()));
    }
    if args.standalone {
        overrides.push(("controller.quorum.standalone".into(), "true".into()));
    }
    if let Some(voters) = &args.initial_controllers {
        overrides.push(("controller.quorum.initial.controllers".into(), voters.clone()));
    }
    let sources = ConfigSources { properties_file: args.config.clone(), env: std::env::vars().collect(), overrides };
    let config = BrokerConfig::load(&sources).map_err(|e| anyhow::anyhow!("{e}"))?;
    let data_dir = config.log_dir.clone().unwrap_or_else(default_data_dir);
    let node_id = config.node_id;
    let probe = Arc::new(NodeProbe::default());
    let http = match &config.http_listener {
        Some(addr) => Some(HttpServer::start(addr, HttpLimits::default(), probe.clone()).await?),
        None => None,
    };
    let server = Server::start(config, data_dir.clone()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    // Ready from here on: the Kafka listeners are bound, the logs loaded.
    let _ = probe.broker.set(NodeMetrics::new(server.broker.clone(), tokio::runtime::Handle::current()));
    if let Some(http) = &http {
        // The web console's pages and JSON API, once the broker they show runs.
        http.mount(kaskade_console::router(server.broker.clone()))
            .map_err(|_| anyhow::anyhow!("the HTTP listener already serves other routes"))?;
    }
    for addr in server.listeners() {
        println!("kaskade: listening on {addr}");
    }
    for addr in server.controller_listeners() {
        println!("kaskade: controller listener on {addr} (not advertised to clients)");
    }
    println!(
        "kaskade: advertised as {}, node.id={node_id}, cluster.id={}",
        server.broker.endpoint(),
        server.broker.cluster_id()
    );
    if let Some(http) = &http {
        println!("kaskade: http on http://{}", http.local_addr());
    }
    println!("kaskade: data in {}", data_dir.display());

    tokio::select! {
        _ = wait_for_signal() => {}
        // No clean shutdown: the controller that would move this node's
        // leaderships is gone. The logs are recovered at the next start.
        why = server.failed() => {
            tracing::error!(reason = %why, "this node can no longer follow the metadata quorum: exiting");
            anyhow::bail!("{why}; exiting so that a supervisor restarts this node");
        }
    }
    println!("kaskade: shutting down (finishing in-flight requests, flushing logs)");
    probe.stopping.store(true, Ordering::Release);
    server.shutdown().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(http) = http {
        http.shutdown().await;
    }
    println!("kaskade: stopped cleanly");
    Ok(())
}

async fn wait_for_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the broker");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn open_files_soft_limit_reaches_the_hard_limit() {
        super::raise_open_files_limit();
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: as in `raise_open_files_limit`.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        assert_eq!(lim.rlim_cur, lim.rlim_max);
    }
}
