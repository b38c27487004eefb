//! `max_bytes`: an output that must fit in a number of bytes. The quality is lowered first
//! (bisection between [`MIN_QUALITY`] and the quality that was too large), then, when even
//! that is too large, the dimensions, by the square root of the size ratio with a margin, at
//! [`MIN_QUALITY`]. At most [`MAX_ENCODES`] encodes: when none fits, the smallest is sent (a
//! size limit is a request, not a reason to fail). Lossless outputs (PNG, lossless WebP)
//! skip the quality steps.

use super::codec::{self, EncodeSettings};
use super::format::OutputFormat;
use super::resize::{self, ResizeSpec};
use super::Reason;
use image::DynamicImage;
use std::time::Instant;

/// The lowest quality the bisection tries (imgproxy's floor is 10 as well).
pub const MIN_QUALITY: u8 = 10;
/// Encodes at most, besides the one that was too large.
pub const MAX_ENCODES: usize = 8;
/// Quality probes of the bisection at most (the rest of [`MAX_ENCODES`] goes to sizes).
const QUALITY_PROBES: usize = 4;

/// A fitted output.
#[derive(Debug)]
pub struct Fitted {
    /// The encoded bytes.
    pub bytes: Vec<u8>,
    /// Their width.
    pub width: u32,
    /// Their height.
    pub height: u32,
    /// Encodes spent.
    pub encodes: usize,
}

/// Re-encodes `image` as `format` until it fits in `limit` bytes; `first` is the size of the
/// encode at `settings` that did not fit.
pub fn fit(
    image: &DynamicImage,
    format: OutputFormat,
    settings: &EncodeSettings,
    limit: usize,
    first: usize,
    deadline: Instant,
) -> Result<Fitted, Reason> {
    let encodes = std::cell::Cell::new(0);
    let run = |img: &DynamicImage, s: &EncodeSettings| -> Result<Vec<u8>, Reason> {
        if Instant::now() > deadline {
            return Err(Reason::Timeout);
        }
        encodes.set(encodes.get() + 1);
        codec::encode(img, format, s).map_err(|e| {
            tracing::warn!(format = format.name(), error = %e, "encode failed");
            Reason::EncodeFailed
        })
    };
    let lossy = !settings.lossless && !matches!(format, OutputFormat::Png | OutputFormat::Gif);
    let mut best: Option<Vec<u8>> = None;
    let mut smallest_len = first;
    if lossy {
        // Bisection on quality: `hi` is the highest quality not yet known to be too large.
        let (mut lo, mut hi) = (MIN_QUALITY, settings.quality(format).saturating_sub(1));
        let mut tries = 0;
        let mut floor_tried = false;
        while lo <= hi && tries < QUALITY_PROBES {
            let q = lo + (hi - lo) / 2;
            let out = run(image, &settings.with_quality(format, q))?;
            tries += 1;
            if out.len() <= limit {
                lo = q + 1;
                best = Some(out);
            } else {
                smallest_len = smallest_len.min(out.len());
                if q == MIN_QUALITY {
                    floor_tried = true;
                    break;
                }
                hi = q - 1;
            }
        }
        if let Some(bytes) = best {
            return Ok(Fitted {
                bytes,
                width: image.width(),
                height: image.height(),
                encodes: encodes.get(),
            });
        }
        if !floor_tried && settings.quality(format) > MIN_QUALITY {
            // The bisection ran out before trying the floor.
            let out = run(image, &settings.with_quality(format, MIN_QUALITY))?;
            if out.len() <= limit {
                return Ok(Fitted {
                    bytes: out,
                    width: image.width(),
                    height: image.height(),
                    encodes: encodes.get(),
                });
            }
            smallest_len = smallest_len.min(out.len());
        }
    }
    // Smaller dimensions at the floor quality: bytes scale roughly with the pixel count.
    let small = settings.with_quality(format, MIN_QUALITY);
    let settings = if lossy { &small } else { settings };
    let (mut w, mut h) = (image.width(), image.height());
    let mut last: Option<(Vec<u8>, u32, u32)> = None;
    while encodes.get() < MAX_ENCODES {
        let k = (limit as f64 / smallest_len.max(1) as f64).sqrt() * 0.9;
        let (nw, nh) = (
            ((f64::from(w) * k).floor() as u32).max(1),
            ((f64::from(h) * k).floor() as u32).max(1),
        );
        if (nw, nh) == (w, h) || k >= 1.0 {
            break;
        }
        (w, h) = (nw, nh);
        let resized = resize::apply(
            image.clone(),
            &ResizeSpec {
                enlarge: false,
                ..ResizeSpec::inside(Some(w), Some(h))
            },
        )?;
        let out = run(&resized, settings)?;
        let (rw, rh) = (resized.width(), resized.height());
        smallest_len = out.len();
        let fits = out.len() <= limit;
        last = Some((out, rw, rh));
        if fits {
            break;
        }
    }
    match last {
        Some((bytes, width, height)) => Ok(Fitted {
            bytes,
            width,
            height,
            encodes: encodes.get(),
        }),
        // Nothing smaller could be made (a 1×1 image over the limit): the first stands.
        None => codec::encode(image, format, settings)
            .map(|bytes| Fitted {
                bytes,
                width: image.width(),
                height: image.height(),
                encodes: encodes.get() + 1,
            })
            .map_err(|_| Reason::EncodeFailed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn photo(w: u32, h: u32) -> DynamicImage {
        // Noise-like detail so sizes respond to quality and dimensions.
        let mut seed = 0x2545_f491_u32;
        DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            // A smooth gradient with noise on top, like a photo's grain.
            let n = (seed & 63) as u8;
            image::Rgb([
                (x / 2) as u8 + n,
                (y / 2) as u8 + n,
                ((x + y) / 4) as u8 + n,
            ])
        }))
    }

    fn settings() -> EncodeSettings {
        EncodeSettings::from(&crate::image::config::ImagesConfig::default())
    }

    #[test]
    fn quality_then_size_until_it_fits_within_the_encode_bound() {
        let img = photo(400, 300);
        let s = settings();
        let deadline = Instant::now() + Duration::from_secs(60);
        // A limit that quality alone meets, and one that needs smaller dimensions too.
        for (format, share) in [
            (OutputFormat::Jpeg, 2),
            (OutputFormat::Jpeg, 20),
            (OutputFormat::Webp, 3),
            (OutputFormat::Webp, 30),
            (OutputFormat::Png, 3),
        ] {
            let first = codec::encode(&img, format, &s).unwrap().len();
            let limit = first / share;
            let f = fit(&img, format, &s, limit, first, deadline).unwrap();
            assert!(
                f.bytes.len() <= limit,
                "{format:?} {} > {limit}",
                f.bytes.len()
            );
            assert!(
                f.encodes <= MAX_ENCODES,
                "{format:?}: {} encodes",
                f.encodes
            );
            let back = image::load_from_memory(&f.bytes).unwrap();
            assert_eq!((back.width(), back.height()), (f.width, f.height));
        }
    }

    #[test]
    fn a_generous_limit_only_lowers_the_quality() {
        let img = photo(300, 200);
        let s = settings();
        let first = codec::encode(&img, OutputFormat::Jpeg, &s).unwrap().len();
        let f = fit(
            &img,
            OutputFormat::Jpeg,
            &s,
            first * 9 / 10,
            first,
            Instant::now() + Duration::from_secs(60),
        )
        .unwrap();
        assert_eq!((f.width, f.height), (300, 200), "no resize needed");
        assert!(f.bytes.len() <= first * 9 / 10);
    }
}
