//! `meta.properties`: the identity of a data directory, in Kafka's format
//! and with Kafka's keys (`version=1`, `node.id`, `cluster.id`,
//! `directory.id`), so a directory says which cluster and which node it
//! belongs to.
//!
//! On first start the file is written (temporary file, fsync, rename, fsync
//! of the directory) with the configured cluster id (`cluster.id` /
//! `CLUSTER_ID`), else a new one. Afterwards the stored ids win: a node
//! configured with another cluster id or node id refuses to start, naming
//! both ids and the directory, as Kafka refuses. Directories written by
//! earlier Kaskade versions hold the same file; one without `directory.id`
//! (or a Kafka `version=0` file naming `broker.id`) is completed and
//! rewritten, keeping its ids.
//!
//! Invariant: once written, the cluster id and node id of a directory never
//! change.

use std::path::{Path, PathBuf};

use kaskade_types::NodeId;

/// The file's name in the data directory.
pub const META_PROPERTIES: &str = "meta.properties";

/// A data directory's identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaProperties {
    /// The node that owns the directory.
    pub node_id: NodeId,
    /// The cluster the directory belongs to.
    pub cluster_id: String,
    /// The directory's own id (Kafka's JBOD directory id).
    pub directory_id: String,
}

/// Why a data directory's identity cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MetaPropertiesError {
    /// The file or its directory cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file exists but lacks a key or holds a bad value.
    #[error("{path}: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The directory belongs to another cluster.
    #[error(
        "data directory {} belongs to cluster {stored} (its meta.properties), but this node is configured with cluster id {configured} (cluster.id / CLUSTER_ID); point log.dirs at this cluster's data, or remove the directory to start a new node",
        dir.display()
    )]
    ClusterMismatch {
        /// The data directory.
        dir: PathBuf,
        /// The id in `meta.properties`.
        stored: String,
        /// The configured id.
        configured: String,
    },
    /// The directory belongs to another node.
    #[error(
        "data directory {} belongs to node.id {stored} (its meta.properties), but this node is configured with node.id {configured}; if you moved the data, configure node.id {stored}, or remove the directory to start a new node",
        dir.display()
    )]
    NodeMismatch {
        /// The data directory.
        dir: PathBuf,
        /// The id in `meta.properties`.
        stored: i32,
        /// The configured id.
        configured: i32,
    },
    /// The directory's id is not the one `controller.quorum.initial.controllers`
    /// gives this node.
    #[error(
        "data directory {} has directory.id {stored} (its meta.properties), but controller.quorum.initial.controllers gives this node directory id {configured}; give the directory's id there, or remove the directory to start a new node",
        dir.display()
    )]
    DirectoryMismatch {
        /// The data directory.
        dir: PathBuf,
        /// The id in `meta.properties`.
        stored: String,
        /// The configured id.
        configured: String,
    },
}

/// Reads the directory's `meta.properties`, checking it against the
/// configured ids, or writes it on first start; see the module docs.
pub fn ensure(
    dir: &Path,
    node_id: NodeId,
    configured_cluster: Option<&str>,
) -> Result<MetaProperties, MetaPropertiesError> {
    ensure_with_directory(dir, node_id, configured_cluster, None)
}

/// [`ensure`], with the directory id a first start writes given
/// (`controller.quorum.initial.controllers`' entry for this node, as Kafka's
/// format writes it) and checked against the stored one after.
pub fn ensure_with_directory(
    dir: &Path,
    node_id: NodeId,
    configured_cluster: Option<&str>,
    directory_id: Option<uuid::Uuid>,
) -> Result<MetaProperties, MetaPropertiesError> {
    let path = dir.join(META_PROPERTIES);
    let io = |source| MetaPropertiesError::Io { path: path.clone(), source };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let props = MetaProperties {
                node_id,
                cluster_id: configured_cluster.map(str::to_string).unwrap_or_else(|| base64_uuid(uuid::Uuid::new_v4())),
                directory_id: base64_uuid(directory_id.unwrap_or_else(uuid::Uuid::new_v4)),
            };
            write(dir, &props)?;
            return Ok(props);
        }
        Err(e) => return Err(io(e)),
    };
    let (props, complete) =
        parse(&text).map_err(|reason| MetaPropertiesError::Malformed { path: path.clone(), reason })?;
    if let Some(configured) = configured_cluster {
        if configured != props.cluster_id {
            return Err(MetaPropertiesError::ClusterMismatch {
                dir: dir.to_path_buf(),
                stored: props.cluster_id,
                configured: configured.to_string(),
            });
        }
    }
    if props.node_id != node_id {
        return Err(MetaPropertiesError::NodeMismatch {
            dir: dir.to_path_buf(),
            stored: props.node_id.0,
            configured: node_id.0,
        });
    }
    if let Some(configured) = directory_id.map(base64_uuid) {
        if configured != props.directory_id {
            return Err(MetaPropertiesError::DirectoryMismatch {
                dir: dir.to_path_buf(),
                stored: props.directory_id,
                configured,
            });
        }
    }
    if !complete {
        tracing::info!(path = %path.display(), "completing meta.properties (version=1, directory.id)");
        write(dir, &props)?;
    }
    Ok(props)
}

