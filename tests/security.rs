//! Regression tests for issue 17 (an adversarial review), one per finding, each against the
//! real pixgate binary and a real origin on loopback. Elsewhere: the disk tier's findings (8,
//! 9) in tests/disk.rs, the listeners' (5, 7, 11) in tests/listeners.rs, the coalescing race
//! (13) in tests/cache.rs, IPv6 forms (10) in tests/url_api.rs and src/security/ssrf.rs.

mod common;
use common::faulty::{Fault, FaultyOrigin};
use common::*;
use pixgate::config::{ByteSize, Config, Dur};
use pixgate::security::signing::Signer;
use std::time::{Duration, Instant};

const KEY: &str = "7365637265742d6b65792d6f662d31362b"; // "secret-key-of-16+"
const SALT: &str = "68656c6c6f"; // "hello"
const TOKEN: &str = "purge-token-of-16+";

/// The URL API on, signed with (KEY, SALT), sources limited to `sources`, the loopback
/// address exempt from the SSRF refusal.
fn api(origin: std::net::SocketAddr, sources: Vec<String>) -> Config {
    let mut c = Config::default();
    c.origin.url = format!("http://{origin}");
    c.server.grace_period = Dur::secs(0);
    c.url_api.enabled = true;
    c.url_api.keys = vec![KEY.into()];
    c.url_api.salts = vec![SALT.into()];
    c.url_api.sources = sources;
    c.url_api.allow_ip_ranges = vec!["127.0.0.1/32".into()];
    c
}

/// `/img/{signature}{path}`.
fn signed(path: &str) -> String {
    let h = pixgate::fetch::config::hex;
    let s = Signer::new(vec![(h(KEY).unwrap(), h(SALT).unwrap())], 32, false);
    format!("/img/{}{path}", s.sign(path).unwrap())
}

fn jpeg() -> Vec<u8> {
    photo(320, 240, 7)
}

/// Item 1 (high): an undecodable source that sniffs as JPEG but is HTML, served by the remote
/// source as `text/html` with cookies, CORS and a download name, must reach the client as an
/// inert image: Content-Type from the bytes, only the caching headers of the source, `nosniff`
/// and a sandboxing CSP.
#[tokio::test]
async fn item01_url_api_originals_carry_no_source_headers() {
    let mut polyglot = b"\xFF\xD8\xFF\xE0".to_vec();
    polyglot.extend_from_slice(b"<html><script>alert(document.domain)</script></html>");
    let route = Route::ok("text/html", polyglot.clone())
        .header("set-cookie", "sid=stolen; Domain=.example.com; Path=/")
        .header("clear-site-data", "\"*\"")
        .header("access-control-allow-origin", "*")
        .header("content-disposition", "attachment; filename=x.html")
        .header("server", "evil/1.0")
        .header("x-frame-options", "ALLOWALL")
        .header("cache-control", "max-age=60")
        .header("last-modified", "Tue, 01 Dec 2026 10:00:00 GMT")
        .header("etag", "\"src-1\"");
    let origin = TestOrigin::start(vec![("/evil.jpg", route)]);
    let px = Pixgate::start_config(api(origin.addr, vec![format!("http://{}/", origin.addr)]));
    let path = signed(&format!("/w:100/plain/http://{}/evil.jpg", origin.addr));
    for round in ["miss", "hit"] {
        let (status, h, body) = raw_get(px.addr, &path, &[("accept", CHROME)]);
        assert_eq!(status, 200, "{round}: {h:?}");
        assert_eq!(body, polyglot, "{round}: the original bytes");
        assert_eq!(header_of(&h, "content-type"), Some("image/jpeg"), "{round}");
        for banned in [
            "set-cookie",
            "clear-site-data",
            "access-control-allow-origin",
            "content-disposition",
            "server",
            "x-frame-options",
        ] {
            assert_eq!(header_of(&h, banned), None, "{round}: `{banned}` passed");
        }
        assert_eq!(header_of(&h, "x-content-type-options"), Some("nosniff"));
        let csp = header_of(&h, "content-security-policy").unwrap_or_default();
        assert!(csp.contains("sandbox") && csp.contains("default-src 'none'"));
        assert_eq!(
            header_of(&h, "cache-control"),
            Some("max-age=60"),
            "{round}"
        );
        assert_eq!(
            header_of(&h, "last-modified"),
            Some("Tue, 01 Dec 2026 10:00:00 GMT")
        );
    }
    // Error answers are inert too.
    let (status, h, _) = raw_get(px.addr, "/img/bad-signature/w:1/plain/x", &[]);
    assert_eq!(status, 403);
    assert_eq!(header_of(&h, "x-content-type-options"), Some("nosniff"));
    assert!(header_of(&h, "content-security-policy").is_some_and(|v| v.contains("sandbox")));
}

