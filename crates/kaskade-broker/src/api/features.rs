//! The cluster's KIP-584 features: what ApiVersions advertises (supported
//! ranges, finalized levels, their epoch) and what UpdateFeatures checks an
//! update against.
//!
//! Kaskade runs every feature at exactly one level, so the finalized level
//! is a function of the node's routes and quorum configuration, never a
//! metadata record: `metadata.version` always at [`METADATA_VERSION_LEVEL`];
//! `kraft.version` 0..1 where the KRaft quorum APIs are routed
//! (DescribeQuorum), finalized at 0 for static voters
//! (`controller.quorum.voters`) and 1 for KIP-853's dynamic membership;
//! `group.version` 1 (KIP-848) only when ConsumerGroupHeartbeat is routed,
//! `transaction.version` 2 (KIP-890) only when Produce v12+ and EndTxn v5+
//! are, so a Kafka 4 client never enables a protocol Kaskade lacks. Any
//! other feature Kafka knows is supported at level 0 only ("does not
//! support this feature", as Kafka answers for a feature whose range ends
//! at 0). Invariant: every finalized level lies in its supported range.
//!
//! The epoch is Kafka's: the offset of the last record in the metadata
//! image the answer was built from (`image.highestOffsetAndEpoch`).

use kafka_protocol::messages::api_versions_response::{FinalizedFeatureKey, SupportedFeatureKey};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::StrBytes;
use kaskade_meta::Image;

use crate::broker::Broker;
use crate::router::Router;

/// `metadata.version` levels: `MetadataVersion.MINIMUM_VERSION` (3.3-IV3)
/// to the level Kaskade finalizes, 4.0-IV3 (Kafka 4.0's latest production).
pub const METADATA_VERSION_MIN: i16 = 7;
/// The `metadata.version` level Kaskade finalizes (4.0-IV3).
pub const METADATA_VERSION_LEVEL: i16 = 25;

/// Every feature name Apache Kafka 4.4 knows (`Feature.FEATURES` plus
/// `metadata.version`); an update of another one at level 0 is "not found".
pub const KAFKA_FEATURES: [&str; 7] = [
    "metadata.version",
    "kraft.version",
    "group.version",
    "transaction.version",
    "eligible.leader.replicas.version",
    "share.version",
    "streams.version",
];

/// One feature: its supported range and the level it is finalized at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Feature {
    pub name: &'static str,
    pub min: i16,
    pub max: i16,
    pub level: i16,
}

/// The features of a node, in the order ApiVersions lists them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Features(Vec<Feature>);

impl Features {
    /// The cluster's features as `broker` runs them (its client listener's
    /// routes, its quorum's configuration): the same on both listeners.
    pub fn of_cluster(broker: &Broker) -> Self {
        Self::of(&broker.router, kraft_version(&broker.config.kraft))
    }

    /// The features of a node serving `router` on its client listener,
    /// whose quorum runs at `kraft_level`.
    pub fn of(router: &Router, kraft_level: i16) -> Self {
        let feature = |name, min, max, level| Feature { name, min, max, level };
        let mut features =
            vec![feature("metadata.version", METADATA_VERSION_MIN, METADATA_VERSION_LEVEL, METADATA_VERSION_LEVEL)];
        if router.get(ApiKey::DescribeQuorum).is_some() {
            features.push(feature("kraft.version", 0, 1, kraft_level));
        }
        if router.get(ApiKey::ConsumerGroupHeartbeat).is_some() {
            features.push(feature("group.version", 0, 1, 1));
        }
        if router.max_version(ApiKey::Produce).is_some_and(|v| v >= 12)
            && router.max_version(ApiKey::EndTxn).is_some_and(|v| v >= 5)
        {
            features.push(feature("transaction.version", 0, 2, 2));
        }
        debug_assert!(
            features.iter().all(|f| (f.min..=f.max).contains(&f.level)),
            "a finalized level outside its range: {features:?}"
        );
        Features(features)
    }

    /// The feature called `name`, if this node supports any level of it
    /// above 0.
    pub fn get(&self, name: &str) -> Option<Feature> {
        self.0.iter().find(|f| f.name == name).copied()
    }

    /// ApiVersions' supported features at `version`: a feature whose
    /// maximum is 0 is left out, and below v4 so are features whose minimum
    /// is 0 (KAFKA-17011).
    pub fn supported(&self, version: i16) -> Vec<SupportedFeatureKey> {
        self.0
            .iter()
            .filter(|f| f.max > 0 && (version >= 4 || f.min > 0))
            .map(|f| {
                SupportedFeatureKey::default()
                    .with_name(StrBytes::from_static_str(f.name))
                    .with_min_version(f.min)
                    .with_max_version(f.max)
            })
            .collect()
    }

    /// ApiVersions' finalized features: level-0 ones are left out.
    pub fn finalized(&self) -> Vec<FinalizedFeatureKey> {
        self.0
            .iter()
            .filter(|f| f.level > 0)
            .map(|f| {
                FinalizedFeatureKey::default()
                    .with_name(StrBytes::from_static_str(f.name))
                    .with_max_version_level(f.level)
                    .with_min_version_level(f.level)
            })
            .collect()
    }
}

/// The finalized-features epoch of answers built from `image`: the offset
/// of its last record (0 for an image of no record yet).
pub fn epoch(image: &Image) -> i64 {
    (image.end_offset() - 1).max(0)
}

/// The `kraft.version` level of the quorum `kraft` configures: 1 for a
/// dynamic quorum (KIP-853: no `controller.quorum.voters`, and
/// `controller.quorum.bootstrap.servers`, `controller.quorum.standalone` or
/// `controller.quorum.initial.controllers`), else 0 (static voters, or a
/// lone node).
pub fn kraft_version(kraft: &crate::config::KraftConfig) -> i16 {
    let dynamic = kraft.voters.is_empty()
        && (kraft.standalone || !kraft.initial_controllers.is_empty() || !kraft.bootstrap_servers.is_empty());
    i16::from(dynamic)
}
