//! The origin shield's first part (issue 20, `cache.scope: all`) against a real origin: a
//! fresh GET response is stored and answered from the cache (HEAD too) without the origin;
//! what a shared cache must not store goes to the origin every time; encodings are kept
//! apart; a successful unsafe request invalidates; the retention limit, purge and the body
//! limit cover shield entries like variants; `scope: images` (the default) stores nothing.

mod common;

use common::{client, metric, Pixgate, Route, TestOrigin};
use pixgate::config::Scope;
use pixgate::config::{ByteSize, Config, DiskConfig, DiskSetting, Dur};
use std::time::{Duration, Instant};

const CSS: &str = "body { color: #123456; }\n/* padding so the body is not tiny */\n";

/// The shield is on by default; tests say so where it matters.
fn all(c: &mut Config) {
    c.cache.scope = Scope::All;
}

/// GET `path`: (status, x-cache, age present, body).
async fn get(p: &Pixgate, path: &str, headers: &[(&str, &str)]) -> (u16, String, bool, String) {
    let mut r = client().get(p.url(path));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let r = r.send().await.expect("request");
    let status = r.status().as_u16();
    let xc = r
        .headers()
        .get("x-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let age = r.headers().contains_key("age");
    (status, xc, age, r.text().await.expect("body"))
}

#[tokio::test]
async fn fresh_responses_are_answered_without_the_origin() {
    let origin = TestOrigin::start(vec![(
        "/style.css",
        Route::ok("text/css", CSS)
            .header("cache-control", "public, max-age=60")
            .header("etag", "\"v1\""),
    )]);
    let p = Pixgate::start_with(&origin, all);
    let (s, xc, _, body) = get(&p, "/style.css", &[]).await;
    assert_eq!((s, xc.as_str(), body.as_str()), (200, "MISS", CSS));
    // The store happens when the body has ended; give the insert a moment.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..3 {
        let (s, xc, age, body) = get(&p, "/style.css", &[]).await;
        assert_eq!(
            (s, xc.as_str(), age, body.as_str()),
            (200, "HIT", true, CSS)
        );
    }
    assert_eq!(origin.hits("/style.css"), 1, "the origin was asked once");
    // HEAD from the stored GET: headers, no body.
    let r = client()
        .head(p.url("/style.css"))
        .send()
        .await
        .expect("head");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["x-cache"], "HIT");
    assert_eq!(r.headers()["content-length"], CSS.len().to_string());
    assert_eq!(r.headers()["content-type"], "text/css");
    assert!(r.headers()["via"]
        .to_str()
        .unwrap_or("")
        .contains("pixgate"));
    // A matching If-None-Match: 304 from the cache.
    let r = client()
        .get(p.url("/style.css"))
        .header("if-none-match", "\"v1\"")
        .send()
        .await
        .expect("conditional");
    assert_eq!(r.status().as_u16(), 304);
    assert_eq!(origin.hits("/style.css"), 1);
    let m = p.metrics_settled().await;
    assert_eq!(
        metric(&m, "pixgate_shield_requests_total", &[("status", "hit")]),
        5.0
    );
    assert_eq!(metric(&m, "pixgate_shield_stored_total", &[]), 1.0);
    assert_eq!(
        metric(&m, "pixgate_shield_bytes_saved_total", &[]),
        (3 * CSS.len()) as f64
    );
}

