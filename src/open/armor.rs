//! Finding ASCII-armored OpenPGP blocks inside mail text, and turning webmail HTML back
//! into the text lines the armor was made of.
//!
//! Why by hand: mail clients wrap armor in text (quoted replies, greetings, footers) and
//! webmail wraps it in HTML (`<br>`, `&nbsp;`, `<div>` per line, `<pre>`). We only locate
//! the block and rebuild clean armor lines; base64, CRC and packets are sequoia's job.

/// What kind of armored block was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BlockKind {
    /// `-----BEGIN PGP MESSAGE-----`: encrypted and/or signed OpenPGP message.
    Message,
    /// `-----BEGIN PGP SIGNED MESSAGE-----` … `-----END PGP SIGNATURE-----`: cleartext signature.
    Cleartext,
}

/// One armored block found in a text, with its byte range in that text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Block {
    pub kind: BlockKind,
    pub start: usize,
    pub end: usize,
}

const BEGIN_MESSAGE: &str = "-----BEGIN PGP MESSAGE-----";
const END_MESSAGE: &str = "-----END PGP MESSAGE-----";
const BEGIN_SIGNED: &str = "-----BEGIN PGP SIGNED MESSAGE-----";
/// What both BEGIN markers hold: a text without it has no block.
const BEGIN_EITHER: &str = "-----BEGIN PGP ";
const END_SIGNATURE: &str = "-----END PGP SIGNATURE-----";

/// Lines of `text` as (start, end-without-line-terminator, next-line-start).
fn lines(text: &[u8]) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= text.len() {
            return None;
        }
        let start = pos;
        let (end, next) = match memchr::memchr(b'\n', &text[start..]) {
            Some(i) => {
                let nl = start + i;
                let end = if nl > start && text[nl - 1] == b'\r' {
                    nl - 1
                } else {
                    nl
                };
                (end, nl + 1)
            }
            None => (text.len(), text.len()),
        };
        pos = next;
        Some((start, end, next))
    })
}

/// Length of a blank (whitespace or NBSP, UTF-8 or Latin-1) byte sequence at `b[0]`.
fn blank_len(b: &[u8]) -> usize {
    match b {
        [b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c | 0xa0, ..] => 1,
        [0xc2, 0xa0, ..] => 2,
        _ => 0,
    }
}

/// Trims blanks (including NBSP) from both ends.
pub(crate) fn trim_blank(mut s: &[u8]) -> &[u8] {
    loop {
        let n = blank_len(s);
        if n == 0 {
            break;
        }
        s = &s[n..];
    }
    loop {
        let n = if s.ends_with(&[0xc2, 0xa0]) {
            2
        } else if matches!(
            s.last(),
            Some(b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c | 0xa0)
        ) {
            1
        } else {
            0
        };
        if n == 0 {
            break;
        }
        s = &s[..s.len() - n];
    }
    s
}

/// Whether `text` has anything a reader would see (not only blanks).
pub(crate) fn is_blank(text: &[u8]) -> bool {
    trim_blank(text).is_empty()
}

/// A line "is" a marker when, after trimming blanks (including NBSP), it equals it. Quoted
/// lines (`> -----BEGIN…`) are deliberately not markers: a quoted block in a reply is
/// history, not something this message asserts.
fn is_marker(line: &[u8], marker: &str) -> bool {
    trim_blank(line) == marker.as_bytes()
}

