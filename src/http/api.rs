//! The JSON API under `/api/v1/`: one route per `ops` function, each a few lines that take
//! the inputs apart, call the operation on a blocking thread and return its result as it is.
//! The OpenAPI document at `/api/v1/openapi.json` is generated from these handlers and from
//! the result types themselves (`utoipa::ToSchema` on the ops/store types), so the document
//! cannot drift from what is served.

use std::sync::Arc;

use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::Http;
use crate::ops::messages::{Explanation, MessageView};
use crate::ops::notices::{NoticePreview, NoticeRequest, Notified, OutboxEntry};
use crate::ops::participants::{ContactAdded, ContactKeys, KeyData, KeyListing, KeysImported};
use crate::ops::quarantine::Retried;
use crate::ops::setup::Status;
use crate::ops::threads::{Opened, Policy, PolicyChange, Promoted, ThreadView};
use crate::ops::tokens::{Analyst, AuthError, NewToken, Revoked};
use crate::ops::triage::Assigned;
use crate::ops::{self, Actor, ErrorBody, OpsError, Page, Paged};
use crate::pipeline::Outcome;
use crate::store::{AuditEntry, MessageRecord, MessageSource, StoredToken, ThreadSummary};
use crate::tracking::{Kind, TrackingNumber};

/// Every API route, with the state it needs.
pub fn routes() -> Router<Arc<Http>> {
    Router::new()
        .route("/openapi.json", get(openapi_json))
        .route("/whoami", get(whoami))
        .route("/status", get(status))
        .route("/threads", get(threads_list).post(threads_open))
        .route("/threads/{number}", get(thread_show))
        .route("/threads/{number}/promote", post(thread_promote))
        .route("/threads/{number}/policy", post(thread_policy))
        .route(
            "/threads/{number}/participants",
            get(participants_list).post(participants_add),
        )
        .route("/threads/{number}/notices", post(notice_send))
        .route("/threads/{number}/notices/preview", post(notice_preview))
        .route("/messages", post(messages_ingest))
        .route("/messages/dry-run", post(messages_dry_run))
        .route("/messages/{reference}", get(message_read))
        .route("/messages/{reference}/raw", get(message_raw))
        .route("/messages/{reference}/html", get(message_html))
        .route("/messages/{reference}/explain", get(message_explain))
        .route(
            "/messages/{reference}/attachments/{n}",
            get(message_attachment),
        )
        .route("/triage", get(triage_list))
        .route("/triage/{reference}/assign", post(triage_assign))
        .route("/quarantine", get(quarantine_list))
        .route("/quarantine/{reference}", get(quarantine_show))
        .route("/quarantine/{reference}/retry", post(quarantine_retry))
        .route("/outbox", get(outbox_list))
        .route("/outbox/release", post(outbox_release))
        .route("/keys", get(keys_list).post(keys_import))
        .route("/keys/{fingerprint}", get(key_export))
        .route("/audit", get(audit_list))
        .route("/tokens", get(tokens_list).post(tokens_add))
        .route("/tokens/{name}", axum::routing::delete(tokens_revoke))
        .fallback(not_found)
}

/// The OpenAPI document (3.1) of this API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "casegate analysts' API",
        description = "Every operation behind the casegate command line, as JSON. Authenticate with `Authorization: Bearer TOKEN` (`casegate token add NAME`). Changes are audited as `token:NAME`; a read-only token may read but not change (403). Errors are `{\"error\": kind, \"message\": what to do}`. Lists take `offset` and `limit` (1 to 500, default 100) and return `{items, total, offset, next_offset}`."
    ),
    paths(
        whoami, status, threads_list, threads_open, thread_show, thread_promote, thread_policy,
        participants_list, participants_add, notice_send, notice_preview, messages_ingest,
        messages_dry_run, message_read, message_raw, message_html, message_explain,
        message_attachment, triage_list, triage_assign, quarantine_list, quarantine_show,
        quarantine_retry, outbox_list, outbox_release, keys_list, keys_import, key_export,
        audit_list, tokens_list, tokens_add, tokens_revoke
    ),
    components(schemas(ErrorBody)),
    modifiers(&Conventions),
    security(("token" = []))
)]
pub struct ApiDoc;