/// Item 2 (medium): an image that the origin gives only to a session cookie, with no
/// Cache-Control, is not stored and never reaches a cookieless client; `public` answers are
/// shared; `cache.cookies: trust_origin` restores the origin's say.
#[tokio::test]
async fn item02_cookie_authenticated_responses_are_not_shared() {
    let origin = TestOrigin::start(vec![
        ("/cookie/private.jpg", Route::ok("image/jpeg", jpeg())),
        (
            "/cookie/public.jpg",
            Route::ok("image/jpeg", jpeg()).header("cache-control", "public, max-age=600"),
        ),
    ]);
    // Without the AVIF budget: a WebP stand-in answered first (its AVIF still encoding when the
    // next request comes, on a loaded CI machine) would make that request a coalesced MISS.
    let px = Pixgate::start_with(&origin, |c| c.cache.avif_budget = None);
    let r = with_session(&px.url("/cookie/private.jpg")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-cache"], "BYPASS", "not stored");
    let r = get(&px.url("/cookie/private.jpg"), Some(CHROME)).await;
    assert_eq!(
        r.status(),
        403,
        "a cookieless client gets the origin's refusal"
    );
    assert_eq!(origin.hits("/cookie/private.jpg"), 2);
    let m = px.metrics().await;
    assert_eq!(
        metric(
            &m,
            "pixgate_cache_not_stored_total",
            &[("reason", "cookie")]
        ),
        1.0
    );

    // `public` says the origin means to share it.
    let r = with_session(&px.url("/cookie/public.jpg")).await;
    assert_eq!(r.headers()["x-cache"], "MISS");
    let r = get(&px.url("/cookie/public.jpg"), Some(CHROME)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-cache"],
        "HIT",
        "{:?}",
        r.headers().get("x-pixgate")
    );

    // The switch for sites that set cookies everywhere and mark per-user answers private.
    let trusting = Pixgate::start_with(&origin, |c| {
        c.cache.cookies = pixgate::cache::config::CookiePolicy::TrustOrigin;
    });
    let r = with_session(&trusting.url("/cookie/private.jpg")).await;
    assert_eq!(r.headers()["x-cache"], "MISS", "stored under trust_origin");
}

/// A Chrome image request with a session cookie.
async fn with_session(url: &str) -> reqwest::Response {
    client()
        .get(url)
        .header("accept", CHROME)
        .header("cookie", "session=alice")
        .send()
        .await
        .expect("request")
}

fn rules_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("site.yaml"),
        "rules:\n  - name: locked\n    paths: [\"/private/**\"]\n    require_signature: true\n",
    )
    .unwrap();
    dir
}

