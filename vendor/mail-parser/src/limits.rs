/*
 * casegate addition (not in upstream mail-parser): bounds on the work one parse may do.
 *
 * SPDX-License-Identifier: Apache-2.0 OR MIT
 */

//! Bounds on one parse. A sender chooses how deeply containers nest, how many parts and how
//! many header fields a message has; the parser stops as soon as one of these bounds is
//! passed, so neither its work nor the depth of the [`crate::Message`] tree it builds (whose
//! `Drop` recurses once per nested message) is the sender's choice.

use std::fmt;

/// Limits for [`crate::MessageParser::with_limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// How many containers (`multipart/*`, `message/rfc822`, `message/global`) may enclose an
    /// entity. The message itself is at depth 0; the parts of a top-level multipart at depth 1.
    pub max_depth: usize,
    /// MIME entities: the message itself, each body part, each part of an attached message.
    pub max_parts: usize,
    /// Header fields over all entities.
    pub max_headers: usize,
}

impl ParseLimits {
    /// No bound but the nesting depth (which keeps the tree's `Drop` on a small stack).
    pub const fn depth_only(max_depth: usize) -> ParseLimits {
        ParseLimits {
            max_depth,
            max_parts: usize::MAX,
            max_headers: usize::MAX,
        }
    }
}

impl Default for ParseLimits {
    /// What [`crate::MessageParser::parse`] applies unless told otherwise.
    fn default() -> Self {
        ParseLimits::depth_only(64)
    }
}

/// Which limit a message passed; returned by [`crate::MessageParser::parse_checked`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitExceeded {
    /// Containers nested deeper than this.
    Depth(usize),
    /// More MIME entities than this.
    Parts(usize),
    /// More header fields than this.
    Headers(usize),
    /// Not a limit: the parser lost track of which entity a delimiter closes (delimiters of
    /// nested multiparts and attached messages interleaved in a way it cannot follow; found by
    /// fuzzing). Upstream only `debug_assert!`s here and goes on with a structure that may not
    /// be the message's; casegate reads none of it.
    Structure(&'static str),
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitExceeded::Depth(n) => write!(f, "MIME containers nested more than {n} deep"),
            LimitExceeded::Parts(n) => write!(f, "more than {n} MIME parts"),
            LimitExceeded::Headers(n) => write!(f, "more than {n} header fields"),
            LimitExceeded::Structure(what) => write!(f, "MIME structure lost: {what}"),
        }
    }
}

impl std::error::Error for LimitExceeded {}

/// What one parse has used so far (shared with the parses of base64-encoded attached messages).
#[derive(Debug, Default)]
pub(crate) struct Budget {
    pub parts: usize,
    pub headers: usize,
    pub exceeded: Option<LimitExceeded>,
}