/// What every operation shares: the bearer scheme, and the error answers (all JSON
/// [`ErrorBody`]), added once here instead of on each handler.
struct Conventions;

impl utoipa::Modify for Conventions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("an API token from `casegate token add NAME`"))
                    .build(),
            ),
        );
        let errors = [
            (
                "400",
                "the request is not valid: the message says which part",
            ),
            ("401", "no API token, or not a valid one"),
            ("403", "a read-only token may not change anything"),
            ("404", "no such thread, message, key or token"),
            (
                "409",
                "the store's state forbids it now (exists already, ambiguous, ...)",
            ),
            (
                "413",
                "the request body is larger than [http] max_body_bytes",
            ),
            ("500", "casegate failed; nothing was half-done"),
        ];
        for item in doc.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.delete,
                &mut item.put,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                for (status, description) in errors {
                    op.responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| {
                            ResponseBuilder::new()
                                .description(description)
                                .content(
                                    "application/json",
                                    ContentBuilder::new()
                                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                                        .build(),
                                )
                                .build()
                                .into()
                        });
                }
            }
        }
    }
}

async fn openapi_json() -> Response {
    match ApiDoc::openapi().to_json() {
        Ok(text) => ([(header::CONTENT_TYPE, "application/json")], text).into_response(),
        Err(e) => {
            ApiError::Ops(OpsError::Internal(format!("OpenAPI document: {e}"))).into_response()
        }
    }
}

async fn not_found() -> ApiError {
    ApiError::Ops(OpsError::NotFound(
        "no such API endpoint; the endpoints are listed in /api/v1/openapi.json".into(),
    ))
}

// ----- plumbing: errors, the authenticated actor, extractors whose rejections are JSON -----

/// Every failure as JSON [`ErrorBody`] with its status.
pub enum ApiError {
    Ops(OpsError),
    Auth(AuthError),
    /// A malformed request the framework refused (status chosen by it: 400, 413, 415, 422).
    Request(StatusCode, String),
}

impl From<OpsError> for ApiError {
    fn from(e: OpsError) -> ApiError {
        ApiError::Ops(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            ApiError::Ops(e) => (e.kind().http_status(), ErrorBody::from(e)),
            ApiError::Auth(e) => {
                let body = ErrorBody::from(e);
                (body.error.http_status(), body)
            }
            ApiError::Request(status, message) => (
                status.as_u16(),
                ErrorBody {
                    error: ops::ErrorKind::Invalid,
                    message: message.clone(),
                },
            ),
        };
        if let ApiError::Ops(OpsError::Internal(m)) = &self {
            tracing::error!(error = %m, "API request failed");
        }
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // Bad request bodies are all 400 to the client (one documented answer), except a
        // body that is too large.
        let status = match status {
            StatusCode::UNSUPPORTED_MEDIA_TYPE | StatusCode::UNPROCESSABLE_ENTITY => {
                StatusCode::BAD_REQUEST
            }
            s => s,
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"casegate\""),
            );
        }
        response
    }
}

fn rejected(status: StatusCode, what: &str, detail: String) -> ApiError {
    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "the request body is too large; the limit is [http] max_body_bytes".to_string()
    } else {
        format!("{what}: {detail}; see /api/v1/openapi.json for what this endpoint takes")
    };
    ApiError::Request(status, message)
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        rejected(r.status(), "the JSON body is not valid", r.body_text())
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> ApiError {
        rejected(r.status(), "the body could not be read", r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        rejected(r.status(), "the query string is not valid", r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> ApiError {
        rejected(r.status(), "the path is not valid", r.body_text())
    }
}

#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
struct ApiJson<T>(T);

/// A raw body (a message to hand in) whose refusal (too large) is JSON too.
struct ApiBytes(axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        Ok(ApiBytes(axum::body::Bytes::from_request(req, state).await?))
    }
}

#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
struct ApiQuery<T>(T);

#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
struct ApiPath<T>(T);

/// The analyst whose bearer token came with the request.
pub struct ApiActor(pub Actor);

impl FromRequestParts<Arc<Http>> for ApiActor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, http: &Arc<Http>) -> Result<Self, ApiError> {
        super::auth::bearer(&http.desk, &parts.headers)
            .await
            .map(ApiActor)
            .map_err(ApiError::Auth)
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

/// Runs an operation as the request's actor on a blocking thread.
async fn run<T: Send + 'static>(
    http: &Http,
    f: impl FnOnce(&mut ops::Context) -> Result<T, OpsError> + Send + 'static,
) -> ApiResult<T> {
    Ok(Json(http.desk.run(f).await?))
}

