//! The imgproxy-compatible URL API end to end: signed URLs (plain and base64 sources) give the
//! asked geometry and format; tampered, wrong-key and unsigned URLs are refused; a rotated key
//! pair still works; the SSRF battery is refused before any connection; redirects are checked
//! again; oversized and non-image sources are refused; results are cached.

mod common;
use base64::Engine;
use common::tls::TlsOrigin;
use common::*;
use image::GenericImageView;
use pixgate::config::Config;
use pixgate::security::signing::Signer;

const KEY: &str = "7365637265742d6b65792d6f662d31362b"; // "secret-key-of-16+"
const SALT: &str = "68656c6c6f"; // "hello"
const KEY2: &str = "6e65772d6b65792d6f662d31362d62797465"; // "new-key-of-16-byte"
const SALT2: &str = "6e65772d73616c74"; // "new-salt"

fn signer(key: &str, salt: &str) -> Signer {
    let h = pixgate::fetch::config::hex;
    Signer::new(vec![(h(key).unwrap(), h(salt).unwrap())], 32, false)
}

fn photo() -> Vec<u8> {
    let img = image::RgbImage::from_fn(400, 300, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92)
        .encode_image(&img)
        .unwrap();
    out
}

fn api_config(origin: &TestOrigin, tweak: impl FnOnce(&mut Config)) -> Config {
    let mut c = Config::default();
    c.origin.url = format!("http://{}", origin.addr);
    c.server.grace_period = pixgate::config::Dur::secs(0);
    c.url_api.enabled = true;
    c.url_api.keys = vec![KEY.into(), KEY2.into()];
    c.url_api.salts = vec![SALT.into(), SALT2.into()];
    c.url_api.sources = vec![format!("http://{}/", origin.addr)];
    // The test origin is on loopback: exempt exactly its address, nothing else.
    c.url_api.allow_ip_ranges = vec![format!("{}/32", origin.addr.ip())];
    tweak(&mut c);
    c
}

/// `/img/{signature}{path}` signed with (`key`, `salt`).
fn signed(path: &str, key: &str, salt: &str) -> String {
    format!("/img/{}{path}", signer(key, salt).sign(path).unwrap())
}

#[tokio::test]
async fn signed_urls_transform_remote_sources() {
    let origin = TestOrigin::start(vec![(
        "/a.jpg",
        Route::ok("image/jpeg", photo()).header("cache-control", "max-age=600"),
    )]);
    let px = Pixgate::start_config(api_config(&origin, |c| {
        c.metrics.tenants = vec!["acme".into(), "globex".into()];
        c.url_api.tenants = vec!["acme".into(), "globex".into()];
    }));
    let src = format!("http://{}/a.jpg", origin.addr);

    let path = format!("/rs:fill:120:80/g:sm/plain/{src}@webp");
    let r = get(&px.url(&signed(&path, KEY, SALT)), Some("*/*")).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let r = get(&px.url(&signed(&path, KEY, SALT)), Some("*/*")).await;
    assert_eq!(r.headers()["content-type"], "image/webp");
    assert_eq!(
        r.headers()["x-cache"],
        "HIT",
        "the URL API shares the cache"
    );
    assert_eq!(decode(&r.bytes().await.unwrap()).dimensions(), (120, 80));
    assert_eq!(origin.hits("/a.jpg"), 1);

    let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&src);
    let (a, b) = enc.split_at(enc.len() / 2);
    let path = format!("/rs:fit:100:100/{a}/{b}.png");
    let r = get(&px.url(&signed(&path, KEY, SALT)), Some("*/*")).await;
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(decode(&r.bytes().await.unwrap()).dimensions(), (100, 75));

    // Negotiated when no format is asked: Chrome gets AVIF.
    let path = format!("/w:64/plain/{src}");
    let r = get(&px.url(&signed(&path, KEY2, SALT2)), Some(CHROME)).await;
    assert_eq!(r.status(), 200, "the second (rotated) key pair verifies");
    assert_eq!(r.headers()["content-type"], "image/avif");
    assert_eq!(decode(&r.bytes().await.unwrap()).width(), 64);

    // Metering: each signing key's tenant (url_api.tenants, by position), on the api route.
    let text = px.metrics_settled().await;
    let t = |name: &str| metric(&text, "pixgate_tenant_requests_total", &[("tenant", name)]);
    assert_eq!((t("acme"), t("globex"), t("none")), (3.0, 1.0, 0.0));
    assert_eq!(
        metric(&text, "pixgate_requests_total", &[("route", "api")]),
        4.0
    );
    assert_eq!(
        metric(&text, "pixgate_origin_bytes_total", &[("route", "api")]),
        3.0 * photo().len() as f64,
        "three misses fetched the source; the hit fetched nothing"
    );
}

