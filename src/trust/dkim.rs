//! DKIM and DMARC checked by casegate itself, with mail-auth and a DNS resolver from the
//! configuration (`[authentication] dns_servers`) or the system (/etc/resolv.conf).
//!
//! SPF is not checked: casegate reads mail from a mailbox, not from the connecting client, so
//! it does not know the IP address SPF is about. DMARC is therefore decided on DKIM alone.

use std::time::Duration;

use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts,
};
use mail_auth::{AuthenticatedMessage, DkimResult, DmarcResult, MessageAuthenticator, SpfOutput};

use super::{SenderAuth, SenderResult, aligned};
use crate::config::AuthenticationConfig;

/// At most this many DKIM signatures are verified per message (one DNS question each); those
/// whose domain is aligned with the From domain first.
const MAX_SIGNATURES: usize = 8;

/// A resolver and the runtime its lookups run on, made once per process.
pub struct DkimChecker {
    authenticator: MessageAuthenticator,
    runtime: tokio::runtime::Runtime,
    /// Bound on the whole check of one message.
    budget: Duration,
}

/// One DKIM signature's outcome, reduced to what the verdict needs (unit-testable without
/// DNS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimFact {
    pub domain: String,
    /// `pass`, `fail`, `neutral`, `permerror`, `temperror`, `none`.
    pub result: &'static str,
    pub why: Option<String>,
}

/// The DMARC outcome, reduced likewise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DmarcFact {
    /// The From domain (or its organization) publishes no DMARC record.
    NoPolicy,
    /// A record was found; `aligned_pass` says whether an aligned DKIM signature passed.
    Policy {
        policy: String,
        aligned_pass: bool,
    },
    Temperror(String),
    Permerror(String),
}

impl DkimChecker {
    pub fn new(config: &AuthenticationConfig) -> Result<DkimChecker, String> {
        let mut opts = ResolverOpts::default();
        opts.timeout = Duration::from_secs(config.dns_timeout_secs.max(1));
        opts.attempts = 2;
        let authenticator = if config.dns_servers.is_empty() {
            MessageAuthenticator::new_system_conf().map_err(|e| {
                format!(
                    "cannot read the system's DNS settings ({e}); set [authentication] dns_servers"
                )
            })?
        } else {
            let mut servers = Vec::new();
            for s in &config.dns_servers {
                let addr = super::dns_server_address(s)?;
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                servers.push(NameServerConfig::new(addr.ip(), true, vec![udp, tcp]));
            }
            MessageAuthenticator::new(ResolverConfig::from_name_servers(servers), opts.clone())
                .map_err(|e| format!("cannot set up the DNS resolver: {e}"))?
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the DNS runtime: {e}"))?;
        Ok(DkimChecker {
            authenticator,
            runtime,
            budget: opts.timeout.saturating_mul(6),
        })
    }

    /// Verifies the message's DKIM signatures and the From domain's DMARC policy.
    pub fn check(&self, raw: &[u8], from_domain: &str) -> SenderAuth {
        let Some(mut msg) = AuthenticatedMessage::parse(raw) else {
            return SenderAuth::none("the headers cannot be read for DKIM");
        };
        // The same From as the one routing reads, or no verdict: a message whose From header
        // reads one way to mail-parser and another way here is not vouched for.
        let domains: Vec<String> = msg
            .from
            .iter()
            .filter_map(|f| f.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()))
            .collect();
        if domains.is_empty() || domains.iter().any(|d| d != from_domain) {
            return SenderAuth::none(format!(
                "the From header names {} domain(s) ({}); DKIM/DMARC cannot vouch for {from_domain}",
                domains.len(),
                domains.join(", ")
            ));
        }
        if msg.dkim_headers.len() > MAX_SIGNATURES {
            msg.dkim_headers
                .sort_by_key(|h| !aligned(&h.header.d, from_domain));
            msg.dkim_headers.truncate(MAX_SIGNATURES);
        }
        // On a thread of its own: the caller may be inside another runtime (the daemon's
        // blocking pool), where blocking on this one directly is not allowed.
        let outcome = std::thread::scope(|s| {
            s.spawn(|| {
                self.runtime.block_on(async {
                    tokio::time::timeout(self.budget, self.facts(&msg, from_domain)).await
                })
            })
            .join()
        });
        match outcome {
            Ok(Ok((dkim, dmarc))) => decide(&dkim, &dmarc, from_domain),
            Ok(Err(_)) => SenderAuth::new(
                SenderResult::Temperror,
                format!(
                    "DNS did not answer within {} s for {from_domain}",
                    self.budget.as_secs()
                ),
            ),
            Err(_) => SenderAuth::new(
                SenderResult::Temperror,
                "the DKIM check failed unexpectedly".to_string(),
            ),
        }
    }

    async fn facts(
        &self,
        msg: &AuthenticatedMessage<'_>,
        from_domain: &str,
    ) -> (Vec<DkimFact>, DmarcFact) {
        let outputs = self.authenticator.verify_dkim(msg).await;
        let dkim: Vec<DkimFact> = outputs
            .iter()
            .map(|o| {
                let domain = o
                    .signature()
                    .map(|s| s.d.to_ascii_lowercase())
                    .unwrap_or_default();
                let (result, why) = match o.result() {
                    DkimResult::Pass => ("pass", None),
                    DkimResult::Neutral(e) => ("neutral", Some(e.to_string())),
                    DkimResult::Fail(e) => ("fail", Some(e.to_string())),
                    DkimResult::PermError(e) => ("permerror", Some(e.to_string())),
                    DkimResult::TempError(e) => ("temperror", Some(e.to_string())),
                    DkimResult::None => ("none", None),
                };
                DkimFact {
                    domain,
                    result,
                    why,
                }
            })
            .collect();
        let spf = SpfOutput::new(from_domain.to_string());
        let dmarc = self
            .authenticator
            .verify_dmarc(DmarcParameters::new(msg, &outputs, from_domain, &spf))
            .await;
        let dmarc = match (dmarc.dmarc_record(), dmarc.dkim_result()) {
            (_, DmarcResult::TempError(e)) => DmarcFact::Temperror(e.to_string()),
            (None, DmarcResult::PermError(e)) => DmarcFact::Permerror(e.to_string()),
            (None, _) => DmarcFact::NoPolicy,
            (Some(_), r) => DmarcFact::Policy {
                policy: format!("{:?}", dmarc.policy()).to_ascii_lowercase(),
                aligned_pass: *r == DmarcResult::Pass,
            },
        };
        (dkim, dmarc)
    }
}