/// Finds complete armored blocks, in order. An unterminated BEGIN yields a block reaching to
/// the end of the text so the caller reports corrupt armor instead of ignoring it.
pub(crate) fn find_blocks(text: &[u8]) -> Vec<Block> {
    // Every block opens on a line that holds this (both BEGIN markers do): most mail has
    // none, and is passed at memchr's speed instead of line by line.
    if memchr::memmem::find(text, BEGIN_EITHER.as_bytes()).is_none() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut open: Option<(BlockKind, usize)> = None;
    let mut in_sig_part = false;
    for (start, end, next) in lines(text) {
        let line = &text[start..end];
        match open {
            None => {
                if is_marker(line, BEGIN_MESSAGE) {
                    open = Some((BlockKind::Message, start));
                } else if is_marker(line, BEGIN_SIGNED) {
                    open = Some((BlockKind::Cleartext, start));
                    in_sig_part = false;
                }
            }
            Some((BlockKind::Message, s)) => {
                if is_marker(line, END_MESSAGE) {
                    out.push(Block {
                        kind: BlockKind::Message,
                        start: s,
                        end: next,
                    });
                    open = None;
                }
            }
            Some((BlockKind::Cleartext, s)) => {
                if is_marker(line, "-----BEGIN PGP SIGNATURE-----") {
                    in_sig_part = true;
                } else if in_sig_part && is_marker(line, END_SIGNATURE) {
                    out.push(Block {
                        kind: BlockKind::Cleartext,
                        start: s,
                        end: next,
                    });
                    open = None;
                }
            }
        }
    }
    if let Some((kind, s)) = open {
        out.push(Block {
            kind,
            start: s,
            end: text.len(),
        });
    }
    out
}

/// Rebuilds clean armor for a `PGP MESSAGE` block whose lines may carry stray blanks, NBSPs,
/// re-wrapped base64 or lost blank lines (typical after webmail HTML). Armor headers are
/// dropped (they are unauthenticated comments); the checksum line is kept if present.
pub(crate) fn normalize_message_armor(block: &[u8]) -> Vec<u8> {
    let mut b64: Vec<u8> = Vec::new();
    let mut checksum: Option<Vec<u8>> = None;
    let mut in_body = false;
    for (s, e, _) in lines(block) {
        let line = trim_blank(&block[s..e]);
        if line == BEGIN_MESSAGE.as_bytes() {
            continue;
        }
        if line == END_MESSAGE.as_bytes() {
            break;
        }
        if line.is_empty() {
            continue;
        }
        if !in_body && is_armor_header(line) {
            continue;
        }
        in_body = true;
        // Drop only blanks (webmail damage); anything else stays for sequoia to reject.
        let mut compact: Vec<u8> = Vec::with_capacity(line.len());
        let mut i = 0;
        while i < line.len() {
            let n = blank_len(&line[i..]);
            if n > 0 {
                i += n;
            } else {
                compact.push(line[i]);
                i += 1;
            }
        }
        if compact.len() == 5 && compact[0] == b'=' {
            checksum = Some(compact);
            continue;
        }
        b64.extend_from_slice(&compact);
    }
    let mut out = Vec::with_capacity(b64.len() + b64.len() / 64 + 80);
    out.extend_from_slice(BEGIN_MESSAGE.as_bytes());
    out.extend_from_slice(b"\n\n");
    for chunk in b64.chunks(64) {
        out.extend_from_slice(chunk);
        out.push(b'\n');
    }
    if let Some(c) = checksum {
        out.extend_from_slice(&c);
        out.push(b'\n');
    }
    out.extend_from_slice(END_MESSAGE.as_bytes());
    out.push(b'\n');
    out
}

/// `Key: value` at the start of an armor block. Base64 never contains ':' so this cannot
/// swallow body lines.
fn is_armor_header(line: &[u8]) -> bool {
    match line.iter().position(|&b| b == b':') {
        Some(i) => {
            i > 0
                && line[..i]
                    .iter()
                    .all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        }
        None => false,
    }
}

