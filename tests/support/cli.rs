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

/// Starts `casegate serve` in `dir`, its output discarded.
pub fn serve(dir: &Path) -> Child {
    Command::new(bin())
        .arg("serve")
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits (bounded) until `child` catches SIGTERM, or has ended. Between exec and the daemon's
/// first step a SIGTERM gets the default action (death by signal, no exit code): a test that
/// stops a daemon it has just started, perhaps with nothing left to do, must not race that.
/// Linux shows the caught signals in `/proc/PID/status` (`SigCgt`, bit 14 is SIGTERM).
pub fn wait_until_it_catches_sigterm(child: &mut Child) {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
        let caught = status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok());
        if caught.is_some_and(|mask| mask & (1 << (15 - 1)) != 0) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "casegate did not install its SIGTERM handler within 30 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends SIGTERM (once the process catches it) and returns the exit code once it ended.
pub fn sigterm(child: &mut Child) -> Option<i32> {
    wait_until_it_catches_sigterm(child);
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

/// A data directory driven through the binary as analyst `ann` (USER=ann, so the audit trail
/// says `cli:ann`): commands run in `work` with `--data-dir data`.
pub struct Desk {
    _tmp: tempfile::TempDir,
    pub data: std::path::PathBuf,
    pub work: std::path::PathBuf,
}

impl Desk {
    /// No store yet (not even `init`).
    pub fn empty() -> Desk {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let work = tmp.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        Desk {
            _tmp: tmp,
            data,
            work,
        }
    }

    /// After `init`.
    pub fn new() -> Desk {
        let d = Desk::empty();
        d.ok(&["init"]);
        d
    }

    pub fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new(bin())
            .current_dir(&self.work)
            .env("USER", "ann")
            .arg("--data-dir")
            .arg(&self.data)
            .args(args)
            .output()
            .unwrap()
    }

    /// The command must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "casegate {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The command must fail with exit code 1 (printing nothing but `--json` lines on
    /// stdout); returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "casegate {args:?} should fail: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            out.stdout.is_empty() || args.contains(&"--json"),
            "casegate {args:?} printed on failure"
        );
        String::from_utf8(out.stderr).unwrap()
    }

    pub fn json(&self, args: &[&str]) -> Vec<serde_json::Value> {
        json_lines(&self.ok(args))
    }

    /// Writes a file into the working directory; returns its path.
    pub fn write(&self, name: &str, bytes: &[u8]) -> String {
        let p = self.work.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.display().to_string()
    }

    /// Ingests one message; returns its `--json` line.
    pub fn ingest(&self, name: &str, raw: &[u8]) -> serde_json::Value {
        let path = self.write(name, raw);
        let mut out = self.json(&["ingest", "--json", &path]);
        assert_eq!(out.len(), 1);
        out.remove(0)
    }

    /// Every byte of the store: the main file and the write-ahead log.
    pub fn store_bytes(&self) -> Vec<u8> {
        let mut all = Vec::new();
        for name in ["casegate.sqlite", "casegate.sqlite-wal"] {
            if let Ok(b) = std::fs::read(self.data.join(name)) {
                all.extend(b);
            }
        }
        all
    }
}
