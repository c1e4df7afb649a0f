//! casegate's changes to mail-parser 0.11.9 (see CASEGATE.md): MIME delimiters as RFC 2046
//! §5.1.1 defines them, and bounded parses. Run with
//! `cargo test --manifest-path vendor/mail-parser/Cargo.toml` (`./run test` does).

use mail_parser::{LimitExceeded, MessageParser, MimeHeaders, ParseLimits, PartType};

fn crlf(s: &str) -> Vec<u8> {
    s.replace("\r\n", "\n").replace('\n', "\r\n").into_bytes()
}

fn texts(raw: &[u8]) -> Vec<String> {
    let m = MessageParser::default().parse(raw).unwrap();
    m.parts
        .iter()
        .filter_map(|p| match &p.body {
            PartType::Text(t) => Some(t.to_string()),
            PartType::Binary(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        })
        .collect()
}

/// Upstream issue 156: `--BND` in the middle of a line cut the part there.
#[test]
fn a_boundary_in_the_middle_of_a_line_is_text() {
    for (cte, body, expected) in [
        ("7bit", "visit --BND for details\nSECRET", "visit --BND for details\r\nSECRET"),
        ("7bit", "x--BND--\nmore", "x--BND--\r\nmore"),
        (
            "quoted-printable",
            "visit --BND for=\n details\nSECRET",
            "visit --BND for details\r\nSECRET",
        ),
    ] {
        let raw = crlf(&format!(
            "From: a@b.example\nContent-Type: multipart/mixed; boundary=\"BND\"\n\n--BND\n\
Content-Type: text/plain\nContent-Transfer-Encoding: {cte}\n\n{body}\n--BND--\n"
        ));
        assert_eq!(texts(&raw), vec![expected.to_string()], "{cte}: {body:?}");
    }
}

/// A line that starts with the boundary but goes on is not a delimiter either (the boundary
/// is then only a prefix, e.g. of a nested multipart's boundary).
#[test]
fn a_boundary_prefix_is_not_a_delimiter() {
    let raw = crlf(
        "From: a@b.example\nContent-Type: multipart/mixed; boundary=\"a\"\n\n--a\n\
Content-Type: text/plain\n\none\n--ab\ntwo\n--a \t\nContent-Type: text/plain\n\nthree\n--a-- \n",
    );
    assert_eq!(texts(&raw), vec!["one\r\n--ab\r\ntwo", "three"]);
}

/// gpg writes `-----END PGP MESSAGE-----`; with the boundary `E` upstream cut the armor.
#[test]
fn armor_dashes_do_not_end_a_part_with_a_short_boundary() {
    let armor = "-----BEGIN PGP MESSAGE-----\n\nhQEMA\n=abcd\n-----END PGP MESSAGE-----";
    let raw = crlf(&format!(
        "From: a@b.example\nContent-Type: multipart/encrypted; boundary=E;\n \
protocol=\"application/pgp-encrypted\"\n\n--E\nContent-Type: application/pgp-encrypted\n\n\
Version: 1\n\n--E\nContent-Type: application/octet-stream\n\n{armor}\n\n--E--\n"
    ));
    let m = MessageParser::default().parse(&raw).unwrap();
    let enc = m.parts.last().unwrap();
    assert_eq!(enc.contents(), crlf(&format!("{armor}\n")).as_slice());
}

/// The line break before a delimiter belongs to the delimiter, also after a quoted-printable
/// soft line break, and a part may be empty.
#[test]
fn the_line_break_before_a_delimiter_belongs_to_it() {
    let raw = crlf(
        "From: a@b.example\nContent-Type: multipart/mixed; boundary=B\n\n--B\n\
Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\nsoft=\n--B\n\
Content-Type: text/plain\n\n--B\nContent-Type: text/plain\n\nends with a break\n\n--B--\n",
    );
    assert_eq!(texts(&raw), vec!["soft", "", "ends with a break\r\n"]);
}

/// base64 with `--BND` mid-line is an encoding problem (and recovered up to the real
/// delimiter), never a short part.
#[test]
fn base64_with_a_boundary_mid_line_is_an_encoding_problem() {
    let raw = crlf(
        "From: a@b.example\nContent-Type: multipart/mixed; boundary=B\n\n--B\n\
Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\naGVsbG8=--B\nmore\n\
--B\nContent-Type: text/plain\n\nnext\n--B--\n",
    );
    let m = MessageParser::default().parse(&raw).unwrap();
    assert!(m.parts[1].is_encoding_problem);
    assert_eq!(m.parts[1].contents(), b"aGVsbG8=--B\r\nmore");
    assert_eq!(m.parts[2].contents(), b"next");
}

/// RFC 2046: a boundary delimiter cannot occur inside an encapsulated part, so a delimiter of
/// an enclosing multipart ends a nested one that never closed (as Python's email and
/// Thunderbird read it).
#[test]
fn an_enclosing_delimiter_ends_an_unclosed_nested_multipart() {
    let raw = crlf(
        "From: a@b.example\nContent-Type: multipart/mixed; boundary=OUT\n\n--OUT\n\
Content-Type: multipart/signed; boundary=IN; protocol=\"application/pgp-signature\"\n\n--IN\n\
Content-Type: text/plain\n\nsigned\n--IN\nContent-Type: application/pgp-signature\n\nSIG\n\
--OUT\nContent-Type: text/plain\n\nnot signed\n--OUT--\n",
    );
    let m = MessageParser::default().parse(&raw).unwrap();
    let root = &m.parts[0];
    let PartType::Multipart(children) = &root.body else {
        panic!("{root:?}")
    };
    assert_eq!(children.len(), 2, "{:?}", m.parts);
    let signed = &m.parts[children[0] as usize];
    assert!(signed.is_encoding_problem, "no close delimiter");
    let PartType::Multipart(inner) = &signed.body else {
        panic!()
    };
    assert_eq!(inner.len(), 2);
    assert_eq!(m.parts[inner[1] as usize].contents(), b"SIG");
    assert_eq!(m.parts[children[1] as usize].contents(), b"not signed");
    // Also through an attached message inside the nested multipart.
    let raw = crlf(
        "From: a@b.example\nContent-Type: multipart/mixed; boundary=OUT\n\n--OUT\n\
Content-Type: multipart/mixed; boundary=IN\n\n--IN\nContent-Type: message/rfc822\n\n\
From: c@d.example\n\ninner\n--OUT\nContent-Type: text/plain\n\nafter\n--OUT--\n",
    );
    assert_eq!(texts(&raw), vec!["after".to_string()]);
    let m = MessageParser::default().parse(&raw).unwrap();
    let nested = m
        .parts
        .iter()
        .find_map(|p| match &p.body {
            PartType::Message(n) => Some(n),
            _ => None,
        })
        .unwrap();
    assert_eq!(nested.body_text(0).as_deref(), Some("inner"));
}

/// A nested multipart whose boundary never occurs is text up to its parent's next delimiter
/// (and finding that out no longer scans to the end of the message: quadratic before).
#[test]
fn a_nested_multipart_without_its_boundary_ends_at_the_parents_delimiter() {
    let mut raw = b"From: a@b.example\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n".to_vec();
    for i in 0..3 {
        raw.extend(
            format!("--B\r\nContent-Type: multipart/mixed; boundary=NOPE{i}\r\n\r\npart {i}\r\n")
                .as_bytes(),
        );
    }
    raw.extend(b"--B--\r\n");
    assert_eq!(texts(&raw), vec!["part 0", "part 1", "part 2"]);
}

fn nested_rfc822(n: usize) -> Vec<u8> {
    let mut m = b"From: a@b.example\r\n".to_vec();
    for _ in 0..n {
        m.extend(b"Content-Type: message/rfc822\r\n\r\nFrom: a@b.example\r\n");
    }
    m.extend(b"\r\ninnermost\r\n");
    m
}

fn nested_multiparts(n: usize) -> Vec<u8> {
    let mut m = b"From: a@b.example\r\n".to_vec();
    for i in 0..n {
        m.extend(format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n").as_bytes());
    }
    m.extend(b"\r\ninnermost\r\n");
    m
}

fn limits(max_depth: usize, max_parts: usize, max_headers: usize) -> ParseLimits {
    ParseLimits {
        max_depth,
        max_parts,
        max_headers,
    }
}

#[test]
fn nesting_is_bounded_and_reported() {
    let p = MessageParser::default().with_limits(limits(8, 1000, 1000));
    for raw in [nested_rfc822(8), nested_multiparts(8)] {
        assert!(p.parse_checked(&raw).unwrap().is_some());
    }
    for raw in [nested_rfc822(9), nested_multiparts(9)] {
        assert_eq!(p.parse_checked(&raw).err(), Some(LimitExceeded::Depth(8)));
    }
    // base64-encoded attached messages count towards the same depth.
    use std::fmt::Write;
    for (inner_depth, expected) in [(7, None), (8, Some(LimitExceeded::Depth(8)))] {
        let inner = nested_rfc822(inner_depth);
        let mut b64 = String::new();
        for chunk in inner.chunks(57) {
            let _ = writeln!(b64, "{}", base64(chunk));
        }
        let raw = crlf(&format!(
            "From: a@b.example\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n{b64}"
        ));
        assert_eq!(p.parse_checked(&raw).err(), expected, "{inner_depth}");
    }
}

/// Hundreds of thousands of nested messages in a few MB: the default parse stops at depth
/// 64, so neither parsing nor dropping the tree can exhaust a small (tokio-sized) stack.
#[test]
fn deep_nesting_never_exhausts_the_stack() {
    let raw = nested_rfc822(200_000);
    let raw2 = nested_multiparts(100_000);
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            for raw in [raw, raw2] {
                let m = MessageParser::default().parse(&raw);
                assert!(m.is_some());
                let checked = MessageParser::default().parse_checked(&raw);
                assert_eq!(checked.err(), Some(LimitExceeded::Depth(64)));
            }
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn parts_and_headers_are_bounded_and_reported() {
    let mut raw = b"From: a@b.example\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n".to_vec();
    for i in 0..10 {
        raw.extend(format!("--B\r\nX-A: 1\r\nX-B: 2\r\n\r\npart {i}\r\n").as_bytes());
    }
    raw.extend(b"--B--\r\n");
    // 11 entities, 2 + 10 * 2 = 22 header fields.
    let ok = MessageParser::default().with_limits(limits(8, 11, 22));
    assert_eq!(ok.parse_checked(&raw).unwrap().unwrap().parts.len(), 11);
    let few_parts = MessageParser::default().with_limits(limits(8, 10, 1000));
    assert_eq!(few_parts.parse_checked(&raw).err(), Some(LimitExceeded::Parts(10)));
    let few_headers = MessageParser::default().with_limits(limits(8, 1000, 21));
    assert_eq!(few_headers.parse_checked(&raw).err(), Some(LimitExceeded::Headers(21)));
    // One entity with a million header fields stops at the limit.
    let mut many = b"From: a@b.example\r\n".to_vec();
    many.extend(b"X: y\r\n".repeat(1_000_000));
    many.extend(b"\r\nbody\r\n");
    assert_eq!(
        few_headers.parse_checked(&many).err(),
        Some(LimitExceeded::Headers(21))
    );
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Found by casegate's fuzzing: delimiters of a multipart running through the parts of
/// attached messages left the parser without the part it was closing. Upstream
/// `debug_assert!`s (a panic in debug builds); here `parse_checked` reports it and `parse`
/// goes on as upstream's release build does.
#[test]
fn a_lost_structure_is_an_error_not_a_panic() {
    for name in [
        "pipeline-rfc822-parts-interleaved.eml",
        "pipeline-rfc822-parts-interleaved-2.eml",
        "open-rfc822-parts-interleaved.eml",
        "bounce-rfc822-parts-interleaved.eml",
    ] {
        let path = format!("{}/../../fixtures/fuzz/{name}", env!("CARGO_MANIFEST_DIR"));
        let raw = std::fs::read(&path).unwrap();
        assert!(
            matches!(
                MessageParser::default().parse_checked(&raw),
                Err(LimitExceeded::Structure(_))
            ),
            "{name}"
        );
        let _ = MessageParser::default().parse(&raw);
    }
}
