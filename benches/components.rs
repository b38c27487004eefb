//! Criterion benches for each part of a request on its own: URL options, the variant key, a
//! memory-tier hit, a disk-tier hit (read + XChaCha20-Poly1305 open), and decode / resize /
//! encode per format and effort setting on real photos (the 2 MP demo photo, a 12 MP photo made
//! from it, the alpha cut-out PNG). `cargo bench --bench components [FILTER]`; under
//! `cargo test` each runs once as a smoke test.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use pixgate::cache::disk::DiskTier;
use pixgate::cache::memory::MemoryTier;
use pixgate::cache::{Entry, KeyParts, Source};
use pixgate::config::{AvifConfig, DiskConfig, ImagesConfig, JpegConfig, PngConfig, WebpConfig};
use pixgate::image::codec::{self, EncodeSettings};
use pixgate::image::decode;
use pixgate::image::format::{OutputFormat, SourceFormat};
use pixgate::image::probe::{self, HeaderLimits};
use pixgate::image::resize::{self, ResizeSpec};
use pixgate::request::options::Options;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use support::{sample, twelve_mp_jpeg, webp_2mp};

mod support;

const LIMITS: HeaderLimits = HeaderLimits {
    max_pixels: 50_000_000,
    max_dimension: 16_384,
};

fn fit(w: u32, h: u32) -> ResizeSpec {
    ResizeSpec::inside(Some(w), Some(h))
}

fn request_parts(c: &mut Criterion) {
    let q = "w=640&h=480&fit=cover&g=sm&q=70&fm=webp&dpr=2&v=123";
    c.bench_function("options_from_query", |b| {
        b.iter(|| Options::from_query(black_box(q)).map(|(o, _)| o.canonical()))
    });
    let fp = pixgate::cache::key::fingerprint("images: defaults");
    c.bench_function("variant_key", |b| {
        b.iter(|| {
            KeyParts {
                origin: "http://origin.internal:8080",
                host: black_box("www.example.com"),
                path_and_query: "/images/2026/12/photo-of-the-day.jpg?v=3",
                options: "w=640,h=480,fit=cover",
                plan: "avif",
                settings: &fp,
            }
            .key()
        })
    });
}

fn entry(body: &'static [u8], now: SystemTime) -> Entry {
    Entry {
        status: 200,
        headers: vec![
            ("content-type".into(), b"image/webp".to_vec()),
            ("cache-control".into(), b"public, max-age=3600".to_vec()),
            ("etag".into(), b"\"pg-0123456789abcdef\"".to_vec()),
        ],
        body: bytes::Bytes::from_static(body),
        etag: Some("\"pg-0123456789abcdef\"".into()),
        note: "webp".into(),
        source: Source {
            tags: Vec::new(),
            host: "www.example.com".into(),
            path: "/images/photo.jpg".into(),
        },
        created: now,
        fresh_until: now + Duration::from_secs(3600),
        expires: now + Duration::from_secs(3600),
        origin_age: 0,
        source_bytes: 72_326,
        source_format: "jpeg".into(),
        source_etag: None,
    }
}

fn cache_tiers(c: &mut Criterion) {
    // A 35 KB body, the size of the demo photo's WebP variant.
    static BODY: [u8; 35_634] = [0x5A; 35_634];
    let now = SystemTime::now();
    let key = KeyParts {
        origin: "o",
        host: "h",
        path_and_query: "/p.jpg",
        options: "",
        plan: "webp",
        settings: "s",
    }
    .key();
    let mem = MemoryTier::new(64 << 20, None);
    mem.insert(key, Arc::new(entry(&BODY, now)));
    c.bench_function("memory_tier_hit_35k", |b| {
        b.iter(|| {
            mem.get(black_box(&key), SystemTime::now())
                .map(|e| e.body.len())
        })
    });
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let cfg = DiskConfig {
        dir: dir.path().to_path_buf(),
        ..DiskConfig::default()
    };
    let Ok((disk, _)) = DiskTier::open(&cfg, None) else {
        return;
    };
    if !disk.put(&key, &entry(&BODY, now), &|| true) {
        return;
    }
    c.bench_function("disk_tier_hit_35k_read_and_open", |b| {
        b.iter(|| {
            disk.get(black_box(&key), SystemTime::now())
                .map(|e| e.body.len())
        })
    });
}

fn decode_of(
    src: &[u8],
    format: SourceFormat,
    target: Option<&ResizeSpec>,
) -> Option<decode::Decoded> {
    let p = probe::probe(src, format, LIMITS).ok()?;
    let to = target.map(|spec| decode::ShrinkTo { spec, margin: 2.0 });
    decode::decode_for(src, &p, to).ok()
}