/// Converts webmail HTML to text lines: block-level tags and `<br>` end lines, other tags
/// vanish, entities are decoded, `<style>`/`<script>`/`<head>` content is dropped. Source
/// line breaks are kept as line breaks (inside `<pre>` they are the only line breaks).
pub(crate) fn html_to_lines(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let bytes = html.as_bytes();
    let mut i = 0;
    let mut skip_until: Option<&'static str> = None;
    // Once no '>' follows, none follows any later '<' either: remembered, so text full of
    // '<' is not searched to its end once per '<' (quadratic).
    let mut no_close_after = bytes.len();
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'<' && i >= no_close_after {
            out.push('<');
            i += 1;
            continue;
        }
        if b == b'<' {
            // Comment?
            if html[i..].starts_with("<!--") {
                match html[i + 4..].find("-->") {
                    Some(j) => i = i + 4 + j + 3,
                    None => i = bytes.len(),
                }
                continue;
            }
            let Some(close) = html[i..].find('>') else {
                // A lone '<' is text.
                no_close_after = i;
                out.push('<');
                i += 1;
                continue;
            };
            let tag = &html[i + 1..i + close];
            i += close + 1;
            let closing = tag.starts_with('/');
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_lowercase();
            if let Some(end) = skip_until {
                if closing && name == end {
                    skip_until = None;
                }
                continue;
            }
            match name.as_str() {
                "style" | "script" | "head" | "title" if !closing => {
                    skip_until = Some(match name.as_str() {
                        "style" => "style",
                        "script" => "script",
                        "head" => "head",
                        _ => "title",
                    });
                }
                "br" | "p" | "div" | "pre" | "tr" | "li" | "blockquote" | "h1" | "h2" | "h3"
                | "h4" | "h5" | "h6" | "table" | "ul" | "ol" | "hr" => out.push('\n'),
                _ => {}
            }
            continue;
        }
        if skip_until.is_some() {
            i += 1;
            continue;
        }
        if b == b'&' {
            // An entity is short: look for its ';' only that far (not to the end, per '&').
            let window = &bytes[i..(i + 13).min(bytes.len())];
            if let Some(semi) = window.iter().position(|&c| c == b';').filter(|&j| j > 1) {
                let entity = &html[i..=i + semi];
                if let Some(c) = decode_entity(entity) {
                    // Webmail writes spaces as &nbsp;; the text it encodes had spaces.
                    out.push(if c == '\u{a0}' { ' ' } else { c });
                    i += semi + 1;
                    continue;
                }
            }
            out.push('&');
            i += 1;
            continue;
        }
        // Copy one UTF-8 character.
        let ch_len = utf8_len(b);
        let end = (i + ch_len).min(bytes.len());
        match html.get(i..end) {
            Some(s) => out.push_str(s),
            None => out.push('\u{fffd}'),
        }
        i = end;
    }
    out
}

