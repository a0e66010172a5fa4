//! A `kaskade serve` child process for crash tests: started on a data
//! directory and port, killed with SIGKILL or stopped with SIGTERM.

#![allow(dead_code)]

pub mod checker;
pub mod checker_groups;
pub mod cluster;
pub mod coordinated;
pub mod netns;
pub mod replicas;
pub mod scrape;
pub mod tmpfs;
pub mod trail;
pub mod workloads;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;

pub const WAIT: Duration = Duration::from_secs(30);

/// A `kaskade serve` child; killed (SIGKILL) when dropped.
pub struct BrokerProcess {
    child: Child,
    log: PathBuf,
}

impl BrokerProcess {
    /// Starts the binary and waits for its "listening on" line.
    pub fn start(data_dir: &Path, port: u16, log: &Path) -> BrokerProcess {
        BrokerProcess::start_command(Command::new(env!("CARGO_BIN_EXE_kaskade")), data_dir, port, log)
    }

    /// `start` with the open-files limit (soft and hard) set to `nofile`
    /// in the child, by the shell's `ulimit -n` before it execs the broker.
    pub fn start_with_nofile(data_dir: &Path, port: u16, log: &Path, nofile: u64) -> BrokerProcess {
        let mut shell = Command::new("sh");
        shell.arg("-c").arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\"")).arg(env!("CARGO_BIN_EXE_kaskade"));
        BrokerProcess::start_command(shell, data_dir, port, log)
    }

    fn start_command(mut command: Command, data_dir: &Path, port: u16, log: &Path) -> BrokerProcess {
        let stderr = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("broker log file");
        let mut child = command
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listeners")
            .arg(format!("PLAINTEXT://127.0.0.1:{port}"))
            // No HTTP listener: crash tests run in parallel and restart often.
            .arg("--override")
            .arg("http.listener=")
            .env("KASKADE_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn kaskade");
        let stdout = child.stdout.take().expect("child stdout");
        let (tx, rx) = mpsc::channel();
        // Keeps reading so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let mut broker = BrokerProcess { child, log: log.to_path_buf() };
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left.max(Duration::from_millis(1))) {
                Ok(line) if line.starts_with("kaskade: listening on ") => {
                    assert!(line.ends_with(&format!(":{port}")), "listening on the wrong port: {line}");
                    return broker;
                }
                Ok(_) => {}
                Err(_) => {
                    let status = broker.child.try_wait().ok().flatten();
                    panic!("the broker did not start (exit status {status:?}); its log:\n{}", broker.log_tail());
                }
            }
        }
    }

    /// SIGKILL, and wait until the process is gone.
    pub fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap the broker");
    }

    /// SIGTERM, and wait for the clean exit.
    pub fn stop(mut self) {
        // SAFETY: kill(2) on our own child, not yet reaped, with a valid
        // signal number; it touches no memory of ours.
        let rc = unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        assert_eq!(rc, 0, "SIGTERM");
        let status = self.child.wait().expect("reap the broker");
        assert!(status.success(), "clean shutdown: {status:?}");
    }

    /// The broker's process id (the shell of `start_with_nofile` execs it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port for a child process to listen on. Not the kernel's `:0` pick:
/// that comes from the ephemeral range (32768-60999 here), from which every
/// outgoing connection also takes its local port, so between our probe and
/// the child's bind a client connection could take it ("Address already in
/// use" at start-up, seen under load). Ports below that range are never
/// handed out to outgoing connections; each test process walks its own
/// stretch of them (spread by pid), skipping any that is taken.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(u32::MAX, (std::process::id() * 211) % SPAN, Ordering::SeqCst, Ordering::SeqCst);
    for _ in 0..SPAN {
        let port = (LOW + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {LOW}..{}", LOW + SPAN)
}

pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("reconnect.backoff.ms", "20")
        .set("reconnect.backoff.max.ms", "200")
        .set("log_level", "2");
    c
}

/// xorshift64*, seeded from `KASKADE_CRASH_SEED` or the clock (printed,
/// so a failing run's kill timings can be replayed).
pub struct Rng(pub u64);

impl Rng {
    pub fn from_env(test: &str) -> Rng {
        let seed: u64 = std::env::var("KASKADE_CRASH_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
        });
        eprintln!("{test}: KASKADE_CRASH_SEED={seed}");
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// A test's temporary directory: removed on drop unless
/// `KASKADE_FAULT_KEEP` is set (then its path is printed, so a failing
/// fault test's data directories and logs can be read afterwards).
pub struct TestDir(Option<tempfile::TempDir>, PathBuf);

impl TestDir {
    pub fn new() -> TestDir {
        let dir = tempfile::tempdir().expect("tempdir");
        if std::env::var_os("KASKADE_FAULT_KEEP").is_some() {
            let path = dir.keep();
            eprintln!("keeping the nodes' data and logs in {}", path.display());
            return TestDir(None, path);
        }
        let path = dir.path().to_path_buf();
        TestDir(Some(dir), path)
    }

    pub fn path(&self) -> &Path {
        &self.1
    }
}
