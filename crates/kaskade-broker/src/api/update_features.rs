//! UpdateFeatures (57): `kafka-features upgrade / downgrade / disable`,
//! decided by the active controller (a broker forwards it, as Kafka's
//! `maybeForwardToController`).
//!
//! [`decide`] checks each update in request order with Kafka 4.4's rules
//! and messages (`FeatureControlManager.updateFeature`, compared with
//! Kafka 4.4's answers through `kafka-features`): a known upgrade type; a
//! level not below 0; a level the local controller supports ("only
//! supports versions MIN-MAX", or "does not support this feature" for a
//! range ending at 0); a lower level only with a downgrade type, a higher
//! one only with UPGRADE; `metadata.version` is never downgraded (a safe
//! downgrade "might delete metadata information", an unsafe one "is not
//! supported"); `kraft.version` is never downgraded; a feature Kafka does
//! not know is "not found". The first failing update fails them all
//! (INVALID_UPDATE_VERSION, "The update failed for all features since the
//! following feature had an error: ..."), as Kafka's controller answers.
//!
//! Kaskade runs each feature at one level (`api::features`), so the only
//! update that passes Kafka's checks and could change a level is refused
//! by a last check of Kaskade's own ("Kaskade runs F at level L only",
//! DIFFERENCES.md): an update that passes names the level already
//! finalized, and nothing is written. Brokers' own supported ranges are
//! not consulted (every node of a cluster runs the same features).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::update_features_response::UpdatableFeatureResult;
use kafka_protocol::messages::{UpdateFeaturesRequest, UpdateFeaturesResponse};
use kafka_protocol::protocol::StrBytes;
use kaskade_types::NodeId;

use super::features::{Features, KAFKA_FEATURES};
use crate::broker::Broker;
use crate::error::BrokerError;

/// Kafka's `FeatureUpdate.UpgradeType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpgradeType {
    Upgrade,
    SafeDowngrade,
    UnsafeDowngrade,
    /// A code Kafka does not define.
    Unknown,
}

impl UpgradeType {
    /// The request's type: v0's `allow_downgrade` means a safe downgrade,
    /// v1+ carries Kafka's code (1, 2, 3).
    fn of(version: i16, allow_downgrade: bool, code: i8) -> Self {
        if version == 0 {
            return if allow_downgrade { UpgradeType::SafeDowngrade } else { UpgradeType::Upgrade };
        }
        match code {
            1 => UpgradeType::Upgrade,
            2 => UpgradeType::SafeDowngrade,
            3 => UpgradeType::UnsafeDowngrade,
            _ => UpgradeType::Unknown,
        }
    }
}

/// One requested change: finalize `name` at `level`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    pub name: String,
    pub level: i16,
    pub kind: UpgradeType,
}

/// Whether every update may be made on a cluster running `features`,
/// decided by controller `controller`; the first failing update's message
/// otherwise.
pub fn decide(features: &Features, controller: NodeId, updates: &[Update]) -> Result<(), String> {
    updates.iter().try_for_each(|u| check(features, controller, u))
}

fn check(features: &Features, controller: NodeId, u: &Update) -> Result<(), String> {
    let invalid = |why: &str| Err(format!("Invalid update version {} for feature {}. {why}", u.level, u.name));
    if u.kind == UpgradeType::Unknown {
        return invalid("The controller does not support the given upgrade type.");
    }
    let feature = features.get(&u.name);
    let current = feature.map_or(0, |f| f.level);
    if u.level < 0 {
        return invalid("A feature version cannot be less than 0.");
    }
    let (min, max) = feature.map_or((0, 0), |f| (f.min, f.max));
    if !(min..=max).contains(&u.level) {
        let who = format!("Local controller {}", controller.0);
        return if max == 0 {
            invalid(&format!("{who} does not support this feature."))
        } else {
            invalid(&format!("{who} only supports versions {min}-{max}"))
        };
    }
    if u.level < current && u.kind == UpgradeType::Upgrade {
        return invalid(
            "Can't downgrade the version of this feature without setting the upgrade type to either safe or \
             unsafe downgrade.",
        );
    }
    if u.level > current && u.kind != UpgradeType::Upgrade {
        return invalid("Can't downgrade to a newer version.");
    }
    match u.name.as_str() {
        "metadata.version" if u.level < current => {
            let why = if u.kind == UpgradeType::UnsafeDowngrade {
                "Unsafe metadata downgrade is not supported in this version."
            } else {
                "Refusing to perform the requested downgrade because it might delete metadata information."
            };
            return Err(format!("Unsupported metadata.version downgrade from {current} to {}. {why}", u.level));
        }
        "kraft.version" if u.level < current => return invalid("Can't downgrade the version of this feature."),
        name if !KAFKA_FEATURES.contains(&name) => return invalid(&format!("Feature {name} not found.")),
        _ => {}
    }
    if u.level != current {
        return invalid(&format!("Kaskade runs {} at level {current} only.", u.name));
    }
    Ok(())
}

