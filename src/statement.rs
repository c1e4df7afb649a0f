//! A vendor's status and statement, read from the text of its message. Pure: no I/O.
//!
//! The grammar vendors are told (case does not matter anywhere):
//!
//! ```text
//! Status: affected | not affected | fixed | under investigation
//!     the first line of the vendor's own text. Also understood: vulnerable (= affected),
//!     unaffected / not vulnerable (= not affected), patched (= fixed), investigating
//!     (= under investigation); "-" or "_" for spaces; the value may be quoted and followed
//!     by more words ("Status: fixed in 2.4.1").
//! Statement: TEXT
//!     a line starting "Statement:"; the statement is TEXT and the lines after it, up to the
//!     signature separator ("-- ") or the quoted text of an earlier message.
//! a subject containing the word "statement"
//!     the vendor's whole text is the statement (less the Status line).
//! ```
//!
//! "The vendor's own text" is the body without what it quotes of earlier mail (lines starting
//! with `>`, and the "On ... wrote:" line before them), without its signature block (from a
//! line `-- `) and without the armor lines of an inline-signed text (`-----BEGIN PGP SIGNED
//! MESSAGE-----`, `Hash:`), so a top-posted or bottom-posted reply, a signed mail and a mail
//! with a signature all read alike. The text given here is what the reader sees: for
//! encrypted or signed mail, the opened content.

use std::sync::LazyLock;

use regex::Regex;

/// What a vendor says about a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum VendorStatus {
    #[serde(rename = "affected")]
    Affected,
    #[serde(rename = "not affected")]
    NotAffected,
    #[serde(rename = "fixed")]
    Fixed,
    #[serde(rename = "under investigation")]
    UnderInvestigation,
}

impl VendorStatus {
    /// The stored and printed spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            VendorStatus::Affected => "affected",
            VendorStatus::NotAffected => "not affected",
            VendorStatus::Fixed => "fixed",
            VendorStatus::UnderInvestigation => "under investigation",
        }
    }
}

/// Spellings understood, longest first (so "not affected" is tried before "affected").
const ALIASES: &[(&str, VendorStatus)] = &[
    ("under investigation", VendorStatus::UnderInvestigation),
    ("not vulnerable", VendorStatus::NotAffected),
    ("investigating", VendorStatus::UnderInvestigation),
    ("not affected", VendorStatus::NotAffected),
    ("unaffected", VendorStatus::NotAffected),
    ("vulnerable", VendorStatus::Affected),
    ("affected", VendorStatus::Affected),
    ("patched", VendorStatus::Fixed),
    ("fixed", VendorStatus::Fixed),
];

/// What one message claims.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    pub status: Option<VendorStatus>,
    /// The statement text, as the vendor wrote it (lines joined with `\n`).
    pub statement: Option<String>,
    /// What could not be understood, e.g. an unknown status value.
    pub notes: Vec<String>,
}

impl Claims {
    pub fn is_empty(&self) -> bool {
        self.status.is_none() && self.statement.is_none()
    }
}

/// Lines looked at, at most: a statement is a few paragraphs, not a mailbox.
const MAX_LINES: usize = 20_000;

/// Reads the status and statement from a message's subject and readable text.
pub fn parse(subject: Option<&str>, text: &str) -> Claims {
    if !subject.is_some_and(subject_marks_statement) && !may_name_a_label(text) {
        return Claims::default();
    }
    read_claims(subject, text)
}

/// [`parse`] without its first scan: the text read line by line.
fn read_claims(subject: Option<&str>, text: &str) -> Claims {
    let mut claims = Claims::default();
    let lines = own_lines(text);
    // Where the sender's own text starts: after blank lines and a leading quote (a
    // bottom-posted reply).
    let mut at = 0;
    while at < lines.len() && lines[at].is_none_or(|l| l.trim().is_empty()) {
        at += 1;
    }
    if let Some(Some(first)) = lines.get(at)
        && let Some(value) = labelled(first, "status")
    {
        match status_value(value) {
            Some(s) => claims.status = Some(s),
            None => claims.notes.push(format!(
                "status {:?} is not one of affected, not affected, fixed, under investigation",
                value.trim()
            )),
        }
        at += 1;
    }
    let rest = &lines[at.min(lines.len())..];
    // A Statement: block anywhere in the own text …
    if let Some(i) = rest
        .iter()
        .position(|l| l.is_some_and(|l| labelled(l, "statement").is_some()))
    {
        let first = rest[i]
            .and_then(|l| labelled(l, "statement"))
            .unwrap_or_default()
            .trim_start();
        let mut block = vec![first];
        block.extend(rest[i + 1..].iter().map_while(|l| *l));
        claims.statement = joined(&block);
    } else if subject.is_some_and(subject_marks_statement) {
        // … or the sender's own text when the subject says it is a statement.
        let from = rest
            .iter()
            .position(|l| l.is_some_and(|l| !l.trim().is_empty()));
        if let Some(from) = from {
            let block: Vec<&str> = rest[from..].iter().map_while(|l| *l).collect();
            claims.statement = joined(&block);
        }
    }
    claims
}

