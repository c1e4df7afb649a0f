//! The web page, in-process: log-in trades a token for a session cookie (HttpOnly,
//! SameSite=Strict), every form carries the session's CSRF token and a form without it (or
//! with another session's) changes nothing, revoking the token or logging out ends the
//! session, every response carries the security headers, mail HTML is sanitized into a
//! sandboxed frame, attachments are downloads, and the triage queue marks what waited past
//! the 3-day promise.

mod support_gpg;
mod support_http;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use casegate::ops::{self, Actor};
use casegate::store::{Disposition, MessageSource, NewMessage, Store};
use support_http::{Api, Reply, seg};

const CASE: &str = "VU#409117";

/// A browser: the session cookie and the CSRF token of its pages.
struct Browser<'a> {
    api: &'a Api,
    cookie: String,
    csrf: String,
}

fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[at..].split('"').next().unwrap().to_string()
}

fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

async fn login<'a>(api: &'a Api, token: &str) -> Browser<'a> {
    let form = api
        .send(Request::get("/login").body(Body::empty()).unwrap())
        .await;
    assert_eq!(form.status, StatusCode::OK);
    let nonce_cookie = cookie_pair(&form.cookies()[0]);
    let nonce = csrf_of(&form.text());
    let r = api
        .send(
            Request::post("/login")
                .header(header::COOKIE, &nonce_cookie)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!("token={token}&csrf={nonce}")))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let session = r
        .cookies()
        .into_iter()
        .find(|c| c.starts_with("casegate_session="))
        .expect("a session cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(session.contains(attr), "{attr} missing: {session}");
    }
    assert!(!session.contains("Secure"), "plain HTTP: no Secure");
    let mut b = Browser {
        api,
        cookie: cookie_pair(&session),
        csrf: String::new(),
    };
    let home = b.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    b.csrf = csrf_of(&home.text());
    b
}

impl Browser<'_> {
    async fn get(&self, path: &str) -> Reply {
        self.api
            .send(
                Request::get(path)
                    .header(header::COOKIE, &self.cookie)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
    }

    async fn post(&self, path: &str, form: &str) -> Reply {
        self.api
            .send(
                Request::post(path)
                    .header(header::COOKIE, &self.cookie)
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from(form.to_string()))
                    .unwrap(),
            )
            .await
    }
}

fn admin() -> Actor {
    Actor::named("cli:admin", false)
}

/// A case with a keyless participant, a held copy, a triaged message (received 4 days ago,
/// so overdue) and a fresh one, a quarantined message, and an HTML message with attachment.
fn populate(api: &Api) -> (String, String, String) {
    let mut cx = api.cx();
    let n = casegate::tracking::TrackingNumber::parse(CASE).unwrap();
    ops::threads::open(
        &mut cx,
        &admin(),
        casegate::tracking::Kind::Case,
        "FooRouter RCE",
        Some(&n),
    )
    .unwrap();
    let contact = ops::participants::NewContact {
        org: "Keyless Inc",
        email: "psirt@keyless.example",
        role: "vendor",
        key: None,
    };
    ops::participants::add(&mut cx, &admin(), &n, &contact).unwrap();
    ops::notices::notify(
        &mut cx,
        &admin(),
        &n,
        &ops::notices::NoticeRequest {
            body: "hello".into(),
            subject: None,
            to: "all".into(),
            in_reply_to: None,
        },
    )
    .unwrap();
    drop(cx);
    let mut store = Store::open(&api.settings.store_path()).unwrap();
    let old = chrono::Utc::now() - chrono::Duration::days(4);
    let mut stored = Vec::new();
    for (i, (when, subject)) in [
        (old, "old question"),
        (chrono::Utc::now(), "fresh question"),
    ]
    .into_iter()
    .enumerate()
    {
        let raw = format!(
            "From: someone@elsewhere.example\r\nSubject: {subject}\r\nMessage-ID: <q{i}@elsewhere.example>\r\n\r\n?\r\n"
        );
        let m = NewMessage {
            message_id: Some(format!("<q{i}@elsewhere.example>")),
            sender: Some("someone@elsewhere.example".into()),
            subject: Some(subject.into()),
            reason: "no tracking number and an unknown sender".into(),
            ..NewMessage::inbound(
                raw.as_bytes(),
                MessageSource::Stdin,
                when,
                Disposition::Triage,
            )
        };
        let c = store.commit_message(&m).unwrap();
        stored.push(store.message_record(c.id).unwrap().short_id);
    }
    let html = "From: vendor@foocorp.example\r\nSubject: styled\r\nMessage-ID: <h1@foocorp.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>Hi <b>there</b><img src=\"https://tracker.example/p.png\"><script>alert(1)</script></p>\r\n--b\r\nContent-Type: text/html; name=\"evil.html\"\r\nContent-Disposition: attachment; filename=\"../evil.html\"\r\n\r\n<script>alert(2)</script>\r\n--b--\r\n";
    let m = NewMessage {
        message_id: Some("<h1@foocorp.example>".into()),
        reason: "test".into(),
        ..NewMessage::inbound(
            html.as_bytes(),
            MessageSource::Stdin,
            chrono::Utc::now(),
            Disposition::Quarantine,
        )
    };
    let c = store.commit_message(&m).unwrap();
    let quarantined = store.message_record(c.id).unwrap().short_id;
    (stored[0].clone(), stored[1].clone(), quarantined)
}

