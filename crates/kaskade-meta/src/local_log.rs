//! The metadata log of a single node: a local file, one record per line,
//! `<crc32c hex> <json>`, implementing [`MetadataLog`].
//!
//! Replayed at start-up; a torn or corrupt last line (a crash mid-append)
//! is cut off, anything corrupt before the end stops start-up (the log is
//! the source of truth and silently dropping a middle record would lose
//! topics). A snapshot rewrites the file as a `Snapshot` marker followed by
//! the records that rebuild the image, into a temporary file that is
//! fsynced and renamed over the log (the rename is the commit point: a crash
//! leaves either the old log or the new one, never both applied).
//!
//! Invariants: the file's records replay to exactly `committed().image`;
//! `append` is serialised by the file mutex and the image only moves after
//! the fsync; the version's offset is the image's `end_offset()`.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kaskade_types::NodeId;
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use crate::image::Image;
use crate::metadata_log::{Committed, MetadataLog, MetadataVersion};
use crate::record::MetadataRecord;

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("metadata log I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("metadata log {path} is corrupt at line {line}: {reason}")]
    Corrupt { path: PathBuf, line: usize, reason: String },
    /// The log moved after the change was decided; decide again.
    #[error("the metadata log is at {actual:?}, the change was decided at {based_on:?}")]
    Stale { based_on: MetadataVersion, actual: MetadataVersion },
    /// Other changes kept winning the race to append.
    #[error("the metadata change lost the race to append {0} times")]
    Contended(usize),
    /// This controller is not the quorum's leader (the active controller);
    /// `leader` is the one it knows of, if any. The change was not made.
    #[error("this controller is not the active controller (the leader is {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    /// The change was proposed but not known to be committed in time (the
    /// quorum may have lost its majority); it may still commit later.
    #[error("the metadata quorum did not commit the change within {0:?}")]
    Timeout(std::time::Duration),
    /// The quorum failed (its Raft node stopped, or a storage error).
    #[error("metadata quorum error: {0}")]
    Quorum(String),
}

/// The metadata log file of a single node.
#[derive(Debug)]
pub struct LocalMetadataLog {
    path: PathBuf,
    file: Mutex<File>,
    image: RwLock<Arc<Image>>,
    version: watch::Sender<MetadataVersion>,
}

fn encode(r: &MetadataRecord) -> String {
    // Serialising our own plain enum cannot fail.
    let json = serde_json::to_string(r).unwrap_or_default();
    format!("{:08x} {json}\n", crc32c(json.as_bytes()))
}

fn decode(line: &str) -> Result<MetadataRecord, String> {
    let (crc, json) = line.split_once(' ').ok_or("no separator")?;
    let crc = u32::from_str_radix(crc, 16).map_err(|_| "bad crc field")?;
    if crc32c(json.as_bytes()) != crc {
        return Err("crc mismatch".into());
    }
    serde_json::from_str(json).map_err(|e| e.to_string())
}

/// The local log never elects anyone: its epoch stays 0.
fn version_of(image: &Image) -> MetadataVersion {
    MetadataVersion { end_offset: image.end_offset(), epoch: 0 }
}

impl LocalMetadataLog {
    /// Opens `dir/metadata.log`, replaying it into the image.
    pub fn open(dir: &Path) -> Result<LocalMetadataLog, MetaError> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("metadata.log");
        let text = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let mut image = Image::default();
        let mut good_len = 0usize;
        let mut pos = 0usize;
        let mut line_no = 0;
        while pos < text.len() {
            line_no += 1;
            let Some(nl) = text[pos..].iter().position(|b| *b == b'\n') else {
                tracing::warn!(path = %path.display(), "cutting a torn last metadata record");
                break;
            };
            let line = String::from_utf8_lossy(&text[pos..pos + nl]);
            match decode(&line) {
                Ok(r) => image.apply(&r),
                Err(reason) => {
                    let is_last = pos + nl + 1 >= text.len();
                    if is_last {
                        tracing::warn!(path = %path.display(), %reason, "cutting a corrupt last metadata record");
                        break;
                    }
                    return Err(MetaError::Corrupt { path, line: line_no, reason });
                }
            }
            pos += nl + 1;
            good_len = pos;
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        if good_len < text.len() {
            file.set_len(good_len as u64)?;
        }
        let version = watch::channel(version_of(&image)).0;
        Ok(LocalMetadataLog { path, file: Mutex::new(file), image: RwLock::new(Arc::new(image)), version })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current image (a cheap snapshot).
    pub fn image(&self) -> Arc<Image> {
        self.image.read().clone()
    }
}

impl MetadataLog for LocalMetadataLog {
    fn committed(&self) -> Committed {
        let image = self.image();
        Committed { version: version_of(&image), image }
    }

