//! The append path: validation, offset reservation, the in-flight queue
//! and the writer hand-over (see the module doc of `log` for the
//! concurrency design), and rolling the active segment.

use super::*;

/// At most this many batches go in one `pwritev` (two iovecs each, and the
/// kernel takes 1024 per call).
const MAX_GROUP_BATCHES: usize = 512;
/// A writer whose own batch is published writes at most this many more
/// groups queued behind it before it returns and hands over, so it is not
/// kept writing for others forever.
const MAX_WRITER_ROUNDS: usize = 4;
/// How long an appender whose batch another thread writes polls for its
/// publication before sleeping on the condvar. A 16 KiB batch takes ~15 µs
/// to write; a sleep would cost the writer a wake-up (`try_to_wake_up`) and
/// a context switch per batch.
const POLL_FOR_PUBLICATION: Duration = Duration::from_micros(50);
/// How long after the last writer stepped down another thread leaves its
/// batch for it (polling) before writing itself. An appender in a loop is
/// back within a few microseconds; if it is not, this is the most a batch
/// waits for nothing.
const WRITER_GRACE: Duration = Duration::from_micros(20);

/// Who a batch comes from (Kafka's `AppendOrigin`, as far as the log cares).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Origin {
    /// A client's batch (or a marker) on the leader: offsets are assigned
    /// here and the batch is stamped with this leader epoch.
    Leader(i32),
    /// A batch fetched from the leader by this follower: written as it is.
    Replication,
}

impl Log {
    /// Appends one producer batch: validates it, assigns offsets, patches
    /// base offset and leader epoch and writes it. Returns once the bytes
    /// are in the page cache; `wait_durable` waits for the fsync.
    ///
    /// A batch with a producer id and a sequence goes through the producer
    /// state under the same lock as the write: a retry of one of the
    /// producer's last five batches is not written again and gets the first
    /// attempt's offsets (`duplicate`); a gap, a stale epoch or a new epoch
    /// not starting at 0 is refused.
    pub fn append(&self, records: impl batch::IntoBatchBytes, leader_epoch: i32) -> Result<AppendInfo> {
        let (batch, header) = self.validate(records.into_batch_bytes())?;
        self.append_validated(batch, header, Origin::Leader(leader_epoch), None)
    }

    /// Appends a transaction marker for `producer_id` (what Kafka's
    /// WriteTxnMarkers does on the partition leader): ends the producer's
    /// open transaction here, commit or abort. An abort is indexed in the
    /// active segment's `.txnindex`. Refused with INVALID_PRODUCER_EPOCH if
    /// the producer has moved to a newer epoch.
    pub fn append_marker(
        &self,
        producer_id: i64,
        epoch: i16,
        coordinator_epoch: i32,
        marker: Marker,
        leader_epoch: i32,
    ) -> Result<AppendInfo> {
        let bytes = txn::build_marker(producer_id, epoch, coordinator_epoch, marker, self.env.clock.now_ms());
        let (batch, header) = self.validate(Bytes::from(bytes))?;
        self.state.lock().producers.check_marker(producer_id, epoch, coordinator_epoch)?;
        self.append_validated(
            batch,
            header,
            Origin::Leader(leader_epoch),
            Some(EndMarker { marker, coordinator_epoch }),
        )
    }

    /// `append` of a batch a client produced (Kafka's `AppendOrigin.CLIENT`):
    /// also refuses control batches and a producer id without a sequence,
    /// as Kafka's `LogValidator` does.
    pub fn append_client(&self, records: impl batch::IntoBatchBytes, leader_epoch: i32) -> Result<AppendInfo> {
        let (batch, header) = self.validate(records.into_batch_bytes())?;
        if header.is_control() {
            return Err(LogError::InvalidRecord(format!(
                "Clients are not allowed to write control records in topic partition {}.",
                self.tp
            )));
        }
        if header.producer_id > producer_state::NO_PRODUCER_ID && header.base_sequence < 0 {
            return Err(LogError::InvalidRecord(format!(
                "Invalid sequence number {} in record batch with producerId {} in topic partition {}.",
                header.base_sequence, header.producer_id, self.tp
            )));
        }
        self.append_validated(batch, header, Origin::Leader(leader_epoch), None)
    }

    pub(super) fn validate(&self, records: Bytes) -> Result<(Bytes, BatchHeader)> {
        batch::single_batch(&records)?;
        let max_bytes = self.state.lock().config.max_message_bytes;
        let header = batch::validate_for_append(&records, max_bytes)?;
        Ok((records, header))
    }

