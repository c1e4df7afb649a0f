//! Reading one raw message from a file or a stream within `max_message_bytes`: a larger one is
//! never held whole in memory. Its first `oversized_head_bytes`, its size and the SHA-256 of
//! all of it are kept instead ([`Partial`]), for the pipeline to quarantine with the reason, so
//! nothing is dropped silently and the source can move on.

use std::io::Read;
use std::path::Path;

use sha2::Digest;

use crate::limits::Limits;

/// What reading a message gave.
#[derive(Debug)]
pub enum Intake {
    /// The whole message.
    Whole(Vec<u8>),
    /// Only part of it: see [`Partial`].
    Partial(Partial),
}

/// A message casegate keeps only part of, and why.
#[derive(Debug, Clone)]
pub struct Partial {
    /// The first bytes (possibly none).
    pub head: Vec<u8>,
    /// The size of all of it.
    pub size: u64,
    /// SHA-256 (hex) of all of it, when it could be read.
    pub sha256: Option<String>,
    /// One line for the quarantine.
    pub reason: String,
}

impl Partial {
    /// The quarantine reason for a message over `policy.max_message_bytes`.
    pub fn oversized_reason(size: u64, limits: &Limits, kept: usize) -> String {
        let max = limits.max_message_bytes;
        if kept as u64 == size {
            format!(
                "message is {size} bytes, over the limit of {max} (policy.max_message_bytes): kept, not read"
            )
        } else {
            format!(
                "message is {size} bytes, over the limit of {max} (policy.max_message_bytes): not read; \
                 its first {kept} bytes, its size and the SHA-256 of all of it are kept"
            )
        }
    }
}

/// Reads a message file: its size is checked before reading (`stat`), so a file over the limit
/// is only streamed through SHA-256, never held.
pub fn read_file(path: &Path, limits: &Limits) -> std::io::Result<Intake> {
    let file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    if size > limits.max_message_bytes {
        return Ok(Intake::Partial(hash_rest(file, Vec::new(), limits)?));
    }
    // The size is known: one allocation of it (growing by doubling would reserve twice).
    read_into(file, Vec::with_capacity(size as usize + 1), limits)
}

/// Reads a message from a stream (stdin), holding at most `max_message_bytes` + 1 bytes; the
/// rest of a longer one is only hashed.
pub fn read_stream(reader: impl Read, limits: &Limits) -> std::io::Result<Intake> {
    read_into(reader, Vec::new(), limits)
}

fn read_into(reader: impl Read, mut raw: Vec<u8>, limits: &Limits) -> std::io::Result<Intake> {
    let mut reader = reader;
    let cap = limits.max_message_bytes.saturating_add(1);
    (&mut reader).take(cap).read_to_end(&mut raw)?;
    if (raw.len() as u64) <= limits.max_message_bytes {
        return Ok(Intake::Whole(raw));
    }
    Ok(Intake::Partial(hash_rest(reader, raw, limits)?))
}

/// The [`Partial`] of a message whose first bytes are `read` and the rest still in `reader`.
fn hash_rest(mut reader: impl Read, read: Vec<u8>, limits: &Limits) -> std::io::Result<Partial> {
    let mut hasher = sha2::Sha256::new();
    hasher.update(&read);
    let mut size = read.len() as u64;
    let mut head = read;
    head.truncate(limits.oversized_head_bytes);
    head.shrink_to_fit();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = &buf[..n]; // ok: read() returns n <= buf.len()
        if head.len() < limits.oversized_head_bytes {
            let want = (limits.oversized_head_bytes - head.len()).min(n);
            head.extend_from_slice(&chunk[..want]); // ok: want <= n
        }
        hasher.update(chunk);
        size += n as u64;
    }
    let kept = head.len();
    Ok(Partial {
        head,
        size,
        sha256: Some(hex::encode(hasher.finalize())),
        reason: Partial::oversized_reason(size, limits, kept),
    })
}

/// SHA-256 (hex) of `bytes`, for a [`Partial`] assembled elsewhere (IMAP chunks).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Limits {
        Limits {
            max_message_bytes: 1000,
            oversized_head_bytes: 100,
            ..Limits::default()
        }
    }

    #[test]
    fn a_message_within_the_limit_is_read_whole() {
        let raw = vec![b'a'; 1000];
        match read_stream(&raw[..], &small()).unwrap() {
            Intake::Whole(r) => assert_eq!(r, raw),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_larger_one_keeps_its_head_size_and_hash_from_a_stream_and_a_file() {
        let raw: Vec<u8> = (0..300_001u32).map(|i| (i % 251) as u8).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.eml");
        std::fs::write(&path, &raw).unwrap();
        for got in [
            read_stream(&raw[..], &small()).unwrap(),
            read_file(&path, &small()).unwrap(),
        ] {
            let Intake::Partial(p) = got else {
                panic!("{got:?}")
            };
            assert_eq!(p.head, raw[..100]);
            assert_eq!(p.size, 300_001);
            assert_eq!(p.sha256.as_deref(), Some(sha256_hex(&raw).as_str()));
            assert!(p.reason.contains("300001 bytes"), "{}", p.reason);
            assert!(p.reason.contains("max_message_bytes"), "{}", p.reason);
        }
    }
}