#[tokio::test]
async fn what_a_shared_cache_must_not_store_always_reaches_the_origin() {
    let cases: Vec<(&str, Route)> = vec![
        (
            "/no-store",
            Route::ok("text/html", "a").header("cache-control", "no-store"),
        ),
        (
            "/private",
            Route::ok("text/html", "b").header("cache-control", "private, max-age=60"),
        ),
        (
            "/no-cache",
            Route::ok("text/html", "c").header("cache-control", "no-cache"),
        ),
        (
            "/cookie-set",
            Route::ok("text/html", "d")
                .header("cache-control", "max-age=60")
                .header("set-cookie", "s=1"),
        ),
        ("/no-freshness", Route::ok("text/html", "e")),
        (
            "/vary-star",
            Route::ok("text/html", "f")
                .header("cache-control", "max-age=60")
                .header("vary", "Cookie, *"),
        ),
        (
            "/server-error",
            Route {
                status: 500,
                ..Route::ok("text/html", "g").header("etag", "\"e\"")
            },
        ),
    ];
    let paths: Vec<&str> = cases.iter().map(|(p, _)| *p).collect();
    let origin = TestOrigin::start(cases);
    origin.set_route(
        "/auth",
        Route::ok("text/html", "h").header("cache-control", "public, max-age=60"),
    );
    let p = Pixgate::start_with(&origin, all);
    for path in &paths {
        for _ in 0..2 {
            get(&p, path, &[]).await;
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        assert_eq!(origin.hits(path), 2, "{path} was answered from the cache");
    }
    // A request with Authorization is never answered from, nor stored in, the cache.
    for _ in 0..2 {
        get(&p, "/auth", &[("authorization", "Bearer x")]).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(origin.hits("/auth"), 2);
    // A request with a Cookie: stored only when the response says public (this one does).
    get(&p, "/auth", &[("cookie", "session=1")]).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (_, xc, _, _) = get(&p, "/auth", &[]).await;
    assert_eq!(xc, "HIT");
    let m = p.metrics_settled().await;
    for reason in [
        "no_store",
        "private",
        "stale",
        "set_cookie",
        "no_freshness",
        "vary",
    ] {
        assert!(
            metric(&m, "pixgate_cache_not_stored_total", &[("reason", reason)]) >= 2.0,
            "{reason}"
        );
    }
}

#[tokio::test]
async fn last_modified_gives_heuristic_freshness_and_encodings_stay_apart() {
    let lm = httpdate::fmt_http_date(std::time::SystemTime::now() - Duration::from_secs(86_400));
    let origin = TestOrigin::start(vec![
        (
            "/page.html",
            Route::ok("text/html", "<p>hi</p>").header("last-modified", &lm),
        ),
        (
            "/app.js",
            Route::ok("text/javascript", "let a = 1;")
                .header("cache-control", "max-age=60")
                .header("vary", "Accept-Encoding"),
        ),
    ]);
    let p = Pixgate::start_with(&origin, all);
    get(&p, "/page.html", &[]).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(get(&p, "/page.html", &[]).await.1, "HIT");
    assert_eq!(origin.hits("/page.html"), 1);
    for ae in ["gzip, deflate, br", "gzip", "identity"] {
        get(&p, "/app.js", &[("accept-encoding", ae)]).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(origin.hits("/app.js"), 3, "one fetch per encoding class");
    for ae in ["br", "gzip, deflate", "identity"] {
        assert_eq!(
            get(&p, "/app.js", &[("accept-encoding", ae)]).await.1,
            "HIT",
            "{ae}"
        );
    }
    assert_eq!(origin.hits("/app.js"), 3);
}

#[tokio::test]
async fn unsafe_requests_invalidate_and_purge_and_retention_reach_shield_entries() {
    let token = "shield-purge-token-0123";
    let origin = TestOrigin::start(vec![
        (
            "/doc",
            Route::ok("text/plain", "v1").header("cache-control", "max-age=3600"),
        ),
        (
            "/list",
            Route::ok("text/plain", "l").header("cache-control", "max-age=3600"),
        ),
        (
            "/other",
            Route::ok("text/plain", "o").header("cache-control", "max-age=3600"),
        ),
        (
            "/varied",
            Route::ok("text/plain", "v")
                .header("cache-control", "max-age=3600")
                .header("vary", "X-Lang"),
        ),
    ]);
    let dir = tempfile::tempdir().expect("tempdir");
    let p = Pixgate::start_with(&origin, |c| {
        all(c);
        c.admin.token = Some(token.into());
        c.cache.max_retention = Dur::secs(3);
        c.cache.disk = DiskSetting::On(DiskConfig {
            dir: dir.path().to_path_buf(),
            max_bytes: ByteSize::mib(64),
            key_file: None,
        });
    });
    let warm = |path: &'static str| {
        let p = &p;
        async move {
            get(p, path, &[]).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert_eq!(get(p, path, &[]).await.1, "HIT", "{path}");
        }
    };
    let t0 = Instant::now();
    warm("/doc").await;
    warm("/list").await;
    // A POST to /doc (the origin answers 200 with a Location naming /list): both go.
    origin.set_route(
        "/doc",
        Route::ok("text/plain", "v1")
            .header("cache-control", "max-age=3600")
            .header("location", "/list"),
    );
    let r = client()
        .post(p.url("/doc"))
        .body("x")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(get(&p, "/doc", &[]).await.1, "MISS");
    assert_eq!(get(&p, "/list", &[]).await.1, "MISS");
    // A purge of the URL removes it like a variant.
    warm("/other").await;
    let (s, body) = p.purge("url=/other", Some(token)).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(get(&p, "/other", &[]).await.1, "MISS");
    // A Vary'd response: its marker and variants are entries like any other.
    for lang in ["en", "fr"] {
        get(&p, "/varied", &[("x-lang", lang)]).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        common::files_under(dir.path()).len() >= 5,
        "shield entries are on disk too"
    );
    // max_retention (3 s) caps max-age=3600: gone from memory and disk by then, unasked.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let filled = Instant::now();
    while t0.elapsed() < Duration::from_secs(3) || filled.elapsed() < Duration::from_millis(3100) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let m = p.metrics().await;
    assert_eq!(
        metric(
            &m,
            "pixgate_cache_entries",
            &[("store", "variants"), ("tier", "memory")]
        ),
        0.0
    );
    let left: Vec<_> = common::files_under(dir.path())
        .into_iter()
        .filter(|f| !f.ends_with(".pixgate-cache"))
        .collect();
    assert!(left.is_empty(), "outlived max_retention on disk: {left:?}");
    assert!(metric(&m, "pixgate_shield_invalidated_total", &[]) >= 2.0);
}

#[tokio::test]
async fn large_bodies_stream_through_and_scope_images_stores_nothing() {
    let big = "x".repeat(40 * 1024);
    let origin = TestOrigin::start(vec![
        (
            "/big.txt",
            Route::ok("text/plain", big.clone()).header("cache-control", "max-age=60"),
        ),
        (
            "/chunked.txt",
            Route::ok("text/plain", big.clone())
                .header("cache-control", "max-age=60")
                .chunked(),
        ),
        (
            "/small.txt",
            Route::ok("text/plain", "s").header("cache-control", "max-age=60"),
        ),
    ]);
    let p = Pixgate::start_with(&origin, |c| {
        all(c);
        c.cache.max_object_bytes = ByteSize(16 * 1024);
    });
    for path in ["/big.txt", "/chunked.txt"] {
        let (s, _, _, body) = get(&p, path, &[]).await;
        assert_eq!((s, body.len()), (200, big.len()));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (_, xc, _, body) = get(&p, path, &[]).await;
        assert_eq!((xc.as_str(), body.len()), ("MISS", big.len()), "{path}");
    }
    drop(p);
    // Scope `images`: variants only.
    let p = Pixgate::start_with(&origin, |c| c.cache.scope = Scope::Images);
    for _ in 0..2 {
        get(&p, "/small.txt", &[]).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(origin.hits("/small.txt"), 2);
}

#[tokio::test]
async fn stale_entries_are_revalidated_and_a_304_refreshes_them_without_a_body() {
    let origin = TestOrigin::start(vec![
        (
            "/rev",
            Route::ok("text/plain", "REV")
                .header("cache-control", "max-age=1")
                .header("etag", "\"r1\""),
        ),
        (
            "/nc",
            Route::ok("text/plain", "NC")
                .header("cache-control", "no-cache")
                .header("etag", "\"n1\""),
        ),
    ]);
    let p = Pixgate::start_with(&origin, all);
    let settle = || tokio::time::sleep(Duration::from_millis(60));
    assert_eq!(get(&p, "/rev", &[]).await.1, "MISS");
    settle().await;
    assert_eq!(get(&p, "/rev", &[]).await.1, "HIT");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Stale: asked with its validator; the origin's 304 (no body) becomes the stored 200.
    let (s, xc, _, body) = get(&p, "/rev", &[]).await;
    assert_eq!((s, xc.as_str(), body.as_str()), (200, "REVALIDATED", "REV"));
    assert_eq!(origin.hits("/rev"), 2);
    assert_eq!(origin.last_headers("/rev")["if-none-match"], "\"r1\"");
    settle().await;
    assert_eq!(
        get(&p, "/rev", &[]).await.1,
        "HIT",
        "fresh again after the 304"
    );
    assert_eq!(origin.hits("/rev"), 2);
    // A client's own condition goes to the origin as it is, and its 304 to the client.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = client()
        .get(p.url("/rev"))
        .header("if-none-match", "\"r1\"")
        .send()
        .await
        .expect("conditional");
    assert_eq!(r.status().as_u16(), 304);
    // Changed at the origin: the revalidation gets the new 200, which goes to the client and
    // drops the stale entry; the next request stores the new one.
    origin.set_route(
        "/rev",
        Route::ok("text/plain", "NEW")
            .header("cache-control", "max-age=60")
            .header("etag", "\"r2\""),
    );
    let (s, _, _, body) = get(&p, "/rev", &[]).await;
    assert_eq!((s, body.as_str()), (200, "NEW"));
    let (_, xc, _, body) = get(&p, "/rev", &[]).await;
    assert_eq!((xc.as_str(), body.as_str()), ("MISS", "NEW"));
    settle().await;
    assert_eq!(
        get(&p, "/rev", &[]).await,
        (200, "HIT".into(), true, "NEW".into())
    );

    // no-cache: stored, revalidated before every use.
    assert_eq!(get(&p, "/nc", &[]).await.1, "MISS");
    settle().await;
    for _ in 0..2 {
        let (_, xc, _, body) = get(&p, "/nc", &[]).await;
        assert_eq!((xc.as_str(), body.as_str()), ("REVALIDATED", "NC"));
    }
    assert_eq!(origin.hits("/nc"), 3);
    let m = p.metrics_settled().await;
    assert_eq!(
        metric(
            &m,
            "pixgate_shield_requests_total",
            &[("status", "revalidated")]
        ),
        3.0
    );
}

#[tokio::test]
async fn fifty_concurrent_misses_cost_the_origin_one_request() {
    let origin = TestOrigin::start(vec![
        (
            "/slow.css",
            Route::ok("text/css", CSS)
                .header("cache-control", "max-age=60")
                .delayed(Duration::from_millis(300)),
        ),
        (
            "/slow-private.css",
            Route::ok("text/css", CSS)
                .header("cache-control", "private, max-age=60")
                .delayed(Duration::from_millis(300)),
        ),
    ]);
    let p = std::sync::Arc::new(Pixgate::start_with(&origin, all));
    // Both cores busy: the race between a miss, the flight and the store shows under load.
    let _busy = common::Busy::all_cores();
    for (path, want_hits) in [("/slow.css", 1), ("/slow-private.css", 50)] {
        let reqs: Vec<_> = (0..50u64)
            .map(|i| {
                let p = p.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(i % 10)).await;
                    get(&p, path, &[]).await
                })
            })
            .collect();
        for r in reqs {
            let (s, _, _, body) = r.await.expect("task");
            assert_eq!((s, body.as_str()), (200, CSS), "{path}");
        }
        // Storable: one origin request; not storable: the leader releases the others, and
        // each goes to the origin (none waits for a response it cannot share).
        assert_eq!(origin.hits(path), want_hits, "{path}");
    }
    let m = p.metrics().await;
    assert!(metric(&m, "pixgate_cache_coalesced_total", &[]) >= 1.0);
}

