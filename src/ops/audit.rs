//! The audit trail: who changed what, and when.

use super::{Actor, Context, OpsError, Page, Paged};
use crate::store::AuditEntry;
use crate::tracking::TrackingNumber;

/// Audit records, NEWEST first: all, or those of one thread (with the report it was
/// promoted from).
pub fn list(
    cx: &Context,
    _actor: &Actor,
    thread: Option<&TrackingNumber>,
    page: Page,
) -> Result<Paged<AuditEntry>, OpsError> {
    let thread = match thread {
        Some(n) => Some(cx.thread(n)?.number),
        None => None,
    };
    let (items, total) = cx
        .store()
        .audit_page(thread.as_ref(), page.offset, page.limit)?;
    Ok(page.of(items, total))
}
