//! Cluster metadata as KRaft keeps it: a log of records (topics,
//! partitions, configs) applied in order to an in-memory image.
//!
//! On a single node the log is a local file (`metadata.log` in
//! `<log.dir>/kaskade-metadata/`); a cluster will replicate the same records.
//! Every change is appended and fsynced before the image moves, so what an
//! admin request acknowledged survives a crash.

pub mod image;
pub mod log;
pub mod record;

pub use image::{Image, PartitionImage, ScramCredential, TopicImage};
pub use log::{MetaError, MetadataStore};
pub use record::MetadataRecord;
pub use uuid::Uuid;