/// Hit-for-miss: once a URL's response could not be stored, its concurrent misses go to the
/// origin together instead of queueing behind one round trip; a storable response is still
/// stored. With `cache.uncacheable_window: 0s` the same requests queue (the contrast shows
/// the test can fail).
#[tokio::test]
async fn an_uncacheable_url_is_not_collapsed_and_a_storable_answer_is_still_kept() {
    const DELAY: Duration = Duration::from_millis(800);
    let private = || {
        Route::ok("text/css", CSS)
            .header("cache-control", "private")
            .delayed(DELAY)
    };
    let _busy = common::Busy::all_cores();
    for window in [Dur::secs(120), Dur::secs(0)] {
        let origin = TestOrigin::start(vec![("/hfm.css", private())]);
        let p = std::sync::Arc::new(Pixgate::start_with(&origin, |c| {
            all(c);
            c.cache.uncacheable_window = window;
        }));
        assert_eq!(get(&p, "/hfm.css", &[]).await.0, 200);
        let t0 = Instant::now();
        let reqs: Vec<_> = (0..20)
            .map(|_| {
                let p = p.clone();
                tokio::spawn(async move { get(&p, "/hfm.css", &[]).await })
            })
            .collect();
        for r in reqs {
            let (s, xc, _, body) = r.await.expect("task");
            assert_eq!((s, xc.as_str(), body.as_str()), (200, "MISS", CSS));
        }
        let took = t0.elapsed();
        assert_eq!(
            origin.hits("/hfm.css"),
            21,
            "every request reached the origin"
        );
        if window.get().is_zero() {
            // The first of the 20 leads, the others wait for it and then go themselves.
            assert!(took >= DELAY * 2, "collapsed: {took:?}");
            continue;
        }
        assert!(took < DELAY * 2 - DELAY / 4, "went together: {took:?}");
        // The origin starts allowing storage: the next answer is kept despite the mark.
        origin.set_route(
            "/hfm.css",
            Route::ok("text/css", CSS).header("cache-control", "public, max-age=60"),
        );
        assert_eq!(get(&p, "/hfm.css", &[]).await.1, "MISS");
        let (s, xc, _, _) = get(&p, "/hfm.css", &[]).await;
        assert_eq!((s, xc.as_str()), (200, "HIT"));
        assert_eq!(origin.hits("/hfm.css"), 22);
    }
}

