//! `casegate store copy`: every table of one store into another, empty one — SQLite to
//! PostgreSQL when an installation grows to several instances, and back.
//!
//! Generic over the schema: the tables and their columns are read from the databases' own
//! catalogs, so a table someone adds later is copied without a change here (it needs a
//! primary key: rows are read in key order, a page at a time, so a store of any size copies
//! in bounded memory). The copy is one transaction on the target with foreign-key checks
//! deferred to its commit; before committing, every table's row count and a SHA-256 over its
//! rows (independent of order) are read back from the target and compared with the source's.
//! Any difference rolls everything back. The source is read inside one snapshot.

use sha2::{Digest, Sha256};

use super::sql::{Backend, Column, Db, Param, Value, args};
use super::{Store, StoreError};

/// Rows per page read from a table; fewer for tables with bytes columns (raw messages).
const PAGE_ROWS: i64 = 500;
const PAGE_ROWS_BYTES: i64 = 20;

/// What was copied of one table, verified on both sides.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableCopy {
    pub table: String,
    pub rows: i64,
    /// SHA-256 (hex) over the table's rows, the same on source and target.
    pub sha256: String,
}

/// The result of a verified copy.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CopyReport {
    pub schema_version: i64,
    pub tables: Vec<TableCopy>,
}

/// Copies every row of `from` into `to`, which must be an empty store of the same schema
/// version (open it with [`Store::open_at`] first: that creates the schema).
pub fn copy_store(from: &mut Store, to: &mut Store) -> Result<CopyReport, StoreError> {
    let version = from.schema_version()?;
    let target_version = to.schema_version()?;
    if version != target_version {
        return Err(StoreError::Invalid(format!(
            "the source has schema version {version} and the target {target_version}; open both with the same casegate"
        )));
    }
    let tables = from.db().tables()?;
    let target_tables = to.db().tables()?;
    if tables != target_tables {
        return Err(StoreError::Invalid(format!(
            "the stores have different tables (source: {}; target: {})",
            tables.join(", "),
            target_tables.join(", ")
        )));
    }
    // What a store holds right after its migrations ran.
    let fresh = Store::open_in_memory()?;
    let mut layouts = Vec::new();
    for t in &tables {
        let columns = from.db().columns(t)?;
        let target_columns = to.db().columns(t)?;
        let names = |cs: &[Column]| cs.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
        if names(&columns) != names(&target_columns) {
            return Err(StoreError::Invalid(format!(
                "table {t} has different columns in the two stores"
            )));
        }
        if !columns.iter().any(|c| c.pk > 0) {
            return Err(StoreError::Invalid(format!(
                "table {t} has no primary key; cannot copy it page by page"
            )));
        }
        // Empty, or holding exactly the rows the migrations seed (e.g. `generations`): those
        // are replaced by the source's.
        let count: i64 = to.db().one(&format!("SELECT count(*) FROM {t}"), args![])?;
        let seeded: i64 = fresh
            .db()
            .one(&format!("SELECT count(*) FROM {t}"), args![])?;
        let as_created = count == seeded
            && (count == 0
                || table_digest(to.db(), t, &target_columns)?
                    == table_digest(fresh.db(), t, &fresh.db().columns(t)?)?);
        if !as_created {
            return Err(StoreError::Conflict(format!(
                "the target is not empty (table {t} has {count} rows); copy into a new database"
            )));
        }
        layouts.push((t.clone(), target_columns, seeded > 0));
    }

    let source = from.db_mut().begin_snapshot()?;
    let target = to.db_mut().begin()?;
    let (src, dst) = (source.db(), target.db());
    match dst.backend() {
        Backend::Postgres => dst.batch("SET CONSTRAINTS ALL DEFERRED")?,
        Backend::Sqlite => dst.batch("PRAGMA defer_foreign_keys = ON")?,
    }
    let mut report = Vec::new();
    for (table, columns, seeded) in &layouts {
        if *seeded {
            dst.execute(&format!("DELETE FROM {table}"), args![])?;
        }
        let copied = copy_table(src, dst, table, columns)?;
        let check = table_digest(dst, table, columns)?;
        if check != copied {
            return Err(StoreError::Invalid(format!(
                "verification failed for table {table}: source {} rows (sha256 {}), target {} rows (sha256 {}); nothing was committed",
                copied.rows, copied.sha256, check.rows, check.sha256
            )));
        }
        if dst.backend() == Backend::Postgres {
            for c in columns.iter().filter(|c| c.identity) {
                // New rows continue after the copied ids.
                dst.one::<i64>(
                    &format!(
                        "SELECT setval(pg_get_serial_sequence('{table}', '{col}'),
                                       COALESCE((SELECT max({col}) FROM {table}), 0) + 1, false)",
                        col = c.name
                    ),
                    args![],
                )?;
            }
        }
        report.push(copied);
    }
    target.commit()?;
    drop(source);
    Ok(CopyReport {
        schema_version: version,
        tables: report,
    })
}

