//! What an encode costs per output pixel, learnt from the transforms that ran: an
//! exponentially weighted mean of encode time over output pixels for each format, started from
//! figures measured on the benchmark photos. The AVIF budget uses it to decide, before encoding,
//! whether a cold AVIF variant would keep its first visitor waiting longer than WebP would
//! (`cache.avif_margin`, [`crate::proxy`]'s `avif_budget`).

use super::format::OutputFormat;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Weight of the newest encode in the mean: the figure follows a change of load or content
/// within about ten encodes.
const WEIGHT: f64 = 0.2;

/// Encode nanoseconds per output pixel before any encode was seen, at the default settings on
/// the 2-core benchmark machine (docs/benchmarks.md, cold AVIF): on the high side for AVIF,
/// so a first large variant is answered with WebP rather than kept waiting.
fn seed(f: OutputFormat) -> f64 {
    match f {
        OutputFormat::Avif => 400.0,
        OutputFormat::Webp => 60.0,
        OutputFormat::Jpeg => 60.0,
        OutputFormat::Png => 400.0,
        OutputFormat::Gif => 100.0,
        OutputFormat::Jxl => 200.0,
    }
}

/// The learnt encode cost of each output format (shared by every pool worker).
#[derive(Debug)]
pub struct EncodeCosts {
    /// `f64` bits of nanoseconds per output pixel, indexed by `OutputFormat as usize`.
    ns_per_pixel: [AtomicU64; 6],
}

impl Default for EncodeCosts {
    fn default() -> Self {
        let at = |f: OutputFormat| AtomicU64::new(seed(f).to_bits());
        EncodeCosts {
            ns_per_pixel: [
                at(OutputFormat::Avif),
                at(OutputFormat::Webp),
                at(OutputFormat::Jpeg),
                at(OutputFormat::Png),
                at(OutputFormat::Gif),
                at(OutputFormat::Jxl),
            ],
        }
    }
}

impl EncodeCosts {
    /// Learns from one encode of `pixels` output pixels in `format` that took `took`.
    pub fn record(&self, format: OutputFormat, took: Duration, pixels: u64) {
        if pixels == 0 {
            return;
        }
        let seen = took.as_nanos() as f64 / pixels as f64;
        let slot = &self.ns_per_pixel[format as usize];
        // A lost race between two workers drops one sample: good enough for a mean.
        let _ = slot.fetch_update(Ordering::AcqRel, Ordering::Acquire, |bits| {
            let mean = f64::from_bits(bits);
            Some((mean + WEIGHT * (seen - mean)).to_bits())
        });
    }

    /// The expected encode time of `pixels` output pixels in `format`.
    pub fn predict(&self, format: OutputFormat, pixels: u64) -> Duration {
        let ns = f64::from_bits(self.ns_per_pixel[format as usize].load(Ordering::Acquire));
        Duration::from_nanos((ns * pixels as f64).min(1e15) as u64)
    }

    /// Whether AVIF for `pixels` output pixels is expected to take more than `margin` longer
    /// than WebP.
    pub fn avif_late(&self, pixels: u64, margin: Duration) -> bool {
        self.predict(OutputFormat::Avif, pixels) > self.predict(OutputFormat::Webp, pixels) + margin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_moves_towards_what_is_seen_and_predicts_by_pixels() {
        let c = EncodeCosts::default();
        let px = 1_000_000;
        assert_eq!(c.predict(OutputFormat::Webp, px), Duration::from_millis(60));
        for _ in 0..60 {
            c.record(OutputFormat::Webp, Duration::from_millis(20), px);
        }
        let p = c.predict(OutputFormat::Webp, px).as_secs_f64();
        assert!((p - 0.020).abs() < 0.001, "{p}");
        // Half the pixels, half the time; other formats untouched.
        let half = c.predict(OutputFormat::Webp, px / 2).as_secs_f64();
        assert!((half - p / 2.0).abs() < 1e-6);
        assert_eq!(
            c.predict(OutputFormat::Avif, px),
            Duration::from_millis(400)
        );
        c.record(OutputFormat::Avif, Duration::from_secs(1), 0);
        assert_eq!(
            c.predict(OutputFormat::Avif, px),
            Duration::from_millis(400)
        );
    }

    #[test]
    fn avif_is_late_only_past_the_margin_over_webp() {
        let c = EncodeCosts::default();
        for _ in 0..60 {
            c.record(OutputFormat::Avif, Duration::from_millis(300), 1_000_000);
            c.record(OutputFormat::Webp, Duration::from_millis(50), 1_000_000);
        }
        let margin = Duration::from_millis(50);
        // 250 ns a pixel more: 200,000 pixels are the break-even for 50 ms.
        assert!(!c.avif_late(150_000, margin));
        assert!(c.avif_late(300_000, margin));
    }
}