pub async fn handle(
    broker: &Arc<Broker>,
    version: i16,
    req: UpdateFeaturesRequest,
) -> Result<UpdateFeaturesResponse, BrokerError> {
    let updates: Vec<Update> = req
        .feature_updates
        .iter()
        .map(|f| Update {
            name: f.feature.to_string(),
            level: f.max_version_level,
            kind: UpgradeType::of(version, f.allow_downgrade, f.upgrade_type),
        })
        .collect();
    Ok(match decide(&Features::of_cluster(broker), broker.node_id(), &updates) {
        Err(why) => {
            tracing::warn!(%why, "UpdateFeatures refused");
            UpdateFeaturesResponse::default()
                .with_error_code(ResponseError::InvalidUpdateVersion.code())
                .with_error_message(Some(StrBytes::from_string(format!(
                    "The update failed for all features since the following feature had an error: {why}"
                ))))
        }
        // Only v0 and v1 list a result per feature on success.
        Ok(()) if version <= 1 => UpdateFeaturesResponse::default().with_results(
            req.feature_updates
                .iter()
                .map(|f| UpdatableFeatureResult::default().with_feature(f.feature.clone()))
                .collect(),
        ),
        Ok(()) => UpdateFeaturesResponse::default(),
    })
}

/// Decided on this node (a lone node, or the active controller).
mod decide_route {
    crate::route_to!(UpdateFeatures, super::handle);
}

