//! Lossless metadata removal for files that are kept as they are (the never-larger original of
//! an upload): the pixels and their encoding stay byte for byte, the segments and chunks that
//! carry EXIF (GPS position, camera serials, dates), XMP, comments and text go.
//!
//! - JPEG: APP1 (EXIF, XMP), APP3–APP13, APP15 and COM segments before the scan are dropped;
//!   APP0 (JFIF), APP2 (ICC profile: the colours) and APP14 (Adobe: the colour transform) stay.
//! - PNG: `tEXt`, `zTXt`, `iTXt`, `eXIf` and `tIME` chunks are dropped.
//! - WebP: `EXIF` and `XMP ` chunks are dropped and their `VP8X` flags cleared.
//! - GIF is returned unchanged (its comment and application extensions are not walked yet;
//!   GIF carries no EXIF).
//! - AVIF and HEIC are refused (`Err`): their `Exif`/XMP items are not walked yet, and a file
//!   that may hold a GPS position is not sent back as if it had been cleaned.
//!
//! Every parser checks lengths against the input and gives up (`Err`) on anything malformed,
//! so a caller that promised stripped metadata can refuse the file rather than send it as is.

use super::format::SourceFormat;

/// Why a file could not be walked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

/// `bytes` without its metadata (see the module documentation for what goes).
pub fn strip(bytes: &[u8], format: SourceFormat) -> Result<Vec<u8>, Malformed> {
    match format {
        SourceFormat::Jpeg => jpeg(bytes),
        SourceFormat::Png => png(bytes),
        SourceFormat::Webp => webp(bytes),
        SourceFormat::Gif => Ok(bytes.to_vec()),
        SourceFormat::Avif | SourceFormat::Heic => {
            Err(Malformed("AVIF/HEIC metadata items are not removed yet"))
        }
    }
}

/// Whether a JPEG segment with marker `m` is dropped.
fn jpeg_drops(m: u8) -> bool {
    m == 0xE1 || (0xE3..=0xED).contains(&m) || m == 0xEF || m == 0xFE
}

fn jpeg(b: &[u8]) -> Result<Vec<u8>, Malformed> {
    if !b.starts_with(&[0xFF, 0xD8]) {
        return Err(Malformed("no JPEG start marker"));
    }
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&b[..2]);
    let mut i = 2;
    loop {
        // Fill bytes (0xFF runs) may precede a marker.
        while b.get(i) == Some(&0xFF) && b.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        if b.get(i) != Some(&0xFF) {
            return Err(Malformed("a JPEG segment does not start with a marker"));
        }
        let m = *b.get(i + 1).ok_or(Malformed("JPEG ends in a marker"))?;
        match m {
            // Markers without a length (TEM, RSTn) before the scan: copy.
            0x01 | 0xD0..=0xD7 => {
                out.extend_from_slice(&b[i..i + 2]);
                i += 2;
                continue;
            }
            // End of image before a scan: nothing more to walk.
            0xD9 => {
                out.extend_from_slice(&b[i..i + 2]);
                return Ok(out);
            }
            _ => {}
        }
        let len = match b.get(i + 2..i + 4) {
            Some(&[hi, lo]) => usize::from(u16::from_be_bytes([hi, lo])),
            _ => return Err(Malformed("a JPEG segment length is cut short")),
        };
        if len < 2 || i + 2 + len > b.len() {
            return Err(Malformed("a JPEG segment runs past the end"));
        }
        let end = i + 2 + len;
        if m == 0xDA {
            // Start of scan: the entropy-coded data and everything after it stay as they are.
            out.extend_from_slice(&b[i..]);
            return Ok(out);
        }
        if !jpeg_drops(m) {
            out.extend_from_slice(&b[i..end]);
        }
        i = end;
    }
}

