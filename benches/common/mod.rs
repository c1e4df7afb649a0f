//! What the benches that run `casegate serve` against the project's Dovecot share.

use std::path::Path;

use crate::support::MailServers;

/// A `casegate.toml` for `casegate serve` watching `user`'s INBOX on the harness's Dovecot
/// (plain IMAP on loopback, the Maildir drop folder off), with `extra` appended (more sections).
pub fn serve_imap_toml(servers: &MailServers, user: &str, extra: &str) -> String {
    format!(
        r#"
[maildir]
enabled = false

[[imap]]
name = "bench"
host = "127.0.0.1"
port = {port}
tls = "none"
username = "{user}"
password_file = "{pw}"
mailboxes = ["INBOX"]
processed_folder = "casegate/processed"
timeout_secs = 60
{extra}"#,
        port = servers.imap_port,
        pw = servers.password_file.display(),
    )
}

/// Files in a Maildir folder (`cur` and `new`): cheaper to poll than `doveadm`.
pub fn files_in(folder: &Path) -> usize {
    ["cur", "new"]
        .iter()
        .map(|d| std::fs::read_dir(folder.join(d)).map_or(0, |r| r.count()))
        .sum()
}
