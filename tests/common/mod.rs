//! Shared test harness: a real hyper origin and a real pixgate process on ephemeral loopback
//! ports, the Accept strings that browsers send, and independent decoders for the outputs.
#![allow(dead_code)]

pub mod faulty;
pub mod origin;
pub mod redis_server;
pub mod tls;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use origin::{Route, TestOrigin};
use pixgate::config::Config;

/// Chrome 142 `<img>` request.
pub const CHROME: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
/// Firefox 145 `<img>` request.
pub const FIREFOX: &str = "image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5";
/// Safari 18 `<img>` request.
pub const SAFARI: &str = "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5";

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running pixgate process, killed on drop.
pub struct Pixgate {
    child: Child,
    /// Proxy address.
    pub addr: SocketAddr,
    /// Admin (metrics) address.
    pub admin: SocketAddr,
    /// The upload listener's address, when the config turns it on.
    pub upload: Option<SocketAddr>,
    /// Temp dir holding the config and the process's stderr.
    pub dir: tempfile::TempDir,
    /// Requests this harness sent to the admin listener (pixgate counts them too).
    admin_calls: std::sync::atomic::AtomicUsize,
}

impl Pixgate {
    /// Starts pixgate in front of `origin` with the default config.
    pub fn start(origin: &TestOrigin) -> Pixgate {
        Self::start_with(origin, |_| {})
    }

    /// Starts pixgate in front of `origin`, after `tweak` adjusts the config.
    pub fn start_with(origin: &TestOrigin, tweak: impl FnOnce(&mut Config)) -> Pixgate {
        let mut cfg = Config::default();
        cfg.origin.url = format!("http://{}", origin.addr);
        cfg.server.grace_period = pixgate::config::Dur::secs(0);
        tweak(&mut cfg);
        Self::start_config(cfg)
    }

    /// Starts pixgate with exactly `cfg` (listen and admin ports are filled in).
    pub fn start_config(cfg: Config) -> Pixgate {
        Self::launch(cfg, &[], None)
    }

