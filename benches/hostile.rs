//! Hostile mail costs work and memory linear in the message (issue 12, item 3), measured on
//! the release `casegate` binary, one fresh process per message (time and peak RSS from
//! `wait4`), never asserted:
//!
//! 1. one message of N small attachments named `*.sig` (pairing them with their files was
//!    quadratic: 20,000 took ~10 s) and, beside it, the same with `*.bin`, for N = 1,000 →
//!    100,000: `casegate ingest` time and peak RSS, and time per part at N against N = 1,000 —
//!    the baseline is linear growth, ratio 1.0;
//! 2. other classes whose work a sender chose (nested multiparts that never close, HTML full of
//!    `<` and `&`, a subject of glued numbers, a bounce listing many recipients), at 10× sizes;
//! 3. B5: peak RSS of `casegate ingest` of one message with a 50 MB attachment, against the
//!    bound 3 × message size + 50 MB;
//! 4. idle `casegate serve` (Maildir drop folder, store, no IMAP) RSS after it settled,
//!    against 40 MB.
//!
//! Run: `cargo bench --bench hostile` (`./run bench hostile`); `CASEGATE_BENCH_MAX_PARTS`
//! lowers the largest N.

#[path = "../tests/hostile_cases/mod.rs"]
mod hostile_cases;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_casegate");

/// Wall time and peak RSS (bytes) of one `casegate` run in `dir`.
#[allow(clippy::zombie_processes)] // reaped by `wait4`, which also gives its peak RSS
fn run(dir: &Path, args: &[&str]) -> (Duration, u64) {
    let start = Instant::now();
    let child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run casegate");
    let (status, maxrss_kb) = wait4(child.id());
    let took = start.elapsed();
    assert!(status == 0, "casegate {args:?} exited with {status}");
    (took, maxrss_kb * 1024)
}

/// Waits for `pid`; its exit status and peak RSS in KiB (getrusage's ru_maxrss).
fn wait4(pid: u32) -> (i32, u64) {
    let mut status: libc::c_int = 0;
    // SAFETY: a zeroed rusage is a valid value; wait4 writes into both out-parameters.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own child, not yet waited for; the pointers are to live locals.
    let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(r, pid as libc::pid_t, "wait4");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (code, usage.ru_maxrss as u64)
}

/// A fresh data dir whose limits let `max_parts` parts and `max_bytes`-byte messages in.
fn fresh(max_parts: usize, max_bytes: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("casegate.toml"),
        format!(
            "[policy]\nmax_message_bytes = {max_bytes}\n\n[limits]\nmax_parts = {max_parts}\nmax_headers = {}\n",
            max_parts * 4
        ),
    )
    .expect("config");
    run(dir.path(), &["init"]);
    dir
}

/// `casegate ingest` of `raw` in a fresh store: (time, peak RSS).
fn ingest(raw: &[u8], max_parts: usize) -> (Duration, u64) {
    let dir = fresh(max_parts, raw.len() + (1 << 20));
    let file = dir.path().join("m.eml");
    std::fs::write(&file, raw).expect("write");
    run(dir.path(), &["ingest", file.to_str().expect("path")])
}