#[tokio::test]
async fn a_failing_origin_gets_the_stale_entry_within_stale_if_error() {
    let origin = TestOrigin::start(vec![
        (
            "/sie.txt",
            Route::ok("text/plain", "KEPT").header("cache-control", "max-age=1, stale-if-error=60"),
        ),
        (
            "/sie-etag.txt",
            Route::ok("text/plain", "KEPT2")
                .header("cache-control", "max-age=1, stale-if-error=60")
                .header("etag", "\"e1\""),
        ),
        (
            "/no-sie.txt",
            Route::ok("text/plain", "GONE").header("cache-control", "max-age=1"),
        ),
    ]);
    let p = Pixgate::start_with(&origin, |c| {
        all(c);
        c.origin.read_timeout = Dur::millis(400);
    });
    for path in ["/sie.txt", "/sie-etag.txt", "/no-sie.txt"] {
        assert_eq!(get(&p, path, &[]).await.1, "MISS", "{path}");
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // The origin hangs past read_timeout: the stale copy answers, inside its window.
    origin.set_route(
        "/sie.txt",
        Route::ok("text/plain", "late").delayed(Duration::from_secs(3)),
    );
    let (s, xc, _, body) = get(&p, "/sie.txt", &[]).await;
    assert_eq!((s, xc.as_str(), body.as_str()), (200, "STALE", "KEPT"));
    // A revalidation answered 500: the stale copy too.
    origin.set_route(
        "/sie-etag.txt",
        Route {
            status: 500,
            ..Route::ok("text/plain", "boom")
        },
    );
    let (s, xc, _, body) = get(&p, "/sie-etag.txt", &[]).await;
    assert_eq!((s, xc.as_str(), body.as_str()), (200, "STALE", "KEPT2"));
    // Without stale-if-error (and cache.stale_if_error 0s): the failure shows.
    origin.set_route(
        "/no-sie.txt",
        Route::ok("text/plain", "late").delayed(Duration::from_secs(3)),
    );
    let (s, _, _, _) = get(&p, "/no-sie.txt", &[]).await;
    assert_eq!(s, 504);
}

#[tokio::test]
async fn stale_while_revalidate_answers_at_once_and_refreshes_once_in_the_background() {
    let origin = TestOrigin::start(vec![
        (
            "/swr.js",
            Route::ok("text/javascript", "v1")
                .header("cache-control", "max-age=1, stale-while-revalidate=30"),
        ),
        (
            "/swr-must.js",
            Route::ok("text/javascript", "m1").header(
                "cache-control",
                "max-age=1, stale-while-revalidate=30, must-revalidate",
            ),
        ),
    ]);
    let p = std::sync::Arc::new(Pixgate::start_with(&origin, all));
    for path in ["/swr.js", "/swr-must.js"] {
        assert_eq!(get(&p, path, &[]).await.1, "MISS");
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The new version is slow: stale answers must not wait for it.
    origin.set_route(
        "/swr.js",
        Route::ok("text/javascript", "v2")
            .header("cache-control", "max-age=60")
            .delayed(Duration::from_secs(2)),
    );
    let _busy = common::Busy::all_cores();
    let started = Instant::now();
    let reqs: Vec<_> = (0..20)
        .map(|_| {
            let p = p.clone();
            tokio::spawn(async move { get(&p, "/swr.js", &[]).await })
        })
        .collect();
    for r in reqs {
        let (s, xc, _, body) = r.await.expect("task");
        assert_eq!((s, xc.as_str(), body.as_str()), (200, "STALE", "v1"));
    }
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "stale answers waited for the origin's 2 s: {:?}",
        started.elapsed()
    );
    // One background refresh for all the stale answers; once it lands, the new version is a
    // hit.
    let mut fresh = false;
    for _ in 0..100 {
        let (_, xc, _, body) = get(&p, "/swr.js", &[]).await;
        if (xc.as_str(), body.as_str()) == ("HIT", "v2") {
            fresh = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(fresh, "the background refresh never stored v2");
    assert_eq!(
        origin.hits("/swr.js"),
        2,
        "one refresh, not one per stale answer"
    );
    // must-revalidate: never answered stale; the origin is asked in the foreground.
    let (_, xc, _, _) = get(&p, "/swr-must.js", &[]).await;
    assert_eq!(xc, "MISS");
    let m = p.metrics_settled().await;
    assert_eq!(
        metric(
            &m,
            "pixgate_shield_refreshes_total",
            &[("outcome", "replaced")]
        ),
        1.0
    );
}

#[tokio::test]
async fn vary_keeps_variants_apart_within_a_bound() {
    let origin = TestOrigin::start(vec![
        (
            "/v.html",
            Route::ok("text/html", "EN")
                .header("cache-control", "max-age=60")
                .header("vary", "Accept-Language, X-Theme"),
        ),
        (
            "/star.html",
            Route::ok("text/html", "S")
                .header("cache-control", "max-age=60")
                .header("vary", "*"),
        ),
    ]);
    let p = Pixgate::start_with(&origin, |c| {
        all(c);
        c.cache.max_variants = 3;
    });
    let settle = || tokio::time::sleep(Duration::from_millis(60));
    let en = [("accept-language", "en"), ("x-theme", "dark")];
    let fr = [("accept-language", "fr"), ("x-theme", "dark")];
    assert_eq!(get(&p, "/v.html", &en).await.1, "MISS");
    settle().await;
    origin.set_route(
        "/v.html",
        Route::ok("text/html", "FR")
            .header("cache-control", "max-age=60")
            .header("vary", "Accept-Language, X-Theme"),
    );
    assert_eq!(get(&p, "/v.html", &fr).await.3, "FR");
    settle().await;
    // Each language gets its own response; list whitespace does not fragment.
    let (_, xc, _, body) = get(&p, "/v.html", &en).await;
    assert_eq!((xc.as_str(), body.as_str()), ("HIT", "EN"));
    let (_, xc, _, body) = get(&p, "/v.html", &fr).await;
    assert_eq!((xc.as_str(), body.as_str()), ("HIT", "FR"));
    let spaced = [("accept-language", "en"), ("x-theme", " dark ")];
    assert_eq!(get(&p, "/v.html", &spaced).await.1, "HIT");
    // A field absent is a value of its own.
    assert_eq!(
        get(&p, "/v.html", &[("accept-language", "en")]).await.1,
        "MISS"
    );
    assert_eq!(origin.hits("/v.html"), 3);
    settle().await;
    // A fourth variant drops the oldest (`en`, dark): at most max_variants per URL.
    assert_eq!(
        get(&p, "/v.html", &[("accept-language", "de")]).await.1,
        "MISS"
    );
    settle().await;
    assert_eq!(get(&p, "/v.html", &fr).await.1, "HIT");
    assert_eq!(get(&p, "/v.html", &en).await.1, "MISS");
    // An unsafe request drops every variant of the URL.
    settle().await;
    let r = client().post(p.url("/v.html")).send().await.expect("post");
    assert!(r.status().is_success());
    assert_eq!(get(&p, "/v.html", &fr).await.1, "MISS");
    // Vary: * is never stored.
    for _ in 0..2 {
        assert_eq!(get(&p, "/star.html", &[]).await.1, "MISS");
        settle().await;
    }
    assert_eq!(origin.hits("/star.html"), 2);
}

#[tokio::test]
async fn ranges_are_cut_from_a_stored_body_and_forwarded_on_a_miss() {
    let body: String = (0..100)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let origin = TestOrigin::start(vec![(
        "/r.txt",
        Route::ok("text/plain", body.clone())
            .header("cache-control", "max-age=60")
            .header("etag", "\"rt\""),
    )]);
    let p = Pixgate::start_with(&origin, all);
    // A range on a miss goes to the origin as it is (this origin ignores ranges: 200).
    let r = client()
        .get(p.url("/r.txt"))
        .header("range", "bytes=0-4")
        .send()
        .await
        .expect("range miss");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(get(&p, "/r.txt", &[]).await.1, "MISS");
    tokio::time::sleep(Duration::from_millis(60)).await;
    let hits = origin.hits("/r.txt");
    let range = |spec: &'static str, if_range: Option<&'static str>| {
        let mut r = client().get(p.url("/r.txt")).header("range", spec);
        if let Some(v) = if_range {
            r = r.header("if-range", v);
        }
        async move {
            let r = r.send().await.expect("range");
            let cr = r
                .headers()
                .get("content-range")
                .map(|v| v.to_str().unwrap_or("").to_string());
            (r.status().as_u16(), cr, r.text().await.expect("body"))
        }
    };
    assert_eq!(
        range("bytes=10-14", None).await,
        (
            206,
            Some("bytes 10-14/100".into()),
            body[10..15].to_string()
        )
    );
    assert_eq!(
        range("bytes=-3", None).await,
        (206, Some("bytes 97-99/100".into()), body[97..].to_string())
    );
    assert_eq!(
        range("bytes=95-", Some("\"rt\"")).await,
        (206, Some("bytes 95-99/100".into()), body[95..].to_string())
    );
    assert_eq!(
        range("bytes=100-", None).await,
        (416, Some("bytes */100".into()), String::new())
    );
    // Another version at the client, or several ranges: the whole body.
    assert_eq!(range("bytes=0-1", Some("\"old\"")).await.2, body);
    assert_eq!(range("bytes=0-1,5-6", None).await.0, 200);
    assert_eq!(origin.hits("/r.txt"), hits, "ranges came from the cache");
}

#[tokio::test]
async fn purge_by_tag_removes_tagged_responses_and_variants_and_tags_stay_hidden() {
    let origin = TestOrigin::start(vec![
        (
            "/p1.html",
            Route::ok("text/html", "P1")
                .header("cache-control", "max-age=60")
                .header("surrogate-key", "product-1 catalog"),
        ),
        (
            "/p2.html",
            Route::ok("text/html", "P2")
                .header("cache-control", "max-age=60")
                .header("cache-tag", "product-2,catalog"),
        ),
        (
            "/p1.jpg",
            Route::ok("image/jpeg", common::photo(64, 48, 3))
                .header("cache-control", "max-age=60")
                .header("surrogate-key", "product-1"),
        ),
    ]);
    const TOKEN: &str = "shield-admin-token-0123456789";
    let p = Pixgate::start_with(&origin, |c| {
        all(c);
        c.admin.token = Some(TOKEN.into());
    });
    for path in ["/p1.html", "/p2.html"] {
        let r = client().get(p.url(path)).send().await.expect("get");
        assert!(!r.headers().contains_key("surrogate-key"), "{path}");
        assert!(!r.headers().contains_key("cache-tag"), "{path}");
    }
    let r = common::get(&p.url("/p1.jpg"), Some("image/webp,*/*")).await;
    assert!(!r.headers().contains_key("surrogate-key"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(get(&p, "/p1.html", &[]).await.1, "HIT");
    let (code, body) = p.purge("tag=product-1", Some(TOKEN)).await;
    assert_eq!((code, body.as_str()), (200, "{\"purged\":2}"));
    assert_eq!(get(&p, "/p1.html", &[]).await.1, "MISS");
    assert_eq!(get(&p, "/p2.html", &[]).await.1, "HIT");
    let r = common::get(&p.url("/p1.jpg"), Some("image/webp,*/*")).await;
    assert_eq!(r.headers()["x-cache"], "MISS", "the image variant went too");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, body) = p.purge("tag=catalog", Some(TOKEN)).await;
    assert_eq!(body, "{\"purged\":2}");
    let (code, _) = p.purge("tag=a%20b", Some(TOKEN)).await;
    assert_eq!(code, 400);
}

/// An origin that answers every request with a `103 Early Hints` and then a cacheable 200
/// (TestOrigin's hyper server cannot send interim responses); counts requests.
fn early_hints_origin() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h = hits.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let h = h.clone();
            std::thread::spawn(move || loop {
                let mut req = Vec::new();
                let mut b = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut b) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&b[..n]),
                    }
                }
                h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let answer = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n\
                              HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nCache-Control: max-age=60\r\n\
                              Content-Length: 5\r\n\r\nhello";
                if s.write_all(answer.as_bytes()).is_err() {
                    return;
                }
            });
        }
    });
    (addr, hits)
}

