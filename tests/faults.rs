//! Origin faults against a real pixgate: a hanging origin, a reset, a body cut short, a 500.
//! Each gets a 502/504 (or the origin's own status) within the configured time, on the image
//! path and on the proxy path, and nothing from a failed exchange is cached.

mod common;

use common::faulty::{Fault, FaultyOrigin};
use common::{metric, Pixgate, CHROME};
use pixgate::config::{Config, Dur};
use std::time::{Duration, Instant};

fn jpeg() -> Vec<u8> {
    let img = image::RgbImage::from_fn(200, 150, |x, y| image::Rgb([x as u8, y as u8, 90]));
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&img)
        .unwrap();
    out
}

fn start(o: &FaultyOrigin) -> Pixgate {
    let mut cfg = Config::default();
    cfg.origin.url = format!("http://{}", o.addr);
    cfg.origin.connect_timeout = Dur::secs(1);
    cfg.origin.read_timeout = Dur::secs(1);
    cfg.server.grace_period = Dur::secs(0);
    cfg.cache.avif_budget = None;
    Pixgate::start_config(cfg)
}

/// GET `path` twice (the second would be a cache hit if the first were stored): statuses,
/// and the longest time one took.
async fn twice(px: &Pixgate, path: &str) -> (Vec<u16>, Duration) {
    let mut codes = Vec::new();
    let mut slowest = Duration::ZERO;
    for _ in 0..2 {
        let t = Instant::now();
        let r = common::get(&px.url(path), Some(CHROME)).await;
        codes.push(r.status().as_u16());
        assert!(r.headers().get("x-cache").is_none_or(|v| v != "HIT"));
        let _ = r.bytes().await;
        slowest = slowest.max(t.elapsed());
    }
    (codes, slowest)
}

#[tokio::test]
async fn hanging_origin_gives_504_within_the_read_timeout() {
    let o = FaultyOrigin::start(Fault::Hang, jpeg());
    let px = start(&o);
    for path in ["/a.jpg", "/page.html"] {
        let (codes, slowest) = twice(&px, path).await;
        assert_eq!(codes, [504, 504], "{path}");
        assert!(slowest < Duration::from_millis(2500), "{path}: {slowest:?}");
    }
    assert_eq!(o.hits(), 4, "nothing was served from a cache");
    let text = px.metrics_settled().await;
    assert_eq!(
        metric(&text, "pixgate_requests_total", &[("status", "5xx")]),
        4.0
    );
    assert!(metric(&text, "pixgate_origin_errors_total", &[]) >= 4.0);
    assert_eq!(metric(&text, "pixgate_cache_entries", &[]), 0.0);
}

#[tokio::test]
async fn reset_gives_502() {
    let o = FaultyOrigin::start(Fault::Reset, jpeg());
    let px = start(&o);
    for path in ["/a.jpg", "/page.html"] {
        let (codes, slowest) = twice(&px, path).await;
        assert!(codes.iter().all(|c| *c == 502), "{path}: {codes:?}");
        assert!(slowest < Duration::from_secs(2), "{path}: {slowest:?}");
    }
    assert!(o.hits() >= 4);
}

#[tokio::test]
async fn truncated_image_body_is_502_and_never_cached() {
    let body = jpeg();
    let o = FaultyOrigin::start(
        Fault::Truncated {
            announced: body.len(),
            sent: body.len() / 2,
        },
        body,
    );
    let px = start(&o);
    let (codes, slowest) = twice(&px, "/a.jpg").await;
    assert_eq!(codes, [502, 502]);
    assert!(slowest < Duration::from_secs(2), "{slowest:?}");
    assert_eq!(o.hits(), 2, "the second request went to the origin again");
    let text = px.metrics_settled().await;
    assert_eq!(metric(&text, "pixgate_cache_entries", &[]), 0.0);
    assert_eq!(metric(&text, "pixgate_image_transforms_total", &[]), 0.0);
}

#[tokio::test]
async fn origin_500_passes_through_uncached() {
    let o = FaultyOrigin::start(Fault::ServerError, jpeg());
    let px = start(&o);
    for path in ["/a.jpg", "/page.html"] {
        let (codes, _) = twice(&px, path).await;
        assert_eq!(codes, [500, 500], "{path}");
    }
    assert_eq!(o.hits(), 4);
}

