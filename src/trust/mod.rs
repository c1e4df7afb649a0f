//! Who really sent it, and whose key is it.
//!
//! - [`SenderCheck::authenticate`]: the sender authentication verdict of one inbound message
//!   (`pass | fail | none | temperror` with a detail), from DKIM and DMARC checked here
//!   ([`dkim`], with mail-auth) or from the `Authentication-Results` header of the
//!   coordinator's own MTA ([`auth_results`]). The one entry point the pipeline calls.
//! - [`policy`]: what the verdict means for mail from a participant's address (pure).
//! - [`keys`]: participants' keys over time — expiry, key changes held for review, offers.
//! - [`wkd`]: Web Key Directory lookups (`key refresh`).
//!
//! A header alone never authenticates: a From address is a claim. It counts as the sender's
//! only with a good OpenPGP signature bound to that participant, a DKIM/DMARC pass casegate
//! checked itself, or the verdict of the coordinator's own MTA (named in the configuration,
//! topmost; every other `Authentication-Results` header is ignored).

pub mod auth_results;
pub mod dkim;
pub mod keys;
pub mod policy;
pub mod wkd;

use std::net::{IpAddr, SocketAddr};

use crate::config::{AuthenticationConfig, AuthenticationSource};
use crate::message::MailView;

/// The sender authentication result stored with every inbound message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SenderResult {
    /// A DKIM signature (or SPF) aligned with the From domain, or DMARC pass.
    Pass,
    /// DMARC fail: the From domain publishes a policy and nothing aligned passed.
    Fail,
    /// Nothing to check, or nothing that decides (no signature, no policy, not configured).
    None,
    /// A DNS question could not be answered now.
    Temperror,
}

impl SenderResult {
    /// The spelling stored and printed: `pass | fail | none | temperror`.
    pub fn as_str(self) -> &'static str {
        match self {
            SenderResult::Pass => "pass",
            SenderResult::Fail => "fail",
            SenderResult::None => "none",
            SenderResult::Temperror => "temperror",
        }
    }

    pub fn parse(s: &str) -> Option<SenderResult> {
        Some(match s {
            "pass" => SenderResult::Pass,
            "fail" => SenderResult::Fail,
            "none" => SenderResult::None,
            "temperror" => SenderResult::Temperror,
            _ => return None,
        })
    }
}

impl std::fmt::Display for SenderResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The verdict and a one-line detail for people (what was checked, by whom, for which domain).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SenderAuth {
    pub result: SenderResult,
    pub detail: String,
}

impl SenderAuth {
    pub fn new(result: SenderResult, detail: impl Into<String>) -> SenderAuth {
        SenderAuth {
            result,
            detail: detail.into(),
        }
    }

    pub fn none(detail: impl Into<String>) -> SenderAuth {
        SenderAuth::new(SenderResult::None, detail)
    }
}

/// Whether a domain that vouched for a message (DKIM `d=`, SPF's MAIL FROM) is aligned with
/// the From domain: the same domain, or one a subdomain of the other below a name with a dot
/// in it (relaxed alignment without a public-suffix list: `d=example` vouches for nothing).
pub fn aligned(domain: &str, from_domain: &str) -> bool {
    let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let f = from_domain
        .trim()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if d.is_empty() || f.is_empty() {
        return false;
    }
    if d == f {
        return true;
    }
    let under =
        |child: &str, parent: &str| parent.contains('.') && child.ends_with(&format!(".{parent}"));
    under(&f, &d) || under(&d, &f)
}

/// `IP` or `IP:PORT` (port 53 by default), as `[authentication] dns_servers` takes them.
pub fn dns_server_address(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    s.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| {
            format!(
                "[authentication] dns_servers: {s:?} is not IP or IP:PORT (e.g. \"127.0.0.1:53\")"
            )
        })
}

/// The configured source of sender authentication verdicts, ready to use. Built from the
/// settings without I/O; the DNS resolver (for `source = "dkim"`) is made when first needed.
pub struct SenderCheck {
    config: AuthenticationConfig,
    dkim: std::sync::OnceLock<Result<dkim::DkimChecker, String>>,
}

impl std::fmt::Debug for SenderCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SenderCheck({:?})", self.config.source)
    }
}

impl SenderCheck {
    pub fn new(config: &AuthenticationConfig) -> SenderCheck {
        SenderCheck {
            config: config.clone(),
            dkim: std::sync::OnceLock::new(),
        }
    }

    /// The verdict for one message: `view` is its parsed headers, `raw` its bytes as received.
    /// Never fails: what cannot be checked is `none` (or `temperror`) with the reason.
    pub fn authenticate(&self, view: &MailView, raw: &[u8]) -> SenderAuth {
        let Some(from) = view.from.as_ref() else {
            return SenderAuth::none("no From address");
        };
        let Some((_, from_domain)) = from.address.rsplit_once('@') else {
            return SenderAuth::none(format!("From {:?} has no domain", from.address));
        };
        let from_domain = from_domain.to_ascii_lowercase();
        match self.config.source {
            AuthenticationSource::Off => {
                SenderAuth::none("not checked ([authentication] source = \"off\")")
            }
            AuthenticationSource::AuthenticationResults => {
                let trusted = self.config.trusted_authserv_id.as_deref().unwrap_or("");
                from_trusted_mta(raw, trusted, &from_domain)
            }
            AuthenticationSource::Dkim => {
                match self
                    .dkim
                    .get_or_init(|| dkim::DkimChecker::new(&self.config))
                {
                    Ok(checker) => checker.check(raw, &from_domain),
                    Err(e) => SenderAuth::new(
                        SenderResult::Temperror,
                        format!("DKIM/DMARC not checked: {e}"),
                    ),
                }
            }
        }
    }
}

