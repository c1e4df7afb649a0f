//! The store's SQL layer: one connection type, [`Db`], over two databases (SQLite through
//! rusqlite, PostgreSQL through tokio-postgres), so every store method is written once.
//!
//! What it gives a store method:
//! - statements with numbered placeholders `?1, ?2, …` (rewritten to `$1, $2, …` for
//!   PostgreSQL) and arguments built with [`args!`] from `i64`/`u32`/`bool`/`&str`/`String`/
//!   bytes/`Option`s of them;
//! - rows as [`Row`]: values read by column index into `i64`, `u32`, `bool`, `String`,
//!   `Vec<u8>` or an `Option` of one;
//! - [`Db::write`]: a closure run in one transaction (SQLite `BEGIN IMMEDIATE`; PostgreSQL
//!   `SERIALIZABLE`), run again when PostgreSQL reports a conflict with a concurrent
//!   transaction, so it must have no effect outside the database;
//! - [`Db::begin`]: a guard for a transaction that cannot be replayed (rows streamed in while
//!   they are produced); it only inserts new rows, runs at READ COMMITTED on PostgreSQL, and
//!   rolls back when dropped uncommitted.
//!
//! Values are of four kinds only (null, 64-bit integer, text, bytes): booleans are integers 0/1
//! and times RFC 3339 text, in both databases.

use std::cell::Cell;
use std::time::Duration;

use super::StoreError;
use super::postgres::PgConn;

/// One value read from a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

/// One statement argument (borrowed: message bytes are not copied to be bound).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Param<'a> {
    Null,
    Int(i64),
    Text(&'a str),
    Bytes(&'a [u8]),
}

impl Value {
    pub(crate) fn as_param(&self) -> Param<'_> {
        match self {
            Value::Null => Param::Null,
            Value::Int(i) => Param::Int(*i),
            Value::Text(s) => Param::Text(s),
            Value::Bytes(b) => Param::Bytes(b),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Int(_) => "an integer",
            Value::Text(_) => "text",
            Value::Bytes(_) => "bytes",
        }
    }
}

/// What can be bound to a placeholder.
pub(crate) trait ToParam {
    fn to_param(&self) -> Param<'_>;
}

impl ToParam for i64 {
    fn to_param(&self) -> Param<'_> {
        Param::Int(*self)
    }
}
impl ToParam for i32 {
    fn to_param(&self) -> Param<'_> {
        Param::Int(i64::from(*self))
    }
}
impl ToParam for u32 {
    fn to_param(&self) -> Param<'_> {
        Param::Int(i64::from(*self))
    }
}
impl ToParam for bool {
    fn to_param(&self) -> Param<'_> {
        Param::Int(i64::from(*self))
    }
}
impl ToParam for str {
    fn to_param(&self) -> Param<'_> {
        Param::Text(self)
    }
}
impl ToParam for String {
    fn to_param(&self) -> Param<'_> {
        Param::Text(self)
    }
}
impl ToParam for [u8] {
    fn to_param(&self) -> Param<'_> {
        Param::Bytes(self)
    }
}
impl ToParam for Vec<u8> {
    fn to_param(&self) -> Param<'_> {
        Param::Bytes(self)
    }
}
impl<T: ToParam> ToParam for Option<T> {
    fn to_param(&self) -> Param<'_> {
        match self {
            Some(v) => v.to_param(),
            None => Param::Null,
        }
    }
}
impl<T: ToParam + ?Sized> ToParam for &T {
    fn to_param(&self) -> Param<'_> {
        (**self).to_param()
    }
}
impl ToParam for Param<'_> {
    fn to_param(&self) -> Param<'_> {
        *self
    }
}

/// The arguments of one statement: `args![thread_id, address, None::<&str>]`.
macro_rules! args {
    ($($e:expr),* $(,)?) => {
        &[$($crate::store::sql::ToParam::to_param(&$e)),*][..]
    };
}
pub(crate) use args;

/// What a column value can be read as.
pub(crate) trait FromValue: Sized {
    fn from_value(v: &Value) -> Result<Self, String>;
}

impl FromValue for Value {
    fn from_value(v: &Value) -> Result<Self, String> {
        Ok(v.clone())
    }
}
impl FromValue for i64 {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Int(i) => Ok(*i),
            other => Err(format!("expected an integer, found {}", other.kind())),
        }
    }
}
impl FromValue for u32 {
    fn from_value(v: &Value) -> Result<Self, String> {
        let i = i64::from_value(v)?;
        u32::try_from(i).map_err(|_| format!("{i} is out of range for a 32-bit unsigned number"))
    }
}
impl FromValue for bool {
    fn from_value(v: &Value) -> Result<Self, String> {
        Ok(i64::from_value(v)? != 0)
    }
}
impl FromValue for String {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Text(s) => Ok(s.clone()),
            other => Err(format!("expected text, found {}", other.kind())),
        }
    }
}
impl FromValue for Vec<u8> {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Bytes(b) => Ok(b.clone()),
            other => Err(format!("expected bytes, found {}", other.kind())),
        }
    }
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// One result row, read by column index.
#[derive(Debug, Clone)]
pub(crate) struct Row(pub(crate) Vec<Value>);

