//! Setting up and looking at the whole: `init` and `status`.

use chrono::Utc;

use super::{Actor, Context, OpsError, audit_record};
use crate::app::{self, Initialized};
use crate::config::Settings;
pub use crate::store::MailboxSummary;

/// Creates the data dir, the store and a coordinator key if none exists (idempotent); a key
/// made is recorded in the audit trail.
pub fn init(settings: &Settings, actor: &Actor) -> Result<Initialized, OpsError> {
    actor.may_change("initialize casegate")?;
    let done = app::init(settings)?;
    if done.created_key {
        let cx = Context::open(settings.clone())?;
        cx.store().record_audit(&audit_record(
            actor,
            "init",
            None,
            None,
            format!(
                "coordinator key {} created in {}",
                done.fingerprint, done.key_file
            ),
        ))?;
    }
    Ok(done)
}

/// What waits: per watched mailbox its checkpoint and today's counts, and the queue sizes.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Status {
    pub mailboxes: Vec<MailboxSummary>,
    /// Which instance watches which mailbox (several instances on one database).
    pub leases: Vec<crate::store::Lease>,
    /// Messages waiting in triage.
    pub triage: usize,
    /// Messages kept in quarantine.
    pub quarantine: usize,
}

pub fn status(cx: &Context, _actor: &Actor) -> Result<Status, OpsError> {
    let midnight = Utc::now()
        .date_naive()
        .and_time(chrono::NaiveTime::MIN)
        .and_utc();
    let store = cx.store();
    Ok(Status {
        mailboxes: store.mailbox_summaries(midnight)?,
        leases: store.mailbox_leases()?,
        triage: store.triage_page(false, 0, 0)?.1,
        quarantine: store.quarantined_page(0, 0)?.1,
    })
}
