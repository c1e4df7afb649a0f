//! The PostgreSQL connection behind [`super::sql::Db`]: tokio-postgres, driven from the
//! store's blocking calls.
//!
//! Why this shape: the store's API is synchronous (the pipeline runs on blocking threads, the
//! CLI has no runtime), and every `Store` owns one connection, as with SQLite, so there is no
//! pool to share. tokio-postgres's connection task runs on one small runtime of its own
//! ([`runtime`]); a store call sends its request to that task and waits for the answer with
//! `futures::executor::block_on`, which works on any thread — a plain one, a blocking one, or
//! (briefly, like a SQLite call) a tokio worker — where the blocking `postgres` crate would
//! panic inside a runtime.
//!
//! A connection that broke (server restarted, network gone) is replaced at the next call; the
//! call that saw the break fails with [`StoreError::Unavailable`] and its transaction is lost,
//! so callers retry and acknowledge nothing, exactly as after any failed commit.

use std::cell::RefCell;
use std::collections::HashMap;
use std::error::Error as StdError;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::BytesMut;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, NoTls, Statement};

use super::StoreError;
use super::sql::{Param, Row, Value, dollar_placeholders};

/// Upper bound on one round trip, so a database that stopped answering (not just closed the
/// connection) cannot hang a watcher forever. Generous: a statement may wait for a lock that a
/// large notice holds while it is sealed.
const ROUND_TRIP: Duration = Duration::from_secs(120);

/// Where and how to connect. The password is inside `config` (never printed: `describe` is
/// what errors and logs show).
#[derive(Clone)]
pub struct PgTarget {
    config: tokio_postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    describe: String,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgTarget({})", self.describe)
    }
}

impl PgTarget {
    /// `url` is a `postgres://user@host:port/db` URL (or a libpq key=value string) without a
    /// password; the password is given separately (from a file or the environment). With
    /// `tls`, the connection must be TLS (never a plaintext fallback).
    pub fn new(
        url: &str,
        password: Option<&str>,
        tls: Option<rustls::ClientConfig>,
    ) -> Result<PgTarget, StoreError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            StoreError::Invalid(format!(
                "[store] url {:?} is not a PostgreSQL URL: {e} (expected postgres://USER@HOST:PORT/DATABASE)",
                redact(url)
            ))
        })?;
        if config.get_password().is_some() {
            return Err(StoreError::Invalid(
                "[store] url must not contain the password: put it in password_file (mode 0600) or password_env".into(),
            ));
        }
        if url.contains("sslmode") {
            return Err(StoreError::Invalid(
                "[store] url: leave sslmode out; set [store] tls = \"require\" or \"none\" instead"
                    .into(),
            ));
        }
        if let Some(p) = password {
            config.password(p);
        }
        if config.get_application_name().is_none() {
            config.application_name("casegate");
        }
        config
            .ssl_mode(if tls.is_some() {
                tokio_postgres::config::SslMode::Require
            } else {
                tokio_postgres::config::SslMode::Disable
            })
            .connect_timeout(Duration::from_secs(10))
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(15))
            .tcp_user_timeout(Duration::from_secs(30));
        let describe = describe(&config);
        Ok(PgTarget {
            config,
            tls: tls.map(tokio_postgres_rustls::MakeRustlsConnect::new),
            describe,
        })
    }

    /// The same target with `options` (e.g. `-c search_path=x`) added: tests give each store
    /// its own schema.
    pub fn with_options(mut self, options: &str) -> PgTarget {
        self.config.options(options);
        self
    }

    /// `user@host:port/db`, for messages.
    pub fn describe(&self) -> &str {
        &self.describe
    }

    pub(crate) fn connect(&self) -> Result<PgConn, StoreError> {
        let conn = PgConn {
            target: self.clone(),
            client: RefCell::new(None),
            statements: RefCell::new(HashMap::new()),
        };
        conn.client()?;
        Ok(conn)
    }
}

