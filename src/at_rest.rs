//! Private at rest, whatever the umask: the data dir and the Maildir drop folder are 0700, the
//! store's files (database, `-wal`, `-shm`) and the daemon's lock file 0600, and files holding
//! secrets (`key_file`, `password_file`) are refused when group or others may read them.
//!
//! Why here and not left to the umask: a umask of 022 (the common default) makes every new
//! file world-readable, and the store holds every report ever received, decrypted. Modes are
//! set when a path is created (so there is no window in which it is readable), and checked
//! when `serve` or `init` starts: a path found looser is tightened, with a warning
//! ([`make_private`]). `casegate check` lists what it finds looser and changes nothing
//! ([`loose_modes`]).

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::config::Settings;

/// Directories casegate keeps: the owner alone may enter them.
pub const PRIVATE_DIR: u32 = 0o700;
/// Files casegate keeps: the owner alone may read and write them.
pub const PRIVATE_FILE: u32 = 0o600;

/// A file holding a secret that others could read.
#[derive(Debug, thiserror::Error)]
#[error("{what} {path} is readable by group or others (mode {mode:03o}); run `chmod 600 {path}`")]
pub struct NotPrivate {
    pub what: String,
    pub path: String,
    pub mode: u32,
}

/// Refuses a secret file that grants group or others anything (only the mode is read here).
pub fn require_private_file(path: &Path, what: &str) -> io::Result<Result<(), NotPrivate>> {
    let mode = fs::metadata(path)?.permissions().mode() & 0o777;
    Ok(if mode & 0o077 != 0 {
        Err(NotPrivate {
            what: what.to_string(),
            path: path.display().to_string(),
            mode,
        })
    } else {
        Ok(())
    })
}

/// Creates `dir` and any missing parents with mode 0700 (an existing one is left as it is).
pub fn private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR)
        .create(dir)
}

/// Creates `path` empty with mode 0600 unless it exists (the store creates its database file
/// this way before SQLite opens it; SQLite gives `-wal` and `-shm` the database file's mode).
pub fn private_file(path: &Path) -> io::Result<()> {
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE)
        .open(path)
    {
        // Exactly 0600, whatever the umask removed.
        Ok(f) => f.set_permissions(fs::Permissions::from_mode(PRIVATE_FILE)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Sets `path` to `mode` when it grants group or others anything; a missing path is fine.
/// Returns the mode it had when it was changed.
pub fn tighten(path: &Path, mode: u32) -> io::Result<Option<u32>> {
    let had = match fs::metadata(path) {
        Ok(m) => m.permissions().mode() & 0o777,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if had & 0o077 == 0 {
        return Ok(None);
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    tracing::warn!(path = %path.display(), was = %format!("{had:03o}"), now = %format!("{mode:03o}"), "was readable by group or others; made private");
    Ok(Some(had))
}

/// The store's files: the database and SQLite's `-wal` and `-shm` beside it.
pub fn store_files(db: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut s = db.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    };
    [db.to_path_buf(), with("-wal"), with("-shm")]
}

/// A path casegate keeps private that is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LooseMode {
    pub path: PathBuf,
    pub mode: u32,
    pub want: u32,
}

impl std::fmt::Display for LooseMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is mode {:03o}, readable by group or others; run `chmod {:o} {}`",
            self.path.display(),
            self.mode,
            self.want,
            self.path.display()
        )
    }
}

/// What casegate itself keeps (data dir, Maildir, store files, lock), and the mode each gets.
fn kept_paths(settings: &Settings) -> Vec<(PathBuf, u32)> {
    let mut paths: Vec<(PathBuf, u32)> = vec![(settings.data_dir.clone(), PRIVATE_DIR)];
    let maildir = settings.maildir_path();
    for sub in ["", "tmp", "new", "cur"] {
        paths.push((maildir.join(sub), PRIVATE_DIR));
    }
    for f in store_files(&settings.store_path()) {
        paths.push((f, PRIVATE_FILE));
    }
    paths.push((settings.lock_path(), PRIVATE_FILE));
    paths
}

/// Tightens every path casegate keeps that grants group or others anything (each change is
/// logged as a warning). Secret files are not changed: they are refused where they are read.
pub fn make_private(settings: &Settings) -> io::Result<()> {
    for (path, mode) in kept_paths(settings) {
        tighten(&path, mode)?;
    }
    Ok(())
}

/// Every path casegate keeps private, secret files included, whose mode grants group or
/// others anything; paths that do not exist are skipped. Changes nothing.
pub fn loose_modes(settings: &Settings) -> Vec<LooseMode> {
    let mut paths = kept_paths(settings);
    paths.push((settings.key_file(), PRIVATE_FILE));
    let secrets = settings
        .config
        .imap
        .iter()
        .map(|i| &i.password)
        .chain(settings.config.smtp.iter().map(|s| &s.password));
    for s in secrets {
        if let Some(p) = &s.password_file {
            paths.push((p.clone(), PRIVATE_FILE));
        }
    }
    let mut seen = std::collections::HashSet::new();
    paths
        .into_iter()
        .filter(|(p, _)| seen.insert(p.clone()))
        .filter_map(|(path, want)| {
            let mode = fs::metadata(&path).ok()?.permissions().mode() & 0o777;
            (mode & 0o077 != 0).then_some(LooseMode { path, mode, want })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn created_private_and_tightened_when_found_loose() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&dir).unwrap(); // exists: left as it is ...
        assert_eq!(mode(&dir), 0o755);
        assert_eq!(tighten(&dir, PRIVATE_DIR).unwrap(), Some(0o755)); // ... tightened here
        assert_eq!(mode(&dir), 0o700);

        let f = dir.join("f");
        private_file(&f).unwrap();
        assert_eq!(mode(&f), 0o600);
        fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
        private_file(&f).unwrap(); // exists: left as it is ...
        assert_eq!(tighten(&f, PRIVATE_FILE).unwrap(), Some(0o644)); // ... tightened here
        assert_eq!(mode(&f), 0o600);
        assert_eq!(tighten(&f, PRIVATE_FILE).unwrap(), None);
        assert_eq!(tighten(&dir.join("missing"), PRIVATE_FILE).unwrap(), None);
    }

    #[test]
    fn a_secret_others_can_read_is_refused_with_the_fix() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("pw");
        fs::write(&f, "x").unwrap();
        for m in [0o640, 0o604, 0o660, 0o620] {
            fs::set_permissions(&f, fs::Permissions::from_mode(m)).unwrap();
            let e = require_private_file(&f, "password_file")
                .unwrap()
                .unwrap_err();
            assert!(
                e.to_string()
                    .contains(&format!("chmod 600 {}", f.display())),
                "{e}"
            );
        }
        fs::set_permissions(&f, fs::Permissions::from_mode(0o400)).unwrap();
        assert!(require_private_file(&f, "password_file").unwrap().is_ok());
    }
}
