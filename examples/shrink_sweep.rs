//! What shrink-on-load costs in quality and buys in time (issue 22 item 2).
//!
//! `cargo run --release --example shrink_sweep -- OUTDIR FIT IMAGE...` decodes each JPEG or
//! WebP the way the pipeline does and fits it into FIT×FIT with the Lanczos resize, once from
//! a whole decode (the reference, OUTDIR/NAME-whole.png) and once per `images.shrink_on_load`
//! margin (OUTDIR/NAME-mM.png). It prints one line per image and setting:
//! `NAME SETTING DECODED_WxH MILLISECONDS` (decode + resize, the best of 5 runs). Score the
//! PNGs with the dssim CLI against the reference (scripts/shrink-sweep.sh does both).

use pixgate::image::decode;
use pixgate::image::probe::{self, HeaderLimits};
use pixgate::image::resize::{self, ResizeSpec};
use std::path::Path;
use std::time::{Duration, Instant};

const MARGINS: [f64; 4] = [1.0, 1.5, 2.0, 3.0];

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out, fit, images @ ..] = args.as_slice() else {
        return Err("usage: shrink_sweep OUTDIR FIT IMAGE...".into());
    };
    let fit: u32 = fit.parse().map_err(|e| format!("FIT: {e}"))?;
    let out = Path::new(out);
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    let spec = ResizeSpec::inside(Some(fit), Some(fit));
    let limits = HeaderLimits {
        max_pixels: 50_000_000,
        max_dimension: 16_384,
    };
    for path in images {
        let data = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
        let format = pixgate::image::format::sniff(&data).ok_or("not an image pixgate reads")?;
        let p = probe::probe(&data, format, limits).map_err(|r| format!("probe: {r:?}"))?;
        let name = Path::new(path)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("image");
        let settings = std::iter::once(None).chain(MARGINS.iter().map(|&m| Some(m)));
        for margin in settings {
            let to = margin.map(|margin| decode::ShrinkTo {
                spec: &spec,
                margin,
            });
            let mut best = Duration::MAX;
            let mut last = None;
            for _ in 0..5 {
                let t = Instant::now();
                let d = decode::decode_for(&data, &p, to).map_err(|r| format!("{r:?}"))?;
                let decoded = (d.image.width(), d.image.height());
                let img = resize::apply(d.image, &spec).map_err(|r| format!("{r:?}"))?;
                best = best.min(t.elapsed());
                last = Some((decoded, img));
            }
            let Some(((dw, dh), img)) = last else {
                continue;
            };
            let setting = margin.map_or("whole".to_string(), |m| format!("m{m}"));
            img.save(out.join(format!("{name}-{setting}.png")))
                .map_err(|e| e.to_string())?;
            println!(
                "{name} {setting} {dw}x{dh} {:.2}",
                best.as_secs_f64() * 1000.0
            );
        }
    }
    Ok(())
}
