//! The analysts' HTTP face, served by `casegate serve` on one listener (`[http]`): the JSON API
//! under `/api/v1/` ([`api`]) and the web page at `/` ([`pages`]). Both only wire and
//! present: every read and change goes through `ops`, as the command line's do, on a blocking
//! thread ([`desk`]); who is asking is settled in [`auth`].
//!
//! Every response carries the security headers (a strict Content-Security-Policy that loads
//! nothing from elsewhere, no framing, no referrer, no sniffing). Mail HTML is never rendered
//! in the page itself: see [`mail_html`].

pub mod api;
pub mod auth;
pub mod desk;
pub mod mail_html;
pub mod pages;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{HttpConfig, Settings};

/// What every request handler shares.
pub struct Http {
    pub desk: desk::Desk,
    pub sessions: auth::Sessions,
    /// The listener speaks TLS: cookies are Secure.
    pub tls: bool,
}

/// Why the listener could not start. The daemon logs it and serves mail anyway.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{0}")]
    Config(String),
    #[error(
        "cannot listen on {addr}: {source}; choose another [http] listen address, or set [http] enabled = false"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "TLS: {0}; [http] tls_cert_file and tls_key_file must be PEM files readable by casegate"
    )]
    Tls(String),
}

/// The router for `settings`: API, pages and the security headers (no listener).
pub fn router(settings: Settings) -> Router {
    let config = settings.config.http.clone();
    let tls = config.tls_cert_file.is_some();
    let http = Arc::new(Http {
        desk: desk::Desk::new(settings, config.store_connections),
        sessions: auth::Sessions::new(Duration::from_secs(config.session_hours * 3600)),
        tls,
    });
    app(http, &config)
}

fn app(http: Arc<Http>, config: &HttpConfig) -> Router {
    Router::new()
        .nest("/api/v1", api::routes())
        .merge(pages::routes())
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(middleware::from_fn(security_headers))
        .with_state(http)
}

/// A bound listener, ready to [`run`].
pub struct Listener {
    tcp: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    router: Router,
}

impl Listener {
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.tcp.local_addr().ok()
    }
}

/// Binds `[http] listen` (and loads the TLS files) now, so the daemon can say at start-up
/// what is wrong.
pub async fn bind(settings: &Settings) -> Result<Listener, HttpError> {
    let config = &settings.config.http;
    let addr = config
        .listen_addr()
        .map_err(|e| HttpError::Config(e.to_string()))?;
    let tls = match (&config.tls_cert_file, &config.tls_key_file) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        _ => None,
    };
    let tcp = TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })?;
    Ok(Listener {
        tcp,
        tls,
        router: router(settings.clone()),
    })
}

fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, HttpError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| HttpError::Tls(format!("certificate {}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(HttpError::Tls(format!(
            "no certificate in {}",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| HttpError::Tls(format!("private key {}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| HttpError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| HttpError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Most connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 512;
/// A client gets this long to send its request head (and to finish a TLS handshake).
const HEAD_TIMEOUT: Duration = Duration::from_secs(20);

/// Serves until `stop` turns true, then lets requests in flight finish (bounded).
pub async fn run(listener: Listener, mut stop: watch::Receiver<bool>) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;

    let graceful = GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let service = TowerToHyperService::new(listener.router.clone());
    loop {
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => match s { Ok(s) => s, Err(_) => break },
            _ = stop.changed() => break,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.tcp.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, never spin.
                    tracing::warn!(error = %e, "HTTP: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = tcp.set_nodelay(true);
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(HEAD_TIMEOUT)
            .max_buf_size(64 * 1024);
        let service = service.clone();
        let tls = listener.tls.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _slot = slot;
            match tls {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(tcp), service);
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(%peer, error = %e, "HTTP connection ended");
                    }
                }
                Some(acceptor) => {
                    let stream =
                        match tokio::time::timeout(HEAD_TIMEOUT, acceptor.accept(tcp)).await {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => return,
                        };
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(%peer, error = %e, "HTTPS connection ended");
                    }
                }
            }
        });
    }
    // Requests in flight finish; idle keep-alive connections close now.
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("HTTP: requests still running after 10 s were cut off");
    }
}

/// The Content-Security-Policy of every page: nothing from elsewhere, no scripts, no
/// plugins, forms only to us, frames only our own sandboxed mail view, never framed.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-src 'self'; base-uri 'none'; frame-ancestors 'none'";

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_CSP),
        );
    }
    if !h.contains_key(header::X_FRAME_OPTIONS) {
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        // Case content must not linger in shared or disk caches.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// A file to download, never to display: `Content-Disposition: attachment` with a safe name,
/// and a type the browser will not render.
pub fn download(bytes: Vec<u8>, file_name: &str, content_type: &'static str) -> Response {
    let disposition = format!("attachment; filename=\"{file_name}\"");
    let disposition = HeaderValue::from_str(&disposition)
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_DISPOSITION, disposition),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; sandbox; frame-ancestors 'none'"),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// A file name for a download: the sender's name reduced to letters, digits, `.`, `-`, `_`
/// (no path, no leading dot, at most 100 characters), else `<message>-<n>.bin`.
pub fn safe_file_name(sender_name: Option<&str>, message: &str, n: usize) -> String {
    let base = sender_name
        .map(|s| s.rsplit(['/', '\\']).next().unwrap_or(""))
        .unwrap_or("");
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    let cleaned = cleaned.trim_start_matches('.').to_string();
    if cleaned.chars().any(|c| c.is_ascii_alphanumeric()) {
        format!("{message}-{n}-{cleaned}")
    } else {
        format!("{message}-{n}.bin")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_names_keep_no_path_and_no_quotes() {
        for (given, want) in [
            (Some("../../etc/passwd"), "abc-1-passwd"),
            (Some("C:\\evil\\x.exe"), "abc-1-x.exe"),
            (Some("a\"b; filename=x.html"), "abc-1-a_b__filename_x.html"),
            (Some(".bashrc"), "abc-1-bashrc"),
            (Some("..."), "abc-1.bin"),
            (Some("отчёт.pdf"), "abc-1-_____.pdf"),
            (None, "abc-1.bin"),
        ] {
            assert_eq!(safe_file_name(given, "abc", 1), want, "{given:?}");
        }
        let long = "x".repeat(500);
        assert!(safe_file_name(Some(&long), "abc", 1).len() <= 110);
    }
}
