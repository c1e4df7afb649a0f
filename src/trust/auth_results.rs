//! `Authentication-Results` (RFC 8601): parsing one header, choosing the one the coordinator's
//! own MTA wrote, and reading a verdict out of it. Pure, bounded, no I/O.
//!
//! Which header counts: an MTA adds its header at the top, above what it received; a sender
//! can put any number of `Authentication-Results` headers into the message, including ones
//! that claim our MTA's authserv-id. So only the topmost header with the trusted authserv-id
//! counts; every header with another authserv-id, and every one below the trusted one, is
//! ignored. (The MTA should also remove headers claiming its own authserv-id, as RFC 8601
//! section 5 asks; if it adds none at all, the sender's forgery would be topmost — the MTA
//! must add one to every message.)

use super::{SenderAuth, SenderResult, aligned};

/// Longest header value read; anything longer is not an MTA's result.
const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Results in one header, properties in one result, comment nesting: bounds on what a
/// header can make the parser do.
const MAX_RESULTS: usize = 64;
const MAX_PROPERTIES: usize = 32;
const MAX_COMMENT_DEPTH: usize = 8;

/// One parsed header: who wrote it and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthResults {
    pub authserv_id: String,
    /// Empty for `; none`.
    pub results: Vec<MethodResult>,
}

/// One `method=result` with its reason and properties (`header.d`, `smtp.mailfrom`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodResult {
    /// Lower case, version dropped: `dkim`, `dmarc`, `spf`.
    pub method: String,
    /// Lower case: `pass`, `fail`, `none`, `temperror`, ...
    pub result: String,
    pub reason: Option<String>,
    /// (`ptype.property` lower case, value as written).
    pub properties: Vec<(String, String)>,
}

