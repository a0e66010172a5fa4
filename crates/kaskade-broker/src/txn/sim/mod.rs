//! A seeded simulation of the transaction coordinator's engine: producers
//! behaving like Kafka 4.x clients ([`producer`]) against the engine
//! wrapped in a model of its service ([`shell`]: persistence, markers,
//! timeouts, restarts), on a simulated clock. Every answer is compared
//! with Kafka's ([`oracle`]) and the invariants ([`history`]) are checked
//! after every step:
//!
//! - a transactional id's producer epoch never goes back (nor its id);
//! - a transaction is decided once, committed or aborted, never both, and
//!   completes exactly as decided, also across restarts;
//! - markers go only to partitions the transaction added;
//! - a producer told it is fenced never succeeds again with that epoch;
//! - no transaction stays open past its timeout: it is aborted and its
//!   producer fenced;
//! - a reload gives the state before it (less the previous epoch, which
//!   Kafka does not persist either), and exactly the prepared transactions
//!   are finished again, those whose markers were refused among them;
//! - refused markers never complete a transaction, and while an id's
//!   Complete append is in flight every request for it answers
//!   CONCURRENT_TRANSACTIONS after the producer checks.
//!
//! Ids may start a few epochs short of exhaustion, to reach the last
//! epochs, their fences and the move to a new producer id.
//!
//! A run is a function of its seed: a failure prints the seed and
//! `KASKADE_TXN_SIM_SEED=<n> cargo test -p kaskade-broker --lib txn::sim`
//! replays it. `KASKADE_TXN_SIM_SEEDS=<n>` runs more seeds.

mod history;
mod oracle;
mod producer;

mod shell;

use kaskade_types::sim::SimRng as Rng;
use producer::{Producer, Req};
use shell::{Shell, MAX_TIMEOUT_MS};

use crate::txn::state::{TxnMetadata, TxnState};

/// `transactional.id.expiration.ms`, short enough that ids of producers
/// that failed or idle expire in a run.
const ID_EXPIRATION_MS: i64 = 3_000;

/// Prints the seed of a run that panics, so it can be replayed.
struct SeedGuard(u64);

impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("transaction simulation failed: replay with KASKADE_TXN_SIM_SEED={}", self.0);
        }
    }
}

struct Sim {
    rng: Rng,
    shell: Shell,
    producers: Vec<Producer>,
    /// Requests delivered late (duplicates from the network).
    late: Vec<(String, Req)>,
}

impl Sim {
    fn new(seed: u64, ids: usize, per_id: usize) -> Self {
        let producers = (0..ids * per_id).map(|i| Producer::new(format!("txn-{}", i % ids))).collect();
        Sim { rng: Rng::new(seed), shell: Shell::new(), producers, late: Vec::new() }
    }

    /// Every id starts a few bumps short of exhausting its epochs, so
    /// runs move to new producer ids (and fence at the last epochs).
    fn near_exhaustion(mut self, ids: usize) -> Self {
        for i in 0..ids {
            self.shell.preload(TxnMetadata {
                transactional_id: format!("txn-{i}"),
                producer_id: kaskade_types::ProducerId(100 + i as i64),
                producer_epoch: kaskade_types::ProducerEpoch(i16::MAX - 1 - self.rng.below(4) as i16),
                last_producer_epoch: None,
                timeout_ms: 5000,
                state: TxnState::CompleteCommit,
                partitions: Default::default(),
                start_ms: None,
                update_ms: 0,
            });
        }
        self
    }

    fn step(&mut self) {
        self.shell.now += 1 + self.rng.below(400) as i64;
        self.shell.expire();
        if self.rng.chance(20) {
            self.shell.expire_ids(ID_EXPIRATION_MS);
        }
        if !self.late.is_empty() && self.rng.chance(100) {
            let (id, req) = self.late.swap_remove(self.rng.below(self.late.len() as u64) as usize);
            // Its answer goes to a connection nobody reads.
            let _ = producer::send(&mut self.shell, &id, &req);
        }
        let mut order: Vec<usize> = (0..self.producers.len()).collect();
        for k in (1..order.len()).rev() {
            order.swap(k, self.rng.below(k as u64 + 1) as usize);
        }
        for i in order {
            self.producers[i].act(&mut self.rng, &mut self.shell, &mut self.late);
        }
        for _ in 0..self.shell.pending.len() {
            if self.rng.chance(500) {
                self.shell.execute(&mut self.rng, true);
            }
        }
        self.shell.resolve_held(&mut self.rng, false);
        if self.rng.chance(50) {
            self.shell.replay_stale(&mut self.rng);
        }
        if self.rng.chance(5) {
            self.shell.restart(&mut self.rng);
        }
        self.shell.history.check(&self.shell.engine);
    }

    /// No more clients: open transactions time out, every ending one
    /// completes.
    fn drain(&mut self) {
        self.shell.now += i64::from(MAX_TIMEOUT_MS) + 1;
        self.shell.expire();
        // Refused markers are finished by the next load.
        self.shell.restart(&mut self.rng);
        self.shell.resolve_held(&mut self.rng, true);
        while !self.shell.pending.is_empty() {
            self.shell.execute(&mut self.rng, false);
        }
        self.shell.history.check(&self.shell.engine);
        self.shell.history.finish(&self.shell.engine);
    }
}

/// Runs one seed; what it did, in short.
fn run(seed: u64, ids: usize, per_id: usize, steps: usize) -> String {
    run_from(Sim::new(seed, ids, per_id), seed, steps)
}

fn run_from(mut sim: Sim, seed: u64, steps: usize) -> String {
    let _guard = SeedGuard(seed);
    for _ in 0..steps {
        sim.step();
    }
    sim.drain();
    let summary = format!("seed {seed}: t={}ms {:?}", sim.shell.now, sim.shell.history.stats);
    if seed.is_multiple_of(50) {
        eprintln!("{summary}");
    }
    summary
}

/// The seeds of a test: `KASKADE_TXN_SIM_SEED` alone if set, else `count`
/// (or `KASKADE_TXN_SIM_SEEDS`) from `first`.
fn seeds(first: u64, count: u64) -> Vec<u64> {
    let env = |name: &str| std::env::var(name).ok().and_then(|s| s.parse::<u64>().ok());
    if let Some(seed) = env("KASKADE_TXN_SIM_SEED") {
        return vec![seed];
    }
    (first..first + env("KASKADE_TXN_SIM_SEEDS").unwrap_or(count)).collect()
}

#[test]
fn simulation_one_producer_per_id() {
    for seed in seeds(1, 100) {
        run(seed, 3, 1, 600);
    }
}

#[test]
fn simulation_with_zombies() {
    // Two producers per id: each start fences the other (KIP-98 zombies).
    for seed in seeds(1_000_000, 100) {
        run(seed, 3, 2, 600);
    }
}

#[test]
fn simulation_near_epoch_exhaustion() {
    // Short runs: the interest is in the first bumps, fences and rotations.
    for seed in seeds(2_000_000, 100) {
        run_from(Sim::new(seed, 3, 2).near_exhaustion(3), seed, 150);
    }
}

#[test]
fn a_seed_replays_exactly() {
    // Nothing but the seed decides a run (no clock, no hash order).
    assert_eq!(run(7, 3, 2, 300), run(7, 3, 2, 300));
}
