//! Image info (`/info/...` on the URL API, `?info=1` on proxied URLs): dimensions, format,
//! size, EXIF orientation, transparency, animation, average and dominant colour, and BlurHash
//! and ThumbHash placeholders, as JSON. The colours and placeholders come from a thumbnail of
//! at most 100 px: a JPEG is decoded at a reduced DCT scale (1/8 when that still covers it),
//! so a 20 MP photo is never decoded whole; other formats are decoded whole, then reduced.

use super::decode::{self, turns_sideways, ShrinkTo};
use super::effects::{summarize, Summary};
use super::format::SourceFormat;
use super::probe::{self, HeaderLimits};
use super::resize::ResizeSpec;
use super::Reason;
use serde::Serialize;

/// Longest side of the thumbnail the colours and placeholders are computed from.
pub const THUMB_SIDE: u32 = 100;

/// What `/info` answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Info {
    /// The source's format (`jpeg`, `png`, `gif`, `webp`, `avif`, `heic`).
    pub format: &'static str,
    /// Width as shown (after EXIF orientation).
    pub width: u32,
    /// Height as shown.
    pub height: u32,
    /// The source's size in bytes.
    pub bytes: usize,
    /// EXIF orientation, 1–8 (1: none).
    pub orientation: u8,
    /// Whether some pixel is not fully opaque (of the first frame).
    pub alpha: bool,
    /// Whether the source has more than one frame.
    pub animated: bool,
    /// Frames (1 for a still).
    pub frames: usize,
    /// Mean colour of the opaque pixels, `#rrggbb`.
    pub average: String,
    /// The most common colour (4 bits a channel), `#rrggbb`.
    pub dominant: String,
    /// BlurHash, 4×3 components.
    pub blurhash: String,
    /// ThumbHash, base64.
    pub thumbhash: String,
}

fn hex([r, g, b]: [u8; 3]) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// Describes `source` (sniffed as `format`), within the header limits; `max_frames` bounds the
/// frame count (a larger count is reported as `max_frames`).
pub fn describe(
    source: &[u8],
    format: SourceFormat,
    limits: HeaderLimits,
    max_frames: usize,
) -> Result<Info, Reason> {
    let frames = probe::animation_frames(source, format, max_frames.max(1)).max(1);
    let header = match probe::probe(source, format, limits) {
        Err(Reason::Animated) => probe::dimensions(source, format, limits)?,
        p => p?,
    };
    let thumb = ResizeSpec::inside(Some(THUMB_SIDE), Some(THUMB_SIDE));
    let decoded = decode::decode_for(
        source,
        &header,
        Some(ShrinkTo {
            spec: &thumb,
            margin: 1.0,
        }),
    )?;
    let (width, height) = match turns_sideways(decoded.orientation) {
        true => (header.height, header.width),
        false => (header.width, header.height),
    };
    let Summary {
        average,
        dominant,
        blurhash,
        thumbhash,
    } = summarize(&decoded.image);
    Ok(Info {
        format: format.name(),
        width,
        height,
        bytes: source.len(),
        orientation: decoded.orientation,
        alpha: decoded.has_alpha,
        animated: frames > 1,
        frames,
        average: hex(average),
        dominant: hex(dominant),
        blurhash,
        thumbhash,
    })
}

/// [`describe`] as JSON bytes.
pub fn json(
    source: &[u8],
    format: SourceFormat,
    limits: HeaderLimits,
    max_frames: usize,
) -> Result<Vec<u8>, Reason> {
    let info = describe(source, format, limits, max_frames)?;
    serde_json::to_vec(&info).map_err(|_| Reason::EncodeFailed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HeaderLimits = HeaderLimits {
        max_pixels: 100_000_000,
        max_dimension: 20_000,
    };

    #[test]
    fn a_jpeg_is_described_from_a_reduced_decode() {
        // 1600×800: left half red, right half blue.
        let img = image::RgbImage::from_fn(1600, 800, |x, _| {
            if x < 800 {
                image::Rgb([220, 20, 20])
            } else {
                image::Rgb([20, 20, 220])
            }
        });
        let mut jpeg = Vec::new();
        image::DynamicImage::ImageRgb8(img)
            .write_to(
                &mut std::io::Cursor::new(&mut jpeg),
                image::ImageFormat::Jpeg,
            )
            .unwrap();
        let info = describe(&jpeg, SourceFormat::Jpeg, LIMITS, 100).unwrap();
        assert_eq!((info.width, info.height, info.format), (1600, 800, "jpeg"));
        assert_eq!(
            (info.orientation, info.alpha, info.animated),
            (1, false, false)
        );
        assert_eq!(info.bytes, jpeg.len());
        let avg = u32::from_str_radix(&info.average[1..], 16).unwrap();
        let (r, b) = ((avg >> 16) & 255, avg & 255);
        assert!(
            (100..140).contains(&r) && (100..140).contains(&b),
            "{}",
            info.average
        );
        let back = blurhash::decode(&info.blurhash, 4, 2, 1.0).unwrap();
        assert!(back[0] > back[2], "the BlurHash is red on the left");
    }
}
