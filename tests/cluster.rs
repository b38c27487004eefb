//! The shared tier on loopback: a real redis-server (persistence off) and three pixgate
//! processes behind no balancer (the test spreads requests itself). Variants made on one node
//! are served by the others from Redis, concurrent misses across nodes cost one transform,
//! purges reach every node, Redis enforces the retention limit, and Redis trouble fails no
//! request.

mod common;

use common::redis_server::{Redis, RedisCluster};
use common::{metric, photo, Busy, Pixgate, Route, TestOrigin, CHROME};
use pixgate::cache::shared::config::{BreakerConfig, SharedConfig, Urls};
use pixgate::config::{Config, Dur};
use redis::Commands;
use std::time::{Duration, Instant};

const TOKEN: &str = "cluster-test-admin-token";

/// The cluster key file every node reads.
fn key_file(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("cluster.key");
    let mut k = [0u8; 32];
    getrandom::fill(&mut k).expect("random");
    std::fs::write(&p, k).expect("key file");
    p
}

/// Three nodes on `redis`, with `tweak` applied to each config.
fn nodes(
    origin: &TestOrigin,
    redis: &Redis,
    key: &std::path::Path,
    tweak: impl Fn(&mut Config),
) -> Vec<Pixgate> {
    nodes_on(origin, Urls::One(redis.url()), false, key, tweak)
}

/// Three nodes on the Redis at `urls` (a cluster's seeds with `cluster`).
fn nodes_on(
    origin: &TestOrigin,
    urls: Urls,
    cluster: bool,
    key: &std::path::Path,
    tweak: impl Fn(&mut Config),
) -> Vec<Pixgate> {
    (0..3)
        .map(|_| {
            Pixgate::start_with(origin, |c| {
                c.admin.token = Some(TOKEN.into());
                // One encode per variant (no WebP stand-in racing an AVIF encode).
                c.cache.avif_budget = None;
                c.cache.shared = Some(SharedConfig {
                    redis: urls.clone(),
                    cluster,
                    key_file: Some(key.to_path_buf()),
                    // Generous for a loaded CI machine; a hanging Redis has its own test.
                    timeout: Dur::millis(1000),
                    breaker: BreakerConfig {
                        failures: 3,
                        open_for: Dur::millis(500),
                    },
                    ..SharedConfig::default()
                });
                tweak(c);
            })
        })
        .collect()
}

/// Encodes done by a node (every transform observes the histogram once).
async fn transforms(px: &Pixgate) -> f64 {
    metric(&px.metrics().await, "pixgate_transform_seconds_count", &[])
}

async fn shared_hits(px: &Pixgate) -> f64 {
    metric(
        &px.metrics().await,
        "pixgate_cache_hits_total",
        &[("tier", "shared")],
    )
}

/// The site's host name, the same on every node (as behind a load balancer).
const HOST: &str = "images.example";

/// GET `url` for the site with Chrome's Accept.
async fn site_get(url: &str) -> reqwest::Result<reqwest::Response> {
    common::client()
        .get(url)
        .header("host", HOST)
        .header("accept", CHROME)
        .send()
        .await
}

