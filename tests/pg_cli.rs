//! Moving an installation between SQLite and PostgreSQL through the binary: `store copy` into an
//! empty database (over TLS) and back into a new SQLite file, each verified; the copies read the
//! same as the original; a non-empty target and a password in a URL are refused; `init` and
//! `check` on PostgreSQL.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::postgres::PgServer;

fn casegate(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_casegate"))
        .current_dir(cwd)
        .args(args)
        .output()
        .unwrap()
}

fn ok(cwd: &Path, args: &[&str]) -> String {
    let out = casegate(cwd, args);
    assert!(
        out.status.success(),
        "casegate {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn store_copy_moves_an_installation_to_postgres_and_back() {
    let pg = PgServer::shared();
    let db = pg.create_database();
    let url = pg.url(&db);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // The SQLite installation, with a case and every spine fixture in it.
    let sqlite_cfg = dir.join("sqlite.toml");
    std::fs::write(&sqlite_cfg, "").unwrap();
    let base = ["--config", "sqlite.toml", "--data-dir", "data"];
    let with = |cfg: &[&str], rest: &[&str]| -> Vec<String> {
        cfg.iter().chain(rest).map(|s| s.to_string()).collect()
    };
    let run = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(dir, &args)
    };
    run(with(&base, &["init"]));
    run(with(
        &base,
        &[
            "open",
            "case",
            "--title",
            "Overflow",
            "--number",
            "VU#409117",
        ],
    ));
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/spine");
    run(with(
        &base,
        &["ingest", "--json", fixtures.to_str().unwrap()],
    ));
    let list = run(with(&base, &["list", "--json"]));
    let triage = run(with(&base, &["triage", "list", "--json"]));

    // The PostgreSQL config: password from a file, TLS required against the cluster's CA.
    std::fs::write(
        dir.join("pg.toml"),
        format!(
            "[coordinator]\nkey_file = \"data/coordinator.key\"\n\n[store]\nurl = \"{url}\"\npassword_file = \"{}\"\ntls = \"require\"\nca_file = \"{}\"\n",
            pg.password_file.display(),
            pg.ca_cert.display()
        ),
    )
    .unwrap();
    let pgc = ["--config", "pg.toml", "--data-dir", "data"];
    let copied = run(with(
        &pgc,
        &["store", "copy", "--from", "data/casegate.sqlite", "--json"],
    ));
    let report: serde_json::Value = serde_json::from_str(copied.trim()).unwrap();
    let messages = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "messages")
        .unwrap();
    assert!(messages["rows"].as_i64().unwrap() > 10, "{report}");
    // The database now reads as the file did.
    assert_eq!(run(with(&pgc, &["list", "--json"])), list);
    assert_eq!(run(with(&pgc, &["triage", "list", "--json"])), triage);
    let check = casegate(
        dir,
        &with(&pgc, &["check"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let check_text = String::from_utf8_lossy(&check.stdout).into_owned()
        + &String::from_utf8_lossy(&check.stderr);
    assert!(
        check_text.contains(&format!("postgres://casegate@127.0.0.1:{}/{db}", pg.port)),
        "{check_text}"
    );

    // Copying again into the same (now full) database is refused; nothing changes.
    let again = casegate(
        dir,
        &[
            "--config",
            "pg.toml",
            "--data-dir",
            "data",
            "store",
            "copy",
            "--from",
            "data/casegate.sqlite",
        ],
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));
    assert_eq!(run(with(&pgc, &["list", "--json"])), list);

    // And back into a new SQLite file, which then reads the same too.
    run(with(&pgc, &["store", "copy", "--to", "back.sqlite"]));
    std::fs::write(dir.join("back.toml"), "[store]\npath = \"back.sqlite\"\n").unwrap();
    let back = ["--config", "back.toml", "--data-dir", "data"];
    assert_eq!(run(with(&back, &["list", "--json"])), list);
    assert_eq!(run(with(&back, &["triage", "list", "--json"])), triage);

    // A password in a URL is refused, and not repeated.
    let pw = casegate(
        dir,
        &[
            "--config",
            "pg.toml",
            "--data-dir",
            "data",
            "store",
            "copy",
            "--to",
            "postgres://casegate:hunter2@127.0.0.1/x",
        ],
    );
    assert_eq!(pw.status.code(), Some(1));
    let err = String::from_utf8_lossy(&pw.stderr);
    assert!(err.contains("password_file"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn init_creates_the_schema_and_a_wrong_password_is_a_clear_error() {
    let pg = PgServer::shared();
    let db = pg.create_database();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let wrong = dir.join("wrong-password");
    std::fs::write(&wrong, "not-the-password\n").unwrap();
    std::fs::set_permissions(&wrong, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let cfg = |pw: &Path| {
        format!(
            "[store]\nurl = \"{}\"\npassword_file = \"{}\"\ntls = \"none\"\n",
            pg.url(&db),
            pw.display()
        )
    };
    std::fs::write(dir.join("casegate.toml"), cfg(&wrong)).unwrap();
    let out = casegate(dir, &["--data-dir", "data", "list"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(!err.contains("not-the-password"), "{err}");
    std::fs::write(dir.join("casegate.toml"), cfg(&pg.password_file)).unwrap();
    ok(dir, &["--data-dir", "data", "init"]);
    let tables = pg.sql_in(
        &db,
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    );
    assert!(tables.trim().parse::<i64>().unwrap() > 10, "{tables}");
    let version = pg.sql_in(&db, "SELECT version FROM casegate_schema");
    assert!(version.trim().parse::<i64>().unwrap() >= 8, "{version}");
}
