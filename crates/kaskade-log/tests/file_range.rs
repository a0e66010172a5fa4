//! Reads as file ranges (`Log::read_range`, for sendfile): the same whole
//! batches a model of the fetch rules picks, and bytes that stay readable
//! after retention deletes the segment they lie in.

mod common;
use common::*;

use kaskade_log::LogConfig;

/// The batches a fetch returns, by the rules: from the one holding `start`,
/// whole ones beginning below `upper`, within `max` bytes but always the
/// first (KIP-74); nothing from at or past `upper`. One segment, so no
/// segment boundary applies.
fn model(sent: &[(i64, i64, Vec<u8>)], start: i64, max: usize, upper: i64) -> Vec<i64> {
    if start >= upper {
        return Vec::new();
    }
    let Some(first) = sent.iter().position(|(_, last, _)| *last >= start) else { return Vec::new() };
    let mut out = Vec::new();
    let mut bytes = 0;
    for (base, _, b) in &sent[first..] {
        if *base >= upper || (!out.is_empty() && bytes + b.len() > max) {
            break;
        }
        bytes += b.len();
        out.push(*base);
    }
    out
}

#[test]
fn ranges_hold_the_batches_the_fetch_rules_pick() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = LogConfig { index_interval_bytes: 700, ..LogConfig::default() };
    let (mgr, _) = open(dir.path(), cfg.clone(), manual_clock());
    let log = follow_local(mgr.get_or_create(&tp(), cfg).expect("create"));
    let mut sent = Vec::new();
    for i in 0..60u8 {
        let b = batch(1 + (i as usize % 4), 50 + (i as usize * 37) % 400, 1000 + i as i64, i);
        let info = log.append(&b, 3).expect("append");
        sent.push((info.first_offset, info.last_offset, b));
    }
    let end = log.log_end_offset();
    for start in (0..end).step_by(7) {
        for max in [1, 300, 1000, 4000, 1 << 20] {
            for upper in [start, start + 1, start + 9, end] {
                let range = log.read_range(start, max, Some(upper)).expect("read_range").records;
                let buffered = log.read(start, max, Some(upper)).expect("read").records;
                let want = model(&sent, start, max, upper);
                let Some(range) = range else {
                    assert!(want.is_empty(), "start {start} max {max} upper {upper}: expected {want:?}");
                    assert!(buffered.is_none());
                    continue;
                };
                let bytes = range.read().expect("range bytes");
                assert_eq!(Some(&bytes), buffered.as_ref(), "the buffered read is the range's bytes");
                assert_eq!(bytes.len(), range.len());
                let got = split(&bytes);
                assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), want, "start {start} max {max} upper {upper}");
                assert_eq!(range.next_offset(), got.last().expect("one batch").1 + 1);
                for (g, s) in got.iter().zip(sent.iter().skip_while(|s| s.0 != want[0])) {
                    assert_eq!(g.2[..], s.2[16..], "bytes as sent, after the patched prefix");
                }
            }
        }
    }
    mgr.shutdown().expect("shutdown");
}

#[test]
fn a_range_outlives_the_deletion_of_its_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = manual_clock();
    let now = clock.now_ms_for_test();
    let cfg = LogConfig { segment_bytes: 2_000, retention_ms: 60_000, ..LogConfig::default() };
    let (mgr, _) = open(dir.path(), cfg.clone(), clock.clone());
    let log = follow_local(mgr.get_or_create(&tp(), cfg).expect("create"));
    for i in 0..40i64 {
        log.append(batch(1, 200, now + i * 1000, i as u8), 0).expect("append");
    }
    let range = log.read_range(0, 1 << 20, None).expect("read_range").records.expect("data");
    let before = range.read().expect("bytes");
    clock.advance(1_000_000);
    assert!(log.apply_retention().expect("retention") > 0);
    assert!(log.log_start_offset() > 0, "offset 0's segment is gone");
    assert!(!dir.path().join(tp().dir_name()).join(format!("{:020}.log", 0)).exists(), "its file is unlinked");
    assert_eq!(range.read().expect("bytes after deletion"), before, "the open file still holds them");
    let mut copy = vec![0u8; range.len()];
    std::os::unix::fs::FileExt::read_exact_at(range.file(), &mut copy, range.position()).expect("pread");
    assert_eq!(copy[..], before[..]);
    mgr.shutdown().expect("shutdown");
}