/// `Authentication-Results` values of a message, top to bottom, unfolded.
fn authentication_results(raw: &[u8]) -> Vec<String> {
    let Some(msg) = mail_auth::AuthenticatedMessage::parse(raw) else {
        return Vec::new();
    };
    msg.headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(b"Authentication-Results"))
        .map(|(_, value)| {
            String::from_utf8_lossy(value)
                .replace(['\r', '\n'], "")
                .trim()
                .to_string()
        })
        .collect()
}

/// The verdict the coordinator's MTA wrote (see [`auth_results`] for which header counts).
fn from_trusted_mta(raw: &[u8], trusted: &str, from_domain: &str) -> SenderAuth {
    let values = authentication_results(raw);
    let (pick, ignored) = auth_results::trusted_header(&values, trusted);
    let ignored_note = if ignored > 0 {
        format!("; {ignored} other Authentication-Results header(s) ignored")
    } else {
        String::new()
    };
    let Some(i) = pick else {
        return SenderAuth::none(format!(
            "no Authentication-Results header from {trusted}{ignored_note}"
        ));
    };
    match auth_results::parse(&values[i]) {
        Ok(h) => {
            let mut v = auth_results::verdict(&h, from_domain);
            v.detail.push_str(&ignored_note);
            v
        }
        Err(e) => SenderAuth::none(format!(
            "the Authentication-Results header from {trusted} cannot be read: {e}{ignored_note}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_is_same_domain_or_subdomain_below_a_dotted_name() {
        assert!(aligned("vendor.example", "vendor.example"));
        assert!(aligned("Vendor.Example.", "vendor.example"));
        assert!(aligned("mail.vendor.example", "vendor.example"));
        assert!(aligned("vendor.example", "psirt.vendor.example"));
        assert!(!aligned("example", "vendor.example"));
        assert!(!aligned("notvendor.example", "vendor.example"));
        assert!(!aligned("evil.example", "vendor.example"));
        assert!(!aligned("", "vendor.example"));
    }

    #[test]
    fn dns_servers_take_an_ip_with_or_without_port() {
        assert_eq!(
            dns_server_address("127.0.0.1").unwrap(),
            "127.0.0.1:53".parse().unwrap()
        );
        assert_eq!(
            dns_server_address("127.0.0.1:5300").unwrap(),
            "127.0.0.1:5300".parse().unwrap()
        );
        assert_eq!(
            dns_server_address("[::1]:5300").unwrap(),
            "[::1]:5300".parse().unwrap()
        );
        assert!(dns_server_address("resolver.example").is_err());
    }

    fn view(from: &str) -> MailView {
        crate::message::parse(format!("From: {from}\r\nSubject: x\r\n\r\nbody\r\n").as_bytes())
            .unwrap()
    }

    #[test]
    fn the_trusted_mtas_header_decides_and_forgeries_below_it_do_not() {
        let check = SenderCheck::new(&AuthenticationConfig {
            source: AuthenticationSource::AuthenticationResults,
            trusted_authserv_id: Some("mx.cert.example".into()),
            ..Default::default()
        });
        let raw = |ar: &str| {
            format!(
                "{ar}Received: from outside\r\nAuthentication-Results: mx.cert.example; dmarc=pass header.from=vendor.example\r\nFrom: psirt@vendor.example\r\nSubject: x\r\n\r\nbody\r\n"
            )
        };
        // Only the sender's forgery: it is the topmost one of our id, so the MTA must add its
        // own to every message (README); here it did not, and the forgery is read.
        let spoofed = raw("");
        let v = check.authenticate(&view("psirt@vendor.example"), spoofed.as_bytes());
        assert_eq!(v.result, SenderResult::Pass);
        // With the MTA's own header on top, the forgery below is ignored.
        let ours = raw(
            "Authentication-Results: mx.cert.example;\r\n  dkim=none;\r\n  dmarc=fail header.from=vendor.example\r\n",
        );
        let v = check.authenticate(&view("psirt@vendor.example"), ours.as_bytes());
        assert_eq!(v.result, SenderResult::Fail, "{}", v.detail);
        assert!(v.detail.contains("1 other"), "{}", v.detail);
        // Another MTA's header is never read.
        let theirs = "Authentication-Results: mx.evil.example; dmarc=pass header.from=vendor.example\r\nFrom: psirt@vendor.example\r\n\r\nbody\r\n";
        let v = check.authenticate(&view("psirt@vendor.example"), theirs.as_bytes());
        assert_eq!(v.result, SenderResult::None);
        assert!(
            v.detail
                .contains("no Authentication-Results header from mx.cert.example")
        );
        // Off: none, saying so.
        let off = SenderCheck::new(&AuthenticationConfig::default());
        let v = off.authenticate(&view("psirt@vendor.example"), ours.as_bytes());
        assert_eq!(v.result, SenderResult::None);
        assert!(v.detail.contains("not checked"));
    }
}
