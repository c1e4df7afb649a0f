//! The `casegate` command line (shared/interface.md is its contract): parses arguments, calls
//! one function of the library's operations (`casegate::ops`) per command, prints the result,
//! and maps errors to exit codes — 0 success, 1 the command ran but something failed (stderr
//! says what and what to do), 2 usage error. Never a panic trace. It never touches the store:
//! every read and change goes through `ops`, as HTTP's do.

use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use casegate::config::Settings;
use casegate::ops::{self, Actor, Context, Page};
use casegate::tracking::{Kind, TrackingNumber};

/// Results go to stdout through these, which shadow std's: a reader that went away
/// (`casegate list | head -1`) ends the command quietly with 0 — it has what it wanted, and
/// whatever the command changed was committed before it printed. Any other write error is
/// reported in one line. (`ingest` prints through [`report_line`] instead: it keeps storing.)
macro_rules! println {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            stdout_failed(e)
        }
    }};
}
macro_rules! print {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = write!(std::io::stdout().lock(), $($arg)*) {
            stdout_failed(e)
        }
    }};
}

/// See [`println!`]: exits 0 when stdout's reader is gone, 1 on any other write failure.
fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: cannot write to standard output: {e}");
    std::process::exit(1)
}

/// Whether the error is a write to a stdout whose reader went away (`| head`): not a failure
/// of the command, and nothing to report.
fn closed_stdout(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        let kind = cause
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind)
            .or_else(|| {
                cause
                    .downcast_ref::<serde_json::Error>()
                    .and_then(serde_json::Error::io_error_kind)
            });
        kind == Some(std::io::ErrorKind::BrokenPipe)
    })
}

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
    /// A thread with its participants and messages (each with the short id `read` takes).
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
    /// Change a thread's policy: signed vendor statements, planned publication date, the
    /// case discussion.
    Set {
        number: TrackingNumber,
        /// A vendor's status or statement counts only when signed by a key of its organization.
        #[arg(long, value_name = "true|false")]
        require_signed_statements: Option<bool>,
        /// `relay`: participants' mail is relayed (encrypted, one copy per contact) to the
        /// other participants; `hub` (default): hub-and-spoke, nothing is relayed.
        #[arg(long, value_name = "relay|hub")]
        discussion: Option<String>,
        /// Planned publication (YYYY-MM-DD or RFC 3339); `none` clears it (default: 45 days after first notice).
        #[arg(long, value_name = "DATE")]
        publication_date: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Read a message: headers, verdicts, its text (decrypted now, never stored decrypted;
    /// HTML shown as text) and its numbered attachments.
    Read {
        /// A Message-ID, or the short id `show`, `triage list` and `quarantine list` print.
        message: String,
        #[arg(long)]
        json: bool,
    },
    /// Attachments of a message.
    #[command(subcommand)]
    Attachment(AttachmentCmd),
    /// Participants of threads.
    #[command(subcommand)]
    Participant(ParticipantCmd),
    /// The directory of organizations across cases: contacts, keys, groups.
    #[command(subcommand)]
    Org(OrgCmd),
    /// Vendors of a case: status, statement, who signed it, contacts, last heard, days since
    /// first notified.
    Vendors {
        number: TrackingNumber,
        /// Print the statement of organization ORG exactly as it was signed (the bytes the
        /// signature covers) instead.
        #[arg(long, value_name = "ORG")]
        signed_statement: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Organizations notified that have not replied (default: after [followup] overdue_days).
    Overdue {
        /// List those not heard from after this many days instead.
        #[arg(long, value_name = "N")]
        days: Option<u32>,
        /// Send each of their contacts a reminder (encrypted like any notice), at most once
        /// per [followup] reminder_interval_days.
        #[arg(long)]
        remind: bool,
        #[arg(long)]
        json: bool,
    },
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
        /// An organisation, `all`, or `group:NAME` (adds the group's organizations to the case first).
        #[arg(long, default_value = "all", value_name = "ORG|all|group:NAME")]
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
    /// Who changed what, and when (all, or one thread's).
    Audit {
        number: Option<TrackingNumber>,
        /// Only the newest N records.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// Analysts' API tokens (for the HTTP API).
    #[command(subcommand)]
    Token(TokenCmd),
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
enum AttachmentCmd {
    /// Write attachment N of a message (numbered as `read` lists them) to FILE. The file name
    /// in the mail is never used.
    Save {
        /// A Message-ID or short id.
        message: String,
        /// The attachment's number in `casegate read MESSAGE`.
        n: usize,
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Overwrite FILE if it exists.
        #[arg(long)]
        force: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum OrgCmd {
    /// Add an organization to the directory.
    Add {
        name: String,
        /// A group it belongs to (e.g. networking); repeat for several.
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Contacts of organizations.
    #[command(subcommand)]
    Contact(OrgContactCmd),
    /// Keys of organizations.
    #[command(subcommand)]
    Key(OrgKeyCmd),
    /// Organizations, by name.
    List {
        #[arg(long)]
        group: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// One organization: contacts, keys (validity, expiry), groups, open cases.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Change an organization: anonymity in relayed mail, groups.
    Set {
        name: String,
        /// Relayed mail from it names "a participant", never the organization
        /// (`--anonymous false` to name it again).
        #[arg(long, value_name = "true|false", num_args = 0..=1, default_missing_value = "true")]
        anonymous: Option<bool>,
        #[arg(long = "add-group", value_name = "GROUP")]
        add_groups: Vec<String>,
        #[arg(long = "remove-group", value_name = "GROUP")]
        remove_groups: Vec<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum OrgContactCmd {
    /// Add a contact address to an organization; it joins the organization's open cases.
    Add {
        org: String,
        address: String,
        /// The contact's OpenPGP certificate; imported and bound to the contact.
        #[arg(long, value_name = "FILE.asc")]
        key: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum OrgKeyCmd {
    /// Import OpenPGP certificates as keys of an organization (bound to the contacts their
    /// user IDs name).
    Import {
        org: String,
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ParticipantCmd {
    /// Add organisation ORG to a thread: with --email, that contact (ORG is created in the
    /// directory if needed); without, every contact of ORG.
    Add {
        number: TrackingNumber,
        #[arg(long)]
        org: String,
        #[arg(long)]
        email: Option<String>,
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
    /// Known certificates, with their expiry and the contacts they are bound to.
    List {
        /// Only the coordinator's key and contacts' keys that expire within DAYS (or have).
        #[arg(long, value_name = "DAYS")]
        expiring: Option<u32>,
        #[arg(long)]
        json: bool,
    },
    /// Print an armored public certificate (default: the coordinator's).
    Export { fingerprint: Option<String> },
    /// Key changes waiting for review (copies to the address are held until accepted) and
    /// Autocrypt keys offered by participants.
    Changes {
        /// Accepted ones too.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Accept FINGERPRINT as ADDRESS's key: bound to the address's contacts, used from now on;
    /// copies held for the change go out.
    Accept {
        address: String,
        fingerprint: String,
        #[arg(long)]
        json: bool,
    },
    /// Look contacts' keys up by WKD (one address, an organisation's contacts, or all) and
    /// merge what is found; a different key waits for `key accept`.
    Refresh {
        #[arg(value_name = "ORG|ADDRESS")]
        target: Option<String>,
        #[arg(long)]
        json: bool,
    },
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
    /// Post a triaged message (by Message-ID or short id) into a thread.
    Assign {
        message_id: String,
        number: TrackingNumber,
        /// Who decided (default: $USER).
        #[arg(long)]
        by: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum QuarantineCmd {
    List(JsonFlag),
    /// A quarantined message: why it is kept, its raw text, and what can be read of it now.
    Show {
        /// Its short id (from `quarantine list`) or Message-ID.
        id: String,
        /// Write the stored raw bytes, exactly as received, to stdout instead.
        #[arg(long, conflicts_with = "json")]
        raw: bool,
        #[arg(long)]
        json: bool,
    },
    /// Run a quarantined message through the pipeline again (after a key import or a fix).
    /// Exit code 1 when it is still quarantined.
    Retry {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Make an API token for analyst NAME; it is printed once, only its hash is kept.
    Add {
        name: String,
        /// The token may read but not change anything.
        #[arg(long)]
        read_only: bool,
        #[arg(long)]
        json: bool,
    },
    /// Every token: name, read-only, created, last used (never the token).
    List(JsonFlag),
    /// Revoke analyst NAME's token.
    Revoke {
        name: String,
        #[arg(long)]
        json: bool,
    },
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
    unsafe { casegate::set_library_defaults() };
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
        // `casegate list --json | head -1`: the reader has all it wanted.
        Ok(Err(e)) if closed_stdout(&e) => ExitCode::SUCCESS,
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
    let actor = Actor::cli();
    let me = &actor;
    // Setup, the daemon and the checks come before (or without) an open store.
    match cli.command {
        Command::Init(f) => cmd_init(&settings, me, f.json),
        Command::Serve => {
            casegate::daemon::serve(settings)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check(f) => cmd_check(&settings, f.json),
        Command::Store(StoreCmd::Copy { from, to, json }) => {
            cmd_store_copy(&settings, from.as_deref(), to.as_deref(), json)
        }
        command => {
            let mut cx = Context::open(settings)?;
            run_with(&mut cx, me, command)
        }
    }
}

fn run_with(cx: &mut Context, me: &Actor, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Init(_) | Command::Serve | Command::Check(_) | Command::Store(_) => {
            Ok(ExitCode::from(2))
        }
        Command::Status(f) => cmd_status(cx, me, f.json),
        Command::Open {
            kind,
            title,
            number,
            json,
        } => {
            let t = ops::threads::open(cx, me, kind, &title, number.as_ref())?;
            if json {
                print_json(&t)?;
            } else {
                println!("{}", t.number);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Promote { report, to, json } => {
            let case = ops::threads::promote(cx, me, &report, to.as_ref())?;
            if json {
                print_json(&case)?;
            } else {
                println!("{}", case.number);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Show { number, json } => cmd_show(cx, me, &number, json),
        Command::Set {
            number,
            require_signed_statements,
            discussion,
            publication_date,
            json,
        } => {
            let p = ops::threads::set(
                cx,
                me,
                &number,
                &ops::threads::PolicyChange {
                    require_signed_statements,
                    publication_date,
                    discussion,
                },
            )?;
            if json {
                print_json(&p)?;
            } else {
                println!(
                    "{}: discussion {}, require signed statements {}, publication {}",
                    p.number,
                    p.discussion,
                    p.require_signed_statements,
                    p.publication_date
                        .as_deref()
                        .unwrap_or("default (45 days after first notice)")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::List { kind, json } => cmd_list(cx, me, kind, json),
        Command::Read { message, json } => cmd_read(cx, me, &message, json),
        Command::Attachment(AttachmentCmd::Save {
            message,
            n,
            out,
            force,
            json,
        }) => cmd_attachment_save(cx, me, &message, n, &out, force, json),
        Command::Participant(ParticipantCmd::Add {
            number,
            org,
            email: None,
            key,
            role,
            json,
        }) => {
            if key.is_some() {
                anyhow::bail!(
                    "--key binds a key to one contact: give --email too, or import the organization's keys with `casegate org key import ORG FILE`"
                );
            }
            let j = ops::orgs::join(cx, me, &number, &org, &role)?;
            if json {
                print_json(&j)?;
            } else {
                for c in &j.contacts {
                    println!(
                        "{}: {} ({}) {}{}",
                        j.thread,
                        j.org,
                        j.role,
                        c.address,
                        if c.key_fingerprints.is_empty() {
                            " (no key)".to_string()
                        } else {
                            format!(" key {}", c.key_fingerprints.join(","))
                        }
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Participant(ParticipantCmd::Add {
            number,
            org,
            email: Some(email),
            key,
            role,
            json,
        }) => {
            let key_bytes = key
                .as_deref()
                .map(|f| read_file(f, "certificate"))
                .transpose()?;
            let key_from = key.as_deref().map(|k| k.display().to_string());
            let c = ops::participants::add(
                cx,
                me,
                &number,
                &ops::participants::NewContact {
                    org: &org,
                    email: &email,
                    role: &role,
                    key: key_bytes
                        .as_deref()
                        .zip(key_from.as_deref())
                        .map(|(bytes, from)| ops::participants::KeyData { bytes, from }),
                },
            )?;
            for w in &c.warnings {
                eprintln!("warning: {w}");
            }
            for r in &c.released {
                eprintln!("released held copy: {r}");
            }
            if json {
                print_json(&c)?;
            } else {
                println!(
                    "{}: {} ({}) {}{}",
                    c.thread,
                    c.org,
                    c.role,
                    c.email,
                    c.key_bound
                        .as_deref()
                        .map(|f| format!(" key {f}"))
                        .unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Participant(ParticipantCmd::List { number, json }) => {
            for c in ops::participants::list(cx, me, &number, Page::ALL)?.items {
                if json {
                    print_json(&c)?;
                } else {
                    println!(
                        "{:<20} {:<9} {} {} ({})",
                        c.contact.org,
                        c.contact.role,
                        c.contact.address,
                        c.contact.key_fingerprints.join(","),
                        c.key_state
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Key(KeyCmd::Import { file, json }) => {
            let bytes = read_file(&file, "certificate")?;
            let from = file.display().to_string();
            let done = ops::participants::import_keys(
                cx,
                me,
                ops::participants::KeyData {
                    bytes: &bytes,
                    from: &from,
                },
            )?;
            for s in &done.certs {
                if json {
                    print_json(s)?;
                } else {
                    println!("{} {}", s.fingerprint, s.user_ids.join(", "));
                }
            }
            for r in &done.released {
                eprintln!("released held copy: {r}");
            }
            for c in &done.key_changes {
                eprintln!(
                    "warning: {} already has another key; {} waits for review (copies to {} are held): `casegate key accept {} {}`",
                    c.address, c.fingerprint, c.address, c.address, c.fingerprint
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Key(KeyCmd::List { expiring, json }) => match expiring {
            None => cmd_key_list(cx, me, json),
            Some(days) => {
                for e in ops::keys::expiring(cx, me, days)? {
                    if json {
                        print_json(&e)?;
                    } else {
                        println!(
                            "{} {:<11} {} {} ({} days)  {}",
                            e.cert.fingerprint,
                            e.owner,
                            if e.days_left < 0 {
                                "expired"
                            } else {
                                "expires"
                            },
                            e.cert.expires.as_deref().unwrap_or("-"),
                            e.days_left,
                            terminal(&if e.contacts.is_empty() {
                                e.cert.user_ids.join(", ")
                            } else {
                                e.contacts.join(", ")
                            })
                        );
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
        },
        Command::Key(KeyCmd::Changes { all, json }) => {
            for c in ops::keys::changes(cx, me, all)? {
                if json {
                    print_json(&c)?;
                } else {
                    let ch = &c.change;
                    println!(
                        "{} {} {:<8} from {} on {}; was {}{}",
                        ch.address,
                        ch.fingerprint,
                        ch.status,
                        ch.source,
                        ch.detected_at,
                        if ch.previous.is_empty() {
                            "no key".to_string()
                        } else {
                            ch.previous.join(", ")
                        },
                        c.key
                            .as_ref()
                            .map(|k| format!(
                                "\n    new key: {}{}",
                                terminal(&k.user_ids.join(", ")),
                                k.expires
                                    .as_deref()
                                    .map(|e| format!(", expires {e}"))
                                    .unwrap_or_default()
                            ))
                            .unwrap_or_default()
                    );
                    if ch.status != "accepted" {
                        println!(
                            "    accept: casegate key accept {} {}",
                            ch.address, ch.fingerprint
                        );
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Key(KeyCmd::Accept {
            address,
            fingerprint,
            json,
        }) => {
            let done = ops::keys::accept(cx, me, &address, &fingerprint)?;
            if json {
                print_json(&done)?;
            } else {
                println!(
                    "{} is now the key of {}",
                    done.change.fingerprint, done.change.address
                );
            }
            for r in &done.released {
                eprintln!("released held copy: {r}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Key(KeyCmd::Refresh { target, json }) => {
            let results = ops::keys::refresh(cx, me, target.as_deref())?;
            let mut failed = false;
            for r in &results {
                failed |= r.outcome == "error";
                if json {
                    print_json(r)?;
                } else {
                    println!(
                        "{}: {}{} — {}",
                        r.address,
                        r.outcome,
                        r.fingerprint
                            .as_deref()
                            .map(|f| format!(" {f}"))
                            .unwrap_or_default(),
                        terminal(&r.detail)
                    );
                }
            }
            Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Key(KeyCmd::Export { fingerprint }) => {
            print!(
                "{}",
                ops::participants::export_key(cx, me, fingerprint.as_deref())?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Ingest { json, paths } => cmd_ingest(cx, me, &paths, json, false),
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
            cmd_ingest(cx, me, &paths, json, true)
        }
        Command::Notify {
            number,
            body,
            subject,
            to,
            in_reply_to,
            json,
        } => {
            let text = std::fs::read_to_string(&body).with_context(|| {
                format!(
                    "cannot read the notice body {}; it must be a UTF-8 text file",
                    body.display()
                )
            })?;
            if let Some(id) = &in_reply_to {
                // The same check `ops` makes, worded for the command line.
                casegate::header::MessageId::parse(id)
                    .context("--in-reply-to takes one Message-ID, e.g. '<id@host.example>'")?;
            }
            let done = ops::notices::notify(
                cx,
                me,
                &number,
                &ops::notices::NoticeRequest {
                    body: text,
                    subject,
                    to,
                    in_reply_to,
                },
            )?;
            for a in &done.added {
                if json {
                    #[derive(serde::Serialize)]
                    struct Added<'a> {
                        added: &'a ops::orgs::OrgJoined,
                    }
                    print_json(&Added { added: a })?;
                } else {
                    println!(
                        "added {} ({}) to {}: {}",
                        a.org,
                        a.role,
                        a.thread,
                        a.contacts
                            .iter()
                            .map(|c| c.address.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
            }
            for c in &done.copies {
                if json {
                    print_json(c)?;
                } else {
                    println!("{c}");
                }
            }
            for n in &done.notes {
                eprintln!("note: {n}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Outbox(OutboxCmd::List {
            number,
            status,
            attempts,
            json,
        }) => {
            for e in ops::notices::outbox(
                cx,
                me,
                number.as_ref(),
                status.as_deref(),
                attempts,
                Page::ALL,
            )?
            .items
            {
                if json {
                    print_json(&e)?;
                } else {
                    println!("{}", e.copy);
                    for a in e.attempt_log.iter().flatten() {
                        println!("    {} {} {}", a.at, a.outcome, a.reply);
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Outbox(OutboxCmd::Release { number, json }) => {
            for c in ops::notices::release(cx, me, number.as_ref())? {
                if json {
                    print_json(&c)?;
                } else {
                    println!("{c}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Triage(TriageCmd::List { all, json }) => {
            for m in ops::triage::list(cx, me, all, Page::ALL)?.items {
                if json {
                    print_json(&m)?;
                } else {
                    println!(
                        "{} {} {}  {}  {}\n    why: {}{}",
                        m.short_id,
                        m.received_at,
                        terminal(m.message_id.as_deref().unwrap_or("(no Message-ID)")),
                        terminal(m.sender.as_deref().unwrap_or("-")),
                        terminal(m.subject.as_deref().unwrap_or("(no subject)")),
                        terminal(m.triage_reason.as_deref().unwrap_or(&m.reason)),
                        m.assigned_by
                            .as_deref()
                            .map(|b| format!(
                                "  (assigned by {} to {})",
                                terminal(b),
                                m.thread.as_ref().map(|t| t.as_str()).unwrap_or("-")
                            ))
                            .unwrap_or_default()
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Triage(TriageCmd::Assign {
            message_id,
            number,
            by,
            json,
        }) => {
            let a = ops::triage::assign(cx, me, &message_id, &number, by.as_deref())?;
            if json {
                print_json(&a)?;
            } else {
                println!(
                    "{} → {} (assigned by {})",
                    terminal(a.message_id.as_deref().unwrap_or(&a.short_id)),
                    a.thread,
                    terminal(&a.assigned_by)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Quarantine(QuarantineCmd::List(f)) => {
            for m in ops::quarantine::list(cx, me, Page::ALL)?.items {
                if f.json {
                    print_json(&m)?;
                } else {
                    println!(
                        "{} {} {}  why: {}",
                        m.received_at,
                        m.short_id,
                        terminal(&m.source),
                        terminal(&m.reason)
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Quarantine(QuarantineCmd::Show { id, raw, json }) => {
            if raw {
                let record = ops::quarantine::show(cx, me, &id)?;
                let bytes = ops::messages::raw(cx, me, &record.message.short_id)?;
                let mut out = std::io::stdout().lock();
                out.write_all(&bytes)?;
                out.flush()?;
                return Ok(ExitCode::SUCCESS);
            }
            let v = ops::quarantine::show(cx, me, &id)?;
            if json {
                print_json(&v)?;
            } else {
                print_message(&v);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Quarantine(QuarantineCmd::Retry { id, json }) => {
            let r = ops::quarantine::retry(cx, me, &id)?;
            if json {
                print_json(&r)?;
            } else if r.released {
                println!(
                    "{}: {} {} ({})",
                    r.short_id,
                    r.outcome.outcome,
                    r.outcome
                        .thread
                        .as_ref()
                        .map(TrackingNumber::as_str)
                        .unwrap_or("-"),
                    terminal(&r.outcome.reason)
                );
            }
            if let Some(a) = &r.outcome.acknowledgment {
                eprintln!("acknowledgment: {a}");
            }
            if r.released {
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!(
                    "error: {} is still in quarantine: {}; fix that (import the key, restore the coordinator key, change the setting) and retry",
                    r.short_id,
                    terminal(&r.outcome.reason)
                );
                Ok(ExitCode::from(1))
            }
        }
        Command::Audit {
            number,
            limit,
            json,
        } => {
            // Newest first from ops; printed oldest first, `--limit` keeping the newest.
            let page = Page {
                offset: 0,
                limit: limit.unwrap_or(usize::MAX),
            };
            for e in ops::audit::list(cx, me, number.as_ref(), page)?
                .items
                .into_iter()
                .rev()
            {
                if json {
                    print_json(&e)?;
                } else {
                    println!(
                        "{} {} {}{}{}: {}",
                        e.at,
                        terminal(&e.actor),
                        e.action,
                        e.thread
                            .as_deref()
                            .map(|t| format!(" {t}"))
                            .unwrap_or_default(),
                        e.message_id
                            .as_deref()
                            .or(e.message_sha256.as_deref().map(|s| &s[..12.min(s.len())]))
                            .map(|m| format!(" {}", terminal(m)))
                            .unwrap_or_default(),
                        terminal(&e.detail)
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Token(TokenCmd::Add {
            name,
            read_only,
            json,
        }) => {
            let t = ops::tokens::add(cx, me, &name, read_only)?;
            if json {
                print_json(&t)?;
            } else {
                println!("{}", t.token);
                eprintln!(
                    "API token for {} ({}); it is shown only now — casegate keeps only its hash",
                    t.name,
                    if t.read_only {
                        "read-only"
                    } else {
                        "read-write"
                    }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Token(TokenCmd::List(f)) => {
            for t in ops::tokens::list(cx, me, Page::ALL)?.items {
                if f.json {
                    print_json(&t)?;
                } else {
                    println!(
                        "{:<24} {:<10} created {}  last used {}",
                        t.name,
                        if t.read_only {
                            "read-only"
                        } else {
                            "read-write"
                        },
                        t.created_at,
                        t.last_used_at.as_deref().unwrap_or("never")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Token(TokenCmd::Revoke { name, json }) => {
            let r = ops::tokens::revoke(cx, me, &name)?;
            if json {
                print_json(&r)?;
            } else {
                println!("revoked the token of {}", r.name);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Org(cmd) => cmd_org(cx, me, cmd),
        Command::Vendors {
            number,
            signed_statement: Some(org),
            ..
        } => {
            let bytes = ops::vendors::signed_statement(cx, me, &number, &org)?;
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)?;
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Vendors { number, json, .. } => {
            for v in ops::vendors::list(cx, me, &number)? {
                if json {
                    print_json(&v)?;
                    continue;
                }
                println!(
                    "{}{}: {}{}",
                    terminal(&v.org),
                    if v.anonymous { " (anonymous)" } else { "" },
                    v.status,
                    v.status_at
                        .as_deref()
                        .map(|a| format!(" (since {a})"))
                        .unwrap_or_default()
                );
                match (&v.statement, &v.statement_at) {
                    (Some(text), Some(at)) => {
                        println!(
                            "  statement of {at}, {}:",
                            match &v.statement_signed_by {
                                Some(f) => format!("signed by the organization's key {f}"),
                                None => "not signed by the organization".to_string(),
                            }
                        );
                        for line in text.lines() {
                            println!("    {}", terminal(line));
                        }
                    }
                    _ => println!("  no statement"),
                }
                for c in &v.not_counted {
                    println!(
                        "  NOT COUNTED {} from {}: {}",
                        if c.statement.is_some() {
                            "statement"
                        } else {
                            "status"
                        },
                        c.received_at,
                        terminal(&c.reason)
                    );
                }
                println!(
                    "  contacts {}; last heard {}; first notified {}",
                    v.contacts.join(", "),
                    v.last_heard_at.as_deref().unwrap_or("never"),
                    match (&v.first_notified_at, v.days_since_first_notified) {
                        (Some(f), Some(d)) => format!("{f} ({d} days ago)"),
                        _ => "never".into(),
                    }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Overdue { days, remind, json } => {
            let o = ops::followup::overdue(cx, me, days, remind)?;
            for org in &o.orgs {
                if json {
                    print_json(org)?;
                } else {
                    println!(
                        "{} {}: notified {} ({} days ago), no reply{}",
                        org.thread,
                        terminal(&org.org),
                        org.first_notified_at,
                        org.days,
                        org.last_heard_at
                            .as_deref()
                            .map(|h| format!(" since (last heard {h})"))
                            .unwrap_or_default()
                    );
                }
            }
            for r in &o.reminders {
                if json {
                    #[derive(serde::Serialize)]
                    struct Reminder<'a> {
                        reminder: &'a casegate::outbox::QueuedCopy,
                    }
                    print_json(&Reminder { reminder: r })?;
                } else {
                    println!("reminder: {r}");
                }
            }
            if !json && o.orgs.is_empty() {
                eprintln!(
                    "nobody is overdue (no reply {} days after being notified)",
                    o.after_days
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Debug(DebugCmd::RecordSent { message_id, thread }) => {
            ops::threads::record_sent(cx, me, &message_id, &thread)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn cmd_org(cx: &mut Context, me: &Actor, cmd: OrgCmd) -> anyhow::Result<ExitCode> {
    let print_org = |o: &casegate::store::Org| {
        println!(
            "{}{}{}",
            terminal(&o.name),
            if o.anonymous { " (anonymous)" } else { "" },
            if o.groups.is_empty() {
                String::new()
            } else {
                format!("  groups: {}", o.groups.join(", "))
            }
        );
    };
    match cmd {
        OrgCmd::Add { name, groups, json } => {
            let o = ops::orgs::add(cx, me, &name, &groups)?;
            if json {
                print_json(&o)?;
            } else {
                print_org(&o);
            }
        }
        OrgCmd::Contact(OrgContactCmd::Add {
            org,
            address,
            key,
            json,
        }) => {
            let key_bytes = key
                .as_deref()
                .map(|f| read_file(f, "certificate"))
                .transpose()?;
            let key_from = key.as_deref().map(|k| k.display().to_string());
            let c = ops::orgs::add_contact(
                cx,
                me,
                &org,
                &address,
                key_bytes
                    .as_deref()
                    .zip(key_from.as_deref())
                    .map(|(bytes, from)| ops::participants::KeyData { bytes, from }),
            )?;
            for w in &c.warnings {
                eprintln!("warning: {w}");
            }
            for r in &c.released {
                eprintln!("released held copy: {r}");
            }
            if json {
                print_json(&c)?;
            } else {
                println!(
                    "{}: {}{}{}",
                    terminal(&c.org),
                    c.address,
                    if c.keys.is_empty() {
                        " (no key)".to_string()
                    } else {
                        format!(" keys {}", c.keys.join(", "))
                    },
                    if c.joined.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; joined {}",
                            c.joined
                                .iter()
                                .map(TrackingNumber::as_str)
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    }
                );
            }
        }
        OrgCmd::Key(OrgKeyCmd::Import { org, file, json }) => {
            let bytes = read_file(&file, "certificate")?;
            let from = file.display().to_string();
            let done = ops::orgs::import_keys(
                cx,
                me,
                &org,
                ops::participants::KeyData {
                    bytes: &bytes,
                    from: &from,
                },
            )?;
            for w in &done.warnings {
                eprintln!("warning: {w}");
            }
            for r in &done.released {
                eprintln!("released held copy: {r}");
            }
            if json {
                print_json(&done)?;
            } else {
                for c in &done.certs {
                    let to: Vec<&str> = done
                        .bound
                        .iter()
                        .filter(|b| b.fingerprint == c.fingerprint)
                        .map(|b| b.address.as_str())
                        .collect();
                    println!(
                        "{} {}: {} {}",
                        terminal(&done.org),
                        c.fingerprint,
                        terminal(&c.user_ids.join(", ")),
                        if to.is_empty() {
                            "(the organization's)".to_string()
                        } else {
                            format!("bound to {}", to.join(", "))
                        }
                    );
                }
            }
        }
        OrgCmd::List { group, json } => {
            for o in ops::orgs::list(cx, me, group.as_deref())? {
                if json {
                    print_json(&o)?;
                } else {
                    println!(
                        "{:<30} {} contact(s), {} key(s), {} open case(s){}{}",
                        terminal(&o.org.name),
                        o.contacts,
                        o.keys,
                        o.open_cases,
                        if o.org.anonymous { ", anonymous" } else { "" },
                        if o.org.groups.is_empty() {
                            String::new()
                        } else {
                            format!(", groups {}", o.org.groups.join(", "))
                        }
                    );
                }
            }
        }
        OrgCmd::Show { name, json } => {
            let v = ops::orgs::show(cx, me, &name)?;
            if json {
                print_json(&v)?;
            } else {
                print_org(&v.org);
                println!("contacts:");
                for c in &v.contacts {
                    println!("  {}", c.address);
                    for k in &c.keys {
                        println!("    key {}", key_line(k));
                    }
                }
                println!("keys:");
                for k in &v.keys {
                    println!("  {}", key_line(k));
                }
                println!("open cases:");
                for c in &v.open_cases {
                    println!(
                        "  {} ({}, discussion {}) {}",
                        c.number,
                        c.role,
                        c.discussion,
                        terminal(&c.title)
                    );
                }
            }
        }
        OrgCmd::Set {
            name,
            anonymous,
            add_groups,
            remove_groups,
            json,
        } => {
            let o = ops::orgs::set(
                cx,
                me,
                &name,
                &ops::orgs::OrgChange {
                    anonymous,
                    add_groups,
                    remove_groups,
                },
            )?;
            if json {
                print_json(&o)?;
            } else {
                print_org(&o);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `FPR valid, expires 2027-01-01T00:00:00Z (Name <addr>)`.
fn key_line(k: &ops::orgs::KeyView) -> String {
    let mut s = format!("{} {}", k.fingerprint, k.validity);
    if let Some(c) = &k.cert {
        s.push_str(&match &c.expires {
            Some(e) => format!(", expires {e}"),
            None => ", no expiry".into(),
        });
        if !c.user_ids.is_empty() {
            s.push_str(&format!(" ({})", terminal(&c.user_ids.join(", "))));
        }
    }
    s
}

/// One line of a report that goes on when nobody reads it (`ingest`): the error is returned.
fn report_line(line: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    writeln!(std::io::stdout().lock(), "{line}")?;
    Ok(())
}

fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, v)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Text from mail (sender-controlled) made safe for a terminal: control characters other
/// than newline and tab are shown escaped, so no escape sequence reaches the terminal.
fn terminal(s: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let s = s.replace("\r\n", "\n");
    Cow::Owned(
        s.chars()
            .map(|c| {
                if unsafe_char(c) {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

fn read_file(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| {
        format!(
            "cannot read the {what} file {}; check the path",
            path.display()
        )
    })
}

fn cmd_init(settings: &Settings, me: &Actor, json: bool) -> anyhow::Result<ExitCode> {
    let done = ops::setup::init(settings, me)?;
    if json {
        print_json(&done)?;
    } else {
        println!("{}", done.fingerprint);
        eprintln!(
            "coordinator key: {} ({})",
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

fn cmd_status(cx: &Context, me: &Actor, json: bool) -> anyhow::Result<ExitCode> {
    let s = ops::setup::status(cx, me)?;
    if json {
        #[derive(serde::Serialize)]
        struct Mailbox<'a> {
            kind: &'static str,
            #[serde(flatten)]
            summary: &'a ops::setup::MailboxSummary,
        }
        #[derive(serde::Serialize)]
        struct Queues {
            kind: &'static str,
            triage: usize,
            quarantine: usize,
        }
        for m in &s.mailboxes {
            print_json(&Mailbox {
                kind: "mailbox",
                summary: m,
            })?;
        }
        #[derive(serde::Serialize)]
        struct Lease<'a> {
            kind: &'static str,
            #[serde(flatten)]
            lease: &'a casegate::store::Lease,
        }
        for l in &s.leases {
            print_json(&Lease {
                kind: "lease",
                lease: l,
            })?;
        }
        print_json(&Queues {
            kind: "queues",
            triage: s.triage,
            quarantine: s.quarantine,
        })?;
    } else {
        for m in &s.mailboxes {
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
        for l in &s.leases {
            println!(
                "lease {}/{}: watched by {} until {}",
                l.account, l.mailbox, l.owner, l.expires_at
            );
        }
        println!(
            "triage: {} waiting; quarantine: {} kept",
            s.triage, s.quarantine
        );
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
        anyhow::bail!(
            "say where to copy: `casegate store copy --to postgres://USER@HOST/DB` (from the configured store) or `--from FILE.sqlite` (into it)"
        );
    }
    let location = |arg: Option<&str>| match arg {
        Some(a) => casegate::app::location_from_arg(settings, a),
        None => casegate::app::store_location(settings),
    };
    let (source, target) = (location(from)?, location(to)?);
    if source.to_string() == target.to_string() {
        anyhow::bail!("--from and --to are the same store ({source})");
    }
    if let casegate::store::Location::Sqlite(p) = &source
        && !p.exists()
    {
        anyhow::bail!("the source {} does not exist", p.display());
    }
    let mut from_store = casegate::app::open_store_at(&source)?;
    let mut to_store = casegate::app::open_store_at(&target)?;
    let report = casegate::store::copy_store(&mut from_store, &mut to_store)
        .with_context(|| format!("copying {source} to {target}"))?;
    if json {
        print_json(&serde_json::json!({
            "from": source.to_string(),
            "to": target.to_string(),
            "schema_version": report.schema_version,
            "tables": report.tables,
        }))?;
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

fn cmd_show(cx: &Context, me: &Actor, n: &TrackingNumber, json: bool) -> anyhow::Result<ExitCode> {
    let v = ops::threads::show(cx, me, n, Page::ALL)?;
    if json {
        print_json(&v)?;
        return Ok(ExitCode::SUCCESS);
    }
    let t = &v.thread;
    println!("{} [{}] {}", t.number, t.kind, terminal(&t.title));
    println!("  status {}, created {}", t.status, t.created_at);
    if let Some(asked) = &v.asked_for {
        println!(
            "  (you asked for {asked}, which was promoted to {})",
            t.number
        );
    }
    println!("participants:");
    for c in &v.participants {
        let keys = if c.key_fingerprints.is_empty() {
            "no key".to_string()
        } else {
            c.key_fingerprints
                .iter()
                .map(|f| match v.keys.get(f) {
                    Some(k) if k.revoked => format!("{f} revoked"),
                    Some(k) => format!(
                        "{f} {} {}",
                        if k.expired { "expired" } else { "expires" },
                        k.expires.as_deref().unwrap_or("never")
                    ),
                    None => format!("{f} not imported"),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!("  {:<20} {:<9} {}  ({keys})", c.org, c.role, c.address);
    }
    for k in &v.key_changes {
        println!(
            "  key change for {} not accepted yet: {} ({}, {}); `casegate key accept {} {}`",
            k.address, k.fingerprint, k.source, k.status, k.address, k.fingerprint
        );
    }
    println!("messages (read one with `casegate read ID`):");
    for m in &v.messages {
        println!(
            "  {} {} {:<3} {}  {}",
            m.short_id,
            m.received_at,
            m.direction,
            terminal(m.sender.as_deref().unwrap_or("-")),
            terminal(m.subject.as_deref().unwrap_or("(no subject)"))
        );
        println!(
            "      encrypted: {}  signature: {}{}  routed: {}",
            if m.encrypted { "yes" } else { "no" },
            m.signature,
            m.signer
                .as_deref()
                .map(|s| format!(" by {s}"))
                .unwrap_or_default(),
            terminal(&m.reason)
        );
        if let Some(r) = &m.signature_reason
            && m.signature != "none"
        {
            println!("      signature: {}", terminal(r));
        }
        if m.direction == "in" {
            println!(
                "      sender authentication: {}{}{}",
                m.sender_auth,
                m.sender_auth_detail
                    .as_deref()
                    .map(|d| format!(" ({})", terminal(d)))
                    .unwrap_or_default(),
                if m.flags.is_empty() {
                    String::new()
                } else {
                    format!("  flags: {}", terminal(&m.flags))
                }
            );
        }
    }
    if !v.outbox.is_empty() {
        println!("outbound (one copy per recipient):");
        for row in &v.outbox {
            println!("  {row}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_list(cx: &Context, me: &Actor, kind: Option<Kind>, json: bool) -> anyhow::Result<ExitCode> {
    for s in ops::threads::list(cx, me, kind, Page::ALL)?.items {
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
                terminal(&s.thread.title)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_key_list(cx: &mut Context, me: &Actor, json: bool) -> anyhow::Result<ExitCode> {
    for k in ops::participants::list_keys(cx, me, Page::ALL)?.items {
        if json {
            print_json(&k)?;
        } else {
            let s = &k.cert;
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
            let pending = if k.pending_for.is_empty() {
                String::new()
            } else {
                format!(
                    "  key change for {} not accepted yet",
                    k.pending_for.join(", ")
                )
            };
            println!(
                "{} {:<11} {}  expires {}{}{}{}",
                s.fingerprint,
                k.owner,
                terminal(&s.user_ids.join(", ")),
                s.expires.as_deref().unwrap_or("never"),
                if k.contacts.is_empty() {
                    String::new()
                } else {
                    format!("  bound to {}", k.contacts.join(", "))
                },
                if state.is_empty() {
                    String::new()
                } else {
                    format!("  [{}]", state.join(", "))
                },
                pending
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_ingest(
    cx: &mut Context,
    me: &Actor,
    paths: &[String],
    json: bool,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    if !dry_run {
        // Acknowledgments owed from before a crash (or before `init` made a key) go out now.
        for owed in ops::ingest::flush_pending_acks(cx, me)? {
            eprintln!("acknowledgment of {}: {}", owed.report, owed.result);
        }
    }
    let mut failed = false;
    let mut report = IngestReport {
        json,
        dry_run,
        stdout_gone: false,
        fatal: None,
    };
    if dry_run {
        // A dry run decides one message at a time.
        for path in paths {
            let limits = cx.settings().config.limits();
            let res = casegate::app::for_each_message(path, &limits, &mut |source, got| {
                if report.fatal.is_some() {
                    return;
                }
                let shown = source.describe();
                let result = ops::ingest::dry_run_read(cx, me, got, source);
                report.result(&shown, result.map_err(anyhow::Error::from));
            });
            if let Err(e) = res {
                eprintln!("error: {e}");
                failed = true;
            }
            if let Some(e) = report.fatal.take() {
                return Err(e);
            }
        }
    } else {
        // Group commit: messages are stored in batches of `[ingest] batch_messages` (and at
        // most INGEST_BATCH_BYTES), each in one transaction. The files are read on a thread of
        // their own, ahead of the batches being parsed, opened and stored.
        let batch_messages = cx.settings().config.ingest.batch_messages.max(1);
        let limits = cx.settings().config.limits();
        let unreadable = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            let (batches, taken) = std::sync::mpsc::sync_channel(0);
            let unreadable = &unreadable;
            let reader = std::thread::Builder::new().name("casegate-files".into());
            let started = reader.spawn_scoped(scope, move || {
                for path in paths {
                    let mut pending = Vec::new();
                    let mut pending_bytes = 0usize;
                    let mut stopped = false;
                    let res = casegate::app::for_each_message(path, &limits, &mut |source, got| {
                        if stopped {
                            return;
                        }
                        pending_bytes += match &got {
                            casegate::intake::Intake::Whole(raw) => raw.len(),
                            casegate::intake::Intake::Partial(p) => p.head.len(),
                        };
                        pending.push((source, got));
                        if pending.len() >= batch_messages || pending_bytes >= INGEST_BATCH_BYTES {
                            pending_bytes = 0;
                            stopped = batches.send(std::mem::take(&mut pending)).is_err();
                        }
                    });
                    // The store stopped the ingest: nothing more is read.
                    if stopped || (!pending.is_empty() && batches.send(pending).is_err()) {
                        return;
                    }
                    if let Err(e) = res {
                        eprintln!("error: {e}");
                        unreadable.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
            if let Err(e) = started {
                report.fatal = Some(anyhow::anyhow!(
                    "cannot start the thread that reads the files ({e}); nothing was stored"
                ));
                return;
            }
            let stored =
                ops::ingest::ingest_batches(cx, me, taken.into_iter(), &mut |shown, done| {
                    let stored = done.outcomes.len();
                    for (o, shown) in done.outcomes.into_iter().zip(shown) {
                        report.result(shown, Ok(o));
                    }
                    if let (Some(e), Some(shown)) = (done.failure, shown.get(stored)) {
                        report.result(shown, Err(e.into()));
                    }
                    report.fatal.is_none()
                });
            if let Err(e) = stored
                && report.fatal.is_none()
            {
                report.fatal = Some(e.into());
            }
            // `taken` is gone with `ingest_batches`' iterator: the reader stops at its next batch.
        });
        failed |= unreadable.load(std::sync::atomic::Ordering::Relaxed);
        if let Some(e) = report.fatal.take() {
            return Err(e);
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Bytes of mail `ingest` holds in one batch (one larger message still goes whole). Three
/// batches are held at most: one stored, one parsed and opened, one read from files.
const INGEST_BATCH_BYTES: usize = 16 * 1024 * 1024;

/// What `ingest` and `route --dry-run` print per message, and the failure that stops them.
struct IngestReport {
    json: bool,
    dry_run: bool,
    /// A reader that went away (`| head`) stops the report, not the ingest.
    stdout_gone: bool,
    fatal: Option<anyhow::Error>,
}

impl IngestReport {
    fn result(&mut self, shown: &str, result: anyhow::Result<casegate::pipeline::Outcome>) {
        let dry_run = self.dry_run;
        match result {
            Ok(o) => {
                if o.outcome == "quarantine" {
                    eprintln!(
                        "warning: {shown}: {}; {} — see `casegate quarantine list`",
                        terminal(&o.reason),
                        if dry_run {
                            "it would be kept raw in quarantine"
                        } else {
                            "kept raw in quarantine"
                        }
                    );
                }
                let printed = if self.stdout_gone {
                    Ok(())
                } else if self.json {
                    print_json(&o)
                } else {
                    report_line(format_args!(
                        "{shown}: {} {} ({}){}",
                        o.outcome,
                        o.thread.as_ref().map(TrackingNumber::as_str).unwrap_or("-"),
                        terminal(&o.reason),
                        if dry_run && !o.steps.is_empty() {
                            format!("\n    {}", terminal(&o.steps.join("\n    ")))
                        } else {
                            String::new()
                        }
                    ))
                };
                match printed {
                    Err(e) if closed_stdout(&e) => self.stdout_gone = true,
                    Err(e) => self.fatal = Some(e),
                    Ok(()) => {}
                }
            }
            Err(e) => {
                // The store refused: stop, nothing of this message was written.
                self.fatal = Some(anyhow::anyhow!(
                    "{shown}: {e}; the message was not stored — fix the store and run again"
                ));
            }
        }
    }
}

fn cmd_read(cx: &mut Context, me: &Actor, message: &str, json: bool) -> anyhow::Result<ExitCode> {
    let v = ops::messages::read(cx, me, message)?;
    if json {
        print_json(&v)?;
    } else {
        print_message(&v);
    }
    Ok(ExitCode::SUCCESS)
}

/// A message as `read` and `quarantine show` print it.
fn print_message(v: &ops::messages::MessageView) {
    let m = &v.message;
    println!(
        "message {}  {}",
        m.short_id,
        terminal(m.message_id.as_deref().unwrap_or("(no Message-ID)"))
    );
    for h in &v.headers {
        println!("{}: {}", h.name, terminal(&h.value));
    }
    if let Some(p) = &v.protected_subject {
        println!(
            "Subject (protected, inside the encryption): {}",
            terminal(p)
        );
    }
    println!();
    println!(
        "received {} ({}), {}",
        m.received_at,
        terminal(&m.source),
        match (m.outcome.as_str(), &m.thread) {
            ("routed", Some(t)) => format!("in {t}: {}", terminal(&m.reason)),
            ("triage", _) => format!(
                "waiting in triage: {}",
                terminal(m.triage_reason.as_deref().unwrap_or(&m.reason))
            ),
            ("quarantine", _) => format!("QUARANTINED: {}", terminal(&m.reason)),
            (o, _) => format!("{o}: {}", terminal(&m.reason)),
        }
    );
    let d = &v.verdicts;
    println!(
        "encrypted: {}",
        match (&d.encrypted, &d.encryption_note) {
            (true, _) => "yes, the whole message".to_string(),
            (false, Some(note)) => format!("only partly ({})", terminal(note)),
            (false, None) => "no".to_string(),
        }
    );
    let by = match (&d.signer, &d.signer_participant) {
        (Some(f), Some(p)) => format!(" by {f} ({}, {}, {})", p.org, p.role, p.address),
        (Some(f), None) => format!(" by {f} (bound to no participant of this thread)"),
        _ => String::new(),
    };
    println!(
        "signature: {}{by}; covers {}{}",
        d.signature,
        match d.signature_covers {
            "whole" => "the whole message",
            "partial" => "only part of it",
            _ => "nothing",
        },
        d.signature_reason
            .as_deref()
            .map(|r| format!(" — {}", terminal(r)))
            .unwrap_or_default()
    );
    println!(
        "sender authentication: {}{}",
        d.sender_auth,
        d.sender_auth_detail
            .as_deref()
            .map(|r| format!(" — {}", terminal(r)))
            .unwrap_or_default()
    );
    if !m.flags.is_empty() {
        println!("flags: {}", terminal(&m.flags));
    }
    for n in &v.notes {
        println!("  note: {}", terminal(n));
    }
    match &v.text {
        Some(t) => {
            println!(
                "\n--- text{} ---",
                if v.text_from_html {
                    " (converted from HTML; never rendered)"
                } else if v.has_html {
                    " (an HTML version exists; not shown)"
                } else {
                    ""
                }
            );
            println!("{}", terminal(t.trim_end()));
        }
        None => println!("\n--- no readable text ---"),
    }
    if !v.attachments.is_empty() {
        println!(
            "\n--- attachments (save one: casegate attachment save {} N --out FILE) ---",
            m.short_id
        );
        for a in &v.attachments {
            println!(
                "  {}. {}  {}  {} bytes",
                a.n,
                terminal(a.name.as_deref().unwrap_or("(unnamed)")),
                a.content_type,
                a.size
            );
        }
    }
    if let Some(raw) = &v.raw {
        println!(
            "\n--- raw message as stored ({} bytes{}; exact bytes: casegate quarantine show {} --raw) ---",
            raw.size,
            if raw.truncated { ", shown in part" } else { "" },
            m.short_id
        );
        println!("{}", terminal(raw.text.trim_end()));
    }
}

fn cmd_attachment_save(
    cx: &mut Context,
    me: &Actor,
    message: &str,
    n: usize,
    out: &Path,
    force: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let file = ops::messages::attachment(cx, me, message, n)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut f = match options.open(out) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            anyhow::bail!(
                "{} exists; choose another --out, or pass --force to overwrite it",
                out.display()
            )
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot create {}", out.display()));
        }
    };
    f.write_all(&file.bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", out.display()))?;
    if json {
        #[derive(serde::Serialize)]
        struct Saved<'a> {
            #[serde(flatten)]
            file: &'a ops::messages::AttachmentFile,
            path: String,
        }
        print_json(&Saved {
            file: &file,
            path: out.display().to_string(),
        })?;
    } else {
        println!(
            "saved attachment {} of {} ({}, {}, {} bytes) to {}",
            file.attachment.n,
            file.message,
            terminal(file.attachment.name.as_deref().unwrap_or("unnamed")),
            file.attachment.content_type,
            file.attachment.size,
            out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
