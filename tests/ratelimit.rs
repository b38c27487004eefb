//! Rate limits against a real origin and a real pixgate: 429 with Retry-After past the burst
//! (never reaching the origin), buckets per client address as named by trusted proxies only,
//! per tenant, and addresses forgotten once their bucket refills.

mod common;

use common::{client, metric, Pixgate, Route, TestOrigin};
use pixgate::ratelimit::Bucket;
use std::time::{Duration, Instant};

const HTML: &str = "<!doctype html><p>hi</p>";

fn origin() -> TestOrigin {
    TestOrigin::start(vec![
        ("/docs/*", Route::ok("text/html", HTML)),
        ("/acme/*", Route::ok("text/html", HTML)),
    ])
}

async fn get_as(px: &Pixgate, path: &str, xff: Option<&str>) -> reqwest::Response {
    let mut r = client().get(px.url(path));
    if let Some(x) = xff {
        r = r.header("x-forwarded-for", x);
    }
    r.send().await.unwrap()
}

#[tokio::test]
async fn over_the_burst_gets_429_with_retry_after_and_the_origin_is_spared() {
    let origin = origin();
    let px = Pixgate::start_with(&origin, |c| {
        c.rate_limit.per_ip = Some(Bucket { rate: 1, burst: 5 });
    });
    let mut codes = Vec::new();
    for _ in 0..8 {
        let r = get_as(&px, "/docs/a.html", None).await;
        if r.status() == 429 {
            let ra: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=2).contains(&ra), "Retry-After {ra}");
            assert_eq!(r.headers()["cache-control"], "no-store");
        }
        codes.push(r.status().as_u16());
    }
    assert_eq!(codes, [200, 200, 200, 200, 200, 429, 429, 429]);
    assert_eq!(
        origin.hits("/docs/a.html"),
        5,
        "refused requests never reach the origin"
    );
    let text = px.metrics_settled().await;
    assert_eq!(
        metric(&text, "pixgate_rate_limited_total", &[("scope", "ip")]),
        3.0
    );
    assert_eq!(
        metric(
            &text,
            "pixgate_requests_total",
            &[("status", "4xx"), ("route", "proxy")]
        ),
        3.0
    );
    let log = px.access_log(8);
    assert_eq!(log[5]["status"], 429);
    assert_eq!(log[5]["reason"], "rate_limited");
    // A second later one token is back.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(get_as(&px, "/docs/a.html", None).await.status(), 200);
}

#[tokio::test]
async fn client_addresses_come_from_trusted_proxies_only() {
    let origin = origin();
    let trusting = Pixgate::start_with(&origin, |c| {
        c.rate_limit.per_ip = Some(Bucket { rate: 1, burst: 2 });
        c.rate_limit.trusted_proxies = vec!["127.0.0.0/8".into()];
    });
    let a = Some("198.51.100.1");
    let b = Some("203.0.113.77, 198.51.100.2"); // the rightmost untrusted entry counts
    let mut seen = Vec::new();
    for xff in [a, a, a, b, b, b] {
        seen.push(
            get_as(&trusting, "/docs/x.html", xff)
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(seen, [200, 200, 429, 200, 200, 429]);
    let log = trusting.access_log(6);
    assert_eq!(log[0]["client"], "198.51.100.0/24");
    assert_eq!(log[3]["client"], "198.51.100.0/24");
    assert!(!trusting.stdout().contains("198.51.100.1\""));

    // Without trusted proxies a client cannot pick its bucket with X-Forwarded-For.
    let plain = Pixgate::start_with(&origin, |c| {
        c.rate_limit.per_ip = Some(Bucket { rate: 1, burst: 2 });
    });
    let mut seen = Vec::new();
    for xff in ["1.1.1.1", "2.2.2.2", "3.3.3.3"] {
        seen.push(
            get_as(&plain, "/docs/x.html", Some(xff))
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(seen, [200, 200, 429]);
    assert_eq!(plain.access_log(3)[0]["client"], "127.0.0.0/24");
}

#[tokio::test]
async fn tenants_have_their_own_limit() {
    let origin = origin();
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(
        rules.path().join("t.yaml"),
        "rules:\n  - name: acme\n    paths: [\"/acme/**\"]\n    tenant: acme\n",
    )
    .unwrap();
    let dir = rules.path().to_path_buf();
    let px = Pixgate::start_with(&origin, move |c| {
        c.rules.dir = Some(dir);
        c.metrics.tenants = vec!["acme".into()];
        c.rate_limit.per_tenant = Some(Bucket { rate: 1, burst: 2 });
    });
    let mut seen = Vec::new();
    for p in [
        "/acme/1.html",
        "/acme/2.html",
        "/acme/3.html",
        "/docs/1.html",
        "/docs/2.html",
        "/docs/3.html",
    ] {
        seen.push(get_as(&px, p, None).await.status().as_u16());
    }
    assert_eq!(seen, [200, 200, 429, 200, 200, 200]);
    let text = px.metrics_settled().await;
    assert_eq!(
        metric(&text, "pixgate_rate_limited_total", &[("scope", "tenant")]),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "pixgate_tenant_requests_total",
            &[("tenant", "acme")]
        ),
        3.0
    );
}

#[tokio::test]
async fn addresses_are_held_only_until_their_bucket_refills() {
    let origin = origin();
    let px = Pixgate::start_with(&origin, |c| {
        c.rate_limit.per_ip = Some(Bucket { rate: 1, burst: 3 });
        c.rate_limit.trusted_proxies = vec!["127.0.0.1/32".into()];
    });
    // Ten addresses empty their buckets: each refills in 3 s.
    let start = Instant::now();
    for i in 0..10 {
        let ip = format!("198.51.100.{i}");
        for _ in 0..3 {
            assert_eq!(get_as(&px, "/docs/a.html", Some(&ip)).await.status(), 200);
        }
    }
    let keys = || async {
        metric(
            &px.metrics().await,
            "pixgate_rate_limit_keys",
            &[("scope", "ip")],
        )
    };
    // Held while it matters (the forgetter publishes every second)...
    let t0 = start;
    let mut max = 0.0f64;
    let mut zero_at = None;
    while t0.elapsed() < Duration::from_secs(8) {
        let k = keys().await;
        max = max.max(k);
        if max > 0.0 && k == 0.0 {
            zero_at = Some(t0.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // ...and gone once the buckets have refilled (3 s after the last request), within the
    // forgetter's period and governor's bookkeeping (measured: ~5 s).
    assert_eq!(max, 10.0);
    let zero_at = zero_at.expect("addresses were forgotten");
    assert!(
        zero_at > Duration::from_millis(2500) && zero_at < Duration::from_millis(6500),
        "{zero_at:?}"
    );
}