/// The verdict from DKIM and DMARC facts: DMARC decides when the domain publishes a policy
/// (pass when an aligned signature passed, else fail); without one, an aligned DKIM pass is a
/// pass; a DNS failure with no pass is `temperror`; otherwise `none`.
pub fn decide(dkim: &[DkimFact], dmarc: &DmarcFact, from_domain: &str) -> SenderAuth {
    let sigs = if dkim.is_empty() {
        "no DKIM signature".to_string()
    } else {
        dkim.iter()
            .map(|f| {
                format!(
                    "dkim={} d={}{}",
                    f.result,
                    f.domain,
                    f.why
                        .as_deref()
                        .map(|w| format!(" ({w})"))
                        .unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let aligned_pass = dkim
        .iter()
        .find(|f| f.result == "pass" && aligned(&f.domain, from_domain));
    match dmarc {
        DmarcFact::Policy {
            aligned_pass: true,
            policy,
        } => SenderAuth::new(
            SenderResult::Pass,
            format!("dmarc=pass (p={policy}) for {from_domain}: {sigs} (checked by casegate)"),
        ),
        DmarcFact::Policy {
            aligned_pass: false,
            policy,
        } => SenderAuth::new(
            SenderResult::Fail,
            format!(
                "dmarc=fail (p={policy}) for {from_domain}: no aligned DKIM pass; {sigs} (checked by casegate)"
            ),
        ),
        DmarcFact::Temperror(e) if aligned_pass.is_none() => SenderAuth::new(
            SenderResult::Temperror,
            format!("DMARC policy of {from_domain} not readable now ({e}); {sigs}"),
        ),
        _ => match aligned_pass {
            Some(f) => SenderAuth::new(
                SenderResult::Pass,
                format!(
                    "dkim=pass d={} aligned with From {from_domain}; no DMARC policy (checked by casegate)",
                    f.domain
                ),
            ),
            None if dkim.iter().any(|f| f.result == "temperror") => SenderAuth::new(
                SenderResult::Temperror,
                format!("{sigs}; no aligned pass for {from_domain}"),
            ),
            None => SenderAuth::none(format!(
                "{sigs}; no aligned pass and no DMARC policy for {from_domain}{}",
                match dmarc {
                    DmarcFact::Permerror(e) => format!(" (DMARC record unreadable: {e})"),
                    _ => String::new(),
                }
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(domain: &str, result: &'static str) -> DkimFact {
        DkimFact {
            domain: domain.into(),
            result,
            why: (result != "pass").then(|| "why".into()),
        }
    }

    #[test]
    fn dmarc_decides_when_published() {
        let pass = DmarcFact::Policy {
            policy: "reject".into(),
            aligned_pass: true,
        };
        let fail = DmarcFact::Policy {
            policy: "reject".into(),
            aligned_pass: false,
        };
        let v = decide(&[sig("vendor.example", "pass")], &pass, "vendor.example");
        assert_eq!(v.result, SenderResult::Pass);
        assert!(v.detail.contains("dmarc=pass"), "{}", v.detail);
        // Spoofed From without a signature at a domain with a policy: fail.
        let v = decide(&[], &fail, "vendor.example");
        assert_eq!(v.result, SenderResult::Fail);
        assert!(v.detail.contains("no DKIM signature"), "{}", v.detail);
        // A valid signature of another domain does not help.
        let v = decide(&[sig("evil.example", "pass")], &fail, "vendor.example");
        assert_eq!(v.result, SenderResult::Fail);
    }

    #[test]
    fn without_a_policy_an_aligned_dkim_pass_is_a_pass() {
        let v = decide(
            &[
                sig("evil.example", "pass"),
                sig("mail.vendor.example", "pass"),
            ],
            &DmarcFact::NoPolicy,
            "vendor.example",
        );
        assert_eq!(v.result, SenderResult::Pass);
        assert!(v.detail.contains("mail.vendor.example"), "{}", v.detail);
        for facts in [
            vec![],
            vec![sig("evil.example", "pass")],
            vec![sig("vendor.example", "fail")],
            vec![sig("vendor.example", "neutral")],
        ] {
            let v = decide(&facts, &DmarcFact::NoPolicy, "vendor.example");
            assert_eq!(v.result, SenderResult::None, "{facts:?}");
        }
        let v = decide(
            &[sig("vendor.example", "temperror")],
            &DmarcFact::NoPolicy,
            "vendor.example",
        );
        assert_eq!(v.result, SenderResult::Temperror);
        let v = decide(
            &[],
            &DmarcFact::Temperror("timeout".into()),
            "vendor.example",
        );
        assert_eq!(v.result, SenderResult::Temperror);
        // A pass still passes when the DMARC lookup failed.
        let v = decide(
            &[sig("vendor.example", "pass")],
            &DmarcFact::Temperror("timeout".into()),
            "vendor.example",
        );
        assert_eq!(v.result, SenderResult::Pass);
    }
}