/// `tail_cached` tells resident pages (just appended) from evicted ones, so
/// `prefetch` skips the readahead only when the range is in the page cache.
/// The log lives under Cargo's target dir, not a possibly memory-backed
/// temp dir, where clean pages can be dropped.
#[test]
fn the_residency_check_sees_appended_and_evicted_pages() {
    use std::os::fd::AsRawFd;
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let cfg = LogConfig::default();
    let (mgr, _) = open(dir.path(), cfg.clone(), manual_clock());
    let log = follow_local(mgr.get_or_create(&tp(), cfg).expect("create"));
    for i in 0..32u8 {
        log.append(batch(4, 1000, 1000 + i as i64, i), 0).expect("append");
    }
    let range = log.read_range(0, 1 << 20, None).expect("read_range").records.expect("data");
    let before = range.read().expect("bytes");
    assert!(range.tail_cached(), "pages just appended are in the page cache");
    range.file().sync_data().expect("fdatasync");
    // SAFETY: the descriptor is open for the call (borrowed from the range).
    let rc = unsafe { libc::posix_fadvise(range.file().as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(rc, 0, "posix_fadvise");
    assert!(!range.tail_cached(), "clean pages dropped with DONTNEED are not resident");
    range.prefetch();
    assert_eq!(range.read().expect("bytes read back from the disk"), before);
    mgr.shutdown().expect("shutdown");
}

/// Offsets of the batches a consumer reading from `start` in steps of at
/// most `max` bytes gets, each read starting where the last one ended (the
/// segment files' read hint), checked against the model.
fn read_along(log: &kaskade_log::Log, sent: &[(i64, i64, Vec<u8>)], start: i64, max: usize) -> i64 {
    let end = log.log_end_offset();
    let mut at = start;
    while at < end {
        let range = log.read_range(at, max, None).expect("read_range").records.expect("data below the end");
        let got = split(&range.read().expect("range bytes"));
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), model(sent, at, max, end), "from {at} max {max}");
        at = range.next_offset();
    }
    at
}

/// Reads that continue where the previous one ended start from the hinted
/// position; after the log is cut below that position and rewritten with
/// batches of other sizes, a read from the hinted offset finds the new
/// batches, not bytes at the stale position.
#[test]
fn consecutive_reads_stay_exact_across_a_cut() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = LogConfig { index_interval_bytes: 1 << 20, ..LogConfig::default() };
    let (mgr, _) = open(dir.path(), cfg.clone(), manual_clock());
    let log = follow_local(mgr.get_or_create(&tp(), cfg).expect("create"));
    let mut sent = Vec::new();
    for i in 0..40u8 {
        let b = batch(1 + (i as usize % 3), 100 + (i as usize * 53) % 300, 1000 + i as i64, i);
        let info = log.append(&b, 3).expect("append");
        sent.push((info.first_offset, info.last_offset, b));
    }
    for max in [1, 700, 2500] {
        assert_eq!(read_along(&log, &sent, 0, max), log.log_end_offset());
    }
    // Leave a hint at the start of batch 25, then cut the log below it.
    let (cut_base, hinted) = (sent[20].0, sent[25].0);
    let r = log.read_range(sent[24].0, 1, None).expect("read_range").records.expect("data");
    assert_eq!(r.next_offset(), hinted);
    log.truncate_to(cut_base).expect("truncate");
    sent.truncate(20);
    for i in 0..20u8 {
        let b = batch(2 + (i as usize % 5), 37 + (i as usize * 71) % 500, 5000 + i as i64, 100 + i);
        let info = log.append(&b, 3).expect("append");
        sent.push((info.first_offset, info.last_offset, b));
    }
    assert!(sent.iter().any(|s| s.0 == hinted) || sent.iter().any(|s| s.0 < hinted && s.1 >= hinted));
    read_along(&log, &sent, hinted, 1);
    read_along(&log, &sent, hinted, 3000);
    mgr.shutdown().expect("shutdown");
}

