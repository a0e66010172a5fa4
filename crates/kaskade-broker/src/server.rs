//! Assembles a running node: the data directory (`meta.properties`), the
//! metadata log, the partition logs, the topic manager, the listeners and
//! the request loop; and takes it down again in order (stop accepting,
//! finish in-flight requests, flush every log, write the clean-shutdown
//! marker).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kaskade_log::{CleanerOptions, LogManager, ManagerOptions, TopicPartition};
use kaskade_meta::{LocalMetadataLog, MetadataLog};

use crate::broker::Broker;
use crate::config::BrokerConfig;
use crate::network::{self, BoundListener, ShutdownTrigger};
use crate::topic::manager::{TopicDefaults, TopicManager};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("data directory {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Invalid(String),
    #[error("opening the logs failed: {0}")]
    Log(#[from] kaskade_log::LogError),
    #[error("opening the metadata log failed: {0}")]
    Meta(#[from] kaskade_meta::MetaError),
    #[error("restoring topics failed: {0}")]
    Topic(#[from] crate::topic::TopicError),
    #[error("binding listeners failed: {0}")]
    Bind(std::io::Error),
}

/// Kafka's per-directory lock file.
pub const LOCK_FILE: &str = ".lock";

/// Takes the data directory's exclusive lock (held until the returned file
/// is dropped), so two brokers never share a directory, as Kafka refuses.
pub fn lock_data_dir(dir: &Path) -> Result<std::fs::File, StartError> {
    let path = dir.join(LOCK_FILE);
    let io = |source| StartError::Io { path: path.clone(), source };
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StartError::Invalid(format!(
            "failed to acquire lock on {}: another broker is using data directory {}",
            path.display(),
            dir.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
    }
}

/// The directory holding the metadata log, beside the partition dirs (its
/// name does not parse as `<topic>-<partition>`).
pub const METADATA_DIR: &str = "kaskade-metadata";

/// Reads `meta.properties` (Kafka's format), creating it on first start.
/// Returns the cluster id.
fn ensure_meta_properties(dir: &Path, config: &BrokerConfig) -> Result<String, StartError> {
    let path = dir.join("meta.properties");
    let io = |source| StartError::Io { path: path.clone(), source };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let props = crate::config::parse_properties(&text);
            let get = |k: &str| props.iter().rev().find(|(key, _)| key == k).map(|(_, v)| v.clone());
            let cluster =
                get("cluster.id").ok_or_else(|| StartError::Invalid(format!("{}: no cluster.id", path.display())))?;
            if let Some(node) = get("node.id") {
                if node.parse::<i32>().ok() != Some(config.node_id) {
                    return Err(StartError::Invalid(format!(
                        "{}: this directory belongs to node.id {node}, but node.id is {}",
                        path.display(),
                        config.node_id
                    )));
                }
            }
            if let Some(want) = &config.cluster_id {
                if *want != cluster {
                    return Err(StartError::Invalid(format!(
                        "{}: this directory belongs to cluster {cluster}, but cluster.id is {want}",
                        path.display()
                    )));
                }
            }
            Ok(cluster)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let cluster = config.cluster_id.clone().unwrap_or_else(new_cluster_id);
            let text = format!(
                "#\n#Written by Kaskade\nnode.id={}\ndirectory.id={}\nversion=1\ncluster.id={cluster}\n",
                config.node_id,
                base64_uuid(uuid::Uuid::new_v4())
            );
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, text).map_err(io)?;
            std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(io)?;
            std::fs::rename(&tmp, &path).map_err(io)?;
            Ok(cluster)
        }
        Err(e) => Err(io(e)),
    }
}

/// Kafka renders UUIDs (cluster ids, topic ids) as URL-safe base64 without
/// padding: 22 characters.
pub fn base64_uuid(id: uuid::Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(22);
    let mut acc = 0u32;
    let mut bits = 0;
    for b in bytes {
        acc = (acc << 8) | *b as u32;
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(ALPHABET[((acc >> bits) & 63) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (6 - bits)) & 63) as usize] as char);
    }
    out
}

fn new_cluster_id() -> String {
    base64_uuid(uuid::Uuid::new_v4())
}

/// A running node.
pub struct Server {
    pub broker: Arc<Broker>,
    pub data_dir: PathBuf,
    listeners: Vec<SocketAddr>,
    trigger: ShutdownTrigger,
    task: tokio::task::JoinHandle<()>,
    /// The data directory's lock, released when the server is dropped.
    _lock: std::fs::File,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("data_dir", &self.data_dir).field("listeners", &self.listeners).finish()
    }
}

