//! The spine end to end, through the binary only: a store set up with the CLI, every fixture in
//! `fixtures/spine/` ingested in one invocation, each decision checked against the table in
//! `fixtures/spine/README.md`, then the store read back (`show`, `triage list`), re-ingested
//! (everything is a duplicate) and routed dry (nothing is stored).
//!
//! Written against the contract in shared/interface.md and shared/tracking-numbers.md, not
//! against the implementation: a failure here is a disagreement with the contract.
//!
//! Every test runs twice: on the default SQLite store, and on a PostgreSQL database (a
//! `casegate.toml` with `[store] url`, the project's own test cluster).

#[path = "support/postgres.rs"]
mod pg;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use casegate::tracking::{Kind, TrackingNumber};
use serde_json::Value;

/// Which thread a fixture must end up in.
#[derive(Clone, Copy, Debug)]
enum Thread {
    /// Exactly this existing thread.
    Is(&'static str),
    /// Not routed: `thread` is null.
    Null,
    /// A report minted for this message (not one of the setup's numbers).
    NewReport,
    /// A General ticket minted for this message (not one of the setup's numbers).
    NewTicket,
    /// A duplicate: the thread of the original, or null.
    OriginalOrNull(&'static str),
}

struct Expect {
    file: &'static str,
    outcome: &'static str,
    thread: Thread,
    /// The routing reason `ingest --json` gives (a substring of `reason`).
    reason: &'static str,
    /// A step (exactly) that `route --dry-run` must show on the way to that decision (on a store
    /// where nothing was ingested yet), where the reason alone does not tell how it was reached.
    step: Option<&'static str>,
}

const fn e(
    file: &'static str,
    outcome: &'static str,
    thread: Thread,
    reason: &'static str,
    step: Option<&'static str>,
) -> Expect {
    Expect {
        file,
        outcome,
        thread,
        reason,
        step,
    }
}

const VU1: &str = "VU#409117";
const VU2: &str = "VU#563210";
const PROMOTED: &str = "VU#777001";
const REPORT: &str = "VRF#25-11-BKQTZ";
const TICKET: &str = "General-1042";
const BY_VU1: &str = "tracking number VU#409117";
const BY_VU2: &str = "tracking number VU#563210";
const BY_REPORT: &str = "tracking number VRF#25-11-BKQTZ";
const BY_TICKET: &str = "tracking number General-1042";
const BY_PROMOTED: &str = "tracking number VU#777001";
const REPLY_VU1: &str = "reply to our message VU#409117";
const NOT_PARTICIPANT: &str = "sender is not a participant of VU#409117";
const REPLIES_TO_NOTICE: Option<&str> =
    Some("replies to <notice-1@casegate.example.test>, which we sent in VU#409117");
const WAS_PROMOTED: Option<&str> = Some("VRF#25-10-CDFGH was promoted to VU#777001");

/// The table of fixtures/spine/README.md. Ingest order is this order (file name order).
#[rustfmt::skip]
const EXPECT: &[Expect] = &[
    e("01-vendor-reply-vu-hash.eml",          "routed",     Thread::Is(VU1), BY_VU1, None),
    e("02-vendor-lowercase-space.eml",        "routed",     Thread::Is(VU1), BY_VU1, None),
    e("03-vendor-dash.eml",                   "routed",     Thread::Is(VU1), BY_VU1, None),
    e("04-vendor-bracketed.eml",              "routed",     Thread::Is(VU1), BY_VU1, None),
    e("05-vendor-space.eml",                  "routed",     Thread::Is(VU2), BY_VU2, None),
    e("06-report-reply-vrf.eml",              "routed",     Thread::Is(REPORT), BY_REPORT, None),
    e("07-report-lowercase-vrf.eml",          "routed",     Thread::Is(REPORT), BY_REPORT, None),
    e("08-ticket-reply.eml",                  "routed",     Thread::Is(TICKET), BY_TICKET, None),
    e("09-ticket-lowercase.eml",              "routed",     Thread::Is(TICKET), BY_TICKET, None),
    e("10-thread-in-reply-to.eml",            "routed",     Thread::Is(VU1), REPLY_VU1, REPLIES_TO_NOTICE),
    e("11-thread-references-only.eml",        "routed",     Thread::Is(VU1), REPLY_VU1, REPLIES_TO_NOTICE),
    e("12-new-report-unknown-sender.eml",     "routed",     Thread::NewReport, "new report from an unknown sender",
      Some("unknown sender writing to the reporting address: a new report")),
    e("13-participant-no-number.eml",         "routed",     Thread::NewTicket, "new ticket for a known participant",
      Some("the sender is a known participant: a new General ticket")),
    e("14-ambiguous.eml",                     "triage",     Thread::Null, "ambiguous: VU#409117, VU#563210",
      Some("several known numbers lead to different threads: a person decides")),
    e("15-unknown-number.eml",                "triage",     Thread::Null, "unknown tracking number: VU#123456",
      Some("VU#123456 is not known to the store")),
    e("16-non-participant-quoting.eml",       "triage",     Thread::Null, NOT_PARTICIPANT,
      Some("exactly one known thread: VU#409117")),
    e("17-encoded-q-utf8.eml",                "routed",     Thread::Is(VU1), BY_VU1, None),
    e("18-encoded-b-utf8.eml",                "routed",     Thread::Is(VU1), BY_VU1, None),
    e("19-encoded-q-latin1.eml",              "routed",     Thread::Is(VU2), BY_VU2, None),
    e("20-encoded-b-latin1.eml",              "routed",     Thread::Is(REPORT), BY_REPORT, None),
    e("21-body-windows-1252.eml",             "routed",     Thread::Is(VU2), BY_VU2, None),
    e("22-body-shift-jis.eml",                "routed",     Thread::Is(VU1), BY_VU1, None),
    e("23-duplicate-of-01.eml",               "duplicate",  Thread::OriginalOrNull(VU1), "already stored", None),
    e("24-malformed-no-headers.eml",          "quarantine", Thread::Null, "cannot parse: not an email message", None),
    e("25-malformed-binary-nul.eml",          "quarantine", Thread::Null, "cannot parse: no From address", None),
    e("26-malformed-truncated-multipart.eml", "routed",     Thread::Is(VU1), BY_VU1, None),
    e("27-malformed-header-only.eml",         "routed",     Thread::Is(VU1), BY_VU1, None),
    e("28-malformed-long-header-line.eml",    "routed",     Thread::Is(VU1), BY_VU1, None),
    e("29-promoted-report.eml",               "routed",     Thread::Is(PROMOTED), BY_PROMOTED, WAS_PROMOTED),
    e("30-same-number-twice.eml",             "routed",     Thread::Is(VU1), BY_VU1, Some("subject names VU#409117")),
    e("31-html-only.eml",                     "routed",     Thread::Is(VU1), BY_VU1, None),
    e("32-attachments.eml",                   "routed",     Thread::Is(VU2), BY_VU2, None),
    e("33-unknown-sender-other-address.eml",  "triage",     Thread::Null, "no tracking number, not a reply, unknown sender",
      Some("unknown sender, not to the reporting address")),
    e("34-thread-reply-non-participant.eml",  "triage",     Thread::Null, NOT_PARTICIPANT, REPLIES_TO_NOTICE),
    e("35-report-and-its-case.eml",           "routed",     Thread::Is(PROMOTED), BY_PROMOTED, WAS_PROMOTED),
    e("36-unknown-ticket.eml",                "triage",     Thread::Null, "unknown tracking number: General-99999",
      Some("General-99999 is not known to the store")),
    e("37-lookalike-numbers-thread.eml",      "routed",     Thread::Is(VU1), REPLY_VU1, Some("no tracking number in the subject")),
];

/// The setup of fixtures/spine/README.md, run through the CLI.
#[rustfmt::skip]
const SETUP: &[&[&str]] = &[
    &["init"],
    &["open", "case", "--title", "Buffer overflow in FooRouter", "--number", "VU#409117"],
    &["participant", "add", "VU#409117", "--org", "FooCorp", "--email", "psirt@foocorp.example", "--role", "vendor"],
    &["participant", "add", "VU#409117", "--org", "FooCorp", "--email", "alice@foocorp.example", "--role", "vendor"],
    &["participant", "add", "VU#409117", "--org", "Reporter", "--email", "rita@reporter.example", "--role", "reporter"],
    &["open", "case", "--title", "Second case", "--number", "VU#563210"],
    &["participant", "add", "VU#563210", "--org", "BarSoft", "--email", "security@barsoft.example", "--role", "vendor"],
    &["open", "report", "--title", "XSS in BazCMS", "--number", "VRF#25-11-BKQTZ"],
    &["participant", "add", "VRF#25-11-BKQTZ", "--org", "Reporter2", "--email", "rob@reporter2.example", "--role", "reporter"],
    &["open", "report", "--title", "Promoted one", "--number", "VRF#25-10-CDFGH"],
    &["participant", "add", "VRF#25-10-CDFGH", "--org", "FooCorp", "--email", "psirt@foocorp.example", "--role", "vendor"],
    &["promote", "VRF#25-10-CDFGH", "--to", "VU#777001"],
    &["open", "ticket", "--title", "Question", "--number", "General-1042"],
    &["participant", "add", "General-1042", "--org", "FooCorp", "--email", "psirt@foocorp.example", "--role", "vendor"],
    &["debug", "record-sent", "--message-id", "<notice-1@casegate.example.test>", "--thread", "VU#409117"],
];

const SETUP_NUMBERS: &[&str] = &[
    "VU#409117",
    "VU#563210",
    "VRF#25-11-BKQTZ",
    "VRF#25-10-CDFGH",
    "VU#777001",
    "General-1042",
];

/// A scratch working directory (so no stray `casegate.toml` is picked up) with the store in it.
struct Store {
    _dir: tempfile::TempDir,
    cwd: PathBuf,
    data: PathBuf,
}

/// The two store backends every test here runs on.
const BACKENDS: [&str; 2] = ["sqlite", "postgres"];

impl Store {
    fn new(backend: &str) -> Store {
        eprintln!("--- on {backend}");
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path().to_path_buf();
        let data = cwd.join("data");
        if backend == "postgres" {
            let server = pg::PgServer::shared();
            let db = server.create_database();
            std::fs::write(
                cwd.join("casegate.toml"),
                format!(
                    "[store]\nurl = \"{}\"\npassword_file = \"{}\"\ntls = \"none\"\n",
                    server.url(&db),
                    server.password_file.display()
                ),
            )
            .unwrap();
        }
        let store = Store {
            _dir: dir,
            cwd,
            data,
        };
        for args in SETUP {
            let out = store.run(args);
            assert!(
                out.status.success(),
                "setup step `casegate {}` failed ({:?}):\n{}",
                args.join(" "),
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        store
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_casegate"))
            .current_dir(&self.cwd)
            .arg("--data-dir")
            .arg(&self.data)
            .args(args)
            .env_remove("CASEGATE_IMAP_PASSWORD")
            .output()
            .unwrap()
    }

    /// Runs a `--json` command, demands exit 0, and returns its JSON lines.
    fn json(&self, args: &[&str]) -> (String, Vec<Value>) {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(0),
            "`casegate {}` exit code; stderr:\n{stderr}",
            args.join(" ")
        );
        assert!(!stderr.contains("panicked"), "panic: {stderr}");
        let stdout = String::from_utf8(out.stdout).unwrap();
        (stdout.clone(), json_lines(&stdout, args))
    }
}

fn json_lines(stdout: &str, args: &[&str]) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| {
                panic!(
                    "`casegate {}` printed a non-JSON line ({e}): {l:?}",
                    args.join(" ")
                )
            });
            assert!(v.is_object(), "not one object per line: {l}");
            v
        })
        .collect()
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/spine")
}