    /// The append proper. Under the lock it checks the producer state,
    /// rolls if needed, assigns offsets, reserves the batch's place in the
    /// active segment and queues it; then it waits for its publication,
    /// writing the queue itself when no other appender does
    /// (`write_until_published`). Reservations are consecutive, so the file
    /// stays in offset order; publication is in reservation order: a batch
    /// becomes readable (log end, indexes, flush target) only once every
    /// batch before it is written, and `append` returns only once its own
    /// batch is published.
    ///
    /// A replicated batch (`Origin::Replication`) keeps its offsets, leader
    /// epoch and timestamps and must start at the log end; its producer
    /// state is recorded without the leader's checks (the leader made them).
    pub(super) fn append_validated(
        &self,
        batch: Bytes,
        header: BatchHeader,
        origin: Origin,
        marker: Option<EndMarker>,
    ) -> Result<AppendInfo> {
        let appended = self.append_checked(batch, header, origin, marker);
        // An I/O error here is the disk's (ENOSPC, EIO): the directory
        // fails, as Kafka's LogDirFailureChannel marks it offline.
        if let Err(LogError::Io(e)) = &appended {
            self.env.dir_failure.report(&format!("{}: {e}", self.tp));
        }
        appended
    }

    fn append_checked(
        &self,
        batch: Bytes,
        mut header: BatchHeader,
        origin: Origin,
        marker: Option<EndMarker>,
    ) -> Result<AppendInfo> {
        let leader_epoch = match origin {
            Origin::Leader(epoch) => epoch,
            Origin::Replication => header.partition_leader_epoch,
        };
        let replicated = origin == Origin::Replication;
        if let Some(f) = self.flush.failure() {
            return Err(LogError::Io(std::io::Error::other(format!("log is offline after a failed fsync: {f}"))));
        }
        let now = self.env.clock.now_ms();
        let len = batch.len() as u64;
        let mut st = self.state.lock();
        loop {
            if st.closed {
                return Err(LogError::Closed);
            }
            if let Some((_, e)) = &st.write_failure {
                return Err(offline_after_write_failure(e));
            }
            if st.draining > 0 {
                self.writes_done.wait(&mut st);
                continue;
            }
            let base_offset = st.reserved_next();
            if replicated {
                if header.base_offset != base_offset {
                    return Err(LogError::NotContiguous { expected: base_offset, found: header.base_offset });
                }
            } else {
                header.base_offset = base_offset;
                header.partition_leader_epoch = leader_epoch;
            }
            if !replicated && producer_state::is_idempotent(&header) {
                if let Some(dup) = st.producers.check(&header, base_offset)? {
                    header.base_offset = dup.first_offset;
                    // Kafka answers a duplicate with the first attempt's
                    // offsets and its max timestamp as the log append time.
                    return Ok(AppendInfo {
                        first_offset: dup.first_offset,
                        last_offset: dup.last_offset,
                        log_append_time: dup.max_timestamp,
                        log_start_offset: st.log_start,
                        header,
                        duplicate: true,
                    });
                }
            }
            if !self.needs_roll(&st, len, header.last_offset(), now)? {
                break;
            }
            if st.inflight.is_empty() {
                self.roll_locked(&mut st, now)?;
                break;
            }
            // Rolling seals the active segment: wait for its writes, then
            // decide again (other appends may have come meanwhile).
            self.writes_done.wait(&mut st);
        }
        let mut batch = batch;
        let mut log_append_time = -1;
        // A replicated batch was stamped by its leader (the CRC covers it).
        if !replicated && st.config.timestamp_type == TimestampType::LogAppendTime {
            let mut stamped = batch.to_vec();
            batch::stamp_log_append_time(&mut stamped, now);
            header.max_timestamp = now;
            header.attributes |= batch::ATTR_LOG_APPEND_TIME;
            header.crc = batch::compute_crc(&stamped);
            log_append_time = now;
            batch = Bytes::from(stamped);
        }
        let base_offset = header.base_offset;
        // A new leader epoch starts here (Kafka's `assign` on append): the
        // checkpoint is written (if it changed) before the batch is reserved.
        st.epochs.assign(leader_epoch, base_offset)?;
        let prefix = batch::patched_prefix(&batch, base_offset, leader_epoch);
        let (_, seg) = st.segments.iter().next_back().ok_or(LogError::Closed)?;
        if seg.active.is_none() {
            return Err(LogError::Closed);
        }
        let position = st.reserved_position(seg.size);
        let ticket = st.end_ticket();
        st.inflight.push_back(InFlight { position, header, data: Some((prefix, batch.slice(16..))), written: None });
        // The producer state covers reserved batches, so a pipelined next
        // batch of the same producer is checked against this one.
        if let Some(done) = st.producers.apply(&header, marker) {
            self.record_completed(&mut st, &done);
        }
        // No early return before the ticket is published: it must leave
        // `inflight`, or rolls and truncations would wait forever.
        let flush_now = self.write_until_published(&mut st, ticket, now);
        if let Some((failed_from, e)) = &st.write_failure {
            if ticket >= *failed_from {
                return Err(offline_after_write_failure(e));
            }
        }
        let (end, log_start) = (st.next_offset, st.log_start);
        drop(st);
        if flush_now && self.flush.try_queue() {
            self.env.flusher.submit(&self.flush);
        }
        // Concurrent appenders publish in order but may send out of order:
        // the log end only moves forward here (a truncation sends its own).
        self.end_tx.send_if_modified(|e| {
            let newer = end > *e;
            if newer {
                *e = end;
            }
            newer
        });
        self.report_positions();
        Ok(AppendInfo {
            first_offset: base_offset,
            last_offset: header.last_offset(),
            log_append_time,
            log_start_offset: log_start,
            header,
            duplicate: false,
        })
    }