fn png(b: &[u8]) -> Result<Vec<u8>, Malformed> {
    const SIG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if !b.starts_with(SIG) {
        return Err(Malformed("no PNG signature"));
    }
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(SIG);
    let mut i = SIG.len();
    while i < b.len() {
        let len = match b.get(i..i + 4) {
            Some(&[a, b2, c, d]) => u32::from_be_bytes([a, b2, c, d]) as usize,
            _ => return Err(Malformed("a PNG chunk length is cut short")),
        };
        let end = i
            .checked_add(12)
            .and_then(|n| n.checked_add(len))
            .filter(|&n| n <= b.len())
            .ok_or(Malformed("a PNG chunk runs past the end"))?;
        let kind = &b[i + 4..i + 8];
        if !matches!(kind, b"tEXt" | b"zTXt" | b"iTXt" | b"eXIf" | b"tIME") {
            out.extend_from_slice(&b[i..end]);
        }
        i = end;
        if kind == b"IEND" {
            break;
        }
    }
    Ok(out)
}

fn webp(b: &[u8]) -> Result<Vec<u8>, Malformed> {
    if b.len() < 12 || &b[..4] != b"RIFF" || &b[8..12] != b"WEBP" {
        return Err(Malformed("no RIFF WEBP header"));
    }
    let riff_end = (u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as usize)
        .checked_add(8)
        .filter(|&n| n <= b.len())
        .ok_or(Malformed("the RIFF size runs past the end"))?;
    let mut chunks = Vec::with_capacity(b.len());
    let mut i = 12;
    let mut vp8x_flags_at = None;
    while i < riff_end {
        let h = b
            .get(i..i + 8)
            .ok_or(Malformed("a WebP chunk header is cut short"))?;
        let len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
        let padded = len + (len & 1);
        let end = (i + 8)
            .checked_add(padded)
            .filter(|&n| n <= riff_end)
            .ok_or(Malformed("a WebP chunk runs past the end"))?;
        match &h[..4] {
            b"EXIF" | b"XMP " => {}
            fourcc => {
                if fourcc == b"VP8X" && len >= 1 {
                    vp8x_flags_at = Some(12 + chunks.len() + 8);
                }
                chunks.extend_from_slice(&b[i..end]);
            }
        }
        i = end;
    }
    let mut out = Vec::with_capacity(12 + chunks.len());
    out.extend_from_slice(b"RIFF");
    let size = u32::try_from(4 + chunks.len()).map_err(|_| Malformed("WebP too large"))?;
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(b"WEBP");
    out.extend_from_slice(&chunks);
    if let Some(at) = vp8x_flags_at {
        // EXIF (0x08) and XMP (0x04) metadata flags.
        out[at] &= !0x0C;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rgb() -> image::RgbImage {
        image::RgbImage::from_fn(40, 30, |x, y| {
            image::Rgb([(x * 6) as u8, (y * 8) as u8, 90])
        })
    }

    #[test]
    fn jpeg_loses_exif_xmp_and_comments_and_keeps_its_pixels_and_icc() {
        let mut plain = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut plain, 80)
            .encode_image(&rgb())
            .expect("jpeg");
        // After SOI: APP1 EXIF (with a "GPS" marker string), APP2 ICC, COM, APP13.
        let seg = |m: u8, body: &[u8]| {
            let mut s = vec![0xFF, m];
            s.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
            s.extend_from_slice(body);
            s
        };
        let mut tagged = plain[..2].to_vec();
        tagged.extend(seg(0xE1, b"Exif\0\0GPSLatitude 48.85"));
        tagged.extend(seg(0xE2, b"ICC_PROFILE\0\x01\x01fake"));
        tagged.extend(seg(0xFE, b"shot by Jane"));
        tagged.extend(seg(0xED, b"Photoshop 3.0\0IPTC"));
        tagged.extend_from_slice(&plain[2..]);
        let out = strip(&tagged, SourceFormat::Jpeg).expect("strips");
        let has = |hay: &[u8], n: &[u8]| hay.windows(n.len()).any(|w| w == n);
        assert!(!has(&out, b"GPSLatitude") && !has(&out, b"Jane") && !has(&out, b"IPTC"));
        assert!(has(&out, b"ICC_PROFILE"));
        // Exactly the plain file plus the ICC segment: the scan is untouched.
        assert_eq!(out.len(), plain.len() + 4 + 18);
        let a = image::load_from_memory(&out).expect("decodes").to_rgb8();
        let b = image::load_from_memory(&plain).expect("decodes").to_rgb8();
        assert_eq!(a, b);
        assert_eq!(strip(&plain, SourceFormat::Jpeg).expect("strips"), plain);
    }

    #[test]
    fn png_loses_text_and_exif_chunks() {
        let mut plain = std::io::Cursor::new(Vec::new());
        rgb()
            .write_to(&mut plain, image::ImageFormat::Png)
            .expect("png");
        let plain = plain.into_inner();
        let chunk = |kind: &[u8; 4], data: &[u8]| {
            let mut c = (data.len() as u32).to_be_bytes().to_vec();
            c.extend_from_slice(kind);
            c.extend_from_slice(data);
            c.extend_from_slice(&[0, 0, 0, 0]);
            c
        };
        // Inserted after IHDR (8 + 25 bytes).
        let mut tagged = plain[..33].to_vec();
        tagged.extend(chunk(b"tEXt", b"Author\0Jane"));
        tagged.extend(chunk(b"eXIf", b"MM\0*GPS"));
        tagged.extend_from_slice(&plain[33..]);
        let out = strip(&tagged, SourceFormat::Png).expect("strips");
        assert_eq!(out, plain);
    }

    #[test]
    fn webp_loses_exif_and_xmp_and_their_flags() {
        // VP8X (flags EXIF|XMP), VP8L stand-in, EXIF, XMP.
        let chunk = |fourcc: &[u8; 4], data: &[u8]| {
            let mut c = fourcc.to_vec();
            c.extend_from_slice(&(data.len() as u32).to_le_bytes());
            c.extend_from_slice(data);
            if data.len() % 2 == 1 {
                c.push(0);
            }
            c
        };
        let mut body = chunk(b"VP8X", &[0x0C, 0, 0, 0, 9, 0, 0, 9, 0, 0]);
        body.extend(chunk(b"VP8L", b"pixels"));
        body.extend(chunk(b"EXIF", b"GPS 48.85"));
        body.extend(chunk(b"XMP ", b"<x:xmpmeta/>"));
        let mut f = b"RIFF".to_vec();
        f.extend_from_slice(&((4 + body.len()) as u32).to_le_bytes());
        f.extend_from_slice(b"WEBP");
        f.extend(body);
        let out = strip(&f, SourceFormat::Webp).expect("strips");
        assert!(!out.windows(3).any(|w| w == b"GPS") && !out.windows(4).any(|w| w == b"xmpm"));
        assert_eq!(out[20] & 0x0C, 0, "flags cleared");
        let size = u32::from_le_bytes([out[4], out[5], out[6], out[7]]) as usize;
        assert_eq!(size + 8, out.len());
        assert!(out.windows(6).any(|w| w == b"pixels"));
    }

    #[test]
    fn malformed_files_are_refused_never_passed() {
        assert!(strip(&[0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF], SourceFormat::Jpeg).is_err());
        assert!(strip(b"\x89PNG\r\n\x1a\n\0\0\0\xffIHDR", SourceFormat::Png).is_err());
        assert!(strip(b"RIFF\xff\xff\0\0WEBPVP8 ", SourceFormat::Webp).is_err());
        assert!(strip(b"GIF89a", SourceFormat::Jpeg).is_err());
        assert!(strip(b"\0\0\0\x1cftypavif", SourceFormat::Avif).is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            for f in [SourceFormat::Jpeg, SourceFormat::Png, SourceFormat::Webp] {
                let _ = strip(&bytes, f);
                let mut b = match f {
                    SourceFormat::Jpeg => vec![0xFF, 0xD8],
                    SourceFormat::Png => b"\x89PNG\r\n\x1a\n".to_vec(),
                    _ => b"RIFF\0\0\0\0WEBP".to_vec(),
                };
                b.extend_from_slice(&bytes);
                let _ = strip(&b, f);
            }
        }
    }
}