/// Item 3 (medium): one normal path for rules, the cache key and purge. Every spelling of
/// `/private/a.jpg` meets the rule; every spelling of `/pub/a.jpg` is one cache entry that
/// one purge removes; what has no normal form is a 400.
#[tokio::test]
async fn item03_paths_are_normalised_once_for_rules_keys_and_purge() {
    let r = || Route::ok("image/jpeg", jpeg()).header("cache-control", "max-age=600");
    let origin = TestOrigin::start(vec![
        ("/private/a.jpg", r()),
        ("/pub/a.jpg", r()),
        ("/caf%C3%A9.jpg", r()),
    ]);
    let rules = rules_dir();
    let dir = rules.path().to_path_buf();
    let px = Pixgate::start_with(&origin, move |c| {
        c.rules.dir = Some(dir);
        c.admin.token = Some(TOKEN.into());
    });
    for p in [
        "/private/a.jpg?w=40",
        "/%70rivate/a.jpg?w=40",
        "//private/a.jpg?w=40",
        "/x/../private/a.jpg?w=40",
        "/%2e%2e/private/a.jpg?w=40",
        "/./private/./a.jpg?w=40",
    ] {
        let (status, _, body) = raw_get(px.addr, p, &[("accept", CHROME)]);
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, 403, "{p}: {body}");
        assert!(
            body.contains("only allows signed transforms"),
            "{p}: {body}"
        );
    }
    // An absolute-form target is refused (pingora answers 400) or judged on its path.
    let (status, _, _) = raw_get(
        px.addr,
        "http://example.com/%70rivate/a.jpg?w=40",
        &[("accept", CHROME)],
    );
    assert!(matches!(status, 400 | 403), "absolute form: {status}");
    assert_eq!(origin.hits("/private/a.jpg"), 0);

    let spellings = ["/pub/a.jpg?w=40", "/%70ub/a.jpg?w=40", "//pub/a.jpg?w=40"];
    for (i, p) in spellings.iter().enumerate() {
        let (status, h, _) = raw_get(px.addr, p, &[("accept", CHROME)]);
        assert_eq!(status, 200, "{p}");
        let want = if i == 0 { "MISS" } else { "HIT" };
        assert_eq!(header_of(&h, "x-cache"), Some(want), "{p}");
    }
    assert_eq!(
        origin.hits("/pub/a.jpg"),
        1,
        "the origin sees the normal path"
    );
    assert_eq!(origin.last_uri("/pub/a.jpg"), "/pub/a.jpg");
    let (code, body) = px.purge("url=/x/..//%70ub/a.jpg", Some(TOKEN)).await;
    assert_eq!((code, body.as_str()), (200, "{\"purged\":1}"));
    // Another spelling than the one purged: the purge reached the one stored entry.
    let (_, h, _) = raw_get(px.addr, spellings[2], &[("accept", CHROME)]);
    assert_eq!(header_of(&h, "x-cache"), Some("MISS"), "after purge");
    assert_eq!(origin.hits("/pub/a.jpg"), 2);

    // Raw UTF-8 is the same path as its escapes, and reaches the origin escaped.
    let (status, _, _) = raw_get(px.addr, "/caf\u{e9}.jpg?w=40", &[("accept", CHROME)]);
    assert_eq!(status, 200);
    let (_, h, _) = raw_get(px.addr, "/caf%c3%a9.jpg?w=40", &[("accept", CHROME)]);
    assert_eq!(header_of(&h, "x-cache"), Some("HIT"));
    assert_eq!(origin.hits("/caf%C3%A9.jpg"), 1);

    for p in [
        "/a%zz.jpg",
        "/x%2Fprivate/a.jpg",
        "/a%00.jpg",
        "/%252e%252e/private/a.jpg",
        "/%252Fprivate/a.jpg",
        "/x/..\\private/a.jpg",
        "/public/..;/private/a.jpg?w=40",
        "private/a.jpg?w=40",
        "x:/private/a.jpg?w=40",
    ] {
        let (status, h, body) = raw_get(px.addr, p, &[("accept", CHROME)]);
        assert_eq!(status, 400, "{p}: {}", String::from_utf8_lossy(&body));
        assert_eq!(header_of(&h, "x-content-type-options"), Some("nosniff"));
    }
}

/// Item 4 (medium): the URL API charges `max_buffered_bytes` as the source arrives (its
/// declared length up front). A source that declares 30 MiB and stalls holds the budget; a
/// second one is refused at once instead of being read into memory beside it.
#[tokio::test]
async fn item04_url_api_sources_are_charged_to_the_buffer_budget_as_they_arrive() {
    let stall = FaultyOrigin::start(
        Fault::Stall {
            announced: 30 << 20,
            sent: 1024,
        },
        vec![0xFF; 4096],
    );
    let mut cfg = api(stall.addr, vec![format!("http://{}/", stall.addr)]);
    cfg.limits.max_buffered_bytes = ByteSize(32 << 20);
    cfg.limits.max_source_bytes = ByteSize(32 << 20);
    cfg.url_api.timeout = Dur::secs(3);
    let px = Pixgate::start_config(cfg);
    let first = px.url(&signed(&format!("/w:10/plain/http://{}/a.jpg", stall.addr)));
    let holder = tokio::spawn(async move { get(&first, None).await.status().as_u16() });
    let deadline = Instant::now() + Duration::from_secs(5);
    while stall.hits() < 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let m = px.metrics().await;
    let held = metric(&m, "pixgate_buffered_bytes", &[]);
    assert!(
        held >= (30 << 20) as f64,
        "the declared length is reserved: {held}"
    );

    let t0 = Instant::now();
    let second = px.url(&signed(&format!("/w:10/plain/http://{}/b.jpg", stall.addr)));
    let r = get(&second, None).await;
    let took = t0.elapsed();
    assert_eq!(r.status(), 503, "{:?}", r.text().await);
    assert!(
        took < Duration::from_secs(3),
        "refused at once, not read: {took:?}"
    );
    assert!(px.peak_rss_kib() < 200 * 1024, "{} KiB", px.peak_rss_kib());
    // The stalled source times out (504) and gives its reservation back.
    assert_eq!(holder.await.unwrap(), 504);
    let m = px.metrics().await;
    assert_eq!(metric(&m, "pixgate_buffered_bytes", &[]), 0.0);
}

