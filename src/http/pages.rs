//! The analysts' web page: server-rendered HTML (maud templates, compiled into the binary),
//! one stylesheet of our own, no JavaScript, nothing from elsewhere. Log in with an API token
//! for a session cookie; every form carries the session's CSRF token. Every page calls the
//! same `ops` functions as the command line and the API.

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Multipart, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use super::auth::{self, Session};
use super::{Http, mail_html};
use crate::ops::messages::MessageView;
use crate::ops::notices::NoticeRequest;
use crate::ops::participants::{ContactKeys, KeyData, NewContact, ROLES};
use crate::ops::{self, OpsError, Page, Paged};
use crate::store::{Contact, MessageRecord, RESPONSE_DAYS};
use crate::tracking::{Kind, TrackingNumber};

pub fn routes() -> Router<Arc<Http>> {
    Router::new()
        .route("/", get(triage_page))
        .route("/style.css", get(stylesheet))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/threads", get(threads_page))
        .route("/threads/{number}", get(thread_page))
        .route("/threads/{number}/promote", post(promote))
        .route("/threads/{number}/participants", post(add_participant))
        .route("/threads/{number}/notice", get(compose).post(send_notice))
        .route("/threads/{number}/notice/preview", post(preview_notice))
        .route("/threads/{number}/release", post(release))
        .route("/messages/{reference}", get(message_page))
        .route("/messages/{reference}/html", get(message_html))
        .route("/messages/{reference}/raw", get(message_raw))
        .route(
            "/messages/{reference}/attachments/{n}",
            get(message_attachment),
        )
        .route("/triage/{reference}/assign", post(assign))
        .route("/quarantine", get(quarantine_page))
        .route("/quarantine/{reference}", get(quarantine_message))
        .route("/quarantine/{reference}/retry", post(retry))
        .route("/outbox", get(outbox_page))
        .route("/audit", get(audit_page))
        .fallback(|| async {
            PageError::Ops(OpsError::NotFound(
                "no such page; start from the triage queue".into(),
            ))
        })
}

// ----- plumbing -----

/// A failed page: an error page with the status, or back to the log-in form.
pub enum PageError {
    Ops(OpsError),
    LogIn,
    Csrf,
}

impl From<OpsError> for PageError {
    fn from(e: OpsError) -> PageError {
        PageError::Ops(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::LogIn => Redirect::to("/login").into_response(),
            PageError::Csrf => error_page(
                StatusCode::FORBIDDEN,
                "This form was not sent from a page casegate gave you (its CSRF token is missing or stale). Go back, reload the page and send it again.",
            ),
            PageError::Ops(e) => {
                if let OpsError::Internal(m) = &e {
                    tracing::error!(error = %m, "page request failed");
                }
                let status = StatusCode::from_u16(e.kind().http_status())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                error_page(status, &e.to_string())
            }
        }
    }
}

fn error_page(status: StatusCode, message: &str) -> Response {
    let body = html! {
        (DOCTYPE)
        html lang="en" {
            head { (head_tags("casegate: error")) }
            body {
                header.top { a.brand href="/" { "casegate" } }
                main {
                    h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                    p.error { (message) }
                    p { a href="/" { "Back to the triage queue" } }
                }
            }
        }
    };
    (status, body).into_response()
}

type PageResult = Result<Response, PageError>;

/// A URL-encoded form whose rejection is an error page (a missing CSRF field is an empty
/// token, refused by [`check_csrf`]).
#[derive(axum::extract::FromRequest)]
#[from_request(via(axum::Form), rejection(PageError))]
struct PageForm<T>(T);

impl From<axum::extract::rejection::FormRejection> for PageError {
    fn from(r: axum::extract::rejection::FormRejection) -> PageError {
        PageError::Ops(OpsError::Invalid(format!(
            "the form is not complete: {}",
            r.body_text()
        )))
    }
}

/// The logged-in analyst of this request (else: to the log-in form).
struct Analyst(Session);

impl FromRequestParts<Arc<Http>> for Analyst {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, http: &Arc<Http>) -> Result<Self, PageError> {
        match http
            .sessions
            .current(&http.desk, &parts.headers, http.tls)
            .await?
        {
            Some(s) => Ok(Analyst(s)),
            None => Err(PageError::LogIn),
        }
    }
}

fn check_csrf(session: &Session, presented: &str) -> Result<(), PageError> {
    if session.csrf_ok(presented) {
        Ok(())
    } else {
        Err(PageError::Csrf)
    }
}

fn number(text: &str) -> Result<TrackingNumber, PageError> {
    TrackingNumber::parse(text.trim()).map_err(|e| {
        PageError::Ops(OpsError::Invalid(format!(
            "{text:?} is not a tracking number ({e})"
        )))
    })
}

/// A path segment for a tracking number or Message-ID (`#` and the rest percent-encoded).
fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn thread_url(n: &str) -> String {
    format!("/threads/{}", seg(n))
}

fn message_url(short_id: &str) -> String {
    format!("/messages/{}", seg(short_id))
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    offset: Option<usize>,
}

fn page_at(offset: Option<usize>) -> Page {
    Page {
        offset: offset.unwrap_or(0),
        limit: Page::DEFAULT_LIMIT,
    }
}

/// Earlier / later links under a paged list.
fn pager<T>(p: &Paged<T>, base: &str, limit: usize) -> Markup {
    let join = if base.contains('?') { '&' } else { '?' };
    html! {
        @if p.offset > 0 || p.next_offset.is_some() {
            nav.pager {
                @if p.offset > 0 {
                    a href=(format!("{base}{join}offset={}", p.offset.saturating_sub(limit))) { "← earlier" }
                }
                span { (p.offset + 1) "–" (p.offset + p.items.len()) " of " (p.total) }
                @if let Some(next) = p.next_offset {
                    a href=(format!("{base}{join}offset={next}")) { "later →" }
                }
            }
        }
    }
}

/// One cell of a [`list_table`] row: an optional class (`num`, `fpr`) and its content.
struct Cell {
    class: Option<&'static str>,
    body: Markup,
}

fn cell(body: Markup) -> Cell {
    Cell { class: None, body }
}

fn num_cell(n: impl std::fmt::Display) -> Cell {
    Cell {
        class: Some("num"),
        body: html! { (n.to_string()) },
    }
}

fn fpr_cell(fingerprint: Option<&str>) -> Cell {
    Cell {
        class: Some("fpr"),
        body: html! { (fingerprint.unwrap_or("-")) },
    }
}

