//! Tracking numbers: recognise them in subjects, parse them from the command line, mint new ones.
//!
//! The grammar is the contract in `shared/tracking-numbers.md`; people are told "put the number in
//! the subject" and type it every way a human can, so recognition is liberal wherever being liberal
//! cannot send a message to the wrong thread, and strict wherever it could.
//!
//! Decisions beyond the written contract (each one is tested below):
//! - Whitespace: after `#` up to three whitespace characters (space, tab, NBSP, other Unicode
//!   spaces) are accepted (`VU#  409117`, `VU#\t409117`): the `#` already states the intent and
//!   folding or a sloppy paste can double a space. One space *before* `#` is accepted too
//!   (`VU #409117`, common in prose). Without `#` exactly one whitespace character or one `-`
//!   separates the prefix (`VU 409117`, `VU-409117`); `VU  409117` is not a number. The same
//!   separators apply to reports (`VRF 25-11-BKQTZ`, `VRF-25-11-BKQTZ`). A ticket is only ever
//!   `General-N`: `General 2025` is ordinary English and must never route.
//! - Full-width forms (`ＶＵ＃４０９１１７`, what a CJK input method types), the ideographic space and
//!   Unicode hyphens (U+2010–U+2013, U+2212) are read as their ASCII counterparts first.
//! - Token boundary: a number must not touch an ASCII letter or digit, nor a letter or digit of a
//!   script that separates words with spaces (Latin, Greek, Cyrillic, …): `XVU#409117`,
//!   `VU#4091170`, `General-4711x`, `éVU#409117` are not numbers. Scripts written without spaces
//!   or with attached particles (Han, kana, Hangul, Thai, Lao, Khmer, Myanmar) do not glue:
//!   `关于VU#409117的问题` and `VU#409117について` name VU#409117.
//! - `VU#409117-2`, `VU#409117.1`, `VU#409117/VU#409117`: punctuation ends a token, so these name
//!   VU#409117 (the writer means that case; a suffix cannot point at another thread).
//! - Inside a URL or an e-mail address (the surrounding run of non-space characters contains
//!   `://` or `@`, or starts with `www.`) nothing is a number: `https://jira.vendor.example/browse/General-12`
//!   is someone else's tracker and routing it to our General-12 would leak.
//!
//! Pure: no I/O, never panics on any input.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use chrono::Datelike;
use regex::{Captures, Regex};

/// The three kinds of thread a tracking number can name.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `VU#123456`: a coordinated vulnerability case.
    Case,
    /// `VRF#25-11-BKQTZ`: an incoming report, before it becomes a case.
    Report,
    /// `General-4711`: everything else.
    Ticket,
}

impl Kind {
    /// The word used on the command line and in JSON: `case`, `report`, `ticket`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Case => "case",
            Kind::Report => "report",
            Kind::Ticket => "ticket",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = TrackingError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let word = s.trim();
        [Kind::Case, Kind::Report, Kind::Ticket]
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(word))
            .ok_or_else(|| TrackingError::UnknownKind(shorten(word)))
    }
}

/// What can go wrong with a tracking number. Messages say what is wrong and what is expected.
#[derive(Debug, thiserror::Error)]
pub enum TrackingError {
    /// The text is not one tracking number in any accepted spelling.
    #[error(
        "`{0}` is not a tracking number; expected a case like VU#409117 (6 digits, first 1-9), \
         a report like VRF#25-11-BKQTZ (year-month, 5 letters from BCDFGHJKLMNPQRSTVWXYZ) \
         or a ticket like General-1042"
    )]
    NotANumber(String),
    /// A ticket sequence value outside `1..=999_999_999`.
    #[error(
        "ticket sequence {0} is out of range: General tickets are General-1 to General-999999999"
    )]
    TicketOutOfRange(u64),
    /// Minting drew only numbers that are already taken.
    #[error(
        "could not mint a new {kind} number: {draws} random draws were all taken; \
         the {kind} number space is (nearly) exhausted"
    )]
    Exhausted {
        /// What was being minted.
        kind: Kind,
        /// How many draws were tried.
        draws: u32,
    },
    /// Not one of the words `case`, `report`, `ticket`.
    #[error("unknown kind `{0}`; expected case, report or ticket")]
    UnknownKind(String),
}

/// A tracking number in canonical form (`VU#409117`, `VRF#25-11-BKQTZ`, `General-1042`).
///
/// Only this module constructs one, so holding a `TrackingNumber` means the text is canonical and
/// well-formed. Ordering is by kind, then canonical text.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackingNumber {
    kind: Kind,
    canonical: String,
}