impl Row {
    pub(crate) fn get<T: FromValue>(&self, i: usize) -> Result<T, StoreError> {
        let v = self
            .0
            .get(i)
            .ok_or_else(|| StoreError::Invalid(format!("no result column {i}")))?;
        T::from_value(v).map_err(|e| StoreError::Invalid(format!("result column {i}: {e}")))
    }
}

/// Which database a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

enum Conn {
    Sqlite(rusqlite::Connection),
    Postgres(Box<PgConn>),
}

/// A connection to the store's database. Statements outside a transaction commit on their own.
pub(crate) struct Db {
    conn: Conn,
    /// Open transaction scopes: 0 none, 1 a transaction, more: savepoints inside it.
    depth: Cell<u32>,
    /// A statement in the current transaction failed for a concurrent transaction (PostgreSQL
    /// serialization failure, deadlock, unique key taken): the whole transaction may run again.
    conflict: Cell<bool>,
    /// Transactions committed on this connection (not savepoints): what group commit saves is
    /// visible to tests and benchmarks.
    commits: Cell<u64>,
    /// SQLite virtual-machine steps run on this connection (0 on PostgreSQL): the work the
    /// statements did, whatever the machine's speed, so tests can see a query that walks a
    /// whole table where it should look up an index.
    steps: Cell<u64>,
    /// Statements SQLite compiled again before running them (see `Store::prepare_sqlite`).
    reprepares: Cell<u64>,
    /// Scopes nested in the open transaction are not savepoints ([`Db::without_savepoints`]).
    flat: Cell<bool>,
    /// A nested scope failed in a flat transaction: its writes cannot be undone alone, so the
    /// whole transaction is rolled back instead of committed.
    poisoned: Cell<bool>,
    /// The queue of the SQLite file's writers in this process (none in memory or on PostgreSQL):
    /// a write transaction begins in its turn, see [`super::turns`].
    turns: Option<std::sync::Arc<super::turns::WriteTurns>>,
    /// The turn the open write transaction holds.
    turn: std::cell::RefCell<Option<super::turns::Turn>>,
}

/// One open scope (see [`Db::open_scope`]): its nesting level, 0 for the transaction itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scope(u32);

/// How often [`Db::write`] runs a closure that PostgreSQL aborted for a concurrent transaction.
const WRITE_ATTEMPTS: u32 = 30;

/// Longest wait in this process's queue of writers (then SQLite's busy wait, as for a writer
/// of another process): a transaction that holds its turn this long is stuck, not busy.
const TURN_WAIT: Duration = Duration::from_secs(10);

impl Db {
    /// `turns`: the queue of the file's writers in this process (none in memory).
    pub(crate) fn sqlite(
        conn: rusqlite::Connection,
        turns: Option<std::sync::Arc<super::turns::WriteTurns>>,
    ) -> Db {
        Db {
            conn: Conn::Sqlite(conn),
            depth: Cell::new(0),
            conflict: Cell::new(false),
            commits: Cell::new(0),
            steps: Cell::new(0),
            reprepares: Cell::new(0),
            flat: Cell::new(false),
            poisoned: Cell::new(false),
            turns,
            turn: std::cell::RefCell::new(None),
        }
    }

    /// Transactions committed on this connection so far.
    pub(crate) fn commits(&self) -> u64 {
        self.commits.get()
    }

    /// SQLite virtual-machine steps run on this connection so far (see `steps`).
    pub(crate) fn steps(&self) -> u64 {
        self.steps.get()
    }

    /// Statements re-compiled on this connection so far (see `reprepares`).
    pub(crate) fn reprepares(&self) -> u64 {
        self.reprepares.get()
    }

    fn count_steps(&self, stmt: &rusqlite::Statement<'_>) {
        use rusqlite::StatementStatus::{RePrepare, VmStep};
        let add =
            |c: &Cell<u64>, n: i32| c.set(c.get().saturating_add(u64::try_from(n).unwrap_or(0)));
        add(&self.steps, stmt.reset_status(VmStep));
        add(&self.reprepares, stmt.reset_status(RePrepare));
    }

    pub(crate) fn postgres(conn: PgConn) -> Db {
        Db {
            conn: Conn::Postgres(Box::new(conn)),
            depth: Cell::new(0),
            conflict: Cell::new(false),
            commits: Cell::new(0),
            steps: Cell::new(0),
            reprepares: Cell::new(0),
            flat: Cell::new(false),
            poisoned: Cell::new(false),
            turns: None,
            turn: std::cell::RefCell::new(None),
        }
    }

    pub(crate) fn backend(&self) -> Backend {
        match self.conn {
            Conn::Sqlite(_) => Backend::Sqlite,
            Conn::Postgres(_) => Backend::Postgres,
        }
    }

    /// The SQLite connection, for what only SQLite has (pragmas, WAL checkpoints).
    pub(crate) fn sqlite_conn(&self) -> Option<&rusqlite::Connection> {
        match &self.conn {
            Conn::Sqlite(c) => Some(c),
            Conn::Postgres(_) => None,
        }
    }