fn number(text: &str) -> Result<TrackingNumber, ApiError> {
    TrackingNumber::parse(text).map_err(|e| {
        ApiError::Ops(OpsError::Invalid(format!(
            "{text:?} is not a tracking number ({e}); write e.g. VU%23409117 (VU#409117 with # as %23) or VU-409117"
        )))
    })
}

/// `offset` and `limit` of a list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PageQuery {
    /// Items to skip (default 0).
    offset: Option<usize>,
    /// Items to return: 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
}

impl PageQuery {
    fn page(&self) -> Result<Page, ApiError> {
        Ok(Page::bounded(self.offset, self.limit)?)
    }
}

// ----- who, status -----

/// The analyst this token belongs to.
#[utoipa::path(get, path = "/api/v1/whoami", tag = "setup",
    responses((status = 200, body = Analyst)))]
async fn whoami(ApiActor(me): ApiActor) -> Json<Analyst> {
    Json(Analyst {
        name: me.person().to_string(),
        read_only: me.read_only(),
    })
}

/// Watched mailboxes with their checkpoints and today's counts; triage and quarantine sizes.
#[utoipa::path(get, path = "/api/v1/status", tag = "setup",
    responses((status = 200, body = Status)))]
async fn status(State(http): State<Arc<Http>>, ApiActor(me): ApiActor) -> ApiResult<Status> {
    run(&http, move |cx| ops::setup::status(cx, &me)).await
}

// ----- threads -----

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ThreadsQuery {
    /// Only threads of this kind.
    kind: Option<Kind>,
    offset: Option<usize>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
}

/// Threads (cases, reports, tickets), oldest first, with counts, waiting time and planned
/// publication date.
#[utoipa::path(get, path = "/api/v1/threads", tag = "threads", params(ThreadsQuery),
    responses((status = 200, body = Paged<ThreadSummary>)))]
async fn threads_list(
    State(http): State<Arc<Http>>,
    ApiActor(me): ApiActor,
    ApiQuery(q): ApiQuery<ThreadsQuery>,
) -> ApiResult<Paged<ThreadSummary>> {
    let page = Page::bounded(q.offset, q.limit)?;
    run(&http, move |cx| ops::threads::list(cx, &me, q.kind, page)).await
}

/// A thread to open.
#[derive(Debug, Deserialize, ToSchema)]
struct OpenThread {
    kind: Kind,
    title: String,
    /// Without it, a new number is minted.
    #[schema(value_type = Option<String>, example = "VU#409117")]
    number: Option<String>,
}

/// Opens a case, report or ticket.
#[utoipa::path(post, path = "/api/v1/threads", tag = "threads", request_body = OpenThread,
    responses((status = 200, body = Opened)))]
async fn threads_open(
    State(http): State<Arc<Http>>,
    ApiActor(me): ApiActor,
    ApiJson(req): ApiJson<OpenThread>,
) -> ApiResult<Opened> {
    let n = req.number.as_deref().map(number).transpose()?;
    run(&http, move |cx| {
        ops::threads::open(cx, &me, req.kind, &req.title, n.as_ref())
    })
    .await
}

/// One thread: participants, one page of its messages (oldest first) and its outbound copies.
#[utoipa::path(get, path = "/api/v1/threads/{number}", tag = "threads",
    params(("number" = String, Path, description = "tracking number, # written %23"), PageQuery),
    responses((status = 200, body = ThreadView)))]