/// A URL for messages, without anything after a `:` in the user part.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let user = &url[s + 3..at];
            let user = user.split(':').next().unwrap_or(user);
            format!("{}{user}@{}", &url[..s + 3], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

fn describe(c: &tokio_postgres::Config) -> String {
    let host = c
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = c.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{host}:{port}/{}",
        c.get_user().unwrap_or("?"),
        c.get_dbname().unwrap_or("?")
    )
}

/// The runtime that drives every PostgreSQL connection of this process (one thread: the work
/// is moving bytes between sockets and channels).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("casegate-postgres")
            .enable_all()
            .build()
            // ok: building a runtime fails only when the OS refuses a thread; nothing works then
            .expect("cannot start the PostgreSQL I/O thread")
    })
}

/// Waits for `fut` on the calling thread, at most [`ROUND_TRIP`].
fn wait<T>(fut: impl Future<Output = T>) -> Option<T> {
    let timer = {
        let _inside = runtime().enter();
        tokio::time::sleep(ROUND_TRIP)
    };
    let fut = std::pin::pin!(fut);
    let timer = std::pin::pin!(timer);
    match futures::executor::block_on(futures::future::select(fut, timer)) {
        futures::future::Either::Left((v, _)) => Some(v),
        futures::future::Either::Right(_) => None,
    }
}

/// One connection, replaced when it breaks; statements prepared once per connection.
pub(crate) struct PgConn {
    target: PgTarget,
    client: RefCell<Option<Arc<Client>>>,
    statements: RefCell<HashMap<String, Statement>>,
}

impl PgConn {
    fn client(&self) -> Result<Arc<Client>, StoreError> {
        if let Some(c) = self.client.borrow().as_ref()
            && !c.is_closed()
        {
            return Ok(c.clone());
        }
        self.statements.borrow_mut().clear();
        *self.client.borrow_mut() = None;
        let (config, tls) = (self.target.config.clone(), self.target.tls.clone());
        let task = runtime().spawn(async move {
            match tls {
                Some(tls) => {
                    let (client, connection) = config.connect(tls).await?;
                    tokio::spawn(drive(connection));
                    Ok(client)
                }
                None => {
                    let (client, connection) = config.connect(NoTls).await?;
                    tokio::spawn(drive(connection));
                    Ok(client)
                }
            }
        });
        let client = match wait(task) {
            Some(Ok(Ok(c))) => Arc::new(c),
            Some(Ok(Err(e))) => return Err(self.unavailable(&e)),
            Some(Err(e)) => {
                return Err(StoreError::Unavailable(format!(
                    "PostgreSQL {}: connecting failed: {e}",
                    self.target.describe
                )));
            }
            None => {
                return Err(StoreError::Unavailable(format!(
                    "PostgreSQL {}: no answer within {} s",
                    self.target.describe,
                    ROUND_TRIP.as_secs()
                )));
            }
        };
        *self.client.borrow_mut() = Some(client.clone());
        Ok(client)
    }

