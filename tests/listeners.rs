//! The listeners against a real pixgate (issue 17): malformed requests never put their bytes
//! (a bearer token, a purge path) in the log, and the graceful-upgrade socket lives in a
//! directory only pixgate's user can write.

mod common;

use common::{Pixgate, Route, TestOrigin};
use pixgate::config::{Config, Dur};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Reads one Content-Length framed response: (status, header text, body).
fn read_response(s: &mut TcpStream) -> (u16, String, Vec<u8>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut buf).expect("response");
        assert!(
            n > 0,
            "closed mid-response: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&got[..head_end]).to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("no content-length in {head}"));
    while got.len() < head_end + len {
        let n = s.read(&mut buf).expect("body");
        assert!(n > 0, "closed mid-body");
        got.extend_from_slice(&buf[..n]);
    }
    (status, head, got[head_end..head_end + len].to_vec())
}

/// Sends `req` and reads the response.
fn exchange(s: &mut TcpStream, req: &str) -> (u16, String, Vec<u8>) {
    s.write_all(req.as_bytes()).expect("request");
    read_response(s)
}

/// How long until the server closed `s` (EOF or reset); `None` if still open after `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    s.set_read_timeout(Some(within)).expect("timeout");
    let mut b = [0u8; 256];
    match s.read(&mut b) {
        Ok(0) => Some(t0.elapsed()),
        Ok(n) => panic!("unexpected bytes: {:?}", String::from_utf8_lossy(&b[..n])),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
        Err(_) => Some(t0.elapsed()),
    }
}

#[tokio::test]
async fn malformed_requests_never_put_their_bytes_in_the_log() {
    let origin = TestOrigin::start(vec![("/page.html", Route::ok("text/html", "<p>hi</p>"))]);
    let token = "admin-token-0123456789";
    let mut cfg = Config::default();
    cfg.origin.url = format!("http://{}", origin.addr);
    cfg.server.grace_period = Dur::secs(0);
    cfg.admin.token = Some(token.into());
    // DEBUG is where pingora prints the most; the harness's default is `warn`.
    let px = Pixgate::launch(cfg, &[("PIXGATE_LOG", Path::new("debug"))], None);
    let unique = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let secret = format!("sekrit{unique}");
    let path = format!("/private/erase-me-{unique}.jpg");
    // An invalid header name makes the request unparsable after the secrets.
    let bad = |line: &str| {
        format!("{line} HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {secret}\r\nBad Header\x01: x\r\n\r\n")
    };
    let mut admin = TcpStream::connect(px.admin).expect("connect admin");
    admin
        .write_all(bad(&format!("POST /cache/purge?url={path}")).as_bytes())
        .expect("send");
    assert!(closed_within(&mut admin, Duration::from_secs(5)).is_some());
    let mut proxy = TcpStream::connect(px.addr).expect("connect proxy");
    proxy
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    assert_eq!(exchange(&mut proxy, &bad(&format!("GET {path}"))).0, 400);
    // A well-formed request with a token: pingora's DEBUG output prints request headers.
    let mut proxy = TcpStream::connect(px.addr).expect("connect proxy");
    proxy
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let good =
        format!("GET /page.html HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {secret}\r\n\r\n");
    assert_eq!(exchange(&mut proxy, &good).0, 200);
    // The admin listener still answers.
    assert_eq!(px.admin_get("/healthz").await.0, 200);
    assert_eq!(px.purge("all=true", Some(token)).await.0, 200);
    let log = format!("{}{}", px.stderr(), px.stdout());
    for (what, needle) in [("token", secret.as_str()), ("path", unique.as_str())] {
        let at = log.lines().find(|l| l.contains(needle));
        assert!(at.is_none(), "the {what} is in the log: {at:?}");
    }
    // A DEBUG event: the log was at DEBUG, and the failure is still logged, by its kind.
    assert!(
        log.lines()
            .any(|l| l.contains("admin listener: reading a request failed")
                && l.contains("InvalidHTTPHeader")),
        "{log}"
    );
}

#[tokio::test]
async fn the_default_upgrade_socket_lives_in_a_private_runtime_directory() {
    let default = pixgate::upgrade::default_path(&pixgate::upgrade::Env::current());
    assert_ne!(default.parent(), Some(Path::new("/tmp")), "{default:?}");
    assert_eq!(Config::default().server.upgrade_sock, None);

    let origin = TestOrigin::start(vec![("/page.html", Route::ok("text/html", "<p>hi</p>"))]);
    let runtime = tempfile::tempdir().expect("tempdir");
    let mut cfg = Config::default();
    cfg.origin.url = format!("http://{}", origin.addr);
    cfg.server.grace_period = Dur::secs(0);
    let px = Pixgate::launch(cfg, &[("XDG_RUNTIME_DIR", runtime.path())], None);
    let dir = runtime.path().join("pixgate");
    let meta = std::fs::symlink_metadata(&dir).expect("$XDG_RUNTIME_DIR/pixgate was not created");
    assert!(meta.is_dir());
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    let r = common::get(&px.url("/page.html"), None).await;
    assert_eq!(r.status(), 200);
}

#[test]
fn an_upgrade_socket_in_a_directory_others_can_write_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let open = tmp.path().join("open");
    std::fs::create_dir(&open).expect("mkdir");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    let mut socks = vec![open.join("upgrade.sock")];
    // The old default, where /tmp is world-writable (as it nearly always is).
    let tmp_mode = std::fs::metadata("/tmp").map_or(0, |m| m.permissions().mode());
    if tmp_mode & 0o002 != 0 {
        socks.push("/tmp/pixgate_upgrade.sock".into());
    }
    for sock in socks {
        let cfg = tmp.path().join("pixgate.yaml");
        let yaml = format!(
            "listen: 127.0.0.1:{}\norigin:\n  url: http://127.0.0.1:9\nserver:\n  upgrade_sock: {}\n",
            common::free_port(),
            sock.display()
        );
        std::fs::write(&cfg, yaml).expect("config");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pixgate"))
            .arg("--config")
            .arg(&cfg)
            .env("PIXGATE_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let t = Instant::now();
        let status = loop {
            if let Ok(Some(st)) = child.try_wait() {
                break st;
            }
            if t.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "pixgate started with the upgrade socket at {}",
                    sock.display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        assert!(!status.success(), "{}: {err}", sock.display());
        assert!(
            err.contains("server.upgrade_sock") && err.contains("writable"),
            "{}: {err}",
            sock.display()
        );
    }
}
