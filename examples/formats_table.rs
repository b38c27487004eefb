//! Prints, for each demo sample, source bytes vs output bytes and transform time per format,
//! running the same pipeline as the proxy (decode, orientation, colour, encode) with the default
//! settings. `cargo run --release --example formats_table`
use pixgate::config::ImagesConfig;
use pixgate::image::format::sniff;
use pixgate::image::pipeline::{self, Job, Outcome};
use pixgate::image::probe::HeaderLimits;
use pixgate::request::accept::Accept;
use pixgate::request::negotiate::Plan;
use std::time::Instant;

fn main() {
    let cfg = ImagesConfig::default();
    println!("| sample | source | format | output | ratio | time (median of 3) |");
    println!("|---|---|---|---|---|---|");
    for s in pixgate::demo::SAMPLES {
        for accept in ["image/avif", "image/webp", "*/*"] {
            let job = Job::for_plan(
                bytes::Bytes::from_static(s.bytes),
                sniff(s.bytes).expect("sample is an image"),
                Plan::new(&Accept::parse(Some(accept)), &cfg.formats),
                &cfg,
                HeaderLimits {
                    max_pixels: 50_000_000,
                    max_dimension: 16_384,
                },
            );
            let mut times = Vec::new();
            let mut last = None;
            for _ in 0..3 {
                let t = Instant::now();
                last = Some(pipeline::run(&job));
                times.push(t.elapsed());
            }
            times.sort();
            let (fmt, out) = match last {
                Some(Outcome::Transformed { format, bytes, .. }) => {
                    (format.name().to_string(), bytes.len())
                }
                Some(Outcome::Original(r)) => (format!("original ({})", r.label()), s.bytes.len()),
                Some(Outcome::Info(_)) | None => continue,
            };
            println!(
                "| {} | {} | {} | {} | {:.2} | {:.0} ms |",
                s.name,
                s.bytes.len(),
                fmt,
                out,
                out as f64 / s.bytes.len() as f64,
                times[1].as_secs_f64() * 1000.0
            );
        }
    }
}