impl MethodResult {
    /// The value of `ptype.property` (e.g. `header.d`), if present.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses one header value (unfolded or not). Errors say what is wrong, for the verdict's
/// detail.
pub fn parse(value: &str) -> Result<AuthResults, String> {
    if value.len() > MAX_HEADER_BYTES {
        return Err(format!("longer than {MAX_HEADER_BYTES} bytes"));
    }
    let mut c = Cursor {
        s: value.as_bytes(),
        i: 0,
    };
    c.cfws()?;
    let authserv_id = c.value()?.ok_or("no authserv-id")?;
    c.cfws()?;
    // An optional version number after the authserv-id.
    if c.peek().is_some_and(|b| b.is_ascii_digit()) {
        c.take_while(|b| b.is_ascii_digit());
        c.cfws()?;
    }
    let mut results = Vec::new();
    while c.peek() == Some(b';') {
        c.i += 1;
        c.cfws()?;
        if c.peek().is_none() {
            break; // a trailing ";"
        }
        let method = c.keyword().ok_or("a result without a method")?;
        c.cfws()?;
        if c.peek() == Some(b'/') {
            c.i += 1;
            c.cfws()?;
            c.take_while(|b| b.is_ascii_digit());
            c.cfws()?;
        }
        if c.peek() != Some(b'=') {
            if method.eq_ignore_ascii_case("none") && results.is_empty() {
                c.cfws()?;
                continue; // "; none": nothing was checked
            }
            return Err(format!("method {method:?} has no result"));
        }
        c.i += 1;
        c.cfws()?;
        let result = c
            .keyword()
            .ok_or_else(|| format!("method {method:?} has no result"))?;
        let mut r = MethodResult {
            method: method.to_ascii_lowercase(),
            result: result.to_ascii_lowercase(),
            reason: None,
            properties: Vec::new(),
        };
        c.cfws()?;
        while c.peek().is_some_and(|b| b != b';') {
            let key = c
                .keyword()
                .ok_or_else(|| format!("unreadable text after {}={}", r.method, r.result))?;
            c.cfws()?;
            let name = if c.peek() == Some(b'.') {
                c.i += 1;
                c.cfws()?;
                let property = c
                    .keyword()
                    .ok_or_else(|| format!("property {key}. without a name"))?;
                c.cfws()?;
                format!(
                    "{}.{}",
                    key.to_ascii_lowercase(),
                    property.to_ascii_lowercase()
                )
            } else {
                key.to_ascii_lowercase()
            };
            if c.peek() != Some(b'=') {
                return Err(format!("{name} has no value"));
            }
            c.i += 1;
            c.cfws()?;
            let v = c.pvalue()?;
            c.cfws()?;
            if name == "reason" {
                r.reason = Some(v);
            } else if r.properties.len() < MAX_PROPERTIES {
                r.properties.push((name, v));
            } else {
                return Err(format!("more than {MAX_PROPERTIES} properties"));
            }
        }
        if results.len() == MAX_RESULTS {
            return Err(format!("more than {MAX_RESULTS} results"));
        }
        results.push(r);
    }
    if c.peek().is_some() {
        return Err(format!(
            "unreadable text after the authserv-id {authserv_id:?}"
        ));
    }
    Ok(AuthResults {
        authserv_id,
        results,
    })
}

/// The authserv-id of a header, without reading the rest.
pub fn authserv_id(value: &str) -> Option<String> {
    let mut c = Cursor {
        s: value.as_bytes(),
        i: 0,
    };
    c.cfws().ok()?;
    c.value().ok().flatten()
}

/// Picks the header that counts out of all `Authentication-Results` values, top to bottom:
/// the topmost with the trusted authserv-id (compared without regard to case). Returns its
/// index and how many others were ignored.
pub fn trusted_header(values: &[String], trusted_id: &str) -> (Option<usize>, usize) {
    let pick = values
        .iter()
        .position(|v| authserv_id(v).is_some_and(|id| id.eq_ignore_ascii_case(trusted_id.trim())));
    let ignored = values.len() - usize::from(pick.is_some());
    (pick, ignored)
}

/// Reads the verdict out of the trusted header, for the From domain the message shows:
/// `dmarc=pass` is a pass and `dmarc=fail` a fail (when they are about this From domain);
/// without a DMARC result, a DKIM pass whose `header.d` aligns with the From domain, or an
/// SPF pass whose `smtp.mailfrom` does, is a pass; a temporary error with no pass is
/// `temperror`; anything else is `none`.
pub fn verdict(header: &AuthResults, from_domain: &str) -> SenderAuth {
    let by = &header.authserv_id;
    let from_domain = from_domain.to_ascii_lowercase();
    let about_from = |r: &MethodResult| {
        r.property("header.from")
            .is_none_or(|d| domain_of(d).eq_ignore_ascii_case(&from_domain))
    };
    let seen: Vec<String> = header
        .results
        .iter()
        .map(|r| format!("{}={}", r.method, r.result))
        .collect();
    let summary = if seen.is_empty() {
        "nothing checked".to_string()
    } else {
        seen.join(" ")
    };
    let detail = |what: String| format!("{what} (Authentication-Results by {by}: {summary})");
    for r in header.results.iter().filter(|r| r.method == "dmarc") {
        if !about_from(r) {
            continue;
        }
        match r.result.as_str() {
            "pass" => {
                return SenderAuth::new(
                    SenderResult::Pass,
                    detail(format!("dmarc=pass for {from_domain}")),
                );
            }
            "fail" => {
                return SenderAuth::new(
                    SenderResult::Fail,
                    detail(format!("dmarc=fail for {from_domain}")),
                );
            }
            _ => {}
        }
    }
    for r in &header.results {
        if r.result != "pass" {
            continue;
        }
        let (what, domain) = match r.method.as_str() {
            "dkim" => (
                "dkim=pass",
                r.property("header.d")
                    .or_else(|| r.property("header.i"))
                    .map(domain_of),
            ),
            "spf" => (
                "spf=pass",
                r.property("smtp.mailfrom")
                    .or_else(|| r.property("smtp.helo"))
                    .map(domain_of),
            ),
            _ => continue,
        };
        if let Some(d) = domain
            && aligned(&d, &from_domain)
        {
            return SenderAuth::new(
                SenderResult::Pass,
                detail(format!("{what} for {d}, aligned with From {from_domain}")),
            );
        }
    }
    if header
        .results
        .iter()
        .any(|r| r.result == "temperror" && ["dmarc", "dkim", "spf"].contains(&r.method.as_str()))
    {
        return SenderAuth::new(
            SenderResult::Temperror,
            detail(format!("a temporary error and no pass for {from_domain}")),
        );
    }
    SenderAuth::new(
        SenderResult::None,
        detail(format!("no pass aligned with From {from_domain}")),
    )
}

/// `user@example.org`, `@example.org` or `example.org` → `example.org`, lower case.
fn domain_of(v: &str) -> String {
    v.rsplit_once('@')
        .map_or(v, |(_, d)| d)
        .trim()
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &str {
        let start = self.i;
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
        // The predicates only accept ASCII, so the slice is valid UTF-8 text.
        std::str::from_utf8(&self.s[start..self.i]).unwrap_or("")
    }

    /// Folding white space and (nested, bounded) comments.
    fn cfws(&mut self) -> Result<(), String> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r' | b'\n') => self.i += 1,
                Some(b'(') => self.comment()?,
                _ => return Ok(()),
            }
        }
    }

    fn comment(&mut self) -> Result<(), String> {
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'(' => {
                    depth += 1;
                    if depth > MAX_COMMENT_DEPTH {
                        return Err(format!("comments nested deeper than {MAX_COMMENT_DEPTH}"));
                    }
                }
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                b'\\' => self.i += 1,
                _ => {}
            }
        }
        Err("a comment is not closed".into())
    }

    /// A keyword: letters, digits, `-` and `_`.
    fn keyword(&mut self) -> Option<String> {
        let k = self.take_while(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        (!k.is_empty()).then(|| k.to_string())
    }

    /// A `value` (RFC 2045): a token or a quoted string.
    fn value(&mut self) -> Result<Option<String>, String> {
        if self.peek() == Some(b'"') {
            return self.quoted().map(Some);
        }
        let t = self.take_while(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b));
        Ok((!t.is_empty()).then(|| t.to_string()))
    }

    /// A property value: a quoted string, or everything up to white space, `;` or `(` (an
    /// address, a domain, a base64 fragment).
    fn pvalue(&mut self) -> Result<String, String> {
        if self.peek() == Some(b'"') {
            return self.quoted();
        }
        let start = self.i;
        while let Some(b) = self.peek() {
            if b.is_ascii_whitespace() || b == b';' || b == b'(' {
                break;
            }
            self.i += 1;
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn quoted(&mut self) -> Result<String, String> {
        self.i += 1; // the opening quote
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'"' => return Ok(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => {
                    if let Some(n) = self.peek() {
                        out.push(n);
                        self.i += 1;
                    }
                }
                b'\r' | b'\n' => {}
                _ => out.push(b),
            }
        }
        Err("a quoted string is not closed".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_rfc_examples_and_common_mtas() {
        // RFC 8601 appendix B.2, B.4 and B.6 (folded as in the RFC).
        let h = parse("example.org 1; none").unwrap();
        assert_eq!(h.authserv_id, "example.org");
        assert!(h.results.is_empty());

        let h = parse(
            "example.com;\r\n                  auth=pass (cram-md5) smtp.auth=sender@example.net;\r\n                  spf=pass smtp.mailfrom=example.net",
        )
        .unwrap();
        assert_eq!(h.results.len(), 2);
        assert_eq!(h.results[0].method, "auth");
        assert_eq!(
            h.results[0].property("smtp.auth"),
            Some("sender@example.net")
        );
        assert_eq!(h.results[1].property("smtp.mailfrom"), Some("example.net"));

        let h = parse(
            "example.com;\r\n   dkim=pass (good signature) header.d=mail-router.example.net;\r\n   dkim=fail (bad signature) header.d=newyork.example.com",
        )
        .unwrap();
        assert_eq!(h.results[1].result, "fail");
        assert_eq!(
            h.results[1].property("header.d"),
            Some("newyork.example.com")
        );

        // Postfix + OpenDKIM/OpenDMARC and Gmail spellings.
        let h = parse("mx.cert.example; dkim=pass (2048-bit key; unprotected) header.d=vendor.example header.i=@vendor.example header.a=rsa-sha256 header.s=s1 header.b=\"AbC+/d=\"").unwrap();
        assert_eq!(h.results[0].property("header.b"), Some("AbC+/d="));
        assert_eq!(h.results[0].property("header.s"), Some("s1"));
        let h = parse("mx.google.com;\r\n       dkim=pass header.i=@vendor.example header.s=s1 header.b=Xy12;\r\n       spf=pass (google.com: domain of a@vendor.example designates 192.0.2.1 as permitted sender) smtp.mailfrom=a@vendor.example;\r\n       dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=vendor.example").unwrap();
        assert_eq!(h.results.len(), 3);
        assert_eq!(h.results[2].property("header.from"), Some("vendor.example"));
        let h = parse("mx.example; dkim/1=pass reason=\"good sig\" header.d=x.example").unwrap();
        assert_eq!(h.results[0].method, "dkim");
        assert_eq!(h.results[0].reason.as_deref(), Some("good sig"));
        // A quoted authserv-id and nested comments.
        let h = parse("\"mx.example\" (a (nested) comment) ; spf=none").unwrap();
        assert_eq!(h.authserv_id, "mx.example");
        assert_eq!(h.results[0].result, "none");
    }

    #[test]
    fn refuses_what_is_not_a_header_and_stays_bounded() {
        for bad in [
            "",
            "   ",
            "; dkim=pass",
            "mx.example; dkim",
            "mx.example; dkim=pass header.d",
            "mx.example; dkim=pass (unclosed",
            "mx.example; dkim=pass header.d=\"unclosed",
            "mx.example garbage; dkim=pass",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
        let deep = format!("mx.example {}{}; dkim=pass", "(".repeat(50), ")".repeat(50));
        assert!(parse(&deep).unwrap_err().contains("nested"));
        let many = format!("mx.example{}", "; dkim=pass".repeat(100));
        assert!(parse(&many).unwrap_err().contains("results"));
        let long = format!("mx.example; dkim=pass header.b={}", "a".repeat(20_000));
        assert!(parse(&long).unwrap_err().contains("longer"));
        let props = format!("mx.example; dkim=pass{}", " header.x=1".repeat(40));
        assert!(parse(&props).unwrap_err().contains("properties"));
    }

    #[test]
    fn only_the_topmost_header_of_the_trusted_mta_counts() {
        let values: Vec<String> = [
            "other.example; dkim=pass header.d=vendor.example",
            "MX.Cert.Example; dmarc=fail header.from=vendor.example",
            "mx.cert.example; dmarc=pass header.from=vendor.example",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (pick, ignored) = trusted_header(&values, "mx.cert.example");
        assert_eq!((pick, ignored), (Some(1), 2));
        // The forged pass below the MTA's own header is not the one read.
        let h = parse(&values[pick.unwrap()]).unwrap();
        assert_eq!(verdict(&h, "vendor.example").result, SenderResult::Fail);
        assert_eq!(trusted_header(&values, "nobody.example"), (None, 3));
        assert_eq!(trusted_header(&[], "mx.cert.example"), (None, 0));
    }

    fn v(header: &str, from: &str) -> SenderAuth {
        verdict(&parse(header).unwrap(), from)
    }

    #[test]
    fn verdicts() {
        let pass = v(
            "mx; dmarc=pass header.from=vendor.example",
            "vendor.example",
        );
        assert_eq!(pass.result, SenderResult::Pass);
        assert!(pass.detail.contains("mx"), "{}", pass.detail);
        // A DMARC result about another From domain is not about this message's From.
        let other = v("mx; dmarc=pass header.from=evil.example", "vendor.example");
        assert_eq!(other.result, SenderResult::None);
        assert_eq!(
            v(
                "mx; dmarc=fail header.from=vendor.example",
                "vendor.example"
            )
            .result,
            SenderResult::Fail
        );
        // DKIM: aligned (same domain, or a subdomain of one another) passes, others do not.
        for (d, want) in [
            ("vendor.example", SenderResult::Pass),
            ("mail.vendor.example", SenderResult::Pass),
            ("evil.example", SenderResult::None),
            ("example", SenderResult::None),
            ("notvendor.example", SenderResult::None),
        ] {
            assert_eq!(
                v(&format!("mx; dkim=pass header.d={d}"), "vendor.example").result,
                want,
                "{d}"
            );
        }
        assert_eq!(
            v("mx; dkim=pass header.i=@vendor.example", "vendor.example").result,
            SenderResult::Pass
        );
        assert_eq!(
            v("mx; dkim=fail header.d=vendor.example", "vendor.example").result,
            SenderResult::None
        );
        assert_eq!(
            v(
                "mx; spf=pass smtp.mailfrom=bounce@vendor.example",
                "vendor.example"
            )
            .result,
            SenderResult::Pass
        );
        assert_eq!(
            v(
                "mx; spf=pass smtp.mailfrom=bounce@esp.example",
                "vendor.example"
            )
            .result,
            SenderResult::None
        );
        assert_eq!(
            v(
                "mx; dkim=temperror header.d=vendor.example",
                "vendor.example"
            )
            .result,
            SenderResult::Temperror
        );
        let none = v("mx; none", "vendor.example");
        assert_eq!(none.result, SenderResult::None);
        assert!(none.detail.contains("nothing checked"), "{}", none.detail);
    }
}