async fn thread_show(
    State(http): State<Arc<Http>>,
    ApiActor(me): ApiActor,
    ApiPath(n): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<ThreadView> {
    let (n, page) = (number(&n)?, q.page()?);
    run(&http, move |cx| ops::threads::show(cx, &me, &n, page)).await
}

#[derive(Debug, Deserialize, ToSchema)]
struct PromoteRequest {
    /// The case number to use; without it one is minted.
    #[schema(value_type = Option<String>)]
    to: Option<String>,
}

/// Turns a report into a case; its participants come along.
#[utoipa::path(post, path = "/api/v1/threads/{number}/promote", tag = "threads",
    params(("number" = String, Path, description = "the report's number")),
    request_body = PromoteRequest, responses((status = 200, body = Promoted)))]
async fn thread_promote(
    State(http): State<Arc<Http>>,
    ApiActor(me): ApiActor,
    ApiPath(n): ApiPath<String>,
    ApiJson(req): ApiJson<PromoteRequest>,
) -> ApiResult<Promoted> {
    let n = number(&n)?;
    let to = req.to.as_deref().map(number).transpose()?;
    run(&http, move |cx| {
        ops::threads::promote(cx, &me, &n, to.as_ref())
    })
    .await
}

/// Changes a thread's policy (all of it or nothing); an empty change returns it as it is.
#[utoipa::path(post, path = "/api/v1/threads/{number}/policy", tag = "threads",
    params(("number" = String, Path)), request_body = PolicyChange,
    responses((status = 200, body = Policy)))]
async fn thread_policy(
    State(http): State<Arc<Http>>,
    ApiActor(me): ApiActor,
    ApiPath(n): ApiPath<String>,
    ApiJson(change): ApiJson<PolicyChange>,
) -> ApiResult<Policy> {
    let n = number(&n)?;
    run(&http, move |cx| ops::threads::set(cx, &me, &n, &change)).await
}

// ----- participants and keys -----

/// A thread's contacts, with the state of their keys now.
#[utoipa::path(get, path = "/api/v1/threads/{number}/participants", tag = "participants",
    params(("number" = String, Path), PageQuery),
    responses((status = 200, body = Paged<ContactKeys>)))]
async fn participants_list(
    State(http): State<Arc<Http>>,
    ApiActor(me): ApiActor,
    ApiPath(n): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Paged<ContactKeys>> {
    let (n, page) = (number(&n)?, q.page()?);
    run(&http, move |cx| ops::participants::list(cx, &me, &n, page)).await
}

/// A contact to add.
#[derive(Debug, Deserialize, ToSchema)]
struct AddParticipant {
    org: String,
    email: String,
    /// `vendor | reporter | coordinator | other` (default `vendor`).
    role: Option<String>,
    /// The contact's OpenPGP certificate, ASCII-armored.
    key: Option<String>,
}

/// Adds a contact of an organisation to the thread (and its key, bound to it); copies held
/// for want of that key go out.
#[utoipa::path(post, path = "/api/v1/threads/{number}/participants", tag = "participants",
    params(("number" = String, Path)), request_body = AddParticipant,
    responses((status = 200, body = ContactAdded)))]
async fn participants_add(
    State(http): State<Arc<Http>>,
    ApiActor(me): ApiActor,
    ApiPath(n): ApiPath<String>,
    ApiJson(req): ApiJson<AddParticipant>,
) -> ApiResult<ContactAdded> {
    let n = number(&n)?;
    run(&http, move |cx| {
        let contact = ops::participants::NewContact {
            org: &req.org,
            email: &req.email,
            role: req.role.as_deref().unwrap_or("vendor"),
            key: req.key.as_deref().map(|k| KeyData {
                bytes: k.as_bytes(),
                from: "the uploaded key",
            }),
        };
        ops::participants::add(cx, &me, &n, &contact)
    })
    .await
}

/// Every certificate: the coordinator's, then the imported ones.
#[utoipa::path(get, path = "/api/v1/keys", tag = "participants", params(PageQuery),
    responses((status = 200, body = Paged<KeyListing>)))]