    /// Runs one statement; returns the number of rows it changed.
    pub(crate) fn execute(&self, sql: &str, args: &[Param<'_>]) -> Result<u64, StoreError> {
        match &self.conn {
            Conn::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let n = stmt.execute(rusqlite::params_from_iter(args.iter()))? as u64;
                self.count_steps(&stmt);
                Ok(n)
            }
            Conn::Postgres(c) => self.noted(c.execute(sql, args)),
        }
    }

    /// Runs an INSERT of one row (written without RETURNING) into a table keyed by `id`, and
    /// returns the new row's `id`; `None` when its `ON CONFLICT ... DO NOTHING` left it out.
    ///
    /// SQLite runs a RETURNING clause as a trigger: the statement then keeps a journal of its
    /// own of every page it changes (in case the trigger fails half-way) and an ephemeral table
    /// for the rows it returns. That was a third of the cost of a new ticket's inserts, and the
    /// key is at hand without it (the connection's last rowid). PostgreSQL gets `RETURNING id`.
    pub(crate) fn insert(&self, sql: &str, args: &[Param<'_>]) -> Result<Option<i64>, StoreError> {
        debug_assert!(
            !sql.to_ascii_uppercase().contains("RETURNING"),
            "Db::insert adds what it returns: {sql}"
        );
        match &self.conn {
            Conn::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let n = stmt.execute(rusqlite::params_from_iter(args.iter()))?;
                self.count_steps(&stmt);
                Ok((n > 0).then(|| c.last_insert_rowid()))
            }
            Conn::Postgres(c) => {
                let rows = self.noted(c.query(&format!("{sql} RETURNING id"), args))?;
                rows.into_iter().next().map(|r| r.get(0)).transpose()
            }
        }
    }

    /// [`Db::insert`] of a row that is always inserted (no `DO NOTHING`).
    pub(crate) fn insert_new(&self, sql: &str, args: &[Param<'_>]) -> Result<i64, StoreError> {
        self.insert(sql, args)?
            .ok_or_else(|| StoreError::Invalid(format!("no row inserted: {}", first_line(sql))))
    }

    /// Every row a query returns.
    pub(crate) fn rows(&self, sql: &str, args: &[Param<'_>]) -> Result<Vec<Row>, StoreError> {
        match &self.conn {
            Conn::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let width = stmt.column_count();
                let mut rows = stmt.query(rusqlite::params_from_iter(args.iter()))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    let mut values = Vec::with_capacity(width);
                    for i in 0..width {
                        values.push(sqlite_value(r.get_ref(i)?)?);
                    }
                    out.push(Row(values));
                }
                drop(rows);
                self.count_steps(&stmt);
                Ok(out)
            }
            Conn::Postgres(c) => self.noted(c.query(sql, args)),
        }
    }