/// A shape of message: its name, how to make it of size `n`, and the smaller `n`.
type Shape = (&'static str, fn(usize) -> Vec<u8>, usize);

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn main() {
    // As `casegate` does; SAFETY: first statement of main, before any thread exists.
    unsafe { casegate::library_backtraces_off() };
    let max_n: usize = std::env::var("CASEGATE_BENCH_MAX_PARTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);

    // An empty run: what a process costs before any message.
    let (t0, rss0) = ingest(&hostile_cases::good(0), 100);
    println!(
        "baseline: one small message {:.0} ms, peak RSS {:.1} MB",
        t0.as_secs_f64() * 1e3,
        mb(rss0)
    );

    println!("\n1. one message of N small attachments (casegate ingest, fresh process each)");
    println!(
        "   {:>8} {:>6} {:>10} {:>12} {:>10} {:>14}",
        "N", "names", "size MB", "time ms", "RSS MB", "µs/part"
    );
    let mut worst_ratio: f64 = 0.0;
    for ext in [".sig", ".bin"] {
        let mut first: Option<f64> = None;
        for n in [1_000, 3_000, 10_000, 30_000, 100_000]
            .into_iter()
            .filter(|&n| n <= max_n)
        {
            let raw = hostile_cases::many_parts(n, ext);
            let (t, rss) = ingest(&raw, n + 10);
            let per = (t.saturating_sub(t0)).as_secs_f64() * 1e6 / n as f64;
            let base = *first.get_or_insert(per);
            worst_ratio = worst_ratio.max(per / base);
            println!(
                "   {n:>8} {ext:>6} {:>10.1} {:>12.0} {:>10.1} {:>10.1} ({:.2}×)",
                mb(raw.len() as u64),
                t.as_secs_f64() * 1e3,
                mb(rss),
                per,
                per / base
            );
        }
    }
    println!(
        "ratio: parts: time per part at the largest N / at N = 1,000, worst of *.sig and *.bin: {worst_ratio:.2} (linear: 1.0)"
    );

    println!("\n2. other sender-chosen shapes, 1× and 10× (time ms, RSS MB)");
    let shapes: [Shape; 5] = [
        (
            "unterminated nested multiparts",
            hostile_cases::unterminated_multiparts,
            5_000,
        ),
        ("HTML of '<' and '&'", hostile_cases::html_brackets, 200_000),
        (
            "subject of glued numbers",
            hostile_cases::long_subject,
            20_000,
        ),
        (
            "bounce listing recipients",
            hostile_cases::bounce_recipients,
            10_000,
        ),
        ("header fields", hostile_cases::many_headers, 20_000),
    ];
    let mut worst_shape: f64 = 0.0;
    for (name, make, n) in shapes {
        let (small, big) = (make(n), make(10 * n));
        let (ts, rs) = ingest(&small, 20 * n);
        let (tb, rb) = ingest(&big, 20 * n);
        let ratio =
            tb.saturating_sub(t0).as_secs_f64() / ts.saturating_sub(t0).as_secs_f64().max(1e-3);
        worst_shape = worst_shape.max(ratio);
        println!(
            "   {name:<32} {:>6.1} MB: {:>7.0} ms {:>6.1} MB | {:>6.1} MB: {:>7.0} ms {:>6.1} MB | time ×{ratio:.1}",
            mb(small.len() as u64),
            ts.as_secs_f64() * 1e3,
            mb(rs),
            mb(big.len() as u64),
            tb.as_secs_f64() * 1e3,
            mb(rb),
        );
    }
    println!("ratio: shapes: worst time growth for 10× the input: {worst_shape:.1} (linear: 10)");

    println!("\n3. B5: one message with a 50 MB attachment");
    let raw = hostile_cases::sized(50_000_000 * 4 / 3 + 50_000_000 * 4 / 3 / 76 * 2);
    let (t, rss) = ingest(&raw, 100);
    let bound = 3 * raw.len() as u64 + 50 * 1_000_000;
    println!(
        "   message {:.1} MB: ingest {:.2} s, peak RSS {:.1} MB; bound 3 × size + 50 MB = {:.1} MB",
        mb(raw.len() as u64),
        t.as_secs_f64(),
        mb(rss),
        mb(bound)
    );
    println!(
        "ratio: B5 peak RSS / bound: {:.2} (target ≤ 1.0)",
        rss as f64 / bound as f64
    );

    println!("\n4. idle serve");
    let dir = fresh(10_000, 100 << 20);
    let mut child = Command::new(BIN)
        .arg("serve")
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let md = dir.path().join("casegate-data/Maildir/new");
    let start = Instant::now();
    while !md.is_dir() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    // Let it settle (a few Maildir polls).
    std::thread::sleep(Duration::from_secs(3));
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let _ = child.kill();
    let _ = child.wait();
    let rss = rss_kb * 1024;
    println!("   RSS after 3 s idle: {:.1} MB (target ≤ 40 MB)", mb(rss));
    println!(
        "ratio: idle serve RSS / 40 MB: {:.2} (target ≤ 1.0)",
        rss as f64 / (40u64 << 20) as f64
    );
}
