//! Explicit replica assignments (CreatePartitions' `assignments`): Kafka's
//! `ReplicationControlManager.validateManualPartitionAssignment` and the
//! ISR its `createPartitions` derives from them.
//!
//! Pure: the registered brokers (unfenced and fenced) and one replica list
//! in, the list's ISR or Kafka's INVALID_REPLICA_ASSIGNMENT message out.
//! Kafka's rules, which hold here:
//!
//! - the list is not empty;
//! - every broker is registered (fenced ones count: a manual assignment
//!   may name a broker that is down, unlike automatic placement);
//! - no broker twice;
//! - the list is as long as the replication factor given (the topic's,
//!   for CreatePartitions);
//! - at least one replica is unfenced: the ISR is the unfenced replicas in
//!   the given order, and its first one leads.
//!
//! The brokers are checked in ascending id order, as Kafka sorts them, so a
//! list with two faults reports the one of the lowest broker id.

use kafka_protocol::ResponseError;
use kaskade_types::NodeId;

use super::error::TopicError;

/// The brokers an explicit assignment may name.
#[derive(Clone, Copy, Debug)]
pub struct Registered<'a> {
    /// Registered and unfenced: may be in the ISR and lead.
    pub unfenced: &'a [NodeId],
    /// Registered but fenced: may be a replica, not in the ISR.
    pub fenced: &'a [NodeId],
}

impl Registered<'_> {
    fn contains(&self, id: NodeId) -> bool {
        self.unfenced.contains(&id) || self.fenced.contains(&id)
    }
}

fn invalid(message: String) -> TopicError {
    TopicError::new(ResponseError::InvalidReplicaAssignment, message)
}

/// Checks one partition's replica list (Kafka's
/// `validateManualPartitionAssignment`); `replication`: the width every
/// list must have, if known.
pub fn validate(replicas: &[i32], registered: Registered<'_>, replication: Option<usize>) -> Result<(), TopicError> {
    if replicas.is_empty() {
        return Err(invalid("The manual partition assignment includes an empty replica list.".into()));
    }
    let mut sorted = replicas.to_vec();
    sorted.sort_unstable();
    let mut previous = None;
    for id in sorted {
        if !registered.contains(NodeId(id)) {
            return Err(invalid(format!(
                "The manual partition assignment includes broker {id}, but no such broker is registered."
            )));
        }
        if previous == Some(id) {
            return Err(invalid(format!("The manual partition assignment includes the broker {id} more than once.")));
        }
        previous = Some(id);
    }
    match replication {
        Some(r) if r != replicas.len() => Err(invalid(format!(
            "The manual partition assignment includes a partition with {} replica(s), but this is not consistent with previous partitions, which have {r} replica(s).",
            replicas.len()
        ))),
        _ => Ok(()),
    }
}

/// The ISR of a new partition assigned `replicas` (already validated):
/// its unfenced replicas in the given order. Refused when every replica
/// is fenced, as Kafka refuses it.
pub fn isr(replicas: &[i32], registered: Registered<'_>, partition: i32) -> Result<Vec<i32>, TopicError> {
    let isr: Vec<i32> = replicas.iter().copied().filter(|b| registered.unfenced.contains(&NodeId(*b))).collect();
    if isr.is_empty() {
        return Err(invalid(format!(
            "All brokers specified in the manual partition assignment for partition {partition} are fenced or in controlled shutdown."
        )));
    }
    debug_assert!(isr.iter().all(|b| replicas.contains(b)), "the ISR is a subset of the replicas");
    Ok(isr)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNFENCED: [NodeId; 2] = [NodeId(1), NodeId(2)];
    const FENCED: [NodeId; 1] = [NodeId(3)];
    const REG: Registered<'static> = Registered { unfenced: &UNFENCED, fenced: &FENCED };

    fn message(r: Result<impl std::fmt::Debug, TopicError>) -> String {
        let e = r.expect_err("refused");
        assert_eq!(e.code, ResponseError::InvalidReplicaAssignment);
        e.message
    }

    #[test]
    fn each_rule_answers_kafkas_message() {
        assert!(validate(&[2, 1, 3], REG, Some(3)).is_ok(), "a fenced broker may be named");
        assert!(validate(&[2], REG, None).is_ok());
        assert_eq!(
            message(validate(&[], REG, None)),
            "The manual partition assignment includes an empty replica list."
        );
        assert_eq!(
            message(validate(&[9, 1, 7], REG, Some(3))),
            "The manual partition assignment includes broker 7, but no such broker is registered.",
            "the lowest unknown id is named"
        );
        assert_eq!(
            message(validate(&[2, 1, 2], REG, Some(3))),
            "The manual partition assignment includes the broker 2 more than once."
        );
        assert_eq!(
            message(validate(&[1, 2], REG, Some(3))),
            "The manual partition assignment includes a partition with 2 replica(s), but this is not consistent with previous partitions, which have 3 replica(s)."
        );
    }

    #[test]
    fn the_isr_is_the_unfenced_replicas_in_order() {
        assert_eq!(isr(&[3, 2, 1], REG, 4).expect("isr"), vec![2, 1], "the fenced leader candidate is skipped");
        assert_eq!(
            message(isr(&[3], REG, 4)),
            "All brokers specified in the manual partition assignment for partition 4 are fenced or in controlled shutdown."
        );
    }
}