/// Whether `text` names "status" or "statement" in any ASCII case ([`labelled`] compares
/// ASCII case-insensitively): most mail names neither, and one scan of it is several times
/// cheaper than reading it line by line. If the pattern could not be built, every text may.
fn may_name_a_label(text: &str) -> bool {
    static STAT: LazyLock<Option<Regex>> =
        LazyLock::new(|| Regex::new("(?i-u)stat(?:us|ement)").ok());
    STAT.as_ref().is_none_or(|re| re.is_match(text))
}

/// Whether the subject has the word "statement" (any case).
pub fn subject_marks_statement(subject: &str) -> bool {
    subject
        .split(|c: char| !c.is_alphanumeric())
        .any(|w| w.eq_ignore_ascii_case("statement"))
}

/// The text's lines up to the signature separator: the sender's own as `Some`, and `None`
/// for what is not theirs — quoted lines (`>`), the "On ... wrote:" line before a quote, and
/// the armor lines of an inline-signed text.
fn own_lines(text: &str) -> Vec<Option<&str>> {
    let lines: Vec<&str> = text
        .split('\n')
        .take(MAX_LINES)
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let quoted = |l: &str| l.trim_start().starts_with('>');
    // For each line: whether the next non-blank line after it is quoted (one pass backwards).
    let mut quote_follows = vec![false; lines.len()];
    let mut next_quoted = false;
    for (i, l) in lines.iter().enumerate().rev() {
        quote_follows[i] = next_quoted;
        if !l.trim().is_empty() {
            next_quoted = quoted(l);
        }
    }
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if *line == "-- " || *line == "--" {
            break; // the signature block runs to the end
        }
        let armor = line.starts_with("-----BEGIN PGP SIGNED MESSAGE-----")
            || (line.starts_with("Hash:") && i > 0 && lines[i - 1].starts_with("-----BEGIN PGP"));
        let attribution = line.trim_end().ends_with(':') && quote_follows[i];
        out.push((!(quoted(line) || armor || attribution)).then_some(*line));
    }
    out
}

/// The value after `label:` at the start of a line (`Status:`, `*Statement:*`, any case).
fn labelled<'a>(line: &'a str, label: &str) -> Option<&'a str> {
    let l = line.trim_start().trim_start_matches(['*', '_']);
    let head = l.get(..label.len())?;
    if !head.eq_ignore_ascii_case(label) {
        return None;
    }
    let after = l[label.len()..].trim_start_matches(['*', '_']);
    let after = after.strip_prefix(':')?;
    Some(after.trim_start_matches(['*', '_']))
}

/// A status value in any of the understood spellings.
fn status_value(value: &str) -> Option<VendorStatus> {
    let normalized: String = value
        .trim()
        .trim_matches(|c: char| matches!(c, '"' | '\'' | '“' | '”' | '*' | '_' | '`'))
        .to_lowercase()
        .chars()
        .map(|c| if c == '-' || c == '_' { ' ' } else { c })
        .collect();
    let words: Vec<&str> = normalized.split_whitespace().collect();
    let normalized = words.join(" ");
    let normalized = normalized.trim_matches(|c: char| matches!(c, '"' | '\'' | '“' | '”'));
    ALIASES.iter().find_map(|(alias, status)| {
        let rest = normalized.strip_prefix(alias)?;
        rest.chars()
            .next()
            .is_none_or(|c| !c.is_alphanumeric())
            .then_some(*status)
    })
}