/// `stale-if-error`: once a variant's freshness has run out, a failing origin (5xx, or no
/// answer within the read timeout) gets the kept variant instead of an error, inside the
/// origin's window; past the window (or with none) the error goes through.
#[tokio::test]
async fn stale_if_error_serves_the_kept_variant_while_the_origin_fails() {
    use common::{Route, TestOrigin};
    let body = jpeg();
    let good = |cc: &str| Route::ok("image/jpeg", body.clone()).header("cache-control", cc);
    let origin = TestOrigin::start(vec![
        ("/win.jpg", good("max-age=1, stale-if-error=3")),
        ("/none.jpg", good("max-age=1")),
    ]);
    let px = Pixgate::start_with(&origin, |c| {
        c.cache.avif_budget = None;
        c.origin.read_timeout = Dur::secs(1);
    });
    let first = common::get(&px.url("/win.jpg"), Some(CHROME)).await;
    assert_eq!(first.headers()["x-cache"], "MISS");
    let fresh_bytes = first.bytes().await.expect("body");
    let _ = common::get(&px.url("/none.jpg"), Some(CHROME))
        .await
        .bytes()
        .await;
    tokio::time::sleep(Duration::from_millis(1300)).await;

    // Past max-age=1, the origin answers 500: the kept variant stands in.
    let broken = Route {
        status: 500,
        ..Route::ok("text/plain", "down")
    };
    origin.set_route("/win.jpg", broken.clone());
    origin.set_route("/none.jpg", broken.clone());
    let r = common::get(&px.url("/win.jpg"), Some(CHROME)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-cache"], "STALE");
    assert_eq!(r.headers()["content-type"], "image/avif");
    let age: u64 = r.headers()["age"].to_str().unwrap().parse().unwrap();
    assert!(age >= 1, "age {age}");
    assert_eq!(r.bytes().await.expect("body"), fresh_bytes);
    // Without a window, the 500 goes through.
    let r = common::get(&px.url("/none.jpg"), Some(CHROME)).await;
    assert_eq!(r.status(), 500);

    // A hanging origin (no answer within read_timeout): stale again, not 504.
    origin.set_route(
        "/win.jpg",
        good("max-age=1").delayed(Duration::from_secs(5)),
    );
    let t = Instant::now();
    let r = common::get(&px.url("/win.jpg"), Some(CHROME)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-cache"], "STALE");
    assert!(
        t.elapsed() < Duration::from_millis(2500),
        "{:?}",
        t.elapsed()
    );

    // Past fresh + window (1 s + 3 s), the entry is gone: the origin's error goes through.
    tokio::time::sleep(Duration::from_millis(4200).saturating_sub(t.elapsed())).await;
    origin.set_route("/win.jpg", broken);
    let r = common::get(&px.url("/win.jpg"), Some(CHROME)).await;
    assert_eq!(r.status(), 500);
    let text = px.metrics_settled().await;
    assert_eq!(
        metric(
            &text,
            "pixgate_cache_stale_served_total",
            &[("cause", "origin_5xx")]
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "pixgate_cache_stale_served_total",
            &[("cause", "origin_error")]
        ),
        1.0
    );
}

/// The window never outlives `max_retention`: with a 2 s retention, an origin's
/// `stale-if-error=600` still ends at 2 s.
#[tokio::test]
async fn stale_if_error_stops_at_max_retention() {
    use common::{Route, TestOrigin};
    let origin = TestOrigin::start(vec![(
        "/r.jpg",
        Route::ok("image/jpeg", jpeg()).header("cache-control", "max-age=1, stale-if-error=600"),
    )]);
    let px = Pixgate::start_with(&origin, |c| {
        c.cache.avif_budget = None;
        c.cache.max_retention = Dur::secs(2);
    });
    let r = common::get(&px.url("/r.jpg"), Some(CHROME)).await;
    assert_eq!(r.headers()["x-cache"], "MISS");
    let _ = r.bytes().await;
    let t0 = Instant::now();
    origin.set_route(
        "/r.jpg",
        Route {
            status: 503,
            ..Route::ok("text/plain", "down")
        },
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let r = common::get(&px.url("/r.jpg"), Some(CHROME)).await;
    assert_eq!(r.headers()["x-cache"], "STALE", "inside retention");
    tokio::time::sleep(Duration::from_millis(2500).saturating_sub(t0.elapsed())).await;
    let r = common::get(&px.url("/r.jpg"), Some(CHROME)).await;
    assert_eq!(r.status(), 503, "past max_retention nothing is kept");
    let text = px.metrics_settled().await;
    assert_eq!(metric(&text, "pixgate_cache_entries", &[]), 0.0);
}
