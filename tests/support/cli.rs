//! Driving the `casegate` binary from tests: run a command, read JSON lines, wait, stop.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_casegate")
}

/// Runs `casegate ARGS` in `dir`; the command must succeed. Returns its stdout.
pub fn casegate(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(bin())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Polls `f` until it holds; fails the test after `limit` (a bound, not a timing assertion).
pub fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends SIGTERM and returns the exit code once the process ended.
pub fn sigterm(child: &mut Child) -> Option<i32> {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "casegate did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `casegate serve` running in a directory, its log (stderr, `RUST_LOG` as given or info) kept
/// in a file so a test can wait for what the daemon says it did.
pub struct Serve {
    pub child: Child,
    pub log: std::path::PathBuf,
}

impl Serve {
    /// Starts `casegate ARGS serve` in `dir`; the log goes to `dir/serve-N.log`.
    pub fn start(dir: &Path, args: &[&str]) -> Serve {
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = dir.join(format!("serve-{n}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(bin())
            .args(args)
            .arg("serve")
            .current_dir(dir)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "casegate=info".into()),
            )
            .stdin(std::process::Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        Serve { child, log }
    }

    /// Everything the daemon logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (bounded) until the log contains `text` at least `times` times.
    pub fn wait_log(&self, text: &str, times: usize, limit: Duration) {
        let start = Instant::now();
        while self.log_text().matches(text).count() < times {
            assert!(
                start.elapsed() < limit,
                "timed out waiting for {times}× {text:?} in the log:\n{}",
                tail(&self.log_text(), 40)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then the exit code once it ended (bounded: see [`sigterm`]).
    pub fn stop(mut self) -> Option<i32> {
        sigterm(&mut self.child)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // A test that failed midway must not leave a daemon running.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