/// The lines joined with `\n`, without blank lines at either end; `None` when nothing is left.
fn joined(lines: &[&str]) -> Option<String> {
    let start = lines.iter().position(|l| !l.trim().is_empty())?;
    let stop = lines.iter().rposition(|l| !l.trim().is_empty())? + 1;
    Some(lines[start..stop].join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use VendorStatus::*;

    #[test]
    fn status_spellings_are_understood() {
        for (text, want) in [
            ("Status: affected", Some(Affected)),
            ("status: Not Affected", Some(NotAffected)),
            ("STATUS:not-affected.", Some(NotAffected)),
            ("Status: not_affected", Some(NotAffected)),
            ("Status: \"not affected\"", Some(NotAffected)),
            ("Status: unaffected", Some(NotAffected)),
            ("Status: Not vulnerable", Some(NotAffected)),
            ("Status: vulnerable", Some(Affected)),
            ("Status: fixed in 2.4.1", Some(Fixed)),
            ("Status: patched", Some(Fixed)),
            ("Status:   Under   Investigation", Some(UnderInvestigation)),
            ("Status: investigating.", Some(UnderInvestigation)),
            ("*Status:* affected", Some(Affected)),
            ("Status: affectedness unclear", None),
            ("Status: maybe", None),
            ("Statuses: affected", None),
        ] {
            assert_eq!(parse(None, text).status, want, "{text:?}");
        }
        assert!(!parse(None, "Status: maybe").notes.is_empty());
    }

    /// The first scan only ever skips texts that reading them line by line finds nothing in.
    #[test]
    fn the_first_scan_skips_nothing_a_reading_would_find() {
        let texts = [
            "Status: fixed\nStatement: we fixed it.\n",
            "STATUS: NOT AFFECTED\n",
            "sTaTuS: weird value\n",
            "**Status:** patched\n\n*Statement:* in 2.4.1\n",
            "  __statement__: spaced and underlined\nmore\n",
            "hello\n\nStatement: after a greeting\n-- \nsig\n",
            "> Status: fixed\nquoted only\n",
            "no labels here at all\n",
            "the state of things\n",
            "Stat us: split\n",
            "\u{17f}tatus: long s is not ASCII\n",
            "",
        ];
        for text in texts {
            for subject in [
                None,
                Some("Re: [VU#123456] report"),
                Some("Vendor statement"),
            ] {
                assert_eq!(
                    parse(subject, text),
                    read_claims(subject, text),
                    "{subject:?} {text:?}"
                );
            }
        }
        // And it does skip: nothing to find, nothing read.
        assert!(!may_name_a_label(
            "no labels here\nthe state of things, statu quo\n"
        ));
        assert!(may_name_a_label("x\nSTATEMENT: y"));
    }

    #[test]
    fn the_status_line_must_start_the_senders_own_text() {
        assert_eq!(
            parse(None, "\r\n\r\nStatus: fixed\r\nThanks\r\n").status,
            Some(Fixed)
        );
        assert_eq!(parse(None, "Hello,\nStatus: fixed\n").status, None);
        // Bottom-posted: the quote and its attribution come first.
        let bottom = "On Mon, 23 Nov 2026, CERT wrote:\n> Status: affected?\n> Please tell us.\n\nStatus: not affected\n\nWe checked.\n";
        assert_eq!(parse(None, bottom).status, Some(NotAffected));
        // Top-posted, quoting another status: only the own one counts.
        let top = "Status: fixed\n\nOn Mon, X wrote:\n> Status: affected\n";
        assert_eq!(parse(None, top).status, Some(Fixed));
        // A quoted status alone is not the sender's.
        assert_eq!(parse(None, "> Status: affected\n").status, None);
        // Inline-signed armor left in the text does not hide it.
        let armored = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nStatus: affected\n";
        assert_eq!(parse(None, armored).status, Some(Affected));
    }

    #[test]
    fn a_statement_block_ends_at_the_signature_or_a_quote() {
        let text = "Status: affected\r\n\r\nStatement: FooRouter 2.x is affected.\r\nA fix ships in 2.4.1.\r\n\r\nRegards,\r\n-- \r\nAlice, FooCorp PSIRT\r\n";
        let c = parse(Some("Re: VU#409117"), text);
        assert_eq!(c.status, Some(Affected));
        assert_eq!(
            c.statement.as_deref(),
            Some("FooRouter 2.x is affected.\nA fix ships in 2.4.1.\n\nRegards,")
        );
        let quoted = "Statement:\nWe are not affected.\n\nOn Mon, CERT wrote:\n> Are you affected?\n> Tell us.\n> Thanks\n";
        assert_eq!(
            parse(None, quoted).statement.as_deref(),
            Some("We are not affected.")
        );
    }

    #[test]
    fn a_statement_subject_makes_the_whole_own_text_the_statement() {
        let text = "Status: not affected\n\nOur products do not use the library.\n\n-- \nBob\n";
        let c = parse(Some("RE: [VU#409117] Vendor Statement"), text);
        assert_eq!(c.status, Some(NotAffected));
        assert_eq!(
            c.statement.as_deref(),
            Some("Our products do not use the library.")
        );
        assert_eq!(parse(Some("Re: statements"), text).statement, None);
        assert_eq!(parse(Some("Re: VU#409117"), text).statement, None);
        assert!(subject_marks_statement("vu# 409117 vendor statement"));
        assert!(!subject_marks_statement("misstatement"));
    }

    #[test]
    fn nothing_claimed_is_empty() {
        assert!(parse(Some("Re: hello"), "Thanks, we will look.\n").is_empty());
        assert!(parse(None, "").is_empty());
        assert!(parse(Some("statement"), "-- \nonly a signature\n").is_empty());
    }
}
