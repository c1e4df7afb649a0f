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

    pub fn mime_part(&mut self, boundary: &[u8]) -> (usize, Cow<'x, [u8]>) {
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
                // At the start of a line: the line break before it (or nothing, when the
                // part is empty) belongs to the delimiter; `end_pos` is already there.
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
