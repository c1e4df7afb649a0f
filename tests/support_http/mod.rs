//! The HTTP face in-process: the router `serve` runs, over a real store in a temp dir, called
//! request by request (no port). Tokens are made with the same ops the CLI uses.
#![allow(dead_code)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use casegate::config::Settings;
use casegate::ops::{self, Actor, Context};
use serde_json::Value;
use tower::ServiceExt;

pub struct Api {
    pub router: Router,
    pub settings: Settings,
    /// Read-write token of analyst `ann`.
    pub rw: String,
    /// Read-only token of analyst `rita`.
    pub ro: String,
    _dir: tempfile::TempDir,
}

/// What came back.
pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}), status {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect()
    }
}

impl Api {
    pub fn new() -> Api {
        Api::with(|_| {})
    }

    /// With settings changed by `tune` (e.g. a small body limit).
    pub fn with(tune: impl FnOnce(&mut Settings)) -> Api {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::load(None, Some(dir.path())).unwrap();
        tune(&mut settings);
        let admin = Actor::named("cli:admin", false);
        ops::setup::init(&settings, &admin).unwrap();
        let mut cx = Context::open(settings.clone()).unwrap();
        let rw = ops::tokens::add(&mut cx, &admin, "ann", false)
            .unwrap()
            .token;
        let ro = ops::tokens::add(&mut cx, &admin, "rita", true)
            .unwrap()
            .token;
        Api {
            router: casegate::http::router(settings.clone()),
            settings,
            rw,
            ro,
            _dir: dir,
        }
    }

    /// A context over the same store, to check what the requests did.
    pub fn cx(&self) -> Context {
        Context::open(self.settings.clone()).unwrap()
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 64 << 20)
            .await
            .unwrap()
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    /// `method path` with a bearer token and a JSON body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let request = match body {
            Some(v) => b
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(v.to_string())),
            None => b.body(Body::empty()),
        };
        self.send(request.unwrap()).await
    }

    /// `method path` with raw bytes (a message handed in).
    pub async fn raw(&self, method: &str, path: &str, token: &str, bytes: Vec<u8>) -> Reply {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "message/rfc822")
            .body(Body::from(bytes))
            .unwrap();
        self.send(request).await
    }

    pub async fn get(&self, path: &str) -> Value {
        let r = self.call("GET", path, Some(&self.rw), None).await;
        assert_eq!(r.status, StatusCode::OK, "GET {path}: {}", r.text());
        r.json()
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        let r = self.call("POST", path, Some(&self.rw), Some(body)).await;
        assert_eq!(r.status, StatusCode::OK, "POST {path}: {}", r.text());
        r.json()
    }

    /// Every audit record's `actor action` , oldest first.
    pub fn audit(&self) -> Vec<String> {
        let cx = self.cx();
        let admin = Actor::named("cli:admin", false);
        let mut all = ops::audit::list(&cx, &admin, None, ops::Page::ALL)
            .unwrap()
            .items;
        all.reverse();
        all.into_iter()
            .map(|e| format!("{} {}", e.actor, e.action))
            .collect()
    }
}

/// `#` in a tracking number, as a path segment.
pub fn seg(n: &str) -> String {
    n.replace('#', "%23")
}
