//! Reads what an image claims about itself from its header, before any pixel is decoded:
//! dimensions (so decompression bombs are refused up front), animation, and completeness.

use super::format::SourceFormat;
use super::Reason;
use std::io::Cursor;

/// What the header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// Detected format.
    pub format: SourceFormat,
    /// Declared width.
    pub width: u32,
    /// Declared height.
    pub height: u32,
}

/// Limits checked against the header.
#[derive(Debug, Clone, Copy)]
pub struct HeaderLimits {
    /// Maximum width × height.
    pub max_pixels: u64,
    /// Maximum width or height.
    pub max_dimension: u32,
}

/// Probes `data` (already sniffed as `format`) and applies the header limits.
pub fn probe(data: &[u8], format: SourceFormat, limits: HeaderLimits) -> Result<Probe, Reason> {
    let p = dimensions(data, format, limits)?;
    match format {
        SourceFormat::Jpeg if !jpeg_complete(data) => return Err(Reason::Truncated),
        SourceFormat::Jpeg if jpeg_scans(data) > MAX_JPEG_SCANS => {
            return Err(Reason::TooManyScans)
        }
        SourceFormat::Png if png_animated(data) => return Err(Reason::Animated),
        SourceFormat::Webp if webp_animated(data) => return Err(Reason::Animated),
        SourceFormat::Gif if gif_frames(data, 2) > 1 => return Err(Reason::Animated),
        _ => {}
    }
    Ok(p)
}

/// The declared dimensions of `data` (sniffed as `format`) within the pixel limits, read from
/// the header alone: the part of [`probe`] every decoder of untrusted bytes needs first.
pub(crate) fn dimensions(
    data: &[u8],
    format: SourceFormat,
    limits: HeaderLimits,
) -> Result<Probe, Reason> {
    if data.is_empty() {
        return Err(Reason::Empty);
    }
    if !format.decodable() {
        return Err(Reason::UnsupportedSource);
    }
    let (width, height) = match to_image_format(format) {
        Some(f) => image::ImageReader::with_format(Cursor::new(data), f)
            .into_dimensions()
            .map_err(|_| Reason::Undecodable)?,
        None => super::heif::dimensions(data)?,
    };
    if width == 0 || height == 0 {
        return Err(Reason::Undecodable);
    }
    if width > limits.max_dimension
        || height > limits.max_dimension
        || u64::from(width) * u64::from(height) > limits.max_pixels
    {
        return Err(Reason::TooManyPixels);
    }
    Ok(Probe {
        format,
        width,
        height,
    })
}

/// The image crate's name for a source format it reads; `None` for the HEIF family (AVIF,
/// HEIC), which libheif reads ([`super::heif`]).
pub(crate) fn to_image_format(f: SourceFormat) -> Option<image::ImageFormat> {
    match f {
        SourceFormat::Jpeg => Some(image::ImageFormat::Jpeg),
        SourceFormat::Png => Some(image::ImageFormat::Png),
        SourceFormat::Gif => Some(image::ImageFormat::Gif),
        SourceFormat::Webp => Some(image::ImageFormat::WebP),
        SourceFormat::Avif | SourceFormat::Heic => None,
    }
}

/// Walks the JPEG marker segments to the first scan and checks that an EOI marker follows.
/// Inside entropy-coded data `FF` is always followed by `00` or a restart marker, so `FF D9`
/// after the scan header can only be the end of image. Segments before the scan (EXIF
/// thumbnails carry their own EOI) are skipped by length, not searched.
pub(crate) fn jpeg_complete(d: &[u8]) -> bool {
    let mut i = 2; // after SOI
    while i + 4 <= d.len() {
        if d[i] != 0xFF {
            return false;
        }
        let marker = d[i + 1];
        if marker == 0xFF {
            i += 1; // fill byte
            continue;
        }
        if (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            i += 2;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([d[i + 2], d[i + 3]]));
        if marker == 0xDA {
            let scan = i + 2 + len;
            return scan <= d.len() && d[scan..].windows(2).any(|w| w == [0xFF, 0xD9]);
        }
        i += 2 + len;
    }
    false
}