crate::forwarded_routes!(decide_route::route);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::Router;

    /// A static quorum's node routing DescribeQuorum: metadata.version 7..25
    /// at 25, kraft.version 0..1 at 0.
    fn features() -> Features {
        Features::of(&Router::default(), 0)
    }

    fn update(name: &str, level: i16, kind: UpgradeType) -> Update {
        Update { name: name.into(), level, kind }
    }

    fn one(name: &str, level: i16, kind: UpgradeType) -> Result<(), String> {
        decide(&features(), NodeId(1), &[update(name, level, kind)])
    }

    use UpgradeType::*;

    #[test]
    fn the_finalized_level_again_is_accepted_and_changes_nothing() {
        assert_eq!(one("metadata.version", 25, Upgrade), Ok(()));
        assert_eq!(one("kraft.version", 0, Upgrade), Ok(()));
        // A feature Kaskade does not run, at 0 (`kafka-features disable`).
        assert_eq!(one("group.version", 0, SafeDowngrade), Ok(()));
        assert_eq!(one("transaction.version", 0, UnsafeDowngrade), Ok(()));
        assert_eq!(decide(&features(), NodeId(1), &[]), Ok(()));
    }

    #[test]
    fn levels_outside_the_supported_range_get_kafkas_messages() {
        assert_eq!(
            one("metadata.version", 40, Upgrade),
            Err("Invalid update version 40 for feature metadata.version. Local controller 1 only supports versions \
                 7-25"
                .into())
        );
        assert_eq!(
            one("metadata.version", 5, SafeDowngrade),
            Err("Invalid update version 5 for feature metadata.version. Local controller 1 only supports versions \
                 7-25"
                .into())
        );
        assert_eq!(
            one("kraft.version", 2, Upgrade),
            Err("Invalid update version 2 for feature kraft.version. Local controller 1 only supports versions 0-1"
                .into())
        );
        assert_eq!(
            one("group.version", 1, Upgrade),
            Err("Invalid update version 1 for feature group.version. Local controller 1 does not support this \
                 feature."
                .into())
        );
        assert_eq!(
            one("nosuch", 1, Upgrade),
            Err("Invalid update version 1 for feature nosuch. Local controller 1 does not support this feature.".into())
        );
        assert_eq!(
            one("group.version", -1, SafeDowngrade),
            Err("Invalid update version -1 for feature group.version. A feature version cannot be less than 0.".into())
        );
    }

    #[test]
    fn the_upgrade_type_must_match_the_direction() {
        assert_eq!(
            one("metadata.version", 20, Upgrade),
            Err("Invalid update version 20 for feature metadata.version. Can't downgrade the version of this feature \
                 without setting the upgrade type to either safe or unsafe downgrade."
                .into())
        );
        assert_eq!(
            one("kraft.version", 1, SafeDowngrade),
            Err("Invalid update version 1 for feature kraft.version. Can't downgrade to a newer version.".into())
        );
        assert_eq!(
            one("metadata.version", 25, Unknown),
            Err("Invalid update version 25 for feature metadata.version. The controller does not support the given \
                 upgrade type."
                .into())
        );
    }

    #[test]
    fn metadata_and_kraft_versions_are_never_downgraded() {
        assert_eq!(
            one("metadata.version", 20, SafeDowngrade),
            Err("Unsupported metadata.version downgrade from 25 to 20. Refusing to perform the requested downgrade \
                 because it might delete metadata information."
                .into())
        );
        assert_eq!(
            one("metadata.version", 20, UnsafeDowngrade),
            Err("Unsupported metadata.version downgrade from 25 to 20. Unsafe metadata downgrade is not supported in \
                 this version."
                .into())
        );
        let dynamic = Features::of(&Router::default(), 1);
        assert_eq!(
            decide(&dynamic, NodeId(3), &[update("kraft.version", 0, SafeDowngrade)]),
            Err("Invalid update version 0 for feature kraft.version. Can't downgrade the version of this feature."
                .into())
        );
    }

    #[test]
    fn an_unknown_feature_at_level_zero_is_not_found() {
        assert_eq!(
            one("nosuch", 0, SafeDowngrade),
            Err("Invalid update version 0 for feature nosuch. Feature nosuch not found.".into())
        );
    }

    #[test]
    fn a_level_kaskade_does_not_run_is_refused_and_the_first_failure_fails_all() {
        assert_eq!(
            one("kraft.version", 1, Upgrade),
            Err("Invalid update version 1 for feature kraft.version. Kaskade runs kraft.version at level 0 only."
                .into())
        );
        let updates = [
            update("metadata.version", 25, Upgrade),
            update("transaction.version", 9, Upgrade),
            update("nosuch", 0, SafeDowngrade),
        ];
        let err = decide(&features(), NodeId(2), &updates).expect_err("the second fails");
        assert!(err.contains("transaction.version") && err.contains("controller 2"), "{err}");
    }

    #[tokio::test]
    async fn the_answer_lists_results_only_on_success_below_v2() {
        use kafka_protocol::messages::update_features_request::FeatureUpdateKey;
        let broker = Arc::new(Broker::for_tests(crate::config::BrokerConfig::default(), Router::default()));
        let request = |name: &'static str, level| {
            UpdateFeaturesRequest::default().with_feature_updates(vec![FeatureUpdateKey::default()
                .with_feature(StrBytes::from_static_str(name))
                .with_max_version_level(level)
                .with_upgrade_type(1)])
        };
        let v1 = handle(&broker, 1, request("metadata.version", 25)).await.expect("answered");
        assert_eq!((v1.error_code, v1.results.len()), (0, 1));
        assert_eq!((v1.results[0].feature.as_str(), v1.results[0].error_code), ("metadata.version", 0));
        let v2 = handle(&broker, 2, request("metadata.version", 25)).await.expect("answered");
        assert_eq!((v2.error_code, v2.results.len()), (0, 0));
        let refused = handle(&broker, 1, request("metadata.version", 99)).await.expect("answered");
        assert_eq!((refused.error_code, refused.results.len()), (ResponseError::InvalidUpdateVersion.code(), 0));
        let message = refused.error_message.map(|m| m.to_string()).unwrap_or_default();
        assert!(
            message.starts_with("The update failed for all features since the following feature had an error: Invalid"),
            "{message}"
        );
    }

    #[test]
    fn v0_allow_downgrade_is_a_safe_downgrade() {
        assert_eq!(UpgradeType::of(0, true, 1), SafeDowngrade);
        assert_eq!(UpgradeType::of(0, false, 3), Upgrade);
        assert_eq!(UpgradeType::of(1, false, 3), UnsafeDowngrade);
        assert_eq!(UpgradeType::of(2, false, 7), Unknown);
    }
}
