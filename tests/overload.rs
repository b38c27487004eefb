//! Overload: with every transform slot busy and the queue full, a request does not wait. It
//! gets the original at once (`limits.overload: original`, fail-open) or `503` with
//! `Retry-After` (`reject`); neither answer is cached.

mod common;

use common::{client, metric, photo, Pixgate, Route, TestOrigin, CHROME};
use pixgate::config::Overload;

const N: usize = 8;

/// Starts an origin with N distinct photos and a pixgate with 1 slot and a queue of 1.
fn setup(overload: Overload) -> (TestOrigin, Pixgate, Vec<Vec<u8>>) {
    let photos: Vec<Vec<u8>> = (0..N as u8).map(|s| photo(640, 480, s)).collect();
    let routes: Vec<(String, Route)> = photos
        .iter()
        .enumerate()
        .map(|(i, p)| {
            (
                format!("/p{i}.jpg"),
                Route::ok("image/jpeg", p.clone()).header("cache-control", "max-age=600"),
            )
        })
        .collect();
    let origin = TestOrigin::start(
        routes
            .iter()
            .map(|(p, r)| (p.as_str(), r.clone()))
            .collect(),
    );
    let px = Pixgate::start_with(&origin, |c| {
        c.limits.max_concurrent_transforms = 1;
        c.limits.max_queued_transforms = 1;
        c.limits.overload = overload;
        c.cache.avif_budget = None;
    });
    (origin, px, photos)
}

/// N concurrent AVIF requests: (status, x-pixgate, retry-after, body) each.
async fn storm(px: &Pixgate) -> Vec<(u16, String, Option<String>, Vec<u8>)> {
    let c = client();
    let handles: Vec<_> = (0..N)
        .map(|i| {
            let (c, url) = (c.clone(), px.url(&format!("/p{i}.jpg")));
            tokio::spawn(async move {
                let r = c.get(url).header("accept", CHROME).send().await.unwrap();
                let h = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_string());
                let (note, retry) = (h("x-pixgate").unwrap_or_default(), h("retry-after"));
                let status = r.status().as_u16();
                (status, note, retry, r.bytes().await.unwrap().to_vec())
            })
        })
        .collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn full_queue_fails_open_with_the_original() {
    let (_origin, px, photos) = setup(Overload::Original);
    let res = storm(&px).await;
    let over: Vec<usize> = (0..N)
        .filter(|i| res[*i].1 == "original; reason=overloaded")
        .collect();
    assert!(
        over.len() >= N - 3,
        "{:?}",
        res.iter().map(|r| &r.1).collect::<Vec<_>>()
    );
    for i in &over {
        assert_eq!(res[*i].0, 200);
        assert_eq!(res[*i].3, photos[*i], "the original bytes, untouched");
    }
    assert!(
        res.iter().any(|r| r.1 == "avif"),
        "the slot's own request was transformed"
    );
    let text = px.metrics_settled().await;
    assert_eq!(
        metric(
            &text,
            "pixgate_image_transforms_total",
            &[("outcome", "overloaded")]
        ),
        over.len() as f64
    );
    assert_eq!(metric(&text, "pixgate_transforms_queued", &[]), 0.0);
    // Not cached: asked again when the storm is over, it is transformed.
    let r = common::get(&px.url(&format!("/p{}.jpg", over[0])), Some(CHROME)).await;
    assert_eq!(r.headers()["x-pixgate"], "avif");
    assert_eq!(r.headers()["x-cache"], "MISS");
}

#[tokio::test]
async fn full_queue_rejects_with_503_when_configured() {
    let (_origin, px, _) = setup(Overload::Reject);
    let res = storm(&px).await;
    let rejected: Vec<_> = res.iter().filter(|r| r.0 == 503).collect();
    assert!(
        rejected.len() >= N - 3,
        "{:?}",
        res.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    for r in &rejected {
        assert_eq!(r.2.as_deref(), Some("1"));
    }
    assert!(res.iter().all(|r| r.0 == 200 || r.0 == 503));
    let log = px.access_log(N);
    assert_eq!(
        log.iter().filter(|l| l["reason"] == "overloaded").count(),
        rejected.len()
    );
}
