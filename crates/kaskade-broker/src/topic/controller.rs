//! The controller side of topic management: decides changes against the
//! committed metadata image and answers with the records that make them.
//!
//! Pure: no files, no logs, no clock. Kafka's controller does this in
//! `ReplicationControlManager` and `ConfigurationControlManager`; on one node
//! Kaskade's controller is in-process, in a cluster the active controller runs
//! the same decisions on the quorum's image. Placement: the partitions go
//! to the live brokers it is given (a node of its own: itself), rack-aware
//! as `placement` decides, unless the request assigns replicas itself.
//!
//! Invariant: a decision never reads anything but the image and the request,
//! so deciding again on a newer image (after losing an append race) is safe.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use kaskade_meta::{Image, MetadataRecord, TopicImage, Uuid};
use kaskade_types::{LeaderEpoch, NodeId};

use super::config;
use super::error::TopicError;
use super::manual_assignment::{self, Registered};
use super::placement::{self, UsableBroker};

/// Kafka's topic name rules: 1..=249 chars of `[a-zA-Z0-9._-]`, not `.`/`..`.
pub fn validate_topic_name(name: &str) -> Result<(), TopicError> {
    let bad = |m: String| Err(TopicError::new(ResponseError::InvalidTopicException, m));
    if name.is_empty() {
        return bad("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return bad("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > 249 {
        return bad(format!("Topic name is illegal, it can't be longer than 249 characters, topic name: {name}"));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-') {
        return bad(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// A CreateTopics request for one topic, as the controller needs it.
#[derive(Clone, Debug)]
pub struct NewTopic<'a> {
    pub name: &'a str,
    /// -1: the broker default.
    pub partitions: i32,
    /// -1: the broker default.
    pub replication: i16,
    /// Explicit replica assignments, partition by partition.
    pub assignments: &'a [(i32, Vec<i32>)],
    pub configs: &'a BTreeMap<String, String>,
}

/// The controller's settings and the brokers it may place replicas on.
#[derive(Clone, Debug)]
pub struct TopicController {
    /// The brokers replicas go to (live and unfenced), with their racks.
    pub brokers: Vec<UsableBroker>,
    /// Registered but fenced brokers: an explicit CreatePartitions
    /// assignment may name them (as Kafka allows), automatic placement not.
    pub fenced: Vec<NodeId>,
    pub default_partitions: i32,
    pub default_replication: i16,
    pub delete_enabled: bool,
}

/// A decided topic creation: its records and the topic they make.
#[derive(Debug)]
pub struct Creation {
    pub records: Vec<MetadataRecord>,
    pub topic: TopicImage,
}

impl TopicController {
    /// Validates what does not depend on the image (name, counts, configs).
    /// Returns the partition count to create.
    pub fn check_new_topic(&self, t: &NewTopic<'_>) -> Result<i32, TopicError> {
        validate_topic_name(t.name)?;
        let partitions = if !t.assignments.is_empty() {
            // Kafka's controller checks the replication factor first
            // (`ReplicationControlManager.createTopic`).
            let unset = if t.replication != -1 {
                Some("replication factor")
            } else if t.partitions != -1 {
                Some("numPartitions")
            } else {
                None
            };
            if let Some(what) = unset {
                return Err(TopicError::new(
                    ResponseError::InvalidRequest,
                    format!("A manual partition assignment was specified, but {what} was not set to -1."),
                ));
            }
            self.check_assignments(t.assignments)?;
            t.assignments.len() as i32
        } else if t.partitions == -1 {
            self.default_partitions
        } else {
            t.partitions
        };
        if partitions <= 0 {
            return Err(TopicError::new(
                ResponseError::InvalidPartitions,
                "Number of partitions must be larger than 0.",
            ));
        }
        let replication = if t.replication == -1 { self.default_replication } else { t.replication };
        if replication <= 0 {
            return Err(TopicError::new(
                ResponseError::InvalidReplicationFactor,
                "Replication factor must be larger than 0.",
            ));
        }
        // Explicit assignments set their own width (checked above).
        if t.assignments.is_empty() && replication as usize > self.brokers.len() {
            return Err(TopicError::new(
                ResponseError::InvalidReplicationFactor,
                format!("Unable to replicate the partition {replication} time(s): The target replication factor of {replication} cannot be reached because only {} broker(s) are registered.", self.brokers.len()),
            ));
        }
        for (k, v) in t.configs {
            config::validate(k, v).map_err(|m| TopicError::new(ResponseError::InvalidConfig, m))?;
        }
        Ok(partitions)
    }

    /// Decides a topic creation on `img` (after [`check_new_topic`]).
    pub fn create(&self, img: &Image, t: &NewTopic<'_>, partitions: i32, id: Uuid) -> Result<Creation, TopicError> {
        let name = t.name;
        if img.topic(name).is_some() {
            return Err(TopicError::new(ResponseError::TopicAlreadyExists, format!("Topic '{name}' already exists.")));
        }
        // Kafka refuses names that collide once '.' and '_' are equated
        // (metric names would clash).
        let norm = |s: &str| s.replace('.', "_");
        if let Some(other) = img.topics().find(|o| norm(&o.name) == norm(name)) {
            return Err(TopicError::new(
                ResponseError::InvalidTopicException,
                format!("Topic '{name}' collides with existing topic: {}", other.name),
            ));
        }
        let mut records = vec![MetadataRecord::Topic { name: name.to_string(), id }];
        let replicas: Vec<Vec<i32>> = if t.assignments.is_empty() {
            let placed = placement::place(
                &self.brokers,
                &[],
                partitions.max(0) as usize,
                self.replication_of(t),
                placement::seed_of(&id),
            )?;
            placed.into_iter().map(|r| r.into_iter().map(|n| n.get()).collect()).collect()
        } else {
            // Checked by `check_assignments`: partitions 0..n, in any order.
            let mut assigned = t.assignments.to_vec();
            assigned.sort_unstable_by_key(|(p, _)| *p);
            assigned.into_iter().map(|(_, r)| r).collect()
        };
        let unfenced = self.unfenced_ids();
        let registered = Registered { unfenced: &unfenced, fenced: &self.fenced };
        for (p, r) in replicas.into_iter().enumerate() {
            // The ISR: the unfenced replicas (all of them when placed).
            let isr = manual_assignment::isr(&r, registered, p as i32)?;
            records.push(Self::partition_record_with_isr(id, p as i32, r, isr));
        }
        for (k, v) in t.configs {
            records.push(MetadataRecord::TopicConfig { topic_id: id, name: k.clone(), value: Some(v.clone()) });
        }
        let mut made = Image::default();
        for r in &records {
            made.apply(r);
        }
        let topic = made.topic(name).cloned().ok_or_else(|| {
            TopicError::new(ResponseError::UnknownServerError, "the decided topic is not in its image")
        })?;
        Ok(Creation { records, topic })
    }

    /// The unfenced broker ids (`brokers`), for `manual_assignment`.
    fn unfenced_ids(&self) -> Vec<NodeId> {
        self.brokers.iter().map(|b| b.id).collect()
    }

    /// CreateTopics' explicit assignments, in Kafka's order
    /// (`ReplicationControlManager.createTopic`): no partition twice, each
    /// list by `manual_assignment` (the width of the lists before it), not
    /// every replica fenced; then the partitions are 0..n in any order.
    fn check_assignments(&self, assignments: &[(i32, Vec<i32>)]) -> Result<(), TopicError> {
        let unfenced = self.unfenced_ids();
        let registered = Registered { unfenced: &unfenced, fenced: &self.fenced };
        let invalid = |m: String| TopicError::new(ResponseError::InvalidReplicaAssignment, m);
        let mut seen = std::collections::BTreeSet::new();
        let mut width = None;
        for (p, replicas) in assignments {
            if !seen.insert(*p) {
                return Err(invalid(format!("Found multiple manual partition assignments for partition {p}")));
            }
            manual_assignment::validate(replicas, registered, width)?;
            width = Some(replicas.len());
            manual_assignment::isr(replicas, registered, *p)?;
        }
        if !seen.iter().copied().eq(0..assignments.len() as i32) {
            return Err(invalid("partitions should be a consecutive 0-based integer sequence".into()));
        }
        Ok(())
    }

    /// A new partition's record: the first replica leads at epoch 0 with
    /// every replica in sync.
    fn partition_record(topic_id: Uuid, partition: i32, replicas: Vec<i32>) -> MetadataRecord {
        Self::partition_record_with_isr(topic_id, partition, replicas.clone(), replicas)
    }

    /// A new partition's record with `isr` (a non-empty subset of
    /// `replicas`, in their order): the ISR's first replica leads.
    fn partition_record_with_isr(topic_id: Uuid, partition: i32, replicas: Vec<i32>, isr: Vec<i32>) -> MetadataRecord {
        debug_assert!(!isr.is_empty() && isr.iter().all(|b| replicas.contains(b)), "ISR {isr:?} of {replicas:?}");
        MetadataRecord::Partition {
            topic_id,
            partition,
            leader: isr.first().copied().unwrap_or(-1),
            isr,
            replicas,
            leader_epoch: LeaderEpoch::INITIAL.get(),
            partition_epoch: 0,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        }
    }

    /// The replication factor a creation asks for (-1: the default),
    /// checked against the brokers by `check_new_topic`.
    fn replication_of(&self, t: &NewTopic<'_>) -> usize {
        let r = if t.replication == -1 { self.default_replication } else { t.replication };
        r.max(1) as usize
    }

    /// Decides a topic deletion by name or id. Returns the topic removed.
    pub fn delete(
        &self,
        img: &Image,
        name: Option<&str>,
        id: Option<Uuid>,
    ) -> Result<(Vec<MetadataRecord>, TopicImage), TopicError> {
        if !self.delete_enabled {
            return Err(TopicError::new(ResponseError::TopicDeletionDisabled, "Topic deletion is disabled."));
        }
        let t = match (name, id) {
            (Some(n), _) => img.topic(n).ok_or_else(TopicError::unknown_topic_or_partition)?,
            (None, Some(id)) => img.topic_by_id(&id).ok_or_else(|| {
                TopicError::new(ResponseError::UnknownTopicId, "This server does not host this topic ID.")
            })?,
            (None, None) => {
                return Err(TopicError::new(ResponseError::InvalidRequest, "neither topic name nor id given"))
            }
        };
        Ok((vec![MetadataRecord::RemoveTopic { id: t.id }], t.clone()))
    }

    /// Decides growing `name` to `count` partitions (CreatePartitions),
    /// placed by `placement` or, with `assignments` (one replica list per
    /// new partition), as asked after Kafka's checks
    /// (`manual_assignment`). Returns the records and the range of new
    /// partition indexes.
    pub fn add_partitions(
        &self,
        img: &Image,
        name: &str,
        count: i32,
        assignments: Option<&[Vec<i32>]>,
    ) -> Result<(Vec<MetadataRecord>, std::ops::Range<i32>), TopicError> {
        let t = img.topic(name).ok_or_else(TopicError::unknown_topic_or_partition)?;
        let old = t.partitions.len() as i32;
        if count == old {
            return Err(TopicError::new(
                ResponseError::InvalidPartitions,
                format!("Topic already has {old} partition(s)."),
            ));
        }
        if count < old {
            return Err(TopicError::new(
                ResponseError::InvalidPartitions,
                format!("The topic {name} currently has {old} partition(s); {count} would not be an increase."),
            ));
        }
        let added = (count - old) as usize;
        // New partitions get the topic's replication factor (its first
        // partition's width), as Kafka's CreatePartitions does.
        let replication = t.partitions.first().map_or(1, |p| p.replicas.len().max(1));
        if let Some(assigned) = assignments {
            if assigned.len() != added {
                return Err(TopicError::new(
                    ResponseError::InvalidReplicaAssignment,
                    format!(
                        "Attempted to add {added} additional partition(s), but only {} assignment(s) were specified.",
                        assigned.len()
                    ),
                ));
            }
            let unfenced: Vec<NodeId> = self.brokers.iter().map(|b| b.id).collect();
            let registered = Registered { unfenced: &unfenced, fenced: &self.fenced };
            let mut records = Vec::with_capacity(added);
            // Kafka checks each list, then its ISR, before the next list.
            for (p, replicas) in (old..count).zip(assigned) {
                manual_assignment::validate(replicas, registered, Some(replication))?;
                let isr = manual_assignment::isr(replicas, registered, p)?;
                records.push(Self::partition_record_with_isr(t.id, p, replicas.clone(), isr));
            }
            return Ok((records, old..count));
        }
        if replication > self.brokers.len() {
            return Err(TopicError::new(
                ResponseError::InvalidReplicationFactor,
                format!("Unable to replicate the partition {replication} time(s): The target replication factor of {replication} cannot be reached because only {} broker(s) are registered.", self.brokers.len()),
            ));
        }
        let existing: Vec<Vec<NodeId>> = t.partitions.iter().map(|p| p.replicas.clone()).collect();
        let placed = placement::place(&self.brokers, &existing, added, replication, placement::seed_of(&t.id))?;
        let records = (old..count)
            .zip(placed)
            .map(|(p, r)| Self::partition_record(t.id, p, r.into_iter().map(|n| n.get()).collect()))
            .collect();
        Ok((records, old..count))
    }

    /// Validates topic config changes (`Some` sets, `None` removes).
    pub fn check_config_changes(changes: &[(String, Option<String>)]) -> Result<(), TopicError> {
        for (k, v) in changes {
            match v {
                Some(v) => {
                    config::validate(k, v).map_err(|m| TopicError::new(ResponseError::InvalidConfig, m))?;
                }
                None if !config::is_known(k) => {
                    return Err(TopicError::new(
                        ResponseError::InvalidConfig,
                        format!("Unknown topic config name: {k}"),
                    ))
                }
                None => {}
            }
        }
        Ok(())
    }

    /// Decides topic config changes. With `replace_all` (legacy AlterConfigs)
    /// every override not named is removed. Returns the records and the
    /// topic as it will be.
    pub fn alter_configs(
        img: &Image,
        name: &str,
        changes: &[(String, Option<String>)],
        replace_all: bool,
    ) -> Result<(Vec<MetadataRecord>, TopicImage), TopicError> {
        let t = img.topic(name).ok_or_else(TopicError::unknown_topic_or_partition)?;
        let mut records = Vec::new();
        if replace_all {
            for k in t.configs.keys() {
                if !changes.iter().any(|(c, _)| c == k) {
                    records.push(MetadataRecord::TopicConfig { topic_id: t.id, name: k.clone(), value: None });
                }
            }
        }
        for (k, v) in changes {
            records.push(MetadataRecord::TopicConfig { topic_id: t.id, name: k.clone(), value: v.clone() });
        }
        let mut after = t.clone();
        for (k, v) in changes {
            match v {
                Some(v) => after.configs.insert(k.clone(), v.clone()),
                None => after.configs.remove(k),
            };
        }
        if replace_all {
            after.configs.retain(|k, _| changes.iter().any(|(c, _)| c == k));
        }
        Ok((records, after))
    }

    /// Validates and normalises dynamic broker config changes.
    pub fn check_broker_config_changes(
        changes: &[(String, Option<String>)],
    ) -> Result<Vec<(String, Option<String>)>, TopicError> {
        changes
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Some(v) => Some(
                        crate::config::dynamic::validate(k, v)
                            .map_err(|m| TopicError::new(ResponseError::InvalidRequest, m))?,
                    ),
                    None => None,
                };
                Ok((k.clone(), v))
            })
            .collect()
    }

    /// Decides dynamic broker config changes of `resource` (`""`: every
    /// broker; else a node id). With `replace_all` the named changes become
    /// the resource's whole dynamic config.
    pub fn alter_broker_configs(
        img: &Image,
        resource: &str,
        normalised: &[(String, Option<String>)],
        replace_all: bool,
    ) -> Vec<MetadataRecord> {
        let mut records = Vec::new();
        if replace_all {
            for k in img.broker_configs(resource).into_iter().flat_map(|c| c.keys()) {
                if !normalised.iter().any(|(c, _)| c == k) {
                    records.push(MetadataRecord::BrokerConfig {
                        resource: resource.into(),
                        name: k.clone(),
                        value: None,
                    });
                }
            }
        }
        for (k, v) in normalised {
            records.push(MetadataRecord::BrokerConfig { resource: resource.into(), name: k.clone(), value: v.clone() });
        }
        records
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn controller(brokers: &[i32]) -> TopicController {
        TopicController {
            brokers: brokers.iter().map(|b| UsableBroker::new(*b, None)).collect(),
            fenced: Vec::new(),
            default_partitions: 1,
            default_replication: 1,
            delete_enabled: true,
        }
    }

    fn new_topic<'a>(
        name: &'a str,
        partitions: i32,
        replication: i16,
        configs: &'a BTreeMap<String, String>,
    ) -> NewTopic<'a> {
        NewTopic { name, partitions, replication, assignments: &[], configs }
    }

    #[test]
    fn a_creation_is_decided_on_the_image_alone() {
        let c = controller(&[1]);
        let none = BTreeMap::new();
        let t = new_topic("orders", 3, -1, &none);
        let parts = c.check_new_topic(&t).expect("valid");
        let mut img = Image::default();
        let made = c.create(&img, &t, parts, Uuid::new_v4()).expect("create");
        assert_eq!(made.records.len(), 4);
        assert_eq!(made.topic.partitions.len(), 3);
        assert!(made.topic.partitions.iter().all(|p| p.leader == Some(NodeId(1))
            && p.isr == vec![NodeId(1)]
            && p.leader_epoch == LeaderEpoch::INITIAL));
        for r in &made.records {
            img.apply(r);
        }
        let again = c.create(&img, &t, parts, Uuid::new_v4()).expect_err("exists");
        assert_eq!(again.code, ResponseError::TopicAlreadyExists);
        let clash = c.create(&img, &new_topic("orders", 1, -1, &none), 1, Uuid::new_v4()).expect_err("exists");
        assert_eq!(clash.code, ResponseError::TopicAlreadyExists);
        let collide = c.create(&img, &new_topic("ord.ers", 1, -1, &none), 1, Uuid::new_v4());
        assert!(collide.is_ok(), "only '.' vs '_' collide");
        for r in &collide.expect("ok").records {
            img.apply(r);
        }
        let collide = c.create(&img, &new_topic("ord_ers", 1, -1, &none), 1, Uuid::new_v4()).expect_err("collides");
        assert_eq!(collide.code, ResponseError::InvalidTopicException);
    }

    #[test]
    fn requests_are_checked_as_kafka_checks_them() {
        let c = controller(&[1]);
        let none = BTreeMap::new();
        let err = |t: NewTopic<'_>| c.check_new_topic(&t).expect_err("invalid").code;
        assert_eq!(err(new_topic("", 1, 1, &none)), ResponseError::InvalidTopicException);
        assert_eq!(err(new_topic("a b", 1, 1, &none)), ResponseError::InvalidTopicException);
        assert_eq!(err(new_topic("t", 0, 1, &none)), ResponseError::InvalidPartitions);
        assert_eq!(err(new_topic("t", 1, 0, &none)), ResponseError::InvalidReplicationFactor);
        assert_eq!(err(new_topic("t", 1, 2, &none)), ResponseError::InvalidReplicationFactor);
        let bad_cfg = BTreeMap::from([("cleanup.policy".to_string(), "sometimes".to_string())]);
        assert_eq!(err(new_topic("t", 1, 1, &bad_cfg)), ResponseError::InvalidConfig);
        let elsewhere = [(0, vec![7])];
        let t = NewTopic { name: "t", partitions: -1, replication: -1, assignments: &elsewhere, configs: &none };
        assert_eq!(err(t), ResponseError::InvalidReplicaAssignment);
        let both = [(0, vec![1])];
        let t = NewTopic { name: "t", partitions: 1, replication: -1, assignments: &both, configs: &none };
        let e = c.check_new_topic(&t).expect_err("both counts and assignments");
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                ResponseError::InvalidRequest,
                "A manual partition assignment was specified, but numPartitions was not set to -1."
            )
        );
        let t = NewTopic { name: "t", partitions: 1, replication: 1, assignments: &both, configs: &none };
        let e = c.check_new_topic(&t).expect_err("both counts and assignments");
        assert_eq!(e.message, "A manual partition assignment was specified, but replication factor was not set to -1.");
        assert_eq!(c.check_new_topic(&new_topic("t", -1, -1, &none)).expect("defaults"), 1);
    }

    #[test]
    fn leaders_are_spread_over_the_brokers() {
        let c = controller(&[1, 2, 3]);
        let none = BTreeMap::new();
        let t = new_topic("spread", 6, 1, &none);
        // The nil id seeds placement at the first broker.
        let made = c.create(&Image::default(), &t, 6, Uuid::nil()).expect("create");
        let leaders: Vec<Option<NodeId>> = made.topic.partitions.iter().map(|p| p.leader).collect();
        assert_eq!(leaders, [1, 2, 3, 1, 2, 3].map(|n| Some(NodeId(n))));
    }

    #[test]
    fn a_cluster_places_replicas_across_brokers_and_refuses_more_than_it_has() {
        let c = controller(&[1, 2, 3]);
        let none = BTreeMap::new();
        let t = new_topic("three", 3, 3, &none);
        assert_eq!(c.check_new_topic(&t).expect("rf 3 on 3 brokers"), 3);
        let made = c.create(&Image::default(), &t, 3, Uuid::nil()).expect("create");
        let placed: Vec<Vec<i32>> =
            made.topic.partitions.iter().map(|p| p.replicas.iter().map(|n| n.get()).collect()).collect();
        assert_eq!(placed, [vec![1, 2, 3], vec![2, 3, 1], vec![3, 1, 2]], "leaders balanced, replicas spread");
        assert!(made.topic.partitions.iter().all(|p| p.isr == p.replicas && p.leader == p.replicas.first().copied()));
        let rf4 = c.check_new_topic(&new_topic("four", 3, 4, &none)).expect_err("more than the brokers");
        assert_eq!(rf4.code, ResponseError::InvalidReplicationFactor);
        // Growing the topic keeps its replication factor.
        let mut img = Image::default();
        for r in &made.records {
            img.apply(r);
        }
        let (records, range) = c.add_partitions(&img, "three", 4, None).expect("grow");
        assert_eq!(range, 3..4);
        assert!(
            matches!(&records[0], MetadataRecord::Partition { replicas, .. } if *replicas == [1, 3, 2]),
            "leads after the last leader, followers shifted in the second round: {records:?}"
        );
        let assigned = [(0, vec![3, 1]), (1, vec![2, 3])];
        let t = NewTopic { name: "placed", partitions: -1, replication: -1, assignments: &assigned, configs: &none };
        assert_eq!(c.check_new_topic(&t).expect("two replicas each"), 2);
        let made = c.create(&Image::default(), &t, 2, Uuid::new_v4()).expect("create");
        assert_eq!(made.topic.partitions[0].leader, Some(NodeId(3)));
        assert_eq!(made.topic.partitions[1].replicas, vec![NodeId(2), NodeId(3)]);
        for bad in [vec![(0, vec![1, 1])], vec![(0, vec![1, 2]), (1, vec![3])]] {
            let t = NewTopic { name: "bad", partitions: -1, replication: -1, assignments: &bad, configs: &none };
            assert_eq!(c.check_new_topic(&t).expect_err("bad").code, ResponseError::InvalidReplicaAssignment);
        }
    }

    #[test]
    fn growth_with_explicit_assignments_is_placed_as_asked_after_kafkas_checks() {
        let c = TopicController { fenced: vec![NodeId(4)], ..controller(&[1, 2, 3]) };
        let none = BTreeMap::new();
        let made = c.create(&Image::default(), &new_topic("grow", 1, 2, &none), 1, Uuid::nil()).expect("create");
        let mut img = Image::default();
        for r in &made.records {
            img.apply(r);
        }
        let asked = [vec![3, 1], vec![4, 2]];
        let (records, range) = c.add_partitions(&img, "grow", 3, Some(&asked)).expect("placed as asked");
        assert_eq!(range, 1..3);
        let placed: Vec<(i32, Vec<i32>, Vec<i32>)> = records
            .iter()
            .filter_map(|r| match r {
                MetadataRecord::Partition { leader, replicas, isr, .. } => {
                    Some((*leader, replicas.clone(), isr.clone()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            placed,
            [(3, vec![3, 1], vec![3, 1]), (2, vec![4, 2], vec![2])],
            "the first unfenced replica leads; a fenced one is a replica out of the ISR"
        );
        let refused = |count: i32, asked: &[Vec<i32>]| {
            let e = c.add_partitions(&img, "grow", count, Some(asked)).expect_err("refused");
            assert_eq!(e.code, ResponseError::InvalidReplicaAssignment, "{}", e.message);
            e.message
        };
        assert_eq!(
            refused(3, &[vec![1, 2]]),
            "Attempted to add 2 additional partition(s), but only 1 assignment(s) were specified."
        );
        assert!(refused(2, &[vec![1, 2, 3]]).contains("with 3 replica(s)"), "the topic's factor is 2");
        assert!(refused(2, &[vec![1, 1]]).contains("broker 1 more than once"));
        assert!(refused(2, &[vec![1, 9]]).contains("broker 9, but no such broker is registered"));
        assert!(refused(2, &[vec![]]).contains("empty replica list"));
        assert!(refused(2, &[vec![4, 4]]).contains("more than once"));
        let all_fenced = TopicController { fenced: vec![NodeId(4), NodeId(5)], ..c.clone() };
        let e = all_fenced.add_partitions(&img, "grow", 2, Some(&[vec![5, 4]])).expect_err("all fenced");
        assert_eq!(
            e.message,
            "All brokers specified in the manual partition assignment for partition 1 are fenced or in controlled shutdown."
        );
        // The second list is wrong: nothing of the first is decided.
        assert!(refused(3, &[vec![1, 2], vec![2, 7]]).contains("broker 7"));
        let same = c.add_partitions(&img, "grow", 1, Some(&[])).expect_err("no increase");
        assert_eq!(
            (same.code, same.message.as_str()),
            (ResponseError::InvalidPartitions, "Topic already has 1 partition(s).")
        );
        let less = c.add_partitions(&img, "grow", 0, None).expect_err("a decrease");
        assert_eq!(less.message, "The topic grow currently has 1 partition(s); 0 would not be an increase.");
    }

    fn manual<'a>(assignments: &'a [(i32, Vec<i32>)], configs: &'a BTreeMap<String, String>) -> NewTopic<'a> {
        NewTopic { name: "manual", partitions: -1, replication: -1, assignments, configs }
    }

    /// The INVALID_REPLICA_ASSIGNMENT message `c` refuses `assignments` with.
    fn refused(c: &TopicController, assignments: &[(i32, Vec<i32>)]) -> String {
        let e = c.check_new_topic(&manual(assignments, &BTreeMap::new())).expect_err("refused");
        assert_eq!(e.code, ResponseError::InvalidReplicaAssignment, "{}", e.message);
        e.message
    }

    #[test]
    fn creation_with_explicit_assignments_follows_kafkas_rules() {
        let c = TopicController { fenced: vec![NodeId(4)], ..controller(&[1, 2, 3]) };
        let none = BTreeMap::new();
        // Out of order, a fenced broker beside an unfenced one: accepted,
        // the fenced one out of the ISR and not leading.
        let good = [(1, vec![4, 2]), (0, vec![3, 1])];
        let t = manual(&good, &none);
        assert_eq!(c.check_new_topic(&t).expect("valid"), 2);
        let made = c.create(&Image::default(), &t, 2, Uuid::new_v4()).expect("create");
        let p = &made.topic.partitions;
        assert_eq!((p[0].leader, p[0].isr.clone()), (Some(NodeId(3)), vec![NodeId(3), NodeId(1)]));
        assert_eq!(
            (p[1].leader, p[1].replicas.clone(), p[1].isr.clone()),
            (Some(NodeId(2)), vec![NodeId(4), NodeId(2)], vec![NodeId(2)])
        );
        assert_eq!(
            refused(&c, &[(0, vec![1]), (0, vec![2])]),
            "Found multiple manual partition assignments for partition 0"
        );
        assert_eq!(
            refused(&c, &[(0, vec![1]), (2, vec![2])]),
            "partitions should be a consecutive 0-based integer sequence"
        );
        assert!(refused(&c, &[(0, vec![4])]).contains("are fenced or in controlled shutdown"));
        assert!(refused(&c, &[(0, vec![1, 7])]).contains("broker 7, but no such broker is registered"));
        assert!(refused(&c, &[(0, vec![1, 2]), (1, vec![3])])
            .contains("with 1 replica(s), but this is not consistent with previous partitions, which have 2"));
        // An explicit width is not held against default.replication.factor.
        let wide_default = TopicController { default_replication: 3, ..controller(&[1, 2]) };
        let two = [(0, vec![1, 2])];
        assert_eq!(wide_default.check_new_topic(&manual(&two, &none)).expect("two replicas on two brokers"), 1);
    }

    #[test]
    fn creation_and_growth_place_replicas_on_distinct_racks() {
        let racks = [(1, "a"), (2, "a"), (3, "b"), (4, "b")];
        let c = TopicController {
            brokers: racks.iter().map(|(id, r)| UsableBroker::new(*id, Some(r))).collect(),
            ..controller(&[])
        };
        let rack = |n: NodeId| racks.iter().find(|(id, _)| *id == n.get()).map(|(_, r)| *r);
        let none = BTreeMap::new();
        let t = new_topic("racked", 4, 2, &none);
        let made = c.create(&Image::default(), &t, 4, Uuid::new_v4()).expect("create");
        let mut img = Image::default();
        for r in &made.records {
            img.apply(r);
        }
        let (records, _) = c.add_partitions(&img, "racked", 8, None).expect("grow");
        for r in &records {
            img.apply(r);
        }
        let topic = img.topic("racked").expect("topic");
        let mut leaders: Vec<i32> = topic.partitions.iter().filter_map(|p| p.leader.map(|n| n.get())).collect();
        leaders.sort_unstable();
        assert_eq!(leaders, [1, 1, 2, 2, 3, 3, 4, 4], "every broker leads twice");
        for p in &topic.partitions {
            assert_ne!(rack(p.replicas[0]), rack(p.replicas[1]), "{:?} in one rack", p.replicas);
        }
    }

    #[test]
    fn deletion_growth_and_config_changes() {
        let c = controller(&[1]);
        let none = BTreeMap::new();
        let mut img = Image::default();
        let made = c.create(&img, &new_topic("t", 1, 1, &none), 1, Uuid::new_v4()).expect("create");
        for r in &made.records {
            img.apply(r);
        }
        let (recs, range) = c.add_partitions(&img, "t", 3, None).expect("grow");
        assert_eq!((recs.len(), range), (2, 1..3));
        assert_eq!(c.add_partitions(&img, "t", 1, None).expect_err("same").code, ResponseError::InvalidPartitions);
        assert_eq!(
            c.add_partitions(&img, "u", 2, None).expect_err("unknown").code,
            ResponseError::UnknownTopicOrPartition
        );
        let (recs, after) =
            TopicController::alter_configs(&img, "t", &[("retention.ms".into(), Some("5".into()))], false)
                .expect("alter");
        assert_eq!(recs.len(), 1);
        assert_eq!(after.configs.get("retention.ms").map(String::as_str), Some("5"));
        let (recs, gone) = c.delete(&img, Some("t"), None).expect("delete");
        assert_eq!((recs.len(), gone.name.as_str()), (1, "t"));
        let off = TopicController { delete_enabled: false, ..c.clone() };
        assert_eq!(off.delete(&img, Some("t"), None).expect_err("disabled").code, ResponseError::TopicDeletionDisabled);
        assert_eq!(c.delete(&img, None, Some(Uuid::new_v4())).expect_err("id").code, ResponseError::UnknownTopicId);
    }
}