/// A list as a table: on a laptop, columns under their headings; on a narrow screen (see
/// [`STYLE`]) one block per row, each cell labelled with its heading from `data-label`, so no
/// column is squeezed and nothing scrolls sideways. `late` marks a row overdue.
fn list_table(head: &[&str], rows: impl IntoIterator<Item = (bool, Vec<Cell>)>) -> Markup {
    html! {
        div.scroll {
            table.list {
                thead { tr { @for h in head { th { (h) } } } }
                tbody {
                    @for (late, cells) in rows {
                        tr.overdue[late] {
                            @for (i, c) in cells.into_iter().enumerate() {
                                td class=[c.class] data-label=(head.get(i).copied().unwrap_or("")) { (c.body) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn head_tags(title: &str) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        meta name="referrer" content="no-referrer";
        title { (title) }
        link rel="stylesheet" href="/style.css";
    }
}

fn layout(title: &str, session: &Session, content: Markup) -> Response {
    let body = html! {
        (DOCTYPE)
        html lang="en" {
            head { (head_tags(&format!("{title} · casegate"))) }
            body {
                header.top {
                    a.brand href="/" { "casegate" }
                    nav.main {
                        a href="/" { "Triage" }
                        a href="/threads" { "Threads" }
                        a href="/outbox" { "Outbox" }
                        a href="/quarantine" { "Quarantine" }
                        a href="/audit" { "Audit" }
                    }
                    form.logout method="post" action="/logout" {
                        span.who {
                            (session.analyst)
                            @if session.read_only { " (read-only)" }
                        }
                        input type="hidden" name="csrf" value=(session.csrf);
                        button type="submit" { "Log out" }
                    }
                }
                main { (content) }
            }
        }
    };
    body.into_response()
}

/// Runs `f` on a store context (see [`super::desk::Desk::run`]) as the session's analyst.
async fn as_analyst<T: Send + 'static>(
    http: &Http,
    s: &Session,
    f: impl FnOnce(&mut ops::Context, &ops::Actor) -> Result<T, OpsError> + Send + 'static,
) -> Result<T, OpsError> {
    let me = s.actor();
    http.desk.run(move |cx| f(cx, &me)).await
}

fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// "2 d 4 h" since an RFC 3339 time.
fn age(since: &str, now: DateTime<Utc>) -> (String, bool) {
    let Ok(t) = DateTime::parse_from_rfc3339(since) else {
        return ("?".into(), false);
    };
    let d = now - t.with_timezone(&Utc);
    let overdue = d > chrono::Duration::days(RESPONSE_DAYS);
    let text = if d.num_days() > 0 {
        format!("{} d {} h", d.num_days(), d.num_hours() % 24)
    } else if d.num_hours() > 0 {
        format!("{} h {} min", d.num_hours(), d.num_minutes() % 60)
    } else {
        format!("{} min", d.num_minutes().max(0))
    };
    (text, overdue)
}

/// The badges of a message: what casegate decided about its protection and nature.
fn badges(m: &MessageRecord, participants: &[Contact]) -> Markup {
    let partial = m
        .signature_reason
        .as_deref()
        .is_some_and(|r| r.starts_with("partial"));
    let signer = m.signer.as_deref().and_then(|fpr| {
        participants.iter().find(|c| {
            c.key_fingerprints
                .iter()
                .any(|k| k.eq_ignore_ascii_case(fpr))
        })
    });
    let flags: Vec<&str> = m.flags.split(',').map(str::trim).collect();
    html! {
        span.badges {
            @if m.encrypted { span.badge.ok { "encrypted" } }
            @else if m.encryption_note.is_some() { span.badge.warn { "partly encrypted" } }
            @match m.signature.as_str() {
                "good" => {
                    span.badge.ok {
                        "signed by "
                        @if let Some(c) = signer { (c.org) " <" (c.address) ">" } @else { "participant" }
                    }
                }
                "bad" => span.badge.bad { "bad signature" },
                "unknown-key" => span.badge.warn { "unknown key" },
                "not-participant" => span.badge.warn { "signed by a non-participant" },
                _ => {}
            }
            @if partial { span.badge.warn { "partly signed" } }
            @if flags.contains(&"delivery-report") { span.badge.info { "delivery report" } }
            @if m.automatic { span.badge.info { "automatic" } }
            @if flags.contains(&"unsigned-statement") { span.badge.warn { "unsigned statement" } }
            @if m.direction == "out" { span.badge.info { "sent by us" } }
        }
    }
}

// ----- log in / out -----

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}

async fn login_form(State(http): State<Arc<Http>>) -> PageResult {
    let nonce = auth::random_token()?;
    Ok(login_page(&http, &nonce, None, StatusCode::OK))
}

fn login_page(http: &Http, nonce: &str, problem: Option<&str>, status: StatusCode) -> Response {
    let body = html! {
        (DOCTYPE)
        html lang="en" {
            head { (head_tags("Log in · casegate")) }
            body {
                header.top { a.brand href="/" { "casegate" } }
                main.narrow {
                    h1 { "Log in" }
                    @if let Some(p) = problem { p.error { (p) } }
                    form method="post" action="/login" {
                        input type="hidden" name="csrf" value=(nonce);
                        label for="token" { "API token" }
                        input #token type="password" name="token" autocomplete="off" required autofocus;
                        button type="submit" { "Log in" }
                    }
                    p.hint { "An administrator makes your token with " code { "casegate token add YOUR-NAME" } "." }
                }
            }
        }
    };
    let cookie = auth::set_cookie(
        auth::login_cookie_name(http.tls),
        nonce,
        std::time::Duration::from_secs(3600),
        http.tls,
    );
    let mut r = (status, body).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
    #[serde(default)]
    csrf: String,
}

async fn login(
    State(http): State<Arc<Http>>,
    headers: HeaderMap,
    PageForm(form): PageForm<LoginForm>,
) -> PageResult {
    let expected = auth::cookie(&headers, auth::login_cookie_name(http.tls)).unwrap_or_default();
    if !auth::same_secret(&expected, &form.csrf) {
        return Err(PageError::Csrf);
    }
    let Some(digest) = ops::tokens::digest(&form.token) else {
        let nonce = auth::random_token()?;
        return Ok(login_page(
            &http,
            &nonce,
            Some("Paste your API token."),
            StatusCode::UNAUTHORIZED,
        ));
    };
    let token = form.token.clone();
    let who = http
        .desk
        .run(move |cx| Ok(ops::tokens::authenticate(cx, &token)))
        .await?;
    let analyst = match who {
        Ok(a) => a,
        Err(ops::tokens::AuthError::Store(e)) => return Err(OpsError::Internal(e).into()),
        Err(e) => {
            let nonce = auth::random_token()?;
            return Ok(login_page(
                &http,
                &nonce,
                Some(&e.to_string()),
                StatusCode::UNAUTHORIZED,
            ));
        }
    };
    let id = http.sessions.start(&analyst, digest)?;
    tracing::info!(analyst = %analyst.name, "web session started");
    let mut r = Redirect::to("/").into_response();
    let cookies = [
        auth::set_cookie(
            auth::session_cookie_name(http.tls),
            &id,
            http.sessions.lifetime(),
            http.tls,
        ),
        auth::set_cookie(
            auth::login_cookie_name(http.tls),
            "",
            std::time::Duration::ZERO,
            http.tls,
        ),
    ];
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(r)
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(http): State<Arc<Http>>,
    Analyst(s): Analyst,
    headers: HeaderMap,
    PageForm(form): PageForm<CsrfForm>,
) -> PageResult {
    check_csrf(&s, &form.csrf)?;
    if let Some(v) = auth::cookie(&headers, auth::session_cookie_name(http.tls)) {
        http.sessions.end(&v);
    }
    let mut r = Redirect::to("/login").into_response();
    let gone = auth::set_cookie(
        auth::session_cookie_name(http.tls),
        "",
        std::time::Duration::ZERO,
        http.tls,
    );
    if let Ok(v) = HeaderValue::from_str(&gone) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(r)
}

// ----- triage -----

/// Threads offered when assigning (each costs a few queries to summarize).
const SUGGESTED_THREADS: usize = 30;

async fn triage_page(
    State(http): State<Arc<Http>>,
    Analyst(s): Analyst,
    Query(q): Query<PageQuery>,
) -> PageResult {
    let page = page_at(q.offset);
    let (queue, threads) = as_analyst(&http, &s, move |cx, me| {
        let queue = ops::triage::list(cx, me, false, page)?;
        // Suggestions for the thread to assign to: the newest few (any number can be typed).
        let total = ops::threads::list(
            cx,
            me,
            None,
            Page {
                offset: 0,
                limit: 0,
            },
        )?
        .total;
        let newest = Page {
            offset: total.saturating_sub(SUGGESTED_THREADS),
            limit: SUGGESTED_THREADS,
        };
        let threads = ops::threads::list(cx, me, None, newest)?;
        Ok((queue, threads))
    })
    .await?;
    let now = Utc::now();
    let overdue = queue
        .items
        .iter()
        .filter(|m| age(&m.received_at, now).1)
        .count();
    let content = html! {
        h1 { "Triage queue" }
        p.summary {
            (queue.total) " waiting"
            @if overdue > 0 { " · " span.overdue-note { (overdue) " past the " (RESPONSE_DAYS) "-day response promise on this page" } }
        }
        datalist #threads {
            @for t in threads.items.iter().rev() {
                @if t.thread.promoted_to.is_none() {
                    option value=(t.thread.number.as_str()) { (t.thread.title) }
                }
            }
        }
        @if queue.items.is_empty() {
            p { "Nothing waits for a person." }
        } @else {
            ul.queue {
                @for m in &queue.items {
                    @let (waited, late) = age(&m.received_at, now);
                    li.item.overdue[late] {
                        div.line1 {
                            a.subject href=(message_url(&m.short_id)) { (m.subject.as_deref().unwrap_or("(no subject)")) }
                            span.age title=(m.received_at) {
                                @if late { strong { "waiting " (waited) " — past " (RESPONSE_DAYS) " days" } }
                                @else { "waiting " (waited) }
                            }
                        }
                        div.line2 {
                            span.sender { (m.sender.as_deref().unwrap_or("-")) }
                            (badges(m, &[]))
                        }
                        div.reason { "Why it waits: " (m.triage_reason.as_deref().unwrap_or(&m.reason)) }
                        form.inline method="post" action=(format!("/triage/{}/assign", seg(&m.short_id))) {
                            (csrf_field(&s))
                            label { "Assign to "
                                input type="text" name="thread" list="threads" placeholder="VU#409117" required size="16";
                            }
                            button type="submit" { "Assign" }
                        }
                    }
                }
            }
            (pager(&queue, "/", page.limit))
        }
    };
    Ok(layout("Triage", &s, content))
}

#[derive(Deserialize)]
struct AssignForm {
    #[serde(default)]
    csrf: String,
    thread: String,
}

async fn assign(
    State(http): State<Arc<Http>>,
    Analyst(s): Analyst,
    Path(reference): Path<String>,
    PageForm(form): PageForm<AssignForm>,
) -> PageResult {
    check_csrf(&s, &form.csrf)?;
    let n = number(&form.thread)?;
    let done = as_analyst(&http, &s, move |cx, me| {
        ops::triage::assign(cx, me, &reference, &n, None)
    })
    .await?;
    let content = html! {
        h1 { "Assigned" }
        p.done {
            "Message " a href=(message_url(&done.short_id)) { code { (done.short_id) } }
            " is now in " a href=(thread_url(done.thread.as_str())) { (done.thread.as_str()) }
            " (decided by " (done.assigned_by) ")."
        }
        p { a href="/" { "Back to the triage queue" } }
    };
    Ok(layout("Assigned", &s, content))
}

// ----- threads -----

#[derive(Deserialize)]
struct ThreadsQuery {
    kind: Option<Kind>,
    offset: Option<usize>,
}

async fn threads_page(
    State(http): State<Arc<Http>>,
    Analyst(s): Analyst,
    Query(q): Query<ThreadsQuery>,
) -> PageResult {
    let page = page_at(q.offset);
    let kind = q.kind;
    let list = as_analyst(&http, &s, move |cx, me| {
        ops::threads::list(cx, me, kind, page)
    })
    .await?;
    let base = match kind {
        Some(k) => format!("/threads?kind={k}"),
        None => "/threads".to_string(),
    };
    let content = html! {
        h1 { "Threads" }
        nav.filters {
            a href="/threads" { "all" }
            a href="/threads?kind=case" { "cases" }
            a href="/threads?kind=report" { "reports" }
            a href="/threads?kind=ticket" { "tickets" }
        }
        (list_table(
            &["Number", "Title", "Status", "Participants", "Messages", "Last activity", "Planned publication"],
            list.items.iter().map(|t| (t.overdue, vec![
                cell(html! { a href=(thread_url(t.thread.number.as_str())) { (t.thread.number.as_str()) } }),
                cell(html! { (t.thread.title) }),
                cell(html! {
                    (t.thread.status)
                    @if let Some(to) = &t.thread.promoted_to { " → " a href=(thread_url(to.as_str())) { (to.as_str()) } }
                    @if t.overdue { br; strong.overdue-note { "reply overdue" } }
                }),
                num_cell(t.participants),
                num_cell(t.messages),
                cell(html! { (t.last_message_at.as_deref().unwrap_or("-")) }),
                cell(html! { (t.planned_publication.as_deref().unwrap_or("-")) }),
            ])),
        ))
        (pager(&list, &base, page.limit))
    };
    Ok(layout("Threads", &s, content))
}

async fn thread_page(
    State(http): State<Arc<Http>>,
    Analyst(s): Analyst,
    Path(n): Path<String>,
    Query(q): Query<PageQuery>,
) -> PageResult {
    let n = number(&n)?;
    let limit = Page::DEFAULT_LIMIT;
    let (view, contacts, summary) = as_analyst(&http, &s, move |cx, me| {
        // Newest last: without an offset, the last page.
        let offset = match q.offset {
            Some(o) => o,
            None => ops::threads::message_count(cx, me, &n)?.saturating_sub(limit),
        };
        let view = ops::threads::show(cx, me, &n, Page { offset, limit })?;
        let contacts = ops::participants::list(cx, me, &view.thread.number, Page::ALL)?;
        let summary = ops::threads::summary(cx, me, &view.thread.number)?;
        Ok((view, contacts, summary))
    })
    .await?;
    let t = &view.thread;
    let url = thread_url(t.number.as_str());
    let paged = Paged {
        items: view.messages.clone(),
        total: view.messages_total,
        offset: view.messages_offset,
        next_offset: (view.messages_offset + view.messages.len() < view.messages_total)
            .then_some(view.messages_offset + view.messages.len()),
    };
    let orgs: Vec<&str> = {
        let mut o: Vec<&str> = view.participants.iter().map(|c| c.org.as_str()).collect();
        o.dedup();
        o
    };
    let content = html! {
        h1 { (t.number.as_str()) " " small { (t.kind) } }
        p.title { (t.title) }
        dl.facts {
            dt { "Status" } dd { (t.status) }
            @if let Some(asked) = &view.asked_for { dt { "Asked for" } dd { (asked.as_str()) " (promoted to this case)" } }
            dt { "Last activity" } dd { (summary.last_message_at.as_deref().unwrap_or("-")) }
            dt { "Planned publication" } dd {
                (summary.planned_publication.as_deref().unwrap_or("not planned yet (45 days after the first notice)"))
            }
            @if let Some(w) = &summary.waiting_since {
                dt { "Waiting for our reply since" } dd.overdue[summary.overdue] { (w) @if summary.overdue { " — past the " (RESPONSE_DAYS) "-day promise" } }
            }
        }
        @if t.kind == Kind::Report && t.promoted_to.is_none() {
            form.inline method="post" action=(format!("{url}/promote")) {
                (csrf_field(&s))
                label { "Promote to case " input type="text" name="to" placeholder="(mint a number)" size="14"; }
                button type="submit" { "Promote" }
            }
        }
        section {
            h2 { "Participants" }
            (participants_table(&contacts.items))
            details {
                summary { "Add a participant" }
                form.stacked method="post" action=(format!("{url}/participants")) enctype="multipart/form-data" {
                    (csrf_field(&s))
                    label { "Organisation " input type="text" name="org" required; }
                    label { "Email " input type="email" name="email" required; }
                    label { "Role "
                        select name="role" { @for r in ROLES { option value=(r) { (r) } } }
                    }
                    label { "OpenPGP key (.asc) " input type="file" name="key" accept=".asc,.gpg,.pgp,application/pgp-keys"; }
                    button type="submit" { "Add participant" }
                }
            }
        }
        section {
            h2 { "Messages " small { "(" (view.messages_total) ", newest last)" } }
            (pager(&paged, &url, limit))
            ol.messages start=(view.messages_offset + 1) {
                @for m in &view.messages {
                    li.message {
                        div.line1 {
                            a href=(message_url(&m.short_id)) { (m.subject.as_deref().unwrap_or("(no subject)")) }
                            span.when { (m.received_at) }
                        }
                        div.line2 {
                            span.sender { (if m.direction == "out" { "to " } else { "" }) (m.sender.as_deref().unwrap_or("-")) }
                            (badges(m, &view.participants))
                        }
                    }
                }
            }
        }
        section #outbox {
            h2 { "Outbox " small { "(" (view.outbox_total) " copies)" } }
            @if !view.outbox.is_empty() {
                (list_table(
                    &["Recipient", "Organisation", "Status", "Key", "Attempts", "Last reply / reason"],
                    view.outbox.iter().map(|o| (false, vec![
                        cell(html! { (o.address) }),
                        cell(html! { (o.org) }),
                        cell(html! { span class=(format!("status {}", o.status)) { (o.status) } @if o.kind == crate::store::outbox::CopyKind::Stub { " (key request)" } }),
                        fpr_cell(o.key_fingerprint.as_deref()),
                        num_cell(o.attempts),
                        cell(html! { (o.last_reply.as_deref().or(o.reason.as_deref()).unwrap_or("")) }),
                    ])),
                ))
                @if view.outbox_total > view.outbox.len() {
                    p { a href=(format!("/outbox?thread={}", seg(t.number.as_str()))) { "All " (view.outbox_total) " copies" } }
                }
            }
            div.actions {
                a.button href=(format!("{url}/notice")) { "Compose a notice" }
                @if view.outbox.iter().any(|o| o.status == "held") {
                    form.inline method="post" action=(format!("{url}/release")) {
                        (csrf_field(&s))
                        button type="submit" { "Release held copies" }
                    }
                }
            }
        }
        @if orgs.is_empty() {
            p.hint { "Add participants before sending a notice." }
        }
    };
    Ok(layout(t.number.as_str(), &s, content))
}

fn participants_table(contacts: &[ContactKeys]) -> Markup {
    html! {
        @if contacts.is_empty() {
            p { "No participants yet." }
        } @else {
            (list_table(
                &["Organisation", "Role", "Contact", "Key"],
                contacts.iter().map(|c| (false, vec![
                    cell(html! { (c.contact.org) }),
                    cell(html! { (c.contact.role) }),
                    cell(html! { (c.contact.address) }),
                    cell(html! {
                        span class=(format!("badge key-{}", c.key_state)) {
                            @match c.key_state {
                                "valid" => "valid key",
                                "expiring" => "key expiring",
                                _ => "no usable key",
                            }
                        }
                        @for k in &c.keys {
                            br;
                            span.fpr { (k.fingerprint) }
                            " " (k.state)
                            @if let Some(e) = &k.expires { ", until " (e) }
                            @if let Some(r) = &k.reason { " — " (r) }
                        }
                    }),
                ])),
            ))
        }
    }
}

#[derive(Deserialize)]
struct PromoteForm {
    #[serde(default)]
    csrf: String,
    to: Option<String>,
}

async fn promote(
    State(http): State<Arc<Http>>,
    Analyst(s): Analyst,
    Path(n): Path<String>,
    PageForm(form): PageForm<PromoteForm>,
) -> PageResult {
    check_csrf(&s, &form.csrf)?;
    let n = number(&n)?;
    let to = match form.to.as_deref().map(str::trim) {
        Some(t) if !t.is_empty() => Some(number(t)?),
        _ => None,
    };
    let done = as_analyst(&http, &s, move |cx, me| {
        ops::threads::promote(cx, me, &n, to.as_ref())
    })
    .await?;
    Ok(Redirect::to(&thread_url(done.number.as_str())).into_response())
}

async fn add_participant(
    State(http): State<Arc<Http>>,
    Analyst(s): Analyst,
    Path(n): Path<String>,
    mut form: Multipart,
) -> PageResult {
    let n = number(&n)?;
    let (mut csrf, mut org, mut email, mut role) = (String::new(), None, None, None);
    let mut key: Option<Vec<u8>> = None;
    // Bounded: the body limit caps the bytes, and there are at most a few fields.
    for _ in 0..16 {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(OpsError::Invalid(format!("the form is not valid: {e}")).into()),
        };
        let name = field.name().unwrap_or("").to_string();
        let bytes = field
            .bytes()
            .await
            .map_err(|e| OpsError::Invalid(format!("the form is not valid: {e}")))?;
        let text = || String::from_utf8_lossy(&bytes).trim().to_string();
        match name.as_str() {
            "csrf" => csrf = text(),
            "org" => org = Some(text()),
            "email" => email = Some(text()),
            "role" => role = Some(text()),
            "key" if !bytes.is_empty() => key = Some(bytes.to_vec()),
            _ => {}
        }
    }
    check_csrf(&s, &csrf)?;
    let (Some(org), Some(email)) = (org, email) else {
        return Err(OpsError::Invalid("give the organisation and the email address".into()).into());
    };
    let role = role.unwrap_or_else(|| "vendor".into());
    let done = as_analyst(&http, &s, move |cx, me| {
        let contact = NewContact {
            org: &org,
            email: &email,
            role: &role,
            key: key.as_deref().map(|bytes| KeyData {
                bytes,
                from: "the uploaded key file",
            }),
        };
        ops::participants::add(cx, me, &n, &contact)
    })
    .await?;
    let content = html! {
        h1 { "Participant added" }
        p.done {
            (done.org) " (" (done.role) ") " (done.email) " is a participant of "
            a href=(thread_url(done.thread.as_str())) { (done.thread.as_str()) } "."
        }
        @if let Some(k) = &done.key_bound { p { "Key bound: " span.fpr { (k) } } }
        @for w in &done.warnings { p.warn { (w) } }
        @if !done.released.is_empty() {
            p { (done.released.len()) " held cop(ies) released with this key." }
        }
        p { a href=(thread_url(done.thread.as_str())) { "Back to " (done.thread.as_str()) } }
    };
    Ok(layout("Participant added", &s, content))
}

// ----- notices -----

async fn compose(
    State(http): State<Arc<Http>>,
    Analyst(s): Analyst,
    Path(n): Path<String>,
) -> PageResult {
    let n = number(&n)?;
    let contacts = as_analyst(&http, &s, move |cx, me| {
        let t = ops::threads::show(
            cx,
            me,
            &n,
            Page {
                offset: 0,
                limit: 0,
            },
        )?;
        let contacts = ops::participants::list(cx, me, &t.thread.number, Page::ALL)?;
        Ok((t.thread, contacts))
    })
    .await?;
    let (t, contacts) = contacts;
    Ok(layout(
        "Compose a notice",
        &s,
        notice_form(&s, &t.number, &t.title, &contacts.items, None, None, None),
    ))
}

fn notice_form(
    s: &Session,
    n: &TrackingNumber,
    title: &str,
    contacts: &[ContactKeys],
    to: Option<&str>,
    subject: Option<&str>,
    body: Option<&str>,
) -> Markup {
    let url = thread_url(n.as_str());
    let mut orgs: Vec<&str> = contacts.iter().map(|c| c.contact.org.as_str()).collect();
    orgs.sort_unstable();
    orgs.dedup();
    let to = to.unwrap_or("all");
    html! {
        h1 { "Notice to " a href=(url) { (n.as_str()) } }
        (participants_table(contacts))
        form.stacked method="post" action=(format!("{url}/notice/preview")) {
            (csrf_field(s))
            fieldset {
                legend { "To" }
                label.choice { input type="radio" name="to" value="all" checked[to == "all"]; " every participant" }
                @for o in &orgs {
                    label.choice { input type="radio" name="to" value=(o) checked[to == *o]; " " (o) " only" }
                }
            }
            label { "Subject " input type="text" name="subject" value=(subject.unwrap_or(title)); }
            label { "Text " textarea name="body" rows="14" required { (body.unwrap_or("")) } }
            button type="submit" { "Preview who gets it" }
        }
    }
}

#[derive(Deserialize)]
struct NoticeForm {
    #[serde(default)]
    csrf: String,
    to: String,
    subject: Option<String>,
    body: String,
}

async fn preview_notice(
    State(http): State<Arc<Http>>,
    Analyst(s): Analyst,
    Path(n): Path<String>,
    PageForm(form): PageForm<NoticeForm>,
) -> PageResult {
    check_csrf(&s, &form.csrf)?;
    let n = number(&n)?;
    let to = form.to.clone();
    let (preview, contacts, title) = as_analyst(&http, &s, move |cx, me| {
        let p = ops::notices::preview(cx, me, &n, &to)?;
        let contacts = ops::participants::list(cx, me, &p.thread, Page::ALL)?;
        let title = ops::threads::show(
            cx,
            me,
            &p.thread,
            Page {
                offset: 0,
                limit: 0,
            },
        )?
        .thread
        .title;
        Ok((p, contacts, title))
    })
    .await?;
    let url = thread_url(preview.thread.as_str());
    let content = html! {
        h1 { "Preview: notice to " a href=(url) { (preview.thread.as_str()) } }
        p.summary {
            strong { (preview.encrypted) } " recipient(s) get an encrypted copy; "
            strong { (preview.held) } " held."
        }
        (list_table(
            &["Recipient", "Organisation", "Gets", "Key / why held"],
            preview.recipients.iter().map(|r| (false, vec![
                cell(html! { (r.address) }),
                cell(html! { (r.org) }),
                cell(html! { span class=(format!("status {}", r.status)) { (r.status) } @if r.stub { " (and a key-request stub)" } }),
                cell(html! {
                    @if let Some(k) = &r.key_fingerprint { span.fpr { (k) } }
                    @if let Some(why) = &r.reason { (why) }
                }),
            ])),
        ))
        h2 { "Subject" }
        p { (form.subject.as_deref().unwrap_or(&title)) }
        h2 { "Text" }
        pre.mailtext { (form.body) }
        form method="post" action=(format!("{url}/notice")) {
            (csrf_field(&s))
            input type="hidden" name="to" value=(form.to);
            input type="hidden" name="subject" value=(form.subject.as_deref().unwrap_or(&title));
            input type="hidden" name="body" value=(form.body);
            button type="submit" { "Send to these recipients" }
        }
        details {
            summary { "Change it" }
            (notice_form(&s, &preview.thread, &title, &contacts.items, Some(&form.to), form.subject.as_deref(), Some(&form.body)))
        }
    };
    Ok(layout("Preview", &s, content))
}

async fn send_notice(
    State(http): State<Arc<Http>>,
    Analyst(s): Analyst,
    Path(n): Path<String>,
    PageForm(form): PageForm<NoticeForm>,
) -> PageResult {
    check_csrf(&s, &form.csrf)?;
    let n = number(&n)?;
    let request = NoticeRequest {
        body: form.body,
        subject: form.subject.filter(|s| !s.trim().is_empty()),
        to: form.to,
        in_reply_to: None,
    };
    let n2 = n.clone();
    let done = as_analyst(&http, &s, move |cx, me| {
        ops::notices::notify(cx, me, &n2, &request)
    })
    .await?;
    let url = thread_url(n.as_str());
    let content = html! {
        h1 { "Notice queued" }
        @for note in &done.notes { p.warn { (note) } }
        (copies_table(&done.copies))
        p { a href=(format!("{url}#outbox")) { "Back to " (n.as_str()) } }
    };
    Ok(layout("Notice queued", &s, content))
}

fn copies_table(copies: &[crate::outbox::QueuedCopy]) -> Markup {
    html! {
        (list_table(
            &["Recipient", "Organisation", "Status", "Key / reason"],
            copies.iter().map(|c| (false, vec![
                cell(html! { (c.address) }),
                cell(html! { (c.org) }),
                cell(html! { span class=(format!("status {}", c.status)) { (c.status) } @if c.kind == crate::store::outbox::CopyKind::Stub { " (key request)" } }),
                cell(html! {
                    @if let Some(k) = &c.key_fingerprint { span.fpr { (k) } }
                    @if let Some(r) = &c.reason { (r) }
                }),
            ])),
        ))
    }
}

async fn release(
    State(http): State<Arc<Http>>,
    Analyst(s): Analyst,
    Path(n): Path<String>,
    PageForm(form): PageForm<CsrfForm>,
) -> PageResult {
    check_csrf(&s, &form.csrf)?;
    let n = number(&n)?;
    let n2 = n.clone();
    let copies = as_analyst(&http, &s, move |cx, me| {
        ops::notices::release(cx, me, Some(&n2))
    })
    .await?;
    let released = copies.iter().filter(|c| c.status != "held").count();
    let content = html! {
        h1 { "Held copies" }
        p.summary { (released) " released; " (copies.len() - released) " still held." }
        (copies_table(&copies))
        p { a href=(format!("{}#outbox", thread_url(n.as_str()))) { "Back to " (n.as_str()) } }
    };
    Ok(layout("Release", &s, content))
}

// ----- messages -----

async fn message_page(
    State(http): State<Arc<Http>>,
    Analyst(s): Analyst,
    Path(reference): Path<String>,
) -> PageResult {
    let (view, explanation) = as_analyst(&http, &s, move |cx, me| {
        let v = ops::messages::read(cx, me, &reference)?;
        let e = ops::messages::explain(cx, me, &v.message.short_id)?;
        Ok((v, e))
    })
    .await?;
    Ok(layout(
        view.message.subject.as_deref().unwrap_or("Message"),
        &s,
        message_body(&s, &view, Some(&explanation)),
    ))
}

fn message_body(
    s: &Session,
    v: &MessageView,
    explanation: Option<&ops::messages::Explanation>,
) -> Markup {
    let m = &v.message;
    let url = message_url(&m.short_id);
    let verdict = &v.verdicts;
    html! {
        h1 { (v.protected_subject.as_deref().or(m.subject.as_deref()).unwrap_or("(no subject)")) }
        p.meta {
            code { (m.short_id) } " · " (m.received_at) " · "
            @match &m.thread {
                Some(t) => { "in " a href=(thread_url(t.as_str())) { (t.as_str()) } }
                None => { (m.outcome) }
            }
        }
        (badges(m, &verdict.signer_participant.iter().map(|p| Contact {
            contact_id: 0, participant_id: 0, org_id: 0, org_contact_id: 0, org: p.org.clone(), role: p.role.clone(),
            address: p.address.clone(), key_fingerprints: verdict.signer.iter().cloned().collect(),
        }).collect::<Vec<_>>()))
        @if let Some(r) = &verdict.signature_reason { p.note { "Signature: " (r) } }
        @if let Some(e) = &verdict.encryption_note { p.note { "Encryption: " (e) } }
        @for n in &v.notes { p.note { (n) } }
        @if let Some(reason) = m.triage_reason.as_deref().filter(|_| m.assigned_at.is_none()) {
            section.triage {
                p { strong { "Waiting in triage: " } (reason) }
                form.inline method="post" action=(format!("/triage/{}/assign", seg(&m.short_id))) {
                    (csrf_field(s))
                    label { "Assign to " input type="text" name="thread" placeholder="VU#409117" required size="16"; }
                    button type="submit" { "Assign" }
                }
            }
        }
        @if m.outcome == "quarantine" {
            section.triage {
                p { strong { "Quarantined: " } (m.reason) }
                form.inline method="post" action=(format!("/quarantine/{}/retry", seg(&m.short_id))) {
                    (csrf_field(s))
                    button type="submit" { "Retry now" }
                }
            }
        }
        details.headers {
            summary { "Headers" }
            dl { @for h in &v.headers { dt { (h.name) } dd { (h.value) } } }
        }
        section {
            h2 { "Text" @if v.text_from_html { " " small { "(converted from HTML)" } } }
            @match &v.text {
                Some(t) => pre.mailtext { (t) },
                None => p { "No readable text." },
            }
            @if v.has_html {
                details {
                    summary { "HTML version (sanitized: no images, links or styles from the sender; nothing loads)" }
                    iframe.mailhtml sandbox="" src=(format!("{url}/html")) title="sanitized HTML of the message" {}
                }
            }
        }
        @if !v.attachments.is_empty() {
            section {
                h2 { "Attachments" }
                ul {
                    @for a in &v.attachments {
                        li {
                            a href=(format!("{url}/attachments/{}", a.n)) download { "Download #" (a.n) }
                            " " (a.name.as_deref().unwrap_or("(no name)")) " · " (a.content_type) " · " (a.size) " bytes"
                        }
                    }
                }
            }
        }
        @if let Some(raw) = &v.raw {
            section {
                h2 { "Raw message" @if raw.truncated { " " small { "(first MiB of " (raw.size) " bytes)" } } }
                pre.raw { (raw.text) }
            }
        }
        @if let Some(e) = explanation {
            section {
                h2 { "Routing" }
                ol.steps { @for step in &e.steps { li { (step) } } }
                p { "Decided today: " strong { (e.outcome_now) } " — " (e.reason_now) }
            }
        }
        p { a href=(format!("{url}/raw")) { "Download the raw message" } }
    }
}

async fn message_html(
    State(http): State<Arc<Http>>,
    Analyst(s): Analyst,
    Path(reference): Path<String>,
) -> PageResult {
    let html = as_analyst(&http, &s, move |cx, me| {
        ops::messages::html_source(cx, me, &reference)
    })
    .await?
    .unwrap_or_default();
    let doc = mail_html::document(&mail_html::sanitize(&html));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(mail_html::FRAME_CSP),
            ),
            (
                header::X_FRAME_OPTIONS,
                HeaderValue::from_static("SAMEORIGIN"),
            ),
        ],
        doc,
    )
        .into_response())
}

