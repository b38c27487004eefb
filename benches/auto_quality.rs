//! `q=auto` against the fixed default quality: for each photo (the demo's JPEGs, and every
//! PNG/JPEG under `$AUTOQ_DIR`), fitted into 480×480, per format (WebP, AVIF, JPEG, and JPEG XL
//! with `--features jxl`): bytes and
//! SSIMULACRA2 at the configured quality, bytes, score, quality and encodes chosen by the
//! search, and the search's time.
//!
//! `cargo bench --bench auto_quality` prints the table (docs/benchmarks.md); under `cargo test`
//! it runs one WebP search as a smoke test.

use pixgate::config::ImagesConfig;
use pixgate::image::auto_quality::{self, AutoQualityConfig};
use pixgate::image::codec::{self, EncodeSettings};
use pixgate::image::format::{sniff, OutputFormat};
use pixgate::image::resize::{self, ResizeSpec};
use std::time::Instant;

fn inputs() -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = pixgate::demo::SAMPLES
        .iter()
        .filter(|s| s.mime == "image/jpeg")
        .map(|s| (s.name.to_string(), s.bytes.to_vec()))
        .collect();
    if let Ok(dir) = std::env::var("AUTOQ_DIR") {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        for p in files {
            if let Ok(b) = std::fs::read(&p) {
                if sniff(&b).is_some() {
                    v.push((
                        p.file_name().unwrap_or_default().to_string_lossy().into(),
                        b,
                    ));
                }
            }
        }
    }
    v
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let images = ImagesConfig::default();
    let settings = EncodeSettings::from(&images);
    let cfg = AutoQualityConfig::default();
    let spec = ResizeSpec::inside(Some(480), Some(480));
    let mut formats = vec![OutputFormat::Webp];
    if full {
        formats.extend([OutputFormat::Avif, OutputFormat::Jpeg]);
        // JPEG XL (`--features jxl`): encoded by libjxl, scored after jxl-oxide's decode.
        if cfg!(feature = "jxl") {
            formats.push(OutputFormat::Jxl);
        }
    }
    println!(
        "target {} (max {} encodes, budget {:?})",
        cfg.target,
        cfg.max_encodes,
        cfg.budget.get()
    );
    println!("| image | format | fixed q | fixed bytes | fixed score | auto q | auto bytes | auto score | bytes vs fixed | encodes | search ms |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let list = inputs();
    let list = if full { &list[..] } else { &list[..1] };
    for (name, bytes) in list {
        let Ok(img) = image::load_from_memory(bytes) else {
            continue;
        };
        let Ok(img) = resize::apply(img, &spec) else {
            continue;
        };
        let img = image::DynamicImage::ImageRgb8(img.to_rgb8());
        for &f in &formats {
            let Ok(fixed) = codec::encode(&img, f, &settings) else {
                continue;
            };
            let fixed_score = auto_quality::score_output(&img, &fixed, f).unwrap_or(f64::NAN);
            let t = Instant::now();
            let Some(c) = auto_quality::encode(&img, f, &settings, &cfg) else {
                continue;
            };
            let ms = t.elapsed().as_secs_f64() * 1e3;
            println!(
                "| {name} | {} | {} | {} | {:.1} | {} | {} | {:.1} | {:+.1} % | {} | {:.0} |",
                f.name(),
                settings.quality(f),
                fixed.len(),
                fixed_score,
                c.quality,
                c.bytes.len(),
                c.score,
                (c.bytes.len() as f64 / fixed.len() as f64 - 1.0) * 100.0,
                c.encodes,
                ms
            );
        }
    }
}
