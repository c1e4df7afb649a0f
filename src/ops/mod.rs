//! The one set of operations behind every face. The command line (`main.rs`) and the HTTP API
//! call these functions, and nothing else, to read or change what casegate knows: the faces
//! parse input and present results; rules, store access and the audit trail live here.
//!
//! Every operation takes the [`Actor`] doing it and plain inputs, and returns a
//! `serde::Serialize` result — the object `--json` prints and HTTP returns — or an
//! [`OpsError`] whose kind maps to an HTTP status and whose message says what to do next.
//! Every operation that changes something writes an audit record (who, when, what, which
//! thread or message), in the transaction of the change whenever the change is one store
//! transaction. A read-only actor is refused every change ([`OpsError::Forbidden`]).
//!
//! One module per concern: [`threads`], [`messages`] (read, attachments), [`ingest`],
//! [`triage`], [`participants`] (and keys), [`keys`] (expiry, key changes, WKD refresh),
//! [`orgs`] (the directory of organizations), [`vendors`] (status and statements),
//! [`notices`] (the outbox, group notices, relays), [`followup`] (overdue organizations,
//! reminders), [`quarantine`], [`audit`], [`tokens`], [`setup`].

pub mod audit;
pub mod followup;
pub mod ingest;
pub mod keys;
pub mod messages;
pub mod notices;
pub mod orgs;
pub mod participants;
pub mod quarantine;
pub mod setup;
pub mod threads;
pub mod tokens;
pub mod triage;
pub mod vendors;

use chrono::Utc;

use crate::app::{self, AppError};
use crate::config::Settings;
use crate::keyring::Keyring;
use crate::outbox::OutboxError;
use crate::pipeline::{PipelineError, PipelineRef, Rules};
use crate::store::{NewAudit, Store, StoreError, Thread};
use crate::tracking::TrackingNumber;

/// Who is acting: `cli:<os user>` on the command line, `token:<analyst>` over HTTP. Recorded
/// in the audit trail; a read-only actor may look but not change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Actor {
    name: String,
    read_only: bool,
}

impl Actor {
    /// The person at the command line: `cli:$USER` (or the numeric user id).
    pub fn cli() -> Actor {
        let user = ["USER", "LOGNAME"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|u| !u.trim().is_empty()))
            .unwrap_or_else(|| {
                // No login variables (cron, containers, CI): the account of our user id.
                use std::os::unix::fs::MetadataExt;
                let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) else {
                    return "unknown".into();
                };
                std::fs::read_to_string("/etc/passwd")
                    .ok()
                    .and_then(|p| {
                        p.lines().find_map(|l| {
                            let mut f = l.split(':');
                            let name = f.next()?;
                            (f.nth(1)? == uid.to_string()).then(|| name.to_string())
                        })
                    })
                    .unwrap_or_else(|| format!("uid{uid}"))
            });
        Actor {
            name: format!("cli:{user}"),
            read_only: false,
        }
    }

    /// An analyst who presented an API token (see [`tokens::authenticate`]).
    pub fn analyst(analyst: &tokens::Analyst) -> Actor {
        Actor {
            name: format!("token:{}", analyst.name),
            read_only: analyst.read_only,
        }
    }

    /// Any other actor, e.g. `daemon`; `name` is recorded as given.
    pub fn named(name: &str, read_only: bool) -> Actor {
        Actor {
            name: name.to_string(),
            read_only,
        }
    }

    /// As the audit trail records it: `cli:ann`, `token:ann`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The person, without how they came in: `ann`.
    pub fn person(&self) -> &str {
        self.name
            .split_once(':')
            .map(|(_, p)| p)
            .unwrap_or(&self.name)
    }

    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// Refuses a change to a read-only actor.
    fn may_change(&self, what: &str) -> Result<(), OpsError> {
        if self.read_only {
            return Err(OpsError::Forbidden(format!(
                "{} has a read-only token and may not {what}; ask for a token made without --read-only",
                self.name
            )));
        }
        Ok(())
    }
}

/// What kind of failure an [`OpsError`] is; each maps to one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// 404: the thread, message, token, ... does not exist.
    NotFound,
    /// 409: the store's state forbids it now (exists already, not waiting any more, ambiguous).
    Conflict,
    /// 400: the input is wrong (a bad date, an unknown role, a file that is not a key).
    Invalid,
    /// 403: the actor may not do this (a read-only token changing something).
    Forbidden,
    /// 500: casegate or its store failed; nothing the caller can fix by asking differently.
    Internal,
    /// 401: no valid API token or session (see [`tokens::authenticate`]).
    Unauthenticated,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not-found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Internal => "internal",
            ErrorKind::Unauthenticated => "unauthenticated",
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::Invalid => 400,
            ErrorKind::Forbidden => 403,
            ErrorKind::Internal => 500,
            ErrorKind::Unauthenticated => 401,
        }
    }
}

/// Why an operation failed. The message is for people and says what to do next.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OpsError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Internal(String),
}