async fn message_raw(
    State(http): State<Arc<Http>>,
    Analyst(s): Analyst,
    Path(reference): Path<String>,
) -> PageResult {
    let (short, raw) = as_analyst(&http, &s, move |cx, me| {
        let m = ops::messages::resolve(cx, &reference, ops::messages::Scope::Any)?;
        Ok((m.short_id.clone(), ops::messages::raw(cx, me, &m.short_id)?))
    })
    .await?;
    Ok(super::download(
        raw,
        &format!("{short}.eml"),
        "application/octet-stream",
    ))
}

async fn message_attachment(
    State(http): State<Arc<Http>>,
    Analyst(s): Analyst,
    Path((reference, n)): Path<(String, usize)>,
) -> PageResult {
    let file = as_analyst(&http, &s, move |cx, me| {
        ops::messages::attachment(cx, me, &reference, n)
    })
    .await?;
    let name = super::safe_file_name(file.attachment.name.as_deref(), &file.message, n);
    Ok(super::download(
        file.bytes,
        &name,
        "application/octet-stream",
    ))
}

// ----- quarantine, outbox, audit -----

async fn quarantine_page(
    State(http): State<Arc<Http>>,
    Analyst(s): Analyst,
    Query(q): Query<PageQuery>,
) -> PageResult {
    let page = page_at(q.offset);
    let list = as_analyst(&http, &s, move |cx, me| ops::quarantine::list(cx, me, page)).await?;
    let content = html! {
        h1 { "Quarantine" }
        p.summary { (list.total) " kept raw: they could not be parsed, opened or accepted." }
        ul.queue {
            @for m in &list.items {
                li.item {
                    div.line1 {
                        a.subject href=(format!("/quarantine/{}", seg(&m.short_id))) { (m.subject.as_deref().unwrap_or("(no subject)")) }
                        span.when { (m.received_at) }
                    }
                    div.line2 { span.sender { (m.sender.as_deref().unwrap_or("-")) } }
                    div.reason { "Why: " (m.reason) }
                    form.inline method="post" action=(format!("/quarantine/{}/retry", seg(&m.short_id))) {
                        (csrf_field(&s))
                        button type="submit" { "Retry" }
                    }
                }
            }
        }
        (pager(&list, "/quarantine", page.limit))
    };
    Ok(layout("Quarantine", &s, content))
}