impl TrackingNumber {
    /// One number, as typed by a person (e.g. `casegate show vu#409117`): surrounding whitespace,
    /// one pair of `[]`/`()` and a trailing `:` are allowed, anything else around it is not.
    pub fn parse(s: &str) -> Result<TrackingNumber, TrackingError> {
        let folded = fold(s.trim());
        let mut inner = folded.trim();
        inner = inner.strip_suffix(':').unwrap_or(inner).trim_end();
        if let Some(x) = inner
            .strip_prefix('[')
            .and_then(|x| x.strip_suffix(']'))
            .or_else(|| inner.strip_prefix('(').and_then(|x| x.strip_suffix(')')))
        {
            inner = x.trim();
        }
        WHOLE
            .captures(inner)
            .and_then(|c| from_captures(&c))
            .ok_or_else(|| TrackingError::NotANumber(shorten(s.trim())))
    }

    /// Which kind of thread this number names.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The canonical spelling, as stored and shown.
    pub fn as_str(&self) -> &str {
        &self.canonical
    }

    /// The sequence value of a General ticket (`Some(1042)` for `General-1042`), else `None`.
    pub fn ticket_seq(&self) -> Option<u64> {
        match self.kind {
            Kind::Ticket => self.canonical.strip_prefix("General-")?.parse().ok(),
            _ => None,
        }
    }
}

impl fmt::Display for TrackingNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical)
    }
}

impl FromStr for TrackingNumber {
    type Err = TrackingError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TrackingNumber::parse(s)
    }
}

/// In the API's OpenAPI document: the canonical text, e.g. `VU#409117`.
impl utoipa::PartialSchema for TrackingNumber {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "A tracking number in canonical form: VU#409117 (case), VRF#25-11-BKQTZ (report), General-4711 (ticket)",
            ))
            .examples(["VU#409117"])
            .into()
    }
}

impl utoipa::ToSchema for TrackingNumber {}

impl serde::Serialize for TrackingNumber {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.canonical)
    }
}

