//! Opening a partition log: finishing interrupted cleans, removing
//! leftovers, recovering segments past the recovery point, and loading the
//! producer state and the aborted-transaction index.

use super::high_watermark::HighWatermark;
use super::*;
use crate::leader_epoch::{self, LeaderEpochCache, LEADER_EPOCH_FILE};

impl Log {
    /// Opens (or creates) the log in `dir`, recovering it as `hint` says.
    /// Returns the log and a human report of what recovery did.
    pub fn open(
        tp: TopicPartition,
        dir: &Path,
        config: LogConfig,
        env: LogEnv,
        hint: OpenHint,
    ) -> Result<(Log, Vec<String>)> {
        std::fs::create_dir_all(dir)?;
        let mut report = Vec::new();
        // Finish or roll back an interrupted clean first (`cleaner::swap`).
        let mut swaps = Vec::new();
        crate::cleaner::recover(dir, &mut swaps)?;
        report.extend(swaps.into_iter().map(|line| format!("{tp}: {line}")));
        let mut bases = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".deleted")
                || name.ends_with(".cleaned")
                || name.ends_with(".swap")
                || name.ends_with(".txnindex.tmp")
            {
                std::fs::remove_file(entry.path())?;
                continue;
            }
            if let Some(stem) = name.strip_suffix(".log") {
                match stem.parse::<i64>() {
                    Ok(b) if stem.len() == 20 => bases.push(b),
                    _ => report.push(format!("{}: ignoring unexpected file {name}", tp)),
                }
            }
        }
        // Indexes without a log are leftovers of an interrupted deletion.
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(stem) = name
                .strip_suffix(".index")
                .or_else(|| name.strip_suffix(".timeindex"))
                .or_else(|| name.strip_suffix(".txnindex"))
            {
                if stem.parse::<i64>().map(|b| !bases.contains(&b)).unwrap_or(false) {
                    std::fs::remove_file(entry.path())?;
                }
            }
        }
        bases.sort_unstable();
        let now = env.clock.now_ms();
        let mut segments = BTreeMap::new();
        let recover_from_base = match (hint.clean, hint.recovery_point) {
            (true, _) => None,
            (false, None) => Some(i64::MIN),
            (false, Some(rp)) => Some(bases.iter().copied().filter(|b| *b <= rp).max().unwrap_or(i64::MIN)),
        };
        let mut cut_after: Option<i64> = None;
        for (i, &base) in bases.iter().enumerate() {
            if cut_after.is_some() {
                // Everything after a corrupt batch is unreachable: drop it.
                delete_segment_files(dir, base)?;
                report.push(format!("{tp}: deleted segment {base} after truncation at an earlier corrupt batch"));
                continue;
            }
            let next_base = bases.get(i + 1).copied();
            // A missing index would be recreated empty by the open below and
            // then trusted: an empty `.timeindex` understates the segment's
            // max timestamp (early retention, wrong time lookups) and an
            // empty `.index` makes every read scan from position 0. Rebuild.
            let missing: Vec<&str> = ["index", "timeindex"]
                .into_iter()
                .filter(|ext| !dir.join(segment::file_name(base, ext)).exists())
                .collect();
            let files = SegmentFiles::open(dir, base, config.segment_index_bytes, false)?;
            let mut seg = Segment::new(next_segment_id(), base, now);
            let needs_recovery = recover_from_base.is_some_and(|from| base >= from);
            let outcome = if !missing.is_empty() && files.log.metadata()?.len() > 0 {
                report.push(format!(
                    "{tp}: segment {base}: .{} missing; rebuilt the indexes from the log",
                    missing.join(" and .")
                ));
                Some(seg.rebuild(&files, config.index_interval_bytes)?)
            } else if needs_recovery {
                Some(match hint.recovery_point {
                    Some(rp) if rp > base => seg.recover(&files, rp, config.index_interval_bytes)?,
                    _ => seg.rebuild(&files, config.index_interval_bytes)?,
                })
            } else {
                if let Some(msg) = seg.load(&files, dir, config.index_interval_bytes)? {
                    report.push(format!("{tp}: {msg}"));
                }
                None
            };
            if let Some(out) = outcome {
                if let Some(note) = &out.note {
                    report.push(format!("{tp}: segment {base}: {note}"));
                }
                if let Some(p) = &out.problem {
                    report.push(format!(
                        "{tp}: segment {base}: truncated {} bytes at offset {}: {p}",
                        out.truncated_bytes, seg.next_offset
                    ));
                    if next_base.is_some() {
                        cut_after = Some(seg.next_offset);
                    }
                }
            }
            if seg.max_timestamp >= 0 {
                seg.created_ms = seg.max_timestamp.min(now);
            }
            segments.insert(base, (seg, files));
        }
        let made_first_segment = segments.is_empty();
        if made_first_segment {
            let base = hint.log_start.unwrap_or(0).max(0);
            let files = SegmentFiles::open(dir, base, config.segment_index_bytes, true)?;
            segments.insert(base, (Segment::new(next_segment_id(), base, now), files));
        }
        let first_base = *segments.keys().next().unwrap_or(&0);
        let next_offset = segments.values().next_back().map(|(s, _)| s.next_offset).unwrap_or(0);
        let log_start = hint.log_start.unwrap_or(first_base).max(first_base).min(next_offset);
        let (producers, mut snapshots, completed, replayed) =
            load_producer_state(&tp, dir, &segments, log_start, next_offset, &env, &mut report)?;
        let epochs = load_leader_epochs(&tp, dir, &segments, log_start, next_offset, &mut report)?;
        let txns = load_txn_index(&tp, dir, segments.keys().copied(), next_offset, &completed, &mut report)?;
        if replayed {
            snapshot_after_replay(&tp, &mut snapshots, &producers, next_offset);
        }
        let mut segs = BTreeMap::new();
        let last_base = *segments.keys().next_back().unwrap_or(&0);
        for (base, (mut seg, files)) in segments {
            if base == last_base {
                seg.active = Some(Arc::new(files));
            } else {
                // Closed: sealed already; its files reopen through the cache.
                drop(files);
            }
            segs.insert(base, seg);
        }
        let flush = FlushState::new(dir.to_path_buf(), next_offset);
        if made_first_segment {
            // Its entry in this directory is synced with the first data, not
            // here: creating 1,000 partitions costs no fsync per log.
            flush.mark_dir_unsynced();
        }
        let (end_tx, end_rx) = watch::channel(next_offset);
        // Everything below the recovered end is on disk (recovery cut the
        // rest): the HW starts at the log end.
        let hw = Arc::new(HighWatermark::new(next_offset, end_rx, config.flush == FlushPolicy::Durable));
        let follower = hw.clone();
        flush.set_listener(crate::flush::DurableListener(Arc::new(move |durable_end| {
            follower.positions_moved(durable_end)
        })));
        let log = Log {
            tp,
            dir: dir.to_path_buf(),
            env,
            flush,
            end_tx,
            hw,
            state: Mutex::new(State {
                config,
                segments: segs,
                log_start,
                next_offset,
                unflushed_messages: 0,
                first_unflushed_ms: None,
                closed: false,
                producers,
                snapshots,
                unsynced_snapshots: Vec::new(),
                epochs,
                txns,
                inflight: VecDeque::new(),
                inflight_first: 0,
                taken: 0,
                writing: false,
                last_writer: None,
                write_failure: None,
                draining: 0,
            }),
            writes_done: Condvar::new(),
            published: AtomicU64::new(0),
        };
        for line in &report {
            tracing::warn!("{line}");
        }
        Ok((log, report))
    }
}

