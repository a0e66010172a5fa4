//! A transactional producer as a Kafka 4.x client drives the coordinator
//! with transaction protocol version 1: InitProducerId, AddPartitionsToTxn
//! and AddOffsetsToTxn, EndTxn; retrying on CONCURRENT_TRANSACTIONS,
//! fatal on PRODUCER_FENCED and INVALID_TXN_STATE (the application then
//! starts a new producer), and after an abortable error aborting and
//! bumping its epoch by InitProducerId with its current id and epoch
//! (KIP-360). Some stall past their transaction timeout. Requests may be
//! delivered twice (a retry whose first answer was lost) or late.

use kafka_protocol::error::ResponseError as E;
use kaskade_types::{ProducerEpoch, ProducerId, ProducerIdAndEpoch, TopicPartition};

use super::shell::{Shell, MAX_TIMEOUT_MS};
use crate::group::records::OFFSETS_TOPIC;
use kaskade_types::sim::SimRng as Rng;

/// What a Kafka client sends before InitProducerId answered (-1, -1).
const UNINITIALISED: ProducerIdAndEpoch = ProducerIdAndEpoch::new(ProducerId(-1), ProducerEpoch(-1));

/// A request as sent, so a duplicate can be delivered later.
#[derive(Clone, Debug)]
pub enum Req {
    Init { timeout_ms: i32, expected: Option<ProducerIdAndEpoch> },
    Add { producer: ProducerIdAndEpoch, partitions: Vec<TopicPartition> },
    End { producer: ProducerIdAndEpoch, commit: bool },
}

/// What the simulation does with a request (the answer, checked by the
/// shell against Kafka's).
pub fn send(shell: &mut Shell, id: &str, req: &Req) -> Result<Option<ProducerIdAndEpoch>, E> {
    match req {
        Req::Init { timeout_ms, expected } => shell.init(id, *timeout_ms, *expected).map(Some),
        Req::Add { producer, partitions } => shell.add(id, *producer, partitions).map(|()| None),
        Req::End { producer, commit } => shell.end(id, *producer, *commit).map(|()| None),
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Phase {
    /// InitProducerId to send (with the id and epoch to bump, KIP-360).
    Init {
        expected: Option<ProducerIdAndEpoch>,
    },
    Idle,
    InTxn,
    /// EndTxn to send (again).
    Ending {
        commit: bool,
        then_bump: bool,
    },
    /// Doing nothing until then (its transaction may time out).
    Stalled {
        until: i64,
    },
    /// Fenced or failed: the application has to start a new producer.
    Fatal,
}

pub struct Producer {
    pub id: String,
    producer: ProducerIdAndEpoch,
    phase: Phase,
    /// The timeout of the InitProducerId being sent: a retry repeats it.
    init_timeout_ms: Option<i32>,
}

const TOPICS: [&str; 3] = ["a", "b", "c"];

impl Producer {
    pub fn new(id: String) -> Self {
        Producer { id, producer: UNINITIALISED, phase: Phase::Init { expected: None }, init_timeout_ms: None }
    }

    fn partitions(rng: &mut Rng) -> Vec<TopicPartition> {
        let n = 1 + rng.below(3);
        (0..n)
            .map(|_| {
                if rng.chance(150) {
                    // AddOffsetsToTxn: the group's `__consumer_offsets` partition.
                    TopicPartition::new(OFFSETS_TOPIC, rng.below(4) as i32)
                } else {
                    TopicPartition::new(TOPICS[rng.below(3) as usize], rng.below(3) as i32)
                }
            })
            .collect()
    }

    /// Sends `req`, maybe twice or with a copy for later.
    fn send(
        &mut self,
        rng: &mut Rng,
        shell: &mut Shell,
        late: &mut Vec<(String, Req)>,
        req: Req,
    ) -> Result<Option<ProducerIdAndEpoch>, E> {
        let answer = send(shell, &self.id, &req);
        if rng.chance(40) {
            // The answer was lost: the client sends it again.
            let again = send(shell, &self.id, &req);
            if !matches!(req, Req::Init { .. }) {
                return again;
            }
        }
        if rng.chance(30) {
            late.push((self.id.clone(), req));
        }
        if answer == Err(E::ProducerFenced) {
            shell.history.on_fenced(&self.id, self.producer);
        }
        answer
    }

    pub fn act(&mut self, rng: &mut Rng, shell: &mut Shell, late: &mut Vec<(String, Req)>) {
        match self.phase.clone() {
            Phase::Fatal => {
                if rng.chance(100) {
                    self.phase = Phase::Init { expected: None };
                }
            }
            Phase::Stalled { until } => {
                if shell.now >= until {
                    self.phase = Phase::InTxn;
                }
            }
            Phase::Init { expected } => {
                let timeout_ms = *self.init_timeout_ms.get_or_insert_with(|| match rng.below(50) {
                    0 => 0,
                    1 => MAX_TIMEOUT_MS + 1,
                    _ => 1000 + rng.below(10_000) as i32,
                });
                match self.send(rng, shell, late, Req::Init { timeout_ms, expected }) {
                    Ok(Some(producer)) => {
                        self.producer = producer;
                        self.phase = Phase::Idle;
                        self.init_timeout_ms = None;
                    }
                    Err(E::ConcurrentTransactions) => {}
                    Err(E::InvalidTransactionTimeout) => self.init_timeout_ms = None,
                    _ => {
                        self.phase = Phase::Fatal;
                        self.init_timeout_ms = None;
                    }
                }
            }
            Phase::Idle => {
                if rng.chance(300) {
                    let partitions = Self::partitions(rng);
                    self.add(rng, shell, late, partitions);
                }
            }
            Phase::InTxn => match rng.below(100) {
                0..35 => {
                    let partitions = Self::partitions(rng);
                    self.add(rng, shell, late, partitions);
                }
                35..60 => self.end(rng, shell, late, true, false),
                60..72 => self.end(rng, shell, late, false, false),
                // An abortable error (a produce timed out): abort, then bump.
                72..77 => self.end(rng, shell, late, false, true),
                77..80 => self.phase = Phase::Stalled { until: shell.now + rng.below(15_000) as i64 },
                _ => {}
            },
            Phase::Ending { commit, then_bump } => self.end(rng, shell, late, commit, then_bump),
        }
    }

    fn add(
        &mut self,
        rng: &mut Rng,
        shell: &mut Shell,
        late: &mut Vec<(String, Req)>,
        partitions: Vec<TopicPartition>,
    ) {
        let req = Req::Add { producer: self.producer, partitions };
        match self.send(rng, shell, late, req) {
            Ok(_) => self.phase = Phase::InTxn,
            Err(E::ConcurrentTransactions) => {}
            // Abortable in Kafka's client (the id expired): bump.
            Err(E::InvalidProducerIdMapping) => self.phase = Phase::Init { expected: Some(self.producer) },
            Err(_) => self.phase = Phase::Fatal,
        }
    }

    fn end(&mut self, rng: &mut Rng, shell: &mut Shell, late: &mut Vec<(String, Req)>, commit: bool, then_bump: bool) {
        let req = Req::End { producer: self.producer, commit };
        match self.send(rng, shell, late, req) {
            Ok(_) if then_bump => self.phase = Phase::Init { expected: Some(self.producer) },
            Ok(_) => self.phase = Phase::Idle,
            Err(E::ConcurrentTransactions) => self.phase = Phase::Ending { commit, then_bump },
            Err(E::InvalidProducerIdMapping) => self.phase = Phase::Init { expected: Some(self.producer) },
            Err(_) => self.phase = Phase::Fatal,
        }
    }
}
