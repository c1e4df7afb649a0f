/*
 * SPDX-FileCopyrightText: 2020 Stalwart Labs LLC <hello@stalw.art>
 *
 * SPDX-License-Identifier: Apache-2.0 OR MIT
 */

use std::borrow::Cow;

use super::MessageStream;

/// casegate: RFC 2046 §5.1.1. `--` + boundary is a delimiter only at the beginning of a line
/// (the first byte of `data`, or right after a LF) and only when the rest of its line is an
/// optional `--` (the close delimiter) and transport padding (spaces, tabs) before the line
/// break or the end of the data. `dash` is the offset of its first `-`. Upstream 0.11 took
/// `--boundary` anywhere (stalwartlabs/mail-parser issue 156).
#[inline]
pub(crate) fn is_delimiter(data: &[u8], dash: usize, boundary: &[u8]) -> bool {
    if boundary.is_empty() || (dash > 0 && data.get(dash - 1) != Some(&b'\n')) {
        return false;
    }
    let mut p = dash + 2;
    if data.get(dash..p) != Some(b"--") || data.get(p..p + boundary.len()) != Some(boundary) {
        return false;
    }
    p += boundary.len();
    if data.get(p..p + 2) == Some(b"--") {
        p += 2;
    }
    while matches!(data.get(p), Some(b' ' | b'\t')) {
        p += 1;
    }
    match data.get(p) {
        None | Some(b'\n') => true,
        Some(b'\r') => matches!(data.get(p + 1), None | Some(b'\n')),
        _ => false,
    }
}

/// casegate: the offset of the `-` that starts the last delimiter line of `boundary` in
/// `data`, if any.
pub(crate) fn last_delimiter(data: &[u8], boundary: &[u8]) -> Option<usize> {
    (0..data.len().saturating_sub(1))
        .rev()
        .find(|&dash| data[dash] == b'-' && is_delimiter(data, dash, boundary))
}

impl<'x> MessageStream<'x> {
    /// The first delimiter of a multipart's `boundary` (after its preamble). casegate: not
    /// looking past a delimiter of an enclosing multipart (`fences`): the nested one ends there
    /// whatever it says. Without that bound, each nested multipart whose boundary never occurs
    /// made a scan to the end of the message: quadratic in the number of such parts.
    pub fn seek_next_part(&mut self, boundary: &[u8]) -> bool {
        if !boundary.is_empty() {
            let mut last_ch = 0;

            self.checkpoint();

            while let Some(&ch) = self.next() {
                if ch == b'-' && last_ch == b'-' {
                    let dash = self.offset() - 2;
                    if is_delimiter(self.data, dash, boundary) {
                        self.skip_bytes(boundary.len());
                        self.last_dash = dash;
                        return true;
                    }
                    if self.fence_at(dash, boundary).is_some() {
                        break;
                    }
                }

                last_ch = ch;
            }

            self.restore();
        }

        false
    }

    pub fn seek_next_part_offset(&mut self, boundary: &[u8]) -> Option<usize> {
        let mut last_ch = b'\n';
        let mut offset_pos = self.offset();
        self.checkpoint();

        while let Some(&ch) = self.next() {
            if ch == b'\n' {
                offset_pos = if last_ch == b'\r' {
                    self.offset() - 2
                } else {
                    self.offset() - 1
                };
            } else if ch == b'-' && last_ch == b'-' && self.take_delimiter(boundary) {
                return offset_pos.into();
            }

            last_ch = ch;
        }

        self.restore();

        None
    }

    /// casegate: a delimiter starts a line (RFC 2046 §5.1.1), so only line starts are looked
    /// at, each found with `memchr`, instead of every byte through the stream's iterator (the
    /// byte loop was a twentieth of an IMAP sync's CPU). What it returns and where it leaves
    /// the stream are those of the byte loop, [`MessageStream::mime_part_bytewise`] (tests
    /// compare the two).
    pub fn mime_part(&mut self, boundary: &[u8]) -> (usize, Cow<'x, [u8]>) {
        let data = self.data;
        let start_pos = self.offset();
        self.checkpoint();

        let mut line = start_pos;
        loop {
            if data.get(line..line + 2) == Some(b"--") {
                self.seek_to(line + 2);
                if self.take_delimiter(boundary) {
                    // The line break before the delimiter belongs to it: a CR counts only
                    // inside the part (the byte loop started as if after a LF).
                    let end_pos = if line == start_pos {
                        start_pos
                    } else if line >= start_pos + 2 && data[line - 2] == b'\r' {
                        line - 2
                    } else {
                        line - 1
                    };
                    return (end_pos, self.bytes(start_pos..end_pos).into());
                }
            }
            match data
                .get(line..)
                .and_then(|rest| memchr::memchr(b'\n', rest))
            {
                Some(lf) => line += lf + 1,
                None => break,
            }
        }

        (
            if boundary.is_empty() {
                self.seek_end();
                self.offset()
            } else {
                self.restore();
                usize::MAX
            },
            self.bytes(start_pos..self.len()).into(),
        )
    }

