//! The library's face for the command line and the daemon: opens the store and the keyring
//! from [`Settings`], and reads messages from the places `ingest` accepts.

use std::path::{Path, PathBuf};

use sequoia_openpgp::Cert;

use crate::config::{ConfigError, Settings, StoreTls};
use crate::intake::{self, Intake};
use crate::keyring::{self, Keyring, KeyringError};
use crate::limits::Limits;
use crate::pipeline::{Pipeline, Rules};
use crate::store::{Location, MessageSource, PgTarget, Store, StoreError};

/// Why a command could not set itself up. Each message says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot open the store {location}: {source}")]
    Store {
        location: String,
        source: StoreError,
    },
    #[error(transparent)]
    StoreOp(#[from] StoreError),
    #[error("coordinator key {path}: {source}")]
    Key { path: PathBuf, source: KeyringError },
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

/// Opens the store, creating the data directory on first use (and on PostgreSQL the schema
/// in an empty database).
pub fn open_store(settings: &Settings) -> Result<Store, AppError> {
    crate::at_rest::private_dir(&settings.data_dir).map_err(|source| AppError::DataDir {
        path: settings.data_dir.clone(),
        source,
    })?;
    let location = store_location(settings)?;
    open_store_at(&location)
}

/// Opens the store at `location` (creating its schema if needed).
pub fn open_store_at(location: &Location) -> Result<Store, AppError> {
    Store::open_at(location).map_err(|source| AppError::Store {
        location: location.to_string(),
        source,
    })
}

/// Where the configured store lives: `[store] url` (PostgreSQL), else the SQLite file.
pub fn store_location(settings: &Settings) -> Result<Location, AppError> {
    match &settings.config.store.url {
        Some(url) => Ok(Location::Postgres(Box::new(postgres_target(
            settings, url,
        )?))),
        None => Ok(Location::Sqlite(settings.store_path())),
    }
}

/// A `postgres://` URL or a SQLite path, as `store copy` takes them. A URL is reached with the
/// `[store]` password and TLS settings.
pub fn location_from_arg(settings: &Settings, arg: &str) -> Result<Location, AppError> {
    if arg.starts_with("postgres://") || arg.starts_with("postgresql://") {
        Ok(Location::Postgres(Box::new(postgres_target(
            settings, arg,
        )?)))
    } else {
        Ok(Location::Sqlite(PathBuf::from(arg)))
    }
}

/// The PostgreSQL database at `url`, with the password and TLS settings of `[store]`.
pub fn postgres_target(settings: &Settings, url: &str) -> Result<PgTarget, AppError> {
    let store = &settings.config.store;
    let password = store.password.resolve()?;
    let tls = match store.tls {
        StoreTls::None => None,
        StoreTls::Require => Some(
            crate::tls::ServerTrust::new(store.ca_file.as_deref(), crate::tls::Pins::default())
                .and_then(|t| t.client_config())
                .map_err(|e| AppError::Other(format!("[store] TLS to the database: {e}")))?,
        ),
    };
    PgTarget::new(url, password.as_ref().map(|p| p.expose()), tls)
        .map_err(|e| AppError::Other(e.to_string()))
}

/// The coordinator's secret key, if `init` made one (or the config names one).
pub fn coordinator_key(settings: &Settings) -> Result<Option<Cert>, AppError> {
    let path = settings.key_file();
    if !path.exists() {
        if settings.config.coordinator.key_file.is_some() {
            return Err(AppError::Other(format!(
                "coordinator key_file {} does not exist; fix [coordinator] key_file or remove it and run `casegate init`",
                path.display()
            )));
        }
        return Ok(None);
    }
    keyring::read_secret_key_file(&path)
        .map(Some)
        .map_err(|source| AppError::Key { path, source })
}

/// Participants' certificates as stored, plus the coordinator's key.
pub fn load_keyring(settings: &Settings, store: &Store) -> Result<Keyring, AppError> {
    let coordinator = coordinator_key(settings)?;
    Ok(Keyring::new(coordinator, keyring::stored_certs(store)?)
        .with_held(keyring::held_key_changes(store)?))
}

/// A pipeline over the configured store and keyring. It follows the store's keys: what
/// another process imports, revokes or binds counts from its next message on.
pub fn open_pipeline(settings: &Settings) -> Result<Pipeline, AppError> {
    let store = open_store(settings)?;
    let coordinator = coordinator_key(settings)?;
    Ok(Pipeline::from_store(
        store,
        coordinator,
        Rules::from_settings(settings),
    )?)
}

/// What `init` did.
#[derive(Debug, serde::Serialize)]
pub struct Initialized {
    pub data_dir: String,
    pub store: String,
    pub key_file: String,
    pub fingerprint: String,
    pub created_key: bool,
}

/// Creates the data dir, the store and a coordinator key if none exists, and makes what
/// casegate keeps private (tightening looser modes found). Idempotent.
pub fn init(settings: &Settings) -> Result<Initialized, AppError> {
    let store = open_store(settings)?;
    drop(store);
    crate::at_rest::make_private(settings).map_err(|e| {
        AppError::Other(format!(
            "cannot make what casegate keeps under {} private (directories 0700, files 0600): {e}; run casegate as the owner of those files",
            settings.data_dir.display()
        ))
    })?;
    let path = settings.key_file();
    // A configured key_file that does not exist yet is where the new key goes.
    let existing = if path.exists() {
        coordinator_key(settings)?
    } else {
        None
    };
    let (key, created) = match existing {
        Some(k) => (k, false),
        None => {
            let k = keyring::generate_coordinator_key(&settings.config.coordinator.address)
                .map_err(|source| AppError::Key {
                    path: path.clone(),
                    source,
                })?;
            if let Some(parent) = path.parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent).map_err(|source| AppError::DataDir {
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
            keyring::write_secret_key_file(&path, &k).map_err(|source| AppError::Key {
                path: path.clone(),
                source,
            })?;
            (k, true)
        }
    };
    Ok(Initialized {
        data_dir: settings.data_dir.display().to_string(),
        store: store_location(settings)?.to_string(),
        key_file: path.display().to_string(),
        fingerprint: key.fingerprint().to_hex(),
        created_key: created,
    })
}

/// Why one input of `ingest` could not be read (the rest of the batch goes on).
#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}: {reason}")]
pub struct InputError {
    pub path: String,
    pub reason: String,
}

/// Calls `each` for every message in `path`: an .eml file, an mbox file, a Maildir (or a
/// directory of message files), or `-` for one message on stdin. A message over
/// `limits.max_message_bytes` is never read whole (see [`intake`]): `each` gets its
/// [`Intake::Partial`].
pub fn for_each_message(
    path: &str,
    limits: &Limits,
    each: &mut dyn FnMut(MessageSource, Intake),
) -> Result<(), InputError> {
    let err = |reason: String| InputError {
        path: path.to_string(),
        reason,
    };
    if path == "-" {
        let got =
            intake::read_stream(std::io::stdin().lock(), limits).map_err(|e| err(e.to_string()))?;
        each(MessageSource::Stdin, got);
        return Ok(());
    }
    let p = Path::new(path);
    let meta = std::fs::metadata(p).map_err(|e| err(format!("{e}; check the path")))?;
    if meta.is_dir() {
        let maildir = ["cur", "new"].iter().any(|d| p.join(d).is_dir());
        let dirs: Vec<PathBuf> = if maildir {
            vec![p.join("new"), p.join("cur")]
        } else {
            vec![p.to_path_buf()]
        };
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file())
                .collect();
            files.sort();
            for f in files {
                let shown = f.display().to_string();
                match intake::read_file(&f, limits) {
                    Ok(raw) => each(
                        if maildir {
                            MessageSource::Maildir(shown)
                        } else {
                            MessageSource::File(shown)
                        },
                        raw,
                    ),
                    Err(e) => tracing::warn!(file = %shown, error = %e, "unreadable; skipped"),
                }
            }
        }
        return Ok(());
    }
    let mut start = [0u8; 5];
    let is_mbox = {
        use std::io::Read;
        let mut f = std::fs::File::open(p).map_err(|e| err(e.to_string()))?;
        f.read_exact(&mut start).is_ok() && &start == b"From "
    };
    if is_mbox {
        // mbox: one or many messages, each after a "From " line, read one at a time.
        let file = std::fs::File::open(p).map_err(|e| err(e.to_string()))?;
        let iter = mail_parser::mailbox::mbox::MessageIterator::new(std::io::BufReader::new(file));
        for (i, m) in iter.enumerate() {
            match m {
                Ok(m) => {
                    // The mbox reader holds one message; one over the limit is kept in part.
                    let raw = m.unwrap_contents();
                    let got = intake::read_stream(&raw[..], limits)
                        .map_err(|e| err(format!("mbox message {}: {e}", i + 1)))?;
                    drop(raw);
                    each(MessageSource::File(format!("{path}#{}", i + 1)), got)
                }
                Err(e) => return Err(err(format!("mbox message {}: {e}", i + 1))),
            }
        }
        return Ok(());
    }
    let got = intake::read_file(p, limits).map_err(|e| err(e.to_string()))?;
    each(MessageSource::File(path.to_string()), got);
    Ok(())
}