/// A resident read (`read_range_resident`, for async workers) returns what
/// `read_range` returns when it can: a fetch continuing where the last one
/// ended, with its pages cached. It declines (`None`) instead of waiting
/// when the start is not the read hint (the offset index would be read),
/// when the range lies in a closed segment, and when the headers' pages
/// were dropped from the page cache; `read_range` then answers the same
/// batches. Errors (an offset out of range) are `read_range`'s.
#[test]
fn a_resident_read_answers_as_read_range_or_declines() {
    use std::os::fd::AsRawFd;
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let cfg = LogConfig { segment_bytes: 40_000, index_interval_bytes: 700, ..LogConfig::default() };
    let (mgr, _) = open(dir.path(), cfg.clone(), manual_clock());
    let log = follow_local(mgr.get_or_create(&tp(), cfg).expect("create"));
    let mut sent = Vec::new();
    for i in 0..60u8 {
        let b = batch(1 + (i as usize % 4), 300 + (i as usize * 37) % 400, 1000 + i as i64, i);
        let info = log.append(&b, 3).expect("append");
        sent.push((info.first_offset, info.last_offset, b));
    }
    let end = log.log_end_offset();
    let bases = log.segment_bases();
    assert!(bases.len() > 1, "some batches lie in closed segments");
    let active_base = *bases.last().expect("an active segment");
    assert!(end - active_base > 10, "the active segment holds batches to read along");

    // Read along the active segment: the first read has no hint and
    // declines; read_range leaves the hint, and every read after it is
    // resident and identical to read_range's answer at the same offset.
    assert!(log.read_range_resident(active_base, 1000, None).is_none(), "no read hint yet");
    let r = log.read_range(active_base, 1000, None).expect("read_range").records.expect("data");
    let mut at;
    at = r.next_offset();
    let mut resident_reads = 0;
    while at < end {
        let resident = log.read_range_resident(at, 1000, None).expect("cached, from the hint").expect("in range");
        let range = resident.records.expect("data below the end");
        let got = split(&range.read().expect("bytes"));
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), model(&sent, at, 1000, end), "from {at}");
        at = range.next_offset();
        resident_reads += 1;
    }
    assert!(resident_reads > 3, "{resident_reads} resident reads");
    // At the end: positions only, no I/O.
    let at_end = log.read_range_resident(end, 1000, None).expect("nothing to read").expect("in range");
    assert!(at_end.records.is_none());
    // Out of range: read_range's error, not a decline.
    assert!(matches!(log.read_range_resident(end + 1, 1000, None), Some(Err(_))));
    // A closed segment declines, even right after a read left its hint there.
    let r = log.read_range(0, 1, None).expect("read_range").records.expect("data");
    assert!(log.read_range_resident(r.next_offset(), 1000, None).is_none(), "closed segment");

    // Evicted pages: the read declines rather than wait for the disk.
    let hinted = {
        let r = log.read_range(active_base, 1, None).expect("read_range").records.expect("data");
        r.file().sync_data().expect("fdatasync");
        // SAFETY: the descriptor is open for the call (borrowed from the range).
        let rc = unsafe { libc::posix_fadvise(r.file().as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(rc, 0, "posix_fadvise");
        r.next_offset()
    };
    if hinted < end {
        assert!(log.read_range_resident(hinted, 1000, None).is_none(), "headers not cached");
        let blocking = log.read_range(hinted, 1000, None).expect("read_range").records.expect("data");
        let got = split(&blocking.read().expect("bytes"));
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), model(&sent, hinted, 1000, end));
    }
    mgr.shutdown().expect("shutdown");
}