async fn quarantine_message(
    State(http): State<Arc<Http>>,
    Analyst(s): Analyst,
    Path(reference): Path<String>,
) -> PageResult {
    let view = as_analyst(&http, &s, move |cx, me| {
        ops::quarantine::show(cx, me, &reference)
    })
    .await?;
    Ok(layout(
        "Quarantined message",
        &s,
        message_body(&s, &view, None),
    ))
}

async fn retry(
    State(http): State<Arc<Http>>,
    Analyst(s): Analyst,
    Path(reference): Path<String>,
    PageForm(form): PageForm<CsrfForm>,
) -> PageResult {
    check_csrf(&s, &form.csrf)?;
    let r = as_analyst(&http, &s, move |cx, me| {
        ops::quarantine::retry(cx, me, &reference)
    })
    .await?;
    let content = html! {
        h1 { @if r.released { "Released from quarantine" } @else { "Still in quarantine" } }
        p { "It was kept because: " (r.previous_reason) }
        p { "Now: " strong { (r.outcome.outcome) } " — " (r.outcome.reason) }
        @if let Some(t) = &r.outcome.thread { p { a href=(thread_url(t.as_str())) { "Open " (t.as_str()) } } }
        p { a href=(message_url(&r.short_id)) { "Read the message" } " · " a href="/quarantine" { "Back to the quarantine" } }
    };
    Ok(layout("Retry", &s, content))
}