/// Every .eml fixture, in file-name order; the table must cover exactly these.
fn fixtures() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixture_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    let on_disk: Vec<String> = files.iter().map(|p| file_name(p)).collect();
    let in_table: Vec<String> = EXPECT.iter().map(|e| e.file.to_owned()).collect();
    assert_eq!(
        on_disk, in_table,
        "fixtures/spine and the expectation table disagree"
    );
    files
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// The Message-ID a fixture carries, as the contract prints it (`<...>`).
fn message_id(path: &Path) -> Option<String> {
    let raw = std::fs::read(path).unwrap();
    let msg = mail_parser::MessageParser::default().parse(&raw)?;
    msg.message_id().map(|id| format!("<{id}>"))
}

/// Every string anywhere in a list of JSON values.
fn strings(values: &[Value]) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(o) => o.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    values.iter().for_each(|v| walk(v, &mut out));
    out
}

/// Does some string in the output name this Message-ID (with or without angle brackets)?
fn mentions(all: &[String], id: &str) -> bool {
    let bare = id.trim_start_matches('<').trim_end_matches('>');
    all.iter().any(|s| s.contains(bare))
}

fn path_args(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect()
}

/// Pairs each fixture with its output line, by `source`.
fn by_source<'a>(paths: &[PathBuf], lines: &'a [Value]) -> BTreeMap<String, &'a Value> {
    assert_eq!(
        lines.len(),
        paths.len(),
        "one JSON line per message; got {} for {} fixtures",
        lines.len(),
        paths.len()
    );
    let mut map = BTreeMap::new();
    for line in lines {
        let source = line["source"]
            .as_str()
            .unwrap_or_else(|| panic!("no string `source` in {line}"));
        let name = file_name(Path::new(source));
        assert!(
            map.insert(name.clone(), line).is_none(),
            "two lines for {name}"
        );
    }
    map
}

