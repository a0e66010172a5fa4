//! One test per decision case of AlterPartition (see the module docs).

use kafka_protocol::messages::alter_partition_request::{BrokerState, PartitionData, TopicData};

use super::*;

/// Brokers 1..=3 registered (2 fenced if `fence_2`), topic "t" with one
/// partition led by 1 over replicas [1, 2, 3], ISR [1, 2], leader epoch 5,
/// partition epoch 7.
fn cluster(fence_2: bool) -> (Image, Uuid) {
    let mut img = Image::default();
    for id in 1..=3 {
        img.apply(&MetadataRecord::RegisterBroker {
            node_id: id,
            incarnation_id: Uuid::new_v4(),
            endpoints: vec![],
            rack: None,
            fenced: fence_2 && id == 2,
            process: None,
        });
    }
    let id = Uuid::new_v4();
    img.apply(&MetadataRecord::Topic { name: "t".into(), id });
    img.apply(&MetadataRecord::Partition {
        topic_id: id,
        partition: 0,
        leader: 1,
        replicas: vec![1, 2, 3],
        isr: vec![1, 2],
        leader_epoch: 5,
        partition_epoch: 7,
        adding_replicas: vec![],
        removing_replicas: vec![],
    });
    (img, id)
}

/// Its registered broker epoch; -1 (unchecked) for an unregistered id.
fn epoch_of(img: &Image, id: i32) -> i64 {
    img.brokers().get(&NodeId(id)).map_or(-1, |b| broker_epoch(b.incarnation_id))
}

/// Broker 1's request (v3, its current epoch) to set the ISR of t-0 to
/// `isr` (each member at its registered epoch), at `epochs` (leader, partition).
fn request(img: &Image, topic: Uuid, epochs: (i32, i32), isr: &[i32]) -> AlterPartitionRequest {
    let members =
        isr.iter().map(|n| BrokerState::default().with_broker_id(BrokerId(*n)).with_broker_epoch(epoch_of(img, *n)));
    let partition = PartitionData::default()
        .with_partition_index(0)
        .with_leader_epoch(epochs.0)
        .with_partition_epoch(epochs.1)
        .with_new_isr_with_epochs(members.collect());
    AlterPartitionRequest::default()
        .with_broker_id(BrokerId(1))
        .with_broker_epoch(epoch_of(img, 1))
        .with_topics(vec![TopicData::default().with_topic_id(topic).with_partitions(vec![partition])])
}

fn only_code(response: &AlterPartitionResponse) -> i16 {
    assert_eq!(response.error_code, 0, "{response:?}");
    response.topics[0].partitions[0].error_code
}

#[test]
fn an_expansion_is_written_and_answered_with_the_new_state() {
    let (img, t) = cluster(false);
    let (records, response) = decide(&img, &request(&img, t, (5, 7), &[1, 2, 3]), 3);
    assert_eq!(records.len(), 1);
    let p = &response.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    assert_eq!(p.isr, vec![BrokerId(1), BrokerId(2), BrokerId(3)]);
    assert_eq!((p.leader_id, p.leader_epoch, p.partition_epoch), (BrokerId(1), 5, 8));
    let mut next = img.clone();
    next.apply(&records[0]);
    assert_eq!(next.topic_by_id(&t).expect("t").partitions[0].isr, vec![NodeId(1), NodeId(2), NodeId(3)]);
}

#[test]
fn the_same_isr_writes_nothing_and_answers_the_current_state() {
    let (img, t) = cluster(false);
    let (records, response) = decide(&img, &request(&img, t, (5, 7), &[1, 2]), 3);
    assert!(records.is_empty());
    assert_eq!(response.topics[0].partitions[0].partition_epoch, 7);
    assert_eq!(only_code(&response), 0);
}

#[test]
fn a_stale_or_unknown_broker_epoch_refuses_the_whole_request() {
    let (img, t) = cluster(false);
    let mut req = request(&img, t, (5, 7), &[1]);
    req.broker_epoch += 1;
    let (records, response) = decide(&img, &req, 3);
    assert!(records.is_empty());
    assert_eq!(response.error_code, ResponseError::StaleBrokerEpoch.code());
    req.broker_id = BrokerId(9);
    assert_eq!(decide(&img, &req, 3).1.error_code, ResponseError::StaleBrokerEpoch.code());
}

#[test]
fn an_unknown_topic_id_or_partition_is_refused_per_partition() {
    let (img, t) = cluster(false);
    let (records, response) = decide(&img, &request(&img, Uuid::new_v4(), (5, 7), &[1]), 3);
    assert!(records.is_empty());
    assert_eq!(only_code(&response), ResponseError::UnknownTopicId.code());
    let mut req = request(&img, t, (5, 7), &[1]);
    req.topics[0].partitions[0].partition_index = 3;
    assert_eq!(only_code(&decide(&img, &req, 3).1), ResponseError::UnknownTopicOrPartition.code());
}