#[derive(Deserialize)]
struct OutboxQuery {
    status: Option<String>,
    thread: Option<String>,
    offset: Option<usize>,
}

async fn outbox_page(
    State(http): State<Arc<Http>>,
    Analyst(s): Analyst,
    Query(q): Query<OutboxQuery>,
) -> PageResult {
    let page = page_at(q.offset);
    let status = q.status.clone().filter(|s| !s.is_empty());
    let thread = match q.thread.as_deref().filter(|t| !t.is_empty()) {
        Some(t) => Some(number(t)?),
        None => None,
    };
    let (st, th) = (status.clone(), thread.clone());
    let list = as_analyst(&http, &s, move |cx, me| {
        ops::notices::outbox(cx, me, th.as_ref(), st.as_deref(), false, page)
    })
    .await?;
    let mut base = "/outbox?".to_string();
    if let Some(st) = &status {
        base.push_str(&format!("status={}&", seg(st)));
    }
    if let Some(t) = &thread {
        base.push_str(&format!("thread={}&", seg(t.as_str())));
    }
    let base = base.trim_end_matches(['&', '?']).to_string();
    let content = html! {
        h1 { "Outbox" @if let Some(t) = &thread { " of " a href=(thread_url(t.as_str())) { (t.as_str()) } } }
        nav.filters {
            a href="/outbox" { "all" }
            @for st in ops::notices::STATUSES { a href=(format!("/outbox?status={st}")) { (st) } }
        }
        (list_table(
            &["Thread", "Recipient", "Organisation", "Status", "Key", "Attempts", "Last reply / reason", "Queued"],
            list.items.iter().map(|e| {
                let o = &e.copy;
                (false, vec![
                    cell(html! { a href=(thread_url(&o.thread)) { (o.thread) } }),
                    cell(html! { (o.address) }),
                    cell(html! { (o.org) }),
                    cell(html! { span class=(format!("status {}", o.status)) { (o.status) } }),
                    fpr_cell(o.key_fingerprint.as_deref()),
                    num_cell(o.attempts),
                    cell(html! { (o.last_reply.as_deref().or(o.reason.as_deref()).unwrap_or("")) }),
                    cell(html! { (o.created_at) }),
                ])
            }),
        ))
        (pager(&list, &base, page.limit))
    };
    Ok(layout("Outbox", &s, content))
}