#[test]
fn ingest_routes_every_fixture_as_the_readme_says() {
    for backend in BACKENDS {
        ingest_routes_every_fixture(backend);
    }
}

fn ingest_routes_every_fixture(backend: &str) {
    let store = Store::new(backend);
    let paths = fixtures();
    let mut args = vec!["ingest".to_owned(), "--json".to_owned()];
    args.extend(path_args(&paths));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_, lines) = store.json(&args);
    let lines = by_source(&paths, &lines);

    let mut problems = Vec::new();
    let mut minted = BTreeSet::new();
    let mut in_vu1 = BTreeSet::new();
    let mut not_in_vu1 = BTreeSet::new();
    let mut triaged = BTreeSet::new();
    let mut not_triaged = BTreeSet::new();
    for (exp, path) in EXPECT.iter().zip(&paths) {
        let Some(line) = lines.get(exp.file) else {
            problems.push(format!("{}: no output line", exp.file));
            continue;
        };
        let outcome = line["outcome"].as_str().unwrap_or("<missing>");
        let thread = line["thread"].as_str();
        let reason = line["reason"].as_str().unwrap_or("");
        let mut bad = |what: String| problems.push(format!("{}: {what}; line: {line}", exp.file));

        if outcome != exp.outcome {
            bad(format!("outcome {outcome:?}, expected {:?}", exp.outcome));
        }
        match exp.thread {
            Thread::Is(n) if thread != Some(n) => bad(format!("thread {thread:?}, expected {n}")),
            Thread::Null if thread.is_some() => bad(format!("thread {thread:?}, expected null")),
            Thread::OriginalOrNull(n) if thread.is_some_and(|t| t != n) => {
                bad(format!("thread {thread:?}, expected {n} or null"))
            }
            Thread::NewReport | Thread::NewTicket => {
                let want = if matches!(exp.thread, Thread::NewReport) {
                    Kind::Report
                } else {
                    Kind::Ticket
                };
                match thread.map(TrackingNumber::parse) {
                    Some(Ok(n))
                        if n.kind() == want
                            && n.as_str() == thread.unwrap_or_default()
                            && !SETUP_NUMBERS.contains(&n.as_str()) =>
                    {
                        minted.insert(n.as_str().to_owned());
                    }
                    _ => bad(format!("thread {thread:?}, expected a newly minted {want}")),
                }
            }
            _ => {}
        }
        if !reason.contains(exp.reason) {
            bad(format!("reason {reason:?} lacks {:?}", exp.reason));
        }
        if line["encrypted"] != Value::Bool(false) {
            bad(format!("encrypted {}, expected false", line["encrypted"]));
        }
        if line["signature"] != "none" {
            bad(format!(
                "signature {}, expected \"none\"",
                line["signature"]
            ));
        }
        if !line["signer"].is_null() {
            bad(format!("signer {}, expected null", line["signer"]));
        }
        if let Some(id) = message_id(path) {
            if line["message_id"].as_str() != Some(id.as_str()) {
                bad(format!("message_id {}, expected {id}", line["message_id"]));
            }
            let routed_to_vu1 = matches!(exp.thread, Thread::Is(VU1));
            if routed_to_vu1 || exp.file.starts_with("23-") {
                in_vu1.insert(id.clone());
            } else {
                not_in_vu1.insert(id.clone());
            }
            if exp.outcome == "triage" {
                triaged.insert(id);
            } else {
                not_triaged.insert(id);
            }
        }
    }
    assert_eq!(
        minted.len(),
        2,
        "one new report and one new ticket: {minted:?}"
    );
    assert!(
        problems.is_empty(),
        "{} mismatches:\n{}",
        problems.len(),
        problems.join("\n")
    );

    // The store agrees with what ingest said.
    let (show_text, show) = store.json(&["show", VU1, "--json"]);
    let shown = strings(&show);
    for id in &in_vu1 {
        assert!(mentions(&shown, id), "show {VU1} lacks {id}:\n{show_text}");
    }
    for id in &not_in_vu1 {
        assert!(
            !mentions(&shown, id),
            "show {VU1} has {id}, routed elsewhere:\n{show_text}"
        );
    }
    let (triage_text, triage) = store.json(&["triage", "list", "--json"]);
    let listed = strings(&triage);
    assert_eq!(
        triage.len(),
        triaged.len(),
        "one triage line per triaged message:\n{triage_text}"
    );
    for id in &triaged {
        assert!(
            mentions(&listed, id),
            "triage list lacks {id}:\n{triage_text}"
        );
    }
    for id in &not_triaged {
        assert!(
            !mentions(&listed, id),
            "triage list has {id}, not triaged:\n{triage_text}"
        );
    }
    let (list_text, _) = store.json(&["list", "--json"]);
    for n in &minted {
        assert!(
            list_text.contains(n.as_str()),
            "list lacks minted {n}:\n{list_text}"
        );
    }

    // Again: every message is already stored, nothing changes.
    let (_, again) = store.json(&args);
    let again = by_source(&paths, &again);
    let not_dup: Vec<String> = again
        .iter()
        .filter(|(_, l)| l["outcome"] != "duplicate")
        .map(|(f, l)| format!("{f}: {l}"))
        .collect();
    assert!(
        not_dup.is_empty(),
        "re-ingest must give only duplicates:\n{}",
        not_dup.join("\n")
    );
    assert_eq!(
        store.json(&["show", VU1, "--json"]).0,
        show_text,
        "re-ingest changed the case"
    );
    assert_eq!(store.json(&["triage", "list", "--json"]).0, triage_text);
    assert_eq!(
        store.json(&["list", "--json"]).0,
        list_text,
        "re-ingest created threads"
    );
}

