//! API latency under concurrent load: `wrk` (Debian's) against the HTTP face `serve` runs
//! (the same router, listener and store pool, in this process), over loopback, with a store
//! holding a thread of 1,000 messages and a triage queue of 10,000.
//!
//! For each request: p50 and p99 over `CASEGATE_BENCH_SECS` (default 10) seconds with 16
//! connections on 2 wrk threads, every request authenticated with a bearer token; the web
//! page's triage queue with a session cookie too. Target: p99 ≤ 50 ms on the 2-core machine.
//!
//! Run: `cargo bench --bench http_api` (`./run bench http_api`). `CASEGATE_BENCH_SECS` sets
//! the seconds per request, `CASEGATE_BENCH_ONLY=page` runs only the requests whose
//! description contains that text.

use std::process::Command;
use std::time::{Duration, Instant};

use casegate::config::Settings;
use casegate::ops::{self, Actor, Context};
use casegate::store::{Disposition, MessageSource, NewMessage, Store, StoreError};
use casegate::tracking::{Kind, TrackingNumber};

const CASE: &str = "VU#409117";
const THREAD_MESSAGES: usize = 1_000;
const TRIAGE_MESSAGES: usize = 10_000;

fn message(tag: &str, i: usize) -> Vec<u8> {
    let mut body = String::new();
    for line in 0..30 {
        body.push_str(&format!(
            "Line {line} of message {i}: the parser reads past the end of the buffer.\r\n"
        ));
    }
    format!(
        "From: someone{i}@example.net\r\nTo: cert@example.test\r\nSubject: {tag} {i}\r\nMessage-ID: <{tag}-{i}@example.net>\r\n\r\n{body}"
    )
    .into_bytes()
}

/// The store: one case with 1,000 messages, 10,000 waiting in triage (one transaction each
/// batch, so preparing takes seconds, not the fsyncs of 11,000 commits).
fn prepare(settings: &Settings) -> String {
    let admin = Actor::named("cli:bench", false);
    ops::setup::init(settings, &admin).expect("init");
    let mut cx = Context::open(settings.clone()).expect("store");
    let n = TrackingNumber::parse(CASE).expect("number");
    ops::threads::open(&mut cx, &admin, Kind::Case, "FooRouter RCE", Some(&n)).expect("open");
    let token = ops::tokens::add(&mut cx, &admin, "bench", false)
        .expect("token")
        .token;
    drop(cx);
    let mut store = Store::open(&settings.store_path()).expect("store");
    let thread_id = store.thread(&n).expect("thread").expect("thread").id;
    let start = chrono::Utc::now() - chrono::Duration::days(10);
    for (tag, count, disposition) in [
        ("thread", THREAD_MESSAGES, Disposition::Post { thread_id }),
        ("triage", TRIAGE_MESSAGES, Disposition::Triage),
    ] {
        for chunk in (0..count).collect::<Vec<_>>().chunks(1000) {
            store
                .atomically(|s| {
                    for &i in chunk {
                        let raw = message(tag, i);
                        let m = NewMessage {
                            message_id: Some(format!("<{tag}-{i}@example.net>")),
                            sender: Some(format!("someone{i}@example.net")),
                            subject: Some(format!("{tag} {i}")),
                            reason: "no tracking number and an unknown sender".into(),
                            ..NewMessage::inbound(
                                &raw,
                                MessageSource::Stdin,
                                start + chrono::Duration::seconds(i as i64),
                                disposition.clone(),
                            )
                        };
                        s.commit_message(&m)?;
                    }
                    Ok::<_, StoreError>(())
                })
                .expect("commit");
        }
    }
    token
}

/// p50 and p99 (ms) as wrk prints them with `--latency`.
fn wrk(url: &str, header: &str, secs: u64) -> (f64, f64, f64) {
    let out = Command::new("wrk")
        .args(["-t2", "-c16", "--latency", "--timeout", "5s"])
        .arg(format!("-d{secs}s"))
        .args(["-H", header])
        .arg(url)
        .output()
        .expect("run wrk (apt-get install wrk; ./run bench installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let ms = |label: &str| -> f64 {
        text.lines()
            .find_map(|l| {
                let l = l.trim();
                l.strip_prefix(label).map(|v| v.trim().to_string())
            })
            .map(|v| {
                let (num, unit) =
                    v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
                let x: f64 = num.trim().parse().unwrap_or(f64::NAN);
                match unit {
                    "us" => x / 1000.0,
                    "ms" => x,
                    "s" => x * 1000.0,
                    "m" => x * 60_000.0,
                    _ => f64::NAN,
                }
            })
            .unwrap_or(f64::NAN)
    };
    let rps = text
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Requests/sec:")
                .map(|v| v.trim().parse().unwrap_or(f64::NAN))
        })
        .unwrap_or(f64::NAN);
    if text.contains("Non-2xx") || !out.status.success() {
        panic!("wrk saw errors for {url}:\n{text}");
    }
    (ms("50%"), ms("99%"), rps)
}

