//! The metadata log file: one record per line, `<crc32c hex> <json>`.
//! Replayed at start-up; a torn or corrupt last line (a crash mid-append)
//! is cut off, anything corrupt before the end stops start-up (the log is
//! the source of truth and silently dropping a middle record would lose
//! topics).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::image::Image;
use crate::record::MetadataRecord;

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("metadata log I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("metadata log {path} is corrupt at line {line}: {reason}")]
    Corrupt { path: PathBuf, line: usize, reason: String },
}

#[derive(Debug)]
pub struct MetadataStore {
    path: PathBuf,
    file: Mutex<File>,
    image: RwLock<Arc<Image>>,
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

impl MetadataStore {
    /// Opens `dir/metadata.log`, replaying it into the image.
    pub fn open(dir: &Path) -> Result<MetadataStore, MetaError> {
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
        Ok(MetadataStore { path, file: Mutex::new(file), image: RwLock::new(Arc::new(image)) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current image (a cheap snapshot).
    pub fn image(&self) -> Arc<Image> {
        self.image.read().clone()
    }

    /// Atomically decides and applies a change: `decide` sees the current
    /// image and returns the records to append plus a result. The records
    /// are durable before the new image is visible. Changes are serialised.
    pub fn update<T, E: From<MetaError>>(
        &self,
        decide: impl FnOnce(&Image) -> Result<(Vec<MetadataRecord>, T), E>,
    ) -> Result<T, E> {
        let mut file = self.file.lock();
        let current = self.image();
        let (records, out) = decide(&current)?;
        if records.is_empty() {
            return Ok(out);
        }
        let mut buf = String::new();
        for r in &records {
            buf.push_str(&encode(r));
        }
        file.write_all(buf.as_bytes()).map_err(MetaError::from)?;
        file.sync_data().map_err(MetaError::from)?;
        let mut next = (*current).clone();
        for r in &records {
            next.apply(r);
        }
        *self.image.write() = Arc::new(next);
        Ok(out)
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

    fn create(store: &MetadataStore, name: &str, parts: i32) -> Uuid {
        let id = Uuid::new_v4();
        store
            .update(|_| {
                let mut recs = vec![MetadataRecord::Topic { name: name.into(), id }];
                for p in 0..parts {
                    recs.push(MetadataRecord::Partition {
                        topic_id: id,
                        partition: p,
                        leader: 1,
                        replicas: vec![1],
                        isr: vec![1],
                        leader_epoch: 0,
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
        let store = MetadataStore::open(dir.path()).expect("open");
        let a = create(&store, "a", 3);
        create(&store, "b", 1);
        store
            .update(|_| {
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
        store
            .update(|img| {
                Ok::<_, MetaError>((vec![MetadataRecord::RemoveTopic { id: img.topic("b").expect("b").id }], ()))
            })
            .expect("rm");
        let before = store.image();
        drop(store);
        let mut f = OpenOptions::new().append(true).open(dir.path().join("metadata.log")).expect("open");
        f.write_all(b"1234abcd {\"type\":\"Top").expect("write torn");
        drop(f);
        let store = MetadataStore::open(dir.path()).expect("reopen");
        assert_eq!(*store.image(), *before);
        let t = store.image().topic("a").cloned().expect("a");
        assert_eq!(t.partitions.len(), 3);
        assert_eq!(t.configs.get("retention.ms").map(String::as_str), Some("1000"));
        assert!(store.image().topic("b").is_none());
        create(&store, "c", 2);
        drop(store);
        assert!(MetadataStore::open(dir.path()).expect("reopen").image().topic("c").is_some());
    }

    #[test]
    fn corruption_before_the_end_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = MetadataStore::open(dir.path()).expect("open");
        create(&store, "a", 1);
        create(&store, "b", 1);
        drop(store);
        let p = dir.path().join("metadata.log");
        let mut text = std::fs::read(&p).expect("read");
        text[12] ^= 0x01;
        std::fs::write(&p, text).expect("write");
        assert!(matches!(MetadataStore::open(dir.path()), Err(MetaError::Corrupt { line: 1, .. })));
    }
}