    /// The first row, if any.
    pub(crate) fn row(&self, sql: &str, args: &[Param<'_>]) -> Result<Option<Row>, StoreError> {
        Ok(self.rows(sql, args)?.into_iter().next())
    }

    /// Every row, turned into `T` by `f`.
    pub(crate) fn map<T>(
        &self,
        sql: &str,
        args: &[Param<'_>],
        f: impl FnMut(&Row) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        self.rows(sql, args)?.iter().map(f).collect()
    }

    /// The first column of the first row; an error when there is no row.
    pub(crate) fn one<T: FromValue>(&self, sql: &str, args: &[Param<'_>]) -> Result<T, StoreError> {
        match self.row(sql, args)? {
            Some(r) => r.get(0),
            None => Err(StoreError::Invalid(format!(
                "query returned no row: {}",
                first_line(sql)
            ))),
        }
    }

    /// The first column of the first row, or `None` when there is no row.
    pub(crate) fn opt<T: FromValue>(
        &self,
        sql: &str,
        args: &[Param<'_>],
    ) -> Result<Option<T>, StoreError> {
        match self.row(sql, args)? {
            Some(r) => r.get(0).map(Some),
            None => Ok(None),
        }
    }

    /// Runs several statements without arguments (schema changes). PostgreSQL gets the text as
    /// it is: translate it first ([`postgres_ddl`]).
    pub(crate) fn batch(&self, sql: &str) -> Result<(), StoreError> {
        match &self.conn {
            Conn::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Conn::Postgres(c) => c.batch(sql),
        }
    }

    /// Runs `f` in one transaction and commits it. On PostgreSQL the transaction is
    /// SERIALIZABLE: the outcome is that of some one-at-a-time order, as with SQLite's single
    /// writer; when PostgreSQL aborts it for a concurrent one, `f` runs again (bounded, with
    /// a short random pause). So `f` must touch nothing but the database. Inside another
    /// transaction (`Store::atomically`) it is a savepoint, and the outermost one runs again.
    pub(crate) fn write<T>(
        &mut self,
        mut f: impl FnMut(&Db) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let scope = self.open_scope()?;
            match f(self) {
                Ok(v) => match self.close_scope(scope, true) {
                    Ok(()) => return Ok(v),
                    Err(e) if self.retry_scope(scope, &e, attempt) => continue,
                    Err(e) => return Err(e),
                },
                Err(e) => {
                    let _ = self.close_scope(scope, false);
                    if self.retry_scope(scope, &e, attempt) {
                        continue;
                    }
                    return Err(e);
                }
            }
        }
    }

    /// Until [`Db::end_flat`], the scopes nested in the next transaction are no savepoints: for
    /// a transaction that is given up whole when anything in it fails (a group commit), where
    /// a savepoint per message only costs (SQLite journals every page it changes under one). A
    /// nested scope that fails anyway makes the transaction roll back whole at its end. Does
    /// nothing (`false`) inside a transaction already open.
    pub(crate) fn begin_flat(&self) -> bool {
        if self.depth.get() > 0 {
            return false;
        }
        self.flat.set(true);
        true
    }

    /// See [`Db::begin_flat`].
    pub(crate) fn end_flat(&self) {
        self.flat.set(false);
    }

    /// Starts a transaction (SERIALIZABLE on PostgreSQL), or a savepoint inside the open one.
    pub(crate) fn open_scope(&self) -> Result<Scope, StoreError> {
        self.open(Mode::Serializable)
    }

    fn open(&self, mode: Mode) -> Result<Scope, StoreError> {
        let level = self.depth.get();
        if level == 0 {
            self.conflict.set(false);
            self.poisoned.set(false);
            match &self.conn {
                Conn::Sqlite(c) if matches!(mode, Mode::Snapshot) => {
                    c.execute_batch("BEGIN DEFERRED")?
                }
                // IMMEDIATE: take the write lock at once (waiting up to the busy timeout), so
                // a transaction never fails half-way because another process began writing.
                // Writers of this process queue for it first, in order (see `turns`).
                Conn::Sqlite(c) => {
                    let turn = self.turns.as_ref().and_then(|t| t.take(TURN_WAIT));
                    *self.turn.borrow_mut() = turn;
                    if let Err(e) = c.execute_batch("BEGIN IMMEDIATE") {
                        self.turn.borrow_mut().take();
                        return Err(e.into());
                    }
                }
                Conn::Postgres(c) => c.batch(match mode {
                    Mode::Serializable => "BEGIN ISOLATION LEVEL SERIALIZABLE",
                    Mode::Guard => "BEGIN ISOLATION LEVEL READ COMMITTED",
                    Mode::Snapshot => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                })?,
            }
        } else if !self.flat.get() {
            self.batch(&format!("SAVEPOINT casegate_{level}"))?;
        }
        self.depth.set(level + 1);
        Ok(Scope(level))
    }

    /// Ends a scope: commits (or releases the savepoint) when `commit`, else rolls it back.
    pub(crate) fn close_scope(&self, scope: Scope, commit: bool) -> Result<(), StoreError> {
        let done = self.end_scope(scope, commit);
        if self.depth.get() == 0 {
            // The transaction is over, committed or not: the next writer's turn.
            self.turn.borrow_mut().take();
        }
        done
    }

    fn end_scope(&self, scope: Scope, commit: bool) -> Result<(), StoreError> {
        let Scope(level) = scope;
        self.depth.set(level);
        if level > 0 && self.flat.get() {
            if !commit {
                self.poisoned.set(true);
            }
            return Ok(());
        }
        if level == 0 && commit && self.poisoned.replace(false) {
            let _ = self.batch("ROLLBACK");
            return Err(StoreError::Invalid(
                "a write inside the transaction failed and could not be undone alone: nothing of it was stored".into(),
            ));
        }
        let sql = match (level, commit) {
            (0, true) => "COMMIT".to_string(),
            (0, false) => "ROLLBACK".to_string(),
            (l, true) => format!("RELEASE casegate_{l}"),
            (l, false) => format!("ROLLBACK TO casegate_{l}; RELEASE casegate_{l}"),
        };
        let done = self.batch(&sql);
        if done.is_ok() && level == 0 && commit {
            self.commits.set(self.commits.get() + 1);
        }
        if done.is_err() && level > 0 && !commit {
            // The savepoint cannot be undone alone (the connection broke): the transaction is
            // lost; make sure it is rolled back whole.
            let _ = self.batch("ROLLBACK");
            self.depth.set(0);
        }
        if done.is_err() && level == 0 && commit {
            let _ = self.batch("ROLLBACK");
        }
        done
    }

    /// After `scope` ended with `err`: whether to run it again (the whole transaction only,
    /// when a concurrent one got in its way; bounded; after a short random pause).
    pub(crate) fn retry_scope(&self, scope: Scope, err: &StoreError, attempt: u32) -> bool {
        let conflict = err.is_transient_conflict() || self.conflict.replace(false);
        if scope.0 != 0 || attempt >= WRITE_ATTEMPTS || !conflict {
            return false;
        }
        // Random, and longer the more often it collided: writers that keep meeting spread out.
        let pause = rand::random_range(1..=10u64) * u64::from(attempt.min(20));
        std::thread::sleep(Duration::from_millis(pause));
        true
    }

    /// Starts a transaction that is committed with [`TxGuard::commit`] and rolled back when the
    /// guard is dropped before. Not run again on a conflict, and at READ COMMITTED on
    /// PostgreSQL: use it only to insert new rows, or where row locks (`FOR UPDATE SKIP
    /// LOCKED`) keep writers apart. Inside another transaction it is a savepoint.
    pub(crate) fn begin(&mut self) -> Result<TxGuard<'_>, StoreError> {
        let scope = self.open(Mode::Guard)?;
        Ok(TxGuard {
            db: self,
            scope: Some(scope),
        })
    }

    /// Starts a read-only transaction that sees one consistent state of the store throughout
    /// (for reading a whole store, `store copy`). Ended when the guard is dropped.
    pub(crate) fn begin_snapshot(&mut self) -> Result<TxGuard<'_>, StoreError> {
        if self.depth.get() > 0 {
            return Err(StoreError::Invalid(
                "a snapshot cannot start inside a transaction".into(),
            ));
        }
        let scope = self.open(Mode::Snapshot)?;
        Ok(TxGuard {
            db: self,
            scope: Some(scope),
        })
    }

    /// Notes a failed statement: a conflict with a concurrent transaction dooms the whole
    /// transaction, which may then run again.
    fn noted<T>(&self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(e) = &r
            && e.is_transient_conflict()
        {
            self.conflict.set(true);
        }
        r
    }

    // ----- catalog: what `store copy` and the schema tests need to know about tables -----

    /// The casegate tables, in name order (the schema-version table left out).
    pub(crate) fn tables(&self) -> Result<Vec<String>, StoreError> {
        let sql = match self.backend() {
            Backend::Sqlite => {
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
                 ORDER BY name"
            }
            Backend::Postgres => {
                "SELECT table_name::text FROM information_schema.tables
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
                   AND table_name <> 'casegate_schema' ORDER BY table_name"
            }
        };
        self.map(sql, args![], |r| r.get(0))
    }

    /// A table's columns in declaration order: (name, type as written for SQLite, not null,
    /// position in the primary key or 0).
    pub(crate) fn columns(&self, table: &str) -> Result<Vec<Column>, StoreError> {
        match self.backend() {
            Backend::Sqlite => self.map(
                "SELECT name, upper(type), \"notnull\", pk FROM pragma_table_info(?1) ORDER BY cid",
                args![table],
                |r| {
                    Ok(Column {
                        name: r.get(0)?,
                        sql_type: r.get(1)?,
                        not_null: r.get::<i64>(2)? != 0 || r.get::<i64>(3)? == 1,
                        pk: r.get(3)?,
                        identity: false,
                    })
                },
            ),
            Backend::Postgres => self.map(
                "SELECT c.column_name::text,
                        CASE c.data_type WHEN 'bigint' THEN 'INTEGER' WHEN 'bytea' THEN 'BLOB'
                             WHEN 'text' THEN 'TEXT' ELSE upper(c.data_type::text) END,
                        CASE WHEN c.is_nullable = 'NO' THEN 1 ELSE 0 END,
                        COALESCE((SELECT k.ordinal_position FROM information_schema.key_column_usage k
                                  JOIN information_schema.table_constraints tc
                                    ON tc.constraint_name = k.constraint_name
                                   AND tc.table_schema = k.table_schema
                                  WHERE tc.constraint_type = 'PRIMARY KEY'
                                    AND k.table_schema = c.table_schema AND k.table_name = c.table_name
                                    AND k.column_name = c.column_name), 0)::bigint,
                        CASE WHEN c.is_identity = 'YES' THEN 1 ELSE 0 END
                 FROM information_schema.columns c
                 WHERE c.table_schema = current_schema() AND c.table_name = ?1
                 ORDER BY c.ordinal_position",
                args![table],
                |r| {
                    Ok(Column {
                        name: r.get(0)?,
                        sql_type: r.get(1)?,
                        not_null: r.get(2)?,
                        pk: r.get(3)?,
                        identity: r.get(4)?,
                    })
                },
            ),
        }
    }

    /// The names of a table's indexes (automatic ones for keys and UNIQUE left out).
    #[cfg(test)]
    pub(crate) fn indexes(&self) -> Result<Vec<String>, StoreError> {
        let sql = match self.backend() {
            Backend::Sqlite => {
                "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL
                 ORDER BY name"
            }
            Backend::Postgres => {
                "SELECT i.indexname::text FROM pg_indexes i
                 WHERE i.schemaname = current_schema()
                   AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
                 ORDER BY i.indexname"
            }
        };
        self.map(sql, args![], |r| r.get(0))
    }
}

/// One column as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Column {
    pub name: String,
    /// `INTEGER`, `TEXT` or `BLOB` (PostgreSQL's BIGINT, TEXT and BYTEA reported so).
    pub sql_type: String,
    pub not_null: bool,
    /// 1-based position in the primary key, 0 when not part of it.
    pub pk: i64,
    /// Numbered by the database (PostgreSQL identity); false on SQLite.
    pub identity: bool,
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    Serializable,
    Guard,
    Snapshot,
}

