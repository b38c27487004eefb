//! Metering and access logs against a real origin and a real pixgate: after a scripted mix of
//! requests the counters and byte totals in `/metrics` equal what the test sent and received,
//! the access log has one line per request and no path, filename, User-Agent or full client
//! address, the oldest-entry gauge falls after the retention limit, label sets stay bounded
//! over 1,000 distinct paths, and `/healthz` / `/readyz` tell alive from ready.

mod common;

use common::{client, metric, photo, Pixgate, Route, TestOrigin, CHROME, FIREFOX, SAFARI};
use pixgate::config::Dur;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const UA: &str = "SecretAgent/7.1 (pixgate-metering-test)";

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_fn(w, h, |x, y| {
        image::Rgba([(x * 4) as u8, (y * 4) as u8, 128, 255])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

const HTML: &str = "<!doctype html><title>metering</title><p>hello</p>";

const RULES: &str = r#"rules:
  - name: acme-site
    paths: ["/acme/**"]
    tenant: acme
"#;

/// One response as the client saw it.
#[derive(Debug, Clone)]
struct Seen {
    route: &'static str,
    status: u16,
    cache: String,
    format: String,
    bytes: u64,
}

async fn send(px: &Pixgate, path: &str, accept: &str) -> Seen {
    let r = client()
        .get(px.url(path))
        .header("accept", accept)
        .header("user-agent", UA)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let h = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let cache = h("x-cache").map_or("none".to_string(), |c| c.to_ascii_lowercase());
    // The debug header names what was sent: a format, or `original; reason=...`.
    let format = match h("x-pixgate") {
        Some(n) if n.starts_with("original") => "original".to_string(),
        Some(n) => n,
        None => "none".to_string(),
    };
    let bytes = r.bytes().await.unwrap().len() as u64;
    let is_image = [".jpg", ".png"]
        .iter()
        .any(|e| path.split('?').next().unwrap().ends_with(e));
    Seen {
        route: if is_image { "image" } else { "proxy" },
        status,
        cache,
        format,
        bytes,
    }
}

fn class(code: u16) -> &'static str {
    match code {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[tokio::test]
async fn counters_bytes_tenants_and_log_match_the_traffic() {
    let jpg = photo(400, 300, 1);
    let pngb = png(64, 64);
    let origin = TestOrigin::start(vec![
        (
            "/gallery/holiday-photo.jpg",
            Route::ok("image/jpeg", jpg.clone()).header("cache-control", "max-age=3600"),
        ),
        (
            "/acme/logo-secret.png",
            Route::ok("image/png", pngb.clone()).header("cache-control", "max-age=3600"),
        ),
        ("/docs/page.html", Route::ok("text/html", HTML)),
    ]);
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(rules.path().join("site.yaml"), RULES).unwrap();
    let dir = rules.path().to_path_buf();
    let px = Pixgate::start_with(&origin, move |c| {
        c.cache.avif_budget = None;
        c.rules.dir = Some(dir);
        c.metrics.tenants = vec!["acme".into(), "globex".into()];
    });

    let script: Vec<(&str, &str)> = vec![
        ("/gallery/holiday-photo.jpg", CHROME),
        ("/gallery/holiday-photo.jpg", FIREFOX),
        ("/gallery/holiday-photo.jpg", SAFARI),
        ("/gallery/holiday-photo.jpg", "*/*"),
        ("/docs/page.html", "text/html"),
        ("/docs/page.html", "text/html"),
        ("/gallery/missing-cat.jpg", CHROME),
        ("/gallery/holiday-photo.jpg?w=abc", CHROME),
        ("/acme/logo-secret.png", FIREFOX),
        ("/acme/logo-secret.png", FIREFOX),
    ];
    let mut seen = Vec::new();
    for (path, accept) in &script {
        seen.push(send(&px, path, accept).await);
        // pingora writes a request's log line after its response, so a fast next request (a
        // hit) could log first: wait for this one's line to keep the log in request order.
        let _ = px.access_log(seen.len());
    }
    let text = px.metrics_settled().await;

    // Requests: exact count per (route, status class, cache result).
    let mut want: BTreeMap<(&str, &str, String), f64> = BTreeMap::new();
    for s in &seen {
        *want
            .entry((s.route, class(s.status), s.cache.clone()))
            .or_default() += 1.0;
    }
    for ((route, status, cache), n) in &want {
        let got = metric(
            &text,
            "pixgate_requests_total",
            &[("route", route), ("status", status), ("cache", cache)],
        );
        assert_eq!(got, *n, "requests {route} {status} {cache}");
    }
    let total: f64 = ["image", "proxy"]
        .iter()
        .map(|r| metric(&text, "pixgate_requests_total", &[("route", r)]))
        .sum();
    assert_eq!(total, seen.len() as f64);
    // Only the harness's own scrapes are admin requests (metrics_settled may scrape more than
    // once on a loaded machine): no proxied request is counted as one.
    assert_eq!(
        metric(&text, "pixgate_requests_total", &[("route", "admin")]),
        (px.admin_calls() - 1) as f64
    );
    // The scripted mix covers hits, misses, a 404 and a 400.
    assert!(want.keys().any(|k| k.2 == "hit") && want.keys().any(|k| k.2 == "miss"));
    assert!(seen.iter().any(|s| s.status == 404) && seen.iter().any(|s| s.status == 400));

    // Bytes to clients: exact per route and per response format.
    let mut bytes: BTreeMap<(&str, String), f64> = BTreeMap::new();
    for s in &seen {
        *bytes.entry((s.route, s.format.clone())).or_default() += s.bytes as f64;
    }
    for ((route, format), n) in &bytes {
        let got = metric(
            &text,
            "pixgate_response_bytes_total",
            &[("route", route), ("format", format)],
        );
        assert_eq!(got, *n, "response bytes {route} {format}");
    }
    let sent: u64 = seen.iter().map(|s| s.bytes).sum();
    assert_eq!(
        metric(&text, "pixgate_response_bytes_total", &[]),
        sent as f64
    );

    // Bytes from the origin: each miss fetched its source once, the 404 its body, the
    // pages theirs; the 400 and the hits fetched nothing.
    let misses_jpg = seen[..4].iter().filter(|s| s.cache != "hit").count() as u64;
    assert_eq!(misses_jpg, 2, "{seen:?}");
    let want_origin_image = misses_jpg * jpg.len() as u64 + pngb.len() as u64 + 4;
    assert_eq!(
        metric(&text, "pixgate_origin_bytes_total", &[("route", "image")]),
        want_origin_image as f64
    );
    assert_eq!(
        metric(&text, "pixgate_origin_bytes_total", &[("route", "proxy")]),
        2.0 * HTML.len() as f64
    );
    assert_eq!(origin.hits("/gallery/holiday-photo.jpg"), 2);

    // Transforms: one per miss, by format and outcome.
    let misses = seen
        .iter()
        .filter(|s| s.route == "image" && s.cache == "miss")
        .count() as f64;
    assert_eq!(metric(&text, "pixgate_image_transforms_total", &[]), misses);
    assert_eq!(
        metric(
            &text,
            "pixgate_image_transforms_total",
            &[("source", "jpeg"), ("output", "avif"), ("outcome", "ok")]
        ),
        1.0
    );
    assert_eq!(
        metric(&text, "pixgate_image_savings_ratio_count", &[]),
        metric(
            &text,
            "pixgate_image_transforms_total",
            &[("outcome", "ok")]
        )
    );

    // Tenants: the rule's tenant for /acme/, `none` for the rest, nothing for globex.
    let acme: Vec<&Seen> = seen[8..].iter().collect();
    let acme_bytes: u64 = acme.iter().map(|s| s.bytes).sum();
    let t = |name: &str, m: &str| metric(&text, m, &[("tenant", name)]);
    assert_eq!(t("acme", "pixgate_tenant_requests_total"), 2.0);
    assert_eq!(
        t("acme", "pixgate_tenant_response_bytes_total"),
        acme_bytes as f64
    );
    assert_eq!(
        t("acme", "pixgate_tenant_origin_bytes_total"),
        pngb.len() as f64
    );
    assert!(t("acme", "pixgate_tenant_transform_seconds_total") > 0.0);
    assert_eq!(t("none", "pixgate_tenant_requests_total"), 8.0);
    assert_eq!(t("globex", "pixgate_tenant_requests_total"), 0.0);
    assert_eq!(
        t("none", "pixgate_tenant_response_bytes_total") + acme_bytes as f64,
        sent as f64
    );
    assert_eq!(metric(&text, "pixgate_requests_in_flight", &[]), 0.0);
    assert_eq!(
        metric(
            &text,
            "pixgate_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );

    // The admin listener counts itself (this scrape saw the previous one).
    let again = px.metrics().await;
    assert_eq!(
        metric(&again, "pixgate_requests_total", &[("route", "admin")]),
        1.0
    );

    // The access log: one JSON line per request, in order, agreeing with the responses.
    let lines = px.access_log(seen.len());
    assert_eq!(lines.len(), seen.len(), "{}", px.stdout());
    for (l, s) in lines.iter().zip(&seen) {
        assert_eq!(l["route"], s.route, "{l}");
        assert_eq!(l["status"], s.status, "{l}");
        assert_eq!(l["cache"], s.cache.as_str(), "{l}");
        assert_eq!(l["bytes_out"], s.bytes, "{l}");
        assert_eq!(l["method"], "GET");
        assert_eq!(l["client"], "127.0.0.0/24");
        assert!(l["duration_ms"].as_f64().unwrap() > 0.0);
        assert!(l.get("path").is_none() && l.get("path_hash").is_none());
        if s.format != "none" {
            assert_eq!(l["output_format"], s.format.as_str(), "{l}");
        }
    }
    assert_eq!(lines[0]["source_format"], "jpeg");
    assert!(lines[0]["transform_ms"].as_f64().unwrap() > 0.0);
    assert!(lines[0]["savings"].as_f64().unwrap() > 0.3);
    assert!(
        lines[1].get("transform_ms").is_none(),
        "a hit ran no transform"
    );
    assert_eq!(lines[8]["tenant"], "acme");
    assert_eq!(lines[0]["tenant"], "none");
    let raw = px.stdout();
    for secret in [
        "holiday-photo",
        "missing-cat",
        "page.html",
        "logo-secret",
        "gallery",
        "/acme",
        "w=abc",
        "SecretAgent",
        "127.0.0.1",
    ] {
        assert!(!raw.contains(secret), "the access log contains `{secret}`");
        assert!(
            !px.stderr().contains(secret),
            "the diagnostic log contains `{secret}`"
        );
    }
}

#[tokio::test]
async fn paths_are_hashed_or_shown_only_when_configured() {
    let origin = TestOrigin::start(vec![("/docs/*", Route::ok("text/html", HTML))]);
    let px = Pixgate::start_with(&origin, |c| {
        c.log.access.paths = pixgate::telemetry::config::PathLogging::Hashed;
        c.log.access.client_ip = pixgate::telemetry::config::ClientIp::Omit;
    });
    for p in ["/docs/a.html", "/docs/a.html", "/docs/b.html"] {
        assert_eq!(common::get(&px.url(p), None).await.status(), 200);
    }
    let l = px.access_log(3);
    let hash = |i: usize| l[i]["path_hash"].as_str().unwrap().to_string();
    assert_eq!(hash(0).len(), 16);
    assert_eq!(hash(0), hash(1), "equal paths hash equally");
    assert_ne!(hash(0), hash(2));
    assert!(l
        .iter()
        .all(|x| x.get("client").is_none() && x.get("path").is_none()));
    assert!(!px.stdout().contains("/docs/") && !px.stdout().contains("127.0.0"));

    let full = Pixgate::start_with(&origin, |c| {
        c.log.access.paths = pixgate::telemetry::config::PathLogging::Full;
    });
    assert_eq!(
        common::get(&full.url("/docs/c.html?x=1"), None)
            .await
            .status(),
        200
    );
    assert_eq!(full.access_log(1)[0]["path"], "/docs/c.html?x=1");

    let off = Pixgate::start_with(&origin, |c| c.log.access.enabled = false);
    assert_eq!(
        common::get(&off.url("/docs/a.html"), None).await.status(),
        200
    );
    let text = off.metrics_settled().await;
    assert_eq!(
        metric(&text, "pixgate_requests_total", &[("route", "proxy")]),
        1.0
    );
    assert_eq!(off.stdout(), "", "no access log when it is off");
}

#[tokio::test]
async fn oldest_entry_gauge_drops_after_retention() {
    let origin = TestOrigin::start(vec![(
        "/p.jpg",
        Route::ok("image/jpeg", photo(96, 64, 3)).header("cache-control", "max-age=3600"),
    )]);
    let px = Pixgate::start_with(&origin, |c| {
        c.cache.max_retention = Dur::secs(2);
        c.cache.avif_budget = None;
    });
    let t0 = Instant::now();
    assert_eq!(
        common::get(&px.url("/p.jpg"), Some(CHROME)).await.status(),
        200
    );
    let oldest = || async {
        metric(
            &px.metrics().await,
            "pixgate_cache_oldest_entry_age_seconds",
            &[],
        )
    };
    assert_eq!(
        metric(
            &px.metrics().await,
            "pixgate_cache_max_retention_seconds",
            &[]
        ),
        2.0
    );
    // The gauge counts up while the entry lives...
    let mut max_seen = 0.0f64;
    while t0.elapsed() < Duration::from_millis(1900) {
        max_seen = max_seen.max(oldest().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(max_seen >= 1.0, "oldest entry age reached {max_seen}");
    assert!(
        max_seen <= 2.0,
        "never above the retention limit: {max_seen}"
    );
    // ...and is 0 by the limit, with no request in between: the entry falls due one sweep
    // interval early and the sweep removes it by the clock. 0.4 s allows for this test's polling
    // and a loaded machine's scheduling.
    let mut text = px.metrics().await;
    while t0.elapsed() < Duration::from_millis(3500)
        && metric(&text, "pixgate_cache_oldest_entry_age_seconds", &[]) != 0.0
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
        text = px.metrics().await;
    }
    let zero = t0.elapsed();
    assert_eq!(
        metric(&text, "pixgate_cache_oldest_entry_age_seconds", &[]),
        0.0
    );
    eprintln!("oldest-entry gauge read 0 {zero:?} after the request (limit 2 s)");
    assert!(
        zero <= Duration::from_millis(2400),
        "the entry outlived max_retention: {zero:?}"
    );
    assert_eq!(metric(&text, "pixgate_cache_entries", &[]), 0.0);
}

/// Every series in the text (name and labels), without values.
fn series(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.rsplit_once(' ').map(|(s, _)| s.to_string()))
        .collect()
}

#[tokio::test]
async fn label_sets_stay_bounded_over_1000_paths() {
    let origin = TestOrigin::start(vec![
        (
            "/img/*",
            Route::ok("image/png", png(8, 8)).header("cache-control", "max-age=60"),
        ),
        ("/page/*", Route::ok("text/html", HTML)),
    ]);
    let px = Pixgate::start_with(&origin, |c| {
        c.cache.avif_budget = None;
        c.images.formats = vec![
            pixgate::image::format::OutputFormat::Webp,
            pixgate::image::format::OutputFormat::Png,
        ];
    });
    let kinds = |i: usize| match i % 4 {
        0 => format!("/img/{i}/photo-{i}.png"),
        1 => format!("/page/{i}/article-{i}.html"),
        2 => format!("/gone/{i}/file-{i}.jpg"),
        _ => format!("/img/{i}/bad.png?w=x{i}"),
    };
    let run = |range: std::ops::Range<usize>| {
        let px = &px;
        async move {
            let c = client();
            let mut codes = Vec::new();
            for chunk in range.collect::<Vec<_>>().chunks(16) {
                let futs = chunk.iter().map(|i| {
                    let c = c.clone();
                    let url = px.url(&kinds(*i));
                    async move {
                        let r = c.get(url).header("accept", FIREFOX).send().await.unwrap();
                        let code = r.status().as_u16();
                        let _ = r.bytes().await;
                        code
                    }
                });
                codes.extend(futures_join(futs).await);
            }
            codes
        }
    };
    let warm = run(0..8).await;
    assert_eq!(warm, vec![200, 200, 404, 400, 200, 200, 404, 400]);
    // The first scrape creates the admin route's own series.
    let _ = px.metrics().await;
    let before = series(&px.metrics().await);
    let codes = run(8..1008).await;
    assert_eq!(codes.len(), 1000);
    let after_text = px.metrics_settled().await;
    let after = series(&after_text);
    let grown: Vec<&String> = after.iter().filter(|s| !before.contains(s)).collect();
    assert!(grown.is_empty(), "new series after 1000 paths: {grown:?}");
    assert_eq!(after.len(), before.len());
    assert!(!after_text.contains("photo-") && !after_text.contains("/img/"));
    assert_eq!(
        metric(&after_text, "pixgate_requests_total", &[("route", "image")])
            + metric(&after_text, "pixgate_requests_total", &[("route", "proxy")]),
        1008.0
    );
}

/// Runs the futures concurrently; their results in order.
async fn futures_join<F>(futs: impl Iterator<Item = F>) -> Vec<u16>
where
    F: std::future::Future<Output = u16> + Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn healthz_is_alive_and_readyz_follows_the_origin() {
    let origin = TestOrigin::start(vec![("/docs/*", Route::ok("text/html", HTML))]);
    let px = Pixgate::start(&origin);
    assert_eq!(px.admin_get("/healthz").await, (200, "ok\n".to_string()));
    let (code, body) = px.admin_get("/readyz").await;
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["ready"], true);
    assert_eq!(v["cache"]["ok"], true);
    assert_eq!(v["origin"]["ok"], true);

    // An origin that is not listening: alive, not ready, and the proxy answers 502 without
    // writing the path into the diagnostic log.
    let dead = std::net::SocketAddr::from(([127, 0, 0, 1], common::free_port()));
    let mut cfg = pixgate::config::Config::default();
    cfg.origin.url = format!("http://{dead}");
    cfg.server.grace_period = Dur::secs(0);
    let px = Pixgate::start_config(cfg);
    assert_eq!(px.admin_get("/healthz").await.0, 200);
    let (code, body) = px.admin_get("/readyz").await;
    assert_eq!(code, 503, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["ready"], false);
    assert_eq!(v["origin"]["ok"], false);
    let r = common::get(&px.url("/private/diary-page.html"), None).await;
    assert_eq!(r.status(), 502);
    assert_eq!(
        px.metric_eventually(
            "pixgate_requests_total",
            &[("route", "proxy"), ("status", "5xx")],
            1.0
        )
        .await,
        1.0
    );
    let text = px.metrics_settled().await;
    assert!(metric(&text, "pixgate_origin_errors_total", &[]) >= 1.0);
    let line = &px.access_log(1)[0];
    assert_eq!(line["status"], 502);
    assert!(
        line["reason"].as_str().unwrap().starts_with("connect"),
        "{line}"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(!px.stderr().contains("diary-page"), "{}", px.stderr());
}