fn main() {
    // SAFETY: first thing in main, no other thread yet.
    unsafe { casegate::set_library_defaults() };
    let secs: u64 = std::env::var("CASEGATE_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings::load(None, Some(dir.path())).expect("settings");
    settings.config.http.listen = "127.0.0.1:0".into();
    let t0 = Instant::now();
    let token = prepare(&settings);
    eprintln!(
        "prepared {THREAD_MESSAGES} thread messages and {TRIAGE_MESSAGES} triaged in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let listener = runtime
        .block_on(casegate::http::bind(&settings))
        .expect("listen");
    let addr = listener.local_addr().expect("address");
    let server = runtime.spawn(casegate::http::run(listener, stop_rx));
    let base = format!("http://{addr}");
    let bearer = format!("Authorization: Bearer {token}");
    // A web session for the page (log-in form, then the cookie).
    let session = web_session(&base, &token);

    let case = CASE.replace('#', "%23");
    let runs: Vec<(&str, String, String)> = vec![
        (
            "API thread of 1,000 messages, first page (100)",
            format!("{base}/api/v1/threads/{case}"),
            bearer.clone(),
        ),
        (
            "API thread of 1,000 messages, last page (100)",
            format!("{base}/api/v1/threads/{case}?offset=900"),
            bearer.clone(),
        ),
        (
            "API triage queue of 10,000, first page (100)",
            format!("{base}/api/v1/triage"),
            bearer.clone(),
        ),
        (
            "API triage queue of 10,000, last page (100)",
            format!("{base}/api/v1/triage?offset=9900"),
            bearer.clone(),
        ),
        (
            "API thread list",
            format!("{base}/api/v1/threads"),
            bearer.clone(),
        ),
        (
            "page: triage queue (HTML, 100 of 10,000)",
            format!("{base}/"),
            format!("Cookie: {session}"),
        ),
        (
            "page: thread (HTML, newest 100 of 1,000)",
            format!("{base}/threads/{case}"),
            format!("Cookie: {session}"),
        ),
    ];
    println!("| request (16 connections, {secs} s each) | p50 | p99 | requests/s |");
    println!("|---|---|---|---|");
    let mut worst: f64 = 0.0;
    // `CASEGATE_BENCH_ONLY=page` runs only the requests whose description contains it.
    let only = std::env::var("CASEGATE_BENCH_ONLY").unwrap_or_default();
    for (what, url, header) in runs.iter().filter(|r| r.0.contains(only.as_str())) {
        // Warm the store's page cache and the pool first.
        let _ = wrk(url, header, 1);
        let (p50, p99, rps) = wrk(url, header, secs);
        worst = worst.max(p99);
        println!("| {what} | {p50:.1} ms | {p99:.1} ms | {rps:.0} |");
    }
    let _ = stop_tx.send(true);
    let _ = runtime.block_on(async { tokio::time::timeout(Duration::from_secs(15), server).await });
    println!(
        "ratio: worst p99 {worst:.1} ms against the 50 ms target = {:.2}",
        worst / 50.0
    );
}

/// Logs in through the page's form like a browser and returns the `Cookie` value.
fn web_session(base: &str, token: &str) -> String {
    let client = |args: Vec<String>| {
        let out = std::process::Command::new("curl")
            .args(["-s", "-D", "-", "-o", "/dev/null"])
            .args(args)
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let form = std::process::Command::new("curl")
        .args(["-s", "-D", "/dev/stderr", &format!("{base}/login")])
        .output()
        .expect("curl");
    let page = String::from_utf8_lossy(&form.stdout);
    let headers = String::from_utf8_lossy(&form.stderr);
    let nonce_cookie = headers
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("login cookie")
        .to_string();
    let at = page.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    let nonce = page[at..].split('"').next().unwrap_or("");
    let reply = client(vec![
        "-H".into(),
        format!("Cookie: {nonce_cookie}"),
        "--data".into(),
        format!("token={token}&csrf={nonce}"),
        format!("{base}/login"),
    ]);
    reply
        .lines()
        .filter_map(|l| l.strip_prefix("set-cookie: "))
        .find(|c| c.starts_with("casegate_session="))
        .and_then(|c| c.split(';').next())
        .expect("session cookie")
        .to_string()
}