/// Loads the producer state at open (`producer_state::rebuild`). After a
/// replay a snapshot is written at the end, so the next start does not
/// replay again.
fn load_producer_state(
    tp: &TopicPartition,
    dir: &Path,
    segments: &BTreeMap<i64, (Segment, SegmentFiles)>,
    log_start: i64,
    end: i64,
    env: &LogEnv,
    report: &mut Vec<String>,
) -> Result<(ProducerStateManager, Snapshots, Vec<CompletedTxn>, bool)> {
    let now = env.clock.now_ms();
    let mut snaps = Snapshots::scan(dir)?;
    let mut bad = Vec::new();
    let mut completed = Vec::new();
    let (mut state, replayed) = producer_state::rebuild(
        &mut snaps,
        log_start,
        end,
        env.producer_id_expiration_ms,
        now,
        &mut bad,
        |state, from| {
            let mut n = 0;
            for (seg, files) in segments.values().filter(|(s, _)| s.next_offset > from && s.size > 0) {
                n += producer_state::replay(state, files, seg.size, from, &mut completed)?;
            }
            Ok(n)
        },
    )?;
    report.extend(bad.into_iter().map(|line| format!("{tp}: {line}")));
    if replayed > 0 {
        state.remove_expired(now);
        tracing::info!(%tp, end, batches = replayed, producers = state.len(), "rebuilt producer state from the log");
    }
    Ok((state, snaps, completed, replayed > 0))
}

