//! `[http]` with `tls_cert_file`/`tls_key_file`: a real `serve` speaks only HTTPS (rustls,
//! ring), the API answers over it with a bearer token, and the log-in cookies are Secure and
//! `__Host-` prefixed. The certificate is made by openssl at run time; the client is curl.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::cli::{Desk, bin, sigterm, wait_for};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn curl(args: &[&str]) -> std::process::Output {
    Command::new("curl")
        .args(["-s", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl (./run deps installs it)")
}

#[test]
fn tls_listener_serves_https_only_with_secure_cookies() {
    let cg = Desk::new();
    let pem = tempfile::tempdir().unwrap();
    let cert = pem.path().join("http-cert.pem");
    let key = pem.path().join("http-key.pem");
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(made.success(), "openssl could not make a certificate");
    let token = cg.json(&["token", "add", "ann", "--json"])[0]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let port = free_port();
    let config = cg.write(
        "casegate.toml",
        format!(
            "[http]\nlisten = \"127.0.0.1:{port}\"\ntls_cert_file = {:?}\ntls_key_file = {:?}\n\n[maildir]\nenabled = false\n",
            cert.display().to_string(),
            key.display().to_string()
        )
        .as_bytes(),
    );
    let mut serve = Command::new(bin())
        .args(["--config", &config, "--data-dir"])
        .arg(&cg.data)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("https://127.0.0.1:{port}");
    let cacert = cert.display().to_string();
    wait_for("the HTTPS listener", Duration::from_secs(30), || {
        curl(&["--cacert", &cacert, &format!("{base}/api/v1/openapi.json")])
            .status
            .success()
    });

    // The API over TLS, verified against the certificate: 200 with the token, 401 without.
    let who = curl(&[
        "--cacert",
        &cacert,
        "-H",
        &format!("Authorization: Bearer {token}"),
        &format!("{base}/api/v1/whoami"),
    ]);
    let body: serde_json::Value = serde_json::from_slice(&who.stdout).unwrap();
    assert_eq!(body["name"], "ann", "{body}");
    let anon = curl(&[
        "--cacert",
        &cacert,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("{base}/api/v1/whoami"),
    ]);
    assert_eq!(String::from_utf8_lossy(&anon.stdout), "401");

    // The log-in form's cookie: Secure, __Host-, HttpOnly, SameSite=Strict.
    let login = curl(&[
        "--cacert",
        &cacert,
        "-D",
        "-",
        "-o",
        "/dev/null",
        &format!("{base}/login"),
    ]);
    let head = String::from_utf8_lossy(&login.stdout).to_lowercase();
    let cookie = head
        .lines()
        .find(|l| l.starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {head}"));
    for attr in [
        "__host-casegate_login=",
        "secure",
        "httponly",
        "samesite=strict",
        "path=/",
    ] {
        assert!(cookie.contains(attr), "{attr} missing: {cookie}");
    }

    // Plain HTTP on the same port gets no page.
    let plain = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("http://127.0.0.1:{port}/login"),
    ]);
    assert_ne!(String::from_utf8_lossy(&plain.stdout), "200");

    assert_eq!(sigterm(&mut serve), Some(0), "serve did not stop cleanly");
}
