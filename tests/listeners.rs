//! The listeners against a real pixgate (issue 17): idle kept-alive connections are closed at
//! `limits.keepalive_timeout`, connections past `limits.max_connections` /
//! `max_connections_per_ip` are closed at once while the others carry on, malformed requests
//! never put their bytes (a bearer token, a purge path) in the log, and the graceful-upgrade
//! socket lives in a directory only pixgate's user can write.

mod common;

use common::{metric, photo, Pixgate, Route, TestOrigin};
use pixgate::config::{Config, Dur};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
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

/// A blocking connection to `to` from the loopback address `src` (127.x.y.z are all local).
async fn connect_from(src: [u8; 4], to: SocketAddr) -> TcpStream {
    let sock = tokio::net::TcpSocket::new_v4().expect("socket");
    sock.bind(SocketAddr::from((src, 0))).expect("bind");
    let s = sock.connect(to).await.expect("connect");
    let s = s.into_std().expect("std stream");
    s.set_nonblocking(false).expect("blocking");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s
}

/// Waits until `pixgate_connections_open` is `n`; returns the metrics text.
async fn open_connections(px: &Pixgate, n: f64) -> String {
    let t = Instant::now();
    loop {
        let text = px.metrics().await;
        let open = metric(&text, "pixgate_connections_open", &[]);
        if open == n {
            return text;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "{open} open, not {n}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const PAGE: &str = "GET /page.html HTTP/1.1\r\nHost: a\r\n\r\n";

#[tokio::test]
async fn idle_kept_alive_connections_are_closed_at_the_keepalive_timeout() {
    let origin = TestOrigin::start(vec![
        ("/page.html", Route::ok("text/html", "<p>hi</p>")),
        ("/a.jpg", Route::ok("image/jpeg", photo(64, 48, 1))),
    ]);
    let px = Pixgate::start_with(&origin, |c| c.limits.keepalive_timeout = Dur::secs(1));
    // The proxy path (streamed by pingora), the image path (answered in request_filter) and
    // the admin listener.
    let image = "GET /a.jpg HTTP/1.1\r\nHost: a\r\nAccept: image/jpeg\r\n\r\n";
    let health = "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n";
    for (addr, req, route) in [
        (px.addr, PAGE, "proxy"),
        (px.addr, image, "image"),
        (px.admin, health, "admin"),
    ] {
        let mut s = TcpStream::connect(addr).expect("connect");
        let (status, head, _) = exchange(&mut s, req);
        assert_eq!(status, 200, "{route}: {head}");
        if route == "image" {
            assert!(head.to_ascii_lowercase().contains("x-pixgate"), "{head}");
        }
        let took = closed_within(&mut s, Duration::from_secs(5))
            .unwrap_or_else(|| panic!("{route}: an idle kept-alive connection stayed open 5 s"));
        assert!(
            took >= Duration::from_millis(800) && took < Duration::from_millis(2500),
            "{route}: closed after {took:?}"
        );
    }
    // Within the timeout the connection is reused, request after request.
    let mut s = TcpStream::connect(px.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    for round in 0..3 {
        assert_eq!(exchange(&mut s, PAGE).0, 200, "round {round}");
        std::thread::sleep(Duration::from_millis(500));
    }
    // A client that asked for no keep-alive still gets none.
    let mut s = TcpStream::connect(px.addr).expect("connect");
    let (status, head, _) = exchange(&mut s, "GET /page.html HTTP/1.0\r\nHost: a\r\n\r\n");
    assert_eq!(status, 200);
    assert!(!head.to_ascii_lowercase().contains("keep-alive"), "{head}");
    let took = closed_within(&mut s, Duration::from_secs(5)).expect("HTTP/1.0 kept open");
    assert!(took < Duration::from_millis(500), "{took:?}");
}

#[tokio::test]
async fn connections_past_the_caps_are_closed_at_once_while_others_carry_on() {
    let origin = TestOrigin::start(vec![("/page.html", Route::ok("text/html", "<p>hi</p>"))]);
    let px = Pixgate::start_with(&origin, |c| {
        c.limits.max_connections = 3;
        c.limits.max_connections_per_ip = 2;
        c.rate_limit.per_ip = Some(pixgate::ratelimit::Bucket {
            rate: 1000,
            burst: 1000,
        });
    });
    // The harness's readiness probes have gone.
    open_connections(&px, 0.0).await;
    let mut a1 = connect_from([127, 0, 0, 1], px.addr).await;
    let mut a2 = connect_from([127, 0, 0, 1], px.addr).await;
    assert_eq!(exchange(&mut a1, PAGE).0, 200);
    assert_eq!(exchange(&mut a2, PAGE).0, 200);
    // A third from the same address: over max_connections_per_ip.
    let mut a3 = connect_from([127, 0, 0, 1], px.addr).await;
    let _ = a3.write_all(PAGE.as_bytes());
    let took = closed_within(&mut a3, Duration::from_secs(3)).expect("a3 was served");
    assert!(
        took < Duration::from_millis(500),
        "a3 closed after {took:?}"
    );
    // Another address is still welcome, up to max_connections.
    let mut b1 = connect_from([127, 0, 0, 2], px.addr).await;
    assert_eq!(exchange(&mut b1, PAGE).0, 200);
    let mut c1 = connect_from([127, 0, 0, 3], px.addr).await;
    let _ = c1.write_all(PAGE.as_bytes());
    let took = closed_within(&mut c1, Duration::from_secs(3)).expect("c1 was served");
    assert!(
        took < Duration::from_millis(500),
        "c1 closed after {took:?}"
    );
    // The connections already open carry on.
    for s in [&mut a1, &mut a2, &mut b1] {
        assert_eq!(exchange(s, PAGE).0, 200);
    }
    let text = open_connections(&px, 3.0).await;
    let refused = |limit| {
        metric(
            &text,
            "pixgate_connections_refused_total",
            &[("limit", limit)],
        )
    };
    assert_eq!(refused("per_ip"), 1.0);
    assert_eq!(refused("total"), 1.0);
    // A closed connection gives its place back.
    drop(a1);
    open_connections(&px, 2.0).await;
    let mut a4 = connect_from([127, 0, 0, 1], px.addr).await;
    assert_eq!(exchange(&mut a4, PAGE).0, 200);
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
