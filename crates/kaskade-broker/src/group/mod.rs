//! The group coordinator for Kafka's classic group protocol, as a state
//! machine without I/O (DESIGN.md, "State machines without I/O").
//!
//! Requests and timer ticks go in with the current time in milliseconds;
//! answers come out, some at once, some later ([`Completion`]s for parked
//! JoinGroup and SyncGroup requests, drained from the outbox). The async
//! driver around it only feeds events and delivers answers.
//!
//! Semantics follow Apache Kafka 4.x's `GroupMetadataManager` for classic
//! groups: KIP-394 (member id required), KIP-345 (static membership),
//! KIP-814 (skip assignment for a rejoining static leader), the initial
//! rebalance delay, `group.max.size`, pending-sync expiry.

mod coordinator;
mod deletes;
mod driver;
mod offsets;
pub mod records;
mod state;
mod static_join;
mod store;
mod txn_offsets;
mod types;
mod writes;

#[cfg(test)]
mod deadline_tests;
#[cfg(test)]
mod delete_tests;
#[cfg(test)]
mod durability_tests;
#[cfg(test)]
mod leadership_tests;
#[cfg(test)]
mod offset_tests;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod throughput_tests;
#[cfg(test)]
mod write_tests;

pub use coordinator::GroupCoordinator;
pub use driver::{Gate, GroupService};
pub use txn_offsets::TxnOffsetChange;
pub use writes::WriteId;

/// Wall-clock milliseconds, for handlers that report times (the services
/// use their injected clock).
pub fn now_ms() -> i64 {
    use kaskade_types::Clock;
    kaskade_types::SystemClock.now_ms()
}
pub use state::{
    parse_subscription_topics, CommittedOffset, Group, GroupState, Member, OffsetChange, CONSUMER_PROTOCOL_TYPE,
};
pub use types::*;