/// An open transaction from [`Db::begin`].
pub(crate) struct TxGuard<'a> {
    db: &'a Db,
    /// `None` once committed.
    scope: Option<Scope>,
}

impl<'a> TxGuard<'a> {
    pub(crate) fn db(&self) -> &'a Db {
        self.db
    }

    pub(crate) fn commit(mut self) -> Result<(), StoreError> {
        match self.scope.take() {
            Some(scope) => self.db.close_scope(scope, true),
            None => Ok(()),
        }
    }
}

impl Drop for TxGuard<'_> {
    fn drop(&mut self) {
        if let Some(scope) = self.scope.take()
            && let Err(e) = self.db.close_scope(scope, false)
        {
            // A connection that is gone has rolled back by itself.
            tracing::debug!(error = %e, "rollback failed");
        }
    }
}

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            Param::Null => ValueRef::Null,
            Param::Int(i) => ValueRef::Integer(i),
            Param::Text(s) => ValueRef::Text(s.as_bytes()),
            Param::Bytes(b) => ValueRef::Blob(b),
        }))
    }
}

fn sqlite_value(v: rusqlite::types::ValueRef<'_>) -> Result<Value, StoreError> {
    use rusqlite::types::ValueRef;
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Text(t) => Value::Text(
            String::from_utf8(t.to_vec())
                .map_err(|_| StoreError::Invalid("stored text is not UTF-8".into()))?,
        ),
        ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
        ValueRef::Real(_) => {
            return Err(StoreError::Invalid(
                "a REAL value in the store (only integers, text and bytes are used)".into(),
            ));
        }
    })
}

