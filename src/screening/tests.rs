//! `Screening::check` end to end: the deny list (digest, near duplicate, reload) and a real
//! hyper hook server on a loopback port (allow, deny, timeout under both fail modes).

use super::*;
use crate::units::Dur;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::io::Cursor;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::TcpListener;

const LIMITS: HeaderLimits = HeaderLimits {
    max_pixels: 4_000_000,
    max_dimension: 4096,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn png_of(img: &image::DynamicImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn count(outcome: &str) -> u64 {
    metrics::SCREENING.with_label_values(&[outcome]).get()
}

fn with_list(dir: &tempfile::TempDir, text: &str) -> ScreeningConfig {
    let path = dir.path().join("deny.txt");
    std::fs::write(&path, text).unwrap();
    ScreeningConfig {
        deny_list: Some(path),
        ..ScreeningConfig::default()
    }
}

#[tokio::test]
async fn denies_by_digest_and_by_near_duplicate_only() {
    let photo = fixture("progressive.jpg");
    let sha = deny_list::hex(&Sha256::digest(&photo));
    let dh = dhash::of_bytes(&photo, LIMITS).unwrap();
    let dir = tempfile::tempdir().unwrap();

    let s = Screening::new(&with_list(&dir, &format!("sha256:{sha}\n")), LIMITS).unwrap();
    let before = count("digest");
    assert_eq!(s.check(&photo).await, Verdict::Deny(DenyReason::Digest));
    assert_eq!(count("digest"), before + 1);
    assert_eq!(Verdict::Deny(DenyReason::Digest).status(), Some(451));
    // The same picture re-encoded has another digest: the digest list alone lets it through.
    let copy = png_of(&image::load_from_memory(&photo).unwrap().resize(
        200,
        150,
        image::imageops::FilterType::Triangle,
    ));
    assert_eq!(s.check(&copy).await, Verdict::Allow);

    let s = Screening::new(&with_list(&dir, &format!("dhash:{dh:016x}\n")), LIMITS).unwrap();
    assert_eq!(
        s.check(&copy).await,
        Verdict::Deny(DenyReason::NearDuplicate)
    );
    assert_eq!(s.check(&fixture("orient-1.jpg")).await, Verdict::Allow);
    // A bomb is refused unread; a text file is not an image.
    let bomb = s.check(&fixture("bomb.png")).await;
    assert_eq!(bomb, Verdict::Unreadable(Unreadable::Bomb));
    assert_eq!(bomb.status(), Some(422));
    let text = s.check(b"hello, world").await;
    assert_eq!(
        (text, text.status()),
        (Verdict::Unreadable(Unreadable::NotImage), Some(415))
    );

    // A listed dHash 7 bits away is past the default threshold (6).
    let far = dh ^ 0x7f;
    let s = Screening::new(&with_list(&dir, &format!("dhash:{far:016x}\n")), LIMITS).unwrap();
    assert_eq!(s.check(&photo).await, Verdict::Allow);
}

#[tokio::test]
async fn a_changed_list_is_reloaded_and_a_bad_one_keeps_the_previous() {
    let photo = fixture("progressive.jpg");
    let sha = deny_list::hex(&Sha256::digest(&photo));
    let dir = tempfile::tempdir().unwrap();
    let cfg = with_list(&dir, "# empty for now\n");
    let path = cfg.deny_list.clone().unwrap();
    let s = Screening::new(&cfg, LIMITS).unwrap();
    assert_eq!(s.check(&photo).await, Verdict::Allow);
    assert_eq!(s.reload_if_changed(), Ok(None), "unchanged");

    // Setting the mtime explicitly: a coarse file system clock cannot hide the change.
    let write = |text: &str, secs: u64| {
        std::fs::write(&path, text).unwrap();
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
            .unwrap();
    };
    write(&format!("sha256:{sha}\n"), 1_000);
    assert_eq!(s.reload_if_changed(), Ok(Some((1, 0))));
    assert_eq!(s.check(&photo).await, Verdict::Deny(DenyReason::Digest));

    write(&format!("sha256:{sha}\nnot an entry\n"), 2_000);
    let errors = s.reload_if_changed().unwrap_err();
    assert_eq!(
        errors.to_string(),
        format!(
            "{}:2: expected `sha256:<64 hex>` or `dhash:<16 hex>`",
            path.display()
        )
    );
    assert_eq!(s.entries(), (1, 0), "the previous list stays");
    assert_eq!(s.check(&photo).await, Verdict::Deny(DenyReason::Digest));
    assert_eq!(
        s.reload_if_changed(),
        Ok(None),
        "a bad file is reported once"
    );

    // The watcher picks up the fix by itself.
    let s = Arc::new(
        Screening::new(
            &ScreeningConfig {
                reload_interval: Dur::millis(10),
                ..with_list(&dir, &format!("sha256:{sha}\n"))
            },
            LIMITS,
        )
        .unwrap(),
    );
    let watcher = tokio::spawn(Arc::clone(&s).watch());
    write("# cleared\n", 3_000);
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.entries() != (0, 0) {
        assert!(Instant::now() < deadline, "not reloaded");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(s.check(&photo).await, Verdict::Allow);
    watcher.abort();

    // At start-up a bad list is an error.
    let bad = with_list(&dir, "dhash:xyz\n");
    assert!(Screening::new(&bad, LIMITS).is_err());
}

/// How the fake hook answers.
#[derive(Clone, Copy)]
enum Answer {
    Json(bool),
    Status(u16),
    Hang,
}

/// A hyper server on an ephemeral loopback port; returns its URL and the bodies it received.
async fn hook_server(
    answer: Answer,
) -> (String, Arc<Mutex<Vec<(String, Bytes)>>>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let hits = Arc::new(AtomicUsize::new(0));
    let (seen2, hits2) = (Arc::clone(&seen), Arc::clone(&hits));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (seen, hits) = (Arc::clone(&seen2), Arc::clone(&hits2));
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (seen, hits) = (Arc::clone(&seen), Arc::clone(&hits));
                    async move {
                        hits.fetch_add(1, Ordering::SeqCst);
                        let ctype = req
                            .headers()
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string();
                        let body = req.into_body().collect().await?.to_bytes();
                        seen.lock().unwrap().push((ctype, body));
                        let (status, body) = match answer {
                            Answer::Json(allow) => (200, format!("{{\"allow\":{allow}}}")),
                            Answer::Status(s) => (s, String::new()),
                            Answer::Hang => {
                                tokio::time::sleep(Duration::from_secs(30)).await;
                                (200, String::new())
                            }
                        };
                        Ok::<_, hyper::Error>(
                            hyper::Response::builder()
                                .status(status)
                                .body(Full::new(Bytes::from(body)))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (format!("http://{addr}/check"), seen, hits)
}

fn with_hook(url: &str, fail: FailMode, send: SendMode) -> ScreeningConfig {
    ScreeningConfig {
        hook: Some(HookConfig {
            url: url.to_string(),
            timeout: Dur::millis(300),
            fail,
            send,
        }),
        ..ScreeningConfig::default()
    }
}

#[tokio::test]
async fn the_hook_allows_and_denies_with_hashes_or_bytes() {
    let photo = fixture("progressive.jpg");
    let sha = deny_list::hex(&Sha256::digest(&photo));
    let dh = format!("{:016x}", dhash::of_bytes(&photo, LIMITS).unwrap());

    let (url, seen, _) = hook_server(Answer::Json(true)).await;
    let s = Screening::new(&with_hook(&url, FailMode::Closed, SendMode::Hash), LIMITS).unwrap();
    assert_eq!(s.check(&photo).await, Verdict::Allow);
    let (ctype, body) = seen.lock().unwrap()[0].clone();
    assert_eq!(ctype, "application/json");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v, serde_json::json!({"sha256": sha, "dhash": dh}));

    let (url, seen, _) = hook_server(Answer::Json(false)).await;
    let s = Screening::new(&with_hook(&url, FailMode::Open, SendMode::Bytes), LIMITS).unwrap();
    let before = count("hook");
    assert_eq!(s.check(&photo).await, Verdict::Deny(DenyReason::Hook));
    assert_eq!(count("hook"), before + 1);
    let (ctype, body) = seen.lock().unwrap()[0].clone();
    assert_eq!(ctype, "application/octet-stream");
    assert_eq!(body.as_ref(), photo.as_slice());

    for status in [403, 451] {
        let (url, _, _) = hook_server(Answer::Status(status)).await;
        let s = Screening::new(&with_hook(&url, FailMode::Open, SendMode::Hash), LIMITS).unwrap();
        assert_eq!(
            s.check(&photo).await,
            Verdict::Deny(DenyReason::Hook),
            "{status}"
        );
    }
    // A digest on the list is denied without asking the hook.
    let (url, _, hits) = hook_server(Answer::Json(true)).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = ScreeningConfig {
        hook: with_hook(&url, FailMode::Open, SendMode::Hash).hook,
        ..with_list(&dir, &format!("sha256:{sha}\n"))
    };
    let s = Screening::new(&cfg, LIMITS).unwrap();
    assert_eq!(s.check(&photo).await, Verdict::Deny(DenyReason::Digest));
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_failing_hook_is_resolved_by_the_fail_mode() {
    let photo = fixture("gray.jpg");
    let (hang, _, _) = hook_server(Answer::Hang).await;
    let (error, _, _) = hook_server(Answer::Status(500)).await;
    // A port nothing listens on: bound, then closed.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/check", l.local_addr().unwrap())
    };
    for url in [&hang, &error, &closed] {
        let open = Screening::new(&with_hook(url, FailMode::Open, SendMode::Hash), LIMITS).unwrap();
        let before = count("allow_failed_open");
        let started = Instant::now();
        assert_eq!(open.check(&photo).await, Verdict::Allow, "{url}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the timeout holds"
        );
        assert_eq!(count("allow_failed_open"), before + 1);

        let shut =
            Screening::new(&with_hook(url, FailMode::Closed, SendMode::Hash), LIMITS).unwrap();
        let before = count("hook_failed_closed");
        assert_eq!(
            shut.check(&photo).await,
            Verdict::Deny(DenyReason::HookFailedClosed),
            "{url}"
        );
        assert_eq!(count("hook_failed_closed"), before + 1);
    }
    let timeouts = metrics::SCREENING_HOOK
        .with_label_values(&["timeout"])
        .get();
    assert!(timeouts >= 2, "{timeouts}");
}
