//! A real PostgreSQL for tests, started by `tests/support/postgres` (Debian's package, a private
//! cluster on a free 127.0.0.1 port). One per test process ([`PgServer::shared`]); it stops and
//! its directory goes away when the process exits (the script watches our PID).
//!
//! Used by the integration tests (`mod support;`) and by the library's own store tests, which
//! include this file by path: it depends on nothing but std and tempfile.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// One running cluster.
#[derive(Debug)]
pub struct PgServer {
    pub dir: PathBuf,
    pub port: u16,
    pub user: String,
    /// A file holding the password of `user` (mode 0600).
    pub password_file: PathBuf,
    pub password: String,
    /// The CA that signed the server's certificate (TLS is always on).
    pub ca_cert: PathBuf,
}

pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/postgres")
}

impl PgServer {
    /// This process's cluster, started on first use (fsync off: tests measure nothing).
    pub fn shared() -> &'static PgServer {
        static SERVER: OnceLock<PgServer> = OnceLock::new();
        SERVER.get_or_init(|| PgServer::start(true))
    }

    /// Starts a new cluster; `fast` turns fsync off (tests), else durable (benchmarks).
    pub fn start(fast: bool) -> PgServer {
        let dir = tempfile::Builder::new()
            .prefix("cgpg-")
            .tempdir_in("/tmp")
            .expect("temp dir")
            .keep();
        let out = Command::new(script())
            .arg("start")
            .arg(&dir)
            .env("PG_FAST", if fast { "1" } else { "0" })
            .env("PG_TLS", "1")
            .env("PG_WATCH_PID", std::process::id().to_string())
            .stdin(Stdio::null())
            .output()
            .expect("run tests/support/postgres");
        assert!(
            out.status.success(),
            "cannot start the test PostgreSQL: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let get = |key: &str| -> String {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .unwrap_or_else(|| panic!("tests/support/postgres did not print {key}: {text}"))
                .to_string()
        };
        let password_file = PathBuf::from(get("PG_PASSWORD_FILE"));
        let password = std::fs::read_to_string(&password_file)
            .expect("password file")
            .trim()
            .to_string();
        PgServer {
            dir,
            port: get("PG_PORT").parse().expect("port"),
            user: get("PG_USER"),
            password_file,
            password,
            ca_cert: PathBuf::from(get("PG_CA_CERT")),
        }
    }

    /// `postgres://casegate@127.0.0.1:PORT/DB` (no password: it is in `password_file`).
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{}@127.0.0.1:{}/{database}",
            self.user, self.port
        )
    }

    /// Runs SQL as the superuser in database `casegate`; returns psql's unaligned output.
    pub fn sql(&self, sql: &str) -> String {
        self.sql_in("casegate", sql)
    }

    /// Runs SQL as the superuser in `database`; returns psql's unaligned output.
    pub fn sql_in(&self, database: &str, sql: &str) -> String {
        let out = Command::new(script())
            .args(["sql"])
            .arg(&self.dir)
            .arg(sql)
            .arg(database)
            .stdin(Stdio::null())
            .output()
            .expect("run tests/support/postgres sql");
        assert!(
            out.status.success(),
            "SQL failed: {sql}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A new, empty database; returns its name.
    pub fn create_database(&self) -> String {
        static N: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        self.sql(&format!("CREATE DATABASE {name}"));
        name
    }

    /// Stops the cluster now (tests of an unreachable database); [`PgServer::restart`] brings it
    /// back on the same port with the same data.
    pub fn stop(&self) {
        let status = Command::new(script())
            .arg("stop")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .expect("run tests/support/postgres stop");
        assert!(status.success());
    }

    pub fn restart(&self) {
        let out = Command::new(script())
            .arg("start")
            .arg(&self.dir)
            .env("PG_PORT", self.port.to_string())
            .env("PG_FAST", "1")
            .env("PG_TLS", "1")
            .stdin(Stdio::null())
            .output()
            .expect("run tests/support/postgres start");
        assert!(
            out.status.success(),
            "cannot restart the test PostgreSQL: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
}