fn first_line(sql: &str) -> &str {
    sql.trim().lines().next().unwrap_or("")
}

/// `?1, ?2, …` to PostgreSQL's `$1, $2, …`, outside quotes and comments.
pub(crate) fn dollar_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == '\n' {
                        break;
                    }
                }
            }
            '?' if chars.peek().is_some_and(char::is_ascii_digit) => out.push('$'),
            _ => out.push(c),
        }
    }
    out
}

/// Words PostgreSQL reserves that SQLite takes as column names. Such a column must be quoted
/// (`"inner"`) in queries too; both databases accept that.
const POSTGRES_RESERVED: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "column",
    "constraint",
    "create",
    "cross",
    "current_date",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "from",
    "full",
    "grant",
    "group",
    "having",
    "in",
    "inner",
    "intersect",
    "into",
    "is",
    "join",
    "leading",
    "left",
    "limit",
    "natural",
    "not",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "outer",
    "placing",
    "primary",
    "references",
    "returning",
    "right",
    "select",
    "session_user",
    "some",
    "table",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "when",
    "where",
    "window",
    "with",
];

/// A migration written for SQLite, as PostgreSQL needs it. The rules are mechanical, so a
/// portable migration (ARCHITECTURE.md, "Writing a migration") runs on both unedited:
/// - a line marked `-- sqlite-only` is left out;
/// - `INTEGER PRIMARY KEY` → an identity column (`BIGINT PRIMARY KEY` when the column
///   references another table: its value comes from there); one column definition per line
///   or one-line tables both work;
/// - `INTEGER` → `BIGINT`, `BLOB` → `BYTEA`, `REAL` → `DOUBLE PRECISION`;
/// - `WITHOUT ROWID` dropped;
/// - every foreign key (`REFERENCES t(c)` with its `ON DELETE/UPDATE` actions, on one line or
///   several) gains `DEFERRABLE INITIALLY IMMEDIATE`: checked per statement as on SQLite, but
///   `store copy` can defer the checks to its commit;
/// - a column named with a word PostgreSQL reserves (SQLite allows it) is quoted where it is
///   defined (queries must quote it too; better not to use one).
///
/// What cannot be translated is refused by [`not_portable`] (a test runs it on every migration).
pub(crate) fn postgres_ddl(sqlite: &str) -> String {
    let word = |w: &str| regex::Regex::new(&format!(r"\b{w}\b")).ok(); // ok: constant patterns
    let (integer, blob, real) = (word("INTEGER"), word("BLOB"), word("REAL"));
    let integer_pk = regex::Regex::new(r"\bINTEGER\s+PRIMARY\s+KEY\b([^,]*)").ok(); // ok: constant
    let without_rowid = regex::Regex::new(r"\)\s*WITHOUT\s+ROWID").ok(); // ok: constant
    // A column named with a word PostgreSQL reserves (SQLite allows it) is quoted.
    let column = regex::Regex::new(r"^(\s+)([a-z_]+)(\s+(?:INTEGER|TEXT|BLOB)\b)").ok(); // ok: constant
    let mut out = String::with_capacity(sqlite.len() + 256);
    for line in sqlite.lines() {
        if line.contains("-- sqlite-only") {
            continue;
        }
        let mut l = line.to_string();
        if let Some(c) = column.as_ref().and_then(|re| re.captures(line))
            && POSTGRES_RESERVED.contains(&&c[2])
        {
            l = format!("{}\"{}\"{}", &c[1], &c[2], &l[c[0].len() - c[3].len()..]);
        }
        if let Some(re) = &integer_pk {
            // The rest of this column's definition (to the next comma) says whether its value
            // comes from another table.
            l = re
                .replace_all(&l, |c: &regex::Captures<'_>| {
                    let rest = &c[1];
                    if rest.to_ascii_uppercase().contains("REFERENCES") {
                        format!("BIGINT PRIMARY KEY{rest}")
                    } else {
                        format!("BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY{rest}")
                    }
                })
                .into_owned();
        }
        for (re, to) in [
            (&integer, "BIGINT"),
            (&blob, "BYTEA"),
            (&real, "DOUBLE PRECISION"),
        ] {
            if let Some(re) = re {
                l = re.replace_all(&l, to).into_owned();
            }
        }
        out.push_str(&l);
        out.push('\n');
    }
    if let Some(re) = without_rowid {
        out = re.replace_all(&out, ")").into_owned();
    }
    deferrable_foreign_keys(&out)
}

