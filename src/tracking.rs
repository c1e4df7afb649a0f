//! PLACEHOLDER until the `track` branch lands: same API, minimal grammar.

use std::sync::OnceLock;

use regex::Regex;

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Case,
    Report,
    Ticket,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Case => "case",
            Kind::Report => "report",
            Kind::Ticket => "ticket",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Kind {
    type Err = TrackingError;
    fn from_str(s: &str) -> Result<Kind, TrackingError> {
        match s {
            "case" => Ok(Kind::Case),
            "report" => Ok(Kind::Report),
            "ticket" => Ok(Kind::Ticket),
            _ => Err(TrackingError::Invalid(s.to_string())),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackingNumber {
    kind: Kind,
    canonical: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TrackingError {
    #[error("{0:?} is not a tracking number")]
    Invalid(String),
    #[error("no unused number left")]
    Exhausted,
}

fn re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?i)(?:^|[^A-Za-z0-9])(VU(?:# ?| |-)([1-9][0-9]{5})|VRF# ?([0-9]{2}-(?:0[1-9]|1[0-2])-[BCDFGHJKLMNPQRSTVWXYZ]{5})|General-([1-9][0-9]{0,8}))(?:$|[^A-Za-z0-9])")
            .expect("static regex") // ok: constant pattern
    })
}

impl TrackingNumber {
    pub fn parse(s: &str) -> Result<TrackingNumber, TrackingError> {
        let found = find_in_subject(s.trim());
        match found.as_slice() {
            [one] => Ok(one.clone()),
            _ => Err(TrackingError::Invalid(s.to_string())),
        }
    }
    pub fn kind(&self) -> Kind {
        self.kind
    }
    pub fn as_str(&self) -> &str {
        &self.canonical
    }
    pub fn ticket_seq(&self) -> Option<u64> {
        self.canonical.strip_prefix("General-")?.parse().ok()
    }
}

impl std::fmt::Display for TrackingNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.canonical)
    }
}

impl std::str::FromStr for TrackingNumber {
    type Err = TrackingError;
    fn from_str(s: &str) -> Result<TrackingNumber, TrackingError> {
        TrackingNumber::parse(s)
    }
}

impl serde::Serialize for TrackingNumber {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.canonical)
    }
}

pub fn find_in_subject(subject: &str) -> Vec<TrackingNumber> {
    let mut out: Vec<TrackingNumber> = Vec::new();
    for c in re().captures_iter(subject) {
        let n = if let Some(d) = c.get(2) {
            TrackingNumber {
                kind: Kind::Case,
                canonical: format!("VU#{}", d.as_str()),
            }
        } else if let Some(r) = c.get(3) {
            TrackingNumber {
                kind: Kind::Report,
                canonical: format!("VRF#{}", r.as_str().to_uppercase()),
            }
        } else if let Some(t) = c.get(4) {
            TrackingNumber {
                kind: Kind::Ticket,
                canonical: format!("General-{}", t.as_str()),
            }
        } else {
            continue;
        };
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

pub fn mint_case(
    rng: &mut impl rand::Rng,
    mut taken: impl FnMut(&TrackingNumber) -> bool,
) -> Result<TrackingNumber, TrackingError> {
    for _ in 0..10_000 {
        let n = TrackingNumber {
            kind: Kind::Case,
            canonical: format!("VU#{}", rng.random_range(100_000..1_000_000)),
        };
        if !taken(&n) {
            return Ok(n);
        }
    }
    Err(TrackingError::Exhausted)
}

pub fn mint_report(
    now: chrono::DateTime<chrono::Utc>,
    rng: &mut impl rand::Rng,
    mut taken: impl FnMut(&TrackingNumber) -> bool,
) -> Result<TrackingNumber, TrackingError> {
    const L: &[u8] = b"BCDFGHJKLMNPQRSTVWXYZ";
    for _ in 0..10_000 {
        let letters: String = (0..5)
            .map(|_| L[rng.random_range(0..L.len())] as char)
            .collect();
        let n = TrackingNumber {
            kind: Kind::Report,
            canonical: format!("VRF#{}-{}", now.format("%y-%m"), letters),
        };
        if !taken(&n) {
            return Ok(n);
        }
    }
    Err(TrackingError::Exhausted)
}

pub fn ticket(seq: u64) -> Result<TrackingNumber, TrackingError> {
    if !(1..=999_999_999).contains(&seq) {
        return Err(TrackingError::Invalid(seq.to_string()));
    }
    Ok(TrackingNumber {
        kind: Kind::Ticket,
        canonical: format!("General-{seq}"),
    })
}
