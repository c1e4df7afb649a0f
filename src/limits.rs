//! What one inbound message may cost: bytes, nesting, parts, header fields, decoded bytes, and
//! how often it may fail before it is given up (quarantined) so the mail behind it goes on.
//!
//! Why in one place: a sender chooses every one of these numbers, and each stage (reading the
//! source, parsing, opening) must stop at the same bound with its own reason, so an analyst
//! reading the quarantine knows which bound a message passed. Config: the `[limits]` table,
//! plus `[policy] max_message_bytes` (where it has always been).

use serde::Deserialize;

/// The bounds, with the defaults documented in `config/casegate.example.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest message read at all (`[policy] max_message_bytes`, not a `[limits]` key): a
    /// larger one is never read whole; its first `oversized_head_bytes`, its size and the
    /// SHA-256 of all of it are quarantined.
    #[serde(skip)]
    pub max_message_bytes: u64,
    /// MIME containers (multipart, attached message) and OpenPGP layers nested in each other.
    pub max_nesting_depth: usize,
    /// MIME entities in one message (the message, each part, each part of an attached one).
    pub max_parts: usize,
    /// Header fields in one message, over all its parts.
    pub max_headers: usize,
    /// Bytes a message may decode to: MIME bodies after base64/quoted-printable, and
    /// everything decryption and decompression produce.
    pub max_decoded_bytes: u64,
    /// How much of an oversized message is kept in quarantine.
    pub oversized_head_bytes: usize,
    /// A Maildir file or IMAP message that failed this many times for a reason other than the
    /// store (a crash of the whole process while reading it included) is quarantined unread
    /// the next time, so it cannot hold up the mail behind it.
    pub max_attempts: u32,
}

/// The largest `max_message_bytes`: SQLite's limit on one value is 1,000,000,000 bytes.
pub const MAX_STORABLE_BYTES: u64 = 900_000_000;

/// `[policy] max_message_bytes` when not set: 100 MiB holds a 50 MB attachment (base64).
pub const DEFAULT_MAX_MESSAGE_BYTES: u64 = 100 << 20;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_nesting_depth: 32,
            max_parts: 10_000,
            max_headers: 50_000,
            max_decoded_bytes: 256 << 20,
            oversized_head_bytes: 64 << 10,
            max_attempts: 3,
        }
    }
}

impl Limits {
    /// The same bounds for mail-parser (vendor/mail-parser/CASEGATE.md).
    pub fn parse_limits(&self) -> mail_parser::ParseLimits {
        mail_parser::ParseLimits {
            max_depth: self.max_nesting_depth,
            max_parts: self.max_parts,
            max_headers: self.max_headers,
        }
    }

    /// `max_decoded_bytes` as a size in memory.
    pub fn decoded_budget(&self) -> usize {
        usize::try_from(self.max_decoded_bytes).unwrap_or(usize::MAX)
    }

    /// Rejects values that would make casegate refuse all mail or none of the bounds hold.
    pub fn validate(&self) -> Result<(), String> {
        let checks = [
            // SQLite stores at most 1e9 bytes in one value; a larger message would fail its
            // commit forever (a store failure, retried): refuse the setting instead.
            (
                "policy.max_message_bytes",
                (1..=MAX_STORABLE_BYTES).contains(&self.max_message_bytes),
            ),
            (
                "limits.max_nesting_depth",
                (2..=1000).contains(&self.max_nesting_depth),
            ),
            ("limits.max_parts", self.max_parts >= 1),
            ("limits.max_headers", self.max_headers >= 1),
            ("limits.max_decoded_bytes", self.max_decoded_bytes >= 1),
            ("limits.max_attempts", self.max_attempts >= 1),
        ];
        match checks.iter().find(|(_, ok)| !ok) {
            Some((key, _)) => Err(format!(
                "{key} is out of range (see config/casegate.example.toml for sensible values)"
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_reach_the_parser() {
        let l = Limits::default();
        assert!(l.validate().is_ok());
        assert_eq!(l.parse_limits().max_depth, 32);
        let bad = Limits {
            max_nesting_depth: 1,
            ..l
        };
        assert!(bad.validate().unwrap_err().contains("max_nesting_depth"));
        let huge = Limits {
            max_message_bytes: 2 << 30,
            ..l
        };
        assert!(huge.validate().unwrap_err().contains("max_message_bytes"));
    }
}