    /// Upstream's byte loop (with casegate's whole-line delimiters), kept as the reference
    /// [`MessageStream::mime_part`] is tested against.
    #[cfg(test)]
    pub(crate) fn mime_part_bytewise(&mut self, boundary: &[u8]) -> (usize, Cow<'x, [u8]>) {
        let mut last_ch = b'\n';
        let start_pos = self.offset();
        let mut end_pos = self.offset();

        self.checkpoint();

        while let Some(&ch) = self.next() {
            if ch == b'\n' {
                end_pos = if last_ch == b'\r' {
                    self.offset() - 2
                } else {
                    self.offset() - 1
                };
            } else if ch == b'-' && last_ch == b'-' && self.take_delimiter(boundary) {
                return (end_pos, self.bytes(start_pos..end_pos).into());
            }

            last_ch = ch;
        }

        (
            if boundary.is_empty() {
                self.offset()
            } else {
                self.restore();
                usize::MAX
            },
            self.bytes(start_pos..self.len()).into(),
        )
    }

    pub fn seek_part_end(&mut self, boundary: Option<&[u8]>) -> (usize, bool) {
        let mut last_ch = b'\n';
        let mut end_pos = self.offset();

        if let Some(boundary) = boundary {
            while let Some(&ch) = self.next() {
                if ch == b'\n' {
                    end_pos = if last_ch == b'\r' {
                        self.offset() - 2
                    } else {
                        self.offset() - 1
                    };
                } else if ch == b'-' && last_ch == b'-' && self.take_delimiter(boundary) {
                    return (end_pos, true);
                }

                last_ch = ch;
            }

            (self.offset(), false)
        } else {
            self.seek_end();
            (self.offset(), true)
        }
    }

    pub fn is_multipart_end(&mut self) -> bool {
        self.checkpoint();

        match (self.next(), self.peek()) {
            (Some(b'\r'), Some(b'\n')) => {
                self.next();
                false
            }
            (Some(b'-'), Some(b'-')) => {
                self.next();
                true
            }
            (Some(b'\n'), _) => false,
            (Some(&a), _) if a.is_ascii_whitespace() => {
                self.skip_crlf();
                false
            }
            _ => {
                self.restore();
                false
            }
        }
    }

    #[inline(always)]
    pub fn skip_crlf(&mut self) {
        while let Some(ch) = self.peek() {
            match ch {
                b'\r' | b' ' | b'\t' => {
                    self.next();
                }
                b'\n' => {
                    self.next();
                    break;
                }
                _ => break,
            }
        }
    }
}

#[cfg(test)]
mod casegate_tests {
    use super::MessageStream;

    /// Every input of up to 7 bytes over an alphabet that makes delimiters, near-delimiters
    /// and line breaks, plus longer random ones; each from every start offset, for a boundary
    /// that is a prefix of another, an empty one, and enclosing multiparts: `mime_part` returns
    /// what the byte loop returns and leaves the stream where it does.
    #[test]
    fn mime_part_finds_what_the_byte_loop_finds() {
        const ALPHABET: &[u8] = b"-\r\na ";
        let cases: &[(&[u8], &[&[u8]])] = &[
            (b"a", &[]),
            (b"ab", &[]),
            (b"a", &[b"ab"]),
            (b"ab", &[b"a", b"a "]),
            (b"", &[]),
            (b"", &[b"a"]),
        ];
        let mut inputs: Vec<Vec<u8>> = vec![Vec::new()];
        let mut all = Vec::new();
        for _ in 0..7 {
            let mut longer = Vec::new();
            for i in &inputs {
                for &c in ALPHABET {
                    let mut j = i.clone();
                    j.push(c);
                    longer.push(j);
                }
            }
            all.extend(inputs);
            inputs = longer;
        }
        all.extend(inputs);
        // Longer ones: a fixed xorshift, so a failure is the same on every run.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..3_000 {
            let len = (x % 300) as usize;
            let mut v = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                v.push(b"--\r\n\nab x-"[(x % 10) as usize]);
            }
            all.push(v);
        }
        let mut compared = 0usize;
        for data in &all {
            for &(boundary, fences) in cases {
                // Every start of a short input; of a long one, the first few and its middle.
                let starts: Vec<usize> = if data.len() <= 7 {
                    (0..=data.len()).collect()
                } else {
                    vec![0, 1, 2, 3, data.len() / 2, data.len()]
                };
                for start in starts {
                    let stream = |start: usize| {
                        let mut s = MessageStream::new(data);
                        s.fences = fences.iter().map(|f| f.to_vec()).collect();
                        s.seek_to(start);
                        s
                    };
                    let (mut fast, mut slow) = (stream(start), stream(start));
                    let got = fast.mime_part(boundary);
                    let want = slow.mime_part_bytewise(boundary);
                    let what = || {
                        format!(
                            "{:?} from {start}, boundary {:?}, fences {:?}",
                            String::from_utf8_lossy(data),
                            String::from_utf8_lossy(boundary),
                            fences
                        )
                    };
                    assert_eq!(got, want, "{}", what());
                    assert_eq!(fast.offset(), slow.offset(), "{}", what());
                    assert_eq!(fast.peek(), slow.peek(), "{}", what());
                    assert_eq!(fast.last_dash, slow.last_dash, "{}", what());
                    assert_eq!(fast.outer_match, slow.outer_match, "{}", what());
                    assert_eq!(fast.restore_pos, slow.restore_pos, "{}", what());
                    compared += 1;
                }
            }
        }
        assert!(compared > 2_000_000, "{compared}");
    }
}