impl<'de> serde::Deserialize<'de> for TrackingNumber {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        TrackingNumber::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Characters of a subject searched for tracking numbers.
const MAX_SUBJECT_CHARS: usize = 2000;

/// Every distinct tracking number in a (already RFC 2047-decoded) subject, in order of first
/// appearance. Only the subject is ever searched: bodies quote other cases.
pub fn find_in_subject(subject: &str) -> Vec<TrackingNumber> {
    // A subject is one line (RFC 5322: at most 998 characters); a sender's megabyte-long one
    // is read only that far, so the scan around each candidate stays cheap.
    let subject = match subject.char_indices().nth(MAX_SUBJECT_CHARS) {
        Some((end, _)) => &subject[..end], // ok: a char boundary from char_indices
        None => subject,
    };
    let text = fold(subject);
    let mut found: Vec<TrackingNumber> = Vec::new();
    let mut pos = 0;
    while pos < text.len() {
        let Some(caps) = TOKEN.captures_at(&text, pos) else {
            break;
        };
        let Some(m) = caps.get(0) else { break };
        let before = text[..m.start()].chars().next_back();
        let after = text[m.end()..].chars().next();
        let standalone = !before.is_some_and(glues) && !after.is_some_and(glues);
        if standalone && !in_url_or_address(&text, m.start(), m.end()) {
            if let Some(n) = from_captures(&caps)
                && !found.contains(&n)
            {
                found.push(n);
            }
            pos = m.end();
        } else {
            // A rejected candidate may hide a valid one starting inside it; step one character.
            pos = m.start() + text[m.start()..].chars().next().map_or(1, char::len_utf8);
        }
    }
    found
}

/// How many random draws minting tries before it reports the space as exhausted. At 99.9 %
/// occupancy a false "exhausted" has probability e^-10; below 90 % it never happens in practice.
const MINT_DRAWS: u32 = 10_000;

/// New case number: 6 digits, first 1-9, uniformly random among those for which `taken` is false
/// (rejection sampling keeps it uniform). Error after [`MINT_DRAWS`] collisions.
pub fn mint_case(
    rng: &mut impl rand::Rng,
    mut taken: impl FnMut(&TrackingNumber) -> bool,
) -> Result<TrackingNumber, TrackingError> {
    for _ in 0..MINT_DRAWS {
        let n: u32 = rng.random_range(100_000..=999_999);
        let candidate = TrackingNumber {
            kind: Kind::Case,
            canonical: format!("VU#{n}"),
        };
        if !taken(&candidate) {
            return Ok(candidate);
        }
    }
    Err(TrackingError::Exhausted {
        kind: Kind::Case,
        draws: MINT_DRAWS,
    })
}

/// The letters a report number is made of: consonants only, so no word is ever spelled.
const REPORT_LETTERS: &[u8; 21] = b"BCDFGHJKLMNPQRSTVWXYZ";

/// New report number for the UTC month of `now`: `VRF#YY-MM-` + 5 letters from
/// `BCDFGHJKLMNPQRSTVWXYZ`, uniformly random among those for which `taken` is false.
pub fn mint_report(
    now: chrono::DateTime<chrono::Utc>,
    rng: &mut impl rand::Rng,
    mut taken: impl FnMut(&TrackingNumber) -> bool,
) -> Result<TrackingNumber, TrackingError> {
    let prefix = format!("VRF#{:02}-{:02}-", now.year().rem_euclid(100), now.month());
    for _ in 0..MINT_DRAWS {
        let mut canonical = prefix.clone();
        for _ in 0..5 {
            let i = rng.random_range(0..REPORT_LETTERS.len());
            canonical.push(char::from(REPORT_LETTERS[i]));
        }
        let candidate = TrackingNumber {
            kind: Kind::Report,
            canonical,
        };
        if !taken(&candidate) {
            return Ok(candidate);
        }
    }
    Err(TrackingError::Exhausted {
        kind: Kind::Report,
        draws: MINT_DRAWS,
    })
}

/// `General-N` for a sequence value in `1..=999_999_999` (the store hands out the sequence).
pub fn ticket(seq: u64) -> Result<TrackingNumber, TrackingError> {
    if (1..=999_999_999).contains(&seq) {
        Ok(TrackingNumber {
            kind: Kind::Ticket,
            canonical: format!("General-{seq}"),
        })
    } else {
        Err(TrackingError::TicketOutOfRange(seq))
    }
}

/// The token grammar, without boundaries (checked by hand: the `regex` crate has no look-around,
/// and its Unicode `\b` would treat CJK characters as word characters). Character classes are
/// spelled out in ASCII on purpose: `(?i)` would let the Kelvin sign match `K` and `\d` would
/// match every script's digits.
const TOKEN_PATTERN: &str = r"(?x)
    (?P<vu>[Vv][Uu]) SEP (?P<case>[1-9][0-9]{5})
  | (?P<vrf>[Vv][Rr][Ff]) SEP (?P<yy>[0-9]{2}) - (?P<mm>0[1-9]|1[0-2]) -
        (?P<letters>[BCDFGHJ-NP-TV-Zbcdfghj-np-tv-z]{5})
  | [Gg][Ee][Nn][Ee][Rr][Aa][Ll] - (?P<seq>[1-9][0-9]{0,8})
";

/// Between prefix and number: `#` with at most one space before and up to three after, or exactly
/// one whitespace character, or one `-`.
const SEP_PATTERN: &str = r"(?:SP?\#SP{0,3}|SP|-)";

/// Horizontal whitespace a person or a mail client may put there (tab, space, NBSP, Unicode spaces).
const SP_PATTERN: &str = r"[\t\x20\u{A0}\u{1680}\u{2000}-\u{200A}\u{202F}\u{205F}\u{3000}]";

static TOKEN: LazyLock<Regex> = LazyLock::new(|| build(TOKEN_PATTERN));
static WHOLE: LazyLock<Regex> = LazyLock::new(|| build(&format!("^(?:{TOKEN_PATTERN})$")));

fn build(pattern: &str) -> Regex {
    let sep = SEP_PATTERN.replace("SP", SP_PATTERN);
    Regex::new(&pattern.replace("SEP", &sep)).unwrap() // ok: constant pattern, exercised by every test here
}

fn from_captures(c: &Captures<'_>) -> Option<TrackingNumber> {
    if let Some(digits) = c.name("case") {
        Some(TrackingNumber {
            kind: Kind::Case,
            canonical: format!("VU#{}", digits.as_str()),
        })
    } else if let (Some(yy), Some(mm), Some(letters)) =
        (c.name("yy"), c.name("mm"), c.name("letters"))
    {
        Some(TrackingNumber {
            kind: Kind::Report,
            canonical: format!(
                "VRF#{}-{}-{}",
                yy.as_str(),
                mm.as_str(),
                letters.as_str().to_ascii_uppercase()
            ),
        })
    } else {
        let seq = c.name("seq")?.as_str().parse::<u64>().ok()?;
        ticket(seq).ok()
    }
}

/// Full-width ASCII, the ideographic space and Unicode hyphens read as plain ASCII.
fn fold(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            '\u{2010}'..='\u{2013}' | '\u{2212}' | '\u{FE63}' => '-',
            '\u{FE5F}' => '#',
            _ => c,
        })
        .collect()
}

/// Does `c` next to a candidate make it part of a longer word (`XVU#…`, `…4711x`)?
fn glues(c: char) -> bool {
    c.is_ascii_alphanumeric() || (c.is_alphanumeric() && !unspaced_script(c))
}

/// Scripts that write words without spaces between them or attach particles to nouns, where a
/// letter next to a number is normal prose, not part of it.
fn unspaced_script(c: char) -> bool {
    matches!(c as u32,
        0x0E00..=0x0EFF      // Thai, Lao
        | 0x1000..=0x109F    // Myanmar
        | 0x1780..=0x17FF    // Khmer
        | 0x1100..=0x11FF    // Hangul Jamo
        | 0x2E80..=0x2FFF    // CJK radicals
        | 0x3040..=0x30FF    // Hiragana, Katakana
        | 0x3100..=0x31FF    // Bopomofo, Hangul compatibility Jamo, Katakana ext.
        | 0x3400..=0x4DBF    // CJK ext. A
        | 0x4E00..=0x9FFF    // CJK unified ideographs
        | 0xA960..=0xA97F    // Hangul Jamo ext. A
        | 0xAC00..=0xD7FF    // Hangul syllables, Jamo ext. B
        | 0xF900..=0xFAFF    // CJK compatibility ideographs
        | 0xFF66..=0xFFDC    // half-width Katakana and Hangul
        | 0x20000..=0x3FFFF  // CJK ext. B and later
    )
}

