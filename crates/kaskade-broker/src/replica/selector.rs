//! Which replica a consumer should fetch from (KIP-392, Kafka's
//! `ReplicaSelector` plugins chosen by `replica.selector.class`): a pure
//! decision the leader makes per partition of a consumer's Fetch, from the
//! client's rack (the request's `RackId`, v11+), the leader's rack and the
//! in-sync followers it knows.
//!
//! - No selector (Kafka's default): always the leader.
//! - `RackAwareReplicaSelector`: a client without a rack, or in the
//!   leader's rack, reads from the leader; otherwise from the most
//!   caught-up in-sync follower in its rack (highest position, then the
//!   most recently caught up, then the lowest node id so the answer is
//!   stable), if one holds the fetch offset; else from the leader.
//!
//! The answer is a node other than the leader, or `None` (the leader
//! serves the fetch itself, as Kafka never sends the leader as
//! `PreferredReadReplica`).
//!
//! Invariant: a chosen replica is one of the candidates given (in-sync,
//! registered and unfenced: the caller's filter), in the client's rack,
//! holding the fetch offset.

use kaskade_types::{NodeId, Offset};

/// Kafka's rack-aware selector class, the one value of
/// `replica.selector.class` Kaskade implements.
pub const RACK_AWARE: &str = "org.apache.kafka.common.replica.RackAwareReplicaSelector";

/// The broker config key naming the selector.
pub const KEY: &str = "replica.selector.class";

/// The configured selector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicaSelector {
    /// Consumers always fetch from the leader (no `replica.selector.class`).
    LeaderOnly,
    /// `org.apache.kafka.common.replica.RackAwareReplicaSelector`.
    RackAware,
}

impl ReplicaSelector {
    /// From the config value (validated by the key registry: unset, empty or
    /// [`RACK_AWARE`]).
    pub fn from_config(value: Option<&str>) -> ReplicaSelector {
        match value.map(str::trim) {
            Some(RACK_AWARE) => ReplicaSelector::RackAware,
            _ => ReplicaSelector::LeaderOnly,
        }
    }
}

/// An in-sync follower as the leader knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate<'a> {
    pub node: NodeId,
    /// Its registered `broker.rack`.
    pub rack: Option<&'a str>,
    /// Its position as its last fetch reported.
    pub position: Offset,
    /// When (ms, the leader's clock) it was last caught up with the leader.
    pub caught_up_ms: i64,
}

/// The replica a consumer in `client_rack` fetching at `fetch_offset`
/// should read from, if not the leader (in `leader_rack`).
pub fn preferred_read_replica(
    selector: ReplicaSelector,
    client_rack: &str,
    leader_rack: Option<&str>,
    fetch_offset: Offset,
    candidates: &[Candidate<'_>],
) -> Option<NodeId> {
    if selector == ReplicaSelector::LeaderOnly || client_rack.is_empty() || leader_rack == Some(client_rack) {
        return None;
    }
    let chosen =
        candidates.iter().filter(|c| c.rack == Some(client_rack) && c.position >= fetch_offset).max_by(|a, b| {
            a.position.cmp(&b.position).then(a.caught_up_ms.cmp(&b.caught_up_ms)).then(b.node.cmp(&a.node))
        })?;
    debug_assert!(chosen.rack == Some(client_rack) && chosen.position >= fetch_offset);
    Some(chosen.node)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(node: i32, rack: &'static str, position: i64, caught_up_ms: i64) -> Candidate<'static> {
        Candidate { node: NodeId(node), rack: Some(rack), position: Offset(position), caught_up_ms }
    }

    const RA: ReplicaSelector = ReplicaSelector::RackAware;

    #[test]
    fn the_config_names_the_selector() {
        assert_eq!(ReplicaSelector::from_config(None), ReplicaSelector::LeaderOnly);
        assert_eq!(ReplicaSelector::from_config(Some("")), ReplicaSelector::LeaderOnly);
        assert_eq!(ReplicaSelector::from_config(Some(RACK_AWARE)), RA);
    }

    #[test]
    fn without_a_selector_or_a_rack_the_leader_serves() {
        let followers = [c(2, "b", 10, 0)];
        let leader_only = ReplicaSelector::LeaderOnly;
        assert_eq!(preferred_read_replica(leader_only, "b", Some("a"), Offset(5), &followers), None);
        assert_eq!(preferred_read_replica(RA, "", Some("a"), Offset(5), &followers), None, "no client.rack");
        assert_eq!(preferred_read_replica(RA, "b", Some("b"), Offset(5), &followers), None, "leader in the rack");
        assert_eq!(preferred_read_replica(RA, "c", Some("a"), Offset(5), &followers), None, "nobody in rack c");
    }

    #[test]
    fn the_most_caught_up_follower_in_the_clients_rack_that_holds_the_offset() {
        let followers = [c(2, "b", 10, 90), c(3, "b", 12, 50), c(4, "b", 12, 80), c(5, "a", 20, 90)];
        assert_eq!(preferred_read_replica(RA, "b", Some("a"), Offset(5), &followers), Some(NodeId(4)));
        assert_eq!(preferred_read_replica(RA, "b", None, Offset(12), &followers), Some(NodeId(4)));
        assert_eq!(preferred_read_replica(RA, "b", Some("a"), Offset(13), &followers), None, "none holds 13");
        let tie = [c(3, "b", 12, 10), c(2, "b", 12, 10)];
        assert_eq!(preferred_read_replica(RA, "b", Some("a"), Offset(0), &tie), Some(NodeId(2)), "stable");
        let rackless = [Candidate { rack: None, ..c(2, "b", 10, 0) }];
        assert_eq!(preferred_read_replica(RA, "b", Some("a"), Offset(0), &rackless), None);
    }
}
