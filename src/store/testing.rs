//! Store tests on both backends: [`for_each_backend`] runs a test on an in-memory SQLite store
//! and on a real PostgreSQL (this test process's own cluster, a fresh schema per store).

use std::sync::atomic::{AtomicU64, Ordering};

use super::{PgTarget, Store};

#[path = "../../tests/support/postgres.rs"]
mod harness;

pub(crate) use harness::PgServer;

/// The test cluster of this process.
pub(crate) fn server() -> &'static PgServer {
    PgServer::shared()
}

/// A target on the test cluster's database `casegate`, in a schema of its own.
pub(crate) fn fresh_target() -> PgTarget {
    static N: AtomicU64 = AtomicU64::new(0);
    let server = server();
    let base = PgTarget::new(&server.url("casegate"), Some(&server.password), None)
        .expect("test PostgreSQL target");
    let schema = format!("s{}", N.fetch_add(1, Ordering::Relaxed));
    base.connect()
        .expect("connect to the test PostgreSQL")
        .batch(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        ))
        .expect("create schema");
    base.with_options(&format!("-c search_path={schema}"))
}

/// A new, empty store on PostgreSQL.
pub(crate) fn postgres_store() -> Store {
    Store::open_postgres(&fresh_target()).expect("open the PostgreSQL store")
}

/// Runs `test` on SQLite, then on PostgreSQL. A failure's output says which.
pub(crate) fn for_each_backend(test: impl Fn(Store)) {
    eprintln!("--- store test on SQLite");
    test(Store::open_in_memory().expect("in-memory store"));
    eprintln!("--- store test on PostgreSQL");
    test(postgres_store());
}

/// Runs `test` with a way to open more connections to one and the same store: a SQLite file,
/// then a PostgreSQL schema. For tests of several writers at once.
pub(crate) fn for_each_shared_backend(test: impl Fn(&(dyn Fn() -> Store + Sync))) {
    eprintln!("--- store test on SQLite (file)");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("s.sqlite");
    test(&|| Store::open(&path).expect("open SQLite store"));
    eprintln!("--- store test on PostgreSQL");
    let target = fresh_target();
    test(&|| Store::open_postgres(&target).expect("open PostgreSQL store"));
}