impl Server {
    /// Opens `data_dir` (recovering it if needed), binds the listeners and
    /// starts serving.
    pub async fn start(config: BrokerConfig, data_dir: PathBuf) -> Result<Server, StartError> {
        let dir = data_dir.clone();
        let cfg = config.clone();
        // Recovery reads files: keep it off the async workers.
        let (topics, cluster_id, repairs, lock) = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir).map_err(|source| StartError::Io { path: dir.clone(), source })?;
            let lock = lock_data_dir(&dir)?;
            open_storage(&cfg, &dir).map(|(t, c, r)| (t, c, r, lock))
        })
        .await
        .map_err(|e| StartError::Invalid(format!("start-up task failed: {e}")))??;
        for r in &repairs {
            tracing::warn!("recovery: {r}");
        }
        let bound: Vec<BoundListener> = network::bind_config(&config).await.map_err(StartError::Bind)?;
        let listeners: Vec<SocketAddr> = bound.iter().map(|b| b.local_addr()).collect();
        let advertised = advertised_address(&config, &bound);
        let broker = Arc::new(Broker::new(config, topics, cluster_id, advertised));
        let (trigger, signal) = network::shutdown_channel();
        let task = tokio::spawn(network::serve(broker.clone(), bound, signal));
        // Open transactions time out and prepared ones finish after a
        // restart even if no transactional client comes back.
        // The coordinators load the internal partitions this node leads.
        broker.groups.start();
        let txns = broker.txns.clone();
        tokio::spawn(async move { txns.start().await });
        Ok(Server { broker, data_dir, listeners, trigger, task, _lock: lock })
    }

    pub fn listeners(&self) -> &[SocketAddr] {
        &self.listeners
    }

    /// Graceful stop: no new connections, in-flight requests finish, every
    /// log is flushed, checkpoints and the clean-shutdown marker written.
    pub async fn shutdown(self) -> Result<(), StartError> {
        self.broker.begin_shutdown();
        self.trigger.shutdown();
        let _ = self.task.await;
        let logs = self.broker.topics.logs().clone();
        tokio::task::spawn_blocking(move || logs.shutdown())
            .await
            .map_err(|e| StartError::Invalid(format!("shutdown task failed: {e}")))??;
        Ok(())
    }
}

/// Opens the data directory: meta.properties, the metadata log, the
/// partition logs (recovering them), the topic manager.
pub fn open_storage(config: &BrokerConfig, dir: &Path) -> Result<(Arc<TopicManager>, String, Vec<String>), StartError> {
    std::fs::create_dir_all(dir).map_err(|source| StartError::Io { path: dir.to_path_buf(), source })?;
    let cluster_id = ensure_meta_properties(dir, config)?;
    let meta = LocalMetadataLog::open(&dir.join(METADATA_DIR))?;
    let image = meta.committed().image;
    let defaults: std::collections::BTreeMap<String, String> =
        config.topic_defaults().into_iter().filter_map(|d| d.value.map(|v| (d.name.to_string(), v))).collect();
    // Logs open with the dynamic broker configs already applied.
    let d2 = crate::topic::replicas::effective_defaults(&defaults, &image, config.node_id);
    let config_for = move |tp: &TopicPartition| {
        let overrides = image.topic(&tp.topic).map(|t| t.configs.clone()).unwrap_or_default();
        crate::topic::config::to_log_config(&crate::topic::config::effective(&d2, &overrides))
    };
    let opts = ManagerOptions {
        checkpoint_interval_ms: config.log_flush_offset_checkpoint_interval_ms.max(1) as u64,
        retention_check_interval_ms: config.log_retention_check_interval_ms.max(1) as u64,
        producer_id_expiration_ms: i64::from(config.producer_id_expiration_ms),
        cleaner: CleanerOptions {
            enabled: config.log_cleaner_enable,
            backoff_ms: config.log_cleaner_backoff_ms.max(0) as u64,
            dedupe_buffer_bytes: config.log_cleaner_dedupe_buffer_size.max(0) as u64,
            io_buffer_bytes: config.log_cleaner_io_buffer_size.max(0) as usize,
            ..CleanerOptions::default()
        },
        ..ManagerOptions::default()
    };
    let (logs, report) = LogManager::open(dir, opts, config_for)?;
    logs.start_background();
    let topics = TopicManager::new(
        Arc::new(meta),
        logs,
        TopicDefaults {
            node_id: config.node_id,
            values: defaults,
            num_partitions: config.num_partitions,
            replication_factor: config.default_replication_factor,
            delete_enabled: config.delete_topic_enable,
        },
    )?;
    Ok((Arc::new(topics), cluster_id, report.repairs))
}

/// The (host, port) clients are told in Metadata: the first advertised
/// client listener; a port of 0 (ephemeral) becomes the bound port, an
/// empty host `localhost`.
fn advertised_address(config: &BrokerConfig, bound: &[BoundListener]) -> (String, i32) {
    let adv = config.advertised_listeners.iter().find(|l| !config.controller_listener_names.contains(&l.name));
    let Some(adv) = adv else {
        let b = bound.first().map(|b| b.local_addr());
        return ("localhost".into(), b.map(|a| a.port() as i32).unwrap_or(9092));
    };
    let host = if adv.host.is_empty() || adv.host == "0.0.0.0" || adv.host == "::" {
        "localhost".to_string()
    } else {
        adv.host.clone()
    };
    let port = if adv.port == 0 {
        bound.iter().find(|b| b.name() == adv.name).or(bound.first()).map(|b| b.local_addr().port()).unwrap_or(0)
    } else {
        adv.port
    };
    (host, port as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_uuid_is_kafka_style() {
        let id = uuid::Uuid::from_bytes([0; 16]);
        assert_eq!(base64_uuid(id), "AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(base64_uuid(uuid::Uuid::new_v4()).len(), 22);
    }
}