/// Parses the file; the flag is false when it must be rewritten as
/// version 1 with a directory id (a new one is made up here).
fn parse(text: &str) -> Result<(MetaProperties, bool), String> {
    let props = crate::config::parse_properties(text);
    let get = |k: &str| props.iter().rev().find(|(key, _)| key == k).map(|(_, v)| v.trim().to_string());
    let version = get("version").unwrap_or_else(|| "0".into());
    let node_key = match version.as_str() {
        "1" => "node.id",
        "0" => "broker.id",
        other => return Err(format!("unsupported meta.properties version {other} (expected 0 or 1)")),
    };
    let cluster_id = get("cluster.id").filter(|c| !c.is_empty()).ok_or("no cluster.id")?;
    let node = get(node_key).or_else(|| get("node.id")).ok_or_else(|| format!("no {node_key}"))?;
    let node_id = node.parse::<i32>().map_err(|_| format!("invalid {node_key} '{node}'"))?;
    let directory_id = get("directory.id").filter(|d| !d.is_empty());
    let complete = version == "1" && directory_id.is_some();
    let directory_id = directory_id.unwrap_or_else(|| base64_uuid(uuid::Uuid::new_v4()));
    Ok((MetaProperties { node_id: NodeId(node_id), cluster_id, directory_id }, complete))
}

/// Writes the file atomically and durably, with the keys Kafka writes.
fn write(dir: &Path, props: &MetaProperties) -> Result<(), MetaPropertiesError> {
    let path = dir.join(META_PROPERTIES);
    let io = |source| MetaPropertiesError::Io { path: path.clone(), source };
    let text = format!(
        "#\n#Written by Kaskade\nnode.id={}\ndirectory.id={}\nversion=1\ncluster.id={}\n",
        props.node_id, props.directory_id, props.cluster_id
    );
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    // The rename is durable only once the directory is synced.
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)
}

