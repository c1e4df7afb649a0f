/*
 * SPDX-FileCopyrightText: 2020 Stalwart Labs LLC <hello@stalw.art>
 *
 * SPDX-License-Identifier: Apache-2.0 OR MIT
 */

use std::{iter::Peekable, ops::Range, slice::Iter};

pub mod fields;
pub mod header;
pub mod message;
pub mod mime;
pub mod preview;

pub struct MessageStream<'x> {
    data: &'x [u8],
    iter: Peekable<Iter<'x, u8>>,
    pos: usize,
    restore_pos: usize,
    /// casegate: how many more header fields `parse_headers` may collect into one list.
    pub(crate) header_room: usize,
    /// casegate: `parse_headers` stopped because `header_room` ran out.
    pub(crate) header_room_exhausted: bool,
    /// casegate: the boundaries of the multiparts that enclose the current position, innermost
    /// last. A delimiter line of any of them ends the part being read (RFC 2046 §5.1.1: a
    /// boundary delimiter cannot occur inside an encapsulated part).
    pub(crate) fences: Vec<Vec<u8>>,
    /// casegate: the last delimiter taken belonged to `fences[i]`, an enclosing multipart, not
    /// to the one being read: the multiparts inside `fences[i]` ended without a close delimiter.
    pub(crate) outer_match: Option<usize>,
    /// casegate: offset of the first `-` of the last delimiter taken.
    pub(crate) last_dash: usize,
}

impl<'x> MessageStream<'x> {
    pub fn new(data: &'x [u8]) -> MessageStream<'x> {
        MessageStream {
            data,
            iter: data.iter().peekable(),
            pos: 0,
            restore_pos: 0,
            header_room: usize::MAX,
            header_room_exhausted: false,
            fences: Vec::new(),
            outer_match: None,
            last_dash: 0,
        }
    }

    #[inline(always)]
    pub fn peek(&mut self) -> Option<&&u8> {
        self.iter.peek()
    }

    #[inline(always)]
    pub fn offset(&self) -> usize {
        std::cmp::min(self.pos, self.data.len())
    }

    #[inline(always)]
    pub fn remaining(&self) -> usize {
        self.data.len() - self.offset()
    }

    #[inline(always)]
    pub fn checkpoint(&mut self) {
        self.restore_pos = self.offset();
    }

    #[inline(always)]
    pub fn restore(&mut self) {
        self.iter = self.data[self.restore_pos..].iter().peekable();
        self.pos = self.restore_pos;
        self.restore_pos = 0;
    }

    #[inline(always)]
    pub fn reset(&mut self) {
        self.restore_pos = 0;
    }

    #[inline(always)]
    pub fn peek_bytes(&self, len: usize) -> Option<&[u8]> {
        let pos = self.offset();
        self.data.get(pos..pos + len)
    }

    #[inline(always)]
    pub fn peek_char(&mut self, ch: u8) -> bool {
        matches!(self.peek(), Some(&&ch_) if ch_ == ch)
    }

    #[inline(always)]
    pub fn skip_bytes(&mut self, len: usize) {
        self.pos += len;
        self.iter = self.data[self.pos..].iter().peekable();
    }

    #[inline(always)]
    pub fn try_skip(&mut self, bytes: &[u8]) -> bool {
        if self.peek_bytes(bytes.len()) == Some(bytes) {
            self.skip_bytes(bytes.len());
            true
        } else {
            false
        }
    }

    #[inline(always)]
    pub fn try_skip_char(&mut self, ch: u8) -> bool {
        if self.peek_char(ch) {
            self.next();
            true
        } else {
            false
        }
    }

    #[inline(always)]
    pub fn bytes(&self, range: Range<usize>) -> &'x [u8] {
        self.data.get(range).unwrap_or_default()
    }

    /// casegate: moves the stream to `pos` (at most the end of the data).
    #[inline(always)]
    pub(crate) fn seek_to(&mut self, pos: usize) {
        self.pos = pos.min(self.data.len());
        self.iter = self.data[self.pos..].iter().peekable();
    }

    #[inline(always)]
    pub fn seek_end(&mut self) {
        self.pos = self.data.len();
        self.iter = [][..].iter().peekable();
    }

    #[inline(always)]
    pub fn next_is_space(&mut self) -> bool {
        matches!(self.next(), Some(b' ' | b'\t'))
    }

    #[inline(always)]
    pub fn peek_next_is_space(&mut self) -> bool {
        matches!(self.peek(), Some(b' ' | b'\t'))
    }

    #[inline(always)]
    pub fn try_next_is_space(&mut self) -> bool {
        if self.peek_next_is_space() {
            self.next();
            true
        } else {
            false
        }
    }

    #[allow(clippy::len_without_is_empty)]
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// casegate: whether the `--` just read (the last two bytes) starts a delimiter line
    /// (RFC 2046 §5.1.1; see [`mime::is_delimiter`]) of `boundary` or of an enclosing multipart
    /// ([`MessageStream::fences`]). If so the boundary is consumed, `last_dash` is set and, for
    /// an enclosing one, `outer_match`.
    pub(crate) fn take_delimiter(&mut self, boundary: &[u8]) -> bool {
        let Some(dash) = self.offset().checked_sub(2) else {
            return false;
        };
        let len = if mime::is_delimiter(self.data, dash, boundary) {
            boundary.len()
        } else {
            match self.fence_at(dash, boundary) {
                Some(i) => {
                    self.outer_match = Some(i);
                    self.fences[i].len()
                }
                None => return false,
            }
        };
        self.skip_bytes(len);
        self.last_dash = dash;
        true
    }

    /// casegate: the innermost enclosing multipart (other than `own`) whose delimiter line
    /// starts at `dash`.
    pub(crate) fn fence_at(&self, dash: usize, own: &[u8]) -> Option<usize> {
        (0..self.fences.len())
            .rev()
            .find(|&i| self.fences[i] != own && mime::is_delimiter(self.data, dash, &self.fences[i]))
    }

    /// casegate: where the content before the last delimiter taken ends: before the line
    /// break that precedes the delimiter (it belongs to the delimiter).
    pub(crate) fn end_before_last_delimiter(&self) -> usize {
        let dash = self.last_dash;
        match (dash.checked_sub(2).and_then(|i| self.data.get(i)), self.data.get(dash.wrapping_sub(1))) {
            (Some(b'\r'), Some(b'\n')) => dash - 2,
            (_, Some(b'\n')) => dash - 1,
            _ => dash,
        }
    }

    #[inline(always)]
    pub fn is_eof(&mut self) -> bool {
        self.iter.peek().is_none()
    }
}

impl<'x> Iterator for MessageStream<'x> {
    type Item = &'x u8;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        self.pos += 1;
        self.iter.next()
    }
}
