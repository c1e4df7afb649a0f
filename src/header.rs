//! Values casegate writes into outbound header fields, each checked once against its grammar.
//!
//! Why: mail-builder writes a header value as it is given. A Message-ID copied from a received
//! message into `In-Reply-To` with a bare CR in it, or an address with a line break, would end
//! that header early at the receiving end and start one of the sender's choosing. So composing
//! (`outbox::compose`, the only writer of headers) takes these types and nothing else: a
//! value is parsed where it enters — from a stored message, the command line, the
//! configuration — and what does not parse is left out (an inbound Message-ID) or refused (an
//! address, a `--in-reply-to` given by an analyst). None of them can hold CR, LF, NUL or any
//! other control character, and none can hold `=?`, so no reader decodes an encoded word into
//! a line break either.
//!
//! casegate writes no display names: From and To are bare addr-specs, so a name from a
//! received message never reaches a header.

use std::fmt;
use std::str::FromStr;

/// Longest Message-ID accepted, angle brackets excluded (RFC 5322 sets no bound; common
/// practice and the 998-octet line limit do).
pub const MAX_MESSAGE_ID: usize = 250;
/// Longest address (RFC 5321 §4.5.3.1.3: a path holds at most 256 octets, brackets included).
pub const MAX_ADDRESS: usize = 254;
/// Longest local part (RFC 5321 §4.5.3.1.1).
pub const MAX_LOCAL_PART: usize = 64;
/// Longest unstructured text (Subject), in characters; longer text is cut.
pub const MAX_TEXT_CHARS: usize = 200;

/// Why a value cannot go into a header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} {why}")]
pub struct HeaderError {
    what: &'static str,
    /// The offending value, shortened and with control characters escaped by `Debug`.
    value: String,
    why: &'static str,
}

impl HeaderError {
    fn new(what: &'static str, value: &str, why: &'static str) -> HeaderError {
        HeaderError {
            what,
            value: value.chars().take(80).collect(),
            why,
        }
    }
}

/// An RFC 5322 msg-id: `id-left "@" id-right`, each a dot-atom-text, or a no-fold-literal on
/// the right. Kept without the angle brackets; [`MessageId::bracketed`] adds them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageId(String);

impl MessageId {
    /// Parses `<id-left@id-right>` (the brackets may be missing; surrounding blanks are
    /// ignored). Refuses anything else: folding or any whitespace inside, control characters,
    /// non-ASCII, quoted strings, comments, `=?`, more than [`MAX_MESSAGE_ID`] octets.
    pub fn parse(s: &str) -> Result<MessageId, HeaderError> {
        let err = |why| HeaderError::new("Message-ID", s, why);
        let t = s.trim_matches([' ', '\t']);
        let inner = match (t.strip_prefix('<'), t.ends_with('>')) {
            (Some(rest), true) => &rest[..rest.len() - 1],
            (None, false) => t,
            _ => return Err(err("has unbalanced angle brackets")),
        };
        if inner.is_empty() {
            return Err(err("is empty"));
        }
        if inner.len() > MAX_MESSAGE_ID {
            return Err(err("is too long"));
        }
        if !inner.is_ascii() || inner.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(err("holds whitespace, control or non-ASCII characters"));
        }
        if inner.contains("=?") {
            return Err(err("holds `=?` (an encoded word)"));
        }
        let Some((left, right)) = inner.split_once('@') else {
            return Err(err("has no `@`"));
        };
        if !dot_atom_text(left, false) {
            return Err(err("has an invalid left part"));
        }
        if !(dot_atom_text(right, false) || no_fold_literal(right)) {
            return Err(err("has an invalid right part"));
        }
        Ok(MessageId(inner.to_string()))
    }

    /// Without angle brackets, as mail-builder's `MessageId` header takes it.
    pub fn bare(&self) -> &str {
        &self.0
    }

    /// `<id-left@id-right>`, the form the store keeps.
    pub fn bracketed(&self) -> String {
        format!("<{}>", self.0)
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}>", self.0)
    }
}

impl FromStr for MessageId {
    type Err = HeaderError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MessageId::parse(s)
    }
}

