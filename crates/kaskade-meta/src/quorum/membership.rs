//! Whether a voter change (KIP-853's AddRaftVoter / RemoveRaftVoter /
//! UpdateRaftVoter) may
//! start, decided on the leader from its view of the membership, without
//! I/O. The change itself is openraft's: the new controller joins as a
//! learner and catches up, then joint consensus makes it a voter; a removed
//! voter leaves through joint consensus too (`voter_changes`).
//!
//! The checks and their order are Kafka's (`AddVoterHandler`,
//! `RemoveVoterHandler`, `VoterSet`): a change while another is pending or
//! not yet committed times out (REQUEST_TIMED_OUT), adding an id that is
//! already a voter is DUPLICATE_VOTER, removing a key (id and directory
//! id) that is not a voter, or the last voter, is VOTER_NOT_FOUND; a static
//! quorum (`controller.quorum.voters`, Kafka's `kraft.version` 0) cannot
//! change (UNSUPPORTED_VERSION).
//!
//! Invariant: a change is allowed only from a committed, non-joint
//! membership, so at most one change is ever in flight and every step
//! keeps a majority of the old voters in the new configuration.

use std::collections::BTreeMap;
use std::fmt;

use kaskade_types::NodeId;

/// A voter as Kafka names it: its id and the directory id of its metadata
/// log (`None` when unknown: a static voter, or Kafka's zero UUID).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VoterKey {
    pub id: NodeId,
    pub directory_id: Option<uuid::Uuid>,
}

impl fmt::Display for VoterKey {
    // Kafka's `ReplicaKey.toString`, so messages read the same.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.directory_id {
            Some(d) => write!(f, "ReplicaKey(id={}, directoryId=Optional[{}])", self.id, base64(d)),
            None => write!(f, "ReplicaKey(id={}, directoryId=Optional.empty)", self.id),
        }
    }
}

/// Kafka's rendering of a UUID: URL-safe base64 without padding.
fn base64(id: uuid::Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(22);
    let (mut acc, mut bits) = (0u32, 0);
    for b in id.as_bytes() {
        acc = (acc << 8) | u32::from(*b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(char::from(ALPHABET[((acc >> bits) & 63) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (6 - bits)) & 63) as usize]));
    }
    out
}

/// The leader's view of the membership when a change is asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MembershipView {
    /// The voters of the effective membership, with their directory ids.
    pub voters: BTreeMap<NodeId, Option<uuid::Uuid>>,
    /// The effective membership is not committed yet, or is a joint one
    /// (a change is still in flight).
    pub uncommitted: bool,
    /// Another AddRaftVoter / RemoveRaftVoter is being carried out here.
    pub operation_pending: bool,
    /// The quorum was formed from `controller.quorum.voters` (static).
    pub static_quorum: bool,
}

/// Why a voter change is refused or failed; mapped to Kafka's error code at
/// the protocol edge.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VoterChangeError {
    /// NOT_LEADER_OR_FOLLOWER: only the leader changes the voters.
    #[error("this controller is not the leader (the leader is {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    /// UNSUPPORTED_VERSION: a static quorum cannot change.
    #[error("{0}")]
    Unsupported(String),
    /// REQUEST_TIMED_OUT: another change is in flight, or this one did not
    /// finish in time (the new controller did not catch up, or the change
    /// did not commit).
    #[error("{0}")]
    TimedOut(String),
    /// DUPLICATE_VOTER.
    #[error("{0}")]
    Duplicate(String),
    /// VOTER_NOT_FOUND.
    #[error("{0}")]
    NotFound(String),
    /// INVALID_REQUEST: the request names no endpoint or an invalid id.
    #[error("{0}")]
    Invalid(String),
    /// Anything else the quorum answered (UNKNOWN_SERVER_ERROR).
    #[error("{0}")]
    Failed(String),
}

fn voter_keys(view: &MembershipView) -> String {
    let keys: Vec<String> =
        view.voters.iter().map(|(id, d)| VoterKey { id: *id, directory_id: *d }.to_string()).collect();
    format!("[{}]", keys.join(", "))
}

/// The checks common to both changes, in Kafka's order.
fn may_change(view: &MembershipView, verb: &str) -> Result<(), VoterChangeError> {
    if view.operation_pending {
        return Err(VoterChangeError::TimedOut(
            "Request timed out waiting for leader to handle previous add or remove voter request".into(),
        ));
    }
    if view.static_quorum {
        return Err(VoterChangeError::Unsupported(format!(
            "Cluster doesn't support {verb} voter because the kraft.version feature is 0 (a static quorum: \
             controller.quorum.voters)"
        )));
    }
    if view.uncommitted {
        return Err(VoterChangeError::TimedOut(
            "Request timed out waiting for voters to commit the latest voter change".into(),
        ));
    }
    Ok(())
}

/// Whether `key` may be added as a voter.
pub fn check_add(view: &MembershipView, key: VoterKey) -> Result<(), VoterChangeError> {
    may_change(view, "adding")?;
    if view.voters.contains_key(&key.id) {
        return Err(VoterChangeError::Duplicate(format!(
            "The voter id for {key} is already part of the set of voters {}.",
            voter_keys(view)
        )));
    }
    Ok(())
}

