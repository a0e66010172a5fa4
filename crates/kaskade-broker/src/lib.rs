//! Kaskade's broker: network listeners, the request router and one module
//! per Kafka API family, on top of the `kaskade-log` storage engine.

pub mod api;
pub mod broker;
pub mod cluster;
pub mod config;
pub mod coordinator;
pub mod error;
pub mod group;
pub mod inter_broker;
pub mod internal_topic;
pub mod meta_properties;
pub mod metrics;
pub mod network;
pub mod partition;
pub mod producer_ids;
pub mod replica;
pub mod router;
pub mod scram;
pub mod server;
pub mod topic;
pub mod txn;

pub use broker::Broker;
pub use config::BrokerConfig;
pub use error::BrokerError;
pub use server::Server;
