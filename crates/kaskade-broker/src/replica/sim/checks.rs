//! The simulation's invariants, checked after every step, and its
//! convergence check at the end (see the module doc of `sim`).

use std::collections::BTreeMap;

use kaskade_types::{LeaderEpoch, NodeId, Offset};

use super::net::Entry;
use super::{Sim, NODES};

/// What the checks remember between steps.
#[derive(Debug, Default)]
pub(super) struct History {
    /// Every entry ever below a replica's HW, by offset: what no replica
    /// may ever hold differently below its own HW.
    committed: Vec<Entry>,
    /// Each node's highest leader epoch applied (across restarts).
    epochs: BTreeMap<NodeId, LeaderEpoch>,
    /// The controller's last leader epoch.
    controller_epoch: LeaderEpoch,
    /// A leader's HW within one leadership: (node, epoch) -> HW.
    leader_hw: BTreeMap<(NodeId, LeaderEpoch), Offset>,
    /// Per node, how much of its log is known to agree with `committed`.
    agreed: BTreeMap<NodeId, usize>,
}

pub(super) fn check(sim: &mut Sim) -> Result<(), String> {
    let h = &mut sim.history;
    let p = sim.controller.partition();
    if p.leader_epoch < h.controller_epoch {
        return Err(format!("the controller's leader epoch went back: {} -> {}", h.controller_epoch, p.leader_epoch));
    }
    h.controller_epoch = p.leader_epoch;
    if let Some(leader) = p.leader {
        if !p.isr.contains(&leader) {
            return Err(format!("the image's leader {leader} is not in its ISR {:?}", p.isr));
        }
    }
    for n in &sim.nodes {
        let Some(l) = &n.leadership else { continue };
        let id = n.id;
        let last = h.epochs.entry(id).or_insert(l.epoch());
        if l.epoch() < *last {
            return Err(format!("node {id}'s leader epoch went back: {last} -> {}", l.epoch()));
        }
        *last = l.epoch();
        let hw = l.high_watermark();
        if hw > n.log_end() {
            return Err(format!("node {id}'s HW {hw} is past its log end {}", n.log_end()));
        }
        if l.is_leader() {
            if !l.isr().any(|m| m == id) {
                return Err(format!("leader {id} is not in its own ISR {:?}", l.isr().collect::<Vec<_>>()));
            }
            let before = h.leader_hw.entry((id, l.epoch())).or_insert(hw);
            if hw < *before {
                return Err(format!("leader {id}'s HW went back at epoch {}: {before} -> {hw}", l.epoch()));
            }
            *before = hw;
        }
    }
    // What is below any replica's HW (a leader's, one a follower learnt,
    // or a crashed node's checkpoint) is committed: every replica agrees
    // on it, and it never changes.
    for n in &mut sim.nodes {
        let upto = n.high_watermark().get() as usize;
        let agreed = h.agreed.get(&n.id).copied().unwrap_or(0).min(n.low_water);
        if let Some(o) = (agreed..upto.min(h.committed.len())).find(|o| n.log[*o] != h.committed[*o]) {
            return Err(format!(
                "node {} has {:?} at offset {o} below its HW {}, committed {:?}",
                n.id,
                n.log[o],
                n.high_watermark(),
                h.committed[o]
            ));
        }
        if upto > h.committed.len() {
            h.committed.extend_from_slice(&n.log[h.committed.len()..upto]);
        }
        h.agreed.insert(n.id, upto.max(agreed).min(n.log.len()));
        n.low_water = n.log.len();
    }
    // No acknowledged record lost: committed, and fsynced on every member
    // of the controller's ISR (crashed or not) at its offset.
    let isr = p.isr.clone();
    for (offset, value) in &sim.acked {
        let o = offset.get() as usize;
        // (An acknowledgement may arrive before any HW a replica still
        // holds covers it: the leader that decided it may have crashed.)
        if h.committed.get(o).is_some_and(|e| e.value != *value) {
            return Err(format!("acknowledged value {value} at offset {o}, committed {:?}", h.committed[o]));
        }
        for m in &isr {
            let Some(n) = sim.nodes.iter().find(|n| n.id == *m) else { continue };
            if o >= n.durable_end || n.log[o].value != *value {
                return Err(format!(
                    "ISR member {m} lacks acknowledged value {value} at offset {o} (log end {}, durable end {})",
                    n.log_end(),
                    n.durable_end
                ));
            }
        }
    }
    Ok(())
}

/// After the calm phase: one leader, every replica in its ISR, identical
/// logs, the HW at the log end, and records acknowledged since the calm
/// began.
pub(super) fn converged(sim: &Sim) -> Result<(), String> {
    let p = sim.controller.partition();
    let leader = p.leader.ok_or("no leader after the calm")?;
    if p.isr.len() != NODES.len() {
        let nodes: Vec<String> = sim.nodes.iter().map(|n| n.summary()).collect();
        let fenced: Vec<_> = NODES.iter().filter(|n| !sim.controller.image.is_unfenced(**n)).collect();
        return Err(format!(
            "ISR {:?} after the calm, leader {leader}, partition epoch {}, image v{}, fenced {fenced:?}:\n{}",
            p.isr,
            p.partition_epoch,
            sim.controller.version,
            nodes.join("\n")
        ));
    }
    let first = &sim.nodes[0];
    for n in &sim.nodes {
        if n.log != first.log {
            return Err(format!("node {} and node {} differ after the calm", n.id, first.id));
        }
        if n.high_watermark() != n.log_end() {
            return Err(format!("node {}'s HW {} is not its log end {}", n.id, n.high_watermark(), n.log_end()));
        }
    }
    if sim.acked.len() <= sim.acked_at_calm {
        return Err(format!("nothing acknowledged after the calm began ({} before)", sim.acked_at_calm));
    }
    Ok(())
}
