//! Private at rest whatever the umask: under umask 022 (and 000) a running `serve` keeps its
//! data dir and Maildir 0700 and its database, WAL, shared-memory and lock files 0600; paths
//! found looser are reported by `casegate check` and tightened at the next start; secret files
//! that group or others can read are refused with "chmod 600 PATH".

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use support::cli::{bin, sigterm, wait_for};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

fn chmod(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

/// `casegate ARGS` in `dir` under `umask`.
fn under_umask(umask: &str, dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("/bin/sh");
    c.arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(bin())
        .args(args)
        .current_dir(dir);
    c
}

fn run(umask: &str, dir: &Path, args: &[&str]) -> Output {
    under_umask(umask, dir, args).output().unwrap()
}

fn serve(umask: &str, dir: &Path) -> Child {
    under_umask(umask, dir, &["serve"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn data(dir: &Path) -> PathBuf {
    dir.join("casegate-data")
}

/// Every file and directory under the data dir, with its mode.
fn modes_under(root: &Path) -> Vec<(PathBuf, u32)> {
    let mut out = vec![(root.to_path_buf(), mode(root))];
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.push((p.clone(), mode(&p)));
        }
    }
    out
}

#[test]
fn a_running_serve_keeps_everything_private_whatever_the_umask() {
    for umask in ["022", "000"] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut child = serve(umask, dir);
        let db = data(dir).join("casegate.sqlite");
        let maildir = data(dir).join("Maildir");
        // A message stored: the WAL and shared-memory files exist while serve runs.
        wait_for("the Maildir", Duration::from_secs(30), || {
            maildir.join("new").is_dir()
        });
        std::fs::write(
            maildir.join("tmp/m1"),
            "From: a@x.example\r\nTo: cert@example.test\r\nSubject: hi\r\nMessage-ID: <m1@x.example>\r\n\r\nx\r\n",
        )
        .unwrap();
        std::fs::rename(maildir.join("tmp/m1"), maildir.join("new/m1")).unwrap();
        wait_for("the message stored", Duration::from_secs(30), || {
            std::fs::read_dir(maildir.join("cur")).unwrap().count() == 1
        });
        let wal = data(dir).join("casegate.sqlite-wal");
        let shm = data(dir).join("casegate.sqlite-shm");
        assert!(wal.exists() && shm.exists(), "WAL mode files while serving");

        for d in [
            data(dir),
            maildir.clone(),
            maildir.join("tmp"),
            maildir.join("new"),
            maildir.join("cur"),
        ] {
            assert_eq!(mode(&d), 0o700, "umask {umask}: {}", d.display());
        }
        for f in [
            db.clone(),
            wal,
            shm,
            data(dir).join("serve.lock"),
            data(dir).join("coordinator.key"),
        ] {
            assert_eq!(mode(&f), 0o600, "umask {umask}: {}", f.display());
        }
        // Nothing at all under the data dir is open to group or others (the message moved to
        // cur/ is the sender's file: its mode is the MTA's business, but the folder is ours).
        for (p, m) in modes_under(&data(dir)) {
            if p.parent() == Some(maildir.join("cur").as_path()) {
                continue;
            }
            assert_eq!(m & 0o077, 0, "umask {umask}: {} is {m:03o}", p.display());
        }
        assert_eq!(sigterm(&mut child), Some(0));
    }
}

#[test]
fn check_reports_looser_modes_and_a_start_tightens_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    assert!(run("022", dir, &["init"]).status.success());
    let mut child = serve("022", dir);
    wait_for("the Maildir", Duration::from_secs(30), || {
        data(dir).join("Maildir/new").is_dir()
    });
    assert_eq!(sigterm(&mut child), Some(0));

    let db = data(dir).join("casegate.sqlite");
    let maildir = data(dir).join("Maildir");
    chmod(&data(dir), 0o755);
    chmod(&maildir.join("new"), 0o775);
    chmod(&db, 0o644);
    let out = run("022", dir, &["check"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    for (p, fix) in [
        (data(dir), "chmod 700"),
        (maildir.join("new"), "chmod 700"),
        (db.clone(), "chmod 600"),
    ] {
        // Paths are shown as configured: relative to the working directory here.
        let want = format!("{fix} {}", p.strip_prefix(dir).unwrap().display());
        assert!(
            text.lines()
                .any(|l| l.starts_with("FAIL permissions") && l.contains(&want)),
            "no `{want}` in:\n{text}"
        );
    }
    // `check --json` says the same, one finding per path.
    let json = stdout(&run("022", dir, &["check", "--json"]));
    let loose: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|f| f["check"] == "permissions" && f["ok"] == false)
        .collect();
    assert!(loose.len() >= 2, "{json}");

    // The next start makes them private again.
    let mut child = serve("022", dir);
    wait_for("the modes tightened", Duration::from_secs(30), || {
        mode(&maildir.join("new")) == 0o700
    });
    assert_eq!(sigterm(&mut child), Some(0));
    assert_eq!(mode(&data(dir)), 0o700);
    assert_eq!(mode(&db), 0o600);
    let text = stdout(&run("022", dir, &["check"]));
    assert!(
        text.lines().any(|l| l.starts_with("ok   permissions")),
        "{text}"
    );
    assert!(!text.contains("FAIL permissions"), "{text}");
}

#[test]
fn secret_files_others_can_read_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    assert!(run("022", dir, &["init"]).status.success());
    // A password file written under umask 022 is 0644.
    let pw = dir.join("smtp-password");
    std::fs::write(&pw, "s3cret-smtp\n").unwrap();
    chmod(&pw, 0o644);
    std::fs::write(
        dir.join("casegate.toml"),
        format!(
            "[smtp]\nhost = \"127.0.0.1\"\nport = 1\ntls = \"none\"\nusername = \"cert@example.test\"\npassword_file = \"{}\"\n",
            pw.display()
        ),
    )
    .unwrap();
    let out = run("022", dir, &["check"]);
    let text = stdout(&out);
    let want = format!("chmod 600 {}", pw.display());
    assert!(
        text.lines()
            .any(|l| l.starts_with("FAIL smtp") && l.contains(&want)),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("FAIL permissions") && l.contains(&want)),
        "{text}"
    );
    assert!(!text.contains("s3cret-smtp"), "{text}");
    chmod(&pw, 0o600);
    let text = stdout(&run("022", dir, &["check"]));
    assert!(!text.contains(&want), "{text}");

    // The coordinator key, likewise.
    let key = data(dir).join("coordinator.key");
    chmod(&key, 0o640);
    let out = run("022", dir, &["key", "export"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "chmod 600 {}",
            key.strip_prefix(dir).unwrap().display()
        )),
        "{err}"
    );
}
