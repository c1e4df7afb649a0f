//! The durable outbox's tables (owned by the outbound work; placeholder until it lands).

pub(super) const MIGRATION: &str = "
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY
);
";
