//! Criterion benches for the request path's pure parts and the transform pipeline on the demo
//! photos. `cargo bench --bench pipeline`; under `cargo test` each runs once as a smoke test.

use criterion::{criterion_group, criterion_main, Criterion};
use pixgate::config::ImagesConfig;
use pixgate::image::format::{sniff, OutputFormat};
use pixgate::image::pipeline::{self, Job, Outcome};
use pixgate::image::probe::HeaderLimits;
use pixgate::request::accept::Accept;
use pixgate::request::negotiate::{self, Plan};
use std::hint::black_box;
use std::time::Duration;
use support::twelve_mp_jpeg;

mod support;

const CHROME: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";

fn negotiation(c: &mut Criterion) {
    let formats = ImagesConfig::default().formats;
    c.bench_function("accept_parse_and_choose_chrome", |b| {
        b.iter(|| {
            let a = Accept::parse(Some(black_box(CHROME)));
            negotiate::choose(
                &a,
                &formats,
                pixgate::image::format::SourceFormat::Jpeg,
                false,
            )
        })
    });
}

fn transforms(c: &mut Criterion) {
    let Some(photo) = pixgate::demo::SAMPLES
        .iter()
        .find(|s| s.mime == "image/jpeg")
    else {
        return;
    };
    let cfg = ImagesConfig::default();
    let mut g = c.benchmark_group("transform_demo_photo");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    for (label, accept, want) in [
        ("jpeg", "*/*", OutputFormat::Jpeg),
        ("webp", "image/webp", OutputFormat::Webp),
        ("avif", "image/avif", OutputFormat::Avif),
    ] {
        let job = Job::for_plan(
            bytes::Bytes::from_static(photo.bytes),
            sniff(photo.bytes).expect("a JPEG"),
            Plan::new(&Accept::parse(Some(accept)), &cfg.formats),
            &cfg,
            HeaderLimits {
                max_pixels: 50_000_000,
                max_dimension: 16_384,
            },
        );
        g.bench_function(label, |b| {
            b.iter(|| match pipeline::run(black_box(&job)) {
                Outcome::Transformed { format, .. } => assert_eq!(format, want),
                Outcome::Original(r) => panic!("{label}: {}", r.label()),
                Outcome::Info(_) => panic!("{label}: info was not asked for"),
            })
        });
    }
    g.finish();
}

fn resize_12mp(c: &mut Criterion) {
    use pixgate::image::resize::{self, ResizeSpec};
    use pixgate::image::{decode, probe};
    let src = twelve_mp_jpeg();
    let limits = HeaderLimits {
        max_pixels: 50_000_000,
        max_dimension: 16_384,
    };
    let Ok(p) = probe::probe(&src, pixgate::image::format::SourceFormat::Jpeg, limits) else {
        return;
    };
    let spec = ResizeSpec::inside(Some(512), Some(512));
    let mut g = c.benchmark_group("resize_12mp_jpeg_to_512");
    g.sample_size(10).measurement_time(Duration::from_secs(15));
    g.bench_function("full_decode_then_lanczos3", |b| {
        b.iter(|| {
            let d = decode::decode(black_box(&src), &p).expect("decodes");
            let out = resize::apply(d.image, &spec).expect("resizes");
            assert_eq!((out.width(), out.height()), (512, 384));
        })
    });
    // images.shrink_on_load: 2 (default) decodes at 2/8 here, 1 (libvips' rule) at 1/8.
    for margin in [2.0, 1.0] {
        let to = decode::ShrinkTo {
            spec: &spec,
            margin,
        };
        g.bench_function(
            format!("dct_scaled_decode_margin_{margin}_then_lanczos3"),
            |b| {
                b.iter(|| {
                    let d = decode::decode_for(black_box(&src), &p, Some(to)).expect("decodes");
                    let out = resize::apply(d.image, &spec).expect("resizes");
                    assert_eq!((out.width(), out.height()), (512, 384));
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, negotiation, transforms, resize_12mp);
criterion_main!(benches);
