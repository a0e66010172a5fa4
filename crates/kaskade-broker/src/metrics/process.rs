//! Process metrics with the standard names of Prometheus' client libraries
//! (`process_open_fds`, `process_max_fds`), read from `/proc` and
//! `getrlimit`. Available before the broker runs.

use super::text::Exposition;

/// Appends the process metrics to `out`.
pub fn render(out: &mut String) {
    let mut x = Exposition::new(out);
    // Each partition keeps its active segment's `.log` open: this is the
    // number to watch against the limit below.
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        x.family("process_open_fds", "gauge", "Number of open file descriptors.");
        x.sample("process_open_fds", &[], dir.count() as f64);
    }
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own, passed by a valid
    // pointer; its value is used only on success.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        x.family("process_max_fds", "gauge", "Maximum number of open file descriptors (soft limit).");
        x.sample("process_max_fds", &[], lim.rlim_cur as f64);
    }
}