/// One plain address, `local-part@domain`: a dot-atom local part (UTF-8 allowed, RFC 6532;
/// quoted local parts are refused) and a dot-atom domain or an address literal. No display
/// name, no list, no brackets. SMTP (lettre) accepts it too.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AddrSpec(String);

impl AddrSpec {
    /// Parses one addr-spec; surrounding blanks are ignored.
    pub fn parse(s: &str) -> Result<AddrSpec, HeaderError> {
        let err = |why| HeaderError::new("address", s, why);
        let t = s.trim_matches([' ', '\t']);
        if t.len() > MAX_ADDRESS {
            return Err(err("is too long"));
        }
        if t.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(err("holds whitespace or control characters"));
        }
        if t.contains("=?") {
            return Err(err("holds `=?` (an encoded word)"));
        }
        let Some((local, domain)) = t.rsplit_once('@') else {
            return Err(err("has no `@`"));
        };
        if local.len() > MAX_LOCAL_PART {
            return Err(err("has a local part over 64 octets"));
        }
        if !dot_atom_text(local, true) {
            return Err(err(
                "has an invalid local part (quoted local parts are not used)",
            ));
        }
        if !(domain_name(domain) || no_fold_literal(domain)) {
            return Err(err("has an invalid domain"));
        }
        if lettre::Address::from_str(t).is_err() {
            return Err(err("is not accepted by SMTP"));
        }
        Ok(AddrSpec(t.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after the last `@` (for our own Message-IDs).
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

impl fmt::Display for AddrSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for AddrSpec {
    type Err = HeaderError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AddrSpec::parse(s)
    }
}

/// Unstructured text (a Subject): any string made safe, never refused. Control characters
/// (CR, LF, NUL, TAB, DEL, C1) and Unicode line and paragraph separators become spaces, runs
/// of whitespace one space, `=?` becomes `= ?` (so no reader decodes an encoded word out of
/// it), and it is cut to [`MAX_TEXT_CHARS`]. mail-builder encodes what is not ASCII.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HeaderText(String);

impl HeaderText {
    pub fn new(s: &str) -> HeaderText {
        let mut out = String::with_capacity(s.len().min(MAX_TEXT_CHARS * 4));
        let mut blank = false;
        for c in s.chars() {
            if c.is_control() || c.is_whitespace() {
                blank = true;
                continue;
            }
            if blank && !out.is_empty() {
                out.push(' ');
            }
            blank = false;
            if c == '?' && out.ends_with('=') {
                out.push(' ');
            }
            out.push(c);
        }
        if let Some((cut, _)) = out.char_indices().nth(MAX_TEXT_CHARS) {
            out.truncate(cut);
            // A cut can leave a trailing blank, which mail-builder would encode.
            out.truncate(out.trim_end().len());
        }
        HeaderText(out)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HeaderText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// RFC 5322 atext (`utf8` adds RFC 6532's non-ASCII characters, controls and blanks excluded).
fn atext(c: char, utf8: bool) -> bool {
    c.is_ascii_alphanumeric()
        || "!#$%&'*+-/=?^_`{|}~".contains(c)
        || (utf8 && !c.is_ascii() && !c.is_control() && !c.is_whitespace())
}

/// `1*atext *("." 1*atext)`.
fn dot_atom_text(s: &str, utf8: bool) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(|c| atext(c, utf8)))
}

/// A host name: dot-separated labels of letters, digits and inner hyphens (IDN labels may
/// hold non-ASCII letters).
fn domain_name(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| {
                    c.is_ascii_alphanumeric() || c == '-' || (!c.is_ascii() && c.is_alphanumeric())
                })
        })
}