async fn keys_list(
    State(http): State<Arc<Http>>,
    ApiActor(me): ApiActor,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Paged<KeyListing>> {
    let page = q.page()?;
    run(&http, move |cx| ops::participants::list_keys(cx, &me, page)).await
}

/// Certificates to import.
#[derive(Debug, Deserialize, ToSchema)]
struct ImportKeys {
    /// One or more OpenPGP certificates, ASCII-armored.
    armored: String,
}

/// Imports certificates; copies held for want of a key go out.
#[utoipa::path(post, path = "/api/v1/keys", tag = "participants", request_body = ImportKeys,
    responses((status = 200, body = KeysImported)))]
async fn keys_import(
    State(http): State<Arc<Http>>,
    ApiActor(me): ApiActor,
    ApiJson(req): ApiJson<ImportKeys>,
) -> ApiResult<KeysImported> {
    run(&http, move |cx| {
        let key = KeyData {
            bytes: req.armored.as_bytes(),
            from: "the uploaded key",
        };
        ops::participants::import_keys(cx, &me, key)
    })
    .await
}

/// A public certificate, ASCII-armored (`coordinator` for the coordinator's).
#[utoipa::path(get, path = "/api/v1/keys/{fingerprint}", tag = "participants",
    params(("fingerprint" = String, Path, description = "a fingerprint, or `coordinator`")),
    responses((status = 200, content_type = "application/pgp-keys", body = String)))]
async fn key_export(
    State(http): State<Arc<Http>>,
    ApiActor(me): ApiActor,
    ApiPath(fpr): ApiPath<String>,
) -> Result<Response, ApiError> {
    let which = (!fpr.eq_ignore_ascii_case("coordinator")).then_some(fpr);
    let armored = http
        .desk
        .run(move |cx| ops::participants::export_key(cx, &me, which.as_deref()))
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/pgp-keys")], armored).into_response())
}

// ----- notices and the outbox -----

/// Queues one copy of a notice per contact of the chosen participants, each encrypted to
/// that contact's key and signed once; contacts without a usable key get a held copy.
#[utoipa::path(post, path = "/api/v1/threads/{number}/notices", tag = "outbox",
    params(("number" = String, Path)), request_body = NoticeRequest,
    responses((status = 200, body = Notified)))]
async fn notice_send(
    State(http): State<Arc<Http>>,
    ApiActor(me): ApiActor,
    ApiPath(n): ApiPath<String>,
    ApiJson(req): ApiJson<NoticeRequest>,
) -> ApiResult<Notified> {
    let n = number(&n)?;
    run(&http, move |cx| ops::notices::notify(cx, &me, &n, &req)).await
}

#[derive(Debug, Deserialize, ToSchema)]
struct PreviewRequest {
    /// An organisation, or `all`.
    to: String,
}

/// Who would get an encrypted copy of a notice now, and who would be held and why. Nothing
/// is sent or stored.
#[utoipa::path(post, path = "/api/v1/threads/{number}/notices/preview", tag = "outbox",
    params(("number" = String, Path)), request_body = PreviewRequest,
    responses((status = 200, body = NoticePreview)))]
async fn notice_preview(
    State(http): State<Arc<Http>>,
    ApiActor(me): ApiActor,
    ApiPath(n): ApiPath<String>,
    ApiJson(req): ApiJson<PreviewRequest>,
) -> ApiResult<NoticePreview> {
    let n = number(&n)?;
    run(&http, move |cx| ops::notices::preview(cx, &me, &n, &req.to)).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct OutboxQuery {
    /// Only copies of this thread.
    thread: Option<String>,
    /// `queued | sent | retrying | held | dead | bounced`.
    status: Option<String>,
    /// With every SMTP attempt and reply.
    attempts: Option<bool>,
    offset: Option<usize>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
}

/// Outbound copies, one per recipient, oldest first.
#[utoipa::path(get, path = "/api/v1/outbox", tag = "outbox", params(OutboxQuery),
    responses((status = 200, body = Paged<OutboxEntry>)))]