#[tokio::test]
async fn early_hints_reach_the_client_and_the_final_response_is_stored() {
    let (addr, hits) = early_hints_origin();
    let mut cfg = Config::default();
    cfg.origin.url = format!("http://{addr}");
    cfg.server.grace_period = Dur::secs(0);
    all(&mut cfg);
    let p = Pixgate::start_config(cfg);
    let px = p.addr;
    let (status, headers, rest) =
        tokio::task::spawn_blocking(move || common::raw_get(px, "/page.html", &[]))
            .await
            .expect("raw get");
    assert_eq!(status, 103);
    assert_eq!(
        common::header_of(&headers, "link"),
        Some("</style.css>; rel=preload; as=style")
    );
    let rest = String::from_utf8_lossy(&rest).to_string();
    assert!(rest.starts_with("HTTP/1.1 200"), "{rest}");
    assert!(
        rest.to_ascii_lowercase().contains("x-cache: miss"),
        "{rest}"
    );
    assert!(rest.ends_with("hello"), "{rest}");
    tokio::time::sleep(Duration::from_millis(60)).await;
    let (_, xc, _, body) = get(&p, "/page.html", &[]).await;
    assert_eq!((xc.as_str(), body.as_str()), ("HIT", "hello"));
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn other_statuses_are_stored_by_their_rules_and_if_modified_since_gets_a_304() {
    let lm = httpdate::fmt_http_date(std::time::SystemTime::now() - Duration::from_secs(3600));
    let origin = TestOrigin::start(vec![
        (
            "/gone",
            Route {
                status: 404,
                ..Route::ok("text/html", "missing").header("cache-control", "max-age=60")
            },
        ),
        (
            "/moved",
            Route {
                status: 302,
                ..Route::ok("text/html", "elsewhere")
                    .header("location", "/new")
                    .header("last-modified", &lm)
            },
        ),
        (
            "/page",
            Route::ok("text/html", "page")
                .header("cache-control", "max-age=60")
                .header("last-modified", &lm),
        ),
    ]);
    let p = Pixgate::start_with(&origin, all);
    for path in ["/gone", "/moved", "/page"] {
        get(&p, path, &[]).await;
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    // A 404 with explicit freshness is stored and answered with its status.
    let (s, xc, _, body) = get(&p, "/gone", &[]).await;
    assert_eq!((s, xc.as_str(), body.as_str()), (404, "HIT", "missing"));
    // A 302 is not heuristically cacheable: Last-Modified alone does not store it.
    let px = p.addr;
    let (s, _, _) = tokio::task::spawn_blocking(move || common::raw_get(px, "/moved", &[]))
        .await
        .expect("moved");
    assert_eq!(s, 302);
    assert_eq!(origin.hits("/moved"), 2);
    // If-Modified-Since at or after the stored Last-Modified: 304 from the cache.
    let (s, xc, _, body) = get(&p, "/page", &[("if-modified-since", &lm)]).await;
    assert_eq!((s, xc.as_str(), body.as_str()), (304, "HIT", ""));
    let earlier = httpdate::fmt_http_date(std::time::SystemTime::now() - Duration::from_secs(7200));
    let (s, _, _, body) = get(&p, "/page", &[("if-modified-since", &earlier)]).await;
    assert_eq!((s, body.as_str()), (200, "page"));
    assert_eq!(origin.hits("/page"), 1);
}

#[tokio::test]
async fn a_stale_variant_is_revalidated_with_its_sources_validator_without_a_transform() {
    let origin = TestOrigin::start(vec![(
        "/photo.jpg",
        Route::ok("image/jpeg", common::photo(320, 240, 7))
            .header("cache-control", "max-age=1")
            .header("etag", "\"src-1\""),
    )]);
    let p = Pixgate::start(&origin);
    let webp = Some("image/webp,*/*");
    let first = common::get(&p.url("/photo.jpg"), webp).await;
    assert_eq!(first.headers()["x-cache"], "MISS");
    let first = first.bytes().await.expect("body");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Stale: the origin is asked with the source's ETag and answers 304 (no body): the
    // variant is answered again, not made again.
    let r = common::get(&p.url("/photo.jpg"), webp).await;
    assert_eq!(r.headers()["x-cache"], "REVALIDATED");
    assert_eq!(r.bytes().await.expect("body"), first);
    assert_eq!(origin.hits("/photo.jpg"), 2);
    assert_eq!(
        origin.last_headers("/photo.jpg")["if-none-match"],
        "\"src-1\""
    );
    let r = common::get(&p.url("/photo.jpg"), webp).await;
    assert_eq!(r.headers()["x-cache"], "HIT", "fresh again");
    let m = p.metrics_settled().await;
    assert_eq!(metric(&m, "pixgate_image_transforms_total", &[]), 1.0);
    // A changed source: made again from the new bytes.
    origin.set_route(
        "/photo.jpg",
        Route::ok("image/jpeg", common::photo(200, 100, 9))
            .header("cache-control", "max-age=60")
            .header("etag", "\"src-2\""),
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let r = common::get(&p.url("/photo.jpg"), webp).await;
    assert_eq!(r.headers()["x-cache"], "MISS");
    let img = common::decode(&r.bytes().await.expect("body"));
    assert_eq!((img.width(), img.height()), (200, 100));
}