/// Appends `DEFERRABLE INITIALLY IMMEDIATE` after every `REFERENCES table (columns)` and the
/// actions that follow it (`MATCH ...`, `ON DELETE ...`, `ON UPDATE ...`), wherever the line
/// breaks fall; one already marked `DEFERRABLE` or `NOT DEFERRABLE` is left as written.
fn deferrable_foreign_keys(ddl: &str) -> String {
    // ok: a constant pattern
    let Ok(fk) = regex::Regex::new(
        r"(?i)\bREFERENCES\s+[A-Za-z_][A-Za-z0-9_]*\s*(?:\([^)]*\))?(?:\s+MATCH\s+(?:FULL|PARTIAL|SIMPLE))?(?:\s+ON\s+(?:DELETE|UPDATE)\s+(?:SET\s+NULL|SET\s+DEFAULT|NO\s+ACTION|CASCADE|RESTRICT))*",
    ) else {
        return ddl.to_string();
    };
    let mut out = String::with_capacity(ddl.len() + 128);
    let mut last = 0;
    for m in fk.find_iter(ddl) {
        out.push_str(&ddl[last..m.end()]);
        let rest = ddl[m.end()..].trim_start().to_ascii_uppercase();
        if !(rest.starts_with("DEFERRABLE") || rest.starts_with("NOT DEFERRABLE")) {
            out.push_str(" DEFERRABLE INITIALLY IMMEDIATE");
        }
        last = m.end();
    }
    out.push_str(&ddl[last..]);
    out
}

