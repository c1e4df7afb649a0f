//! The JSON API under /api/v1/: every endpoint refuses a missing or wrong token (401) and a
//! read-only token's changes (403), errors are JSON that say what to do, lists are paged
//! with bounded sizes, bodies are bounded, and a case is worked end to end with real gpg
//! keys and messages — each change audited as the token's analyst.

mod support_gpg;
mod support_http;

use axum::http::StatusCode;
use serde_json::{Value, json};
use support_gpg::*;
use support_http::{Api, seg};

const CASE: &str = "VU#409117";

/// Every (method, path) the OpenAPI document lists, with `{params}` left in.
async fn documented_operations(api: &Api) -> Vec<(String, String)> {
    let r = api.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = r.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "delete", "put", "patch"] {
            if item.get(method).is_some() {
                ops.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

fn fill(path: &str) -> String {
    path.replace("{number}", &seg(CASE))
        .replace("{reference}", "0123456789ab")
        .replace("{n}", "1")
        .replace("{fingerprint}", "coordinator")
        .replace("{name}", "ann")
}

#[tokio::test]
async fn every_endpoint_refuses_a_missing_or_wrong_token_with_a_json_401() {
    let api = Api::new();
    let audited_before = api.audit();
    let ops = documented_operations(&api).await;
    assert!(ops.len() >= 32, "only {} operations documented", ops.len());
    for (method, path) in &ops {
        let path = fill(path);
        for auth in [None, Some("cgt_not-a-token"), Some("")] {
            let r = api.call(method, &path, auth, Some(json!({}))).await;
            assert_eq!(
                r.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} {auth:?}"
            );
            let body = r.json();
            assert_eq!(body["error"], "unauthenticated", "{method} {path}");
            assert!(
                body["message"]
                    .as_str()
                    .unwrap()
                    .contains("casegate token add"),
                "{body}"
            );
            assert!(r.header("www-authenticate").starts_with("Bearer"));
        }
        // A Basic or cookie credential is not a bearer token.
        let req = axum::http::Request::builder()
            .method(method.as_str())
            .uri(&path)
            .header("authorization", format!("Basic {}", api.rw))
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(api.send(req).await.status, StatusCode::UNAUTHORIZED);
    }
    // Nothing was changed or recorded by any of it.
    assert_eq!(api.audit(), audited_before);
}

/// A store with a case, a report, a participant, a triaged and a quarantined message.
async fn populated(api: &Api) -> (String, String) {
    api.post(
        "/api/v1/threads",
        json!({"kind": "case", "title": "FooRouter RCE", "number": CASE}),
    )
    .await;
    let report = api
        .post(
            "/api/v1/threads",
            json!({"kind": "report", "title": "a report"}),
        )
        .await["number"]
        .as_str()
        .unwrap()
        .to_string();
    api.post(
        &format!("/api/v1/threads/{}/participants", seg(CASE)),
        json!({"org": "FooCorp", "email": VENDOR, "role": "vendor"}),
    )
    .await;
    let stranger = format!(
        "From: {STRANGER}\r\nTo: cert@example.test\r\nSubject: Re: {CASE} details\r\nMessage-ID: <t1@elsewhere.example>\r\n\r\nhello\r\n"
    );
    let o = api
        .raw("POST", "/api/v1/messages", &api.rw, stranger.into_bytes())
        .await
        .json();
    assert_eq!(o["outcome"], "triage", "{o}");
    let triaged = api.get("/api/v1/triage").await["items"][0]["short_id"]
        .as_str()
        .unwrap()
        .to_string();
    (report, triaged)
}

#[tokio::test]
async fn a_read_only_token_reads_everything_and_changes_nothing() {
    let api = Api::new();
    let (report, triaged) = populated(&api).await;
    let audit_before = api.audit();
    let msg = b"From: a@b.example\r\nSubject: x\r\n\r\nx\r\n".to_vec();
    let key = keyring_armored_vendor();
    // Every non-GET operation, with input that is valid (so only the token can be refused):
    // (method, documented path, concrete path, body, a change?).
    let r_seg = seg(&report);
    let c = seg(CASE);
    let table: Vec<(&str, &str, String, Option<Value>, bool)> = vec![
        (
            "POST",
            "/api/v1/threads",
            "/api/v1/threads".into(),
            Some(json!({"kind": "case", "title": "t"})),
            true,
        ),
        (
            "POST",
            "/api/v1/threads/{number}/promote",
            format!("/api/v1/threads/{r_seg}/promote"),
            Some(json!({})),
            true,
        ),
        (
            "POST",
            "/api/v1/threads/{number}/policy",
            format!("/api/v1/threads/{c}/policy"),
            Some(json!({"require_signed_statements": true})),
            true,
        ),
        (
            "POST",
            "/api/v1/threads/{number}/participants",
            format!("/api/v1/threads/{c}/participants"),
            Some(json!({"org": "X", "email": "x@x.example"})),
            true,
        ),
        (
            "POST",
            "/api/v1/threads/{number}/notices",
            format!("/api/v1/threads/{c}/notices"),
            Some(json!({"body": "b", "to": "all"})),
            true,
        ),
        (
            "POST",
            "/api/v1/threads/{number}/notices/preview",
            format!("/api/v1/threads/{c}/notices/preview"),
            Some(json!({"to": "all"})),
            false,
        ),
        (
            "POST",
            "/api/v1/messages",
            "/api/v1/messages".into(),
            None,
            true,
        ),
        (
            "POST",
            "/api/v1/messages/dry-run",
            "/api/v1/messages/dry-run".into(),
            None,
            false,
        ),
        (
            "POST",
            "/api/v1/triage/{reference}/assign",
            format!("/api/v1/triage/{triaged}/assign"),
            Some(json!({"thread": CASE})),
            true,
        ),
        (
            "POST",
            "/api/v1/quarantine/{reference}/retry",
            String::new(),
            None,
            true,
        ),
        (
            "POST",
            "/api/v1/outbox/release",
            "/api/v1/outbox/release".into(),
            Some(json!({})),
            true,
        ),
        (
            "POST",
            "/api/v1/keys",
            "/api/v1/keys".into(),
            Some(json!({"armored": key})),
            true,
        ),
        (
            "POST",
            "/api/v1/tokens",
            "/api/v1/tokens".into(),
            Some(json!({"name": "x"})),
            true,
        ),
        (
            "DELETE",
            "/api/v1/tokens/{name}",
            "/api/v1/tokens/ann".into(),
            None,
            true,
        ),
    ];
    let mut documented: Vec<(String, String)> = documented_operations(&api)
        .await
        .into_iter()
        .filter(|(m, _)| m != "GET")
        .collect();
    documented.sort();
    let mut tabled: Vec<(String, String)> = table
        .iter()
        .map(|(m, p, ..)| (m.to_string(), p.to_string()))
        .collect();
    tabled.sort();
    assert_eq!(
        documented, tabled,
        "every changing operation is in this test"
    );
    for (method, _, path, body, change) in &table {
        if path.is_empty() {
            continue; // retry: below, once there is a quarantined message
        }
        let r = if body.is_none() && path.starts_with("/api/v1/messages") {
            api.raw(method, path, &api.ro, msg.clone()).await
        } else {
            api.call(method, path, Some(&api.ro), body.clone()).await
        };
        if *change {
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "{method} {path}: {}",
                r.text()
            );
            let e = r.json();
            assert_eq!(e["error"], "forbidden");
            assert!(e["message"].as_str().unwrap().contains("read-only"), "{e}");
        } else {
            assert_eq!(r.status, StatusCode::OK, "{method} {path}: {}", r.text());
        }
    }
    // Quarantine retry needs a quarantined message: one encrypted to a key we lack.
    let f = fixture();
    let ct = f.gpg.run(
        &["--armor", "--encrypt", "-r", &f.stranger],
        Some(b"secret"),
    );
    let raw = format!("{}{}", headers(STRANGER, "x", "q1"), pgp_mime(&ct));
    let q = api
        .raw("POST", "/api/v1/messages", &api.rw, raw.into_bytes())
        .await
        .json();
    assert_eq!(q["outcome"], "quarantine", "{q}");
    let qid = api.get("/api/v1/quarantine").await["items"][0]["short_id"]
        .as_str()
        .unwrap()
        .to_string();
    let audit_before = {
        let mut a = audit_before;
        a.push("token:ann ingest".into());
        a
    };
    let r = api
        .call(
            "POST",
            &format!("/api/v1/quarantine/{qid}/retry"),
            Some(&api.ro),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Every GET works for the read-only token.
    for (method, path) in documented_operations(&api).await {
        if method != "GET" {
            continue;
        }
        let path = fill(&path).replace("0123456789ab", &triaged);
        let r = api.call("GET", &path, Some(&api.ro), None).await;
        assert!(
            r.status == StatusCode::OK || r.status == StatusCode::NOT_FOUND,
            "GET {path}: {} {}",
            r.status,
            r.text()
        );
        assert_ne!(r.status, StatusCode::FORBIDDEN);
    }
    assert_eq!(
        api.audit(),
        audit_before,
        "a read-only token changed something"
    );
}

fn keyring_armored_vendor() -> String {
    let f = fixture();
    String::from_utf8(f.gpg.run(&["--armor", "--export", &f.vendor], None)).unwrap()
}

#[tokio::test]
async fn a_case_is_worked_through_the_api_and_every_change_names_the_analyst() {
    let f = fixture();
    let api = Api::new();
    let coordinator = api
        .call("GET", "/api/v1/keys/coordinator", Some(&api.rw), None)
        .await;
    assert_eq!(coordinator.status, StatusCode::OK);
    assert_eq!(coordinator.header("content-type"), "application/pgp-keys");
    f.gpg.import(&coordinator.body);
    let coordinator_fpr = api.get("/api/v1/keys").await["items"][0]["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();

    let who = api.get("/api/v1/whoami").await;
    assert_eq!(who, json!({"name": "ann", "read_only": false}));
    api.post(
        "/api/v1/threads",
        json!({"kind": "case", "title": "FooRouter RCE", "number": CASE}),
    )
    .await;
    let added = api
        .post(
            &format!("/api/v1/threads/{}/participants", seg(CASE)),
            json!({"org": "FooCorp", "email": VENDOR, "role": "vendor", "key": keyring_armored_vendor()}),
        )
        .await;
    assert_eq!(added["key_bound"], f.vendor.as_str());
    api.post(
        &format!("/api/v1/threads/{}/participants", seg(CASE)),
        json!({"org": "Keyless Inc", "email": "psirt@keyless.example"}),
    )
    .await;
    let people = api
        .get(&format!("/api/v1/threads/{}/participants", seg(CASE)))
        .await;
    let states: Vec<(&str, &str)> = people["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["org"].as_str().unwrap(), c["key_state"].as_str().unwrap()))
        .collect();
    assert_eq!(states, vec![("FooCorp", "valid"), ("Keyless Inc", "none")]);

    // An encrypted, signed vendor statement with an attachment, handed in over the API.
    let inner = "Content-Type: multipart/mixed; boundary=\"in\"\r\n\r\n--in\r\nContent-Type: text/plain\r\n\r\nFixed in 2.0.8; marker-5150.\r\n--in\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"../../poc.sh\"\r\n\r\necho pwned\r\n--in--\r\n";
    let ct = f.gpg.run(
        &[
            "--armor",
            "--encrypt",
            "-r",
            &coordinator_fpr,
            "--sign",
            "-u",
            &f.vendor,
        ],
        Some(inner.as_bytes()),
    );
    let raw = format!(
        "{}{}",
        headers(VENDOR, &format!("Re: {CASE}"), "s1"),
        pgp_mime(&ct)
    );
    let o = api
        .raw("POST", "/api/v1/messages", &api.rw, raw.into_bytes())
        .await
        .json();
    assert_eq!(
        (o["outcome"].as_str(), o["signature"].as_str()),
        (Some("routed"), Some("good")),
        "{o}"
    );
    let shown = api.get(&format!("/api/v1/threads/{}", seg(CASE))).await;
    assert_eq!(shown["messages_total"], 1);
    let short = shown["messages"][0]["short_id"]
        .as_str()
        .unwrap()
        .to_string();
    let read = api.get(&format!("/api/v1/messages/{short}")).await;
    assert!(
        read["text"].as_str().unwrap().contains("marker-5150"),
        "{read}"
    );
    assert_eq!(read["verdicts"]["encrypted"], true);
    assert_eq!(read["verdicts"]["signer_participant"]["org"], "FooCorp");
    let att = api
        .call(
            "GET",
            &format!("/api/v1/messages/{short}/attachments/1"),
            Some(&api.rw),
            None,
        )
        .await;
    assert_eq!(att.status, StatusCode::OK);
    assert_eq!(att.body, b"echo pwned");
    assert_eq!(att.header("content-type"), "application/octet-stream");
    let disposition = att.header("content-disposition");
    assert!(
        disposition.starts_with("attachment; filename=\""),
        "{disposition}"
    );
    assert!(
        !disposition.contains('/') && disposition.contains("poc.sh"),
        "{disposition}"
    );
    let missing = api
        .call(
            "GET",
            &format!("/api/v1/messages/{short}/attachments/2"),
            Some(&api.rw),
            None,
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let raw_back = api
        .call(
            "GET",
            &format!("/api/v1/messages/{short}/raw"),
            Some(&api.rw),
            None,
        )
        .await;
    assert!(String::from_utf8_lossy(&raw_back.body).contains("BEGIN PGP MESSAGE"));
    assert!(
        raw_back
            .header("content-disposition")
            .starts_with("attachment")
    );
    let explained = api.get(&format!("/api/v1/messages/{short}/explain")).await;
    assert_eq!(explained["outcome_now"], "routed");
    assert!(!explained["steps"].as_array().unwrap().is_empty());
    assert_eq!(
        api.get(&format!("/api/v1/messages/{short}/html")).await["html"],
        Value::Null
    );

    // A stranger's mail waits in triage; the analyst assigns it.
    let stranger = format!(
        "From: {STRANGER}\r\nTo: cert@example.test\r\nSubject: Re: {CASE}\r\nMessage-ID: <t2@elsewhere.example>\r\n\r\nhi\r\n"
    );
    let dry = api
        .raw(
            "POST",
            "/api/v1/messages/dry-run",
            &api.rw,
            stranger.clone().into_bytes(),
        )
        .await
        .json();
    assert_eq!(dry["outcome"], "triage");
    assert_eq!(
        api.get("/api/v1/triage").await["total"],
        0,
        "dry run stored it"
    );
    api.raw("POST", "/api/v1/messages", &api.rw, stranger.into_bytes())
        .await;
    let waiting = api.get("/api/v1/triage").await;
    assert_eq!(waiting["total"], 1);
    let t = waiting["items"][0]["short_id"]
        .as_str()
        .unwrap()
        .to_string();
    let assigned = api
        .post(
            &format!("/api/v1/triage/{t}/assign"),
            json!({"thread": CASE}),
        )
        .await;
    assert_eq!(assigned["assigned_by"], "ann");
    let again = api
        .call(
            "POST",
            &format!("/api/v1/triage/{t}/assign"),
            Some(&api.rw),
            Some(json!({"thread": CASE})),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "{}", again.text());
    assert!(
        again.json()["message"]
            .as_str()
            .unwrap()
            .contains("triage list")
    );

    // A notice: the preview says who gets what; the copies match it.
    let preview = api
        .post(
            &format!("/api/v1/threads/{}/notices/preview", seg(CASE)),
            json!({"to": "all"}),
        )
        .await;
    assert_eq!(
        (preview["encrypted"].as_u64(), preview["held"].as_u64()),
        (Some(1), Some(1)),
        "{preview}"
    );
    let by_addr = |v: &Value, key: &str| -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["address"].as_str().unwrap().to_string(),
                    c[key].as_str().unwrap().to_string(),
                )
            })
            .collect();
        out.sort();
        out
    };
    assert_eq!(
        by_addr(&preview["recipients"], "status"),
        vec![
            ("psirt@foocorp.example".into(), "encrypted".into()),
            ("psirt@keyless.example".into(), "held".into())
        ]
    );
    assert_eq!(
        api.get("/api/v1/outbox").await["total"],
        0,
        "preview queued something"
    );
    let sent = api
        .post(
            &format!("/api/v1/threads/{}/notices", seg(CASE)),
            json!({"body": "We will publish on the 1st.", "to": "all"}),
        )
        .await;
    assert_eq!(
        by_addr(&sent["copies"], "status"),
        vec![
            ("psirt@foocorp.example".into(), "queued".into()),
            ("psirt@keyless.example".into(), "held".into())
        ]
    );
    let outbox = api
        .get(&format!(
            "/api/v1/outbox?thread={}&attempts=true",
            seg(CASE)
        ))
        .await;
    assert_eq!(outbox["total"], 2);
    assert_eq!(api.get("/api/v1/outbox?status=held").await["total"], 1);
    let released = api
        .post("/api/v1/outbox/release", json!({"thread": CASE}))
        .await;
    assert_eq!(released[0]["status"], "held");

    // Policy, promotion, keys, tokens.
    let policy = api
        .post(
            &format!("/api/v1/threads/{}/policy", seg(CASE)),
            json!({"publication_date": "2027-01-15"}),
        )
        .await;
    assert_eq!(policy["publication_date"], "2027-01-15T00:00:00Z");
    let bad = api
        .call(
            "POST",
            &format!("/api/v1/threads/{}/policy", seg(CASE)),
            Some(&api.rw),
            Some(json!({"publication_date": "soon"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let report = api
        .post("/api/v1/threads", json!({"kind": "report", "title": "r"}))
        .await;
    let promoted = api
        .post(
            &format!(
                "/api/v1/threads/{}/promote",
                seg(report["number"].as_str().unwrap())
            ),
            json!({}),
        )
        .await;
    assert_eq!(promoted["kind"], "case");
    let imported = api
        .post("/api/v1/keys", json!({"armored": keyring_armored_vendor()}))
        .await;
    assert_eq!(imported["certs"][0]["fingerprint"], f.vendor.as_str());
    let not_a_key = api
        .call(
            "POST",
            "/api/v1/keys",
            Some(&api.rw),
            Some(json!({"armored": "hello"})),
        )
        .await;
    assert_eq!(not_a_key.status, StatusCode::BAD_REQUEST);
    let tok = api
        .post("/api/v1/tokens", json!({"name": "sam", "read_only": true}))
        .await;
    assert!(tok["token"].as_str().unwrap().starts_with("cgt_"));
    let listed = api.get("/api/v1/tokens").await;
    assert!(!listed.to_string().contains(tok["token"].as_str().unwrap()));
    let gone = api
        .call("DELETE", "/api/v1/tokens/sam", Some(&api.rw), None)
        .await;
    assert_eq!(gone.status, StatusCode::OK);
    let with_revoked = api
        .call("GET", "/api/v1/whoami", tok["token"].as_str(), None)
        .await;
    assert_eq!(with_revoked.status, StatusCode::UNAUTHORIZED);
    let status = api.get("/api/v1/status").await;
    assert_eq!(status["triage"], 0);

    // The audit trail names the analyst for every change made over the API.
    let audit = api
        .get(&format!("/api/v1/audit?thread={}", seg(CASE)))
        .await;
    let actions: Vec<String> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["actor"].as_str().unwrap(),
                e["action"].as_str().unwrap()
            )
        })
        .collect();
    for want in [
        "token:ann open",
        "token:ann participant add",
        "token:ann ingest",
        "token:ann triage assign",
        "token:ann notify",
        "token:ann set",
    ] {
        assert!(
            actions.contains(&want.to_string()),
            "{want} missing from {actions:?}"
        );
    }
    assert!(
        actions.iter().all(|a| a.starts_with("token:ann ")),
        "{actions:?}"
    );
}

#[tokio::test]
async fn lists_are_paged_and_a_client_cannot_ask_for_more_than_the_bound() {
    let api = Api::new();
    for i in 0..5 {
        api.post(
            "/api/v1/threads",
            json!({"kind": "ticket", "title": format!("t{i}")}),
        )
        .await;
    }
    let first = api.get("/api/v1/threads?limit=2").await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        (first["total"].as_u64(), first["next_offset"].as_u64()),
        (Some(5), Some(2))
    );
    let last = api.get("/api/v1/threads?limit=2&offset=4").await;
    assert_eq!(last["items"][0]["title"], "t4");
    assert_eq!(last["next_offset"], Value::Null);
    let default = api.get("/api/v1/audit").await;
    assert_eq!(
        default["items"][0]["detail"], "ticket \"t4\"",
        "newest first"
    );
    for bad in [
        "limit=0",
        "limit=501",
        "limit=-1",
        "offset=x",
        "limit=99999999999999999999999",
    ] {
        for path in [
            "/api/v1/threads",
            "/api/v1/triage",
            "/api/v1/quarantine",
            "/api/v1/outbox",
            "/api/v1/audit",
            "/api/v1/tokens",
            "/api/v1/keys",
        ] {
            let r = api
                .call("GET", &format!("{path}?{bad}"), Some(&api.rw), None)
                .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}?{bad}");
            assert_eq!(r.json()["error"], "invalid");
        }
    }
    let ok = api.get("/api/v1/triage?limit=500").await;
    assert_eq!(ok["total"], 0);
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_and_nothing_is_stored() {
    let api = Api::with(|s| s.config.http.max_body_bytes = 4096);
    let big = format!(
        "From: a@b.example\r\nSubject: big\r\n\r\n{}\r\n",
        "x".repeat(5000)
    );
    let r = api
        .raw("POST", "/api/v1/messages", &api.rw, big.into_bytes())
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("max_body_bytes")
    );
    let notice = api
        .call(
            "POST",
            "/api/v1/threads",
            Some(&api.rw),
            Some(json!({"kind": "case", "title": "x".repeat(5000)})),
        )
        .await;
    assert_eq!(notice.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(api.get("/api/v1/status").await["triage"], 0);
    assert_eq!(api.get("/api/v1/threads").await["total"], 0);
}

