//! The transaction coordinator (exactly-once, KIP-98): transactional ids,
//! their producer ids and epochs, the partitions of their open
//! transactions, in `__transaction_state` with Kafka's schemas.
//!
//! - [`coordinator`]: the engine, pure state transitions (tested alone).
//! - [`records`]: the `__transaction_state` key and value schemas.
//! - [`service`]: persistence, markers, timeouts around the engine.
//! - `sim` (tests): a seeded simulation of the engine and its service.
//!
//! The partitions' side of a transaction (open transactions, markers, the
//! last stable offset, `.txnindex`) lives in `kaskade_log::txn`; offsets
//! committed in a transaction in `group::txn_offsets`.

pub mod coordinator;
pub mod records;
pub mod service;
pub mod state;

#[cfg(test)]
mod sim;

pub use service::{TxnSeams, TxnService};
pub use state::{TxnMetadata, TxnState};