    fn append(&self, based_on: MetadataVersion, records: Vec<MetadataRecord>) -> Result<Committed, MetaError> {
        let mut file = self.file.lock();
        let current = self.image();
        let actual = version_of(&current);
        if actual != based_on {
            return Err(MetaError::Stale { based_on, actual });
        }
        if records.is_empty() {
            return Ok(Committed { image: current, version: actual });
        }
        let mut buf = String::new();
        for r in &records {
            buf.push_str(&encode(r));
        }
        file.write_all(buf.as_bytes())?;
        file.sync_data()?;
        let mut next = (*current).clone();
        for r in &records {
            next.apply(r);
        }
        let next = Arc::new(next);
        *self.image.write() = next.clone();
        let version = version_of(&next);
        self.version.send_replace(version);
        Ok(Committed { image: next, version })
    }

    fn snapshot(&self) -> Result<MetadataVersion, MetaError> {
        let mut file = self.file.lock();
        let image = self.image();
        let version = version_of(&image);
        let records = image.to_records();
        let mut buf =
            encode(&MetadataRecord::Snapshot { end_offset: version.end_offset, records: records.len() as i64 });
        for r in &records {
            buf.push_str(&encode(r));
        }
        let tmp = self.path.with_extension("log.snapshot");
        {
            let mut f = File::create(&tmp)?;
            f.write_all(buf.as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        *file = OpenOptions::new().append(true).open(&self.path)?;
        Ok(version)
    }

    fn subscribe(&self) -> watch::Receiver<MetadataVersion> {
        self.version.subscribe()
    }
}

/// CRC-32C of a record line.
fn crc32c(bytes: &[u8]) -> u32 {
    // CRC-32 fits u32; the crate returns every width as u64.
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, bytes) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn create(store: &LocalMetadataLog, name: &str, parts: i32) -> Uuid {
        let id = Uuid::new_v4();
        crate::update(store, |_| {
            let mut recs = vec![MetadataRecord::Topic { name: name.into(), id }];
            for p in 0..parts {
                recs.push(MetadataRecord::Partition {
                    topic_id: id,
                    partition: p,
                    leader: 1,
                    replicas: vec![1],
                    isr: vec![1],
                    leader_epoch: 0,
                    partition_epoch: 0,
                    adding_replicas: Vec::new(),
                    removing_replicas: Vec::new(),
                });
            }
            Ok::<_, MetaError>((recs, ()))
        })
        .expect("update");
        id
    }

    #[test]
    fn replay_restores_the_image_and_cuts_a_torn_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalMetadataLog::open(dir.path()).expect("open");
        let a = create(&store, "a", 3);
        create(&store, "b", 1);
        crate::update(&store, |_| {
            Ok::<_, MetaError>((
                vec![MetadataRecord::TopicConfig {
                    topic_id: a,
                    name: "retention.ms".into(),
                    value: Some("1000".into()),
                }],
                (),
            ))
        })
        .expect("config");
        crate::update(&store, |img| {
            Ok::<_, MetaError>((vec![MetadataRecord::RemoveTopic { id: img.topic("b").expect("b").id }], ()))
        })
        .expect("rm");
        let before = store.image();
        drop(store);
        let mut f = OpenOptions::new().append(true).open(dir.path().join("metadata.log")).expect("open");
        f.write_all(b"1234abcd {\"type\":\"Top").expect("write torn");
        drop(f);
        let store = LocalMetadataLog::open(dir.path()).expect("reopen");
        assert_eq!(*store.image(), *before);
        let t = store.image().topic("a").cloned().expect("a");
        assert_eq!(t.partitions.len(), 3);
        assert_eq!(t.configs.get("retention.ms").map(String::as_str), Some("1000"));
        assert!(store.image().topic("b").is_none());
        create(&store, "c", 2);
        drop(store);
        assert!(LocalMetadataLog::open(dir.path()).expect("reopen").image().topic("c").is_some());
    }