#[tokio::test]
async fn errors_are_json_that_say_what_to_do() {
    let api = Api::new();
    let cases = [
        (
            "GET",
            "/api/v1/threads/VU%23999999",
            None,
            StatusCode::NOT_FOUND,
            "casegate list",
        ),
        (
            "GET",
            "/api/v1/threads/not-a-number",
            None,
            StatusCode::BAD_REQUEST,
            "%23",
        ),
        (
            "GET",
            "/api/v1/messages/abc",
            None,
            StatusCode::BAD_REQUEST,
            "short id",
        ),
        (
            "GET",
            "/api/v1/nothing-here",
            None,
            StatusCode::NOT_FOUND,
            "openapi.json",
        ),
        (
            "POST",
            "/api/v1/threads",
            Some(json!({"kind": "case"})),
            StatusCode::BAD_REQUEST,
            "title",
        ),
        (
            "POST",
            "/api/v1/threads",
            Some(json!({"kind": "case", "title": " "})),
            StatusCode::BAD_REQUEST,
            "title",
        ),
        (
            "POST",
            "/api/v1/tokens",
            Some(json!({"name": "a b"})),
            StatusCode::BAD_REQUEST,
            "letters",
        ),
        (
            "DELETE",
            "/api/v1/tokens/nobody",
            None,
            StatusCode::NOT_FOUND,
            "token list",
        ),
        (
            "GET",
            "/api/v1/outbox?status=lost",
            None,
            StatusCode::BAD_REQUEST,
            "queued",
        ),
    ];
    for (method, path, body, status, says) in cases {
        let r = api.call(method, path, Some(&api.rw), body).await;
        assert_eq!(r.status, status, "{method} {path}: {}", r.text());
        assert!(
            r.header("content-type").starts_with("application/json"),
            "{path}"
        );
        let e = r.json();
        assert!(e["message"].as_str().unwrap().contains(says), "{path}: {e}");
    }
    let r = api
        .send(
            axum::http::Request::builder()
                .method("POST")
                .uri("/api/v1/threads")
                .header("authorization", format!("Bearer {}", api.rw))
                .header("content-type", "application/json")
                .body(axum::body::Body::from("{not json"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"], "invalid");
}

#[tokio::test]
async fn the_openapi_document_describes_every_route_with_schemas_from_the_code() {
    let api = Api::new();
    let doc = api
        .call("GET", "/api/v1/openapi.json", None, None)
        .await
        .json();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "MessageRecord",
        "ThreadView",
        "MessageView",
        "ErrorBody",
        "OutboxRow",
        "AuditEntry",
        "NoticePreview",
        "ContactKeys",
    ] {
        assert!(schemas.contains_key(name), "{name} missing");
    }
    // MessageRecord's fields are the struct's (skip-serialized `id` absent).
    let props = schemas["MessageRecord"]["properties"].as_object().unwrap();
    assert!(props.contains_key("short_id") && !props.contains_key("id"));
    assert_eq!(
        doc["components"]["securitySchemes"]["token"]["scheme"],
        "bearer"
    );
    // Every operation documents its errors.
    for (_, item) in doc["paths"].as_object().unwrap() {
        for (_, op) in item.as_object().unwrap() {
            for code in ["400", "401", "403", "404", "500"] {
                assert!(op["responses"].get(code).is_some(), "{op}");
            }
        }
    }
}
