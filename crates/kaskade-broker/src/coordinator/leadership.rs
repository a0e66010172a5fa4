//! Which internal-topic partitions a coordinator serves: Loading, Loaded or
//! NotLeader, per partition, as Kafka's coordinators track the partitions
//! they were elected for.
//!
//! Invariant: a key is answered only when its partition is Loaded. A load
//! is identified by the generation [`Leadership::begin_load`] hands out; a
//! resignation or a newer election bumps it, so a load that finishes after
//! either is discarded by [`Leadership::finish_load`].
//!
//! Every load is for one leader epoch of its partition (Kafka's coordinator
//! epoch). [`Leadership::follow`] decides from the metadata image alone:
//! a partition the image names this node the leader of under another epoch
//! than the one loaded (or loading) is loaded again, because another
//! coordinator may have written in between, even if this node never saw
//! an image without the leadership (images are coalesced) or was still
//! loading when it changed.

use std::collections::HashMap;

use super::CoordinatorError;

/// The state of one internal partition on this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionLoad {
    /// Elected; its records are being replayed (load `generation`).
    Loading { generation: u64 },
    /// Elected and replayed: its keys are served here.
    Loaded,
    /// Not led here (never elected, or resigned).
    NotLeader,
}

/// What a coordinator does with one partition when the image changes
/// ([`Leadership::follow`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FollowAction {
    /// Nothing changed for it.
    Keep,
    /// Newly led: load it under `epoch`.
    Load { epoch: i32 },
    /// Led under another epoch than the one loaded or loading (`was`):
    /// drop what was loaded and load again under `epoch`.
    Reload { was: i32, epoch: i32 },
    /// Led elsewhere now: drop it.
    Resign,
}

/// Per-partition leadership of one coordinator.
#[derive(Debug, Default)]
pub struct Leadership {
    partitions: HashMap<i32, PartitionLoad>,
    /// The leader epoch each Loading or Loaded partition is loaded under.
    epochs: HashMap<i32, i32>,
    generation: u64,
}

impl Leadership {
    pub fn new() -> Self {
        Self::default()
    }

    /// The state of `partition`.
    pub fn state(&self, partition: i32) -> PartitionLoad {
        self.partitions.get(&partition).copied().unwrap_or(PartitionLoad::NotLeader)
    }

    /// Whether keys of `partition` may be answered here; the error to
    /// answer otherwise.
    pub fn check(&self, partition: i32) -> Result<(), CoordinatorError> {
        match self.state(partition) {
            PartitionLoad::Loaded => Ok(()),
            PartitionLoad::Loading { .. } => Err(CoordinatorError::LoadInProgress),
            PartitionLoad::NotLeader => Err(CoordinatorError::NotCoordinator),
        }
    }

    /// Whether any partition is still loading (ListGroups and
    /// ListTransactions answer COORDINATOR_LOAD_IN_PROGRESS then).
    pub fn any_loading(&self) -> bool {
        self.partitions.values().any(|s| matches!(s, PartitionLoad::Loading { .. }))
    }

    /// This node was elected for `partition` under leader `epoch`: it is
    /// Loading from now on; the generation to hand to
    /// [`Leadership::finish_load`].
    pub fn begin_load(&mut self, partition: i32, epoch: i32) -> u64 {
        self.generation += 1;
        let generation = self.generation;
        self.partitions.insert(partition, PartitionLoad::Loading { generation });
        self.epochs.insert(partition, epoch);
        generation
    }

    /// The leader epoch `partition` is loaded (or loading) under; `None`
    /// when it is not led here.
    pub fn epoch(&self, partition: i32) -> Option<i32> {
        match self.state(partition) {
            PartitionLoad::NotLeader => None,
            _ => self.epochs.get(&partition).copied(),
        }
    }

