//! TLS and HTTP/2 (issue 20): `tls: { cert, key }` turns `listen` into a TLS listener that
//! speaks HTTP/2 and HTTP/1.1 by ALPN, checked by a real HTTP/2 client (hyper over rustls)
//! trusting only a CA made for the test; the certificate is reloaded on SIGHUP; `server.h2c`
//! serves HTTP/2 without TLS beside HTTP/1.1, and an HTTP/2 connection outlives the HTTP/1
//! header deadline; an `https://` origin is verified against `origin.ca_file`.

mod common;

use bytes::Bytes;
use common::tls::{TestCert, TlsOrigin};
use common::{Pixgate, Route, TestOrigin};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use pixgate::config::{Config, Dur};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::rustls;

const PAGE: &str = "<!doctype html><title>tls</title><p>over TLS</p>";

fn write_cert(dir: &Path, c: &TestCert) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    // Written beside and renamed, as a certificate renewal does: never half a file.
    std::fs::write(dir.join("cert.tmp"), &c.cert_pem).expect("cert");
    std::fs::write(dir.join("key.tmp"), &c.key_pem).expect("key");
    std::fs::rename(dir.join("cert.tmp"), &cert).expect("rename cert");
    std::fs::rename(dir.join("key.tmp"), &key).expect("rename key");
    (cert, key)
}

fn with_tls(c: &mut Config, cert: std::path::PathBuf, key: std::path::PathBuf) {
    c.tls = Some(pixgate::tls::TlsConfig {
        cert,
        key,
        h2: true,
    });
}

/// A TLS connection to `addr` trusting `ca` only, offering `alpn`.
async fn connect(
    addr: SocketAddr,
    ca: &TestCert,
    alpn: &[&[u8]],
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    tokio_rustls::TlsConnector::from(ca.client_config(alpn))
        .connect(name, tcp)
        .await
}

/// An HTTP/2 client on `io`.
async fn h2<T>(io: T) -> hyper::client::conn::http2::SendRequest<Empty<Bytes>>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    send
}

