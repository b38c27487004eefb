//! Criterion benches for imgproxy's processing options (issue 23): `/info` (a reduced decode,
//! against decoding the same photo whole), a watermark on a 2 MP result (one mark, tiled),
//! and `max_bytes` (encodes until a quarter of the size fits). Inputs: the demo photos and a
//! 12 MP photo made from one; with `PIXGATE_PHOTOS=DIR`, every `*.jpg` under DIR too (the
//! real-photo set of benches/peers/photos.sh). `cargo bench --bench steps`.

use criterion::{criterion_group, criterion_main, Criterion};
use pixgate::image::codec::{self, EncodeSettings};
use pixgate::image::format::{OutputFormat, SourceFormat};
use pixgate::image::probe::HeaderLimits;
use pixgate::image::watermark::{self, Mark, Placement, Position};
use std::hint::black_box;
use std::time::{Duration, Instant};

mod support;

const LIMITS: HeaderLimits = HeaderLimits {
    max_pixels: 100_000_000,
    max_dimension: 20_000,
};

/// (name, JPEG bytes): the demo photos, the 12 MP one, and `PIXGATE_PHOTOS`' JPEGs.
fn photos() -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = ["coffee.jpg", "retina.jpg", "rocket-exif.jpg"]
        .iter()
        .map(|n| (n.to_string(), support::sample(n).to_vec()))
        .collect();
    v.push(("12mp".into(), support::twelve_mp_jpeg()));
    if let Ok(dir) = std::env::var("PIXGATE_PHOTOS") {
        let mut files: Vec<_> = walk(std::path::Path::new(&dir));
        files.sort();
        for f in files {
            if let Ok(b) = std::fs::read(&f) {
                let name = f.file_name().map(|n| n.to_string_lossy().into_owned());
                v.push((name.unwrap_or_default(), b));
            }
        }
    }
    v
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "jpg") {
            out.push(p);
        }
    }
    out
}

fn info(c: &mut Criterion) {
    let mut g = c.benchmark_group("info");
    g.sample_size(10).measurement_time(Duration::from_secs(2));
    for (name, bytes) in photos() {
        g.bench_function(format!("info/{name}"), |b| {
            b.iter(|| {
                pixgate::image::info::json(black_box(&bytes), SourceFormat::Jpeg, LIMITS, 100)
            })
        });
        g.bench_function(format!("whole_decode/{name}"), |b| {
            b.iter(|| image::load_from_memory(black_box(&bytes)).map(|i| i.width()))
        });
    }
    g.finish();
}

fn watermarks(c: &mut Criterion) {
    let canvas = image::load_from_memory(support::sample("retina.jpg"))
        .map(|i| i.resize_exact(1920, 1080, image::imageops::FilterType::Triangle))
        .unwrap_or_else(|_| image::DynamicImage::new_rgb8(1920, 1080));
    let logo = image::RgbaImage::from_fn(240, 80, |x, y| {
        image::Rgba([255, (x % 256) as u8, (y * 3) as u8, 200])
    });
    let Ok(mark) = Mark::from_rgba(logo) else {
        return;
    };
    let Ok(text) = Mark::text("© pixgate 2026", 32.0, [255, 255, 255, 230], true) else {
        return;
    };
    let mut g = c.benchmark_group("watermark");
    g.sample_size(20).measurement_time(Duration::from_secs(2));
    for (label, m, p) in [
        (
            "logo_soea_2mp",
            &mark,
            Placement {
                opacity: 0.6,
                position: Position::SouthEast,
                x: 20,
                y: 20,
                scale: 0.0,
            },
        ),
        (
            "logo_scaled_0.2_2mp",
            &mark,
            Placement {
                opacity: 0.6,
                position: Position::SouthEast,
                x: 20,
                y: 20,
                scale: 0.2,
            },
        ),
        (
            "logo_tiled_2mp",
            &mark,
            Placement {
                opacity: 0.3,
                position: Position::Replicate,
                x: 40,
                y: 40,
                scale: 0.0,
            },
        ),
        (
            "text_soea_2mp",
            &text,
            Placement {
                opacity: 1.0,
                position: Position::SouthEast,
                x: 20,
                y: 20,
                scale: 0.0,
            },
        ),
    ] {
        g.bench_function(label, |b| {
            b.iter_batched(
                || canvas.clone(),
                |cv| watermark::apply(cv, m, &p),
                criterion::BatchSize::LargeInput,
            )
        });
    }
    g.bench_function("text_render", |b| {
        b.iter(|| {
            Mark::text(
                black_box("© pixgate 2026"),
                32.0,
                [255, 255, 255, 230],
                true,
            )
        })
    });
    g.finish();
}

/// Not a criterion loop: how many encodes and how long `max_bytes` takes to reach a quarter of
/// each photo's 1200 px JPEG and WebP size (printed, one run each).
fn max_bytes(_c: &mut Criterion) {
    let settings = EncodeSettings::from(&pixgate::config::ImagesConfig::default());
    for (name, bytes) in photos() {
        let Ok(img) = image::load_from_memory(&bytes) else {
            continue;
        };
        let img = img.resize(1200, 1200, image::imageops::FilterType::Lanczos3);
        for format in [OutputFormat::Jpeg, OutputFormat::Webp] {
            let Ok(first) = codec::encode(&img, format, &settings) else {
                continue;
            };
            let limit = first.len() / 4;
            let t = Instant::now();
            let fitted = pixgate::image::max_bytes::fit(
                &img,
                format,
                &settings,
                limit,
                first.len(),
                t + Duration::from_secs(60),
            );
            if let Ok(f) = fitted {
                println!(
                    "max_bytes {name} {}: {} -> {} B (limit {limit}), {}x{}, {} encodes, {:.0} ms",
                    format.name(),
                    first.len(),
                    f.bytes.len(),
                    f.width,
                    f.height,
                    f.encodes,
                    t.elapsed().as_secs_f64() * 1e3
                );
            }
        }
    }
}

criterion_group!(benches, info, watermarks, max_bytes);
criterion_main!(benches);