#[test]
fn epochs_ahead_of_the_image_say_not_controller() {
    let (img, t) = cluster(false);
    for epochs in [(6, 7), (5, 8)] {
        let (records, response) = decide(&img, &request(&img, t, epochs, &[1]), 3);
        assert!(records.is_empty());
        assert_eq!(only_code(&response), ResponseError::NotController.code(), "{epochs:?}");
    }
}

#[test]
fn an_old_leader_epoch_is_fenced_and_an_old_partition_epoch_is_an_invalid_update() {
    let (img, t) = cluster(false);
    assert_eq!(only_code(&decide(&img, &request(&img, t, (4, 7), &[1]), 3).1), ResponseError::FencedLeaderEpoch.code());
    assert_eq!(
        only_code(&decide(&img, &request(&img, t, (5, 6), &[1]), 3).1),
        ResponseError::InvalidUpdateVersion.code()
    );
}

#[test]
fn a_sender_that_does_not_lead_is_an_invalid_request() {
    let (img, t) = cluster(false);
    let mut req = request(&img, t, (5, 7), &[1, 2]);
    req.broker_id = BrokerId(2);
    req.broker_epoch = epoch_of(&img, 2);
    assert_eq!(only_code(&decide(&img, &req, 3).1), ResponseError::InvalidRequest.code());
}

#[test]
fn an_isr_without_the_leader_outside_the_replicas_or_with_duplicates_is_invalid() {
    let (img, t) = cluster(false);
    for isr in [&[2, 3][..], &[1, 4], &[1, 2, 2], &[]] {
        let (records, response) = decide(&img, &request(&img, t, (5, 7), isr), 3);
        assert!(records.is_empty(), "{isr:?}");
        assert_eq!(only_code(&response), ResponseError::InvalidRequest.code(), "{isr:?}");
    }
}

#[test]
fn a_recovering_leader_state_is_invalid() {
    let (img, t) = cluster(false);
    let mut req = request(&img, t, (5, 7), &[1]);
    req.topics[0].partitions[0].leader_recovery_state = 1;
    assert_eq!(only_code(&decide(&img, &req, 3).1), ResponseError::InvalidRequest.code());
}

#[test]
fn fenced_unregistered_or_stale_members_are_ineligible() {
    let (img, t) = cluster(true);
    // 2 is fenced.
    let (records, response) = decide(&img, &request(&img, t, (5, 7), &[1, 2, 3]), 3);
    assert!(records.is_empty());
    assert_eq!(only_code(&response), ResponseError::IneligibleReplica.code());
    // 3 at an epoch it no longer has; -1 skips the epoch check.
    let (img, t) = cluster(false);
    let mut req = request(&img, t, (5, 7), &[1, 3]);
    req.topics[0].partitions[0].new_isr_with_epochs[1].broker_epoch += 1;
    assert_eq!(only_code(&decide(&img, &req, 3).1), ResponseError::IneligibleReplica.code());
    req.topics[0].partitions[0].new_isr_with_epochs[1].broker_epoch = -1;
    assert_eq!(only_code(&decide(&img, &req, 3).1), 0);
}

#[test]
fn version_2_takes_the_plain_isr() {
    let (img, t) = cluster(false);
    let mut req = request(&img, t, (5, 7), &[]);
    req.topics[0].partitions[0].new_isr = vec![BrokerId(1)];
    let (records, response) = decide(&img, &req, 2);
    assert_eq!(records.len(), 1);
    assert_eq!(response.topics[0].partitions[0].isr, vec![BrokerId(1)]);
}

#[test]
fn a_change_completing_a_reassignment_that_moves_the_leader_says_new_leader_elected() {
    let (mut img, t) = cluster(false);
    // Moving t-0 from [1, 2, 3] to [2, 3]: 1 is being removed, none added.
    img.apply(&MetadataRecord::Partition {
        topic_id: t,
        partition: 0,
        leader: 1,
        replicas: vec![2, 3, 1],
        isr: vec![1, 2],
        leader_epoch: 5,
        partition_epoch: 7,
        adding_replicas: vec![],
        removing_replicas: vec![1],
    });
    let (records, response) = decide(&img, &request(&img, t, (5, 7), &[1, 2, 3]), 3);
    assert_eq!(records.len(), 1, "the change is written");
    assert_eq!(only_code(&response), ResponseError::NewLeaderElected.code());
    let mut next = img.clone();
    next.apply(&records[0]);
    let p = &next.topic_by_id(&t).expect("t").partitions[0];
    assert_eq!((p.replicas.clone(), p.leader), (vec![NodeId(2), NodeId(3)], Some(NodeId(2))));
}

#[test]
fn a_partition_named_twice_is_decided_against_its_first_change() {
    let (img, t) = cluster(false);
    let mut req = request(&img, t, (5, 7), &[1, 2, 3]);
    let again = req.topics[0].partitions[0].clone();
    req.topics[0].partitions.push(again);
    let (records, response) = decide(&img, &req, 3);
    assert_eq!(records.len(), 1);
    let codes: Vec<i16> = response.topics[0].partitions.iter().map(|p| p.error_code).collect();
    assert_eq!(codes, vec![0, ResponseError::InvalidUpdateVersion.code()]);
}