/// GET `path` on `send`: (version, status, body).
async fn h2_get(
    send: &mut hyper::client::conn::http2::SendRequest<Empty<Bytes>>,
    authority: &str,
    path: &str,
) -> (http::Version, u16, String) {
    let req = http::Request::get(format!("https://{authority}{path}"))
        .body(Empty::new())
        .expect("request");
    let r = send.send_request(req).await.expect("h2 response");
    let (v, s) = (r.version(), r.status().as_u16());
    let body = r.into_body().collect().await.expect("body").to_bytes();
    (v, s, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn tls_listener_speaks_http2_and_http1_and_reloads_its_certificate_on_sighup() {
    let origin = TestOrigin::start(vec![(
        "/page.html",
        Route::ok("text/html", PAGE).header("cache-control", "max-age=60"),
    )]);
    let dir = tempfile::tempdir().expect("tempdir");
    let first = TestCert::new("first CA");
    let (cert, key) = write_cert(dir.path(), &first);
    let p = Pixgate::start_with(&origin, |c| with_tls(c, cert, key));

    // HTTP/2 by ALPN.
    let tls = connect(p.addr, &first, &[b"h2", b"http/1.1"])
        .await
        .expect("tls");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let mut send = h2(tls).await;
    let authority = format!("localhost:{}", p.addr.port());
    let (v, s, body) = h2_get(&mut send, &authority, "/page.html").await;
    assert_eq!((v, s, body.as_str()), (http::Version::HTTP_2, 200, PAGE));
    // The origin saw the client's authority as Host (HTTP/2 sends no Host header).
    assert_eq!(origin.last_headers("/page.html")["host"], authority);

    // HTTP/1.1 when the client offers only that.
    let tls = connect(p.addr, &first, &[b"http/1.1"])
        .await
        .expect("tls h1");
    let (mut send1, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("h1 handshake");
    tokio::spawn(conn);
    let req = http::Request::get("/page.html")
        .header("host", &authority)
        .body(Empty::<Bytes>::new())
        .expect("request");
    let r = send1.send_request(req).await.expect("h1 response");
    assert_eq!(
        (r.version(), r.status().as_u16()),
        (http::Version::HTTP_11, 200)
    );
    assert_eq!(r.headers()["x-cache"], "HIT");

    // A renewed certificate (another CA) after SIGHUP: new handshakes get it.
    let second = TestCert::new("second CA");
    write_cert(dir.path(), &second);
    let pid = p.pid().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    assert!(
        common::wait_until_async(Duration::from_secs(5), || async {
            connect(p.addr, &second, &[b"h2"]).await.is_ok()
        })
        .await,
        "the reloaded certificate never showed"
    );
    assert!(
        connect(p.addr, &first, &[b"h2"]).await.is_err(),
        "the old certificate is still served"
    );
    // A broken file keeps the current certificate.
    std::fs::write(dir.path().join("cert.pem"), "not a certificate").expect("break");
    std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut send = h2(connect(p.addr, &second, &[b"h2"])
        .await
        .expect("still served"))
    .await;
    assert_eq!(h2_get(&mut send, &authority, "/page.html").await.1, 200);
    let m = p.metrics().await;
    assert_eq!(
        common::metric(&m, "pixgate_tls_reloads_total", &[("outcome", "ok")]),
        1.0
    );
    assert_eq!(
        common::metric(&m, "pixgate_tls_reloads_total", &[("outcome", "error")]),
        1.0
    );
}

#[tokio::test]
async fn h2c_serves_http2_beside_http1_and_outlives_the_header_deadline() {
    let origin = TestOrigin::start(vec![(
        "/page.html",
        Route::ok("text/html", PAGE).header("cache-control", "max-age=60"),
    )]);
    let p = Pixgate::start_with(&origin, |c| {
        c.server.h2c = true;
        c.limits.header_timeout = Dur::secs(1);
    });
    let tcp = TcpStream::connect(p.addr).await.expect("connect");
    let mut send = h2(tcp).await;
    let authority = format!("127.0.0.1:{}", p.addr.port());
    let (v, s, body) = h2_get(&mut send, &authority, "/page.html").await;
    assert_eq!((v, s, body.as_str()), (http::Version::HTTP_2, 200, PAGE));
    // Past limits.header_timeout, again and again: the HTTP/1 header deadline (which would
    // wait for a blank line that binary frames never carry) must not cut HTTP/2.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1300)).await;
        let (_, s, body) = h2_get(&mut send, &authority, "/page.html").await;
        assert_eq!((s, body.as_str()), (200, PAGE));
    }
    // HTTP/1.1 on the same port.
    let r = common::client()
        .get(p.url("/page.html"))
        .send()
        .await
        .expect("h1");
    assert_eq!(
        (r.version(), r.status().as_u16()),
        (http::Version::HTTP_11, 200)
    );
}

/// GET `/any.html` through a pixgate in front of https origin `o`, trusting `ca_file` and
/// presenting `client` (certificate, key): (status, body).
async fn through(
    o: &TlsOrigin,
    ca_file: Option<std::path::PathBuf>,
    client: Option<(std::path::PathBuf, std::path::PathBuf)>,
) -> (u16, String) {
    let mut cfg = Config::default();
    cfg.origin.url = format!("https://localhost:{}", o.addr.port());
    cfg.origin.ca_file = ca_file;
    if let Some((c, k)) = client {
        cfg.origin.client_cert = Some(c);
        cfg.origin.client_key = Some(k);
    }
    cfg.server.grace_period = Dur::secs(0);
    let p = Pixgate::start_config(cfg);
    let r = common::client()
        .get(p.url("/any.html"))
        .send()
        .await
        .expect("get");
    (r.status().as_u16(), r.text().await.expect("body"))
}

/// Writes `o`'s CA to a file in `dir`.
fn origin_ca(o: &TlsOrigin, dir: &Path) -> std::path::PathBuf {
    let ca = dir.join("origin-ca.pem");
    std::fs::write(&ca, &o.ca_pem).expect("ca");
    ca
}

#[tokio::test]
async fn an_https_origin_is_verified_against_its_ca_file() {
    let o = TlsOrigin::start(PAGE.as_bytes().to_vec(), "text/html");
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = origin_ca(&o, dir.path());
    assert_eq!(through(&o, Some(ca), None).await, (200, PAGE.to_string()));
    assert_eq!(o.hits(), 1);
    // Without the CA (the system roots do not know it): the handshake fails, 502.
    assert_eq!(through(&o, None, None).await.0, 502);
    assert_eq!(o.hits(), 1, "no request reached an unverified origin");
}

#[tokio::test]
async fn an_https_origin_that_wants_a_client_certificate_gets_the_configured_one() {
    let clients = TestCert::new("client CA");
    let o = TlsOrigin::start_with(PAGE.as_bytes().to_vec(), "text/html", Some(&clients));
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = origin_ca(&o, dir.path());
    let client = write_cert(dir.path(), &clients);
    assert_eq!(
        through(&o, Some(ca.clone()), None).await.0,
        502,
        "no client certificate: refused"
    );
    assert_eq!(o.hits(), 0);
    assert_eq!(through(&o, Some(ca), Some(client)).await.0, 200);
    assert_eq!(o.hits(), 1);
}

#[test]
fn bad_tls_files_are_refused_at_start_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, "junk").expect("write");
    let mut c = Config::default();
    with_tls(&mut c, cert.clone(), cert);
    let problems = c.validate();
    assert!(
        problems.iter().any(|(k, _)| k == "tls.cert"),
        "{problems:?}"
    );
    let mut c = Config::default();
    c.origin.url = "https://localhost:9".into();
    c.origin.ca_file = Some(dir.path().join("missing.pem"));
    let problems = c.validate();
    assert!(
        problems
            .iter()
            .any(|(k, m)| k == "origin.ca_file" && m.contains("missing.pem")),
        "{problems:?}"
    );
}