#[tokio::test]
async fn log_in_gives_a_strict_cookie_and_pages_need_it() {
    let api = Api::new();
    // No session: every page sends the browser to the log-in form.
    for path in [
        "/",
        "/threads",
        "/outbox",
        "/quarantine",
        "/audit",
        "/messages/0123456789ab",
    ] {
        let r = api
            .send(Request::get(path).body(Body::empty()).unwrap())
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(r.header("location"), "/login");
    }
    // A wrong token: 401 with the form again; a log-in without the form's nonce: 403.
    let form = api
        .send(Request::get("/login").body(Body::empty()).unwrap())
        .await;
    let nonce_cookie = cookie_pair(&form.cookies()[0]);
    let nonce = csrf_of(&form.text());
    let wrong = api
        .send(
            Request::post("/login")
                .header(header::COOKIE, &nonce_cookie)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!("token=cgt_wrong&csrf={nonce}")))
                .unwrap(),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.text().contains("not valid"));
    let forged = api
        .send(
            Request::post("/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!("token={}&csrf={nonce}", api.rw)))
                .unwrap(),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(
        forged
            .cookies()
            .iter()
            .all(|c| !c.starts_with("casegate_session="))
    );

    let b = login(&api, &api.rw).await;
    let home = b.get("/").await;
    assert!(home.text().contains("Triage queue") && home.text().contains("ann"));
    // Log out (with the CSRF token): the cookie no longer works.
    let out = b.post("/logout", &format!("csrf={}", b.csrf)).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(b.get("/").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn revoking_the_token_ends_its_sessions() {
    let api = Api::new();
    let b = login(&api, &api.rw).await;
    assert_eq!(b.get("/threads").await.status, StatusCode::OK);
    let mut cx = api.cx();
    ops::tokens::revoke(&mut cx, &admin(), "ann").unwrap();
    let r = b.get("/threads").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), "/login");
}

#[tokio::test]
async fn every_form_carries_the_csrf_token_and_forged_forms_change_nothing() {
    let api = Api::new();
    let (old, _fresh, quarantined) = populate(&api);
    let b = login(&api, &api.rw).await;
    let case = seg(CASE);
    // Every page with forms: each POST form has this session's CSRF token.
    let mut actions = Vec::new();
    for path in [
        "/".to_string(),
        format!("/threads/{case}"),
        format!("/threads/{case}/notice"),
        format!("/messages/{old}"),
        "/quarantine".into(),
        format!("/quarantine/{quarantined}"),
    ] {
        let page = b.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        let text = page.text();
        for form in text.split("<form").skip(1) {
            let form = &form[..form.find("</form>").unwrap()];
            if !form.contains("method=\"post\"") {
                continue;
            }
            assert!(
                form.contains(&format!("name=\"csrf\" value=\"{}\"", b.csrf)),
                "{path}: a form without the session's CSRF token: {form}"
            );
            let action = form
                .split("action=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            actions.push(action.to_string());
        }
    }
    for want in [
        "/logout",
        "/triage/",
        "/participants",
        "/notice/preview",
        "/release",
        "/retry",
    ] {
        assert!(
            actions.iter().any(|a| a.contains(want)),
            "no form posts to {want}: {actions:?}"
        );
    }
    // Forged: no token, another session's token, a token of the right length but wrong.
    let other = login(&api, &api.rw).await;
    let audit_before = api.audit();
    let forms = [
        (format!("/triage/{old}/assign"), format!("thread={case}")),
        (format!("/threads/{case}/release"), String::new()),
        (
            format!("/threads/{case}/notice"),
            "to=all&body=forged".into(),
        ),
        (
            format!("/threads/{case}/notice/preview"),
            "to=all&body=forged".into(),
        ),
        (format!("/quarantine/{quarantined}/retry"), String::new()),
        (format!("/threads/{case}/promote"), String::new()),
        ("/logout".into(), String::new()),
    ];
    for (action, fields) in &forms {
        for csrf in [
            None,
            Some(other.csrf.clone()),
            Some("A".repeat(b.csrf.len())),
        ] {
            let body = match &csrf {
                None => fields.clone(),
                Some(c) => format!("{fields}&csrf={c}"),
            };
            let r = b.post(action, &body).await;
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "{action} with {csrf:?}: {}",
                r.text()
            );
            assert!(r.text().contains("CSRF"), "{action}");
        }
    }
    // The multipart participant form too.
    let boundary = "XyZ";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"org\"\r\n\r\nEvil\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\nevil@evil.example\r\n--{boundary}--\r\n"
    );
    let r = api
        .send(
            Request::post(format!("/threads/{case}/participants"))
                .header(header::COOKIE, &b.cookie)
                .header(
                    header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(api.audit(), audit_before, "a forged form changed something");
    // The session still works, and the real form does what it says.
    let r = b
        .post(
            &format!("/triage/{old}/assign"),
            &format!("thread={case}&csrf={}", b.csrf),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().contains("is now in"));
    assert_eq!(api.audit().last().unwrap(), "token:ann triage assign");
}

#[tokio::test]
async fn a_read_only_session_reads_but_its_forms_are_refused() {
    let api = Api::new();
    let (old, ..) = populate(&api);
    let b = login(&api, &api.ro).await;
    assert!(b.get("/").await.text().contains("(read-only)"));
    let before = api.audit();
    let r = b
        .post(
            &format!("/triage/{old}/assign"),
            &format!("thread={}&csrf={}", seg(CASE), b.csrf),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.text().contains("read-only"));
    assert_eq!(api.audit(), before);
}

#[tokio::test]
async fn pages_show_the_queue_threads_and_messages_safely() {
    let api = Api::new();
    let (old, fresh, quarantined) = populate(&api);
    let b = login(&api, &api.rw).await;
    // The triage queue: reason and age; the old one stands out, the fresh one does not.
    let queue = b.get("/").await.text();
    assert!(queue.contains("no tracking number and an unknown sender"));
    let item = |short: &str| -> String {
        let at = queue.find(&format!("/messages/{short}")).unwrap();
        let start = queue[..at].rfind("<li").unwrap();
        queue[start..at].to_string()
    };
    assert!(item(&old).contains("overdue"), "{}", item(&old));
    assert!(!item(&fresh).contains("overdue"));
    assert!(queue.contains("past 3 days"));
    // The thread: the participant's key state, the held copy, planned publication.
    let thread = b.get(&format!("/threads/{}", seg(CASE))).await.text();
    assert!(thread.contains("Keyless Inc") && thread.contains("no usable key"));
    assert!(thread.contains("held") && thread.contains("Release held copies"));
    let list = b.get("/threads").await.text();
    assert!(list.contains(CASE) && list.contains("Planned publication"));
    // Mail HTML: converted to text on the page, and the HTML only in a sandboxed frame
    // whose document is sanitized, under a CSP that loads nothing.
    let page = b.get(&format!("/quarantine/{quarantined}")).await;
    let text = page.text();
    assert!(
        !text.contains("tracker.example") || text.contains("&lt;img"),
        "remote URL on the page"
    );
    assert!(!text.contains("<script"));
    assert!(text.contains("<iframe") && text.contains("sandbox=\"\""));
    let frame = b.get(&format!("/messages/{quarantined}/html")).await;
    let csp = frame.header("content-security-policy");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("sandbox"),
        "{csp}"
    );
    let doc = frame.text();
    assert!(doc.contains("<b>there</b>"));
    assert!(
        !doc.contains("tracker.example") && !doc.contains("script"),
        "{doc}"
    );
    // Attachments are downloads with a safe name, never rendered.
    let att = b
        .get(&format!("/messages/{quarantined}/attachments/1"))
        .await;
    assert_eq!(att.status, StatusCode::OK);
    assert_eq!(att.header("content-type"), "application/octet-stream");
    let cd = att.header("content-disposition");
    assert!(
        cd.starts_with("attachment; filename=\"") && !cd.contains('/'),
        "{cd}"
    );
    assert!(att.header("content-security-policy").contains("sandbox"));
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let api = Api::new();
    let (old, ..) = populate(&api);
    let b = login(&api, &api.rw).await;
    let mut replies = Vec::new();
    for path in [
        "/",
        "/login",
        "/style.css",
        "/threads",
        "/nope",
        &format!("/messages/{old}"),
        "/api/v1/openapi.json",
        "/api/v1/status",
    ] {
        replies.push((path.to_string(), b.get(path).await));
    }
    replies.push((
        "api 401".into(),
        api.call("GET", "/api/v1/threads", None, None).await,
    ));
    for (what, r) in &replies {
        let csp = r.header("content-security-policy");
        assert!(csp.contains("default-src 'none'"), "{what}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
        assert!(
            !csp.contains("http:") && !csp.contains("https:") && !csp.contains("script-src"),
            "{what}: {csp}"
        );
        assert_eq!(r.header("x-content-type-options"), "nosniff", "{what}");
        assert_eq!(r.header("referrer-policy"), "no-referrer", "{what}");
        assert_eq!(r.header("x-frame-options"), "DENY", "{what}");
    }
    // The pages load nothing from elsewhere and run no script.
    for (what, r) in &replies {
        if r.header("content-type").starts_with("text/html") {
            let t = r.text();
            assert!(
                !t.contains("<script") && !t.contains("src=\"http") && !t.contains("href=\"http"),
                "{what}"
            );
        }
    }
}