impl OpsError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            OpsError::NotFound(_) => ErrorKind::NotFound,
            OpsError::Conflict(_) => ErrorKind::Conflict,
            OpsError::Invalid(_) => ErrorKind::Invalid,
            OpsError::Forbidden(_) => ErrorKind::Forbidden,
            OpsError::Internal(_) => ErrorKind::Internal,
        }
    }
}

/// A slice of a long list: at most `limit` items after skipping `offset`. The command line
/// asks for [`Page::ALL`]; HTTP clients choose, within [`Page::MAX_LIMIT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub offset: usize,
    pub limit: usize,
}

impl Page {
    /// Everything (the command line).
    pub const ALL: Page = Page {
        offset: 0,
        limit: usize::MAX,
    };
    /// The most items a caller that chooses may get at once.
    pub const MAX_LIMIT: usize = 500;
    /// What a caller gets when it does not say.
    pub const DEFAULT_LIMIT: usize = 100;

    /// `limit` items from `offset`; a limit above [`Page::MAX_LIMIT`] (or 0) is refused.
    pub fn bounded(offset: Option<usize>, limit: Option<usize>) -> Result<Page, OpsError> {
        let limit = limit.unwrap_or(Page::DEFAULT_LIMIT);
        if limit == 0 || limit > Page::MAX_LIMIT {
            return Err(OpsError::Invalid(format!(
                "limit {limit} is out of range; ask for 1 to {} items and page on with offset",
                Page::MAX_LIMIT
            )));
        }
        Ok(Page {
            offset: offset.unwrap_or(0),
            limit,
        })
    }

    /// A page over `total` items, given the items of this page.
    pub(crate) fn of<T>(self, items: Vec<T>, total: usize) -> Paged<T> {
        let end = self.offset.saturating_add(items.len());
        Paged {
            next_offset: (end < total && !items.is_empty()).then_some(end),
            offset: self.offset,
            total,
            items,
        }
    }

    /// The page of a list that is already whole in memory (short lists: participants, keys).
    pub(crate) fn slice<T>(self, all: Vec<T>) -> Paged<T> {
        let total = all.len();
        let items = all.into_iter().skip(self.offset).take(self.limit).collect();
        self.of(items, total)
    }
}

/// One page of a list, with where the next one starts.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Paged<T> {
    pub items: Vec<T>,
    /// How many there are in all.
    pub total: usize,
    /// Where this page starts.
    pub offset: usize,
    /// Where the next page starts; `null` on the last page.
    pub next_offset: Option<usize>,
}

/// An error as a face sends it: `{"error": "not-found", "message": "no thread VU#1; ..."}`.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorKind,
    pub message: String,
}

impl From<&OpsError> for ErrorBody {
    fn from(e: &OpsError) -> ErrorBody {
        ErrorBody {
            error: e.kind(),
            message: e.to_string(),
        }
    }
}

impl From<&tokens::AuthError> for ErrorBody {
    fn from(e: &tokens::AuthError) -> ErrorBody {
        ErrorBody {
            error: match e {
                tokens::AuthError::Store(_) => ErrorKind::Internal,
                _ => ErrorKind::Unauthenticated,
            },
            message: e.to_string(),
        }
    }
}

impl From<StoreError> for OpsError {
    fn from(e: StoreError) -> OpsError {
        match e {
            StoreError::NotFound(m) => OpsError::NotFound(m),
            StoreError::Conflict(m) => OpsError::Conflict(m),
            StoreError::Invalid(m) => OpsError::Invalid(m),
            e @ (StoreError::Sqlite(_)
            | StoreError::Postgres(_)
            | StoreError::Unavailable(_)
            | StoreError::Io(_)) => OpsError::Internal(e.to_string()),
        }
    }
}

impl From<AppError> for OpsError {
    fn from(e: AppError) -> OpsError {
        match e {
            AppError::StoreOp(s) => s.into(),
            AppError::Config(c) => OpsError::Invalid(c.to_string()),
            e => OpsError::Internal(e.to_string()),
        }
    }
}

impl From<PipelineError> for OpsError {
    fn from(e: PipelineError) -> OpsError {
        match e {
            PipelineError::Store(s) => s.into(),
        }
    }
}

impl From<OutboxError> for OpsError {
    fn from(e: OutboxError) -> OpsError {
        match e {
            OutboxError::Store(s) => s.into(),
            OutboxError::NoRecipients(m) => OpsError::Conflict(m),
            OutboxError::Config(m) => OpsError::Invalid(m),
            e @ OutboxError::Compose(_) => OpsError::Internal(e.to_string()),
        }
    }
}

/// What every operation works on: the settings, the store, and (loaded when first needed,
/// reloaded when certificates change) the keyring. One per thread of work; not shared.
pub struct Context {
    settings: Settings,
    rules: Rules,
    store: Store,
    /// Shared, so that a batch can be read with it on other threads while this one stores.
    keyring: Option<(i64, std::sync::Arc<Keyring>)>,
}

