//! Bytes over a quality sweep for each encoder setting, for comparing settings at matched
//! DSSIM (scripts/encode-sweep.sh runs it and scores every output with the dssim CLI).
//!
//! `cargo run --release --example encode_sweep -- IMAGE OUTDIR [FIT]` decodes IMAGE the way the
//! pipeline does, fits it into FIT×FIT (default 512), writes the result losslessly as
//! OUTDIR/ref.png, then encodes it with every setting below at q = 30, 35, ... 95 and writes
//! each output as OUTDIR/SETTING-qNN.EXT plus, for JPEG and WebP, its decoded pixels as
//! OUTDIR/SETTING-qNN.png. It prints one line per output: `SETTING Q BYTES MILLISECONDS`.

use pixgate::config::{AvifConfig, ImagesConfig, JpegConfig, WebpConfig};
use pixgate::image::codec::{self, EncodeSettings};
use pixgate::image::decode;
use pixgate::image::format::OutputFormat;
use pixgate::image::probe::{self, HeaderLimits};
use pixgate::image::resize::{self, ResizeSpec};
use std::path::Path;
use std::time::Instant;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(src), Some(out)) = (args.first(), args.get(1)) else {
        return Err("usage: encode_sweep IMAGE OUTDIR [FIT]".into());
    };
    let fit: u32 = args
        .get(2)
        .map_or(Ok(512), |s| s.parse())
        .map_err(|e| format!("{e}"))?;
    let data = std::fs::read(src).map_err(|e| format!("{src}: {e}"))?;
    let format = pixgate::image::format::sniff(&data).ok_or("not an image pixgate reads")?;
    let limits = HeaderLimits {
        max_pixels: 50_000_000,
        max_dimension: 16_384,
    };
    let spec = ResizeSpec::inside(Some(fit), Some(fit));
    let p = probe::probe(&data, format, limits).map_err(|r| format!("probe: {r:?}"))?;
    let to = decode::ShrinkTo {
        spec: &spec,
        margin: 2.0,
    };
    let d = decode::decode_for(&data, &p, Some(to)).map_err(|r| format!("decode: {r:?}"))?;
    let img = resize::apply(d.image, &spec).map_err(|r| format!("resize: {r:?}"))?;
    let out = Path::new(out);
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    img.save(out.join("ref.png")).map_err(|e| e.to_string())?;

    let d = ImagesConfig::default();
    let base = EncodeSettings::from(&d);
    let jpeg = |progressive, trellis| EncodeSettings {
        jpeg: JpegConfig {
            progressive,
            trellis,
            ..d.jpeg
        },
        ..base
    };
    let webp = |method| EncodeSettings {
        webp: WebpConfig { method, ..d.webp },
        ..base
    };
    let avif = |speed, depth| EncodeSettings {
        avif: AvifConfig {
            speed,
            depth,
            ..d.avif
        },
        ..base
    };
    let settings: Vec<(&str, OutputFormat, EncodeSettings)> = vec![
        (
            "jpeg-trellis-progressive",
            OutputFormat::Jpeg,
            jpeg(true, true),
        ),
        (
            "jpeg-trellis-baseline",
            OutputFormat::Jpeg,
            jpeg(false, true),
        ),
        (
            "jpeg-fast-progressive",
            OutputFormat::Jpeg,
            jpeg(true, false),
        ),
        ("jpeg-fast-baseline", OutputFormat::Jpeg, jpeg(false, false)),
        ("webp-m2", OutputFormat::Webp, webp(2)),
        ("webp-m3", OutputFormat::Webp, webp(3)),
        ("webp-m4", OutputFormat::Webp, webp(4)),
        ("avif-s8-10bit", OutputFormat::Avif, avif(8, 10)),
        ("avif-s8-8bit", OutputFormat::Avif, avif(8, 8)),
        ("avif-s6-10bit", OutputFormat::Avif, avif(6, 10)),
        ("avif-s6-8bit", OutputFormat::Avif, avif(6, 8)),
    ];
    let only = std::env::var("SWEEP_ONLY").unwrap_or_default();
    for (name, f, s) in settings {
        if !only.is_empty() && !name.starts_with(only.as_str()) {
            continue;
        }
        for q in (30..=95).step_by(5) {
            let s = s.with_quality(f, q);
            let t = Instant::now();
            let bytes = codec::encode(&img, f, &s)?;
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            let file = out.join(format!("{name}-q{q}.{}", f.name()));
            std::fs::write(&file, &bytes).map_err(|e| e.to_string())?;
            if matches!(f, OutputFormat::Jpeg | OutputFormat::Webp) {
                let px = image::load_from_memory(&bytes).map_err(|e| e.to_string())?;
                px.save(out.join(format!("{name}-q{q}.png")))
                    .map_err(|e| e.to_string())?;
            }
            println!("{name} {q} {} {ms:.1}", bytes.len());
        }
    }
    Ok(())
}