async fn outbox_list(
    State(http): State<Arc<Http>>,
    ApiActor(me): ApiActor,
    ApiQuery(q): ApiQuery<OutboxQuery>,
) -> ApiResult<Paged<OutboxEntry>> {
    let page = Page::bounded(q.offset, q.limit)?;
    let n = q.thread.as_deref().map(number).transpose()?;
    run(&http, move |cx| {
        ops::notices::outbox(
            cx,
            &me,
            n.as_ref(),
            q.status.as_deref(),
            q.attempts.unwrap_or(false),
            page,
        )
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
struct ReleaseRequest {
    /// Only this thread's held copies.
    #[schema(value_type = Option<String>)]
    thread: Option<String>,
}

/// Seals and queues the held copies whose contact now has a usable key; the others stay held
/// with the current reason. Returns every held copy looked at.
#[utoipa::path(post, path = "/api/v1/outbox/release", tag = "outbox",
    request_body = ReleaseRequest,
    responses((status = 200, body = Vec<crate::outbox::QueuedCopy>)))]
async fn outbox_release(
    State(http): State<Arc<Http>>,
    ApiActor(me): ApiActor,
    ApiJson(req): ApiJson<ReleaseRequest>,
) -> ApiResult<Vec<crate::outbox::QueuedCopy>> {
    let n = req.thread.as_deref().map(number).transpose()?;
    run(&http, move |cx| ops::notices::release(cx, &me, n.as_ref())).await
}

// ----- messages -----

/// Hands in one message (its raw bytes as the body): the same pipeline as IMAP and the
/// Maildir; returns after it is durably stored.
#[utoipa::path(post, path = "/api/v1/messages", tag = "messages",
    request_body(content = Vec<u8>, content_type = "message/rfc822"),
    responses((status = 200, body = Outcome)))]
async fn messages_ingest(
    State(http): State<Arc<Http>>,
    ApiActor(me): ApiActor,
    ApiBytes(raw): ApiBytes,
) -> ApiResult<Outcome> {
    let source = MessageSource::File(format!("http:{}", me.name()));
    run(&http, move |cx| ops::ingest::ingest(cx, &me, &raw, source)).await
}

/// The decision handing in this message would lead to, with the routing steps; stores
/// nothing.
#[utoipa::path(post, path = "/api/v1/messages/dry-run", tag = "messages",
    request_body(content = Vec<u8>, content_type = "message/rfc822"),
    responses((status = 200, body = Outcome)))]
async fn messages_dry_run(
    State(http): State<Arc<Http>>,
    ApiActor(me): ApiActor,
    ApiBytes(raw): ApiBytes,
) -> ApiResult<Outcome> {
    let source = MessageSource::File(format!("http:{}", me.name()));
    run(&http, move |cx| ops::ingest::dry_run(cx, &me, &raw, source)).await
}

/// One message as a person reads it: verdicts, headers, the text (decrypted now, never
/// stored decrypted; HTML converted to text) and its numbered attachments.
#[utoipa::path(get, path = "/api/v1/messages/{reference}", tag = "messages",
    params(("reference" = String, Path, description = "short id (8+ hex digits) or Message-ID")),
    responses((status = 200, body = MessageView)))]
async fn message_read(
    State(http): State<Arc<Http>>,
    ApiActor(me): ApiActor,
    ApiPath(r): ApiPath<String>,
) -> ApiResult<MessageView> {
    run(&http, move |cx| ops::messages::read(cx, &me, &r)).await
}

/// The message's raw bytes exactly as received (a download, never rendered).
#[utoipa::path(get, path = "/api/v1/messages/{reference}/raw", tag = "messages",
    params(("reference" = String, Path)),
    responses((status = 200, content_type = "message/rfc822", body = Vec<u8>)))]
