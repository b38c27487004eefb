//! A small load generator for pixgate's overload figures: closed loop (N connections, each
//! sending its next request when the last one ends) to find the sustainable rate, or open loop
//! (a fixed arrival rate, as real clients behave) to see what happens past it. Bounded in time
//! and in requests in flight; loopback targets only (it refuses anything else).
//!
//! `{n}` in the URL is replaced by a running number, so every request can be a cold transform
//! (`?w={n}`) or the same cached variant (no `{n}`).
//!
//! ```text
//! cargo run --release --example loadgen -- --url 'http://127.0.0.1:8080/samples/coffee.jpg?w={n}' \
//!     --accept 'image/webp,*/*' --connections 2 --seconds 20
//! cargo run --release --example loadgen -- --url ... --rate 40 --seconds 30
//! ```
//!
//! With `--body FILE` each request is a POST of that file (as `--content-type`), e.g. the
//! upload API: `--url 'http://127.0.0.1:8082/api/v1/images?format=webp' --body photo.jpg`.
//!
//! Prints one line of JSON: sent, done, errors, status counts, outcome counts (the `X-Pixgate`
//! value up to `;`, plus the reason of originals), achieved rate and latency percentiles (ms).

use clap::Parser;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
struct Args {
    /// Target URL; `{n}` becomes a running number starting at `--first`.
    #[arg(long)]
    url: String,
    /// Accept header to send.
    #[arg(long, default_value = "image/avif,image/webp,*/*")]
    accept: String,
    /// Closed loop with this many connections (ignored with --rate).
    #[arg(long, default_value_t = 2)]
    connections: usize,
    /// Open loop: requests started per second.
    #[arg(long)]
    rate: Option<f64>,
    /// How long to send for.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// First value of `{n}`.
    #[arg(long, default_value_t = 100)]
    first: u64,
    /// Values of `{n}` cycle through `first .. first + span`.
    #[arg(long, default_value_t = 1_000_000)]
    span: u64,
    /// Open loop: requests allowed in flight; past it an arrival is counted as `dropped`.
    #[arg(long, default_value_t = 1024)]
    max_in_flight: usize,
    /// Per-request timeout.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// POST this file's bytes instead of a GET.
    #[arg(long)]
    body: Option<std::path::PathBuf>,
    /// Content-Type of `--body`.
    #[arg(long, default_value = "image/jpeg")]
    content_type: String,
}

/// What every request carries besides its URL.
struct Shape {
    accept: String,
    body: Option<(bytes::Bytes, String)>,
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    status: BTreeMap<String, u64>,
    outcome: BTreeMap<String, u64>,
    errors: u64,
    dropped: u64,
    sent: u64,
}

fn outcome(h: &reqwest::header::HeaderMap) -> String {
    let note = h
        .get("x-pixgate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    match note.split_once(';') {
        Some(("original", rest)) => {
            let reason = rest.trim().trim_start_matches("reason=");
            format!("original:{reason}")
        }
        Some((head, _)) => head.to_string(),
        None => note.to_string(),
    }
}

async fn one(client: &reqwest::Client, url: String, shape: &Shape, tally: &Mutex<Tally>) {
    let t = Instant::now();
    let req = match &shape.body {
        Some((b, ct)) => client
            .post(url)
            .header("content-type", ct.as_str())
            .body(b.clone()),
        None => client.get(url),
    };
    let res = req.header("accept", shape.accept.as_str()).send().await;
    let r = match res {
        Ok(r) => {
            let status = r.status().as_u16().to_string();
            let out = outcome(r.headers());
            match r.bytes().await {
                Ok(_) => Ok((status, out)),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    let us = u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX);
    let Ok(mut t) = tally.lock() else { return };
    match r {
        Ok((status, out)) => {
            t.latencies_us.push(us);
            *t.status.entry(status).or_default() += 1;
            *t.outcome.entry(out).or_default() += 1;
        }
        Err(_) => t.errors += 1,
    }
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = Args::parse();
    let host = reqwest::Url::parse(&a.url.replace("{n}", "0"))?
        .host_str()
        .unwrap_or("")
        .to_string();
    if !(host == "localhost" || host.starts_with("127.") || host == "[::1]") {
        return Err(format!("loadgen only targets loopback, not `{host}`").into());
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs_f64(a.timeout))
        .pool_max_idle_per_host(a.max_in_flight.max(a.connections))
        .build()?;
    let shape = Arc::new(Shape {
        accept: a.accept.clone(),
        body: match &a.body {
            Some(p) => Some((
                bytes::Bytes::from(std::fs::read(p)?),
                a.content_type.clone(),
            )),
            None => None,
        },
    });
    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop = Instant::now() + Duration::from_secs_f64(a.seconds);
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let url_of = {
        let (url, first, span) = (a.url.clone(), a.first, a.span.max(1));
        move |i: u64| url.replace("{n}", &(first + i % span).to_string())
    };
    let t0 = Instant::now();
    match a.rate {
        None => {
            let mut tasks = Vec::new();
            for _ in 0..a.connections {
                let (client, tally, counter, url_of, shape) = (
                    client.clone(),
                    tally.clone(),
                    counter.clone(),
                    url_of.clone(),
                    shape.clone(),
                );
                tasks.push(tokio::spawn(async move {
                    while Instant::now() < stop {
                        let i = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if let Ok(mut t) = tally.lock() {
                            t.sent += 1;
                        }
                        one(&client, url_of(i), &shape, &tally).await;
                    }
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
        }
        Some(rate) => {
            let gap = Duration::from_secs_f64(1.0 / rate.max(0.001));
            let sem = Arc::new(tokio::sync::Semaphore::new(a.max_in_flight));
            let mut tick = tokio::time::interval(gap);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut tasks = tokio::task::JoinSet::new();
            let mut i = 0u64;
            while Instant::now() < stop {
                tick.tick().await;
                let Ok(permit) = sem.clone().try_acquire_owned() else {
                    if let Ok(mut t) = tally.lock() {
                        t.dropped += 1;
                    }
                    continue;
                };
                if let Ok(mut t) = tally.lock() {
                    t.sent += 1;
                }
                let (client, tally, url, shape) =
                    (client.clone(), tally.clone(), url_of(i), shape.clone());
                i += 1;
                tasks.spawn(async move {
                    one(&client, url, &shape, &tally).await;
                    drop(permit);
                });
            }
            while tasks.join_next().await.is_some() {}
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let t = tally.lock().map_err(|_| "tally poisoned")?;
    let mut l = t.latencies_us.clone();
    l.sort_unstable();
    let done = l.len() as u64;
    let map = |m: &BTreeMap<String, u64>| {
        m.iter()
            .map(|(k, v)| format!("\"{k}\":{v}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    println!(
        "{{\"mode\":\"{}\",\"seconds\":{wall:.1},\"sent\":{},\"done\":{done},\"errors\":{},\"dropped\":{},\"rate\":{:.1},\"status\":{{{}}},\"outcome\":{{{}}},\"p50_ms\":{:.1},\"p90_ms\":{:.1},\"p99_ms\":{:.1},\"max_ms\":{:.1}}}",
        a.rate.map_or(format!("closed c={}", a.connections), |r| format!("open {r}/s")),
        t.sent,
        t.errors,
        t.dropped,
        done as f64 / wall,
        map(&t.status),
        map(&t.outcome),
        pct(&l, 0.50),
        pct(&l, 0.90),
        pct(&l, 0.99),
        pct(&l, 1.0),
    );
    Ok(())
}