    #[test]
    fn corruption_before_the_end_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalMetadataLog::open(dir.path()).expect("open");
        create(&store, "a", 1);
        create(&store, "b", 1);
        drop(store);
        let p = dir.path().join("metadata.log");
        let mut text = std::fs::read(&p).expect("read");
        text[12] ^= 0x01;
        std::fs::write(&p, text).expect("write");
        assert!(matches!(LocalMetadataLog::open(dir.path()), Err(MetaError::Corrupt { line: 1, .. })));
    }

    #[test]
    fn a_snapshot_rebuilds_the_same_image_and_version_and_the_log_goes_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalMetadataLog::open(dir.path()).expect("open");
        create(&store, "a", 2);
        let b = create(&store, "b", 1);
        crate::update(&store, |_| Ok::<_, MetaError>((vec![MetadataRecord::RemoveTopic { id: b }], ()))).expect("rm");
        crate::update(&store, |_| {
            Ok::<_, MetaError>((
                vec![
                    MetadataRecord::ProducerIds { next_block_start: 5000 },
                    MetadataRecord::BrokerConfig {
                        resource: "".into(),
                        name: "log.retention.ms".into(),
                        value: Some("9".into()),
                    },
                ],
                (),
            ))
        })
        .expect("misc");
        let before = store.committed();
        let lines_before = std::fs::read_to_string(store.path()).expect("read").lines().count();
        assert_eq!(store.snapshot().expect("snapshot"), before.version);
        let lines_after = std::fs::read_to_string(store.path()).expect("read").lines().count();
        assert!(lines_after < lines_before, "{lines_after} < {lines_before}: the removed topic's records are gone");
        assert_eq!(*store.image(), *before.image);
        create(&store, "c", 1);
        let after = store.committed();
        drop(store);
        let reopened = LocalMetadataLog::open(dir.path()).expect("reopen");
        assert_eq!(*reopened.image(), *after.image);
        assert_eq!(reopened.committed().version, after.version);
        assert_eq!(after.version.end_offset, before.version.end_offset + 2);
        assert!(!dir.path().join("metadata.log.snapshot").exists());
    }

    #[test]
    fn an_append_decided_on_an_old_version_is_refused_and_update_decides_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalMetadataLog::open(dir.path()).expect("open");
        let old = store.committed().version;
        let mut changes = store.subscribe();
        create(&store, "a", 1);
        assert!(changes.has_changed().expect("watch"));
        assert_eq!(*changes.borrow_and_update(), store.committed().version);
        let stale = store.append(old, vec![MetadataRecord::ProducerIds { next_block_start: 10 }]);
        assert!(matches!(stale, Err(MetaError::Stale { .. })), "{stale:?}");
        assert_eq!(store.image().next_producer_id(), 0, "a stale append changes nothing");
        // `update` re-reads the image when it loses a race: here the first
        // decision is made stale by an append that slips in between.
        let mut decisions = 0;
        crate::update(&store, |img| {
            decisions += 1;
            if decisions == 1 {
                let v = store.committed().version;
                store.append(v, vec![MetadataRecord::ProducerIds { next_block_start: 100 }]).expect("slip in");
            }
            Ok::<_, MetaError>((
                vec![MetadataRecord::ProducerIds { next_block_start: img.next_producer_id() + 1000 }],
                (),
            ))
        })
        .expect("update");
        assert_eq!(decisions, 2);
        assert_eq!(store.image().next_producer_id(), 1100);
    }
}
