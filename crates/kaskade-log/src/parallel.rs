//! Blocking, I/O-bound work items run a few at a time on scoped threads.
//!
//! Creating a topic's logs and giving each partition its leadership are
//! file creations and fsyncs (a leader's `leader-epoch-checkpoint`: the
//! file, then its directory). One after another, 1,000 partitions wait out
//! 1,000 commits; started together, concurrent fsyncs overlap (here: 333
//! checkpoints in 4.5 s one by one, 0.2 s eight at a time). The work
//! stays blocking and on the caller's thread pool (the caller runs items
//! too), so nothing here touches an async worker.
//!
//! Invariant: every item is run exactly once, and the results come back in
//! the items' order whatever order they ran in.

use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

/// How many items run at once: enough to keep the disk's queue busy with
/// fsyncs, few enough not to crowd a small machine with threads.
pub const IO_PARALLELISM: usize = 8;

/// Fewer items than this run on the caller's thread alone: a thread's start
/// costs more than a small change saves.
const MIN_ITEMS_PER_THREAD: usize = 8;

/// `f` applied to every item, up to `threads` at once (the caller's thread
/// among them); the results in the items' order. A thread that cannot be
/// started leaves its share to the others.
pub fn map<T: Sync, R: Send>(items: &[T], threads: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = threads.min(items.len() / MIN_ITEMS_PER_THREAD).max(1);
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(item) = items.get(i) else { return };
        let r = f(item);
        results.lock()[i] = Some(r);
    };
    std::thread::scope(|s| {
        for n in 1..threads {
            let spawned = std::thread::Builder::new().name(format!("kaskade-io-{n}")).spawn_scoped(s, work);
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "could not start an I/O helper thread; the others do its share");
                break;
            }
        }
        work();
    });
    let results = results.into_inner();
    debug_assert!(results.iter().all(Option::is_some), "every item ran");
    results.into_iter().flatten().collect()
}

/// Runs `f` on every item as [`map`] does; the first error in item order,
/// after every item ran (no item is left half-done by another's failure).
pub fn try_for_each<T: Sync, E: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> Result<(), E> + Sync,
) -> Result<(), E> {
    map(items, threads, f).into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_runs_once_and_results_keep_the_items_order() {
        let items: Vec<u32> = (0..1000).collect();
        let ran = AtomicUsize::new(0);
        let out = map(&items, IO_PARALLELISM, |i| {
            ran.fetch_add(1, Ordering::Relaxed);
            i * 2
        });
        assert_eq!(ran.load(Ordering::Relaxed), 1000);
        assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
    }

    #[test]
    fn items_run_on_several_threads_at_once() {
        // Each item waits until a second thread is inside an item too: with
        // one thread this would time out.
        let items: Vec<u32> = (0..64).collect();
        let inside = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        map(&items, 4, |_| {
            let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while most.load(Ordering::SeqCst) < 2 && std::time::Instant::now() < deadline {
                std::thread::yield_now();
            }
            inside.fetch_sub(1, Ordering::SeqCst);
        });
        assert!(most.load(Ordering::SeqCst) >= 2, "items overlapped");
    }

    #[test]
    fn a_failure_is_reported_after_every_item_ran() {
        let items: Vec<u32> = (0..100).collect();
        let ran = AtomicUsize::new(0);
        let r = try_for_each(&items, 4, |i| {
            ran.fetch_add(1, Ordering::Relaxed);
            if *i == 10 || *i == 70 {
                Err(*i)
            } else {
                Ok(())
            }
        });
        assert_eq!(r, Err(10), "the first failure in item order");
        assert_eq!(ran.load(Ordering::Relaxed), 100);
    }

    #[test]
    fn a_few_items_run_on_the_callers_thread() {
        let me = std::thread::current().id();
        let out = map(&[1, 2, 3], IO_PARALLELISM, |_| std::thread::current().id() == me);
        assert!(out.iter().all(|on_caller| *on_caller));
    }
}
