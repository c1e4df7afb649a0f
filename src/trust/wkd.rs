//! Web Key Directory lookups (draft-koch-openpgp-webkey-service): a contact's current key from
//! its domain's web server, over HTTPS with the certificate checks every connection of
//! casegate makes (system roots plus `[keys.wkd] ca_file`, host names checked; rustls, ring).
//!
//! The advanced method (`https://openpgpkey.DOMAIN/.well-known/openpgpkey/DOMAIN/hu/HASH`)
//! first; the direct one (`https://DOMAIN/.well-known/openpgpkey/hu/HASH`) when the
//! `openpgpkey` host does not exist or takes no connection. HASH is the z-base32 SHA-1 of the
//! lower-cased local part.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::Uri;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use sequoia_openpgp::types::HashAlgorithm;
use tokio_rustls::TlsConnector;

use crate::config::WkdConfig;

/// Largest key file read (a key with many signatures is tens of KB).
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Redirects followed, to https only.
const MAX_REDIRECTS: usize = 3;

/// Why a lookup gave no answer (not-found is an answer: `Ok(None)`).
#[derive(Debug, thiserror::Error)]
pub enum WkdError {
    #[error("{0:?} is not an email address")]
    Address(String),
    #[error("{url}: {message}")]
    Fetch { url: String, message: String },
    #[error("{0}")]
    Config(String),
}

/// The two places a key may be published, advanced first.
pub fn urls(address: &str) -> Result<[String; 2], WkdError> {
    let (local, domain) = address
        .trim()
        .rsplit_once('@')
        .filter(|(l, d)| !l.is_empty() && !d.is_empty())
        .ok_or_else(|| WkdError::Address(address.to_string()))?;
    let domain = domain.to_ascii_lowercase();
    if !domain
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        return Err(WkdError::Address(address.to_string()));
    }
    let hash = zbase32(&sha1(local.to_lowercase().as_bytes()));
    let l = percent_encode(local);
    Ok([
        format!("https://openpgpkey.{domain}/.well-known/openpgpkey/{domain}/hu/{hash}?l={l}"),
        format!("https://{domain}/.well-known/openpgpkey/hu/{hash}?l={l}"),
    ])
}

fn sha1(data: &[u8]) -> Vec<u8> {
    // SHA-1 as a name hash, not a signature: sequoia's backend computes it.
    match HashAlgorithm::SHA1.context() {
        Ok(b) => {
            let mut ctx = b.for_digest();
            ctx.update(data);
            ctx.into_digest().unwrap_or_default()
        }
        Err(_) => Vec::new(),
    }
}