    /// What to do with `partition` now that the image says it is led here
    /// under `led` (`None`: led elsewhere or by no one).
    pub fn follow(&self, partition: i32, led: Option<i32>) -> FollowAction {
        match (led, self.state(partition), self.epoch(partition)) {
            (Some(epoch), PartitionLoad::NotLeader, _) => FollowAction::Load { epoch },
            (Some(epoch), _, Some(was)) if was != epoch => FollowAction::Reload { was, epoch },
            (Some(_), _, _) => FollowAction::Keep,
            (None, PartitionLoad::NotLeader, _) => FollowAction::Keep,
            (None, _, _) => FollowAction::Resign,
        }
    }

    /// The load `generation` of `partition` finished: true (and Loaded) if
    /// it is still the current one, false if it was superseded.
    pub fn finish_load(&mut self, partition: i32, generation: u64) -> bool {
        if self.state(partition) != (PartitionLoad::Loading { generation }) {
            return false;
        }
        self.partitions.insert(partition, PartitionLoad::Loaded);
        true
    }

    /// Whether load `generation` of `partition` is still the current one
    /// (a failed load retries only then).
    pub fn is_current(&self, partition: i32, generation: u64) -> bool {
        self.state(partition) == (PartitionLoad::Loading { generation })
    }

    /// This node no longer leads `partition`.
    pub fn resign(&mut self, partition: i32) {
        self.partitions.insert(partition, PartitionLoad::NotLeader);
        self.epochs.remove(&partition);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loading_then_loaded_then_resigned() {
        let mut l = Leadership::new();
        assert_eq!(l.check(0), Err(CoordinatorError::NotCoordinator), "never elected");
        let g = l.begin_load(0, 1);
        assert_eq!(l.check(0), Err(CoordinatorError::LoadInProgress));
        assert!(l.any_loading());
        assert!(l.finish_load(0, g));
        assert_eq!(l.check(0), Ok(()));
        assert!(!l.any_loading());
        l.resign(0);
        assert_eq!(l.check(0), Err(CoordinatorError::NotCoordinator));
    }

    #[test]
    fn a_superseded_load_is_discarded() {
        let mut l = Leadership::new();
        let first = l.begin_load(3, 1);
        l.resign(3);
        assert!(!l.finish_load(3, first), "resigned while loading");
        assert_eq!(l.check(3), Err(CoordinatorError::NotCoordinator));
        let second = l.begin_load(3, 2);
        let third = l.begin_load(3, 2);
        assert!(!l.is_current(3, second));
        assert!(!l.finish_load(3, second), "a newer election supersedes it");
        assert_eq!(l.check(3), Err(CoordinatorError::LoadInProgress));
        assert!(l.finish_load(3, third));
        assert_eq!(l.check(3), Ok(()));
        assert_eq!(l.check(4), Err(CoordinatorError::NotCoordinator), "other partitions untouched");
    }

    #[test]
    fn the_image_decides_loads_by_leader_epoch() {
        let mut l = Leadership::new();
        assert_eq!(l.follow(0, None), FollowAction::Keep, "never led");
        assert_eq!(l.follow(0, Some(4)), FollowAction::Load { epoch: 4 });
        let g = l.begin_load(0, 4);
        assert_eq!(l.epoch(0), Some(4));
        assert_eq!(l.follow(0, Some(4)), FollowAction::Keep, "loading under the led epoch");
        // Lost and led again while loading, the loss never seen: what the
        // load read may miss the other coordinator's writes.
        assert_eq!(l.follow(0, Some(6)), FollowAction::Reload { was: 4, epoch: 6 });
        assert!(l.finish_load(0, g));
        assert_eq!(l.follow(0, Some(4)), FollowAction::Keep, "loaded under the led epoch");
        assert_eq!(l.follow(0, Some(6)), FollowAction::Reload { was: 4, epoch: 6 }, "loaded, led again");
        assert_eq!(l.follow(0, None), FollowAction::Resign);
        l.resign(0);
        assert_eq!(l.epoch(0), None);
        assert_eq!(l.follow(0, None), FollowAction::Keep);
        assert_eq!(l.follow(0, Some(6)), FollowAction::Load { epoch: 6 });
        let loading = l.begin_load(0, 6);
        assert_eq!(l.follow(0, None), FollowAction::Resign, "a loading partition resigns too");
        l.resign(0);
        assert!(!l.finish_load(0, loading));
    }
}