#[tokio::test]
async fn bad_signatures_and_options_are_refused() {
    let origin = TestOrigin::start(vec![("/a.jpg", Route::ok("image/jpeg", photo()))]);
    let px = Pixgate::start_config(api_config(&origin, |_| {}));
    let src = format!("http://{}/a.jpg", origin.addr);
    let path = format!("/rs:fill:120:80/plain/{src}");
    let good = signed(&path, KEY, SALT);
    let tampered = good.replace("120:80", "121:80");
    let wrong = signed(&path, "77726f6e67", SALT);
    for (url, why) in [
        (tampered, "tampered"),
        (wrong, "wrong key"),
        (format!("/img/insecure{path}"), "unsigned"),
        (
            format!("/img/{}", "x".repeat(43)) + &path,
            "garbage signature",
        ),
    ] {
        let r = get(&px.url(&url), Some("*/*")).await;
        assert_eq!(r.status(), 403, "{why}");
        assert!(
            r.text().await.unwrap().contains("invalid signature"),
            "{why}"
        );
    }
    assert_eq!(origin.hits("/a.jpg"), 0, "nothing was fetched");
    let r = get(
        &px.url(&signed(&format!("/page:2/plain/{src}"), KEY, SALT)),
        Some("*/*"),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("parameter `page`"));
    // A watermark when none is configured.
    let r = get(
        &px.url(&signed(&format!("/wm:1/plain/{src}"), KEY, SALT)),
        Some("*/*"),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("watermark `default` is not configured"));
    let r = get(
        &px.url(&signed(&format!("/exp:1000/plain/{src}"), KEY, SALT)),
        Some("*/*"),
    )
    .await;
    assert_eq!(r.status(), 404, "expired");

    // Unsigned URLs only when the config allows them.
    let px = Pixgate::start_config(api_config(&origin, |c| c.url_api.allow_unsigned = true));
    let r = get(&px.url(&format!("/img/insecure{path}")), Some("*/*")).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn the_ssrf_battery_is_refused() {
    let origin = TestOrigin::start(vec![
        ("/a.jpg", Route::ok("image/jpeg", photo())),
        (
            "/to-private",
            Route {
                status: 302,
                headers: vec![("location".into(), "http://10.0.0.1/x.jpg".into())],
                body: bytes::Bytes::new(),
                chunked: false,
                delay: None,
            },
        ),
        (
            "/to-self",
            Route {
                status: 302,
                headers: vec![("location".into(), "/a.jpg".into())],
                body: bytes::Bytes::new(),
                chunked: false,
                delay: None,
            },
        ),
    ]);
    // Any host is allowed by the allowlist: the address checks alone must refuse.
    let px = Pixgate::start_config(api_config(&origin, |c| {
        c.url_api.sources = vec!["http://*:*/".into()];
        c.url_api.allow_ip_ranges = vec![];
    }));
    for target in [
        "http://127.0.0.1/a.jpg".to_string(),
        format!("http://{}/a.jpg", origin.addr),
        "http://localhost/a.jpg".into(),
        "http://169.254.169.254/latest/meta-data/".into(),
        "http://10.0.0.1/a.jpg".into(),
        "http://100.64.0.1/a.jpg".into(),
        "http://[::1]/a.jpg".into(),
        "http://[::ffff:127.0.0.1]/a.jpg".into(),
        "http://0.0.0.0/a.jpg".into(),
        "http://[fd00:ec2::254]/".into(),
        // Issue 17 item 10: SIIT (::ffff:0:a.b.c.d) and local-use NAT64 (64:ff9b:1::/48).
        "http://[::ffff:0:7f00:1]/a.jpg".into(),
        "http://[::ffff:0:a9fe:a9fe]/latest/meta-data/".into(),
        "http://[64:ff9b:1::7f00:1]/a.jpg".into(),
    ] {
        let r = get(
            &px.url(&signed(&format!("/w:10/plain/{target}"), KEY, SALT)),
            None,
        )
        .await;
        let code = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert_eq!(code, 403, "{target}: {body}");
        assert!(body.contains("not allowed"), "{target}: {body}");
        // The refusal does not map the network for the caller: no address class named.
        for class in [
            "loopback",
            "private",
            "link-local",
            "metadata",
            "NAT",
            "unique",
        ] {
            assert!(!body.contains(class), "{target}: {body} names `{class}`");
        }
    }
    assert_eq!(
        origin.hits("/a.jpg"),
        0,
        "no connection was made to the loopback origin"
    );

    // The origin itself is exempt here, so its redirect to a private address is what's judged.
    let px = Pixgate::start_config(api_config(&origin, |c| {
        c.url_api.sources = vec!["http://*:*/".into()];
    }));
    let url = signed(
        &format!("/w:10/plain/http://{}/to-private", origin.addr),
        KEY,
        SALT,
    );
    let r = get(&px.url(&url), None).await;
    assert_eq!(r.status(), 403, "a redirect to a private address");
    let url = signed(
        &format!("/w:10/plain/http://{}/to-self", origin.addr),
        KEY,
        SALT,
    );
    let r = get(&px.url(&url), None).await;
    assert_eq!(
        r.status(),
        200,
        "a redirect that passes the checks is followed"
    );
    assert_eq!(decode(&r.bytes().await.unwrap()).width(), 10);

    // Not in the allowlist: refused by name, before any lookup.
    let px = Pixgate::start_config(api_config(&origin, |_| {}));
    for target in ["http://example.com/a.jpg", "http://127.0.0.1.nip.io/a.jpg"] {
        let r = get(
            &px.url(&signed(&format!("/w:10/plain/{target}"), KEY, SALT)),
            None,
        )
        .await;
        assert_eq!(r.status(), 403, "{target}");
        assert!(r.text().await.unwrap().contains("not in url_api.sources"));
    }
    let m = px.metrics().await;
    assert!(
        metric(
            &m,
            "pixgate_remote_refusals_total",
            &[("kind", "not_allowed")]
        ) >= 2.0
    );
}

#[tokio::test]
async fn oversized_and_non_image_sources_are_refused() {
    let big = photo();
    assert!(big.len() > 4096);
    let origin = TestOrigin::start(vec![
        ("/big.jpg", Route::ok("image/jpeg", big.clone())),
        ("/big-chunked.jpg", Route::ok("image/jpeg", big).chunked()),
        (
            "/page.jpg",
            Route::ok("text/html", "<html>not an image</html>"),
        ),
        (
            "/gone.jpg",
            Route {
                status: 404,
                headers: vec![],
                body: bytes::Bytes::new(),
                chunked: false,
                delay: None,
            },
        ),
    ]);
    let px = Pixgate::start_config(api_config(&origin, |c| {
        c.limits.max_source_bytes = pixgate::config::ByteSize(4096);
    }));
    for (p, code, text) in [
        ("/big.jpg", 422, "larger than"),
        ("/big-chunked.jpg", 422, "larger than"),
        ("/page.jpg", 422, "not an image"),
        ("/gone.jpg", 404, "answered 404"),
    ] {
        let url = signed(&format!("/w:10/plain/http://{}{p}", origin.addr), KEY, SALT);
        let r = get(&px.url(&url), None).await;
        assert_eq!(r.status(), code, "{p}");
        assert!(r.text().await.unwrap().contains(text), "{p}");
    }
}

#[tokio::test]
async fn https_sources_are_verified_against_the_configured_roots() {
    let tls = TlsOrigin::start(photo(), "image/jpeg");
    let plain = TestOrigin::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &tls.ca_pem).unwrap();
    let cfg = |ca_file: Option<std::path::PathBuf>| {
        api_config(&plain, |c| {
            c.url_api.sources = vec![format!("https://127.0.0.1:{}/", tls.addr.port())];
            c.url_api.allow_ip_ranges = vec!["127.0.0.1/32".into()];
            c.url_api.ca_file = ca_file;
        })
    };
    let path = format!(
        "/rs:fit:100:100/plain/https://127.0.0.1:{}/a.jpg@webp",
        tls.addr.port()
    );

    let px = Pixgate::start_config(cfg(Some(ca.clone())));
    let r = get(&px.url(&signed(&path, KEY, SALT)), None).await;
    assert_eq!(r.status(), 200, "{:?}", r.headers());
    assert_eq!(r.headers()["content-type"], "image/webp");
    assert_eq!(decode(&r.bytes().await.unwrap()).dimensions(), (100, 75));
    assert_eq!(tls.hits(), 1);

    // The same source with only the system's roots: the test CA is not trusted.
    let px = Pixgate::start_config(cfg(None));
    let r = get(&px.url(&signed(&path, KEY, SALT)), None).await;
    assert_eq!(r.status(), 502, "an untrusted certificate is refused");
    assert_eq!(
        tls.hits(),
        1,
        "no request was sent over the untrusted connection"
    );
}
