//! The audit trail: who changed what, and when.

use super::{Actor, Context, OpsError};
use crate::store::AuditEntry;
use crate::tracking::TrackingNumber;

/// Audit records, oldest first: all, or those of one thread (with the report it was promoted
/// from); `limit` keeps the newest that many.
pub fn list(
    cx: &Context,
    _actor: &Actor,
    thread: Option<&TrackingNumber>,
    limit: Option<usize>,
) -> Result<Vec<AuditEntry>, OpsError> {
    let thread = match thread {
        Some(n) => Some(cx.thread(n)?.number),
        None => None,
    };
    Ok(cx.store().audit_entries(thread.as_ref(), limit)?)
}
