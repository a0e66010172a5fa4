//! Consumer groups as kafka-exporter shows them: per group state and
//! members, per committed partition the offset and the lag (high watermark
//! minus committed offset, never below 0). A scrape never creates
//! `__consumer_offsets`: without it there are no groups to show.

use std::collections::HashMap;
use std::sync::Arc;

use kaskade_log::Log;

use super::text::Exposition;
use crate::group::GroupState;
use crate::Broker;

/// Every state a group can be in, for one 0/1 series each.
const STATES: [GroupState; 5] = [
    GroupState::Empty,
    GroupState::PreparingRebalance,
    GroupState::CompletingRebalance,
    GroupState::Stable,
    GroupState::Dead,
];

struct GroupSnapshot {
    group_id: String,
    state: &'static str,
    members: usize,
    offsets: Vec<(String, i32, i64)>,
}

pub(super) fn render(x: &mut Exposition<'_>, broker: &Broker, runtime: &tokio::runtime::Handle, logs: &[Arc<Log>]) {
    // No `__consumer_offsets`: no group exists, and starting the
    // coordinator would create the topic for a scrape.
    if broker.topics.image().topic(crate::group::records::OFFSETS_TOPIC).is_none() {
        render_groups(x, &[], logs);
        return;
    }
    // One call on the coordinator's task: a consistent view of all groups.
    let snapshot = runtime.block_on(broker.groups.call(|engine, now| {
        engine
            .list_groups(now, &[])
            .into_iter()
            .map(|g| {
                let members = engine.describe_group(now, &g.group_id).map_or(0, |d| d.members.len());
                let offsets = engine
                    .fetch_offsets(now, &g.group_id, None)
                    .map(|o| {
                        o.into_iter()
                            .filter_map(|f| {
                                let offset = f.offset()?.get();
                                Some((f.partition.topic.to_string(), f.partition.partition, offset))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                GroupSnapshot { group_id: g.group_id, state: g.state, members, offsets }
            })
            .collect::<Vec<_>>()
    }));
    let groups = match snapshot {
        Ok(g) => g,
        Err(e) => {
            // Stopping: the scrape still carries everything else.
            tracing::debug!(error = %e, "metrics: group coordinator unavailable");
            Vec::new()
        }
    };
    render_groups(x, &groups, logs);
}

fn render_groups(x: &mut Exposition<'_>, groups: &[GroupSnapshot], logs: &[Arc<Log>]) {
    // Every partition's high watermark, read only when some group has a
    // committed offset to compare it with (not for every scrape).
    let watermarks: HashMap<(&str, i32), i64> = if groups.iter().any(|g| !g.offsets.is_empty()) {
        logs.iter()
            .map(|l| ((&*l.topic_partition().topic, l.topic_partition().partition), l.high_watermark()))
            .collect()
    } else {
        HashMap::new()
    };

    x.family("kaskade_consumergroup_members", "gauge", "Members of the consumer group.");
    for g in groups {
        x.sample("kaskade_consumergroup_members", &[("group", &g.group_id)], g.members as f64);
    }
    x.family("kaskade_consumergroup_state", "gauge", "1 for the group's current state, 0 for the others.");
    for g in groups {
        for s in STATES {
            let v = if s.name() == g.state { 1.0 } else { 0.0 };
            x.sample("kaskade_consumergroup_state", &[("group", &g.group_id), ("state", s.name())], v);
        }
    }
    x.family("kaskade_consumergroup_current_offset", "gauge", "The group's committed offset of the partition.");
    for g in groups {
        for (topic, partition, offset) in &g.offsets {
            let p = partition.to_string();
            let labels = [("group", g.group_id.as_str()), ("topic", topic.as_str()), ("partition", p.as_str())];
            x.sample("kaskade_consumergroup_current_offset", &labels, *offset as f64);
        }
    }
    x.family(
        "kaskade_consumergroup_lag",
        "gauge",
        "Records of the partition the group has not committed: high watermark minus committed offset.",
    );
    for g in groups {
        for (topic, partition, offset) in &g.offsets {
            // A committed offset of a partition this node has no log for
            // (deleted topic) has no lag to show.
            let Some(hw) = watermarks.get(&(topic.as_str(), *partition)) else { continue };
            let p = partition.to_string();
            let labels = [("group", g.group_id.as_str()), ("topic", topic.as_str()), ("partition", p.as_str())];
            x.sample("kaskade_consumergroup_lag", &labels, (hw - offset).max(0) as f64);
        }
    }
}