    /// Starts pixgate with `cfg`, extra environment variables and a working directory.
    pub fn launch(
        mut cfg: Config,
        env: &[(&str, &std::path::Path)],
        cwd: Option<&std::path::Path>,
    ) -> Pixgate {
        let dir = tempfile::tempdir().expect("tempdir");
        for attempt in 0..5 {
            cfg.listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
            cfg.admin.listen = Some(SocketAddr::from(([127, 0, 0, 1], free_port())));
            if cfg.upload.listen.is_some() {
                cfg.upload.listen = Some(SocketAddr::from(([127, 0, 0, 1], free_port())));
            }
            let path = dir.path().join("pixgate.yaml");
            std::fs::write(&path, serde_yaml_ng::to_string(&cfg).expect("yaml"))
                .expect("write config");
            let log = std::fs::File::create(dir.path().join("stderr.log")).expect("log file");
            let out = std::fs::File::create(dir.path().join("stdout.log")).expect("out file");
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_pixgate"));
            cmd.arg("--config")
                .arg(&path)
                .env("PIXGATE_LOG", "warn")
                .stdout(out)
                .stderr(log);
            for (k, v) in env {
                cmd.env(k, v);
            }
            if let Some(d) = cwd {
                cmd.current_dir(d);
            }
            let mut child = cmd.spawn().expect("spawn pixgate");
            let addr = cfg.listen;
            let admin = cfg.admin.listen.unwrap_or(addr);
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // exited: port taken or bad config; retry with new ports
                }
                let upload = cfg.upload.listen;
                if TcpStream::connect(addr).is_ok()
                    && TcpStream::connect(admin).is_ok()
                    && upload.is_none_or(|u| TcpStream::connect(u).is_ok())
                {
                    return Pixgate {
                        child,
                        addr,
                        admin,
                        upload,
                        dir,
                        admin_calls: Default::default(),
                    };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!(
                        "pixgate did not start: {}",
                        Self::stderr_of(&dir.path().join("stderr.log"))
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            eprintln!(
                "pixgate exited at start (attempt {attempt}): {}",
                Self::stderr_of(&dir.path().join("stderr.log"))
            );
        }
        panic!("pixgate failed to start 5 times");
    }

    /// Runs pixgate with `cfg` where it should refuse to start: waits up to `limit` for it to
    /// exit and returns how it exited and its stderr. `None` when it was still running at
    /// `limit` (it is then killed): it started.
    pub fn run_to_exit(
        mut cfg: Config,
        limit: Duration,
    ) -> (Option<std::process::ExitStatus>, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        cfg.listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
        cfg.admin.listen = Some(SocketAddr::from(([127, 0, 0, 1], free_port())));
        let path = dir.path().join("pixgate.yaml");
        std::fs::write(&path, serde_yaml_ng::to_string(&cfg).expect("yaml")).expect("config");
        let log = dir.path().join("stderr.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_pixgate"))
            .arg("--config")
            .arg(&path)
            .env("PIXGATE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn pixgate");
        let deadline = Instant::now() + limit;
        let code = loop {
            match child.try_wait() {
                Ok(Some(st)) => break Some(st),
                _ if Instant::now() > deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        (code, Self::stderr_of(&log))
    }

    fn stderr_of(p: &PathBuf) -> String {
        std::fs::read_to_string(p).unwrap_or_default()
    }

    /// The process id (for /proc figures such as peak RSS).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident memory so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        Self::stderr_of(&self.dir.path().join("stderr.log"))
    }

    /// Everything the process wrote to stdout so far (the access log, by default).
    pub fn stdout(&self) -> String {
        Self::stderr_of(&self.dir.path().join("stdout.log"))
    }

    /// The access-log lines written so far, parsed, waiting up to 5 s until there are at
    /// least `n` (the log is written by a background thread).
    pub fn access_log(&self, n: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let lines: Vec<serde_json::Value> = self
                .stdout()
                .lines()
                .filter(|l| l.starts_with('{'))
                .map(|l| serde_json::from_str(l).expect("access-log line is JSON"))
                .collect();
            if lines.len() >= n || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// URL of `path` on the upload listener.
    pub fn upload_url(&self, path: &str) -> String {
        format!(
            "http://{}{}",
            self.upload.expect("upload.listen is on"),
            path
        )
    }

    /// `http://addr{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops the process (SIGKILL: nothing gets a chance to clean up, the harshest restart).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn admin_called(&self) {
        self.admin_calls
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Requests sent to the admin listener so far. A `/metrics` text counts every one before
    /// itself (an admin request is counted after its answer is built).
    pub fn admin_calls(&self) -> usize {
        self.admin_calls.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// GET on the admin listener: (status, body).
    pub async fn admin_get(&self, path: &str) -> (u16, String) {
        self.admin_called();
        let r = client()
            .get(format!("http://{}{}", self.admin, path))
            .send()
            .await
            .expect("admin request");
        let code = r.status().as_u16();
        (code, r.text().await.expect("admin body"))
    }

    /// POST /cache/purge?{query} with an optional bearer token: (status, body).
    pub async fn purge(&self, query: &str, token: Option<&str>) -> (u16, String) {
        self.admin_called();
        let mut r = client().post(format!("http://{}/cache/purge?{query}", self.admin));
        if let Some(t) = token {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        let r = r.send().await.expect("purge request");
        let code = r.status().as_u16();
        (code, r.text().await.expect("purge body"))
    }

    /// The `/metrics` text once no request is in flight (a request is counted just after
    /// its last byte is sent, so a client can see the response before the count moves).
    pub async fn metrics_settled(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = self.metrics().await;
            if metric(&text, "pixgate_requests_in_flight", &[]) == 0.0 || Instant::now() > deadline
            {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The value of sample `name{labels}` once it equals `want`, or its last value after 5 s
    /// (a request is counted just after its response, and one that failed before reaching the
    /// origin may leave the in-flight gauge before it is counted).
    pub async fn metric_eventually(&self, name: &str, labels: &[(&str, &str)], want: f64) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let v = metric(&self.metrics().await, name, labels);
            if v == want || Instant::now() > deadline {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.admin_called();
        client()
            .get(format!("http://{}/metrics", self.admin))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }
}

impl Drop for Pixgate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP client (no proxy from the environment, no decompression).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

/// GET `url` with an optional Accept header.
pub async fn get(url: &str, accept: Option<&str>) -> reqwest::Response {
    let mut r = client().get(url);
    if let Some(a) = accept {
        r = r.header("accept", a);
    }
    r.send().await.expect("request")
}

/// The value of a sample (`name{labels}`) in Prometheus text, 0 when absent.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Decodes any output with decoders independent of pixgate's encoders: the image crate's
/// zune-jpeg, png and image-webp for JPEG / PNG / WebP, and libavif's `avifdec` (dav1d) for
/// AVIF.
pub fn decode(bytes: &[u8]) -> image::DynamicImage {
    if bytes.len() > 12 && &bytes[4..12] == b"ftypavif" {
        let dir = tempfile::tempdir().expect("tempdir");
        let (i, o) = (dir.path().join("in.avif"), dir.path().join("out.png"));
        std::fs::write(&i, bytes).expect("write avif");
        let st = Command::new("avifdec")
            .arg(&i)
            .arg(&o)
            .stdout(Stdio::null())
            .status()
            .expect("avifdec (apt-get install libavif-bin) must be installed");
        assert!(st.success(), "avifdec rejected the AVIF output");
        return image::open(&o).expect("avifdec output decodes");
    }
    image::load_from_memory(bytes).expect("output decodes")
}

/// A `w` × `h` photo-like JPEG (quality 92) with a fine texture; `seed` varies its colours,
/// so equal arguments give equal bytes and different seeds different images.
pub fn photo(w: u32, h: u32, seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let n = ((x * 7 + y * 13) % 17) as u8;
        image::Rgb([
            (x % 256) as u8 ^ n,
            (y % 256) as u8,
            seed.wrapping_add(n * 3),
        ])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92)
        .encode_image(&img)
        .expect("encode");
    out
}

/// A raw HTTP/1.1 GET of `target` exactly as written (no client-side path clean-up, which
/// reqwest's URL parser would do), with `Connection: close`: (status, lowercase headers,
/// body bytes as sent on the wire).
pub fn raw_get(
    addr: SocketAddr,
    target: &str,
    headers: &[(&str, &str)],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut req = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("write");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header in {:?}", String::from_utf8_lossy(&buf)));
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let hs = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, hs, buf[end + 4..].to_vec())
}

/// The first value of header `name` in [`raw_get`]'s list.
pub fn header_of<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Keeps every core busy with spinning threads until dropped, so a concurrency test runs on a
/// loaded machine (races that an idle machine hides get their chance).
pub struct Busy {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Busy {
    /// One spinning thread per available core.
    pub fn all_cores() -> Busy {
        let n = std::thread::available_parallelism().map_or(2, |n| n.get());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = (0..n)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                })
            })
            .collect();
        Busy { stop, threads }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Polls `cond` every 20 ms for up to `limit`.
pub async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

/// Polls the async `cond` every 50 ms until it holds or `limit` passes; its last answer.
pub async fn wait_until_async<F, Fut>(limit: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t = Instant::now();
    while t.elapsed() < limit {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cond().await
}

/// Regular files anywhere under `dir`.
pub fn files_under(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Reads a committed fixture.
pub fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("fixture {}: {e}", p.display()))
}
