//! A Web Key Directory for tests: a static HTTPS server (tests/support/https_files.py) with a
//! certificate signed by the mail servers' test CA, serving the keys the test publishes.
//! casegate reaches it through `[keys.wkd] resolve`, so no real DNS is asked.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Wkd {
    pub port: u16,
    pub root: tempfile::TempDir,
    log: PathBuf,
    child: Child,
}

impl Wkd {
    /// Serves over TLS with `cert`/`key` (e.g. [`super::MailServers::leaf_certificate`]).
    pub fn start(cert: &Path, key: &Path) -> Wkd {
        let root = tempfile::tempdir().unwrap();
        let state = root.path().join(".state");
        std::fs::create_dir_all(&state).unwrap();
        let ready = state.join("port");
        let log = state.join("requests.log");
        let child = Command::new("/usr/bin/python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/https_files.py"))
            .arg(root.path())
            .arg(cert)
            .arg(key)
            .arg(&ready)
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(state.join("stderr")).unwrap())
            .spawn()
            .expect("start /usr/bin/python3");
        let mut w = Wkd {
            port: 0,
            root,
            log,
            child,
        };
        for _ in 0..300 {
            if let Ok(p) = std::fs::read_to_string(&ready) {
                w.port = p.trim().parse().unwrap();
                return w;
            }
            if let Ok(Some(status)) = w.child.try_wait() {
                panic!(
                    "WKD test server exited ({status}): {}",
                    std::fs::read_to_string(state.join("stderr")).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("WKD test server did not start");
    }

    /// Publishes `key` (binary) for `address` by the advanced method.
    pub fn publish(&self, address: &str, key: &[u8]) {
        let (_, domain) = address.rsplit_once('@').unwrap();
        let url = casegate::trust::wkd::urls(address).unwrap()[0].clone();
        let hash = url.rsplit('/').next().unwrap().split('?').next().unwrap();
        let dir = self
            .root
            .path()
            .join(".well-known/openpgpkey")
            .join(domain)
            .join("hu");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(hash), key).unwrap();
    }

    /// The paths asked for so far.
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Wkd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
