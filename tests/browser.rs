//! The upload page in a real browser: Debian's headless Chromium, driven through chromedriver's
//! WebDriver protocol (JSON over HTTP, spoken here with reqwest). The page loads with no console
//! error or CSP violation and shows the server's retention; two files (a JPEG and a PNG) go in
//! through the page's file input, come back as WebP links that the test downloads and decodes
//! itself; a screenshot is saved under the target dir; the page's delete button makes its link
//! answer 404; at phone width nothing scrolls sideways.
//!
//! `scripts/test.sh` installs `chromium` and `chromium-driver` (`scripts/deps.sh test`): when
//! either is missing or does not start, this test fails rather than skips.

mod common;

use base64::Engine as _;
use common::{decode, free_port, photo, Pixgate, TestOrigin};
use pixgate::config::Dur;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// W3C WebDriver's key for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver and one headless Chromium session. Drop ends the session (which quits the
/// browser) and kills chromedriver, whatever state the test failed in.
struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    http: reqwest::Client,
    /// chromedriver's log and Chromium's profile.
    dir: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a headless Chromium session.
    async fn start() -> Browser {
        for path in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                Path::new(path).exists(),
                "{path} is missing: scripts/deps.sh test installs chromium and chromium-driver"
            );
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log = dir.path().join("chromedriver.log");
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{CHROMEDRIVER} does not start: {e}"));
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(90))
            .build()
            .expect("client");
        let mut b = Browser {
            driver,
            addr,
            session: String::new(),
            http,
            dir,
        };
        // Ready when /status says so.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(st)) = b.driver.try_wait() {
                panic!("chromedriver exited at start ({st}): {}", b.driver_log());
            }
            if let Ok(r) = b.http.get(b.url("/status")).send().await {
                if let Ok(v) = serde_json::from_slice::<Value>(&r.bytes().await.unwrap_or_default())
                {
                    if v["value"]["ready"] == true {
                        break;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver not ready after 20 s: {}",
                b.driver_log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = b.dir.path().join("profile");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,900",
                    "--no-first-run",
                    "--no-default-browser-check",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let (status, v) = b.raw("POST", "/session", Some(caps)).await;
        assert_eq!(
            status,
            200,
            "Chromium does not start under chromedriver: {v}\n{}",
            b.driver_log()
        );
        b.session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no sessionId in {v}"))
            .to_string();
        eprintln!(
            "browser: {} {}",
            v["value"]["capabilities"]["browserName"], v["value"]["capabilities"]["browserVersion"]
        );
        b
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn driver_log(&self) -> String {
        let text =
            std::fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// One WebDriver call: (HTTP status, JSON answer).
    async fn raw(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, self.url(path));
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json; charset=utf-8")
                .body(serde_json::to_vec(&b).expect("json"));
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("chromedriver {path}: {e}"));
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.expect("chromedriver answer");
        let v = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "chromedriver {path} answered non-JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        (status, v)
    }

    /// A command of this session; panics on a WebDriver error. Returns the answer's `value`.
    async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let full = format!("/session/{}{path}", self.session);
        let (status, mut v) = self.raw(method, &full, body).await;
        assert_eq!(status, 200, "WebDriver {method} {path}: {v}");
        v["value"].take()
    }

    async fn get(&self, path: &str) -> Value {
        self.cmd("GET", path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.cmd("POST", path, Some(body)).await
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    async fn js(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    /// The element matching `css` (WebDriver error when none).
    async fn find(&self, css: &str) -> String {
        let v = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element reference for {css}: {v}"))
            .to_string()
    }

    async fn find_all(&self, css: &str) -> Vec<String> {
        let v = self
            .post("/elements", json!({"using": "css selector", "value": css}))
            .await;
        v.as_array()
            .expect("element list")
            .iter()
            .map(|e| e[ELEMENT].as_str().expect("element reference").to_string())
            .collect()
    }

    async fn click(&self, element: &str) {
        self.post(&format!("/element/{element}/click"), json!({}))
            .await;
    }

    /// The browser's console since the last call, as "LEVEL message" lines.
    async fn console(&self) -> Vec<(String, String)> {
        let v = self.post("/se/log", json!({"type": "browser"})).await;
        v.as_array()
            .expect("log entries")
            .iter()
            .map(|e| {
                (
                    e["level"].as_str().unwrap_or("").to_string(),
                    e["message"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    /// Fails on any console error or warning (a CSP violation is logged as an error), after
    /// printing the whole console.
    async fn assert_quiet_console(&self, step: &str) {
        let entries = self.console().await;
        for (level, message) in &entries {
            eprintln!("console ({step}): {level} {message}");
        }
        let bad: Vec<_> = entries
            .iter()
            .filter(|(level, _)| level == "SEVERE" || level == "WARNING")
            .collect();
        assert!(bad.is_empty(), "console errors {step}: {bad:?}");
    }

    /// Polls `script` until it returns something other than null/false, up to `limit`.
    async fn wait_for(&self, what: &str, limit: Duration, script: &str) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let v = self.js(script, json!([])).await;
            if !(v.is_null() || v == false) {
                return v;
            }
            assert!(Instant::now() < deadline, "{what}: not after {limit:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Ends the session (Chromium quits); Drop then stops chromedriver.
    async fn quit(mut self) {
        self.cmd("DELETE", "", None).await;
        self.session.clear();
    }

    /// The screenshot of the viewport, as PNG bytes.
    async fn screenshot(&self) -> Vec<u8> {
        let v = self.get("/screenshot").await;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64 screenshot"))
            .expect("screenshot is base64")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A test that failed midway: DELETE /session/{id} quits Chromium. Sent over a plain
        // socket since Drop cannot await; chromedriver keeps the connection open, so the answer
        // is read only up to its Content-Length.
        if !self.session.is_empty() {
            if let Ok(mut s) = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let req = format!(
                    "DELETE /session/{} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                    self.session, self.addr
                );
                if s.write_all(req.as_bytes()).is_ok() {
                    let mut got = Vec::new();
                    let mut buf = [0u8; 4096];
                    while let Ok(n @ 1..) = s.read(&mut buf) {
                        got.extend_from_slice(&buf[..n]);
                        let text = String::from_utf8_lossy(&got);
                        if let Some((head, body)) = text.split_once("\r\n\r\n") {
                            let len = head.lines().find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            });
                            if len.is_none_or(|n| body.len() >= n) {
                                break;
                            }
                        }
                    }
                }
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A photo-like `w` × `h` PNG (what a screenshot or an export from an editor looks like).
fn photo_png(w: u32, h: u32) -> Vec<u8> {
    let img = image::load_from_memory(&photo(w, h, 77)).expect("photo decodes");
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("encode png");
    out.into_inner()
}

/// Where the screenshots go: `<target dir>/browser/`.
fn shots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("browser");
    std::fs::create_dir_all(&dir).expect("create target/browser");
    dir
}

/// Decodes a screenshot and checks it shows something: the window's size, and many colours
/// (a blank or single-colour page has a handful).
fn check_screenshot(png: &[u8], min_w: u32) -> image::RgbaImage {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "screenshot is a PNG");
    let img = image::load_from_memory_with_format(png, image::ImageFormat::Png)
        .expect("screenshot decodes")
        .to_rgba8();
    assert!(
        img.width() >= min_w && img.height() >= 300,
        "screenshot {}x{}",
        img.width(),
        img.height()
    );
    let colours: std::collections::HashSet<[u8; 4]> = img.pixels().map(|p| p.0).collect();
    assert!(
        colours.len() > 50,
        "screenshot has {} colours",
        colours.len()
    );
    img
}

#[tokio::test]
async fn the_upload_page_works_in_chromium() {
    let t0 = Instant::now();
    let origin = TestOrigin::start(vec![]);
    let px = Pixgate::start_with(&origin, |cfg| {
        cfg.upload.listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        // Not the default hour: the page must show what the server says.
        cfg.upload.retention = Dur::secs(5400);
    });
    let http = common::client();
    let info: Value = serde_json::from_slice(
        &http
            .get(px.upload_url("/api/v1/info"))
            .send()
            .await
            .expect("info")
            .bytes()
            .await
            .expect("info body"),
    )
    .expect("info is JSON");
    assert_eq!(info["retention_secs"], 5400, "{info}");

    let b = Browser::start().await;
    b.post("/timeouts", json!({"script": 30_000, "pageLoad": 30_000}))
        .await;

    // 1. The page renders: its script ran (the facts from /api/v1/info are shown), its
    //    stylesheet applies, and the console is clean.
    b.post("/url", json!({"url": px.upload_url("/")})).await;
    assert_eq!(
        b.get("/title").await,
        "Compress images · pixgate",
        "page title"
    );
    let facts = b
        .wait_for(
            "the privacy facts from /api/v1/info",
            Duration::from_secs(15),
            "const l = document.getElementById('privacy-facts');
             return l.hidden ? null : l.innerText;",
        )
        .await;
    let facts = facts.as_str().expect("facts text");
    assert!(
        facts.contains("Results are deleted 1 hour 30 minutes after upload"),
        "retention as the page shows it: {facts:?}"
    );
    let state = b
        .js(
            "return {
               loadingHidden: document.getElementById('privacy-loading').hidden,
               inputOpacity: getComputedStyle(document.getElementById('file-input')).opacity,
               formatOptions: Array.from(document.getElementById('format').options)
                 .map((o) => o.value),
               presets: document.getElementById('preset').options.length,
               limits: document.getElementById('limits-hint').textContent,
             };",
            json!([]),
        )
        .await;
    assert_eq!(state["loadingHidden"], true, "{state}");
    assert_eq!(state["inputOpacity"], "0", "page.css applies: {state}");
    assert!(
        state["formatOptions"]
            .as_array()
            .is_some_and(|o| o.iter().any(|v| v == "webp")),
        "{state}"
    );
    assert!(
        state["presets"].as_u64().unwrap_or(0) > 1,
        "presets: {state}"
    );
    assert_eq!(state["limits"], "(up to 10 files, 26.2 MB each)", "{state}");
    b.assert_quiet_console("after loading the page").await;

    // 2. Two files through the file input, WebP chosen, Compress clicked.
    let files = tempfile::tempdir().expect("tempdir");
    let jpeg_path = files.path().join("holiday.jpg");
    let png_path = files.path().join("diagram.png");
    let jpeg = photo(1600, 1200, 5);
    let png = photo_png(800, 600);
    std::fs::write(&jpeg_path, &jpeg).expect("write jpeg");
    std::fs::write(&png_path, &png).expect("write png");
    let input = b.find("#file-input").await;
    assert_eq!(
        b.get(&format!("/element/{input}/property/multiple")).await,
        true,
        "the input takes several files"
    );
    b.post(
        &format!("/element/{input}/value"),
        json!({"text": format!("{}\n{}", jpeg_path.display(), png_path.display())}),
    )
    .await;
    let chosen = b
        .js(
            "return Array.from(document.querySelectorAll('#selected li'))
               .map((li) => li.textContent);",
            json!([]),
        )
        .await;
    assert_eq!(
        chosen.as_array().map(Vec::len),
        Some(2),
        "chosen files listed: {chosen}"
    );
    assert!(
        chosen[0].as_str().unwrap_or("").starts_with("holiday.jpg"),
        "{chosen}"
    );
    b.click(&b.find("#format").await).await;
    b.click(&b.find("#format option[value=webp]").await).await;
    assert_eq!(
        b.js("return document.getElementById('format').value;", json!([]))
            .await,
        "webp"
    );
    // Quality 70 from the keyboard: the slider takes arrow keys (75 → 70).
    let quality = b.find("#quality").await;
    b.post(
        &format!("/element/{quality}/value"),
        json!({"text": "\u{E012}".repeat(5)}),
    )
    .await;
    assert_eq!(
        b.js(
            "return document.getElementById('quality-value').textContent;",
            json!([])
        )
        .await,
        "70",
        "the slider moved by keyboard"
    );
    b.click(&b.find("#submit").await).await;

    // 3. The results: two, each with a download link.
    b.wait_for(
        "two results",
        Duration::from_secs(60),
        "const err = document.getElementById('error');
         if (!err.hidden) throw new Error('the page shows an error: ' + err.textContent);
         return document.querySelectorAll('#results li.result').length === 2
           && !document.getElementById('results-section').hidden;",
    )
    .await;
    let shown = b
        .js(
            "return Array.from(document.querySelectorAll('#results li.result')).map((li) => {
               const s = li.querySelector('.savings');
               const a = li.querySelector('a.download');
               return {
                 name: li.querySelector('.name').textContent,
                 href: a.href,
                 label: a.textContent,
                 input: Number(s.dataset.inputBytes),
                 output: Number(s.dataset.outputBytes),
                 savings: s.textContent,
                 after: li.querySelector('.after-bytes').textContent,
               };
             });",
            json!([]),
        )
        .await;
    eprintln!("results: {shown:#}");
    let total = b
        .js(
            "return document.getElementById('total').textContent;",
            json!([]),
        )
        .await;
    assert!(
        total
            .as_str()
            .is_some_and(|t| t.starts_with("Total: ") && t.contains("for 2 files")),
        "{total}"
    );
    let status = b
        .js(
            "return document.getElementById('status').textContent;",
            json!([]),
        )
        .await;
    assert_eq!(status, "Done.");
    let sent = [
        ("holiday.jpg", &jpeg, "holiday.webp"),
        ("diagram.png", &png, "diagram.webp"),
    ];
    let mut links = Vec::new();
    for (r, (name, bytes, offered)) in shown.as_array().expect("results").iter().zip(sent) {
        assert_eq!(r["name"], name, "{r}");
        assert_eq!(r["label"], format!("Download {offered}"), "{r}");
        assert_eq!(r["input"].as_u64(), Some(bytes.len() as u64), "{r}");
        let output = r["output"].as_u64().expect("output bytes");
        assert!(
            output < bytes.len() as u64,
            "{name}: the page shows {output} B out of {} B in",
            bytes.len()
        );
        // The savings shown are the API's: 1 - output/input, to 0.1 %.
        let want = format!(
            "Saved {:.1} %",
            (1.0 - output as f64 / bytes.len() as f64) * 100.0
        );
        assert!(
            r["savings"].as_str().is_some_and(|s| s.starts_with(&want)),
            "{r}: want {want}"
        );
        assert!(
            r["after"].as_str().is_some_and(|s| s.ends_with(" WEBP")),
            "{r}"
        );
        let href = r["href"].as_str().expect("href").to_string();
        assert!(href.starts_with(&px.upload_url("/d/")), "{href}");
        // Downloaded and decoded here, independently of the browser and of pixgate.
        let resp = http.get(&href).send().await.expect("download");
        assert_eq!(resp.status(), 200, "{href}");
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = resp.bytes().await.expect("download body");
        assert_eq!(ct, "image/webp", "{href}");
        assert_eq!(
            body.len() as u64,
            output,
            "{name}: the bytes the page shows"
        );
        // The page sent quality 70: the API gives the same bytes for the same file at
        // format=webp&quality=70 (the encoder is deterministic), and others at 75.
        let same = http
            .post(px.upload_url("/api/v1/images?format=webp&quality=70"))
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .await
            .expect("api upload");
        let same: Value = serde_json::from_str(&same.text().await.expect("text")).expect("json");
        assert_eq!(
            same["files"][0]["output_bytes"].as_u64(),
            Some(output),
            "{same}"
        );
        assert!(
            body.len() > 12 && &body[..4] == b"RIFF" && &body[8..12] == b"WEBP",
            "{name}: not WebP"
        );
        let img = decode(&body);
        let src = image::load_from_memory(bytes).expect("source decodes");
        assert_eq!(
            (img.width(), img.height()),
            (src.width(), src.height()),
            "{name}"
        );
        links.push(href);
    }
    assert_eq!(links.len(), 2);
    // The previews loaded: the "after" images are the links, decoded by the browser.
    b.wait_for(
        "the compressed previews",
        Duration::from_secs(15),
        "return Array.from(document.querySelectorAll('#results img'))
           .every((i) => i.complete && i.naturalWidth > 0);",
    )
    .await;
    b.assert_quiet_console("after the upload").await;

    // 4. A screenshot of the results.
    let png_shot = b.screenshot().await;
    let shot = check_screenshot(&png_shot, 1000);
    let path = shots_dir().join("upload-page.png");
    std::fs::write(&path, &png_shot).expect("save screenshot");
    println!(
        "screenshot: {} ({}x{})",
        path.display(),
        shot.width(),
        shot.height()
    );

    // 5. The first result's delete button erases it on the server.
    let deletes = b.find_all("#results li.result button.delete").await;
    assert_eq!(deletes.len(), 2, "a delete button per result");
    b.click(&deletes[0]).await;
    let note = b
        .wait_for(
            "the deleted result",
            Duration::from_secs(15),
            "const li = document.querySelector('#results li.result');
             return li.classList.contains('deleted') ? li.querySelector('.expiry').textContent
               : null;",
        )
        .await;
    assert_eq!(note, "Deleted from the server.");
    let gone = http.get(&links[0]).send().await.expect("deleted link");
    assert_eq!(gone.status(), 404, "{}", links[0]);
    let ct = gone
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(ct.starts_with("application/json"), "404 is JSON: {ct}");
    let kept = http.get(&links[1]).send().await.expect("kept link");
    assert_eq!(kept.status(), 200, "the other result stays");
    assert_eq!(
        b.find_all("#results li.result button.delete").await.len(),
        1,
        "the deleted result's button is gone"
    );
    // Its preview is gone too, not left as a broken image.
    let broken = b
        .js(
            "return Array.from(document.querySelectorAll('img'))
               .filter((i) => getComputedStyle(i).visibility !== 'hidden'
                 && i.getClientRects().length > 0 && !(i.complete && i.naturalWidth > 0))
               .map((i) => i.alt);",
            json!([]),
        )
        .await;
    assert_eq!(broken, json!([]), "broken images shown");
    b.assert_quiet_console("after deleting").await;

    // 6. Phone width: nothing wider than the screen.
    b.post("/window/rect", json!({"width": 390, "height": 844}))
        .await;
    let fits = b
        .wait_for(
            "the phone-width layout",
            Duration::from_secs(10),
            "return window.innerWidth <= 420 ? {
               scroll: document.documentElement.scrollWidth,
               inner: window.innerWidth,
               wide: Array.from(document.querySelectorAll('body *'))
                 .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
                 .map((e) => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className)
                 .slice(0, 10),
             } : null;",
        )
        .await;
    let (scroll, inner) = (
        fits["scroll"].as_f64().expect("scrollWidth"),
        fits["inner"].as_f64().expect("innerWidth"),
    );
    assert!(
        scroll <= inner + 1.0,
        "horizontal scroll at phone width: {fits}"
    );
    let phone = b.screenshot().await;
    check_screenshot(&phone, 300);
    let phone_path = shots_dir().join("upload-page-phone.png");
    std::fs::write(&phone_path, &phone).expect("save phone screenshot");
    println!("screenshot: {}", phone_path.display());
    b.assert_quiet_console("at phone width").await;

    b.quit().await;
    eprintln!("browser test took {:?}", t0.elapsed());
}