/// `"[" *dtext "]"`: printable ASCII except `[`, `]` and `\`.
fn no_fold_literal(s: &str) -> bool {
    s.strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .is_some_and(|inner| {
            inner
                .bytes()
                .all(|b| (33..=126).contains(&b) && !matches!(b, b'[' | b']' | b'\\'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_in_the_wild_parse() {
        for id in [
            "<CA+abc=def_123-x@mail.gmail.com>",
            "<DM6PR11MB1234.namprd11.prod.outlook.com@DM6PR11MB1234.namprd11.prod.outlook.com>",
            "  <5F1E.9@example.com>\t",
            "bare@example.com",
            "<x@[127.0.0.1]>",
            "<a.b.c!#$%&'*+/?=^_`{|}~-@host>",
        ] {
            let m = MessageId::parse(id).unwrap_or_else(|e| panic!("{id}: {e}"));
            assert!(m.bracketed().starts_with('<') && m.bracketed().ends_with('>'));
            assert_eq!(m.to_string(), m.bracketed());
        }
        assert_eq!(
            MessageId::parse("<a@b>").unwrap().bare(),
            MessageId::parse("a@b").unwrap().bare()
        );
    }

    #[test]
    fn message_ids_that_could_break_a_header_are_refused() {
        let long = format!("<{}@host>", "a".repeat(MAX_MESSAGE_ID));
        for id in [
            "<abc\rX-Injected: yes@host>",
            "<abc\nX-Injected: yes@host>",
            "<abc\r\nX-Injected: yes@host>",
            "<abc\0@host>",
            "<abc\r\n @host>",
            "<abc @host>",
            "<ab\tc@host>",
            "<=?utf-8?q?a=0D=0AX-Injected:_y?=@host>",
            "<=?utf-8?q?a=0D=0Ab?=@host>",
            "<a@=?utf-8?b?DQo=?=>",
            "<\"quoted\"@host>",
            "<a(comment)@host>",
            "<a@b@c>",
            "<a..b@host>",
            "<.a@host>",
            "<a@host.>",
            "<noat>",
            "<>",
            "",
            "<a@b",
            "a@b>",
            "<a@b><c@d>",
            "<ä@host>",
            "<a\u{2028}b@host>",
            "<a\u{85}b@host>",
            "<a@[1\r]>",
            long.as_str(),
        ] {
            assert!(MessageId::parse(id).is_err(), "accepted {id:?}");
        }
        // The error shows the value escaped, never raw.
        let e = MessageId::parse("<a\r\nBcc: x@y>").unwrap_err().to_string();
        assert!(!e.contains('\r') && !e.contains('\n'), "{e}");
    }

    #[test]
    fn addresses() {
        for a in [
            "vendor@example.test",
            "first.last+tag@sub.example.co.uk",
            "x@[127.0.0.1]",
            "  psirt@vendor.example ",
            "jörg@bücher.example",
        ] {
            AddrSpec::parse(a).unwrap_or_else(|e| panic!("{a}: {e}"));
        }
        assert_eq!(
            AddrSpec::parse("a@b.example").unwrap().domain(),
            "b.example"
        );
        for a in [
            "a@b.example\r\nBcc: evil@x.example",
            "a@b.example\rBcc: evil@x.example",
            "a@b.example\nBcc: evil@x.example",
            "a\0@b.example",
            "Name <a@b.example>",
            "<a@b.example>",
            "a@b.example, c@d.example",
            "\"a b\"@b.example",
            "=?utf-8?q?a=0D=0Ab?=@b.example",
            "a@-b.example",
            "a@b..example",
            "a@",
            "@b.example",
            "nobody",
            "a b@c.example",
            "a@b\u{2029}.example",
            &format!("{}@b.example", "a".repeat(65)),
            &format!("a@{}.example", "b".repeat(250)),
        ] {
            assert!(AddrSpec::parse(a).is_err(), "accepted {a:?}");
        }
    }

    #[test]
    fn text_is_made_safe_never_refused() {
        let t = HeaderText::new("Re: hello\r\nBcc: evil@x.example\0\u{2028}end\t ");
        assert_eq!(t.as_str(), "Re: hello Bcc: evil@x.example end");
        assert_eq!(
            HeaderText::new("=?utf-8?q?a=0D=0Ab?= x=?y").as_str(),
            "= ?utf-8?q?a=0D=0Ab?= x= ?y"
        );
        assert_eq!(HeaderText::new("   ").as_str(), "");
        let long = HeaderText::new(&"ü".repeat(1000));
        assert_eq!(long.as_str().chars().count(), MAX_TEXT_CHARS);
        let cut = HeaderText::new(&format!("{} tail", "a".repeat(MAX_TEXT_CHARS - 1)));
        assert!(!cut.as_str().ends_with(' '));
        assert!(
            !HeaderText::new("a\u{85}b\u{7f}c")
                .as_str()
                .chars()
                .any(char::is_control)
        );
    }
}