/// z-base-32 (the WKD hash encoding): 5 bits per character, most significant first.
fn zbase32(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";
    let mut out = String::with_capacity(data.len() * 8 / 5 + 1);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &b in data {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A WKD client: TLS settings, the host overrides and the timeout.
#[derive(Clone)]
pub struct WkdClient {
    tls: TlsConnector,
    resolve: BTreeMap<String, SocketAddr>,
    timeout: Duration,
}

/// What one address's lookup found.
#[derive(Debug)]
pub struct Lookup {
    pub address: String,
    /// The key bytes published for it, `None` when neither method has one.
    pub found: Result<Option<Vec<u8>>, WkdError>,
}

impl WkdClient {
    pub fn new(config: &WkdConfig) -> Result<WkdClient, WkdError> {
        let trust = crate::tls::ServerTrust::new(config.ca_file.as_deref(), Default::default())
            .map_err(|e| WkdError::Config(format!("[keys.wkd] {e}")))?;
        let mut tls = trust
            .client_config()
            .map_err(|e| WkdError::Config(format!("[keys.wkd] {e}")))?;
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let mut resolve = BTreeMap::new();
        for (host, to) in &config.resolve {
            let addr = to.parse().map_err(|_| {
                WkdError::Config(format!(
                    "[keys.wkd] resolve: {host:?} = {to:?} is not IP:PORT"
                ))
            })?;
            resolve.insert(host.to_ascii_lowercase(), addr);
        }
        Ok(WkdClient {
            tls: TlsConnector::from(Arc::new(tls)),
            resolve,
            timeout: Duration::from_secs(config.timeout_secs.max(1)),
        })
    }

    /// Looks every address up, one after the other, on a runtime of its own (so it may be
    /// called from anywhere, inside another runtime's blocking pool too).
    pub fn lookup_all(&self, addresses: &[String]) -> Vec<Lookup> {
        let run = || -> Vec<Lookup> {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    return addresses
                        .iter()
                        .map(|a| Lookup {
                            address: a.clone(),
                            found: Err(WkdError::Config(format!("cannot start a runtime: {e}"))),
                        })
                        .collect();
                }
            };
            rt.block_on(async {
                let mut out = Vec::with_capacity(addresses.len());
                for a in addresses {
                    out.push(Lookup {
                        address: a.clone(),
                        found: self.lookup(a).await,
                    });
                }
                out
            })
        };
        std::thread::scope(|s| s.spawn(run).join()).unwrap_or_default()
    }

    /// The key published for `address`, advanced method first.
    pub async fn lookup(&self, address: &str) -> Result<Option<Vec<u8>>, WkdError> {
        let [advanced, direct] = urls(address)?;
        match self.get(&advanced).await {
            Ok(found) => Ok(found),
            // No openpgpkey host (or nothing listening there): the direct method.
            Err(Failure::NoHost(_)) => self.get(&direct).await.map_err(|f| f.into_error(&direct)),
            Err(f) => Err(f.into_error(&advanced)),
        }
    }

    /// GET `url`: `Some(body)` for 200, `None` for 404/410, redirects followed.
    async fn get(&self, url: &str) -> Result<Option<Vec<u8>>, Failure> {
        let mut url = url.to_string();
        for _ in 0..=MAX_REDIRECTS {
            let uri: Uri = url
                .parse()
                .map_err(|e| Failure::Other(format!("not a URL: {e}")))?;
            if uri.scheme_str() != Some("https") {
                return Err(Failure::Other("only https is followed".into()));
            }
            let host = uri
                .host()
                .ok_or_else(|| Failure::Other("no host".into()))?
                .to_ascii_lowercase();
            let port = uri.port_u16().unwrap_or(443);
            let response = tokio::time::timeout(
                self.timeout.saturating_mul(3),
                self.fetch(&uri, &host, port),
            )
            .await
            .map_err(|_| {
                Failure::Other(format!("no answer within {} s", self.timeout.as_secs() * 3))
            })??;
            match response {
                Fetched::Body(b) => return Ok(Some(b)),
                Fetched::NotFound => return Ok(None),
                Fetched::Redirect(to) => url = to,
            }
        }
        Err(Failure::Other(format!(
            "more than {MAX_REDIRECTS} redirects"
        )))
    }

    async fn fetch(&self, uri: &Uri, host: &str, port: u16) -> Result<Fetched, Failure> {
        let addrs: Vec<SocketAddr> = match self.resolve.get(host) {
            Some(a) => vec![*a],
            None => tokio::time::timeout(self.timeout, tokio::net::lookup_host((host, port)))
                .await
                .map_err(|_| Failure::NoHost(format!("{host}: DNS did not answer")))?
                .map_err(|e| Failure::NoHost(format!("{host}: {e}")))?
                .collect(),
        };
        let mut tcp = None;
        let mut last = format!("{host}: no address");
        for a in addrs {
            match tokio::time::timeout(self.timeout, tokio::net::TcpStream::connect(a)).await {
                Ok(Ok(s)) => {
                    tcp = Some(s);
                    break;
                }
                Ok(Err(e)) => last = format!("{host} ({a}): {e}"),
                Err(_) => last = format!("{host} ({a}): connect timed out"),
            }
        }
        let tcp = tcp.ok_or(Failure::NoHost(last))?;
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| Failure::Other(format!("{host:?} is not a server name: {e}")))?;
        let tls = tokio::time::timeout(self.timeout, self.tls.connect(name, tcp))
            .await
            .map_err(|_| Failure::Other("TLS handshake timed out".into()))?
            .map_err(|e| Failure::Other(format!("TLS: {}", describe_io(&e))))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| Failure::Other(format!("HTTP: {e}")))?;
        // The connection is driven on this runtime until the response is read.
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        let path = uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .to_string();
        let authority = if port == 443 {
            host.to_string()
        } else {
            format!("{host}:{port}")
        };
        let request = hyper::Request::get(path)
            .header(hyper::header::HOST, authority.as_str())
            .header(hyper::header::USER_AGENT, "casegate")
            .header(hyper::header::ACCEPT, "application/octet-stream, */*")
            .body(Empty::<Bytes>::new())
            .map_err(|e| Failure::Other(format!("request: {e}")))?;
        let result = async {
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| Failure::Other(format!("HTTP: {e}")))?;
            let status = response.status();
            if status.is_redirection() {
                let to = response
                    .headers()
                    .get(hyper::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| Failure::Other(format!("{status} without Location")))?;
                let to = if to.starts_with('/') {
                    format!("https://{authority}{to}")
                } else {
                    to.to_string()
                };
                return Ok(Fetched::Redirect(to));
            }
            if status == hyper::StatusCode::NOT_FOUND || status == hyper::StatusCode::GONE {
                return Ok(Fetched::NotFound);
            }
            if !status.is_success() {
                return Err(Failure::Other(format!("HTTP status {status}")));
            }
            let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
                .collect()
                .await
                .map_err(|e| {
                    Failure::Other(format!(
                        "reading the key: {e} (at most {MAX_BODY_BYTES} bytes)"
                    ))
                })?;
            Ok(Fetched::Body(body.to_bytes().to_vec()))
        }
        .await;
        driver.abort();
        result
    }
}