/// Progressive JPEGs past this many scans are sent untouched: every scan makes the decoder
/// walk the whole coefficient buffer again, so a small file with thousands of scans costs
/// seconds of CPU (libjpeg-turbo's `-maxscans` guards against the same). Encoders write at most
/// a few dozen (mozjpeg's scan optimisation: about 10; libjpeg's default script: 10).
pub(crate) const MAX_JPEG_SCANS: usize = 100;

/// Counts the scans (SOS segments) of a JPEG by walking its segments and skipping each scan's
/// entropy-coded data (where `FF` is always followed by `00` or a restart marker), so an
/// embedded thumbnail's markers inside APP segments are not counted.
pub fn jpeg_scans(d: &[u8]) -> usize {
    let mut scans = 0;
    let mut i = 2; // after SOI
    while i + 4 <= d.len() {
        if d[i] != 0xFF {
            return scans;
        }
        let marker = d[i + 1];
        if marker == 0xFF {
            i += 1;
            continue;
        }
        if marker == 0xD9 {
            return scans;
        }
        if (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            i += 2;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([d[i + 2], d[i + 3]]));
        i += 2 + len;
        if marker == 0xDA {
            scans += 1;
            // Entropy-coded data runs to the next marker that is not a stuffed 00 or an RSTn.
            while i + 1 < d.len() {
                if d[i] == 0xFF && d[i + 1] != 0x00 && !(0xD0..=0xD7).contains(&d[i + 1]) {
                    break;
                }
                i += 1;
            }
        }
    }
    scans
}

/// APNG files carry an `acTL` chunk before the first `IDAT`.
fn png_animated(d: &[u8]) -> bool {
    let mut i = 8;
    while i + 8 <= d.len() {
        let len = u32::from_be_bytes([d[i], d[i + 1], d[i + 2], d[i + 3]]) as usize;
        let kind = &d[i + 4..i + 8];
        if kind == b"acTL" {
            return true;
        }
        if kind == b"IDAT" {
            return false;
        }
        i = i.saturating_add(12).saturating_add(len);
    }
    false
}

/// The frames an animation declares, counted up to `stop` without decoding a pixel: GIF
/// image descriptors, WebP `ANMF` chunks, APNG's `acTL` frame count (0 for anything else).
pub(crate) fn animation_frames(d: &[u8], format: SourceFormat, stop: usize) -> usize {
    match format {
        SourceFormat::Gif => gif_frames(d, stop),
        SourceFormat::Webp => webp_frames(d, stop),
        SourceFormat::Png => apng_frames(d).min(stop),
        _ => 0,
    }
}

/// Counts `ANMF` chunks up to `stop` by walking the RIFF chunks after the header.
fn webp_frames(d: &[u8], stop: usize) -> usize {
    let mut i = 12;
    let mut frames = 0;
    while let Some(h) = d.get(i..i + 8) {
        if &h[..4] == b"ANMF" {
            frames += 1;
            if frames >= stop {
                break;
            }
        }
        let len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
        i = i
            .saturating_add(8)
            .saturating_add(len)
            .saturating_add(len & 1);
    }
    frames
}

/// The `num_frames` of an APNG's `acTL` chunk (0 without one).
fn apng_frames(d: &[u8]) -> usize {
    let mut i = 8;
    while let Some(h) = d.get(i..i + 8) {
        let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
        match &h[4..8] {
            b"acTL" => {
                return d
                    .get(i + 8..i + 12)
                    .map_or(0, |n| u32::from_be_bytes([n[0], n[1], n[2], n[3]]) as usize)
            }
            b"IDAT" => return 0,
            _ => i = i.saturating_add(12).saturating_add(len),
        }
    }
    0
}

