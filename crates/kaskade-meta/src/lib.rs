//! Cluster metadata as KRaft keeps it: a log of records (topics,
//! partitions, configs) applied in order to an in-memory image.
//!
//! [`MetadataLog`] is the seam: what the rest of the node reads (the
//! committed image and its version, a watch) and how it changes it
//! (optimistic appends through [`update`], snapshots). On a single node the
//! log is a local file ([`LocalMetadataLog`]: `metadata.log` in
//! `<log.dir>/kaskade-metadata/`); a cluster's controller quorum
//! ([`quorum::QuorumMetadataLog`], on openraft) implements the same trait by
//! replicating the same records. Every change is
//! committed (fsynced) before the image moves, so what an admin request
//! acknowledged survives a crash.

pub mod election;
pub mod election_timer;
pub mod image;
pub mod leader_election;
pub mod liveness;
pub mod local_log;
pub mod metadata_log;
pub mod quorum;
pub mod reassignment;
pub mod record;
#[cfg(test)]
mod test_image;

pub use image::{BrokerRegistration, Image, PartitionImage, ScramCredential, TopicImage};
pub use local_log::{LocalMetadataLog, MetaError};
pub use metadata_log::{update, Committed, MetadataLog, MetadataVersion};
pub use quorum::{ObserverConfig, ObserverMetadataLog, QuorumConfig, QuorumMetadataLog, QuorumStatus};
pub use record::{BrokerEndpoint, BrokerProcess, MetadataRecord};
pub use uuid::Uuid;