async fn audit_page(
    State(http): State<Arc<Http>>,
    Analyst(s): Analyst,
    Query(q): Query<PageQuery>,
) -> PageResult {
    let page = page_at(q.offset);
    let list = as_analyst(&http, &s, move |cx, me| {
        ops::audit::list(cx, me, None, page)
    })
    .await?;
    let content = html! {
        h1 { "Audit trail" small { " (newest first)" } }
        (list_table(
            &["When (UTC)", "Who", "What", "Thread", "Detail"],
            list.items.iter().map(|e| (false, vec![
                cell(html! { (e.at) }),
                cell(html! { (e.actor) }),
                cell(html! { (e.action) }),
                cell(html! { @if let Some(t) = &e.thread { a href=(thread_url(t)) { (t) } } }),
                cell(html! { (e.detail) }),
            ])),
        ))
        (pager(&list, "/audit", page.limit))
    };
    Ok(layout("Audit", &s, content))
}

/// The one stylesheet: readable on a laptop and on a narrow screen, no web fonts.
const STYLE: &str = r#"
:root { --fg:#1d1f21; --muted:#5f6368; --line:#d9dce0; --bg:#fff; --accent:#0b57d0; --ok:#137333; --warn:#9a5b00; --bad:#b3261e; --late:#fce8e6; }
* { box-sizing: border-box; }
body { margin:0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--fg); background:var(--bg); }
header.top { display:flex; flex-wrap:wrap; align-items:center; gap:.5rem 1.5rem; padding:.6rem 1rem; border-bottom:1px solid var(--line); background:#f6f8fa; }
.brand { font-weight:700; color:var(--fg); text-decoration:none; }
nav.main { display:flex; flex-wrap:wrap; gap:1rem; flex:1; }
nav.main a, nav.filters a { color:var(--accent); text-decoration:none; }
form.logout { display:flex; gap:.5rem; align-items:center; }
main { padding:1rem; max-width:72rem; margin:0 auto; }
main.narrow { max-width:26rem; }
h1 small, h2 small { color:var(--muted); font-weight:400; }
a { color:var(--accent); }
.error { color:var(--bad); font-weight:600; }
.warn { color:var(--warn); }
.hint, .meta, .when, .age, .sender { color:var(--muted); }
.summary { font-size:1.05rem; }
ul.queue, ol.messages { list-style:none; padding:0; margin:0; }
ol.messages { counter-reset: none; }
li.item, li.message { border:1px solid var(--line); border-radius:6px; padding:.6rem .8rem; margin:.5rem 0; }
li.overdue, tr.overdue { background:var(--late); border-color:var(--bad); }
.overdue-note, dd.overdue { color:var(--bad); font-weight:600; }
.line1 { display:flex; flex-wrap:wrap; justify-content:space-between; gap:.5rem; }
.line1 a { font-weight:600; }
.line2 { display:flex; flex-wrap:wrap; gap:.5rem; align-items:center; margin-top:.2rem; }
.reason { margin:.3rem 0; }
.badges { display:inline-flex; flex-wrap:wrap; gap:.3rem; }
.badge { display:inline-block; padding:.05rem .45rem; border-radius:999px; font-size:.8rem; border:1px solid currentColor; }
.badge.ok, .key-valid, .status.sent, .status.queued, .status.encrypted { color:var(--ok); }
.badge.warn, .key-expiring, .status.retrying, .status.held { color:var(--warn); }
.badge.bad, .key-none, .status.dead, .status.bounced { color:var(--bad); }
.badge.info { color:var(--muted); }
.fpr { font-family: ui-monospace, monospace; font-size:.8rem; word-break:break-all; }
form.inline { display:flex; flex-wrap:wrap; gap:.5rem; align-items:center; margin:.4rem 0; }
form.stacked { display:flex; flex-direction:column; gap:.6rem; max-width:40rem; }
form.stacked label { display:flex; flex-direction:column; gap:.2rem; }
label.choice { flex-direction:row !important; align-items:center; }
input[type=text], input[type=email], input[type=password], select, textarea { font:inherit; padding:.35rem .5rem; border:1px solid var(--line); border-radius:4px; max-width:100%; }
textarea { width:100%; }
button, a.button { font:inherit; padding:.35rem .9rem; border-radius:4px; border:1px solid var(--accent); background:var(--accent); color:#fff; cursor:pointer; text-decoration:none; display:inline-block; }
.actions { display:flex; flex-wrap:wrap; gap:.8rem; align-items:center; margin-top:.8rem; }
.scroll { overflow-x:auto; }
table.list { border-collapse:collapse; width:100%; }
table.list th, table.list td { text-align:left; padding:.35rem .5rem; border-bottom:1px solid var(--line); vertical-align:top; }
td.num { text-align:right; }
dl.facts { display:grid; grid-template-columns:max-content 1fr; gap:.2rem 1rem; }
dl.facts dt { color:var(--muted); }
dl.facts dd { margin:0; }
pre.mailtext, pre.raw { white-space:pre-wrap; word-wrap:break-word; background:#f6f8fa; padding:.8rem; border-radius:6px; border:1px solid var(--line); max-height:70vh; overflow:auto; }
iframe.mailhtml { width:100%; min-height:24rem; border:1px solid var(--line); }
nav.pager, nav.filters { display:flex; flex-wrap:wrap; gap:1rem; margin:.6rem 0; }
section { margin-top:1.5rem; }
section.triage { border-left:4px solid var(--warn); padding-left:.8rem; }
.note { color:var(--muted); margin:.2rem 0; }
@media (max-width: 40rem) {
  main { padding:.6rem; }
  header.top { padding:.5rem .6rem; }
  dl.facts { grid-template-columns:1fr; }
  nav.main { order:3; flex-basis:100%; }
  form.logout { margin-left:auto; }
  /* Tables become one block per row: no column squeezed to a letter's width. */
  table.list thead { display:none; }
  table.list, table.list tbody, table.list tr, table.list td { display:block; width:100%; }
  table.list tr { border-bottom:1px solid var(--line); padding:.3rem 0; }
  table.list td { border:0; padding:.1rem .3rem; font-size:.9rem; overflow-wrap:anywhere; }
  table.list td.num { text-align:left; }
  table.list td:empty { display:none; }
  /* Each cell says which column it is: the heading travels in data-label. */
  table.list td[data-label]::before { content:attr(data-label); display:inline-block; min-width:7.5rem; margin-right:.4rem; color:var(--muted); font-size:.8rem; }
  .line1, .line2, .reason { overflow-wrap:anywhere; }
}
"#;
