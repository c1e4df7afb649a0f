//! The `casegate` command line (shared/interface.md is its contract): parses arguments, calls
//! the library, prints, and maps errors to exit codes — 0 success, 1 the command ran but
//! something failed (stderr says what and what to do), 2 usage error. Never a panic trace.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use chrono::Utc;
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use casegate::app;
use casegate::config::Settings;
use casegate::keyring;
use casegate::outbox;
use casegate::store::{Store, StoredCert, time_text};
use casegate::tracking::{Kind, TrackingNumber};

#[derive(Parser)]
#[command(
    name = "casegate",
    version,
    about = "The email face of a vulnerability coordinator"
)]
struct Cli {
    /// TOML configuration (default: ./casegate.toml if present, else built-in defaults).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Store, keys and quarantine (default: ./casegate-data, created on first use).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Log detail: error, warn, info, debug (or RUST_LOG).
    #[arg(long, global = true, value_name = "LEVEL")]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the data dir, the store and a coordinator OpenPGP key if none exists.
    Init(JsonFlag),
    /// The daemon: Maildir drop folder and IMAP in, outbox out, until SIGTERM/SIGINT.
    Serve,
    /// Report what would stop the daemon (keys, store, IMAP, SMTP), one line each.
    Check(JsonFlag),
    /// Per watched mailbox: last UID, messages and quarantined today; queue and triage sizes.
    Status(JsonFlag),
    /// Create a case, report or ticket.
    Open {
        kind: Kind,
        #[arg(long)]
        title: String,
        /// Use this number instead of minting one.
        #[arg(long)]
        number: Option<TrackingNumber>,
        #[arg(long)]
        json: bool,
    },
    /// Turn a report (VRF#) into a case.
    Promote {
        report: TrackingNumber,
        #[arg(long)]
        to: Option<TrackingNumber>,
        #[arg(long)]
        json: bool,
    },
    /// A thread with its participants and messages.
    Show {
        number: TrackingNumber,
        #[arg(long)]
        json: bool,
    },
    /// Threads, oldest first.
    List {
        #[arg(long)]
        kind: Option<Kind>,
        #[arg(long)]
        json: bool,
    },
    /// Change a thread's policy: signed vendor statements, planned publication date.
    Set {
        number: TrackingNumber,
        /// Vendors' mail to this thread counts as a statement only when signed by their bound key.
        #[arg(long, value_name = "true|false")]
        require_signed_statements: Option<bool>,
        /// Planned publication (YYYY-MM-DD or RFC 3339); `none` clears it (default: 45 days after first notice).
        #[arg(long, value_name = "DATE")]
        publication_date: Option<String>,
    },
    /// Participants of threads.
    #[command(subcommand)]
    Participant(ParticipantCmd),
    /// OpenPGP certificates.
    #[command(subcommand)]
    Key(KeyCmd),
    /// Run messages through the pipeline and store them.
    Ingest {
        #[arg(long)]
        json: bool,
        /// .eml files, mbox files, Maildirs, or - for one message on stdin.
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Explain the routing decision for messages without storing anything.
    Route {
        /// Required: routing only ever runs as a dry run from the command line.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Queue one encrypted, signed copy of a notice per contact of the chosen participants.
    Notify {
        number: TrackingNumber,
        /// The notice text (UTF-8).
        #[arg(long, value_name = "FILE")]
        body: PathBuf,
        /// Default: the thread's title.
        #[arg(long)]
        subject: Option<String>,
        /// An organisation, or `all`.
        #[arg(long, default_value = "all", value_name = "ORG|all")]
        to: String,
        /// Message-ID of the message this answers.
        #[arg(long, value_name = "MESSAGE-ID")]
        in_reply_to: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The durable outbox: one row per recipient copy.
    #[command(subcommand)]
    Outbox(OutboxCmd),
    /// Messages waiting for a person.
    #[command(subcommand)]
    Triage(TriageCmd),
    /// Messages kept raw because they could not be parsed or opened.
    #[command(subcommand)]
    Quarantine(QuarantineCmd),
    /// The store itself: copy it between SQLite and PostgreSQL.
    #[command(subcommand)]
    Store(StoreCmd),
    /// Test and maintenance helpers (not part of the stable interface).
    #[command(subcommand, hide = true)]
    Debug(DebugCmd),
}

#[derive(Args)]
struct JsonFlag {
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum ParticipantCmd {
    /// Add a contact of organisation ORG to a thread.
    Add {
        number: TrackingNumber,
        #[arg(long)]
        org: String,
        #[arg(long)]
        email: String,
        /// The contact's OpenPGP certificate; it is imported and bound to the contact.
        #[arg(long, value_name = "FILE.asc")]
        key: Option<PathBuf>,
        #[arg(long, default_value = "vendor", value_parser = ["vendor", "reporter", "coordinator", "other"])]
        role: String,
        #[arg(long)]
        json: bool,
    },
    /// Contacts of a thread.
    List {
        number: TrackingNumber,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum KeyCmd {
    /// Import OpenPGP certificates (armored or binary, one or many).
    Import {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Known certificates.
    List(JsonFlag),
    /// Print an armored public certificate (default: the coordinator's).
    Export { fingerprint: Option<String> },
}

#[derive(Subcommand)]
enum OutboxCmd {
    /// Per recipient: status, attempts, last SMTP reply, key used.
    List {
        /// Only this thread.
        number: Option<TrackingNumber>,
        /// Only this status (queued, sent, retrying, held, dead, bounced).
        #[arg(long)]
        status: Option<String>,
        /// Also every SMTP attempt of each copy: when, outcome, the server's reply
        /// (`attempt_log` in --json).
        #[arg(long)]
        attempts: bool,
        #[arg(long)]
        json: bool,
    },
    /// Seal and queue held copies whose contact now has a valid key.
    Release {
        number: Option<TrackingNumber>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum TriageCmd {
    List {
        /// Include messages a person already assigned.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Post a triaged message (by Message-ID) into a thread.
    Assign {
        message_id: String,
        number: TrackingNumber,
        /// Who decided (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
}

#[derive(Subcommand)]
enum QuarantineCmd {
    List(JsonFlag),
}

#[derive(Subcommand)]
enum StoreCmd {
    /// Copy every table into an empty store, verifying row counts and SHA-256 digests; stop
    /// the instances first. A postgres:// URL takes its password and TLS from [store].
    Copy {
        /// Source: a postgres:// URL or a SQLite file (default: the configured store).
        #[arg(long, value_name = "URL|PATH")]
        from: Option<String>,
        /// Target, created or empty: a postgres:// URL or a SQLite file (default: the
        /// configured store).
        #[arg(long, value_name = "URL|PATH")]
        to: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum DebugCmd {
    /// Record a Message-ID as sent by us in a thread (for tests of reply routing).
    RecordSent {
        #[arg(long)]
        message_id: String,
        #[arg(long)]
        thread: TrackingNumber,
    },
}

fn main() -> ExitCode {
    // SAFETY: first statement of main, before any thread exists.
    unsafe { casegate::library_backtraces_off() };
    // A panic is a bug in casegate; say so in one line, never with a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "casegate: internal error{at}; please report it. Nothing was acknowledged that was not stored."
        );
    }));
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(2),
            };
        }
    };
    // The daemon reports what it does; one-shot commands only warn.
    let default_level = if matches!(cli.command, Command::Serve) {
        "info"
    } else {
        "warn"
    };
    init_logging(cli.log.as_deref(), default_level);
    match std::panic::catch_unwind(|| run(cli)) {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(1)
        }
        Err(_) => ExitCode::from(1),
    }
}

fn one_line(e: &anyhow::Error) -> String {
    let mut s = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
    }
    s.replace('\n', " ")
}

fn init_logging(level: Option<&str>, default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = match level {
        Some(l) => EnvFilter::new(l),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level)),
    };
    // Logs go to stderr: stdout belongs to results (one JSON object per line with --json).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(cli.config.as_deref(), cli.data_dir.as_deref())?;
    match cli.command {
        Command::Init(f) => cmd_init(&settings, f.json),
        Command::Serve => cmd_serve(&settings),
        Command::Check(f) => cmd_check(&settings, f.json),
        Command::Status(f) => cmd_status(&settings, f.json),
        Command::Open {
            kind,
            title,
            number,
            json,
        } => cmd_open(&settings, kind, &title, number.as_ref(), json),
        Command::Promote { report, to, json } => cmd_promote(&settings, &report, to.as_ref(), json),
        Command::Show { number, json } => cmd_show(&settings, &number, json),
        Command::Set {
            number,
            require_signed_statements,
            publication_date,
        } => cmd_set(
            &settings,
            &number,
            require_signed_statements,
            publication_date.as_deref(),
        ),
        Command::List { kind, json } => cmd_list(&settings, kind, json),
        Command::Participant(ParticipantCmd::Add {
            number,
            org,
            email,
            key,
            role,
            json,
        }) => cmd_participant_add(
            &settings,
            &number,
            &org,
            &email,
            key.as_deref(),
            &role,
            json,
        ),
        Command::Participant(ParticipantCmd::List { number, json }) => {
            cmd_participant_list(&settings, &number, json)
        }
        Command::Key(KeyCmd::Import { file, json }) => cmd_key_import(&settings, &file, json),
        Command::Key(KeyCmd::List(f)) => cmd_key_list(&settings, f.json),
        Command::Key(KeyCmd::Export { fingerprint }) => {
            cmd_key_export(&settings, fingerprint.as_deref())
        }
        Command::Ingest { json, paths } => cmd_ingest(&settings, &paths, json, false),
        Command::Route {
            dry_run,
            json,
            paths,
        } => {
            if !dry_run {
                eprintln!(
                    "error: `casegate route` only runs as `route --dry-run`; to store messages use `casegate ingest`"
                );
                return Ok(ExitCode::from(2));
            }
            cmd_ingest(&settings, &paths, json, true)
        }
        Command::Notify {
            number,
            body,
            subject,
            to,
            in_reply_to,
            json,
        } => cmd_notify(
            &settings,
            &number,
            &body,
            subject.as_deref(),
            &to,
            in_reply_to.as_deref(),
            json,
        ),
        Command::Outbox(OutboxCmd::List {
            number,
            status,
            attempts,
            json,
        }) => cmd_outbox_list(&settings, number.as_ref(), status, attempts, json),
        Command::Outbox(OutboxCmd::Release { number, json }) => {
            cmd_outbox_release(&settings, number.as_ref(), json)
        }
        Command::Triage(TriageCmd::List { all, json }) => cmd_triage_list(&settings, all, json),
        Command::Triage(TriageCmd::Assign {
            message_id,
            number,
            by,
        }) => cmd_triage_assign(&settings, &message_id, &number, by),
        Command::Quarantine(QuarantineCmd::List(f)) => cmd_quarantine_list(&settings, f.json),
        Command::Store(StoreCmd::Copy { from, to, json }) => {
            cmd_store_copy(&settings, from.as_deref(), to.as_deref(), json)
        }
        Command::Debug(DebugCmd::RecordSent { message_id, thread }) => {
            let mut store = app::open_store(&settings)?;
            let t = existing_thread(&store, &thread)?;
            store.record_sent(&message_id, t.id)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, v)?;
    out.write_all(b"\n")?;
    Ok(())
}

fn existing_thread(store: &Store, n: &TrackingNumber) -> anyhow::Result<casegate::store::Thread> {
    store.thread(n)?.ok_or_else(|| {
        anyhow!(
            "no thread {n}; see `casegate list`, or create it with `casegate open {} --title ...`",
            n.kind()
        )
    })
}

/// The thread `n` names, or the case a promoted report became.
fn resolved_thread(store: &Store, n: &TrackingNumber) -> anyhow::Result<casegate::store::Thread> {
    store
        .resolve_thread(n)?
        .ok_or_else(|| anyhow!("no thread {n}; see `casegate list`"))
}

/// `resolved_thread`'s id, when a number is given.
fn resolved_thread_id(store: &Store, n: Option<&TrackingNumber>) -> anyhow::Result<Option<i64>> {
    n.map(|n| resolved_thread(store, n).map(|t| t.id))
        .transpose()
}

fn cmd_init(settings: &Settings, json: bool) -> anyhow::Result<ExitCode> {
    let done = app::init(settings)?;
    if json {
        print_json(&done)?;
    } else {
        println!("{}", done.fingerprint);
        eprintln!(
            "casegate: data in {} ({}), coordinator key {}",
            done.data_dir,
            if done.created_key {
                "key created"
            } else {
                "key already present"
            },
            done.key_file
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_serve(settings: &Settings) -> anyhow::Result<ExitCode> {
    casegate::daemon::serve(settings.clone())?;
    Ok(ExitCode::SUCCESS)
}

fn cmd_check(settings: &Settings, json: bool) -> anyhow::Result<ExitCode> {
    let findings = casegate::check::run(settings);
    let mut all_ok = true;
    for f in &findings {
        all_ok &= f.ok;
        if json {
            print_json(f)?;
        } else {
            println!(
                "{} {}: {}",
                if f.ok { "ok  " } else { "FAIL" },
                f.check,
                f.detail
            );
        }
    }
    if !all_ok {
        eprintln!(
            "error: casegate check found problems that would stop the daemon; fix the lines marked FAIL"
        );
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn cmd_status(settings: &Settings, json: bool) -> anyhow::Result<ExitCode> {
    let store = app::open_store(settings)?;
    let midnight = Utc::now()
        .date_naive()
        .and_time(chrono::NaiveTime::MIN)
        .and_utc();
    let triage = store.triage(false)?.len();
    let quarantined = store.quarantined()?.len();
    if json {
        for m in store.mailbox_summaries(midnight)? {
            let mut v = serde_json::to_value(&m)?;
            v["kind"] = json!("mailbox");
            print_json(&v)?;
        }
        for l in store.mailbox_leases()? {
            let mut v = serde_json::to_value(&l)?;
            v["kind"] = json!("lease");
            print_json(&v)?;
        }
        print_json(&json!({"kind": "queues", "triage": triage, "quarantine": quarantined}))?;
    } else {
        for m in store.mailbox_summaries(midnight)? {
            println!(
                "imap {}/{}: last UID {} (UIDVALIDITY {}), today {} stored, {} quarantined, checkpoint {}",
                m.account,
                m.mailbox,
                m.last_uid,
                m.uidvalidity,
                m.stored_since,
                m.quarantined_since,
                m.updated_at
            );
        }
        for l in store.mailbox_leases()? {
            println!(
                "lease {}/{}: watched by {} until {}",
                l.account, l.mailbox, l.owner, l.expires_at
            );
        }
        println!("triage: {triage} waiting; quarantine: {quarantined} kept");
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_store_copy(
    settings: &Settings,
    from: Option<&str>,
    to: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if from.is_none() && to.is_none() {
        bail!(
            "say where to copy: `casegate store copy --to postgres://USER@HOST/DB` (from the configured store) or `--from FILE.sqlite` (into it)"
        );
    }
    let location = |arg: Option<&str>| match arg {
        Some(a) => app::location_from_arg(settings, a),
        None => app::store_location(settings),
    };
    let (source, target) = (location(from)?, location(to)?);
    if source.to_string() == target.to_string() {
        bail!("--from and --to are the same store ({source})");
    }
    if let casegate::store::Location::Sqlite(p) = &source
        && !p.exists()
    {
        bail!("the source {} does not exist", p.display());
    }
    let mut from_store = app::open_store_at(&source)?;
    let mut to_store = app::open_store_at(&target)?;
    let report = casegate::store::copy_store(&mut from_store, &mut to_store)
        .with_context(|| format!("copying {source} to {target}"))?;
    if json {
        print_json(
            &json!({"from": source.to_string(), "to": target.to_string(), "schema_version": report.schema_version, "tables": report.tables}),
        )?;
    } else {
        for t in &report.tables {
            println!("{:<18} {:>9} rows  sha256 {}", t.table, t.rows, t.sha256);
        }
        eprintln!(
            "casegate: copied {} tables from {source} to {target}; counts and digests verified on both sides",
            report.tables.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_open(
    settings: &Settings,
    kind: Kind,
    title: &str,
    number: Option<&TrackingNumber>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut store = app::open_store(settings)?;
    let t = store.create_thread(kind, number, title, Utc::now())?;
    if json {
        print_json(&json!({"number": t.number, "kind": t.kind, "title": t.title}))?;
    } else {
        println!("{}", t.number);
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_promote(
    settings: &Settings,
    report: &TrackingNumber,
    to: Option<&TrackingNumber>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut store = app::open_store(settings)?;
    let case = store.promote(report, to, Utc::now())?;
    if json {
        print_json(
            &json!({"number": case.number, "kind": case.kind, "title": case.title, "promoted_from": report}),
        )?;
    } else {
        println!("{}", case.number);
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_show(settings: &Settings, n: &TrackingNumber, json: bool) -> anyhow::Result<ExitCode> {
    let store = app::open_store(settings)?;
    let own = existing_thread(&store, n)?;
    // A promoted report is shown as the case it became.
    let t = store.resolve_thread(n)?.unwrap_or(own);
    let contacts = store.contacts(t.id)?;
    let messages = store.thread_messages(t.id)?;
    let outbound = outbox::list(
        &store,
        &casegate::store::outbox::OutboxFilter {
            thread_id: Some(t.id),
            status: None,
        },
    )?;
    if json {
        print_json(&json!({
            "number": t.number, "kind": t.kind, "title": t.title, "status": t.status,
            "created_at": t.created_at, "promoted_to": t.promoted_to,
            "require_signed_statements": t.require_signed_statements,
            "participants": contacts, "messages": messages, "outbox": outbound,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("{} [{}] {}", t.number, t.kind, t.title);
    println!("  status {}, created {}", t.status, t.created_at);
    if n != &t.number {
        println!("  (you asked for {n}, which was promoted to {})", t.number);
    }
    println!("participants:");
    for c in &contacts {
        let keys = if c.key_fingerprints.is_empty() {
            "no key".to_string()
        } else {
            c.key_fingerprints.join(", ")
        };
        println!("  {:<20} {:<9} {}  ({keys})", c.org, c.role, c.address);
    }
    println!("messages:");
    for m in &messages {
        println!(
            "  {} {:<3} {}  {}",
            m.received_at,
            m.direction,
            m.sender.as_deref().unwrap_or("-"),
            m.subject.as_deref().unwrap_or("(no subject)")
        );
        println!(
            "      encrypted: {}  signature: {}{}  routed: {}",
            if m.encrypted { "yes" } else { "no" },
            m.signature,
            m.signer
                .as_deref()
                .map(|s| format!(" by {s}"))
                .unwrap_or_default(),
            m.reason
        );
        if let Some(r) = &m.signature_reason
            && m.signature != "none"
        {
            println!("      signature: {r}");
        }
    }
    if !outbound.is_empty() {
        println!("outbound (one copy per recipient):");
        for row in &outbound {
            println!("  {row}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_set(
    settings: &Settings,
    n: &TrackingNumber,
    require_signed: Option<bool>,
    publication: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let mut store = app::open_store(settings)?;
    let t = resolved_thread(&store, n)?;
    if let Some(on) = require_signed {
        store.set_require_signed_statements(t.id, on)?;
    }
    if let Some(p) = publication {
        let value = if p == "none" {
            None
        } else if let Ok(d) = chrono::NaiveDate::parse_from_str(p, "%Y-%m-%d") {
            Some(time_text(d.and_time(chrono::NaiveTime::MIN).and_utc()))
        } else if let Ok(t) = chrono::DateTime::parse_from_rfc3339(p) {
            Some(time_text(t.with_timezone(&Utc)))
        } else {
            bail!(
                "--publication-date {p:?} is not a date; write YYYY-MM-DD, an RFC 3339 time, or none"
            );
        };
        store.set_publication_date(t.id, value.as_deref())?;
    }
    let t = store.thread_by_id(t.id)?;
    println!(
        "{}: require signed statements {}, publication {}",
        t.number,
        t.require_signed_statements,
        t.publication_date
            .as_deref()
            .unwrap_or("default (45 days after first notice)")
    );
    Ok(ExitCode::SUCCESS)
}

fn cmd_list(settings: &Settings, kind: Option<Kind>, json: bool) -> anyhow::Result<ExitCode> {
    let store = app::open_store(settings)?;
    for s in store.list_threads(kind)? {
        if json {
            print_json(&s)?;
        } else {
            let waiting = match &s.waiting_since {
                Some(w) if s.overdue => format!("  OVERDUE: waiting since {w}"),
                Some(w) => format!("  waiting since {w}"),
                None => String::new(),
            };
            let publish = s
                .planned_publication
                .as_deref()
                .map(|p| format!("  publish {p}"))
                .unwrap_or_default();
            println!(
                "{:<18} {:<7} {:<9} {:>3} msgs  {}{waiting}{publish}",
                s.thread.number.as_str(),
                s.thread.kind.as_str(),
                s.thread.status,
                s.messages,
                s.thread.title
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Imports certificates from a file into the store; returns their summaries.
fn import_keys(
    store: &mut Store,
    file: &std::path::Path,
) -> anyhow::Result<Vec<keyring::CertSummary>> {
    let bytes = std::fs::read(file)
        .with_context(|| format!("cannot read {}; check the path", file.display()))?;
    // Self-signatures checked here need not be checked again by later commands.
    let before = casegate::signature_cache::snapshot();
    let certs = keyring::parse_certs(&bytes)
        .with_context(|| format!("{} holds no usable OpenPGP certificate", file.display()))?;
    let mut out = Vec::new();
    for cert in certs {
        let summary = keyring::summarize(&cert);
        store.put_cert(&StoredCert {
            fingerprint: summary.fingerprint.clone(),
            public_cert: keyring::public_bytes(&cert),
            user_ids: summary.user_ids.clone(),
            imported_at: time_text(Utc::now()),
        })?;
        out.push(summary);
    }
    casegate::signature_cache::save_since(store, &before)?;
    Ok(out)
}

/// Copies held for want of a key go out as soon as a usable key is there.
fn release_after_key_import(store: &mut Store) -> anyhow::Result<()> {
    for c in outbox::release_held(store, None)? {
        if c.status != "held" {
            eprintln!("released held copy: {c}");
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn cmd_participant_add(
    settings: &Settings,
    n: &TrackingNumber,
    org: &str,
    email: &str,
    key: Option<&std::path::Path>,
    role: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut store = app::open_store(settings)?;
    let t = existing_thread(&store, n)?;
    let mut fingerprint = None;
    if let Some(file) = key {
        let summaries = import_keys(&mut store, file)?;
        let email_l = email.to_lowercase();
        let chosen = summaries
            .iter()
            .find(|s| s.emails.iter().any(|e| e.to_lowercase() == email_l))
            .or_else(|| summaries.first())
            .ok_or_else(|| anyhow!("{} holds no certificate", file.display()))?;
        if !chosen.emails.iter().any(|e| e.to_lowercase() == email_l) {
            eprintln!(
                "warning: certificate {} has no user ID for {email}; its signatures will not count as `good` for mail from {email}",
                chosen.fingerprint
            );
        }
        fingerprint = Some(chosen.fingerprint.clone());
    }
    let c = store.add_participant(t.id, org, role, email, fingerprint.as_deref())?;
    if fingerprint.is_some() {
        release_after_key_import(&mut store)?;
    }
    if json {
        print_json(
            &json!({"thread": t.number, "org": c.org, "role": c.role, "email": c.address, "keys": c.key_fingerprints}),
        )?;
    } else {
        println!(
            "{}: {} ({}) {}{}",
            t.number,
            c.org,
            c.role,
            c.address,
            fingerprint.map(|f| format!(" key {f}")).unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_participant_list(
    settings: &Settings,
    n: &TrackingNumber,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let store = app::open_store(settings)?;
    let t = resolved_thread(&store, n)?;
    for c in store.contacts(t.id)? {
        if json {
            print_json(&c)?;
        } else {
            println!(
                "{:<20} {:<9} {} {}",
                c.org,
                c.role,
                c.address,
                c.key_fingerprints.join(",")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_key_import(
    settings: &Settings,
    file: &std::path::Path,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut store = app::open_store(settings)?;
    for s in import_keys(&mut store, file)? {
        if json {
            print_json(&s)?;
        } else {
            println!("{} {}", s.fingerprint, s.user_ids.join(", "));
        }
    }
    release_after_key_import(&mut store)?;
    Ok(ExitCode::SUCCESS)
}

fn cmd_key_list(settings: &Settings, json: bool) -> anyhow::Result<ExitCode> {
    let store = app::open_store(settings)?;
    let keyring = app::load_keyring(settings, &store)?;
    let mut all = Vec::new();
    if let Some(c) = keyring.coordinator() {
        all.push(("coordinator", keyring::summarize(c)));
    }
    for stored in store.certs()? {
        if let Some(c) = keyring.cert(&stored.fingerprint) {
            all.push(("participant", keyring::summarize(c)));
        }
    }
    for (owner, s) in all {
        if json {
            let mut v = serde_json::to_value(&s)?;
            v["owner"] = json!(owner);
            print_json(&v)?;
        } else {
            let mut state = Vec::new();
            if s.revoked {
                state.push("revoked");
            }
            if s.expired {
                state.push("expired");
            }
            if !s.can_encrypt {
                state.push("no encryption key");
            }
            println!(
                "{} {:<11} {}{}",
                s.fingerprint,
                owner,
                s.user_ids.join(", "),
                if state.is_empty() {
                    String::new()
                } else {
                    format!("  [{}]", state.join(", "))
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_key_export(settings: &Settings, fingerprint: Option<&str>) -> anyhow::Result<ExitCode> {
    let store = app::open_store(settings)?;
    let keyring = app::load_keyring(settings, &store)?;
    let cert = match fingerprint {
        None => keyring
            .coordinator()
            .ok_or_else(|| anyhow!("no coordinator key yet; run `casegate init` first"))?,
        Some(f) => {
            let f = f.replace(' ', "");
            match keyring.coordinator() {
                Some(c) if c.fingerprint().to_hex().eq_ignore_ascii_case(&f) => c,
                _ => keyring
                    .cert(&f)
                    .ok_or_else(|| anyhow!("no certificate {f}; see `casegate key list`"))?,
            }
        }
    };
    print!("{}", keyring::armored_public(cert)?);
    Ok(ExitCode::SUCCESS)
}

fn cmd_ingest(
    settings: &Settings,
    paths: &[String],
    json: bool,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    let mut pipeline = app::open_pipeline(settings)?;
    if !dry_run {
        // Acknowledgments owed from before a crash (or before `init` made a key) go out now.
        for (report, result) in pipeline.flush_pending_acks()? {
            eprintln!("acknowledgment of {report}: {result}");
        }
    }
    let mut failed = false;
    let mut fatal: Option<anyhow::Error> = None;
    for path in paths {
        let res = app::for_each_message(path, &mut |source, raw| {
            if fatal.is_some() {
                return;
            }
            let shown = source.describe();
            let result = if dry_run {
                pipeline.dry_run(&raw, source)
            } else {
                pipeline.process(&raw, source)
            };
            match result {
                Ok(o) => {
                    if o.outcome == "quarantine" {
                        eprintln!(
                            "warning: {shown}: {}; {} — see `casegate quarantine list`",
                            o.reason,
                            if dry_run {
                                "it would be kept raw in quarantine"
                            } else {
                                "kept raw in quarantine"
                            }
                        );
                    }
                    let printed = if json {
                        print_json(&o)
                    } else {
                        println!(
                            "{shown}: {} {} ({}){}",
                            o.outcome,
                            o.thread.as_ref().map(TrackingNumber::as_str).unwrap_or("-"),
                            o.reason,
                            if dry_run && !o.steps.is_empty() {
                                format!("\n    {}", o.steps.join("\n    "))
                            } else {
                                String::new()
                            }
                        );
                        Ok(())
                    };
                    if let Err(e) = printed {
                        fatal = Some(e);
                    }
                }
                Err(e) => {
                    // The store refused: stop, nothing of this message was written.
                    fatal = Some(anyhow!(
                        "{shown}: {e}; the message was not stored — fix the store and run again"
                    ));
                }
            }
        });
        if let Err(e) = res {
            eprintln!("error: {e}");
            failed = true;
        }
        if let Some(e) = fatal.take() {
            return Err(e);
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[allow(clippy::too_many_arguments)]
fn cmd_notify(
    settings: &Settings,
    n: &TrackingNumber,
    body: &std::path::Path,
    subject: Option<&str>,
    to: &str,
    in_reply_to: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(body).with_context(|| {
        format!(
            "cannot read the notice body {}; it must be a UTF-8 text file",
            body.display()
        )
    })?;
    let mut store = app::open_store(settings)?;
    let t = resolved_thread(&store, n)?;
    let coordinator = app::coordinator_key(settings)?
        .ok_or_else(|| anyhow!("no coordinator key yet; run `casegate init` first"))?;
    let selection = outbox::Selection::parse(to);
    let copies = outbox::notify(
        &mut store,
        &coordinator,
        &t,
        &selection,
        &outbox::compose::Notice {
            thread: t.number.as_str(),
            subject: subject.unwrap_or(&t.title),
            body: &text,
            in_reply_to,
            automatic: false,
        },
        &settings.config.outbox,
        &settings.config.coordinator.address,
    )?;
    if copies.is_empty() {
        bail!(
            "{} has no contact{}; add one with `casegate participant add {} --org ORG --email ADDR --key FILE.asc`",
            t.number,
            match &selection {
                outbox::Selection::All => String::new(),
                outbox::Selection::Org(o) => format!(" in organisation {o:?}"),
            },
            t.number
        );
    }
    for c in &copies {
        if json {
            print_json(c)?;
        } else {
            println!("{c}");
        }
    }
    if settings.config.smtp.is_none() {
        eprintln!(
            "note: no [smtp] configured; queued copies are sent once it is and `casegate serve` runs"
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_outbox_list(
    settings: &Settings,
    n: Option<&TrackingNumber>,
    status: Option<String>,
    attempts: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let store = app::open_store(settings)?;
    let thread_id = resolved_thread_id(&store, n)?;
    for row in outbox::list(
        &store,
        &casegate::store::outbox::OutboxFilter { thread_id, status },
    )? {
        let log = if attempts {
            store.outbox_attempts(row.id)?
        } else {
            Vec::new()
        };
        if json {
            let mut value = serde_json::to_value(&row)?;
            if attempts && let Some(fields) = value.as_object_mut() {
                fields.insert("attempt_log".into(), serde_json::to_value(&log)?);
            }
            print_json(&value)?;
        } else {
            println!("{row}");
            for a in &log {
                println!("    {} {} {}", a.at, a.outcome, a.reply);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_outbox_release(
    settings: &Settings,
    n: Option<&TrackingNumber>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut store = app::open_store(settings)?;
    let thread_id = resolved_thread_id(&store, n)?;
    for c in outbox::release_held(&mut store, thread_id)? {
        if json {
            print_json(&c)?;
        } else {
            println!("{c}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_triage_list(settings: &Settings, all: bool, json: bool) -> anyhow::Result<ExitCode> {
    let store = app::open_store(settings)?;
    for m in store.triage(all)? {
        if json {
            print_json(&m)?;
        } else {
            println!(
                "{} {}  {}  {}\n    why: {}{}",
                m.received_at,
                m.message_id.as_deref().unwrap_or("(no Message-ID)"),
                m.sender.as_deref().unwrap_or("-"),
                m.subject.as_deref().unwrap_or("(no subject)"),
                m.triage_reason.as_deref().unwrap_or(&m.reason),
                m.assigned_by
                    .as_deref()
                    .map(|b| format!(
                        "  (assigned by {b} to {})",
                        m.thread.as_ref().map(|t| t.as_str()).unwrap_or("-")
                    ))
                    .unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_triage_assign(
    settings: &Settings,
    message_id: &str,
    n: &TrackingNumber,
    by: Option<String>,
) -> anyhow::Result<ExitCode> {
    let mut store = app::open_store(settings)?;
    let t = resolved_thread(&store, n)?;
    let wanted = format!(
        "<{}>",
        message_id
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
    );
    let waiting: Vec<_> = store
        .triage(false)?
        .into_iter()
        .filter(|m| {
            m.message_id.as_deref() == Some(wanted.as_str())
                || (message_id.len() >= 8
                    && message_id.chars().all(|c| c.is_ascii_hexdigit())
                    && m.sha256.starts_with(&message_id.to_ascii_lowercase()))
        })
        .collect();
    let m = match waiting.as_slice() {
        [] => bail!("no message {wanted} is waiting in triage; see `casegate triage list`"),
        [one] => one,
        _ => bail!(
            "{} messages with Message-ID {wanted} wait in triage; give the SHA-256 prefix instead (see `casegate triage list --json`)",
            waiting.len()
        ),
    };
    let by = by
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into());
    store.triage_assign(m.id, t.id, &by, Utc::now())?;
    println!("{wanted} → {} (assigned by {by})", t.number);
    Ok(ExitCode::SUCCESS)
}

fn cmd_quarantine_list(settings: &Settings, json: bool) -> anyhow::Result<ExitCode> {
    let store = app::open_store(settings)?;
    for m in store.quarantined()? {
        if json {
            print_json(&m)?;
        } else {
            println!(
                "{} {} {}  why: {}",
                m.received_at,
                &m.sha256[..16.min(m.sha256.len())],
                m.source,
                m.reason
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