/// Whether the HTML shows anything besides text: images, frames, embedded objects, forms,
/// or CSS `url(...)` backgrounds.
pub(crate) fn html_has_media(html: &str) -> bool {
    const MEDIA: &[&str] = &[
        "img", "image", "picture", "iframe", "frame", "object", "embed", "svg", "video", "audio",
        "canvas", "form", "input", "button", "textarea", "select",
    ];
    let lower = html.to_ascii_lowercase();
    if lower.contains("url(") {
        return true;
    }
    let bytes = lower.as_bytes();
    let mut i = 0;
    while let Some(j) = lower[i..].find('<') {
        let start = i + j + 1;
        let name: String = lower[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if MEDIA.contains(&name.as_str()) {
            return true;
        }
        i = start;
        if i >= bytes.len() {
            break;
        }
    }
    false
}

fn utf8_len(b: u8) -> usize {
    match b {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => 1,
    }
}

/// Decodes `&name;`, `&#NN;`, `&#xHH;` via mail-parser's entity table.
fn decode_entity(entity: &str) -> Option<char> {
    let mut s = String::new();
    mail_parser::decoders::html::add_html_token(&mut s, entity.as_bytes(), false);
    if s == entity {
        return None;
    }
    let mut chars = s.chars();
    let c = chars.next()?;
    if chars.next().is_some() {
        return None;
    }
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `find_blocks` passes over a text without [`BEGIN_EITHER`]: each marker that opens a
    /// block must hold it, or blocks would go unseen.
    #[test]
    fn every_opening_marker_holds_what_the_quick_pass_looks_for() {
        for marker in [BEGIN_MESSAGE, BEGIN_SIGNED] {
            assert!(marker.contains(BEGIN_EITHER), "{marker}");
            let text = format!("text\n {marker} \nbody\n");
            assert_eq!(find_blocks(text.as_bytes()).len(), 1, "{marker}");
        }
        assert!(
            find_blocks(b"-----BEGIN PGP-----\n-----BEGIN PGP PUBLIC KEY BLOCK-----\n").is_empty()
        );
    }

    #[test]
    fn finds_message_and_cleartext_blocks() {
        let t: &[u8] = b"hi\n-----BEGIN PGP MESSAGE-----\n\nabc\n-----END PGP MESSAGE-----\nmid\n\
                 -----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\ntext\n\
                 -----BEGIN PGP SIGNATURE-----\n\nxyz\n-----END PGP SIGNATURE-----\nbye\n";
        let b = find_blocks(t);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].kind, BlockKind::Message);
        assert!(t[b[0].start..b[0].end].starts_with(BEGIN_MESSAGE.as_bytes()));
        assert!(t[b[0].start..b[0].end].ends_with(b"-----END PGP MESSAGE-----\n"));
        assert_eq!(b[1].kind, BlockKind::Cleartext);
        assert_eq!(&t[..b[0].start], b"hi\n");
        assert_eq!(&t[b[1].end..], b"bye\n");
    }

    #[test]
    fn quoted_markers_are_not_blocks() {
        let t = b"> -----BEGIN PGP MESSAGE-----\n> abc\n> -----END PGP MESSAGE-----\n";
        assert!(find_blocks(t).is_empty());
    }

    #[test]
    fn unterminated_block_runs_to_end() {
        let t = b"x\n-----BEGIN PGP MESSAGE-----\nabc\n";
        let b = find_blocks(t);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].end, t.len());
    }

    #[test]
    fn blanks() {
        assert!(is_blank(b" \t\r\n\xc2\xa0\xa0"));
        assert!(!is_blank(b" x "));
        assert_eq!(trim_blank(b"\xc2\xa0 x\xc2\xa0"), b"x");
    }

    #[test]
    fn normalizes_webmail_armor() {
        let t = " -----BEGIN PGP MESSAGE-----\u{a0}\nVersion: Mailvelope v4\nwcFMA abc\u{a0}\nDEF=\n=AbCd\n-----END PGP MESSAGE-----";
        let n = normalize_message_armor(t.as_bytes());
        assert_eq!(
            String::from_utf8(n).unwrap(),
            "-----BEGIN PGP MESSAGE-----\n\nwcFMAabcDEF=\n=AbCd\n-----END PGP MESSAGE-----\n"
        );
    }

    #[test]
    fn html_lines() {
        let h = "<html><head><style>p{}</style></head><body><div>-----BEGIN&nbsp;PGP</div>\
                 <p>a&lt;b&amp;c&#65;&#x42;</p>x<br/>y<!-- c --></body></html>";
        let t = html_to_lines(h);
        assert!(t.contains("\n-----BEGIN PGP\n"), "{t:?}");
        assert!(t.contains("a<b&cAB"), "{t:?}");
        assert!(t.contains("x\ny"), "{t:?}");
        assert!(!t.contains("p{}"));
        assert!(!t.contains(" c "));
    }

    #[test]
    fn lone_brackets_and_ampersands_are_text() {
        // After a '<' with no '>' anywhere after it, every later '<' is text too.
        assert_eq!(html_to_lines("a <br> c < d < e"), "a \n c < d < e");
        assert_eq!(html_to_lines("x&y &amp; z&"), "x&y & z&");
        assert_eq!(html_to_lines("&verylongname_no;"), "&verylongname_no;");
    }

    #[test]
    fn media_in_html() {
        assert!(html_has_media("<div><IMG src=x></div>"));
        assert!(html_has_media("<p style=\"background: URL(x)\">"));
        assert!(!html_has_media("<div>text<br><pre>x</pre></div>"));
        assert!(!html_has_media("a < b <"));
    }

    #[test]
    fn garbage_does_not_panic() {
        for h in [
            "<",
            "&",
            "&#xffffffff;",
            "<a",
            "é<b>é</b>&eacute;",
            "<!--",
            "&;;",
            "\u{0}<",
        ] {
            let _ = html_to_lines(h);
            let _ = find_blocks(h.as_bytes());
            let _ = normalize_message_armor(h.as_bytes());
        }
        let _ = find_blocks(b"\xff\xfe-----BEGIN PGP MESSAGE-----\xc2");
    }
}
