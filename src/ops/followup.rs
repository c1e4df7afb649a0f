//! Follow-up: organizations notified that have not answered (`casegate overdue`), and the
//! reminders sent to their contacts.

use chrono::Utc;

use super::{Actor, Context, OpsError};
use crate::app;
use crate::outbox::QueuedCopy;
use crate::outbox::remind::{self, OverdueOrg, ReminderPolicy};

/// What `overdue` found and did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Overdue {
    /// After how many days without a reply an organization is listed.
    pub after_days: u32,
    pub orgs: Vec<OverdueOrg>,
    /// Reminder copies queued (or held) now, when asked for.
    pub reminders: Vec<QueuedCopy>,
}

/// Vendors of open cases notified at least `after_days` (default `[followup] overdue_days`)
/// ago with no reply since; with `remind`, each of their contacts not reminded within
/// `[followup] reminder_interval_days` gets a reminder now.
pub fn overdue(
    cx: &mut Context,
    actor: &Actor,
    after_days: Option<u32>,
    remind: bool,
) -> Result<Overdue, OpsError> {
    let after_days = after_days.unwrap_or(cx.settings().config.followup.overdue_days);
    let orgs = remind::overdue(cx.store(), Utc::now(), after_days)?;
    let mut reminders = Vec::new();
    if remind && !orgs.is_empty() {
        actor.may_change("send reminders")?;
        let coordinator = app::coordinator_key(cx.settings())?.ok_or_else(|| {
            OpsError::Conflict("no coordinator key yet; run `casegate init` first".into())
        })?;
        let settings = cx.settings().clone();
        reminders = remind::send_reminders(
            cx.store_mut(),
            &coordinator,
            &orgs,
            &ReminderPolicy {
                from: &settings.config.coordinator.address,
                outbox: &settings.config.outbox,
                interval_days: settings.config.followup.interval_days(),
                actor: actor.name(),
            },
        )?;
    }
    Ok(Overdue {
        after_days,
        orgs,
        reminders,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ops::orgs;
    use crate::ops::participants::KeyData;
    use crate::ops::testing::{ann, desk};
    use crate::store::MessageSource;
    use crate::tracking::{Kind, TrackingNumber};

    /// An armored public certificate (with its secret, for tests that decrypt) for `addr`.
    pub(crate) fn key_for(addr: &str) -> (String, sequoia_openpgp::Cert) {
        let (cert, _) =
            sequoia_openpgp::cert::CertBuilder::general_purpose(Some(format!("<{addr}>")))
                .generate()
                .unwrap();
        (crate::keyring::armored_public(&cert).unwrap(), cert)
    }

    /// A case VU#409117 with organization FooCorp (one contact with a key) as vendor.
    pub(crate) fn case_with_vendor(cx: &mut Context) -> TrackingNumber {
        let me = ann();
        orgs::add(cx, &me, "FooCorp", &[]).unwrap();
        let (armored, _) = key_for("psirt@foocorp.example");
        orgs::add_contact(
            cx,
            &me,
            "FooCorp",
            "psirt@foocorp.example",
            Some(KeyData {
                bytes: armored.as_bytes(),
                from: "psirt.asc",
            }),
        )
        .unwrap();
        let n = TrackingNumber::parse("VU#409117").unwrap();
        crate::ops::threads::open(cx, &me, Kind::Case, "Router bug", Some(&n)).unwrap();
        orgs::join(cx, &me, &n, "FooCorp", "vendor").unwrap();
        n
    }

    #[test]
    fn a_silent_vendor_is_overdue_and_reminded_once_per_interval_until_it_answers() {
        let mut d = desk();
        let cx = &mut d.cx;
        let me = ann();
        let n = case_with_vendor(cx);
        assert!(
            overdue(cx, &me, Some(0), false).unwrap().orgs.is_empty(),
            "not notified yet"
        );
        crate::ops::notices::notify(
            cx,
            &me,
            &n,
            &crate::ops::notices::NoticeRequest {
                body: "details".into(),
                subject: None,
                to: "all".into(),
                in_reply_to: None,
            },
        )
        .unwrap();
        assert!(
            overdue(cx, &me, None, false).unwrap().orgs.is_empty(),
            "14 days by default"
        );
        let o = overdue(cx, &me, Some(0), true).unwrap();
        assert_eq!(o.orgs.len(), 1);
        assert_eq!(o.orgs[0].org, "FooCorp");
        assert_eq!(o.reminders.len(), 1);
        assert_eq!(
            o.reminders[0].status, "queued",
            "encrypted to the contact's key"
        );
        // Reminded already within the interval: nothing more, however often it is asked.
        assert!(
            overdue(cx, &me, Some(0), true)
                .unwrap()
                .reminders
                .is_empty()
        );
        // A read-only actor may look, not remind.
        let reader = Actor::named("token:rita", true);
        assert!(overdue(cx, &reader, Some(0), true).is_err());
        assert_eq!(overdue(cx, &reader, Some(0), false).unwrap().orgs.len(), 1);
        // The vendor answers: no longer overdue. Reminders do not count as notices.
        let reply = format!(
            "From: psirt@foocorp.example\r\nTo: cert@example.test\r\nSubject: Re: {n}\r\n\
             Message-ID: <r1@foocorp.example>\r\n\r\nWe are looking.\r\n"
        );
        let out =
            crate::ops::ingest::ingest(cx, &me, reply.as_bytes(), MessageSource::Stdin).unwrap();
        assert_eq!(out.outcome, "routed");
        assert!(overdue(cx, &me, Some(0), false).unwrap().orgs.is_empty());
        let audit: Vec<String> = cx
            .store()
            .audit_entries(None, None)
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(audit.iter().filter(|a| *a == "remind").count(), 1);
    }
}