/// Item 6 (medium): an allowlist entry without a port means the scheme's default port, and
/// its path prefix is judged on the normal path: dot segments resolve before matching,
/// encoded ones are refused; the origin never sees the walked-to path.
#[tokio::test]
async fn item06_source_allowlist_ports_and_paths() {
    let r = || Route::ok("image/jpeg", jpeg());
    let origin = TestOrigin::start(vec![("/media/a.jpg", r()), ("/secret/x.jpg", r())]);
    let o = origin.addr;
    // No port in the entry: port 80 only, not the origin's ephemeral port.
    let px = Pixgate::start_config(api(o, vec!["http://127.0.0.1/media/".into()]));
    let (status, _, body) = raw_get(
        px.addr,
        &signed(&format!("/w:10/plain/http://{o}/media/a.jpg")),
        &[],
    );
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("not in url_api.sources"));

    let px = Pixgate::start_config(api(o, vec![format!("http://{o}/media/")]));
    let ok = signed(&format!("/w:10/plain/http://{o}/media/a.jpg"));
    assert_eq!(raw_get(px.addr, &ok, &[]).0, 200);
    // imgproxy's plain sources are percent-encoded once: `%252e` in the URL API path is a
    // `%2e` in the source URL, which is a dot segment; `%25252e` is a `%252e`, which an origin
    // decoding twice would walk up with, so it is refused outright.
    for (target, want) in [
        (format!("http://{o}/media/../secret/x.jpg"), 403),
        (format!("http://{o}/media/%2e%2e/secret/x.jpg"), 403),
        (format!("http://{o}/media/%252e%252e/secret/x.jpg"), 403),
        (format!("http://{o}/media/%25252e%25252e/secret/x.jpg"), 400),
        (
            format!("http://{o}/media/..%25252f..%25252fsecret/x.jpg"),
            400,
        ),
        (format!("http://{o}/media/%252e%252e%252fsecret/x.jpg"), 400),
    ] {
        let (status, _, body) = raw_get(px.addr, &signed(&format!("/w:10/plain/{target}")), &[]);
        assert_eq!(status, want, "{target}: {}", String::from_utf8_lossy(&body));
    }
    assert_eq!(
        origin.hits("/secret/x.jpg"),
        0,
        "nothing reached the secret"
    );
    assert_eq!(origin.hits("/media/a.jpg"), 1);
}

/// Item 12 (low): signing keys under 16 bytes and signatures under 8 bytes are refused by
/// config validation, with the file, line and key named; the override admits short
/// signatures, never short keys.
#[test]
fn item12_short_keys_and_signatures_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let check = |yaml: &str| {
        let p = dir.path().join("p.yaml");
        std::fs::write(&p, yaml).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pixgate"))
            .args(["check-config", p.to_str().unwrap()])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = check("url_api:\n  keys: [\"ab\"]\n  salts: [\"cd\"]\n  signature_size: 1\n");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("url_api.keys[0]") && err.contains("at least 16 bytes"),
        "{err}"
    );
    assert!(
        err.contains(":4:") && err.contains("url_api.signature_size"),
        "{err}"
    );

    let long = "00112233445566778899aabbccddeeff";
    let (code, err) = check(&format!(
        "url_api:\n  keys: [\"{long}\"]\n  salts: [\"cd\"]\n  signature_size: 4\n  allow_short_signatures: true\n"
    ));
    assert_eq!(code, Some(0), "{err}");
    let (code, err) = check(&format!(
        "url_api:\n  keys: [\"{long}\"]\n  salts: [\"cd\"]\n  signature_size: 8\n"
    ));
    assert_eq!(code, Some(0), "{err}");
}
