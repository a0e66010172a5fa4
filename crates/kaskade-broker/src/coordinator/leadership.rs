//! Which internal-topic partitions a coordinator serves: Loading, Loaded or
//! NotLeader, per partition, as Kafka's coordinators track the partitions
//! they were elected for.
//!
//! Invariant: a key is answered only when its partition is Loaded. A load
//! is identified by the generation [`Leadership::begin_load`] hands out; a
//! resignation or a newer election bumps it, so a load that finishes after
//! either is discarded by [`Leadership::finish_load`].

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

/// Per-partition leadership of one coordinator.
#[derive(Debug, Default)]
pub struct Leadership {
    partitions: HashMap<i32, PartitionLoad>,
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

    /// This node was elected for `partition`: it is Loading from now on;
    /// the generation to hand to [`Leadership::finish_load`].
    pub fn begin_load(&mut self, partition: i32) -> u64 {
        self.generation += 1;
        let generation = self.generation;
        self.partitions.insert(partition, PartitionLoad::Loading { generation });
        generation
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loading_then_loaded_then_resigned() {
        let mut l = Leadership::new();
        assert_eq!(l.check(0), Err(CoordinatorError::NotCoordinator), "never elected");
        let g = l.begin_load(0);
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
        let first = l.begin_load(3);
        l.resign(3);
        assert!(!l.finish_load(3, first), "resigned while loading");
        assert_eq!(l.check(3), Err(CoordinatorError::NotCoordinator));
        let second = l.begin_load(3);
        let third = l.begin_load(3);
        assert!(!l.is_current(3, second));
        assert!(!l.finish_load(3, second), "a newer election supersedes it");
        assert_eq!(l.check(3), Err(CoordinatorError::LoadInProgress));
        assert!(l.finish_load(3, third));
        assert_eq!(l.check(3), Ok(()));
        assert_eq!(l.check(4), Err(CoordinatorError::NotCoordinator), "other partitions untouched");
    }
}