const BASE64_URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Kafka renders UUIDs (cluster ids, topic ids) as URL-safe base64 without
/// padding: 22 characters.
pub fn base64_uuid(id: uuid::Uuid) -> String {
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(22);
    let mut acc = 0u32;
    let mut bits = 0;
    for b in bytes {
        acc = (acc << 8) | *b as u32;
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(BASE64_URL[((acc >> bits) & 63) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(BASE64_URL[((acc << (6 - bits)) & 63) as usize] as char);
    }
    out
}

/// Reads a UUID written by [`base64_uuid`] (Kafka's `Uuid.fromString`);
/// `None` unless it is 22 URL-safe base64 characters of 16 bytes.
pub fn parse_base64_uuid(text: &str) -> Option<uuid::Uuid> {
    if text.len() != 22 {
        return None;
    }
    let mut bytes = [0u8; 16];
    let (mut acc, mut bits, mut n) = (0u32, 0, 0);
    for c in text.bytes() {
        let v = BASE64_URL.iter().position(|b| *b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            *bytes.get_mut(n)? = (acc >> bits) as u8;
            n += 1;
        }
    }
    // The two bits left over must be zero, as in a canonical encoding.
    (n == 16 && acc & ((1 << bits) - 1) == 0).then(|| uuid::Uuid::from_bytes(bytes))
}

/// Checks a cluster id as Kafka's `Uuid.fromString` does (what
/// `kafka-storage format --cluster-id` accepts): URL-safe base64 of 16
/// bytes, 22 characters without padding.
pub fn validate_cluster_id(text: &str) -> Result<(), String> {
    let prefix: String = text.chars().take(22).collect();
    if text.chars().count() > 24 {
        return Err(format!("Input string with prefix `{prefix}` is too long to be decoded as a base64 UUID"));
    }
    let unpadded = text.trim_end_matches('=');
    let mut bits = 0usize;
    for c in unpadded.bytes() {
        if !BASE64_URL.contains(&c) {
            return Err(format!(
                "Input string `{text}` is not a URL-safe base64 UUID (invalid character '{}')",
                c as char
            ));
        }
        bits += 6;
    }
    let bytes = bits / 8;
    if bytes != 16 {
        return Err(format!(
            "Input string `{text}` decoded as {bytes} bytes, which is not equal to the expected 16 bytes of a base64-encoded UUID"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn base64_uuids_read_back() {
        for _ in 0..100 {
            let id = uuid::Uuid::new_v4();
            assert_eq!(parse_base64_uuid(&base64_uuid(id)), Some(id));
        }
        assert_eq!(parse_base64_uuid("AAAAAAAAAAAAAAAAAAAAAQ"), Some(uuid::Uuid::from_u128(1)));
        for bad in
            ["", "AAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAA=", "AAAAAAAAAAAAAAAAAAAAAB", "AAAAAAAAAAAAAAAAAAAAA+"]
        {
            assert_eq!(parse_base64_uuid(bad), None, "{bad}");
        }
    }

    #[test]
    fn base64_uuid_is_kafka_style() {
        assert_eq!(base64_uuid(uuid::Uuid::from_bytes([0; 16])), "AAAAAAAAAAAAAAAAAAAAAA");
        let id = base64_uuid(uuid::Uuid::new_v4());
        assert_eq!(id.len(), 22);
        assert_eq!(validate_cluster_id(&id), Ok(()));
    }

    #[test]
    fn cluster_ids_are_checked_as_kafka_parses_them() {
        // The seeds' CLUSTER_ID and the Apache image's default.
        assert_eq!(validate_cluster_id("MkU3OEVBNTcwNTJENDM2Qk"), Ok(()));
        assert_eq!(validate_cluster_id("5L6g3nShT-eMCtK--X86sw"), Ok(()));
        assert_eq!(
            validate_cluster_id("my-cluster").unwrap_err(),
            "Input string `my-cluster` decoded as 7 bytes, which is not equal to the expected 16 bytes of a base64-encoded UUID"
        );
        assert!(validate_cluster_id("MkU3OEVBNTcwNTJENDM2Qk+").unwrap_err().contains("invalid character '+'"));
        assert!(validate_cluster_id(&"A".repeat(40)).unwrap_err().contains("too long"));
    }

    #[test]
    fn first_start_writes_kafkas_keys_and_the_configured_cluster_id() {
        let d = dir();
        let p = ensure(d.path(), NodeId(3), Some("MkU3OEVBNTcwNTJENDM2Qk")).unwrap();
        assert_eq!(p.cluster_id, "MkU3OEVBNTcwNTJENDM2Qk");
        assert_eq!(p.node_id, NodeId(3));
        let text = std::fs::read_to_string(d.path().join(META_PROPERTIES)).unwrap();
        for line in
            ["version=1", "node.id=3", "cluster.id=MkU3OEVBNTcwNTJENDM2Qk", &format!("directory.id={}", p.directory_id)]
        {
            assert!(text.lines().any(|l| l == line), "{line} in {text}");
        }
        assert!(!d.path().join("meta.tmp").exists());
        // Later starts read the same identity, with or without a configured id.
        assert_eq!(ensure(d.path(), NodeId(3), None).unwrap(), p);
        assert_eq!(ensure(d.path(), NodeId(3), Some("MkU3OEVBNTcwNTJENDM2Qk")).unwrap(), p);
    }

    #[test]
    fn an_initial_controllers_directory_id_is_written_once_and_checked_after() {
        let d = dir();
        let given = uuid::Uuid::from_u128(42);
        let p = ensure_with_directory(d.path(), NodeId(1), Some("MkU3OEVBNTcwNTJENDM2Qk"), Some(given)).unwrap();
        assert_eq!(parse_base64_uuid(&p.directory_id), Some(given));
        assert_eq!(ensure_with_directory(d.path(), NodeId(1), None, Some(given)).unwrap(), p);
        assert_eq!(ensure(d.path(), NodeId(1), None).unwrap(), p, "without the list: the stored id");
        let before = std::fs::read_to_string(d.path().join(META_PROPERTIES)).unwrap();
        let other = uuid::Uuid::from_u128(7);
        let err = ensure_with_directory(d.path(), NodeId(1), None, Some(other)).unwrap_err();
        assert!(matches!(err, MetaPropertiesError::DirectoryMismatch { .. }), "{err:?}");
        let msg = err.to_string();
        for part in [p.directory_id.as_str(), &base64_uuid(other), "controller.quorum.initial.controllers"] {
            assert!(msg.contains(part), "{part} in {msg}");
        }
        assert_eq!(std::fs::read_to_string(d.path().join(META_PROPERTIES)).unwrap(), before, "nothing written");
    }

    #[test]
    fn a_generated_cluster_id_is_kept() {
        let d = dir();
        let p = ensure(d.path(), NodeId(1), None).unwrap();
        assert_eq!(validate_cluster_id(&p.cluster_id), Ok(()));
        assert_eq!(ensure(d.path(), NodeId(1), None).unwrap().cluster_id, p.cluster_id);
    }

    #[test]
    fn another_cluster_or_node_is_refused_naming_both_ids_and_the_directory() {
        let d = dir();
        ensure(d.path(), NodeId(1), Some("MkU3OEVBNTcwNTJENDM2Qk")).unwrap();
        let before = std::fs::read_to_string(d.path().join(META_PROPERTIES)).unwrap();
        let err = ensure(d.path(), NodeId(1), Some("5L6g3nShT-eMCtK--X86sw")).unwrap_err();
        assert!(matches!(err, MetaPropertiesError::ClusterMismatch { .. }), "{err:?}");
        let msg = err.to_string();
        for part in ["MkU3OEVBNTcwNTJENDM2Qk", "5L6g3nShT-eMCtK--X86sw", &d.path().display().to_string()] {
            assert!(msg.contains(part), "{part} in {msg}");
        }
        let err = ensure(d.path(), NodeId(2), None).unwrap_err();
        assert!(matches!(err, MetaPropertiesError::NodeMismatch { stored: 1, configured: 2, .. }), "{err:?}");
        assert!(err.to_string().contains("belongs to node.id 1") && err.to_string().contains("node.id 2"), "{err}");
        // A refusal changes nothing.
        assert_eq!(std::fs::read_to_string(d.path().join(META_PROPERTIES)).unwrap(), before);
    }

    #[test]
    fn files_of_earlier_kaskade_and_kafka_v0_are_read_and_completed() {
        // As Kaskade wrote it before this module existed.
        let d = dir();
        let old = "#\n#Written by Kaskade\nnode.id=1\ndirectory.id=AAAAAAAAAAAAAAAAAAAAAQ\nversion=1\ncluster.id=oldClusterIdNotUuid\n";
        std::fs::write(d.path().join(META_PROPERTIES), old).unwrap();
        let p = ensure(d.path(), NodeId(1), None).unwrap();
        assert_eq!(p.cluster_id, "oldClusterIdNotUuid");
        assert_eq!(p.directory_id, "AAAAAAAAAAAAAAAAAAAAAQ");
        assert_eq!(
            std::fs::read_to_string(d.path().join(META_PROPERTIES)).unwrap(),
            old,
            "a complete file is not rewritten"
        );

        // Without directory.id, and Kafka's version 0 with broker.id.
        for text in ["version=1\nnode.id=4\ncluster.id=c1\n", "version=0\nbroker.id=4\ncluster.id=c1\n"] {
            let d = dir();
            std::fs::write(d.path().join(META_PROPERTIES), text).unwrap();
            let p = ensure(d.path(), NodeId(4), None).unwrap();
            assert_eq!((p.node_id, p.cluster_id.as_str()), (NodeId(4), "c1"));
            let again = ensure(d.path(), NodeId(4), None).unwrap();
            assert_eq!(again, p, "the completed file keeps its new directory id");
            let now = std::fs::read_to_string(d.path().join(META_PROPERTIES)).unwrap();
            assert!(now.contains("version=1") && now.contains("node.id=4"), "{now}");
        }
    }

    #[test]
    fn malformed_files_stop_start_up() {
        for (text, reason) in [
            ("version=1\nnode.id=1\n", "no cluster.id"),
            ("version=1\ncluster.id=c\n", "no node.id"),
            ("version=1\nnode.id=x\ncluster.id=c\n", "invalid node.id 'x'"),
            ("version=7\nnode.id=1\ncluster.id=c\n", "unsupported meta.properties version 7"),
        ] {
            let d = dir();
            std::fs::write(d.path().join(META_PROPERTIES), text).unwrap();
            let err = ensure(d.path(), NodeId(1), None).unwrap_err();
            assert!(matches!(err, MetaPropertiesError::Malformed { .. }), "{err:?}");
            assert!(err.to_string().contains(reason), "{reason}: {err}");
        }
    }
}