#[test]
fn route_dry_run_explains_the_same_decisions_and_stores_nothing() {
    for backend in BACKENDS {
        route_dry_run_explains_the_same_decisions_and_stores_nothing_on(backend);
    }
}

fn route_dry_run_explains_the_same_decisions_and_stores_nothing_on(backend: &str) {
    let store = Store::new(backend);
    let paths = fixtures();
    let (list_before, before) = store.json(&["list", "--json"]);
    let listed = strings(&before);
    for n in SETUP_NUMBERS.iter().filter(|n| !n.starts_with("VRF#25-10")) {
        assert!(
            listed.iter().any(|s| s == n),
            "setup thread {n} not listed:\n{list_before}"
        );
    }

    let mut args = vec![
        "route".to_owned(),
        "--dry-run".to_owned(),
        "--json".to_owned(),
    ];
    args.extend(path_args(&paths));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_, lines) = store.json(&args);
    let lines = by_source(&paths, &lines);
    // The decision is the same as ingest's where it does not depend on earlier messages, for
    // the same reason, and the steps show how it was reached.
    for exp in EXPECT.iter().filter(|e| e.outcome != "duplicate") {
        let line = lines[exp.file];
        assert_eq!(line["outcome"], exp.outcome, "{}: {line}", exp.file);
        if let Thread::Is(n) = exp.thread {
            assert_eq!(line["thread"], n, "{}: {line}", exp.file);
        }
        let reason = line["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(exp.reason), "{}: {line}", exp.file);
        if let Some(step) = exp.step {
            let steps: Vec<&str> = line["steps"]
                .as_array()
                .map(|a| a.iter().filter_map(|s| s.as_str()).collect())
                .unwrap_or_default();
            assert!(
                steps.contains(&step),
                "{}: no step {step:?} in {steps:?}",
                exp.file
            );
        }
    }

    assert_eq!(
        store.json(&["list", "--json"]).0,
        list_before,
        "dry run created threads"
    );
    let (triage_text, triage) = store.json(&["triage", "list", "--json"]);
    assert!(
        triage.is_empty(),
        "dry run filled the triage queue:\n{triage_text}"
    );
    let (show_text, show) = store.json(&["show", VU1, "--json"]);
    let shown = strings(&show);
    for p in &paths {
        if let Some(id) = message_id(p) {
            assert!(!mentions(&shown, &id), "dry run stored {id}:\n{show_text}");
        }
    }
    // Not even remembered for de-duplication.
    let first = path_args(&paths[..1]);
    let (_, once) = store.json(&["ingest", "--json", &first[0]]);
    assert_eq!(once.len(), 1);
    assert_eq!(once[0]["outcome"], "routed", "{}", once[0]);
}
