//! `casegate check`: everything that would stop the daemon, found before it starts, one line
//! each. Never prints a secret; probes the network only to connect and log in.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::app;
use crate::config::{ImapConfig, Settings, SmtpConfig};
use crate::keyring;

/// One thing checked.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    pub check: String,
    pub ok: bool,
    pub detail: String,
}

impl Finding {
    fn ok(check: impl Into<String>, detail: impl Into<String>) -> Finding {
        Finding {
            check: check.into(),
            ok: true,
            detail: detail.into(),
        }
    }
    fn fail(check: impl Into<String>, detail: impl Into<String>) -> Finding {
        Finding {
            check: check.into(),
            ok: false,
            detail: detail.into(),
        }
    }
}

/// Runs every check; all findings are returned, failing or not.
pub fn run(settings: &Settings) -> Vec<Finding> {
    let mut out = Vec::new();
    out.push(Finding::ok(
        "config",
        match &settings.source {
            Some(p) => format!("read {}", p.display()),
            None => "built-in defaults (no casegate.toml)".to_string(),
        },
    ));
    // Before the store is opened: opening it tightens what it finds.
    out.extend(check_modes(settings));
    out.push(check_store(settings));
    out.push(check_key(settings));
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            out.push(Finding::fail("runtime", e.to_string()));
            return out;
        }
    };
    for account in &settings.config.imap {
        out.push(runtime.block_on(check_imap(account)));
    }
    match &settings.config.smtp {
        Some(smtp) => out.push(runtime.block_on(check_smtp(smtp))),
        None => out.push(Finding::ok(
            "smtp",
            "no [smtp] configured: outbound copies stay queued",
        )),
    }
    out
}

/// One finding per path casegate keeps private that group or others may read.
fn check_modes(settings: &Settings) -> Vec<Finding> {
    let loose = crate::at_rest::loose_modes(settings);
    if loose.is_empty() {
        return vec![Finding::ok(
            "permissions",
            "data dir and Maildir 0700; store, lock, key and password files 0600 or stricter",
        )];
    }
    loose
        .iter()
        .map(|l| Finding::fail("permissions", l.to_string()))
        .collect()
}

fn check_store(settings: &Settings) -> Finding {
    match app::open_store(settings) {
        Ok(store) => match store.schema_version() {
            Ok(v) => Finding::ok(
                "store",
                format!(
                    "{} opens, schema version {v}",
                    app::store_location(settings)
                        .map(|l| l.to_string())
                        .unwrap_or_default()
                ),
            ),
            Err(e) => Finding::fail("store", e.to_string()),
        },
        Err(e) => Finding::fail(
            "store",
            match settings.config.store.url {
                Some(_) => format!(
                    "{e}; check [store] url, the password (password_file/password_env), tls and that the database server is running"
                ),
                None => format!("{e}; check the path and its permissions"),
            },
        ),
    }
}

fn check_key(settings: &Settings) -> Finding {
    let path = settings.key_file();
    let Ok(meta) = std::fs::metadata(&path) else {
        return Finding::fail(
            "coordinator key",
            format!("{} does not exist; run `casegate init`", path.display()),
        );
    };
    if meta.permissions().mode() & 0o077 != 0 {
        return Finding::fail(
            "coordinator key",
            format!(
                "{} is readable by group or others; run `chmod 600 {}`",
                path.display(),
                path.display()
            ),
        );
    }
    match app::coordinator_key(settings) {
        Ok(Some(cert)) => {
            let s = keyring::summarize(&cert);
            let mut problems = Vec::new();
            if s.revoked {
                problems.push("revoked".to_string());
            }
            if s.expired {
                problems.push("expired".to_string());
            }
            if !s.can_sign {
                problems.push("no valid signing key".to_string());
            }
            if let Err(e) = keyring::encryption_key_valid(&cert) {
                problems.push(format!("no valid encryption key ({e})"));
            }
            if problems.is_empty() {
                Finding::ok(
                    "coordinator key",
                    format!("{} ({})", s.fingerprint, path.display()),
                )
            } else {
                Finding::fail(
                    "coordinator key",
                    format!(
                        "{}: {}; make a new key (move the file away and run `casegate init`) or configure [coordinator] key_file",
                        s.fingerprint,
                        problems.join(", ")
                    ),
                )
            }
        }
        Ok(None) => Finding::fail(
            "coordinator key",
            format!("{} does not exist; run `casegate init`", path.display()),
        ),
        Err(e) => Finding::fail("coordinator key", e.to_string()),
    }
}

async fn tcp_reachable(host: &str, port: u16, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port))).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("cannot connect to {host}:{port}: {e}")),
        Err(_) => Err(format!(
            "no answer from {host}:{port} within {}s",
            timeout.as_secs()
        )),
    }
}

async fn check_imap(account: &ImapConfig) -> Finding {
    let name = format!("imap {}", account.account_name());
    if let Err(e) = account.password.resolve() {
        return Finding::fail(name, e.to_string());
    }
    let mut account = account.clone();
    account.timeout_secs = account.timeout_secs.clamp(1, 30);
    match crate::imap::check(&account).await {
        Ok(r) => Finding::ok(
            name,
            format!(
                "{}: logged in{}; {}",
                r.server,
                r.certificate_sha256
                    .as_deref()
                    .map(|f| format!(" (certificate SHA-256 {f})"))
                    .unwrap_or_default(),
                r.mailboxes
                    .iter()
                    .map(|(m, n)| format!("{m} ({n} messages)"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        Err(e) => Finding::fail(name, e.to_string()),
    }
}

async fn check_smtp(smtp: &SmtpConfig) -> Finding {
    if let Err(e) = smtp.password.resolve() {
        return Finding::fail("smtp", e.to_string());
    }
    let timeout = Duration::from_secs(smtp.timeout_secs.clamp(1, 30));
    if let Err(e) = tcp_reachable(&smtp.host, smtp.port, timeout).await {
        return Finding::fail("smtp", e);
    }
    if smtp.tls == crate::config::TlsMode::None {
        return Finding::ok(
            "smtp",
            format!("{}:{} reachable (no TLS)", smtp.host, smtp.port),
        );
    }
    match crate::outbox::send::probe_tls(smtp).await {
        Ok(probe) => {
            let cert = probe
                .certificate_sha256
                .as_deref()
                .map(|f| format!("certificate SHA-256 {f}"))
                .unwrap_or_else(|| "no certificate".into());
            match probe.trusted {
                Ok(how) => Finding::ok(
                    "smtp",
                    format!("{}:{} reachable, TLS {cert} ({how})", smtp.host, smtp.port),
                ),
                Err(why) => Finding::fail("smtp", format!("TLS {cert}: {why}")),
            }
        }
        Err(e) => Finding::fail("smtp", format!("{}:{}: {e}", smtp.host, smtp.port)),
    }
}