/// Whether voter `key` may update its endpoint (UpdateRaftVoter, Kafka's
/// `UpdateVoterHandler`): it must be a voter with that directory id
/// (`VoterSet.updateVoter`), VOTER_NOT_FOUND otherwise.
pub fn check_update(view: &MembershipView, key: VoterKey) -> Result<(), VoterChangeError> {
    may_change(view, "updating")?;
    if view.voters.get(&key.id).is_none_or(|d| *d != key.directory_id) {
        return Err(VoterChangeError::NotFound(format!(
            "Cannot update voter {key}: not in the set of voters {}",
            voter_keys(view)
        )));
    }
    Ok(())
}

/// Whether `key` may be removed: it must be a voter with that directory id
/// (Kafka compares the whole key; a voter stored without one matches only a
/// request without one), and not the last one.
pub fn check_remove(view: &MembershipView, key: VoterKey) -> Result<(), VoterChangeError> {
    may_change(view, "removing")?;
    let matches = view.voters.get(&key.id).is_some_and(|d| *d == key.directory_id);
    if !matches || view.voters.len() <= 1 {
        return Err(VoterChangeError::NotFound(format!(
            "Cannot remove voter {key} from the set of voters {}",
            voter_keys(view)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(n: u8) -> Option<uuid::Uuid> {
        Some(uuid::Uuid::from_bytes([n; 16]))
    }

    fn key(id: i32, d: Option<uuid::Uuid>) -> VoterKey {
        VoterKey { id: NodeId(id), directory_id: d }
    }

    fn view(voters: &[(i32, Option<uuid::Uuid>)]) -> MembershipView {
        MembershipView { voters: voters.iter().map(|(id, d)| (NodeId(*id), *d)).collect(), ..Default::default() }
    }

    #[test]
    fn a_new_controller_may_join_a_committed_membership() {
        assert_eq!(check_add(&view(&[(1, dir(1))]), key(2, dir(2))), Ok(()));
        assert_eq!(check_add(&view(&[(1, dir(1)), (2, dir(2))]), key(3, None)), Ok(()));
    }

    #[test]
    fn an_id_already_voting_is_a_duplicate_whatever_its_directory() {
        let v = view(&[(1, dir(1)), (2, dir(2))]);
        for k in [key(2, dir(2)), key(2, dir(9)), key(2, None)] {
            match check_add(&v, k) {
                Err(VoterChangeError::Duplicate(m)) => {
                    assert!(m.starts_with("The voter id for ReplicaKey(id=2, directoryId="), "{m}");
                    assert!(m.contains("is already part of the set of voters [ReplicaKey(id=1, "), "{m}");
                }
                other => panic!("{k}: {other:?}"),
            }
        }
    }

    #[test]
    fn only_a_voter_with_that_directory_may_be_removed_and_never_the_last() {
        let v = view(&[(1, dir(1)), (2, dir(2))]);
        assert_eq!(check_remove(&v, key(2, dir(2))), Ok(()));
        for k in [key(3, dir(3)), key(2, dir(9)), key(2, None)] {
            assert!(matches!(check_remove(&v, k), Err(VoterChangeError::NotFound(_))), "{k}");
        }
        let last = check_remove(&view(&[(1, dir(1))]), key(1, dir(1)));
        match last {
            Err(VoterChangeError::NotFound(m)) => assert_eq!(
                m,
                "Cannot remove voter ReplicaKey(id=1, directoryId=Optional[AQEBAQEBAQEBAQEBAQEBAQ]) from the set of \
                 voters [ReplicaKey(id=1, directoryId=Optional[AQEBAQEBAQEBAQEBAQEBAQ])]"
            ),
            other => panic!("{other:?}"),
        }
        // A voter stored without a directory id matches a request without one.
        assert_eq!(check_remove(&view(&[(1, None), (2, None)]), key(2, None)), Ok(()));
    }

    #[test]
    fn a_change_waits_for_the_previous_one_in_kafkas_order() {
        let mut v = view(&[(1, dir(1)), (2, dir(2))]);
        v.uncommitted = true;
        let timed_out = |r: Result<(), VoterChangeError>| matches!(r, Err(VoterChangeError::TimedOut(_)));
        assert!(timed_out(check_add(&v, key(3, dir(3)))));
        assert!(timed_out(check_remove(&v, key(2, dir(2)))));
        // Pending is checked before the duplicate / not-found checks.
        assert!(timed_out(check_add(&v, key(2, dir(2)))));
        v.uncommitted = false;
        v.operation_pending = true;
        match check_remove(&v, key(7, None)) {
            Err(VoterChangeError::TimedOut(m)) => assert!(m.contains("previous add or remove voter request"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn only_a_voter_with_that_directory_may_update_its_endpoint() {
        let mut v = view(&[(1, dir(1)), (2, dir(2))]);
        assert_eq!(check_update(&v, key(2, dir(2))), Ok(()));
        for k in [key(3, dir(3)), key(2, dir(9)), key(2, None)] {
            assert!(matches!(check_update(&v, k), Err(VoterChangeError::NotFound(_))), "{k}");
        }
        v.uncommitted = true;
        assert!(matches!(check_update(&v, key(2, dir(2))), Err(VoterChangeError::TimedOut(_))));
        v.uncommitted = false;
        v.static_quorum = true;
        assert!(matches!(check_update(&v, key(2, dir(2))), Err(VoterChangeError::Unsupported(_))));
    }

    #[test]
    fn a_static_quorum_cannot_change() {
        let mut v = view(&[(1, None), (2, None), (3, None)]);
        v.static_quorum = true;
        assert!(matches!(check_add(&v, key(4, dir(4))), Err(VoterChangeError::Unsupported(_))));
        assert!(matches!(check_remove(&v, key(3, None)), Err(VoterChangeError::Unsupported(_))));
    }
}
