//! The metadata image: the state the records describe. Immutable once
//! built; a change produces a new image.
//!
//! Records keep the integers KRaft's records hold (they are the on-disk
//! format, with -1 for "no leader"); the image speaks in typed values, and
//! [`Image::apply`] and [`Image::to_records`] convert between the two.

use std::collections::{BTreeMap, HashMap};

use kaskade_types::{LeaderEpoch, NodeId};
use uuid::Uuid;

use crate::record::{BrokerEndpoint, BrokerProcess, MetadataRecord};

/// KRaft's `leader` of a partition with no leader.
const NO_LEADER: i32 = -1;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionImage {
    /// `None`: no replica leads (the record's -1).
    pub leader: Option<NodeId>,
    pub replicas: Vec<NodeId>,
    pub isr: Vec<NodeId>,
    pub leader_epoch: LeaderEpoch,
    /// Moves on by one with every change of the partition (KRaft's
    /// partition epoch); 0 when created.
    pub partition_epoch: i32,
    /// The replicas a reassignment in progress adds (all in `replicas`);
    /// empty when none is (see `reassignment`).
    pub adding_replicas: Vec<NodeId>,
    /// The replicas a reassignment in progress removes (all in `replicas`).
    pub removing_replicas: Vec<NodeId>,
}

impl PartitionImage {
    /// The record of this partition (of `topic_id`, index `partition`) as it is.
    pub fn to_record(&self, topic_id: Uuid, partition: i32) -> MetadataRecord {
        MetadataRecord::Partition {
            topic_id,
            partition,
            leader: self.leader.map_or(NO_LEADER, NodeId::get),
            replicas: wire_ids(&self.replicas),
            isr: wire_ids(&self.isr),
            leader_epoch: self.leader_epoch.get(),
            partition_epoch: self.partition_epoch,
            adding_replicas: wire_ids(&self.adding_replicas),
            removing_replicas: wire_ids(&self.removing_replicas),
        }
    }

    /// Whether a reassignment is in progress (KRaft's `isReassigning`).
    pub fn is_reassigning(&self) -> bool {
        !self.adding_replicas.is_empty() || !self.removing_replicas.is_empty()
    }

    /// The replicas a reassignment in progress moves to (every replica but
    /// the removing ones); the replicas themselves when none is.
    pub fn target_replicas(&self) -> Vec<NodeId> {
        self.replicas.iter().copied().filter(|r| !self.removing_replicas.contains(r)).collect()
    }

    /// This partition after a change to `next`'s leader, ISR and replica
    /// sets: the partition epoch moves on by one, and the leader epoch too
    /// when the leader changes (as KRaft bumps it).
    pub fn changed_to(&self, mut next: PartitionImage) -> PartitionImage {
        next.leader_epoch =
            if next.leader != self.leader { LeaderEpoch(self.leader_epoch.get() + 1) } else { self.leader_epoch };
        next.partition_epoch = self.partition_epoch + 1;
        next
    }

    /// The record that changes this partition's leader and ISR (KRaft's
    /// PartitionChangeRecord): the partition epoch moves on by one, and the
    /// leader epoch too when the leader changes (as KRaft bumps it).
    pub fn change_record(
        &self,
        topic_id: Uuid,
        partition: i32,
        leader: Option<NodeId>,
        isr: Vec<NodeId>,
    ) -> MetadataRecord {
        // A reassignment in progress stays as it is.
        let next = self.changed_to(PartitionImage { leader, isr, ..self.clone() });
        next.to_record(topic_id, partition)
    }
}

fn node_ids(ids: &[i32]) -> Vec<NodeId> {
    ids.iter().copied().map(NodeId).collect()
}

fn wire_ids(ids: &[NodeId]) -> Vec<i32> {
    ids.iter().map(|n| n.get()).collect()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicImage {
    pub name: String,
    pub id: Uuid,
    pub partitions: Vec<PartitionImage>,
    /// Topic-level overrides only; defaults come from the broker config.
    pub configs: BTreeMap<String, String>,
}

/// A stored SCRAM credential: what a SASL/SCRAM server needs to check a
/// client's proof (RFC 5802), never the password or the salted password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: i32,
}

/// A registered broker, as its latest `RegisterBroker` record says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerRegistration {
    pub id: NodeId,
    pub incarnation_id: Uuid,
    /// Its advertised client listeners, in the registered order.
    pub endpoints: Vec<BrokerEndpoint>,
    pub rack: Option<String>,
    pub fenced: bool,
    /// Its version and start time, if the registration carried them.
    pub process: Option<BrokerProcess>,
}

