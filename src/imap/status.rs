//! What the watchers are doing, per mailbox: shared with the daemon, which logs it periodically
//! and can write it where `casegate status` reads it. Counters are per UTC day.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{SecondsFormat, Utc};

/// One mailbox's state. `Display` is the one-line form for logs and `casegate status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MailboxStatus {
    pub account: String,
    pub mailbox: String,
    pub connected: bool,
    pub uidvalidity: Option<u32>,
    /// Highest UID stored (every UID up to it is in the store).
    pub last_uid: Option<u32>,
    /// UTC day the counters below belong to (YYYY-MM-DD).
    pub day: String,
    /// New messages stored today (duplicates not counted), quarantined ones included.
    pub stored_today: u64,
    pub quarantined_today: u64,
    /// Messages fetched again that the store already had (after a crash or UIDVALIDITY change).
    pub duplicates_today: u64,
    /// The last failure, until the next successful connection.
    pub last_error: Option<String>,
    /// When `connected` last changed (RFC 3339, UTC).
    pub since: String,
}

impl std::fmt::Display for MailboxStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}: {}, last UID {}, {} stored today ({} quarantined)",
            self.account,
            self.mailbox,
            if self.connected {
                "connected"
            } else {
                "disconnected"
            },
            self.last_uid
                .map(|u| u.to_string())
                .unwrap_or_else(|| "-".into()),
            self.stored_today,
            self.quarantined_today
        )?;
        if let Some(e) = &self.last_error {
            write!(f, "; last error: {e}")?;
        }
        Ok(())
    }
}

/// The status of every watched mailbox; cheap to update from the watcher tasks.
#[derive(Debug, Default)]
pub struct ImapStatus {
    mailboxes: Mutex<BTreeMap<(String, String), MailboxStatus>>,
}

fn today() -> String {
    Utc::now().format("%Y-%m-%d").to_string()
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl ImapStatus {
    pub fn new() -> ImapStatus {
        ImapStatus::default()
    }

    /// Every mailbox, ordered by account then mailbox.
    pub fn snapshot(&self) -> Vec<MailboxStatus> {
        match self.mailboxes.lock() {
            Ok(m) => m.values().cloned().collect(),
            Err(poisoned) => poisoned.into_inner().values().cloned().collect(),
        }
    }

    /// The status of one mailbox, if it is watched.
    pub fn get(&self, account: &str, mailbox: &str) -> Option<MailboxStatus> {
        self.snapshot()
            .into_iter()
            .find(|s| s.account == account && s.mailbox == mailbox)
    }

    /// Logs one line per mailbox (for the daemon's periodic report).
    pub fn log(&self) {
        for s in self.snapshot() {
            tracing::info!(target: "casegate::imap::status", "{s}");
        }
    }

    fn update(&self, account: &str, mailbox: &str, f: impl FnOnce(&mut MailboxStatus)) {
        let mut map = match self.mailboxes.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let entry = map
            .entry((account.to_string(), mailbox.to_string()))
            .or_insert_with(|| MailboxStatus {
                account: account.to_string(),
                mailbox: mailbox.to_string(),
                connected: false,
                uidvalidity: None,
                last_uid: None,
                day: today(),
                stored_today: 0,
                quarantined_today: 0,
                duplicates_today: 0,
                last_error: None,
                since: now(),
            });
        let day = today();
        if entry.day != day {
            entry.day = day;
            entry.stored_today = 0;
            entry.quarantined_today = 0;
            entry.duplicates_today = 0;
        }
        f(entry);
    }

    pub(crate) fn register(&self, account: &str, mailbox: &str) {
        self.update(account, mailbox, |_| {});
    }

    pub(crate) fn connected(&self, account: &str, mailbox: &str, uidvalidity: u32, last_uid: u32) {
        self.update(account, mailbox, |s| {
            if !s.connected {
                s.since = now();
            }
            s.connected = true;
            s.uidvalidity = Some(uidvalidity);
            s.last_uid = Some(last_uid);
            s.last_error = None;
        });
    }

    pub(crate) fn disconnected(&self, account: &str, mailbox: &str, error: Option<String>) {
        self.update(account, mailbox, |s| {
            if s.connected {
                s.since = now();
            }
            s.connected = false;
            if error.is_some() {
                s.last_error = error;
            }
        });
    }

    pub(crate) fn stored(&self, account: &str, mailbox: &str, uid: u32, outcome: &str) {
        self.update(account, mailbox, |s| {
            s.last_uid = Some(s.last_uid.unwrap_or(0).max(uid));
            match outcome {
                "duplicate" => s.duplicates_today += 1,
                "quarantine" => {
                    s.stored_today += 1;
                    s.quarantined_today += 1;
                }
                _ => s.stored_today += 1,
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_outcomes_and_shows_one_line() {
        let st = ImapStatus::new();
        st.register("a", "INBOX");
        st.connected("a", "INBOX", 7, 3);
        st.stored("a", "INBOX", 4, "triage");
        st.stored("a", "INBOX", 5, "quarantine");
        st.stored("a", "INBOX", 2, "duplicate");
        let s = st.get("a", "INBOX").unwrap();
        assert_eq!(
            (s.stored_today, s.quarantined_today, s.duplicates_today),
            (2, 1, 1)
        );
        assert_eq!(s.last_uid, Some(5));
        assert_eq!(
            s.to_string(),
            "a/INBOX: connected, last UID 5, 2 stored today (1 quarantined)"
        );
        st.disconnected("a", "INBOX", Some("boom".into()));
        assert!(st.get("a", "INBOX").unwrap().to_string().ends_with(
            "disconnected, last UID 5, 2 stored today (1 quarantined); last error: boom"
        ));
    }
}