fn decode_and_resize(c: &mut Criterion) {
    let twelve = twelve_mp_jpeg();
    let webp = webp_2mp();
    let inputs: [(&str, &[u8], SourceFormat); 4] = [
        ("jpeg_2mp", sample("retina.jpg"), SourceFormat::Jpeg),
        ("jpeg_12mp", &twelve, SourceFormat::Jpeg),
        ("png_alpha", sample("chelsea-cutout.png"), SourceFormat::Png),
        ("webp_2mp", &webp, SourceFormat::Webp),
    ];
    let spec = fit(512, 512);
    let mut g = c.benchmark_group("decode");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    for (name, src, f) in inputs {
        g.bench_function(name, |b| b.iter(|| decode_of(black_box(src), f, None)));
        // Decoding for a 512 px fit: JPEG at a DCT scale when it shrinks enough; WebP whole.
        g.bench_function(format!("{name}_for_512"), |b| {
            b.iter(|| decode_of(black_box(src), f, Some(&spec)))
        });
    }
    // The image crate's decoders pixgate used before (zune-jpeg, image-webp); now the
    // fallbacks for CMYK JPEG and animated WebP.
    g.bench_function("jpeg_2mp_image_crate", |b| {
        b.iter(|| image::load_from_memory(black_box(sample("retina.jpg"))).map(|i| i.width()))
    });
    g.bench_function("jpeg_12mp_image_crate", |b| {
        b.iter(|| image::load_from_memory(black_box(&twelve)).map(|i| i.width()))
    });
    g.bench_function("webp_2mp_image_webp", |b| {
        b.iter(|| image::load_from_memory(black_box(&webp)).map(|i| i.width()))
    });
    g.finish();
    let mut g = c.benchmark_group("resize_to_512_lanczos3");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    for (name, src, f) in inputs {
        let Some(d) = decode_of(src, f, None) else {
            continue;
        };
        g.bench_function(name, |b| {
            b.iter(|| resize::apply(black_box(d.image.clone()), &spec))
        });
    }
    g.finish();
}

/// Every encoder at each effort setting an operator would pick, on a 512-px-fit image (the
/// on-the-fly case) of the photo and of the alpha cut-out.
fn encode_per_effort(c: &mut Criterion) {
    let d = ImagesConfig::default();
    let base = EncodeSettings::from(&d);
    let spec = fit(512, 512);
    let photo = decode_of(sample("retina.jpg"), SourceFormat::Jpeg, Some(&spec))
        .and_then(|x| resize::apply(x.image, &spec).ok());
    let alpha = decode_of(sample("chelsea-cutout.png"), SourceFormat::Png, Some(&spec))
        .and_then(|x| resize::apply(x.image, &spec).ok());
    let (Some(photo), Some(alpha)) = (photo, alpha) else {
        return;
    };
    let mut cases: Vec<(String, OutputFormat, EncodeSettings)> = Vec::new();
    for speed in [6, 8, 10] {
        let s = EncodeSettings {
            avif: AvifConfig { speed, ..d.avif },
            ..base
        };
        cases.push((format!("avif_speed{speed}"), OutputFormat::Avif, s));
    }
    for method in [0, 2, 4, 6] {
        let s = EncodeSettings {
            webp: WebpConfig { method, ..d.webp },
            ..base
        };
        cases.push((format!("webp_method{method}"), OutputFormat::Webp, s));
    }
    for (label, progressive, optimize_scans, trellis) in [
        ("baseline", false, false, true),
        ("progressive", true, false, true),
        ("progressive_optimized_scans", true, true, true),
        ("baseline_no_trellis", false, false, false),
        ("progressive_no_trellis", true, false, false),
    ] {
        let s = EncodeSettings {
            jpeg: JpegConfig {
                progressive,
                optimize_scans,
                trellis,
                ..d.jpeg
            },
            ..base
        };
        cases.push((format!("mozjpeg_{label}"), OutputFormat::Jpeg, s));
    }
    for level in [0, 1, 2, 4] {
        let s = EncodeSettings {
            png: PngConfig { level },
            ..base
        };
        cases.push((format!("oxipng_level{level}"), OutputFormat::Png, s));
    }
    let mut g = c.benchmark_group("encode_512");
    g.sample_size(10).measurement_time(Duration::from_secs(6));
    for (label, format, s) in &cases {
        // JPEG cannot carry the cut-out's alpha; PNG of a photo is not a real workload.
        let img = match format {
            OutputFormat::Jpeg => &photo,
            OutputFormat::Png => &alpha,
            _ => &photo,
        };
        let input = if *format == OutputFormat::Png {
            "alpha"
        } else {
            "photo"
        };
        g.bench_with_input(BenchmarkId::new(label.as_str(), input), img, |b, img| {
            b.iter(|| codec::encode(black_box(img), *format, s).map(|v| v.len()))
        });
        if matches!(format, OutputFormat::Avif | OutputFormat::Webp) {
            g.bench_with_input(
                BenchmarkId::new(label.as_str(), "alpha"),
                &alpha,
                |b, img| b.iter(|| codec::encode(black_box(img), *format, s).map(|v| v.len())),
            );
        }
    }
    g.finish();
    // The bytes each setting gives, printed once, for docs/benchmarks.md.
    for (label, format, s) in &cases {
        let img = if *format == OutputFormat::Png {
            &alpha
        } else {
            &photo
        };
        if let Ok(v) = codec::encode(img, *format, s) {
            println!("bytes {label}: {}", v.len());
        }
    }
}

criterion_group!(
    benches,
    request_parts,
    cache_tiers,
    decode_and_resize,
    encode_per_effort
);
criterion_main!(benches);