/// Extended WebP (`VP8X`) sets bit 1 of its flags byte for animation.
fn webp_animated(d: &[u8]) -> bool {
    d.len() > 20 && &d[12..16] == b"VP8X" && d[20] & 0x02 != 0
}

/// Counts image descriptors up to `stop` by walking GIF blocks (no LZW decoding).
pub(crate) fn gif_frames(d: &[u8], stop: usize) -> usize {
    if d.len() < 13 {
        return 0;
    }
    let flags = d[10];
    let mut i = 13;
    if flags & 0x80 != 0 {
        i += 3 * (1usize << ((flags & 0x07) + 1));
    }
    let mut frames = 0;
    let skip_sub_blocks = |mut j: usize| -> Option<usize> {
        loop {
            let n = *d.get(j)? as usize;
            j += 1;
            if n == 0 {
                return Some(j);
            }
            j += n;
        }
    };
    while let Some(&b) = d.get(i) {
        match b {
            0x2C => {
                frames += 1;
                if frames >= stop {
                    return frames;
                }
                let Some(&lflags) = d.get(i + 9) else {
                    return frames;
                };
                i += 10;
                if lflags & 0x80 != 0 {
                    i += 3 * (1usize << ((lflags & 0x07) + 1));
                }
                i += 1; // LZW minimum code size
                match skip_sub_blocks(i) {
                    Some(j) => i = j,
                    None => return frames,
                }
            }
            0x21 => match skip_sub_blocks(i + 2) {
                Some(j) => i = j,
                None => return frames,
            },
            _ => return frames, // 0x3B trailer or garbage
        }
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_completeness_walks_segments() {
        // SOI, APP1 containing a fake EOI, SOS with 2 bytes of data, then EOI.
        let mut j = vec![0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x04, 0xFF, 0xD9];
        j.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x02, 0x12, 0x34]);
        assert!(!jpeg_complete(&j), "EOI inside APP1 must not count");
        j.extend_from_slice(&[0xFF, 0xD9]);
        assert!(jpeg_complete(&j));
        assert!(!jpeg_complete(&[0xFF, 0xD8, 0xFF]));
    }

    #[test]
    fn jpeg_scans_are_counted_past_entropy_data_and_not_inside_app_segments() {
        // SOI, APP1 holding a fake SOS, SOS + data with a stuffed FF00 and an RST, SOS, EOI.
        let mut j = vec![0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xDA, 0x00, 0x02];
        j.extend_from_slice(&[
            0xFF, 0xDA, 0x00, 0x02, 0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56,
        ]);
        j.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x02, 0x78]);
        j.extend_from_slice(&[0xFF, 0xD9]);
        assert_eq!(jpeg_scans(&j), 2);
        assert_eq!(jpeg_scans(&j[..16]), 1, "a cut file counts what it has");
        assert_eq!(jpeg_scans(&[0xFF, 0xD8]), 0);
    }

    #[test]
    fn empty_and_avif_are_reasons() {
        let l = HeaderLimits {
            max_pixels: 10,
            max_dimension: 10,
        };
        assert_eq!(probe(&[], SourceFormat::Png, l), Err(Reason::Empty));
        let avif = if cfg!(feature = "heif") {
            Reason::Undecodable
        } else {
            Reason::UnsupportedSource
        };
        assert_eq!(probe(b"xx", SourceFormat::Avif, l), Err(avif));
        assert_eq!(
            probe(b"\x89PNG\r\n\x1a\n", SourceFormat::Png, l),
            Err(Reason::Undecodable)
        );
    }

    #[test]
    fn gif_frame_walk_survives_garbage() {
        assert_eq!(gif_frames(b"GIF89a", 2), 0);
        let mut g = b"GIF89a\x01\x00\x01\x00\x00\x00\x00".to_vec();
        for _ in 0..2 {
            g.extend_from_slice(&[0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x4C, 0x01, 0]);
        }
        assert_eq!(gif_frames(&g, 2), 2);
        g.truncate(20);
        assert!(gif_frames(&g, 2) <= 1);
    }
}