/// After a replay, a snapshot at the log end saves the next start the same
/// replay. Written only once the `.txnindex` files hold every abort the
/// replay saw (the replay is what rebuilds lost index entries, and it
/// starts after the newest snapshot). Not worth failing the open.
fn snapshot_after_replay(tp: &TopicPartition, snaps: &mut Snapshots, state: &ProducerStateManager, end: i64) {
    if let Err(e) = snaps.write(end, &state.to_snapshot(), true).and_then(|_| snaps.retain_latest(SNAPSHOTS_TO_KEEP)) {
        tracing::warn!(%tp, error = %e, "writing the producer snapshot failed");
    }
}

/// Loads the leader-epoch cache at open, rebuilt from the batches' epochs
/// when the file is missing or malformed, and cut to the recovered log
/// (recovery may have truncated it) as Kafka does after recovery.
fn load_leader_epochs(
    tp: &TopicPartition,
    dir: &Path,
    segments: &BTreeMap<i64, (Segment, SegmentFiles)>,
    log_start: i64,
    end: i64,
    report: &mut Vec<String>,
) -> Result<LeaderEpochCache> {
    let (mut cache, found) = LeaderEpochCache::load(dir)?;
    if !found {
        let mut entries = Vec::new();
        for (seg, files) in segments.values().filter(|(s, _)| s.size > 0) {
            let mut from = seg.base;
            while from < seg.next_offset {
                let Some(bytes) = segment::read(files, seg.size, from, 1 << 20, seg.next_offset)? else { break };
                let before = from;
                for h in batch::headers(&bytes) {
                    leader_epoch::observe(&mut entries, h.partition_leader_epoch, h.base_offset);
                    from = h.next_offset();
                }
                if from <= before {
                    break;
                }
            }
        }
        if !entries.is_empty() || dir.join(LEADER_EPOCH_FILE).exists() {
            report.push(format!("{tp}: {LEADER_EPOCH_FILE} missing or malformed; rebuilt from the log"));
        }
        cache.rebuild(entries)?;
    }
    // Not written: the next open cuts the same, and the first change or
    // append writes it (`LeaderEpochCache::cut_to_log`). Writing here and
    // again at the leader's `assign` cost an idle partition two renames
    // and four fsyncs at every start.
    cache.cut_to_log(log_start, end);
    Ok(cache)
}

/// Loads the aborted-transaction index at open: every segment's
/// `.txnindex`, cut at the first bad entry and at the log end, completed
/// with the aborts the producer-state replay saw (a crash can lose index
/// appends that were not fsynced, never the markers below the log end).
fn load_txn_index(
    tp: &TopicPartition,
    dir: &Path,
    bases: impl Iterator<Item = i64> + Clone,
    end: i64,
    completed: &[CompletedTxn],
    report: &mut Vec<String>,
) -> Result<TxnLog> {
    let mut aborted: Vec<AbortedTxn> = Vec::new();
    let mut rewrite = false;
    for base in bases.clone() {
        let path = txn::txn_index_path(dir, base);
        let (entries, cut) = txn::read_txn_index(&path)?;
        let before = entries.len();
        let kept: Vec<AbortedTxn> = entries
            .into_iter()
            .filter(|e| e.last_offset < end && aborted.last().is_none_or(|l| l.last_offset < e.last_offset))
            .collect();
        if cut || kept.len() != before {
            report
                .push(format!("{tp}: segment {base}: .txnindex cut to {} valid entries below the log end", kept.len()));
            rewrite = true;
        }
        aborted.extend(kept);
    }
    let mut txns = TxnLog::new(aborted);
    for done in completed {
        if txns.complete(done).is_some() {
            rewrite = true;
        }
    }
    if rewrite {
        rewrite_txn_indexes(dir, bases, txns.aborted())?;
    }
    Ok(txns)
}

/// Writes every segment's `.txnindex` to hold exactly its share of
/// `aborted` (an entry belongs to the segment holding its marker).
pub(super) fn rewrite_txn_indexes(dir: &Path, bases: impl Iterator<Item = i64>, aborted: &[AbortedTxn]) -> Result<()> {
    let bases: Vec<i64> = bases.collect();
    for (i, base) in bases.iter().enumerate() {
        let next = bases.get(i + 1).copied().unwrap_or(i64::MAX);
        let mine: Vec<AbortedTxn> =
            aborted.iter().filter(|a| a.last_offset >= *base && a.last_offset < next).copied().collect();
        let path = txn::txn_index_path(dir, *base);
        if mine.is_empty() && !path.exists() {
            continue;
        }
        txn::write_txn_index(&path, &mine)?;
    }
    Ok(())
}