impl BrokerRegistration {
    /// The endpoint on `listener`. A registration written before
    /// registrations carried every listener (no endpoint has a security
    /// protocol) holds only the node's first advertised listener, which
    /// then stands for every listener.
    pub fn endpoint(&self, listener: &str) -> Option<&BrokerEndpoint> {
        let legacy = self.endpoints.iter().all(|e| e.security_protocol.is_none());
        self.endpoints.iter().find(|e| e.listener == listener).or_else(|| {
            if legacy {
                self.endpoints.first()
            } else {
                None
            }
        })
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Image {
    topics: BTreeMap<String, TopicImage>,
    names: HashMap<Uuid, String>,
    /// The first producer id never handed out (`ProducerIds`).
    next_producer_id: i64,
    /// SCRAM credentials by user, then by mechanism code.
    scram: BTreeMap<String, BTreeMap<i8, ScramCredential>>,
    /// Dynamic broker configs by resource (`""`: cluster-wide defaults, else
    /// a node id), then key.
    broker_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// Registered brokers by id (empty for a node of its own, which does
    /// not register).
    brokers: BTreeMap<NodeId, BrokerRegistration>,
    /// How many records built this image: the metadata log's end offset.
    records: i64,
}

impl Image {
    pub fn topic(&self, name: &str) -> Option<&TopicImage> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: &Uuid) -> Option<&TopicImage> {
        self.names.get(id).and_then(|n| self.topics.get(n))
    }

    pub fn topics(&self) -> impl Iterator<Item = &TopicImage> {
        self.topics.values()
    }

    /// Where the next block of producer ids starts.
    pub fn next_producer_id(&self) -> i64 {
        self.next_producer_id
    }

    /// The SCRAM credentials, by user then mechanism code.
    pub fn scram_credentials(&self) -> &BTreeMap<String, BTreeMap<i8, ScramCredential>> {
        &self.scram
    }

    /// The dynamic broker configs of a resource (`""`: the cluster-wide
    /// defaults; else a node id).
    pub fn broker_configs(&self, resource: &str) -> Option<&BTreeMap<String, String>> {
        self.broker_configs.get(resource)
    }

    /// The number of records applied: the offset the next record gets.
    /// The registered brokers, by id.
    pub fn brokers(&self) -> &BTreeMap<NodeId, BrokerRegistration> {
        &self.brokers
    }

    /// The ids of the registered brokers that are not fenced: where
    /// replicas may be placed.
    pub fn unfenced_brokers(&self) -> Vec<NodeId> {
        self.brokers.values().filter(|b| !b.fenced).map(|b| b.id).collect()
    }

    /// Whether `node` is registered and not fenced.
    pub fn is_unfenced(&self, node: NodeId) -> bool {
        self.brokers.get(&node).is_some_and(|b| !b.fenced)
    }

    /// A fence or unfence of a broker that is not registered changes
    /// nothing (it can only be a straggler of a replaced registration).
    fn set_fenced(&mut self, node: NodeId, fenced: bool) {
        if let Some(b) = self.brokers.get_mut(&node) {
            b.fenced = fenced;
        }
    }

    pub fn end_offset(&self) -> i64 {
        self.records
    }

    /// The records that rebuild this image from an empty one (what a
    /// snapshot stores), in an order `apply` accepts.
    pub fn to_records(&self) -> Vec<MetadataRecord> {
        let mut out = Vec::new();
        if self.next_producer_id > 0 {
            out.push(MetadataRecord::ProducerIds { next_block_start: self.next_producer_id });
        }
        for t in self.topics.values() {
            out.push(MetadataRecord::Topic { name: t.name.clone(), id: t.id });
            for (i, p) in t.partitions.iter().enumerate() {
                out.push(p.to_record(t.id, i as i32));
            }
            for (name, value) in &t.configs {
                out.push(MetadataRecord::TopicConfig {
                    topic_id: t.id,
                    name: name.clone(),
                    value: Some(value.clone()),
                });
            }
        }
        for (user, by_mechanism) in &self.scram {
            for (mechanism, c) in by_mechanism {
                out.push(MetadataRecord::ScramCredential {
                    user: user.clone(),
                    mechanism: *mechanism,
                    salt: c.salt.clone(),
                    stored_key: c.stored_key.clone(),
                    server_key: c.server_key.clone(),
                    iterations: c.iterations,
                });
            }
        }
        for (resource, configs) in &self.broker_configs {
            for (name, value) in configs {
                out.push(MetadataRecord::BrokerConfig {
                    resource: resource.clone(),
                    name: name.clone(),
                    value: Some(value.clone()),
                });
            }
        }
        for b in self.brokers.values() {
            out.push(MetadataRecord::RegisterBroker {
                node_id: b.id.get(),
                incarnation_id: b.incarnation_id,
                endpoints: b.endpoints.clone(),
                rack: b.rack.clone(),
                fenced: b.fenced,
                process: b.process.clone(),
            });
        }
        out
    }

    /// Applies one record. Records that refer to unknown topics are
    /// ignored (they can only come from a log written by a newer version
    /// or a deleted topic's stragglers).
    pub fn apply(&mut self, record: &MetadataRecord) {
        self.records += 1;
        match record {
            MetadataRecord::Snapshot { end_offset, records } => {
                // The snapshot's records bring the count to `end_offset`.
                self.records = end_offset - records;
            }
            MetadataRecord::Topic { name, id } => {
                self.names.insert(*id, name.clone());
                self.topics.insert(
                    name.clone(),
                    TopicImage { name: name.clone(), id: *id, partitions: Vec::new(), configs: BTreeMap::new() },
                );
            }
            MetadataRecord::Partition {
                topic_id,
                partition,
                leader,
                replicas,
                isr,
                leader_epoch,
                partition_epoch,
                adding_replicas,
                removing_replicas,
            } => {
                let Some(t) = self.names.get(topic_id).and_then(|n| self.topics.get_mut(n)) else { return };
                let p = PartitionImage {
                    // Any negative id is "none", as KRaft reads it.
                    leader: (*leader >= 0).then_some(NodeId(*leader)),
                    replicas: node_ids(replicas),
                    isr: node_ids(isr),
                    leader_epoch: LeaderEpoch(*leader_epoch),
                    partition_epoch: *partition_epoch,
                    adding_replicas: node_ids(adding_replicas),
                    removing_replicas: node_ids(removing_replicas),
                };
                let idx = *partition as usize;
                if idx < t.partitions.len() {
                    t.partitions[idx] = p;
                } else if idx == t.partitions.len() {
                    t.partitions.push(p);
                }
            }
            MetadataRecord::TopicConfig { topic_id, name, value } => {
                let Some(t) = self.names.get(topic_id).and_then(|n| self.topics.get_mut(n)) else { return };
                match value {
                    Some(v) => t.configs.insert(name.clone(), v.clone()),
                    None => t.configs.remove(name),
                };
            }
            MetadataRecord::RemoveTopic { id } => {
                if let Some(n) = self.names.remove(id) {
                    self.topics.remove(&n);
                }
            }
            MetadataRecord::ProducerIds { next_block_start } => {
                // Never moves back: ids below it may be in use.
                self.next_producer_id = self.next_producer_id.max(*next_block_start);
            }
            MetadataRecord::ScramCredential { user, mechanism, salt, stored_key, server_key, iterations } => {
                let credential = ScramCredential {
                    salt: salt.clone(),
                    stored_key: stored_key.clone(),
                    server_key: server_key.clone(),
                    iterations: *iterations,
                };
                self.scram.entry(user.clone()).or_default().insert(*mechanism, credential);
            }
            MetadataRecord::BrokerConfig { resource, name, value } => {
                let configs = self.broker_configs.entry(resource.clone()).or_default();
                match value {
                    Some(v) => configs.insert(name.clone(), v.clone()),
                    None => configs.remove(name),
                };
                if configs.is_empty() {
                    self.broker_configs.remove(resource);
                }
            }
            MetadataRecord::RegisterBroker { node_id, incarnation_id, endpoints, rack, fenced, process } => {
                let b = BrokerRegistration {
                    id: NodeId(*node_id),
                    incarnation_id: *incarnation_id,
                    endpoints: endpoints.clone(),
                    rack: rack.clone(),
                    fenced: *fenced,
                    process: process.clone(),
                };
                self.brokers.insert(b.id, b);
            }
            MetadataRecord::FenceBroker { node_id } => self.set_fenced(NodeId(*node_id), true),
            MetadataRecord::UnfenceBroker { node_id } => self.set_fenced(NodeId(*node_id), false),
            MetadataRecord::RemoveScramCredential { user, mechanism } => {
                if let Some(by_mechanism) = self.scram.get_mut(user) {
                    by_mechanism.remove(mechanism);
                    if by_mechanism.is_empty() {
                        self.scram.remove(user);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producer_id_blocks_only_move_forward() {
        let mut img = Image::default();
        assert_eq!(img.next_producer_id(), 0);
        img.apply(&MetadataRecord::ProducerIds { next_block_start: 1000 });
        img.apply(&MetadataRecord::ProducerIds { next_block_start: 2000 });
        assert_eq!(img.next_producer_id(), 2000);
        img.apply(&MetadataRecord::ProducerIds { next_block_start: 1000 });
        assert_eq!(img.next_producer_id(), 2000);
        let json = serde_json::to_string(&MetadataRecord::ProducerIds { next_block_start: 3000 }).unwrap();
        assert_eq!(json, r#"{"type":"ProducerIds","next_block_start":3000}"#);
        assert_eq!(img.end_offset(), 3);
    }

    #[test]
    fn partitions_written_in_todays_format_load_typed_and_write_back_the_same_bytes() {
        // Lines of a metadata.log written before the image was typed.
        let topic = r#"{"type":"Topic","name":"t","id":"6f1c2f0e-6a8e-4a57-9a3e-2f7e0c9b5d11"}"#;
        let led = r#"{"type":"Partition","topic_id":"6f1c2f0e-6a8e-4a57-9a3e-2f7e0c9b5d11","partition":0,"leader":2,"replicas":[2,3],"isr":[2],"leader_epoch":4}"#;
        let leaderless = r#"{"type":"Partition","topic_id":"6f1c2f0e-6a8e-4a57-9a3e-2f7e0c9b5d11","partition":1,"leader":-1,"replicas":[],"isr":[],"leader_epoch":0}"#;
        let mut img = Image::default();
        for line in [topic, led, leaderless] {
            img.apply(&serde_json::from_str(line).expect("today's record"));
        }
        let t = img.topic("t").expect("topic");
        let p0 = &t.partitions[0];
        assert_eq!(
            (p0.leader, &p0.replicas, &p0.isr),
            (Some(NodeId(2)), &vec![NodeId(2), NodeId(3)], &vec![NodeId(2)])
        );
        assert_eq!(p0.leader_epoch, LeaderEpoch(4));
        assert_eq!(t.partitions[1].leader, None, "-1 is no leader");
        assert_eq!(p0.partition_epoch, 0, "records older than the partition epoch load at 0");
        // A snapshot of the image writes the same lines, with the partition epoch.
        let written: Vec<String> = img.to_records().iter().map(|r| serde_json::to_string(r).expect("encode")).collect();
        let with_epoch = |l: &str| l.replace('}', r#","partition_epoch":0}"#);
        assert_eq!(written, vec![topic.to_string(), with_epoch(led), with_epoch(leaderless)]);
    }

    #[test]
    fn a_change_moves_the_partition_epoch_and_the_leader_epoch_only_with_a_new_leader() {
        let id = Uuid::new_v4();
        let mut img = Image::default();
        img.apply(&MetadataRecord::Topic { name: "t".into(), id });
        let first = PartitionImage {
            leader: Some(NodeId(1)),
            replicas: vec![NodeId(1), NodeId(2)],
            isr: vec![NodeId(1), NodeId(2)],
            leader_epoch: LeaderEpoch(0),
            partition_epoch: 0,
            adding_replicas: vec![],
            removing_replicas: vec![],
        };
        img.apply(&first.to_record(id, 0));
        let p = img.topic("t").expect("topic").partitions[0].clone();
        assert_eq!(p, first);

        // The ISR shrinks: same leader, same leader epoch.
        img.apply(&p.change_record(id, 0, Some(NodeId(1)), vec![NodeId(1)]));
        let p = img.topic("t").expect("topic").partitions[0].clone();
        assert_eq!((p.leader_epoch, p.partition_epoch, p.isr.clone()), (LeaderEpoch(0), 1, vec![NodeId(1)]));

        // A new leader: both epochs move on; the replicas stay.
        img.apply(&p.change_record(id, 0, Some(NodeId(2)), vec![NodeId(2)]));
        let p = img.topic("t").expect("topic").partitions[0].clone();
        assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (Some(NodeId(2)), LeaderEpoch(1), 2));
        assert_eq!(p.replicas, vec![NodeId(1), NodeId(2)]);

        // The snapshot keeps the partition epoch.
        let mut again = Image::default();
        for r in img.to_records() {
            again.apply(&r);
        }
        assert_eq!(again.topic("t").expect("topic").partitions[0], p);
    }

    #[test]
    fn broker_configs_per_resource() {
        let mut img = Image::default();
        let set = |resource: &str, value: Option<&str>| MetadataRecord::BrokerConfig {
            resource: resource.into(),
            name: "log.retention.ms".into(),
            value: value.map(str::to_string),
        };
        img.apply(&set("", Some("1000")));
        img.apply(&set("1", Some("2000")));
        assert_eq!(
            img.broker_configs("").expect("cluster defaults").get("log.retention.ms").map(String::as_str),
            Some("1000")
        );
        assert_eq!(
            img.broker_configs("1").expect("broker 1").get("log.retention.ms").map(String::as_str),
            Some("2000")
        );
        img.apply(&set("1", None));
        assert!(img.broker_configs("1").is_none());
        assert!(img.broker_configs("").is_some());
    }

    #[test]
    fn scram_credentials_are_set_replaced_and_removed_per_mechanism() {
        let mut img = Image::default();
        let cred = |iterations| MetadataRecord::ScramCredential {
            user: "alice".into(),
            mechanism: 1,
            salt: vec![1, 2],
            stored_key: vec![3; 32],
            server_key: vec![5; 32],
            iterations,
        };
        img.apply(&cred(4096));
        img.apply(&cred(8192));
        img.apply(&MetadataRecord::ScramCredential {
            user: "alice".into(),
            mechanism: 2,
            salt: vec![9],
            stored_key: vec![4; 64],
            server_key: vec![6; 64],
            iterations: 4096,
        });
        let alice = &img.scram_credentials()["alice"];
        assert_eq!(alice.len(), 2);
        assert_eq!(alice[&1].iterations, 8192);
        img.apply(&MetadataRecord::RemoveScramCredential { user: "alice".into(), mechanism: 1 });
        assert_eq!(img.scram_credentials()["alice"].keys().copied().collect::<Vec<_>>(), vec![2]);
        img.apply(&MetadataRecord::RemoveScramCredential { user: "alice".into(), mechanism: 2 });
        assert!(img.scram_credentials().is_empty());
        // Removing what is not there changes nothing but the offset.
        img.apply(&MetadataRecord::RemoveScramCredential { user: "bob".into(), mechanism: 1 });
        assert!(img.scram_credentials().is_empty());
        assert_eq!(img.end_offset(), 6);
    }

    #[test]
    fn broker_registrations_replace_earlier_ones_and_survive_a_snapshot() {
        let endpoint =
            |port| BrokerEndpoint { listener: "PLAINTEXT".into(), host: "h".into(), port, security_protocol: None };
        let register = |id, port, fenced| MetadataRecord::RegisterBroker {
            node_id: id,
            incarnation_id: Uuid::new_v4(),
            endpoints: vec![endpoint(port)],
            rack: Some("r1".into()),
            fenced,
            process: None,
        };
        let mut img = Image::default();
        img.apply(&register(2, 9092, false));
        img.apply(&register(1, 9093, true));
        img.apply(&register(1, 9094, false));
        assert_eq!(img.brokers().len(), 2);
        assert_eq!(img.brokers()[&NodeId(1)].endpoints, vec![endpoint(9094)], "the latest registration wins");
        assert_eq!(img.unfenced_brokers(), vec![NodeId(1), NodeId(2)]);
        let mut rebuilt = Image::default();
        for r in img.to_records() {
            rebuilt.apply(&r);
        }
        assert_eq!(rebuilt.brokers(), img.brokers());
    }

    #[test]
    fn registrations_carry_every_listener_and_old_ones_still_load() {
        // A RegisterBroker as versions before listeners carried their
        // security protocol wrote it (only the first listener).
        let old = r#"{"type":"RegisterBroker","node_id":4,"incarnation_id":"6f1c5b0e-8a51-4b6e-9d0e-2d1f3a4b5c6d","endpoints":[{"listener":"PLAINTEXT","host":"h","port":9092}],"rack":null,"fenced":false}"#;
        let record: MetadataRecord = serde_json::from_str(old).expect("an old registration loads");
        let mut img = Image::default();
        img.apply(&record);
        let b = &img.brokers()[&NodeId(4)];
        assert_eq!(b.endpoints[0].security_protocol, None);
        // Its one listener stands for every listener.
        assert_eq!(b.endpoint("EXTERNAL").map(|e| e.port), Some(9092));

        let endpoint = |name: &str, port| BrokerEndpoint {
            listener: name.into(),
            host: "h".into(),
            port,
            security_protocol: Some("PLAINTEXT".into()),
        };
        let new = MetadataRecord::RegisterBroker {
            node_id: 5,
            incarnation_id: Uuid::new_v4(),
            endpoints: vec![endpoint("INTERNAL", 9093), endpoint("EXTERNAL", 9094)],
            rack: None,
            fenced: false,
            process: None,
        };
        let json = serde_json::to_string(&new).expect("json");
        assert!(json.contains(r#""security_protocol":"PLAINTEXT""#), "{json}");
        img.apply(&serde_json::from_str(&json).expect("round trip"));
        let b = &img.brokers()[&NodeId(5)];
        assert_eq!(b.endpoint("INTERNAL").map(|e| e.port), Some(9093));
        assert_eq!(b.endpoint("EXTERNAL").map(|e| e.port), Some(9094));
        assert_eq!(b.endpoint("OTHER"), None, "a listener the broker does not have");
        // An old record written back (snapshot) stays in the old form.
        let back = serde_json::to_string(&record).expect("json");
        assert!(!back.contains("security_protocol"), "{back}");
    }

    #[test]
    fn a_registration_without_the_process_loads_as_written_before_it_existed_and_one_with_it_keeps_it() {
        // A line of a metadata.log written before registrations carried the process.
        let old = r#"{"type":"RegisterBroker","node_id":2,"incarnation_id":"6f1c2f0e-6a8e-4a57-9a3e-2f7e0c9b5d11","endpoints":[{"listener":"PLAINTEXT","host":"h","port":9092}],"rack":null,"fenced":false}"#;
        let mut img = Image::default();
        img.apply(&serde_json::from_str(old).expect("an old registration loads"));
        assert_eq!(img.brokers()[&NodeId(2)].process, None);
        let written: Vec<String> = img.to_records().iter().map(|r| serde_json::to_string(r).expect("encode")).collect();
        assert_eq!(written, vec![old.to_string()], "written back byte for byte");

        let process = BrokerProcess { version: "0.1.0".into(), start_time_ms: 1_765_000_000_000 };
        img.apply(&MetadataRecord::RegisterBroker {
            node_id: 2,
            incarnation_id: Uuid::new_v4(),
            endpoints: vec![],
            rack: None,
            fenced: false,
            process: Some(process.clone()),
        });
        assert_eq!(img.brokers()[&NodeId(2)].process.as_ref(), Some(&process));
        let mut rebuilt = Image::default();
        for r in img.to_records() {
            let line = serde_json::to_string(&r).expect("encode");
            rebuilt.apply(&serde_json::from_str(&line).expect("decode"));
        }
        assert_eq!(rebuilt.brokers()[&NodeId(2)].process, Some(process), "a snapshot keeps it");
    }

    #[test]
    fn fence_and_unfence_flip_a_registration_and_survive_a_snapshot() {
        let mut img = Image::default();
        img.apply(&MetadataRecord::RegisterBroker {
            node_id: 1,
            incarnation_id: Uuid::new_v4(),
            endpoints: vec![],
            rack: None,
            fenced: false,
            process: None,
        });
        img.apply(&MetadataRecord::FenceBroker { node_id: 1 });
        assert!(!img.is_unfenced(NodeId(1)));
        assert!(img.unfenced_brokers().is_empty());
        let mut rebuilt = Image::default();
        for r in img.to_records() {
            rebuilt.apply(&r);
        }
        assert!(!rebuilt.is_unfenced(NodeId(1)), "a snapshot keeps the fence");
        img.apply(&MetadataRecord::UnfenceBroker { node_id: 1 });
        assert_eq!(img.unfenced_brokers(), vec![NodeId(1)]);
        // Of an unknown broker: nothing but the offset moves.
        img.apply(&MetadataRecord::FenceBroker { node_id: 9 });
        assert!(img.brokers().get(&NodeId(9)).is_none());
        assert_eq!(img.end_offset(), 4);
    }
}