/// GET `path` with Chrome's Accept: (status, X-Cache, body).
async fn fetch(px: &Pixgate, path: &str) -> (u16, String, Vec<u8>) {
    let r = site_get(&px.url(path)).await.expect("response");
    let status = r.status().as_u16();
    let cache = r
        .headers()
        .get("x-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, cache, r.bytes().await.expect("body").to_vec())
}

fn value_names(r: &Redis) -> Vec<String> {
    let mut c = r.conn();
    c.keys("pg:e:*").expect("KEYS")
}

/// Waits (up to 2 s) until `count()` is `n`: a node writes to Redis after it has answered.
async fn until_stored(n: usize, count: impl Fn() -> usize) -> usize {
    common::wait_until(Duration::from_secs(2), || count() == n).await;
    count()
}

fn origin_with(paths: &[&str]) -> TestOrigin {
    let routes = paths
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let body = photo(640, 480, i as u8 + 1);
            (
                *p,
                Route::ok("image/jpeg", body).header("cache-control", "max-age=3600"),
            )
        })
        .collect();
    TestOrigin::start(routes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_variant_made_on_one_node_is_served_by_the_others_from_redis_sealed() {
    let redis = Redis::start();
    let origin = origin_with(&["/photos/secret-name.jpg"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let key = key_file(dir.path());
    let n = nodes(&origin, &redis, &key, |_| {});
    let path = "/photos/secret-name.jpg?w=320";

    let (s, cache, made) = fetch(&n[0], path).await;
    assert_eq!((s, cache.as_str()), (200, "MISS"));
    assert_eq!(&made[4..12], b"ftypavif", "Chrome gets AVIF");
    assert_eq!(common::decode(&made).width(), 320);
    for other in &n[1..] {
        let (s, cache, body) = fetch(other, path).await;
        assert_eq!((s, cache.as_str()), (200, "HIT"), "served from Redis");
        assert_eq!(body, made, "the same bytes as node A made");
        assert_eq!(shared_hits(other).await, 1.0);
        assert_eq!(transforms(other).await, 0.0, "no second transform");
    }
    assert_eq!(transforms(&n[0]).await, 1.0);
    assert_eq!(
        origin.hits("/photos/secret-name.jpg"),
        1,
        "no second origin fetch"
    );

    // What Redis holds: one value, named by a keyed MAC, sealed, expiring with the entry.
    assert_eq!(until_stored(1, || value_names(&redis).len()).await, 1);
    let names = value_names(&redis);
    let mut c = redis.conn();
    let v: Vec<u8> = c.get(&names[0]).expect("GET");
    for needle in [
        &b"secret-name"[..],
        b"photos",
        b"ftypavif",
        b"image/avif",
        b"max-age",
    ] {
        assert!(
            !v.windows(needle.len()).any(|w| w == needle),
            "`{}` readable in Redis",
            String::from_utf8_lossy(needle)
        );
    }
    let pttl: i64 = c.pttl(&names[0]).expect("PTTL");
    assert!(
        pttl > 3_500_000 && pttl <= 3_600_000,
        "PX follows the entry's life (max-age=3600): {pttl}"
    );
    let all: Vec<String> = c.keys("*").expect("KEYS");
    assert!(
        all.iter()
            .all(|k| !k.contains("secret") && !k.contains("photos")),
        "{all:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_misses_over_three_nodes_cost_one_transform() {
    let redis = Redis::start();
    let origin = TestOrigin::start(vec![(
        "/big.jpg",
        Route::ok("image/jpeg", photo(1600, 1200, 9))
            .header("cache-control", "max-age=3600")
            .delayed(Duration::from_millis(50)),
    )]);
    let dir = tempfile::tempdir().expect("tempdir");
    let key = key_file(dir.path());
    let n = nodes(&origin, &redis, &key, |_| {});
    let _busy = Busy::all_cores();
    let urls: Vec<String> = (0..50).map(|i| n[i % 3].url("/big.jpg?w=800")).collect();
    let tasks: Vec<_> = urls
        .into_iter()
        .map(|u| {
            tokio::spawn(async move {
                let r = site_get(&u).await.expect("response");
                let s = r.status().as_u16();
                (s, r.bytes().await.map(|b| b.len()).unwrap_or(0))
            })
        })
        .collect();
    let mut sizes = Vec::new();
    for t in tasks {
        let (s, len) = t.await.expect("task");
        assert_eq!(s, 200);
        sizes.push(len);
    }
    sizes.dedup();
    assert_eq!(sizes.len(), 1, "every answer is the one variant: {sizes:?}");
    let mut total = 0.0;
    let mut waited = 0.0;
    for px in &n {
        total += transforms(px).await;
        waited += metric(
            &px.metrics().await,
            "pixgate_shared_coalesce_total",
            &[("result", "waited")],
        );
    }
    assert_eq!(total, 1.0, "one transform in the whole cluster");
    assert_eq!(origin.hits("/big.jpg"), 1, "one origin fetch");
    assert!(waited >= 1.0, "other nodes waited for the claim holder");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_purge_on_one_node_is_gone_from_the_others_within_a_second() {
    let redis = Redis::start();
    let origin = origin_with(&["/a.jpg", "/b.jpg"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let key = key_file(dir.path());
    let n = nodes(&origin, &redis, &key, |_| {});
    for p in ["/a.jpg?w=100", "/b.jpg?w=100"] {
        for px in &n {
            assert_eq!(fetch(px, p).await.0, 200);
        }
        // Now in every node's memory tier.
        for px in &n {
            assert_eq!(fetch(px, p).await.1, "HIT");
        }
    }
    assert_eq!(until_stored(2, || value_names(&redis).len()).await, 2);

    let (code, body) = n[2].purge("url=/a.jpg", Some(TOKEN)).await;
    let purged = Instant::now();
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"cluster\":true"), "{body}");
    assert_eq!(value_names(&redis).len(), 1, "gone from Redis, /b.jpg kept");
    // Nodes A and B lose their memory copies within a second (the purge bus).
    for px in &n[..2] {
        let gone = common::wait_until_async(Duration::from_secs(1), || async {
            metric(
                &px.metrics().await,
                "pixgate_shared_purges_received_total",
                &[],
            ) >= 1.0
        })
        .await;
        assert!(gone, "purge reached the node within 1 s");
    }
    let took = purged.elapsed();
    // A's copy is gone: a miss, made again from the origin (and shared again).
    let fetched = origin.hits("/a.jpg");
    assert_eq!(fetch(&n[0], "/a.jpg?w=100").await.1, "MISS");
    assert_eq!(origin.hits("/a.jpg"), fetched + 1);
    // B's memory copy is gone too: its hit is the new one from Redis, not its old copy.
    let memory = |t: &str| metric(t, "pixgate_cache_hits_total", &[("tier", "memory")]);
    let shared = |t: &str| metric(t, "pixgate_cache_hits_total", &[("tier", "shared")]);
    let before = n[1].metrics().await;
    assert_eq!(fetch(&n[1], "/a.jpg?w=100").await.1, "HIT");
    let after = n[1].metrics().await;
    assert_eq!(memory(&after), memory(&before), "not from B's memory");
    assert_eq!(
        shared(&after),
        shared(&before) + 1.0,
        "from Redis: A's new variant"
    );
    for px in &n[..2] {
        assert_eq!(fetch(px, "/b.jpg?w=100").await.1, "HIT", "others kept");
    }
    eprintln!("purge reached both other nodes in {took:?}");

    // Everything, from node A.
    let (code, body) = n[0].purge("all=true", Some(TOKEN)).await;
    assert_eq!(code, 200, "{body}");
    assert!(value_names(&redis).is_empty());
    // Node C purged the first time (it applied that itself): this is its first message.
    for (px, want) in [(&n[1], 2.0), (&n[2], 1.0)] {
        let cleared = common::wait_until_async(Duration::from_secs(1), || async {
            metric(
                &px.metrics().await,
                "pixgate_shared_purges_received_total",
                &[],
            ) >= want
        })
        .await;
        assert!(cleared);
    }
    assert_ne!(fetch(&n[2], "/b.jpg?w=100").await.1, "HIT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_enforces_max_retention_and_every_node_misses_after_it() {
    let redis = Redis::start();
    let origin = origin_with(&["/r.jpg"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let key = key_file(dir.path());
    let n = nodes(&origin, &redis, &key, |c| {
        c.cache.max_retention = Dur::secs(3);
    });
    let start = Instant::now();
    assert_eq!(fetch(&n[0], "/r.jpg?w=64").await.1, "MISS");
    assert_eq!(until_stored(1, || value_names(&redis).len()).await, 1);
    let names = value_names(&redis);
    let mut c = redis.conn();
    let pttl: i64 = c.pttl(&names[0]).expect("PTTL");
    assert!(pttl > 0 && pttl <= 3000, "PX within max_retention: {pttl}");
    assert_eq!(fetch(&n[1], "/r.jpg?w=64").await.1, "HIT");
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(start.elapsed())).await;
    let exists: i64 = c.exists(&names[0]).expect("EXISTS");
    assert_eq!(exists, 0, "Redis dropped it at max_retention");
    // No node holds it any more (the sweeper emptied the memory tiers)...
    for px in &n {
        let (code, stats) = px.admin_get("/cache/stats").await;
        assert_eq!(code, 200);
        assert!(stats.contains("\"memory\":{\"entries\":0"), "{stats}");
    }
    // ...so the next request anywhere is a miss that goes to the origin.
    let before = origin.hits("/r.jpg");
    assert_eq!(fetch(&n[2], "/r.jpg?w=64").await.1, "MISS");
    assert_eq!(origin.hits("/r.jpg"), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_killed_mid_load_fails_no_request_and_shared_hits_resume() {
    let mut redis = Redis::start();
    let paths: Vec<String> = (0..6).map(|i| format!("/load/{i}.jpg")).collect();
    let refs: Vec<&str> = paths.iter().map(|s| s.as_str()).collect();
    let origin = origin_with(&refs);
    let dir = tempfile::tempdir().expect("tempdir");
    let key = key_file(dir.path());
    let n = nodes(&origin, &redis, &key, |_| {});
    let urls: Vec<Vec<String>> = n
        .iter()
        .map(|px| paths.iter().map(|p| px.url(p)).collect())
        .collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..6)
        .map(|w| {
            let urls = urls.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let (mut ok, mut failed, mut i) = (0u32, 0u32, w);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // Widths keep changing: misses, so Redis is asked all along.
                    let u = format!("{}?w={}", urls[i % 3][(i / 3) % 6], 100 + i % 400);
                    let answered = match site_get(&u).await {
                        Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    if answered {
                        ok += 1;
                    } else {
                        failed += 1;
                    }
                    i += 7;
                }
                (ok, failed)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    redis.kill();
    // A purge while Redis is down reaches this node only, and says so.
    let (code, body) = n[1].purge("url=/nothing.jpg", Some(TOKEN)).await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("\"cluster\":false"), "{body}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let open: f64 = metric(&n[0].metrics().await, "pixgate_shared_breaker_open", &[]);
    redis.restart();
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut ok, mut failed) = (0, 0);
    for t in load {
        let (o, f) = t.await.expect("load task");
        ok += o;
        failed += f;
    }
    eprintln!("load across the outage: {ok} answered, {failed} failed; breaker open = {open}");
    assert_eq!(failed, 0, "no request failed while Redis was down");
    assert!(ok > 50, "the load ran: {ok}");
    assert_eq!(open, 1.0, "the breaker opened while Redis was down");
    let (code, body) = n[0].admin_get("/readyz").await;
    assert_eq!(code, 200, "ready throughout: {body}");
    // The restarted Redis lost the purge epoch: every node dropped its local tiers.
    for px in &n {
        let dropped = common::wait_until_async(Duration::from_secs(5), || async {
            metric(
                &px.metrics().await,
                "pixgate_shared_local_drops_total",
                &[("reason", "epoch")],
            ) >= 1.0
        })
        .await;
        assert!(
            dropped,
            "a node that may have missed purges dropped its tiers"
        );
    }
    // Shared hits resume: a new variant made on A is a hit on B from Redis.
    let resumed = common::wait_until_async(Duration::from_secs(5), || async {
        let p = "/load/0.jpg?w=111";
        fetch(&n[0], p).await;
        let before = shared_hits(&n[1]).await;
        fetch(&n[1], p).await.1 == "HIT" && shared_hits(&n[1]).await > before
    })
    .await;
    assert!(resumed, "shared hits after Redis came back");
}

#[test]
fn memory_only_promise_refuses_a_redis_that_persists() {
    let origin = origin_with(&["/x.jpg"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let key = key_file(dir.path());
    // A config under the promise, on `redis`.
    let promised = |redis: &Redis| {
        let mut cfg = Config::default();
        cfg.origin.url = format!("http://{}", origin.addr);
        cfg.cache.memory_only_promise = true;
        cfg.cache.shared = Some(SharedConfig {
            redis: Urls::One(redis.url()),
            key_file: Some(key.clone()),
            ..SharedConfig::default()
        });
        cfg
    };
    for args in [
        &["--save", "3600 1", "--appendonly", "no"][..],
        &["--save", "", "--appendonly", "yes"][..],
    ] {
        let redis = Redis::start_with(args);
        let (status, stderr) = Pixgate::run_to_exit(promised(&redis), Duration::from_secs(20));
        let status = status.expect("pixgate refuses to start");
        assert!(!status.success());
        assert!(
            stderr.contains("memory_only_promise")
                && (stderr.contains("save") || stderr.contains("appendonly")),
            "{stderr}"
        );
    }
    // Persistence off: it starts.
    let redis = Redis::start();
    let (status, stderr) = Pixgate::run_to_exit(promised(&redis), Duration::from_secs(3));
    assert!(
        status.is_none(),
        "starts on a Redis without persistence: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_cluster_shares_variants_claims_and_purges_across_its_masters() {
    let rc = RedisCluster::start();
    let paths: Vec<String> = (0..12).map(|i| format!("/c/{i}.jpg")).collect();
    let refs: Vec<&str> = paths.iter().map(|s| s.as_str()).collect();
    let origin = origin_with(&refs);
    let dir = tempfile::tempdir().expect("tempdir");
    let key = key_file(dir.path());
    let n = nodes_on(&origin, Urls::Many(rc.urls()), true, &key, |_| {});
    for p in &paths {
        assert_eq!(fetch(&n[0], &format!("{p}?w=90")).await.1, "MISS");
    }
    // Twelve values, spread over the masters by their slots.
    assert_eq!(until_stored(12, || rc.keys("pg:e:*").len()).await, 12);
    let holding = rc
        .nodes
        .iter()
        .filter(|r| {
            let k: Vec<String> = redis::cmd("KEYS")
                .arg("pg:e:*")
                .query(&mut r.conn())
                .expect("KEYS");
            !k.is_empty()
        })
        .count();
    assert!(holding >= 2, "values on {holding} master(s) only");
    for p in &paths {
        assert_eq!(fetch(&n[1], &format!("{p}?w=90")).await.1, "HIT");
    }
    assert_eq!(shared_hits(&n[1]).await, 12.0);
    assert_eq!(transforms(&n[1]).await, 0.0);
    // Concurrent misses on the three nodes: one transform (the claim lives on one master).
    let tasks: Vec<_> = (0..15)
        .map(|i| {
            let u = n[i % 3].url("/c/0.jpg?w=333");
            tokio::spawn(async move { site_get(&u).await.map(|r| r.status().as_u16()) })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.expect("task").expect("response"), 200);
    }
    let mut total = 0.0;
    for px in &n {
        total += transforms(px).await;
    }
    let mut seen = String::new();
    for px in &n {
        let m = px.metrics().await;
        for l in m.lines() {
            if l.starts_with("pixgate_shared_") && !l.ends_with(" 0") && !l.contains("_bucket") {
                seen.push_str(l);
                seen.push('\n');
            }
        }
    }
    assert_eq!(
        total, 13.0,
        "12 variants on A, then one for the 15 concurrent misses: {seen}"
    );
    assert_eq!(until_stored(13, || rc.keys("pg:e:*").len()).await, 13);
    // A prefix purge on C scans every master.
    let (code, body) = n[2].purge("prefix=/c/1", Some(TOKEN)).await;
    assert_eq!(code, 200, "{body}");
    // /c/1.jpg, /c/10.jpg, /c/11.jpg
    assert!(body.contains("\"shared_purged\":3"), "{body}");
    assert_eq!(rc.keys("pg:e:*").len(), 13 - 3);
    let reached = common::wait_until_async(Duration::from_secs(1), || async {
        metric(
            &n[1].metrics().await,
            "pixgate_shared_purges_received_total",
            &[],
        ) >= 1.0
    })
    .await;
    assert!(reached, "the purge bus works through the cluster");
    assert_ne!(fetch(&n[1], "/c/10.jpg?w=90").await.1, "HIT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shield_responses_are_shared_too() {
    let redis = Redis::start();
    let origin = TestOrigin::start(vec![(
        "/page.html",
        Route::ok("text/html", "<p>hello</p>").header("cache-control", "max-age=600"),
    )]);
    let dir = tempfile::tempdir().expect("tempdir");
    let key = key_file(dir.path());
    let n = nodes(&origin, &redis, &key, |_| {});
    let shield_hits = |t: &str| metric(t, "pixgate_shield_requests_total", &[("status", "hit")]);
    let page = |px: &Pixgate| {
        let u = px.url("/page.html");
        async move {
            let r = common::client()
                .get(u)
                .header("host", HOST)
                .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
                .send()
                .await
                .expect("response");
            (r.status().as_u16(), r.text().await.expect("body"))
        }
    };
    assert_eq!(page(&n[0]).await, (200, "<p>hello</p>".to_string()));
    // The shield stores once the body has passed (in the background).
    let stored =
        common::wait_until(Duration::from_secs(2), || !value_names(&redis).is_empty()).await;
    assert!(stored, "the shield response reached Redis");
    assert_eq!(page(&n[1]).await, (200, "<p>hello</p>".to_string()));
    assert_eq!(origin.hits("/page.html"), 1, "the origin saw one request");
    let m = n[1].metrics().await;
    assert_eq!(shield_hits(&m), 1.0, "node B answered from the shield");
    assert!(
        metric(
            &m,
            "pixgate_shared_ops_total",
            &[("op", "get"), ("result", "hit")]
        ) >= 1.0,
        "with an entry from Redis"
    );
}

/// A TCP listener that accepts and never answers: a Redis that hangs.
fn black_hole() -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let t = std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().take(64) {
            held.push(s);
        }
    });
    (addr, t)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hanging_redis_costs_at_most_its_timeout_then_nothing_and_readyz_stays_ready() {
    let (addr, _t) = black_hole();
    let paths: Vec<String> = (0..12).map(|i| format!("/h/{i}.jpg")).collect();
    let refs: Vec<&str> = paths.iter().map(|s| s.as_str()).collect();
    let origin = origin_with(&refs);
    let dir = tempfile::tempdir().expect("tempdir");
    let key = key_file(dir.path());
    let px = Pixgate::start_with(&origin, |c| {
        c.cache.avif_budget = None;
        c.cache.shared = Some(SharedConfig {
            redis: Urls::One(format!("redis://{addr}")),
            key_file: Some(key.clone()),
            timeout: Dur::millis(150),
            breaker: BreakerConfig {
                failures: 3,
                open_for: Dur::secs(60),
            },
            ..SharedConfig::default()
        });
    });
    // Warm the codecs and the origin connection: later times compare like with like.
    let t0 = Instant::now();
    assert_eq!(fetch(&px, "/h/0.jpg?w=64").await.0, 200);
    let first = t0.elapsed();
    // One timeout per request: its lookup's. The claim and the store that would follow are
    // skipped after that failure.
    let m = px.metrics().await;
    assert_eq!(
        metric(&m, "pixgate_shared_ops_total", &[("result", "timeout")]),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            "pixgate_shared_ops_total",
            &[("op", "lock"), ("result", "skipped")]
        ),
        1.0
    );
    assert!(first < Duration::from_millis(150 + 400), "{first:?}");
    let mut times = Vec::new();
    for p in &paths[1..] {
        let t = Instant::now();
        let (s, cache, _) = fetch(&px, &format!("{p}?w=64")).await;
        assert_eq!((s, cache.as_str()), (200, "MISS"));
        times.push(t.elapsed());
    }
    let m = px.metrics().await;
    assert_eq!(metric(&m, "pixgate_shared_breaker_open", &[]), 1.0);
    let skipped = metric(&m, "pixgate_shared_ops_total", &[("result", "skipped")]);
    let timeouts = metric(&m, "pixgate_shared_ops_total", &[("result", "timeout")]);
    assert!(timeouts <= 3.0, "3 failures open the breaker: {timeouts}");
    assert!(skipped >= 8.0, "then Redis is skipped: {skipped}");
    // With the breaker open, a miss costs no Redis wait: the last requests are far below one
    // timeout each (a generous bound on a busy 2-core machine; they take milliseconds).
    let tail = &times[times.len() - 5..];
    eprintln!("first {first:?}; misses {times:?}");
    assert!(
        tail.iter().all(|t| *t < Duration::from_millis(150)),
        "{tail:?}"
    );
    let (code, body) = px.admin_get("/readyz").await;
    assert_eq!(code, 200, "Redis is an optimisation: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_redis_keeps_entries_local_and_loses_no_request() {
    // noeviction at a tiny maxmemory: every SET is refused with OOM.
    let redis = Redis::start_with(&[
        "--save",
        "",
        "--appendonly",
        "no",
        "--maxmemory",
        "1",
        "--maxmemory-policy",
        "noeviction",
    ]);
    let origin = origin_with(&["/f.jpg"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let key = key_file(dir.path());
    let n = nodes(&origin, &redis, &key, |_| {});
    assert_eq!(fetch(&n[0], "/f.jpg?w=120").await.0, 200);
    assert_eq!(fetch(&n[0], "/f.jpg?w=120").await.1, "HIT", "kept locally");
    // A SET is refused (OOM: the purge bus's epoch or the claim, whichever comes first); the
    // store after it is skipped.
    let m = n[0].metrics().await;
    let ops = |op: &str, result: &str| {
        metric(
            &m,
            "pixgate_shared_ops_total",
            &[("op", op), ("result", result)],
        )
    };
    assert!(
        metric(&m, "pixgate_shared_ops_total", &[("result", "error")]) >= 1.0,
        "the refused SET is counted"
    );
    assert_eq!(ops("put", "ok"), 0.0);
    assert!(value_names(&redis).is_empty());
    // Another node makes its own.
    assert_eq!(fetch(&n[1], "/f.jpg?w=120").await.1, "MISS");
}

/// The ACL docs/deployment.md gives pixgate's Redis user (keep the two the same).
const ACL: &str = "pixgate on >acl-test-password ~pg:* &pg:* -@all +get +set +getdel +getrange +exists +unlink +scan +eval +publish +subscribe +ping +config|get +cluster|nodes";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_documented_acl_is_enough() {
    // `default` stays on for the test's own inspection; each rule is an argument of its own.
    let mut args = vec!["--save", "", "--appendonly", "no"];
    args.extend([
        "--user", "default", "on", "nopass", "~*", "&*", "+@all", "--user",
    ]);
    args.extend(ACL.split(' '));
    let redis = Redis::start_with(&args);
    let origin = origin_with(&["/acl.jpg"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let key = key_file(dir.path());
    let url = format!("redis://pixgate:acl-test-password@127.0.0.1:{}", redis.port);
    let n = nodes_on(&origin, Urls::One(url), false, &key, |c| {
        c.cache.memory_only_promise = true; // CONFIG GET must be allowed
    });
    assert_eq!(fetch(&n[0], "/acl.jpg?w=50").await.1, "MISS");
    assert_eq!(fetch(&n[1], "/acl.jpg?w=50").await.1, "HIT");
    let (code, body) = n[1].purge("url=/acl.jpg", Some(TOKEN)).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"shared_purged\":1"), "{body}");
    let reached = common::wait_until_async(Duration::from_secs(1), || async {
        metric(
            &n[0].metrics().await,
            "pixgate_shared_purges_received_total",
            &[],
        ) >= 1.0
    })
    .await;
    assert!(reached, "SUBSCRIBE and PUBLISH are allowed");
    for px in &n {
        let m = px.metrics().await;
        let errors = metric(&m, "pixgate_shared_ops_total", &[("result", "error")]);
        let which: Vec<&str> = m
            .lines()
            .filter(|l| l.contains("result=\"error\"") && !l.ends_with(" 0"))
            .collect();
        assert_eq!(errors, 0.0, "no command refused: {which:?}");
    }
}