/// Is the candidate `text[start..end]` part of a URL or an e-mail address? The run of characters
/// around it up to whitespace or a bracket/quote is checked for `://`, `@` or a leading `www.`.
fn in_url_or_address(text: &str, start: usize, end: usize) -> bool {
    let delimiter = |c: char| {
        c.is_whitespace()
            || matches!(
                c,
                '<' | '>' | '(' | ')' | '[' | ']' | '{' | '}' | '"' | '\''
            )
            || (!c.is_ascii() && !c.is_alphanumeric())
    };
    let run_start = text[..start]
        .char_indices()
        .rev()
        .find(|&(_, c)| delimiter(c))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let run_end = text[end..]
        .char_indices()
        .find(|&(_, c)| delimiter(c))
        .map_or(text.len(), |(i, _)| end + i);
    let run = &text[run_start..run_end];
    run.contains("://")
        || run.contains('@')
        || run.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("www."))
}

/// Echo at most 80 characters of untrusted input in an error message.
fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(80).collect();
    if s.chars().nth(80).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Canonical strings found in a subject.
    fn found(subject: &str) -> Vec<String> {
        find_in_subject(subject)
            .into_iter()
            .map(|n| n.as_str().to_owned())
            .collect()
    }

    fn one(subject: &str) -> String {
        let f = found(subject);
        assert_eq!(f.len(), 1, "subject {subject:?} gave {f:?}");
        f[0].clone()
    }

    fn none(subject: &str) {
        assert_eq!(found(subject), Vec::<String>::new(), "subject {subject:?}");
    }

    fn canon(s: &str) -> String {
        TrackingNumber::parse(s)
            .unwrap_or_else(|e| panic!("{s:?}: {e}"))
            .to_string()
    }

    // ---- the examples table of tracking-numbers.md ----

    #[test]
    fn contract_examples() {
        assert_eq!(
            one("Re: VU#409117: Buffer overflow in FooRouter"),
            "VU#409117"
        );
        assert_eq!(one("RE: [VU#409117] statement"), "VU#409117");
        assert_eq!(one("vu# 409117 vendor statement"), "VU#409117");
        assert_eq!(one("Fwd: VRF#25-11-BKQTZ new report"), "VRF#25-11-BKQTZ");
        assert_eq!(one("Question [General-1042]"), "General-1042");
        assert_eq!(one("VU#409117 and VU#409117 again"), "VU#409117");
        assert_eq!(
            found("VU#409117 duplicate of VU#563210"),
            ["VU#409117", "VU#563210"]
        );
        none("XVU#409117");
        none("VU#4091170");
        // The inner subject of an encrypted message is handed to us like any other subject.
        assert_eq!(one("VU#409117"), "VU#409117");
        none("Encrypted Message");
        none("...");
    }

    #[test]
    fn contract_accepted_case_spellings() {
        for s in [
            "VU#123456",
            "vu#123456",
            "VU# 123456",
            "VU 123456",
            "VU-123456",
            "VU#123456:",
            "[VU#123456]",
            "(VU#123456)",
        ] {
            assert_eq!(one(s), "VU#123456", "in a subject: {s}");
            assert_eq!(
                one(&format!("Re: {s} text")),
                "VU#123456",
                "mid-subject: {s}"
            );
            assert_eq!(canon(s), "VU#123456", "parse: {s}");
            assert_eq!(TrackingNumber::parse(s).unwrap().kind(), Kind::Case);
        }
    }

    #[test]
    fn contract_accepted_report_spellings() {
        for s in ["VRF#25-11-BKQTZ", "VRF# 25-11-BKQTZ", "vrf#25-11-bkqtz"] {
            assert_eq!(one(s), "VRF#25-11-BKQTZ", "in a subject: {s}");
            assert_eq!(one(&format!("Fwd: {s} new report")), "VRF#25-11-BKQTZ");
            assert_eq!(canon(s), "VRF#25-11-BKQTZ", "parse: {s}");
            assert_eq!(TrackingNumber::parse(s).unwrap().kind(), Kind::Report);
        }
    }

    #[test]
    fn contract_accepted_ticket_spellings() {
        for s in ["General-4711", "[General-4711]", "general-4711"] {
            assert_eq!(one(s), "General-4711", "in a subject: {s}");
            assert_eq!(one(&format!("Question {s}")), "General-4711");
            assert_eq!(canon(s), "General-4711", "parse: {s}");
            let n = TrackingNumber::parse(s).unwrap();
            assert_eq!(n.kind(), Kind::Ticket);
            assert_eq!(n.ticket_seq(), Some(4711));
        }
    }

    #[test]
    fn contract_rejected_spellings() {
        for s in [
            "XVU#123456",
            "VU#1234567",
            "VU#12345",
            "VU#012345",
            "General-4711x",
            "VRF#25-13-BKQTZ",
            "VRF#25-11-BAQTZ",
        ] {
            none(s);
            none(&format!("Re: {s} text"));
            assert!(TrackingNumber::parse(s).is_err(), "parse accepted {s}");
        }
    }

    // ---- our own decisions ----

    #[test]
    fn more_rejections() {
        for s in [
            "VRF#25-00-BKQTZ",
            "VRF#25-1-BKQTZ",
            "VRF#2025-11-BKQTZ",
            "VRF#25-11-BKQT",
            "VRF#25-11-BKQTZA",
            "VRF#25-11-BKQTE",
            "VRF#25-11-BKQTU",
            "VRF#25/11/BKQTZ",
            "General-0",
            "General-01",
            "General-1234567890",
            "General 4711",
            "General#4711",
            "General4711",
            "VU123456",
            "VU##123456",
            "VU:123456",
            "1VU#123456",
            "VU#123456a",
            "éVU#123456",
            "VU#123456é",
            "ВU#123456",
            "VUE#123456",
            "SVU#123456",
            "VU#12 3456",
            "VU#123 456",
            "VU  123456",
            "VU#    123456",
            "VU\t\t123456",
            "VU#１２３４５６７",
            "",
            "#",
            "VU#",
            "General-",
        ] {
            none(s);
            assert!(TrackingNumber::parse(s).is_err(), "parse accepted {s:?}");
        }
    }

    #[test]
    fn whitespace_after_hash_is_liberal_without_hash_strict() {
        for s in [
            "VU#  409117",
            "VU#   409117",
            "VU#\t409117",
            "VU# \t409117",
            "VU#\u{A0}409117",
            "VU #409117",
            "VU # 409117",
            "VU\u{A0}409117",
            "VU\t409117",
            "VRF #25-11-BKQTZ",
            "VRF  #25-11-BKQTZ",
        ] {
            let f = found(&format!("Re: {s} statement"));
            if s.starts_with("VRF  ") {
                assert!(f.is_empty(), "{s:?} gave {f:?}");
            } else {
                assert_eq!(f.len(), 1, "{s:?} gave {f:?}");
            }
        }
        assert_eq!(one("vrf 25-11-bkqtz"), "VRF#25-11-BKQTZ");
        assert_eq!(one("VRF-25-11-BKQTZ"), "VRF#25-11-BKQTZ");
        assert_eq!(canon("VU #409117"), "VU#409117");
    }

    #[test]
    fn reply_and_forward_prefixes_in_many_languages() {
        let prefixes = [
            "Re:",
            "RE:",
            "Fwd:",
            "FW:",
            "Fw:", // English
            "AW:",
            "WG:", // German
            "SV:",
            "VS:", // Scandinavian, Finnish
            "Antw:",
            "Doorst:", // Dutch
            "TR:",
            "RE :", // French (with its space before the colon)
            "RV:",
            "RE:", // Spanish
            "R:",
            "I:",
            "Rif:", // Italian
            "Enc:",
            "RES:", // Portuguese
            "Odp:",
            "PD:", // Polish
            "Ynt:",
            "İLT:", // Turkish
            "ΑΠ:",
            "ΣΧΕΤ:",
            "ΠΡΘ:", // Greek
            "Отв:",
            "Ответ:",
            "Пересл:", // Russian
            "回复:",
            "回复：",
            "转发：",
            "答复:", // Chinese
            "返信:",
            "転送：", // Japanese
            "회신:",
            "전달:", // Korean
            "השב:",
            "رد:",
            "Vá:", // Hebrew, Arabic, Vietnamese-ish
        ];
        for p in prefixes {
            for subject in [
                format!("{p} VU#409117: Buffer overflow"),
                format!("{p}VU#409117"),
                format!("{p} {p} [VU#409117] statement"),
            ] {
                assert_eq!(one(&subject), "VU#409117", "{subject:?}");
            }
            assert_eq!(one(&format!("{p} VRF#25-11-BKQTZ")), "VRF#25-11-BKQTZ");
            assert_eq!(one(&format!("{p} Question [General-1042]")), "General-1042");
        }
    }

    #[test]
    fn brackets_and_punctuation_end_a_token() {
        for s in [
            "[VU#409117]",
            "(VU#409117)",
            "{VU#409117}",
            "<VU#409117>",
            "\"VU#409117\"",
            "'VU#409117'",
            "VU#409117:",
            "VU#409117,",
            "VU#409117;",
            "VU#409117.",
            "VU#409117!",
            "VU#409117?",
            "Re:VU#409117",
            "Re:[VU#409117]",
            "#VU#409117",
            "*VU#409117*",
            "_VU#409117_",
            "[EXT] [psirt-list] VU#409117",
            "VU#409117/VU#409117",
            "VU#409117-2",
            "VU#409117.1",
            "VU#409117 (VU#409117)",
        ] {
            assert_eq!(one(s), "VU#409117", "{s:?}");
        }
        assert_eq!(one("General-1042."), "General-1042");
        assert_eq!(one("[General-1042]:"), "General-1042");
        assert_eq!(one("(vrf#25-11-bkqtz)"), "VRF#25-11-BKQTZ");
    }

    #[test]
    fn unicode_around_the_number() {
        for s in [
            "回复：VU#409117",
            "【VU#409117】",
            "「VU#409117」",
            "《VU#409117》",
            "VU#409117：状态",
            "RE：VU#409117",
            "\u{A0}VU#409117\u{A0}",
            "\u{FEFF}VU#409117",
            "\u{200B}VU#409117\u{200B}",
            "关于VU#409117的问题",
            "VU#409117について",
            "VU#409117에 대한 회신",
            "ＶＵ＃４０９１１７",
            "ｖｕ＃４０９１１７",
            "VU\u{2011}409117",
            "VU–409117",
            "Re: VU#409117 — Ünïcödé ✓ 🚀",
            "🚀VU#409117🚀",
        ] {
            assert_eq!(one(s), "VU#409117", "{s:?}");
        }
        assert_eq!(one("ＧＥＮＥＲＡＬ－１０４２"), "General-1042");
        assert_eq!(canon("　ＶＵ＃４０９１１７　"), "VU#409117");
        // Letters of space-separated scripts glue like ASCII letters do.
        none("ÄVU#409117");
        none("VU#409117ß");
        none("VU#409117д");
        // Other scripts' digits are digits: they glue, and never count as number digits.
        none("VU#409117٣");
        none("VU#٤٠٩١١٧");
    }

    #[test]
    fn urls_and_addresses_are_not_numbers() {
        for s in [
            "see https://jira.vendor.example/browse/General-12",
            "https://x/General-12",
            "http://tracker.example/VU#409117",
            "www.vendor.example/VU-409117",
            "mail General-12@vendor.example",
            "from psirt+VU#409117@foocorp.example",
            "<https://kb.example/General-12>",
        ] {
            none(s);
        }
        // The number next to (not inside) a URL or address still counts.
        assert_eq!(one("VU#409117 https://x.example/a"), "VU#409117");
        assert_eq!(one("[psirt@foocorp.example] VU#409117"), "VU#409117");
        assert_eq!(one("VU#409117 <psirt@foocorp.example>"), "VU#409117");
        assert_eq!(one("General-12 (see tracker/General-12)"), "General-12");
    }

    #[test]
    fn several_numbers_in_order_of_first_appearance() {
        assert_eq!(
            found("VU#563210 / VU#409117 / vu#563210 / General-1 / VRF#25-11-BKQTZ / VU-409117"),
            ["VU#563210", "VU#409117", "General-1", "VRF#25-11-BKQTZ"]
        );
        assert_eq!(found("VU#409117-VU#563210"), ["VU#409117", "VU#563210"]);
        assert_eq!(found("XVU#111111 VU#222222"), ["VU#222222"]);
    }

    #[test]
    fn never_panics_on_any_input() {
        let mut rng = StdRng::seed_from_u64(7);
        let alphabet: Vec<char> =
            "VvUuRrFfGgeneral#-–0123456789 \t\u{A0}[]():@/.回复：ＶＵ＃４é\u{FEFF}😀x"
                .chars()
                .collect();
        for _ in 0..20_000 {
            let len = rng.random_range(0..24);
            let s: String = (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect();
            let found = find_in_subject(&s);
            for n in &found {
                assert_eq!(TrackingNumber::parse(n.as_str()).unwrap(), *n);
            }
            let _ = TrackingNumber::parse(&s);
        }
        // Every prefix and suffix of a tricky subject, cut at every char boundary.
        let tricky = "回复：【ＶＵ＃４０９１１７】 vrf# 25-11-bkqtz／General-999999999🚀";
        for (i, _) in tricky.char_indices() {
            let _ = find_in_subject(&tricky[i..]);
            let _ = find_in_subject(&tricky[..i]);
            let _ = TrackingNumber::parse(&tricky[i..]);
        }
        let long = "VU#409117 ".repeat(10_000) + &"x".repeat(100_000);
        assert_eq!(found(&long), ["VU#409117"]);
        let err = TrackingNumber::parse(&long).unwrap_err().to_string();
        assert!(
            err.len() < 600,
            "error echoes the whole input: {} bytes",
            err.len()
        );
    }

    // ---- parse, Display, serde ----

    #[test]
    fn parse_takes_exactly_one_number() {
        assert_eq!(canon("  vu#409117\n"), "VU#409117");
        assert_eq!(canon("[vu# 409117]:"), "VU#409117");
        assert_eq!(canon("general-1042"), "General-1042");
        for bad in [
            "VU#409117 VU#563210",
            "Re: VU#409117",
            "VU#409117 extra",
            "[VU#409117",
            "VU#409117]",
            "409117",
            "case",
            "https://x/General-12",
        ] {
            let err = TrackingNumber::parse(bad).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("not a tracking number"), "{msg}");
            assert!(
                msg.contains("VU#409117") && msg.contains("General-1042"),
                "{msg}"
            );
        }
    }

    #[test]
    fn display_fromstr_serde() {
        let n: TrackingNumber = "vrf#25-11-bkqtz".parse().unwrap();
        assert_eq!(n.to_string(), "VRF#25-11-BKQTZ");
        assert_eq!(n.as_str(), "VRF#25-11-BKQTZ");
        assert_eq!(n.ticket_seq(), None);
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"VRF#25-11-BKQTZ\"");
        let back: TrackingNumber = serde_json::from_str("\"vu# 409117\"").unwrap();
        assert_eq!(back.as_str(), "VU#409117");
        assert!(serde_json::from_str::<TrackingNumber>("\"VU#012345\"").is_err());

        for (k, w) in [
            (Kind::Case, "case"),
            (Kind::Report, "report"),
            (Kind::Ticket, "ticket"),
        ] {
            assert_eq!(k.as_str(), w);
            assert_eq!(k.to_string(), w);
            assert_eq!(w.parse::<Kind>().unwrap(), k);
            assert_eq!(w.to_uppercase().parse::<Kind>().unwrap(), k);
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{w}\""));
            assert_eq!(
                serde_json::from_str::<Kind>(&format!("\"{w}\"")).unwrap(),
                k
            );
        }
        let err = "vendor".parse::<Kind>().unwrap_err().to_string();
        assert!(
            err.contains("vendor") && err.contains("case, report or ticket"),
            "{err}"
        );
    }

    // ---- tickets and minting ----

    #[test]
    fn ticket_range() {
        assert_eq!(ticket(1).unwrap().as_str(), "General-1");
        assert_eq!(ticket(1042).unwrap().ticket_seq(), Some(1042));
        assert_eq!(ticket(999_999_999).unwrap().as_str(), "General-999999999");
        for bad in [0, 1_000_000_000, u64::MAX] {
            let msg = ticket(bad).unwrap_err().to_string();
            assert!(
                msg.contains(&bad.to_string()) && msg.contains("General-1 to"),
                "{msg}"
            );
        }
        // What ticket() makes, the parser reads back.
        for seq in [1, 9, 10, 4711, 999_999_999] {
            let t = ticket(seq).unwrap();
            assert_eq!(
                find_in_subject(&format!("Re: [{t}] thanks")),
                std::slice::from_ref(&t)
            );
            assert_eq!(TrackingNumber::parse(t.as_str()).unwrap(), t);
        }
    }

    #[test]
    fn mint_case_format_and_taken() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut first_digits = std::collections::BTreeSet::new();
        for _ in 0..2_000 {
            let mut asked = Vec::new();
            // Everything with an even last digit is taken.
            let n = mint_case(&mut rng, |c| {
                asked.push(c.clone());
                c.as_str().ends_with(['0', '2', '4', '6', '8'])
            })
            .unwrap();
            assert_eq!(n.kind(), Kind::Case);
            assert_eq!(asked.last(), Some(&n), "the returned number was checked");
            let digits = n.as_str().strip_prefix("VU#").unwrap();
            assert_eq!(digits.len(), 6);
            assert!(digits.bytes().all(|b| b.is_ascii_digit()));
            assert_ne!(&digits[..1], "0");
            assert!(digits.ends_with(['1', '3', '5', '7', '9']), "{n}");
            assert_eq!(TrackingNumber::parse(n.as_str()).unwrap(), n);
            first_digits.insert(digits.as_bytes()[0]);
        }
        assert_eq!(first_digits.len(), 9, "all leading digits 1-9 occur");
    }

    #[test]
    fn mint_exhaustion_is_an_error() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut calls = 0u32;
        let err = mint_case(&mut rng, |_| {
            calls += 1;
            true
        })
        .unwrap_err();
        assert!(matches!(
            err,
            TrackingError::Exhausted {
                kind: Kind::Case,
                ..
            }
        ));
        assert_eq!(calls, MINT_DRAWS);
        assert!(err.to_string().contains("exhausted"), "{err}");

        let now = chrono::Utc::now();
        let err = mint_report(now, &mut rng, |_| true).unwrap_err();
        assert!(matches!(
            err,
            TrackingError::Exhausted {
                kind: Kind::Report,
                ..
            }
        ));
        assert!(err.to_string().contains("report"), "{err}");
    }

    #[test]
    fn mint_report_month_letters_and_taken() {
        use chrono::TimeZone;
        let mut rng = StdRng::seed_from_u64(3);
        for (now, prefix) in [
            (
                chrono::Utc
                    .with_ymd_and_hms(2025, 11, 30, 23, 59, 59)
                    .unwrap(),
                "VRF#25-11-",
            ),
            (
                chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
                "VRF#26-01-",
            ),
            (
                chrono::Utc
                    .with_ymd_and_hms(2009, 12, 15, 12, 0, 0)
                    .unwrap(),
                "VRF#09-12-",
            ),
            (
                chrono::Utc.with_ymd_and_hms(2100, 2, 1, 0, 0, 0).unwrap(),
                "VRF#00-02-",
            ),
        ] {
            let mut seen_letters = std::collections::BTreeSet::new();
            for _ in 0..500 {
                // Taken: everything ending in Z.
                let n = mint_report(now, &mut rng, |c| c.as_str().ends_with('Z')).unwrap();
                assert_eq!(n.kind(), Kind::Report);
                let letters = n
                    .as_str()
                    .strip_prefix(prefix)
                    .unwrap_or_else(|| panic!("{n}"));
                assert_eq!(letters.len(), 5);
                assert!(!letters.ends_with('Z'), "taken number returned: {n}");
                for b in letters.bytes() {
                    assert!(REPORT_LETTERS.contains(&b), "{n}");
                    seen_letters.insert(b);
                }
                assert_eq!(TrackingNumber::parse(n.as_str()).unwrap(), n);
                assert_eq!(
                    find_in_subject(&format!("Re: {n}: ack")),
                    std::slice::from_ref(&n)
                );
            }
            assert_eq!(seen_letters.len(), 21, "every consonant occurs");
        }
    }

    // ---- encoded-word subjects, decoded by mail-parser as the pipeline does ----

    fn subject_of(raw: &[u8]) -> String {
        mail_parser::MessageParser::default()
            .parse(raw)
            .and_then(|m| m.subject().map(str::to_owned))
            .unwrap()
    }

    #[test]
    fn rfc2047_subjects() {
        let q = b"From: a@example.com\r\nSubject: =?UTF-8?Q?AW=3A_=5BVU=23409117=5D_Stellungnahme_=C3=BCber?=\r\n\r\nbody\r\n";
        let s = subject_of(q);
        assert_eq!(s, "AW: [VU#409117] Stellungnahme über");
        assert_eq!(one(&s), "VU#409117");

        // "回复：VU#409117 漏洞" in base64.
        let b = b"From: a@example.com\r\nSubject: =?UTF-8?B?5Zue5aSN77yaVlUjNDA5MTE3IOa8j+a0ng==?=\r\n\r\nbody\r\n";
        let s = subject_of(b);
        assert_eq!(s, "回复：VU#409117 漏洞");
        assert_eq!(one(&s), "VU#409117");

        // ISO-8859-1, Q: "Re: Réponse vrf#25-11-bkqtz"
        let latin = b"From: a@example.com\r\nSubject: =?ISO-8859-1?Q?Re=3A_R=E9ponse_vrf=2325-11-bkqtz?=\r\n\r\nbody\r\n";
        let s = subject_of(latin);
        assert_eq!(s, "Re: Réponse vrf#25-11-bkqtz");
        assert_eq!(one(&s), "VRF#25-11-BKQTZ");

        // ISO-8859-1 bytes B-encoded with an NBSP between the prefix and the number.
        let latin_b =
            b"From: a@example.com\r\nSubject: =?iso-8859-1?B?U1Y6IFZVoDU2MzIxMA==?=\r\n\r\nx\r\n";
        let s = subject_of(latin_b);
        assert_eq!(s, "SV: VU\u{A0}563210");
        assert_eq!(one(&s), "VU#563210");

        // Folded plain subject: the fold lands right after "VU#".
        let folded = b"From: a@example.com\r\nSubject: Re: Re: Fwd: a rather long subject line about\r\n the FooRouter issue VU#\r\n 409117 statement\r\n\r\nbody\r\n";
        let s = subject_of(folded);
        assert_eq!(one(&s), "VU#409117", "{s:?}");

        // The number split across two adjacent encoded words (whitespace between them vanishes).
        let split = b"From: a@example.com\r\nSubject: =?UTF-8?Q?Re=3A_General-10?=\r\n =?UTF-8?Q?42_=E2=9C=93?=\r\n\r\nbody\r\n";
        let s = subject_of(split);
        assert_eq!(s, "Re: General-1042 ✓");
        assert_eq!(one(&s), "General-1042");

        // Mixed encoded and plain words, with a folded encoded word.
        let mixed = b"From: a@example.com\r\nSubject: WG: =?utf-8?q?=E3=80=90?=\r\n\tVU-409117 =?utf-8?b?44CR?= FooRouter\r\n\r\nbody\r\n";
        let s = subject_of(mixed);
        assert_eq!(one(&s), "VU#409117", "{s:?}");
    }
}