async fn message_raw(
    State(http): State<Arc<Http>>,
    ApiActor(me): ApiActor,
    ApiPath(r): ApiPath<String>,
) -> Result<Response, ApiError> {
    let (short, raw) = http
        .desk
        .run(move |cx| {
            let m = ops::messages::resolve(cx, &r, ops::messages::Scope::Any)?;
            let raw = ops::messages::raw(cx, &me, &m.short_id)?;
            Ok((m.short_id, raw))
        })
        .await?;
    Ok(super::download(
        raw,
        &format!("{short}.eml"),
        "message/rfc822",
    ))
}

/// The HTML version of a message's text as sent (decrypted): data for a client that
/// sanitizes it; `null` when there is none.
#[derive(Debug, serde::Serialize, ToSchema)]
struct HtmlSource {
    html: Option<String>,
}

/// The HTML source of a message's text (decrypted), as data: never render it unsanitized.
#[utoipa::path(get, path = "/api/v1/messages/{reference}/html", tag = "messages",
    params(("reference" = String, Path)), responses((status = 200, body = HtmlSource)))]
async fn message_html(
    State(http): State<Arc<Http>>,
    ApiActor(me): ApiActor,
    ApiPath(r): ApiPath<String>,
) -> ApiResult<HtmlSource> {
    run(&http, move |cx| {
        Ok(HtmlSource {
            html: ops::messages::html_source(cx, &me, &r)?,
        })
    })
    .await
}

/// How routing decides about a stored message today: the steps and the outcome now.
#[utoipa::path(get, path = "/api/v1/messages/{reference}/explain", tag = "messages",
    params(("reference" = String, Path)), responses((status = 200, body = Explanation)))]
async fn message_explain(
    State(http): State<Arc<Http>>,
    ApiActor(me): ApiActor,
    ApiPath(r): ApiPath<String>,
) -> ApiResult<Explanation> {
    run(&http, move |cx| ops::messages::explain(cx, &me, &r)).await
}

/// Attachment `n` (from 1) as the sender attached it (decrypted), as a download under a
/// safe name: never rendered.
#[utoipa::path(get, path = "/api/v1/messages/{reference}/attachments/{n}", tag = "messages",
    params(("reference" = String, Path), ("n" = usize, Path, minimum = 1)),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>)))]
async fn message_attachment(
    State(http): State<Arc<Http>>,
    ApiActor(me): ApiActor,
    ApiPath((r, n)): ApiPath<(String, usize)>,
) -> Result<Response, ApiError> {
    let file = http
        .desk
        .run(move |cx| ops::messages::attachment(cx, &me, &r, n))
        .await?;
    let name = super::safe_file_name(file.attachment.name.as_deref(), &file.message, n);
    Ok(super::download(
        file.bytes,
        &name,
        "application/octet-stream",
    ))
}

// ----- triage and quarantine -----

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct TriageQuery {
    /// Also messages a person already assigned.
    all: Option<bool>,
    offset: Option<usize>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
}

/// Messages waiting for a person, oldest first, each with why it waits.
#[utoipa::path(get, path = "/api/v1/triage", tag = "triage", params(TriageQuery),
    responses((status = 200, body = Paged<MessageRecord>)))]
async fn triage_list(
    State(http): State<Arc<Http>>,
    ApiActor(me): ApiActor,
    ApiQuery(q): ApiQuery<TriageQuery>,
) -> ApiResult<Paged<MessageRecord>> {
    let page = Page::bounded(q.offset, q.limit)?;
    let all = q.all.unwrap_or(false);
    run(&http, move |cx| ops::triage::list(cx, &me, all, page)).await
}

#[derive(Debug, Deserialize, ToSchema)]
struct AssignRequest {
    /// The thread to post the message into.
    #[schema(example = "VU#409117")]
    thread: String,
    /// Who decided (default: the analyst).
    decided_by: Option<String>,
}

/// Posts a triaged message into a thread, recording who decided.
#[utoipa::path(post, path = "/api/v1/triage/{reference}/assign", tag = "triage",
    params(("reference" = String, Path)), request_body = AssignRequest,
    responses((status = 200, body = Assigned)))]