    /// Waits until batch `ticket` is published. Whenever no appender is
    /// writing and this batch waits to be written, this thread becomes the
    /// writer (unless another thread wrote last and stepped down less than
    /// `WRITER_GRACE` ago: then it first gives that one a moment to come
    /// back): it writes every queued batch with one `pwritev` and publishes
    /// them, then goes on with what was queued meanwhile, a few rounds at
    /// most once its own batch is out. Returns whether a flush is due for
    /// what this thread published.
    pub(super) fn write_until_published(&self, st: &mut MutexGuard<'_, State>, ticket: u64, now: i64) -> bool {
        let mut flush_due = false;
        let me = std::thread::current().id();
        let mut polled = false;
        while st.inflight_first <= ticket {
            if st.writing || st.taken > ticket {
                if !polled {
                    polled = true;
                    MutexGuard::unlocked(st, || self.poll_until(ticket, POLL_FOR_PUBLICATION));
                } else {
                    self.writes_done.wait(st);
                }
                continue;
            }
            if let Some((last, at)) = st.last_writer {
                if last != me && at.elapsed() < WRITER_GRACE {
                    let left = WRITER_GRACE.saturating_sub(at.elapsed());
                    MutexGuard::unlocked(st, || self.poll_until(ticket, left));
                    continue;
                }
            }
            st.writing = true;
            let mut rounds = 0;
            while st.taken < st.end_ticket() && (st.taken <= ticket || rounds < MAX_WRITER_ROUNDS) {
                flush_due |= self.write_group(st, now);
                rounds += 1;
            }
            st.writing = false;
            st.last_writer = Some((me, Instant::now()));
            self.writes_done.notify_all();
        }
        flush_due
    }

    /// Polls (without the lock) until batch `ticket` is published or
    /// `limit` has passed, yielding the CPU between looks: on a busy
    /// machine a pure spin took the core from the threads that make
    /// progress (the writer, the network, the clients). Measured: the broker
    /// lost ~15% of its produce throughput with `spin_loop` here and none
    /// with `yield_now` (`kaskade-log/BENCHMARKS.md`).
    pub(super) fn poll_until(&self, ticket: u64, limit: Duration) {
        let start = Instant::now();
        while self.published.load(Ordering::Acquire) <= ticket && start.elapsed() < limit {
            std::thread::yield_now();
        }
    }

    /// Takes the batches queued behind the last writer's (up to
    /// `MAX_GROUP_BATCHES`), writes them with the lock released, records
    /// the outcome and publishes. After a failed write nothing more is
    /// written: the batches are marked failed, so their appenders return.
    pub(super) fn write_group(&self, st: &mut MutexGuard<'_, State>, now: i64) -> bool {
        let start = (st.taken - st.inflight_first) as usize;
        let count = (st.inflight.len() - start).min(MAX_GROUP_BATCHES);
        st.taken += count as u64;
        let group: Vec<([u8; 16], Bytes)> =
            st.inflight.range_mut(start..start + count).filter_map(|f| f.data.take()).collect();
        let position = st.inflight.get(start).map_or(0, |f| f.position);
        let files = st.segments.values().next_back().and_then(|s| s.active.clone());
        let written = match files {
            _ if st.write_failure.is_some() => Err("not written: an earlier write failed".to_string()),
            None => Err("no active segment".to_string()),
            Some(files) => MutexGuard::unlocked(st, || {
                let mut slices: Vec<std::io::IoSlice<'_>> = Vec::with_capacity(2 * group.len());
                for (prefix, rest) in &group {
                    slices.push(std::io::IoSlice::new(prefix));
                    slices.push(std::io::IoSlice::new(rest));
                }
                segment::write_all_vectored_at(&files.log, &mut slices, position).map_err(|e| e.to_string())
            }),
        };
        for f in st.inflight.range_mut(start..start + count) {
            f.written = Some(written.clone());
        }
        self.publish_written(st, now)
    }