    /// Runs one request; a broken or silent connection is dropped (replaced at the next call).
    fn call<T>(
        &self,
        f: impl AsyncFnOnce(&Client) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, StoreError> {
        let client = self.client()?;
        match wait(f(&client)) {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => {
                let err = self.classify(e);
                if matches!(err, StoreError::Unavailable(_)) {
                    *self.client.borrow_mut() = None;
                }
                Err(err)
            }
            None => {
                *self.client.borrow_mut() = None;
                Err(StoreError::Unavailable(format!(
                    "PostgreSQL {}: no answer within {} s",
                    self.target.describe,
                    ROUND_TRIP.as_secs()
                )))
            }
        }
    }

    fn classify(&self, e: tokio_postgres::Error) -> StoreError {
        if e.as_db_error().is_some() {
            StoreError::Postgres(e)
        } else {
            self.unavailable(&e)
        }
    }

    fn unavailable(&self, e: &tokio_postgres::Error) -> StoreError {
        let mut text = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        StoreError::Unavailable(format!("PostgreSQL {}: {text}", self.target.describe))
    }

    fn statement(&self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(s) = self.statements.borrow().get(sql) {
            return Ok(s.clone());
        }
        let text = dollar_placeholders(sql);
        let stmt = self
            .call(async |c| c.prepare(&text).await)
            .inspect_err(|e| {
                tracing::debug!(error = %e, sql = %text, "PostgreSQL refused a statement");
                eprintln!("PGDEBUG {e}: {text}");
            })?;
        self.statements
            .borrow_mut()
            .insert(sql.to_string(), stmt.clone());
        Ok(stmt)
    }

    pub(crate) fn execute(&self, sql: &str, args: &[Param<'_>]) -> Result<u64, StoreError> {
        let stmt = self.statement(sql)?;
        let params: Vec<&(dyn ToSql + Sync)> =
            args.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
        self.call(async |c| c.execute(&stmt, &params).await)
    }

    pub(crate) fn query(&self, sql: &str, args: &[Param<'_>]) -> Result<Vec<Row>, StoreError> {
        let stmt = self.statement(sql)?;
        let params: Vec<&(dyn ToSql + Sync)> =
            args.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
        let rows = self.call(async |c| c.query(&stmt, &params).await)?;
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| {
                        r.try_get::<_, Value>(i)
                            .map_err(|e| StoreError::Invalid(format!("result column {i}: {e}")))
                    })
                    .collect::<Result<Vec<Value>, _>>()
                    .map(Row)
            })
            .collect()
    }

    pub(crate) fn batch(&self, sql: &str) -> Result<(), StoreError> {
        self.call(async |c| c.batch_execute(sql).await)
    }
}

async fn drive<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Err(e) = connection.await {
        tracing::warn!(error = %e, "PostgreSQL connection closed");
    }
}

type BoxError = Box<dyn StdError + Sync + Send>;

/// Arguments adapt to the type PostgreSQL inferred for the placeholder, so one integer
/// argument serves a BIGINT, INTEGER or BOOLEAN parameter alike.
impl ToSql for Param<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match *self {
            Param::Null => Ok(IsNull::Yes),
            Param::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
                Type::BOOL => (i != 0).to_sql(ty, out),
                _ => Err(format!("an integer argument where PostgreSQL expects {ty}").into()),
            },
            Param::Text(s) if <&str as ToSql>::accepts(ty) => s.to_sql(ty, out),
            Param::Text(_) => Err(format!("a text argument where PostgreSQL expects {ty}").into()),
            Param::Bytes(b) if <&[u8] as ToSql>::accepts(ty) => b.to_sql(ty, out),
            Param::Bytes(_) => {
                Err(format!("a bytes argument where PostgreSQL expects {ty}").into())
            }
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for Value {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(match *ty {
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Int(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT2 => Value::Int(i64::from(i16::from_sql(ty, raw)?)),
            Type::BOOL => Value::Int(i64::from(bool::from_sql(ty, raw)?)),
            Type::BYTEA => Value::Bytes(<Vec<u8>>::from_sql(ty, raw)?),
            _ if <String as FromSql>::accepts(ty) => Value::Text(String::from_sql(ty, raw)?),
            _ => {
                return Err(
                    format!("unsupported column type {ty} (use BIGINT, TEXT or BYTEA)").into(),
                );
            }
        })
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Value::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_urls_and_messages() {
        let err = PgTarget::new("postgres://u:hunter2@h/db", None, None).unwrap_err();
        assert!(err.to_string().contains("password_file"), "{err}");
        assert!(!err.to_string().contains("hunter2"));
        let err = PgTarget::new("postgres://u:hunter2@h:x/db", None, None).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let t = PgTarget::new("postgres://casegate@db.example:5433/cg", Some("pw"), None).unwrap();
        assert_eq!(t.describe(), "casegate@db.example:5433/cg");
        assert!(!format!("{t:?}").contains("pw"));
        let err = PgTarget::new("postgres://u@h/db?sslmode=prefer", None, None).unwrap_err();
        assert!(err.to_string().contains("tls"), "{err}");
    }
}