/// Why a migration would not run the same on PostgreSQL after [`postgres_ddl`], if it would
/// not: constructs only SQLite knows, outside lines marked `-- sqlite-only`.
#[cfg(test)]
pub(crate) fn not_portable(sqlite: &str) -> Option<String> {
    const REFUSED: &[(&str, &str)] = &[
        (
            r"(?i)\bAUTOINCREMENT\b",
            "AUTOINCREMENT (INTEGER PRIMARY KEY numbers rows on both)",
        ),
        (
            r"(?i)\bINSERT\s+OR\b",
            "INSERT OR IGNORE/REPLACE (use ON CONFLICT ... DO NOTHING/UPDATE)",
        ),
        (
            r"(?i)\bREPLACE\s+INTO\b",
            "REPLACE INTO (use ON CONFLICT ... DO UPDATE)",
        ),
        (
            r"(?i)\bCOLLATE\s+NOCASE\b",
            "COLLATE NOCASE (compare lower() values; index lower(col))",
        ),
        (r"(?i)\bIFNULL\s*\(", "IFNULL (use COALESCE)"),
        (
            r"(?i)\browid\b",
            "rowid (PostgreSQL has none; mark a backfill line -- sqlite-only)",
        ),
        (r"(?i)\bPRAGMA\b", "PRAGMA"),
        (r"(?i)\)\s*STRICT\b", "STRICT tables"),
        (
            r"(?i)\b(?:BOOLEAN|DATETIME|TIMESTAMP|VARCHAR|DOUBLE|FLOAT|NUMERIC|SERIAL)\b",
            "a column type other than INTEGER, TEXT, BLOB, REAL",
        ),
        (
            r"(?i)\b(?:datetime|strftime|julianday|unixepoch)\s*\(",
            "SQLite date functions (times are RFC 3339 TEXT written by casegate)",
        ),
        (
            r"(?i)\bCURRENT_TIMESTAMP\b",
            "CURRENT_TIMESTAMP (its text differs; write times from casegate)",
        ),
        (
            r"(?i)\bCREATE\s+TRIGGER\b",
            "triggers (their syntax differs)",
        ),
    ];
    let portable: String = sqlite
        .lines()
        .filter(|l| !l.contains("-- sqlite-only"))
        .map(|l| l.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let portable = match regex::Regex::new(r"(?i)\)\s*WITHOUT\s+ROWID") {
        Ok(re) => re.replace_all(&portable, ")").into_owned(), // dropped by postgres_ddl
        Err(_) => portable,
    };
    REFUSED.iter().find_map(|(pattern, why)| {
        regex::Regex::new(pattern)
            .ok()
            .filter(|re| re.is_match(&portable))
            .map(|_| (*why).to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_renumbered_outside_quotes_and_comments() {
        assert_eq!(
            dollar_placeholders(
                "SELECT '?1', \"a?2\", x FROM t WHERE a = ?1 AND b = ?12 -- ?3\n AND c = ?3"
            ),
            "SELECT '?1', \"a?2\", x FROM t WHERE a = $1 AND b = $12 -- ?3\n AND c = $3"
        );
    }

    #[test]
    fn ddl_is_translated_mechanically() {
        let pg = postgres_ddl(
            "CREATE TABLE t (\n    id INTEGER PRIMARY KEY,\n    ref INTEGER PRIMARY KEY REFERENCES u(id),\n    n INTEGER NOT NULL,\n    b BLOB,\n    other INTEGER REFERENCES t(id)\n);\nCREATE TABLE c (e BLOB PRIMARY KEY) WITHOUT ROWID;\nUPDATE t SET n = rowid; -- sqlite-only\nALTER TABLE t ADD COLUMN w INTEGER REFERENCES t(id);\n",
        );
        assert!(pg.contains("id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"));
        assert!(
            pg.contains("ref BIGINT PRIMARY KEY REFERENCES u(id) DEFERRABLE INITIALLY IMMEDIATE,")
        );
        assert!(pg.contains("n BIGINT NOT NULL,"));
        assert!(pg.contains("b BYTEA,"));
        assert!(pg.contains("other BIGINT REFERENCES t(id) DEFERRABLE INITIALLY IMMEDIATE\n"));
        assert!(pg.contains("CREATE TABLE c (e BYTEA PRIMARY KEY);"));
        assert!(!pg.contains("rowid"));
        assert!(pg.contains("w BIGINT REFERENCES t(id) DEFERRABLE INITIALLY IMMEDIATE;"));
        // Foreign keys wherever the line breaks fall, with their actions; one-line tables.
        let pg = postgres_ddl(
            "CREATE TABLE m (a INTEGER PRIMARY KEY, t INTEGER NOT NULL REFERENCES t(id) ON DELETE CASCADE, x TEXT);\nCREATE TABLE k (\n    t INTEGER NOT NULL,\n    FOREIGN KEY (t) REFERENCES t (id)\n        ON DELETE SET NULL ON UPDATE CASCADE,\n    u INTEGER REFERENCES u(id) DEFERRABLE INITIALLY DEFERRED\n) WITHOUT ROWID;\n",
        );
        assert!(pg.contains("CREATE TABLE m (a BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, t BIGINT NOT NULL REFERENCES t(id) ON DELETE CASCADE DEFERRABLE INITIALLY IMMEDIATE, x TEXT);"), "{pg}");
        assert!(pg.contains("REFERENCES t (id)\n        ON DELETE SET NULL ON UPDATE CASCADE DEFERRABLE INITIALLY IMMEDIATE,"), "{pg}");
        assert!(
            pg.contains("u BIGINT REFERENCES u(id) DEFERRABLE INITIALLY DEFERRED\n);"),
            "{pg}"
        );
        let quoted =
            postgres_ddl("CREATE TABLE n (\n    inner BLOB NOT NULL,\n    internal TEXT\n);");
        assert!(quoted.contains("    \"inner\" BYTEA NOT NULL,"), "{quoted}");
        assert!(quoted.contains("    internal TEXT"), "{quoted}");
    }

    #[test]
    fn every_migration_is_portable() {
        for (i, m) in super::super::schema::MIGRATIONS.iter().enumerate() {
            assert_eq!(not_portable(m), None, "migration {} (schema v{})", i, i + 1);
        }
    }

    #[test]
    fn what_only_sqlite_knows_is_refused_with_the_portable_way() {
        for (sql, says) in [
            (
                "CREATE TABLE a (id INTEGER PRIMARY KEY AUTOINCREMENT);",
                "AUTOINCREMENT",
            ),
            ("INSERT OR IGNORE INTO a VALUES (1);", "ON CONFLICT"),
            ("CREATE TABLE a (n TEXT COLLATE NOCASE);", "lower()"),
            ("CREATE TABLE a (at DATETIME);", "column type"),
            ("CREATE TABLE a (ok BOOLEAN);", "column type"),
            ("UPDATE a SET n = rowid;", "sqlite-only"),
            (
                "CREATE TABLE a (at TEXT DEFAULT CURRENT_TIMESTAMP);",
                "CURRENT_TIMESTAMP",
            ),
            ("CREATE TABLE a (n INTEGER) STRICT;", "STRICT"),
            ("UPDATE a SET n = IFNULL(n, 0);", "COALESCE"),
        ] {
            let why = not_portable(sql).unwrap_or_else(|| panic!("{sql} passed"));
            assert!(why.contains(says), "{sql}: {why}");
        }
        for fine in [
            "CREATE TABLE a (id INTEGER PRIMARY KEY, b BLOB) WITHOUT ROWID;",
            "UPDATE a SET n = rowid; -- sqlite-only",
            "CREATE UNIQUE INDEX a_n ON a(lower(n)); -- a boolean is INTEGER 0/1",
            "INSERT INTO g (name, value) VALUES ('x', 0) ON CONFLICT (name) DO NOTHING;",
        ] {
            assert_eq!(not_portable(fine), None, "{fine}");
        }
    }
}