    /// Publishes the written batches at the front of `inflight`, in order:
    /// records them in the active segment (size, indexes), moves the log end
    /// and the flush target, and wakes whoever waits for them. A failed
    /// write stops publication for good. Returns whether a flush is due.
    pub(super) fn publish_written(&self, st: &mut State, now: i64) -> bool {
        let mut published = None;
        let mut popped = false;
        while let Some(written) = st.inflight.front_mut().and_then(|f| f.written.take()) {
            let Some(f) = st.inflight.pop_front() else { break };
            let ticket = st.inflight_first;
            st.inflight_first += 1;
            popped = true;
            if st.write_failure.is_some() {
                continue;
            }
            match written.and_then(|()| self.record_written(st, &f, now)) {
                Ok(files) => published = Some(files),
                Err(e) => {
                    tracing::error!(tp = %self.tp, offset = f.header.base_offset, error = %e,
                        "writing a batch failed: the log takes no more appends until it is reopened");
                    st.write_failure = Some((ticket, e));
                }
            }
        }
        if popped {
            self.published.store(st.inflight_first, Ordering::Release);
            self.writes_done.notify_all();
        }
        let Some(files) = published else { return false };
        let end = st.next_offset;
        self.flush.mark_dirty(&files, end);
        let flush_now = match st.config.flush {
            FlushPolicy::Durable => true,
            FlushPolicy::Lazy { messages, ms } => {
                messages.is_some_and(|m| st.unflushed_messages >= m)
                    || ms.is_some_and(|m| st.first_unflushed_ms.is_some_and(|t| now - t >= m as i64))
            }
        };
        if flush_now {
            st.unflushed_messages = 0;
            st.first_unflushed_ms = None;
        }
        flush_now
    }

    /// Records one written batch in the active segment and moves the log
    /// end past it. Returns the segment's files (the flush target).
    pub(super) fn record_written(
        &self,
        st: &mut State,
        f: &InFlight,
        now: i64,
    ) -> std::result::Result<Arc<SegmentFiles>, String> {
        let State { segments, config, .. } = &mut *st;
        let (_, seg) = segments.iter_mut().next_back().ok_or("no active segment")?;
        let files = seg.active.clone().ok_or("no active segment")?;
        debug_assert_eq!(seg.size, f.position, "publication out of order");
        seg.record_batch(&files, f.position, &f.header, config.index_interval_bytes).map_err(|e| e.to_string())?;
        st.next_offset = f.header.next_offset();
        st.unflushed_messages += f.header.records_count.max(0) as u64;
        st.first_unflushed_ms.get_or_insert(now);
        Ok(files)
    }

    /// Waits (releasing the lock) until no write is in flight: what rolls,
    /// truncation, retention and close need before touching the active
    /// segment.
    pub(super) fn drain_writes(&self, st: &mut MutexGuard<'_, State>) {
        if st.inflight.is_empty() {
            return;
        }
        st.draining += 1;
        while !st.inflight.is_empty() {
            self.writes_done.wait(st);
        }
        st.draining -= 1;
        // Appends held back by `draining` go on once the caller unlocks.
        self.writes_done.notify_all();
    }

    pub(super) fn needs_roll(&self, st: &State, len: u64, last_offset: i64, now: i64) -> Result<bool> {
        let (_, seg) = st.segments.iter().next_back().ok_or(LogError::Closed)?;
        let files = seg.active.as_ref().ok_or(LogError::Closed)?;
        let limits = RollLimits { segment_bytes: st.config.segment_bytes, segment_ms: st.config.max_segment_ms() };
        Ok(seg.should_roll(files, st.pending(), NextBatch { len, last_offset, now_ms: now }, limits))
    }

    /// Closes the active segment and starts a new one at the log end.
    pub fn roll(&self) -> Result<()> {
        let now = self.env.clock.now_ms();
        let mut st = self.state.lock();
        self.drain_writes(&mut st);
        let empty = st.segments.values().next_back().is_some_and(|s| s.size == 0);
        if empty {
            return Ok(());
        }
        self.roll_locked(&mut st, now)
    }

    pub(super) fn roll_locked(&self, st: &mut State, now: i64) -> Result<()> {
        debug_assert!(st.inflight.is_empty(), "rolling under in-flight writes");
        let base = st.next_offset;
        let files = SegmentFiles::open(&self.dir, base, st.config.segment_index_bytes, true)?;
        if let Some((_, old)) = st.segments.iter_mut().next_back() {
            if let Some(old_files) = old.active.take() {
                old.seal(&old_files)?;
                self.flush.mark_rolled(&old_files);
            }
        }
        let mut seg = Segment::new(next_segment_id(), base, now);
        seg.active = Some(Arc::new(files));
        st.segments.insert(base, seg);
        tracing::debug!(tp = %self.tp, base, "rolled a new segment");
        self.snapshot_on_roll(st, now);
        Ok(())
    }
}
