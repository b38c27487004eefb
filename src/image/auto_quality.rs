//! Quality by perceptual target (`q=auto`, `images.auto_quality`): per image, the lowest
//! quality whose SSIMULACRA2 score (the `ssimulacra2` crate, BSD-2; dssim is AGPL) reaches the
//! target, found by a bounded search that starts from the configured quality and steps by the
//! score's distance from the target, then bisects once the answer is bracketed. Every trial
//! is encoded, decoded (libjpeg, libwebp, libheif for AVIF) and scored against the pixels it
//! was encoded from. Bounded by `max_encodes` and a time `budget`: when the budget runs out
//! the best passing result is sent, else the trial nearest the target from above in quality
//! (the configured quality is always the first trial, so the fixed-quality answer is the
//! floor of what is sent).

use super::codec::{self, EncodeSettings};
use super::format::OutputFormat;
use crate::units::Dur;
use serde::{Deserialize, Serialize};
use ssimulacra2::{ColorPrimaries, LinearRgb, Rgb, TransferCharacteristic};
use std::time::Instant;

/// `images.auto_quality`: the perceptual target and the search's bounds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AutoQualityConfig {
    /// SSIMULACRA2 score to reach (1–99; 90 is visually lossless, 70 high quality at normal
    /// viewing distance). The fixed defaults score 70–75 on the demo photos at 480 px
    /// (docs/benchmarks.md). Default `70`.
    pub target: f64,
    /// Most encodes a search makes (1–10). Default `5`.
    pub max_encodes: u8,
    /// Time a search may take; a trial that would start past it is not made. Default `1500ms`.
    pub budget: Dur,
    /// Formats whose quality is always chosen this way, without `q=auto` in the URL (the
    /// configuration's form of `quality: auto`). Default none.
    pub formats: Vec<OutputFormat>,
}

impl Default for AutoQualityConfig {
    fn default() -> Self {
        AutoQualityConfig {
            target: 70.0,
            max_encodes: 5,
            budget: Dur::millis(1500),
            formats: Vec::new(),
        }
    }
}

/// What a search settled on.
#[derive(Debug, Clone)]
pub struct Chosen {
    /// The encoded bytes.
    pub bytes: Vec<u8>,
    /// The quality they were encoded at.
    pub quality: u8,
    /// Their score.
    pub score: f64,
    /// Encodes made.
    pub encodes: u8,
}

/// The quality range searched for a format (`None`: not a lossy format).
fn range(f: OutputFormat) -> Option<(u8, u8)> {
    match f {
        OutputFormat::Avif => Some((15, 90)),
        OutputFormat::Webp | OutputFormat::Jpeg | OutputFormat::Jxl => Some((25, 95)),
        OutputFormat::Png | OutputFormat::Gif => None,
    }
}

/// The pixels as SSIMULACRA2 reads them: linear RGB, transparency composited over mid-grey
/// (so an error under a transparent pixel costs nothing and one under an opaque pixel all).
fn linear(img: &image::DynamicImage) -> Option<LinearRgb> {
    let rgba = img.to_rgba8();
    let (w, h) = rgba.dimensions();
    let data = rgba
        .pixels()
        .map(|p| {
            let a = f32::from(p[3]) / 255.0;
            let c = |v: u8| (f32::from(v) / 255.0) * a + 0.5 * (1.0 - a);
            [c(p[0]), c(p[1]), c(p[2])]
        })
        .collect();
    let rgb = Rgb::new(
        data,
        w as usize,
        h as usize,
        TransferCharacteristic::SRGB,
        ColorPrimaries::BT709,
    )
    .ok()?;
    LinearRgb::try_from(rgb).ok()
}

/// The SSIMULACRA2 score of `encoded` (an output in `format`) against the pixels it was
/// encoded from (benches/auto_quality.rs compares fixed and chosen qualities with it).
pub fn score_output(
    reference: &image::DynamicImage,
    encoded: &[u8],
    format: OutputFormat,
) -> Option<f64> {
    score(&linear(reference)?, encoded, format)
}

/// The SSIMULACRA2 score of `encoded` (in `format`) against `reference`.
fn score(reference: &LinearRgb, encoded: &[u8], format: OutputFormat) -> Option<f64> {
    let decoded = super::decode::decode_output(encoded, format)?;
    let distorted = linear(&decoded)?;
    ssimulacra2::compute_frame_ssimulacra2(reference.clone(), distorted).ok()
}

/// Encodes `img` as `format` at the lowest quality whose score reaches `cfg.target`, within
/// the bounds. `None` when the format has no quality to choose, the image is too small to
/// score (under 8×8), or the first encode fails: the caller encodes at the fixed quality.
pub fn encode(
    img: &image::DynamicImage,
    format: OutputFormat,
    settings: &EncodeSettings,
    cfg: &AutoQualityConfig,
) -> Option<Chosen> {
    let (min_q, max_q) = range(format)?;
    if img.width() < 8 || img.height() < 8 {
        return None;
    }
    let t0 = Instant::now();
    let reference = linear(img)?;
    let (mut lo, mut hi) = (min_q, max_q);
    let mut q = settings.quality(format).clamp(min_q, max_q);
    let mut best: Option<Chosen> = None; // the lowest passing quality
    let mut nearest: Option<Chosen> = None; // the highest failing quality
    let mut encodes = 0u8;
    let mut slowest = std::time::Duration::ZERO;
    while encodes < cfg.max_encodes.max(1) {
        let started = Instant::now();
        if encodes > 0 && started + slowest > t0 + cfg.budget.get() {
            break;
        }
        let bytes = codec::encode(img, format, &settings.with_quality(format, q)).ok()?;
        encodes += 1;
        let s = score(&reference, &bytes, format)?;
        slowest = slowest.max(started.elapsed());
        let trial = Chosen {
            bytes,
            quality: q,
            score: s,
            encodes,
        };
        if s >= cfg.target {
            hi = q.saturating_sub(1);
            best = Some(trial);
        } else {
            lo = q.saturating_add(1);
            nearest = Some(trial);
        }
        if lo > hi {
            break;
        }
        q = match (&best, &nearest) {
            (Some(_), Some(_)) => lo + (hi - lo) / 2,
            // One side only: step by the distance to the target, about 1.5 quality a point.
            _ => {
                let step = ((cfg.target - s).abs() * 1.5).clamp(3.0, 25.0) as u8;
                if s >= cfg.target {
                    q.saturating_sub(step)
                } else {
                    q.saturating_add(step)
                }
            }
        }
        .clamp(lo, hi);
    }
    let mut chosen = best.or(nearest)?;
    chosen.encodes = encodes;
    Some(chosen)
}