/// Copies one table page by page in primary-key order; returns its count and digest.
fn copy_table(
    src: &Db,
    dst: &Db,
    table: &str,
    columns: &[Column],
) -> Result<TableCopy, StoreError> {
    let names: Vec<String> = columns.iter().map(|c| format!("\"{}\"", c.name)).collect();
    let insert = format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        names.join(", "),
        (1..=names.len())
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut digest = RowDigests::default();
    for_each_page(src, table, columns, |rows| {
        for row in rows {
            let params: Vec<Param<'_>> = row.iter().map(Value::as_param).collect();
            dst.execute(&insert, &params)?;
            digest.add(row);
        }
        Ok(())
    })?;
    Ok(digest.finish(table))
}

/// Count and digest of a table as stored in `db`.
fn table_digest(db: &Db, table: &str, columns: &[Column]) -> Result<TableCopy, StoreError> {
    let mut digest = RowDigests::default();
    for_each_page(db, table, columns, |rows| {
        rows.iter().for_each(|r| digest.add(r));
        Ok(())
    })?;
    Ok(digest.finish(table))
}

/// Reads `table` in primary-key order, a page at a time (keyset pagination: each page starts
/// after the previous page's last key, so it stays fast however large the table).
fn for_each_page(
    db: &Db,
    table: &str,
    columns: &[Column],
    mut f: impl FnMut(&[Vec<Value>]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let names: Vec<String> = columns.iter().map(|c| format!("\"{}\"", c.name)).collect();
    let mut key: Vec<(usize, &Column)> = columns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.pk > 0)
        .collect();
    key.sort_by_key(|(_, c)| c.pk);
    let key_names: Vec<String> = key.iter().map(|(_, c)| format!("\"{}\"", c.name)).collect();
    let n = key.len();
    let page = if columns.iter().any(|c| c.sql_type == "BLOB") {
        PAGE_ROWS_BYTES
    } else {
        PAGE_ROWS
    };
    let first = format!(
        "SELECT {} FROM {table} ORDER BY {} LIMIT {page}",
        names.join(", "),
        key_names.join(", ")
    );
    let next = format!(
        "SELECT {} FROM {table} WHERE ({}) > ({}) ORDER BY {} LIMIT {page}",
        names.join(", "),
        key_names.join(", "),
        (1..=n)
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", "),
        key_names.join(", ")
    );
    let mut after: Option<Vec<Value>> = None;
    loop {
        let rows = match &after {
            None => db.rows(&first, args![])?,
            Some(k) => {
                let params: Vec<Param<'_>> = k.iter().map(Value::as_param).collect();
                db.rows(&next, &params)?
            }
        };
        let rows: Vec<Vec<Value>> = rows.into_iter().map(|r| r.0).collect();
        if let Some(last) = rows.last() {
            after = Some(key.iter().map(|(i, _)| last[*i].clone()).collect());
        }
        f(&rows)?;
        if (rows.len() as i64) < page {
            return Ok(());
        }
    }
}

/// A digest of a set of rows that does not depend on the order they were read in (the two
/// databases may sort text keys differently).
#[derive(Default)]
struct RowDigests {
    rows: Vec<[u8; 32]>,
}

impl RowDigests {
    fn add(&mut self, row: &[Value]) {
        let mut h = Sha256::new();
        for v in row {
            match v {
                Value::Null => h.update([0u8]),
                Value::Int(i) => {
                    h.update([1u8]);
                    h.update(i.to_be_bytes());
                }
                Value::Text(s) => {
                    h.update([2u8]);
                    h.update((s.len() as u64).to_be_bytes());
                    h.update(s.as_bytes());
                }
                Value::Bytes(b) => {
                    h.update([3u8]);
                    h.update((b.len() as u64).to_be_bytes());
                    h.update(b);
                }
            }
        }
        self.rows.push(h.finalize().into());
    }

    fn finish(mut self, table: &str) -> TableCopy {
        self.rows.sort_unstable();
        let mut h = Sha256::new();
        for r in &self.rows {
            h.update(r);
        }
        TableCopy {
            table: table.to_string(),
            rows: self.rows.len() as i64,
            sha256: hex::encode(h.finalize()),
        }
    }
}