impl Context {
    /// Opens the store of `settings` (creating the data directory on first use).
    pub fn open(settings: Settings) -> Result<Context, OpsError> {
        let store = app::open_store(&settings)?;
        Ok(Context::with_store(settings, store))
    }

    /// Over a store opened elsewhere (tests, benchmarks).
    pub fn with_store(settings: Settings, store: Store) -> Context {
        Context {
            rules: Rules::from_settings(&settings),
            settings,
            store,
            keyring: None,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }

    /// The coordinator key and the participants' certificates as stored now. Kept between
    /// calls and read again only when the store's keys generation moved.
    pub(crate) fn keyring(&mut self) -> Result<&Keyring, OpsError> {
        self.refresh_keyring()?;
        match &self.keyring {
            Some((_, k)) => Ok(k),
            None => Err(OpsError::Internal("keyring not loaded".into())),
        }
    }

    fn refresh_keyring(&mut self) -> Result<(), OpsError> {
        let version = self.store.keys_generation()?;
        if !matches!(&self.keyring, Some((v, _)) if *v == version) {
            let keyring = app::load_keyring(&self.settings, &self.store)?;
            self.keyring = Some((version, std::sync::Arc::new(keyring)));
        }
        Ok(())
    }

    /// The current keyring, to read with on another thread (see [`Context::keyring`]).
    pub(crate) fn shared_keyring(&mut self) -> Result<std::sync::Arc<Keyring>, OpsError> {
        self.refresh_keyring()?;
        match &self.keyring {
            Some((_, k)) => Ok(k.clone()),
            None => Err(OpsError::Internal("keyring not loaded".into())),
        }
    }

    pub(crate) fn rules(&self) -> &Rules {
        &self.rules
    }

    /// The store and the current keyring at once (for the outbox side, which reads what it
    /// relays with the coordinator key and writes the copies).
    pub(crate) fn store_and_keyring(&mut self) -> Result<(&mut Store, &Keyring), OpsError> {
        self.refresh_keyring()?;
        match &self.keyring {
            Some((_, k)) => Ok((&mut self.store, k)),
            None => Err(OpsError::Internal("keyring not loaded".into())),
        }
    }

    /// The inbound pipeline over this context's store and current keyring; with an
    /// `audit_actor`, every message it stores is audited as that actor's doing.
    pub(crate) fn pipeline<'a>(
        &'a mut self,
        audit_actor: Option<&'a str>,
    ) -> Result<PipelineRef<'a>, OpsError> {
        self.refresh_keyring()?;
        let Some((_, keyring)) = &self.keyring else {
            return Err(OpsError::Internal("keyring not loaded".into()));
        };
        Ok(PipelineRef {
            store: &mut self.store,
            keyring,
            rules: &self.rules,
            audit_actor,
        })
    }

    /// The thread `n` names (a promoted report is returned as the report).
    pub(crate) fn own_thread(&self, n: &TrackingNumber) -> Result<Thread, OpsError> {
        self.store.thread(n)?.ok_or_else(|| {
            OpsError::NotFound(format!(
                "no thread {n}; see `casegate list`, or create it with `casegate open {} --title ...`",
                n.kind()
            ))
        })
    }

    /// The thread `n` names, or the case a promoted report became.
    pub(crate) fn thread(&self, n: &TrackingNumber) -> Result<Thread, OpsError> {
        self.store
            .resolve_thread(n)?
            .ok_or_else(|| OpsError::NotFound(format!("no thread {n}; see `casegate list`")))
    }
}

/// An audit record by `actor`, now.
pub(crate) fn audit_record(
    actor: &Actor,
    action: &str,
    thread: Option<&TrackingNumber>,
    message_ref: Option<i64>,
    detail: String,
) -> NewAudit {
    NewAudit {
        at: Utc::now(),
        actor: actor.name().to_string(),
        action: action.to_string(),
        thread: thread.cloned(),
        message_ref,
        detail,
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A context over an in-memory store with a coordinator key, for the unit tests of ops.
    use super::*;

    pub struct TestDesk {
        pub cx: Context,
        _dir: tempfile::TempDir,
    }

    /// A fresh data dir with a store and a coordinator key (`init`).
    pub fn desk() -> TestDesk {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings::load(None, Some(dir.path())).unwrap();
        app::init(&settings).unwrap();
        let cx = Context::open(settings).unwrap();
        TestDesk { cx, _dir: dir }
    }

    pub fn ann() -> Actor {
        Actor::named("cli:ann", false)
    }

    #[test]
    fn a_context_can_move_to_another_thread_and_errors_serialize_with_their_kind() {
        fn movable<T: Send + 'static>() {}
        movable::<Context>();
        movable::<OpsError>();
        let body = ErrorBody::from(&OpsError::NotFound("no thread VU#1".into()));
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"error":"not-found","message":"no thread VU#1"}"#
        );
        assert_eq!(OpsError::Conflict(String::new()).kind().http_status(), 409);
        assert_eq!(OpsError::Internal(String::new()).kind().http_status(), 500);
    }
}
