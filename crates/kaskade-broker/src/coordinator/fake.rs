//! An in-memory internal topic for coordinator tests: appends resolve at
//! once (or fail, or wait until released), reads can be held back
//! (`hold_reads`) to observe a partition while it loads, and leadership is
//! whatever the test says; an append given a leader epoch other than the
//! fake's is refused, as a partition led in another epoch refuses it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

use kafka_protocol::records::{Record, TimestampType};
use kaskade_types::ProducerIdAndEpoch;
use parking_lot::{Condvar, Mutex};

use super::{Appended, CoordinatorError, InternalPartitions, InternalRecord};

/// An internal topic held in memory.
pub struct FakePartitions {
    partitions: i32,
    records: Mutex<HashMap<i32, Vec<Record>>>,
    /// While true, reads block ([`FakePartitions::hold_reads`]).
    held: Mutex<bool>,
    released: Condvar,
    /// Reads of these partitions fail (a broken disk).
    pub failing_reads: Mutex<Vec<i32>>,
    /// The partitions led here, as a metadata image would say (`None`:
    /// every one).
    pub led: Mutex<Option<Vec<i32>>>,
    /// Reads started, and reads that failed.
    pub reads: AtomicUsize,
    pub failed_reads: AtomicUsize,
    /// The leader epoch of every partition led here.
    pub epoch: AtomicI32,
    /// Appends from now on are written but their handles fail with it (the
    /// ISR never held them).
    pub failing_appends: Mutex<Option<CoordinatorError>>,
    /// Appends to these partitions are refused (not written: NOT_ENOUGH_REPLICAS
    /// before the append, a partition led elsewhere).
    pub refused_appends: Mutex<Vec<i32>>,
    /// While true, appends are written and their handles wait for
    /// [`FakePartitions::release_appends`] (the ISR has not caught up).
    pub holding_appends: Mutex<bool>,
    held_appends: Mutex<Vec<tokio::sync::oneshot::Sender<Result<(), CoordinatorError>>>>,
}

impl FakePartitions {
    pub fn new(partitions: i32) -> Self {
        FakePartitions {
            partitions,
            records: Mutex::new(HashMap::new()),
            held: Mutex::new(false),
            released: Condvar::new(),
            failing_reads: Mutex::new(Vec::new()),
            led: Mutex::new(None),
            reads: AtomicUsize::new(0),
            failed_reads: AtomicUsize::new(0),
            epoch: AtomicI32::new(0),
            failing_appends: Mutex::new(None),
            refused_appends: Mutex::new(Vec::new()),
            holding_appends: Mutex::new(false),
            held_appends: Mutex::new(Vec::new()),
        }
    }

    /// Resolves every held append with `result`; how many.
    pub fn release_appends(&self, result: Result<(), CoordinatorError>) -> usize {
        let held = std::mem::take(&mut *self.held_appends.lock());
        let n = held.len();
        for tx in held {
            let _ = tx.send(result.clone());
        }
        n
    }

    /// Appends waiting for [`FakePartitions::release_appends`].
    pub fn held(&self) -> usize {
        self.held_appends.lock().len()
    }

    /// Reads block from now until [`FakePartitions::release_reads`].
    pub fn hold_reads(&self) {
        *self.held.lock() = true;
    }

    pub fn release_reads(&self) {
        *self.held.lock() = false;
        self.released.notify_all();
    }

    /// Polls until `counter` reaches `n`; panics after 10 s.
    pub async fn reached(counter: &AtomicUsize, n: usize) {
        let wait = async {
            while counter.load(Ordering::SeqCst) < n {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        };
        if tokio::time::timeout(std::time::Duration::from_secs(10), wait).await.is_err() {
            panic!("the fake topic never saw {n} reads");
        }
    }

    /// Records appended to `partition` so far.
    pub fn len(&self, partition: i32) -> usize {
        self.records.lock().get(&partition).map_or(0, Vec::len)
    }
}

impl InternalPartitions for FakePartitions {
    fn topic(&self) -> &str {
        "__fake_internal"
    }

    fn partition_count(&self) -> Option<i32> {
        Some(self.partitions)
    }

    fn ensure_topic(&self) -> Result<i32, CoordinatorError> {
        Ok(self.partitions)
    }

    fn leaders(&self) -> BTreeMap<i32, i32> {
        let epoch = self.epoch.load(Ordering::SeqCst);
        let led = self.led.lock().clone().unwrap_or_else(|| (0..self.partitions).collect());
        led.into_iter().map(|p| (p, epoch)).collect()
    }

    fn leader_epoch(&self, partition: i32) -> Option<i32> {
        self.led_partitions().contains(&partition).then(|| self.epoch.load(Ordering::SeqCst))
    }

    fn append(
        &self,
        partition: i32,
        leader_epoch: Option<i32>,
        records: &[InternalRecord],
        producer: Option<ProducerIdAndEpoch>,
        timestamp: i64,
    ) -> Result<Appended, CoordinatorError> {
        if self.refused_appends.lock().contains(&partition) {
            return Err(CoordinatorError::Unavailable(format!("partition {partition} refused the append")));
        }
        if leader_epoch.is_some_and(|e| self.leader_epoch(partition) != Some(e)) {
            return Err(CoordinatorError::NotCoordinator);
        }
        let mut all = self.records.lock();
        let log = all.entry(partition).or_default();
        for (key, value) in records {
            log.push(Record {
                transactional: producer.is_some(),
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                // Kafka's -1: a record of no producer.
                producer_id: producer.map_or(-1, |p| p.id.get()),
                producer_epoch: producer.map_or(-1, |p| p.epoch.get()),
                timestamp_type: TimestampType::Creation,
                offset: log.len() as i64,
                sequence: -1,
                timestamp,
                key: Some(key.clone()),
                value: value.clone(),
                headers: Default::default(),
            });
        }
        if *self.holding_appends.lock() {
            let (tx, rx) = tokio::sync::oneshot::channel();
            self.held_appends.lock().push(tx);
            return Ok(Appended::new(async move { rx.await.unwrap_or(Err(CoordinatorError::Stopped)) }));
        }
        match self.failing_appends.lock().clone() {
            Some(e) => Ok(Appended::failed(e)),
            None => Ok(Appended::done()),
        }
    }

    fn read_committed(&self, partition: i32, visit: &mut dyn FnMut(&Record)) -> Result<usize, CoordinatorError> {
        // The records as they are when the read starts: a held read returns
        // them even if more are appended meanwhile, as a log read up to the
        // end it saw.
        let records = self.records.lock().get(&partition).cloned().unwrap_or_default();
        self.reads.fetch_add(1, Ordering::SeqCst);
        let mut held = self.held.lock();
        while *held {
            self.released.wait(&mut held);
        }
        drop(held);
        if self.failing_reads.lock().contains(&partition) {
            self.failed_reads.fetch_add(1, Ordering::SeqCst);
            return Err(CoordinatorError::Unavailable(format!("reading partition {partition} failed")));
        }
        records.iter().for_each(visit);
        Ok(records.len())
    }
}