async fn triage_assign(
    State(http): State<Arc<Http>>,
    ApiActor(me): ApiActor,
    ApiPath(r): ApiPath<String>,
    ApiJson(req): ApiJson<AssignRequest>,
) -> ApiResult<Assigned> {
    let n = number(&req.thread)?;
    run(&http, move |cx| {
        ops::triage::assign(cx, &me, &r, &n, req.decided_by.as_deref())
    })
    .await
}

/// Messages kept raw because they could not be parsed, opened or accepted, oldest first.
#[utoipa::path(get, path = "/api/v1/quarantine", tag = "quarantine", params(PageQuery),
    responses((status = 200, body = Paged<MessageRecord>)))]
async fn quarantine_list(
    State(http): State<Arc<Http>>,
    ApiActor(me): ApiActor,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Paged<MessageRecord>> {
    let page = q.page()?;
    run(&http, move |cx| ops::quarantine::list(cx, &me, page)).await
}

/// One quarantined message: why it is kept, its raw text, and what can be read of it now.
#[utoipa::path(get, path = "/api/v1/quarantine/{reference}", tag = "quarantine",
    params(("reference" = String, Path)), responses((status = 200, body = MessageView)))]
async fn quarantine_show(
    State(http): State<Arc<Http>>,
    ApiActor(me): ApiActor,
    ApiPath(r): ApiPath<String>,
) -> ApiResult<MessageView> {
    run(&http, move |cx| ops::quarantine::show(cx, &me, &r)).await
}

/// Runs a quarantined message through the pipeline again (after a key import or a fix).
#[utoipa::path(post, path = "/api/v1/quarantine/{reference}/retry", tag = "quarantine",
    params(("reference" = String, Path)), responses((status = 200, body = Retried)))]
async fn quarantine_retry(
    State(http): State<Arc<Http>>,
    ApiActor(me): ApiActor,
    ApiPath(r): ApiPath<String>,
) -> ApiResult<Retried> {
    run(&http, move |cx| ops::quarantine::retry(cx, &me, &r)).await
}

// ----- audit and tokens -----

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    /// Only this thread (and the report it was promoted from).
    thread: Option<String>,
    offset: Option<usize>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
}

/// Who changed what, and when: newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Paged<AuditEntry>)))]
async fn audit_list(
    State(http): State<Arc<Http>>,
    ApiActor(me): ApiActor,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Paged<AuditEntry>> {
    let page = Page::bounded(q.offset, q.limit)?;
    let n = q.thread.as_deref().map(number).transpose()?;
    run(&http, move |cx| ops::audit::list(cx, &me, n.as_ref(), page)).await
}

/// Every API token: name, read-only, created, last used (never the token or its hash).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", params(PageQuery),
    responses((status = 200, body = Paged<StoredToken>)))]
async fn tokens_list(
    State(http): State<Arc<Http>>,
    ApiActor(me): ApiActor,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Paged<StoredToken>> {
    let page = q.page()?;
    run(&http, move |cx| ops::tokens::list(cx, &me, page)).await
}

#[derive(Debug, Deserialize, ToSchema)]
struct AddToken {
    /// The analyst's name: 1 to 64 letters, digits, `.`, `_`, `-` or `@`.
    name: String,
    read_only: Option<bool>,
}

/// Makes a token for an analyst; the answer is the only time it is shown.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = AddToken,
    responses((status = 200, body = NewToken)))]
async fn tokens_add(
    State(http): State<Arc<Http>>,
    ApiActor(me): ApiActor,
    ApiJson(req): ApiJson<AddToken>,
) -> ApiResult<NewToken> {
    run(&http, move |cx| {
        ops::tokens::add(cx, &me, &req.name, req.read_only.unwrap_or(false))
    })
    .await
}

/// Revokes an analyst's token: requests with it are refused from now on.
#[utoipa::path(delete, path = "/api/v1/tokens/{name}", tag = "tokens",
    params(("name" = String, Path)), responses((status = 200, body = Revoked)))]
async fn tokens_revoke(
    State(http): State<Arc<Http>>,
    ApiActor(me): ApiActor,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Revoked> {
    run(&http, move |cx| ops::tokens::revoke(cx, &me, &name)).await
}
