//! Kaskade's small async Kafka client: the CLI's, and the broker's
//! integration tests'. It speaks only the standard protocol, at versions
//! negotiated with ApiVersions, so it works against Kaskade and Apache
//! Kafka alike, and it knows nothing of the broker (it must never depend on
//! `kaskade-broker`: the tests that use it would then test the broker
//! against itself).
//!
//! - [`connection`]: one broker connection (frames, correlation ids,
//!   pipelining, version negotiation).
//! - [`cluster`]: bootstrap, Metadata, per-broker connections.
//! - [`producer`], [`fetcher`]: Produce / ListOffsets / Fetch routed to
//!   partition leaders.
//! - [`admin`]: topic administration; [`group`]: consumer groups;
//!   [`txn`]: transactions (list, describe).
//! - [`records`]: magic-v2 record batches; [`partitioner`]: Kafka's
//!   default partitioner.
//! - [`error`]: [`ClientError`], the one error of every call (what failed:
//!   I/O, a timeout, the protocol, no leader or coordinator, or the
//!   broker's [`KafkaError`] with its `ResponseError` and message).
//!
//! Offsets, node ids, leader epochs, producer ids and epochs and
//! topic-partitions are `kaskade-types`' types; "none" is an `Option`,
//! never the wire's -1.
//!
//! Point a [`Client`] at any `host:port` list:
//! `Client::new("127.0.0.1:9092")`.

pub mod admin;
pub mod cluster;
pub mod connection;
pub mod error;
pub mod fetcher;
pub mod group;
pub mod partitioner;
pub mod producer;
pub mod records;
pub mod txn;

pub use cluster::Client;
pub use error::{ClientError, KafkaError};
