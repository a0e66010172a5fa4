//! Offsets, epochs and ids: newtypes over the wire's integers.

use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub $inner);

        impl $name {
            /// The wire value.
            pub const fn get(self) -> $inner {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<$name> for $inner {
            fn from(v: $name) -> $inner {
                v.0
            }
        }
    };
}

id_type!(
    /// A record's position in a partition log.
    Offset(i64)
);
id_type!(
    /// The generation of a partition's leadership; it grows with every leader
    /// change and is stamped on every batch the leader appends.
    LeaderEpoch(i32)
);
id_type!(
    /// An idempotent or transactional producer's id.
    ProducerId(i64)
);
id_type!(
    /// The generation of a producer id; a higher epoch fences the lower ones.
    ProducerEpoch(i16)
);
id_type!(
    /// A node of the cluster (`node.id`).
    NodeId(i32)
);

impl Offset {
    /// The offset `n` records further on.
    pub const fn plus(self, n: i64) -> Offset {
        Offset(self.0 + n)
    }

    /// The offset just after this one.
    pub const fn next(self) -> Offset {
        Offset(self.0 + 1)
    }

    /// How many offsets lie from `earlier` up to this one (0 when `earlier`
    /// is not earlier).
    pub fn distance_from(self, earlier: Offset) -> u64 {
        self.0.saturating_sub(earlier.0).max(0) as u64
    }
}

impl LeaderEpoch {
    /// The epoch a partition has when it is created.
    pub const INITIAL: LeaderEpoch = LeaderEpoch(0);

    /// The epoch after this one.
    pub const fn next(self) -> LeaderEpoch {
        LeaderEpoch(self.0 + 1)
    }

    /// A request's optional epoch: Kafka sends -1 (or any negative value)
    /// for "not given".
    pub fn from_wire(epoch: i32) -> Option<LeaderEpoch> {
        (epoch >= 0).then_some(LeaderEpoch(epoch))
    }
}

impl ProducerId {
    /// A request's optional producer id: -1 means none (not idempotent).
    pub fn from_wire(id: i64) -> Option<ProducerId> {
        (id >= 0).then_some(ProducerId(id))
    }
}

impl ProducerEpoch {
    /// A request's optional epoch: -1 means none.
    pub fn from_wire(epoch: i16) -> Option<ProducerEpoch> {
        (epoch >= 0).then_some(ProducerEpoch(epoch))
    }
}

/// A producer id with one of its epochs: who wrote a batch, who may end a
/// transaction (Kafka's `ProducerIdAndEpoch`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProducerIdAndEpoch {
    pub id: ProducerId,
    pub epoch: ProducerEpoch,
}

impl ProducerIdAndEpoch {
    pub const fn new(id: ProducerId, epoch: ProducerEpoch) -> Self {
        ProducerIdAndEpoch { id, epoch }
    }

    /// A request's optional producer: `None` unless both the id and the
    /// epoch are given (Kafka sends -1 for "none").
    pub fn from_wire(id: i64, epoch: i16) -> Option<ProducerIdAndEpoch> {
        Some(ProducerIdAndEpoch { id: ProducerId::from_wire(id)?, epoch: ProducerEpoch::from_wire(epoch)? })
    }
}

impl fmt::Display for ProducerIdAndEpoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.id, self.epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_order_and_step() {
        let o = Offset(41);
        assert_eq!(o.next(), Offset(42));
        assert_eq!(o.plus(9), Offset(50));
        assert!(Offset(3) < Offset(4));
        assert_eq!(Offset(10).distance_from(Offset(4)), 6);
        assert_eq!(Offset(4).distance_from(Offset(10)), 0);
    }

    #[test]
    fn wire_sentinels_become_none() {
        assert_eq!(LeaderEpoch::from_wire(-1), None);
        assert_eq!(LeaderEpoch::from_wire(3), Some(LeaderEpoch(3)));
        assert_eq!(ProducerId::from_wire(-1), None);
        assert_eq!(ProducerId::from_wire(0), Some(ProducerId(0)));
        assert_eq!(i64::from(Offset(7)), 7);
        assert_eq!(LeaderEpoch::INITIAL.next(), LeaderEpoch(1));
        assert_eq!(ProducerEpoch::from_wire(-1), None);
        assert_eq!(ProducerIdAndEpoch::from_wire(4, -1), None);
        assert_eq!(ProducerIdAndEpoch::from_wire(-1, 0), None);
        assert_eq!(ProducerIdAndEpoch::from_wire(4, 2), Some(ProducerIdAndEpoch::new(ProducerId(4), ProducerEpoch(2))));
    }
}
