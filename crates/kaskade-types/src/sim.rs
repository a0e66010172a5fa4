//! The seeded simulations' one source of chance: a splitmix64, so a seed
//! replays a run exactly. Shared by every crate's simulations (metadata
//! liveness, group coordinator, transactions, partition leadership) so that
//! each does not carry its own generator; compiled normally because tests of
//! several crates use it, and tiny.
//!
//! Invariant: the output depends on the seed alone (no global state), and
//! any seed, 0 included, gives a full-period sequence.

/// A seeded pseudo-random generator (splitmix64); not for anything but
/// simulations and tests.
#[derive(Clone, Debug)]
pub struct SimRng(u64);

impl SimRng {
    pub fn new(seed: u64) -> Self {
        SimRng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform enough in `0..n`; 0 when `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64().checked_rem(n).unwrap_or(0)
    }

    /// True with probability `per_mille / 1000`.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

#[cfg(test)]
mod tests {
    use super::SimRng;

    #[test]
    fn a_seed_replays_and_seeds_differ() {
        let run = |seed| {
            let mut r = SimRng::new(seed);
            (0..8).map(|_| r.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        assert!(run(0).iter().all(|v| *v != 0), "seed 0 is not stuck at 0");
    }

    #[test]
    fn below_stays_in_range_and_reaches_every_value() {
        let mut r = SimRng::new(1);
        let mut seen = [false; 7];
        for _ in 0..1000 {
            let v = r.below(7);
            assert!(v < 7);
            seen[v as usize] = true;
        }
        assert!(seen.iter().all(|s| *s), "{seen:?}");
        assert_eq!(r.below(0), 0);
        assert!(!r.chance(0) && r.chance(1000));
    }
}