enum Fetched {
    Body(Vec<u8>),
    NotFound,
    Redirect(String),
}

enum Failure {
    /// The host does not resolve or takes no connection.
    NoHost(String),
    Other(String),
}

impl Failure {
    fn into_error(self, url: &str) -> WkdError {
        let message = match self {
            Failure::NoHost(m) | Failure::Other(m) => m,
        };
        WkdError::Fetch {
            url: url.to_string(),
            message,
        }
    }
}

fn describe_io(e: &std::io::Error) -> String {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(c)) => format!(
            "the server's certificate is not trusted ({c:?}); if it is signed by a private CA, set [keys.wkd] ca_file"
        ),
        Some(other) => other.to_string(),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_draft() {
        // The example of draft-koch-openpgp-webkey-service, section 3.1.
        let [advanced, direct] = urls("Joe.Doe@Example.ORG").unwrap();
        assert_eq!(
            advanced,
            "https://openpgpkey.example.org/.well-known/openpgpkey/example.org/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q?l=Joe.Doe"
        );
        assert_eq!(
            direct,
            "https://example.org/.well-known/openpgpkey/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q?l=Joe.Doe"
        );
        assert!(urls("no-at-sign").is_err());
        assert!(urls("a@b/c").is_err());
        assert!(urls("@example.org").is_err());
        assert!(urls("a b@example.org").unwrap()[0].ends_with("?l=a%20b"));
    }

    #[test]
    fn zbase32_of_known_bytes() {
        assert_eq!(zbase32(&[]), "");
        assert_eq!(zbase32(&[0]), "yy");
        assert_eq!(zbase32(&[0xff]), "9h");
        assert_eq!(zbase32(&[0xf0, 0xbf, 0xc7]), "6n9hq");
    }
}
