use super::*;
use image::{ColorType, ImageDecoder, ImageEncoder, ImageFormat};
use proptest::prelude::*;
use std::io::Cursor;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

// -- Fixtures ----------------------------------------------------------

/// A 5x3 lossy (VP8, simple format) WebP made with `cwebp -q 50` from a
/// 5x3 PPM; the image crate cannot encode lossy WebP.
const LOSSY_VP8_5X3: &[u8] = &[
    0x52, 0x49, 0x46, 0x46, 0x48, 0x00, 0x00, 0x00, 0x57, 0x45, 0x42, 0x50, 0x56, 0x50, 0x38, 0x20,
    0x3c, 0x00, 0x00, 0x00, 0xb0, 0x01, 0x00, 0x9d, 0x01, 0x2a, 0x05, 0x00, 0x03, 0x00, 0x02, 0xc0,
    0x4c, 0x25, 0xa8, 0x02, 0x74, 0x01, 0x0e, 0xfe, 0x02, 0xec, 0x00, 0xfe, 0x89, 0x4c, 0xc5, 0x3d,
    0x65, 0x89, 0x45, 0xac, 0x8b, 0xf0, 0x1b, 0x5a, 0x06, 0x21, 0xba, 0xbc, 0x3c, 0x10, 0xed, 0x12,
    0xff, 0x10, 0x1c, 0xbf, 0x30, 0x22, 0xe3, 0xfc, 0x1c, 0x6e, 0xbb, 0xff, 0x41, 0x7b, 0xc0, 0x00,
];

/// A 4x4 lossy WebP with alpha (extended: VP8X + ALPH + VP8; the ALPH
/// payload is odd, so it carries a pad byte) made with `cwebp -q 50`
/// from a 4x4 RGBA PAM.
const LOSSY_ALPHA_VP8X_4X4: &[u8] = &[
    0x52, 0x49, 0x46, 0x46, 0x74, 0x00, 0x00, 0x00, 0x57, 0x45, 0x42, 0x50, 0x56, 0x50, 0x38, 0x58,
    0x0a, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x00, 0x41, 0x4c,
    0x50, 0x48, 0x11, 0x00, 0x00, 0x00, 0x00, 0x5a, 0xff, 0x5a, 0xff, 0xff, 0x5a, 0xff, 0x5a, 0x5a,
    0xff, 0x5a, 0xff, 0xff, 0x5a, 0xff, 0x5a, 0x00, 0x56, 0x50, 0x38, 0x20, 0x3c, 0x00, 0x00, 0x00,
    0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x04, 0x00, 0x04, 0x00, 0x02, 0xc0, 0x4c, 0x25, 0xa0, 0x02,
    0x74, 0x4c, 0x80, 0x01, 0xd5, 0xad, 0xc3, 0x6c, 0x00, 0x00, 0xfe, 0xd2, 0x6d, 0x05, 0xbc, 0x9a,
    0x81, 0xb5, 0x45, 0x03, 0xce, 0xba, 0x6e, 0x3f, 0xa6, 0x6b, 0x23, 0x6f, 0xdc, 0x40, 0x6f, 0x72,
    0xbe, 0x30, 0xe9, 0xcd, 0xcd, 0x45, 0x41, 0x8f, 0x3a, 0x40, 0x00, 0x00,
];

/// A big-endian EXIF block written out by hand: IFD0 with Make "Can"
/// (inline), Artist "Bob\0\0" at 50 and Copyright "(c) 2024\0\0" at 56.
const MM_EXIF: &[u8] = &[
    b'M', b'M', 0x00, 0x2A, 0x00, 0x00, 0x00, 0x08, // header, IFD0 at 8
    0x00, 0x03, // three entries
    0x01, 0x0F, 0x00, 0x02, 0x00, 0x00, 0x00, 0x04, b'C', b'a', b'n', 0x00, // Make
    0x01, 0x3B, 0x00, 0x02, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x32, // Artist
    0x82, 0x98, 0x00, 0x02, 0x00, 0x00, 0x00, 0x0A, 0x00, 0x00, 0x00, 0x38, // Copyright
    0x00, 0x00, 0x00, 0x00, // no next IFD
    b'B', b'o', b'b', 0x00, 0x00, 0x00, // 50: Artist + pad
    b'(', b'c', b')', b' ', b'2', b'0', b'2', b'4', 0x00, 0x00, // 56: Copyright
];

fn mm_expected() -> Copyright {
    Copyright {
        copyright: Some("(c) 2024".into()),
        artist: Some("Bob".into()),
    }
}

fn sample() -> Copyright {
    Copyright {
        copyright: Some("© 2024 Jane Doe. All rights reserved.".into()),
        artist: Some("Jane Doe".into()),
    }
}

fn rgb(w: u32, h: u32) -> Vec<u8> {
    (0..w * h)
        .flat_map(|i| [(i * 7) as u8, (i * 13) as u8, (i * 29) as u8])
        .collect()
}

fn rgba(w: u32, h: u32) -> Vec<u8> {
    (0..w * h)
        .flat_map(|i| {
            [
                (i * 7) as u8,
                (i * 13) as u8,
                (i * 29) as u8,
                (i * 50) as u8,
            ]
        })
        .collect()
}

fn encode(format: ImageFormat, w: u32, h: u32, alpha: bool, exif: Option<&[u8]>) -> Vec<u8> {
    let mut buf = Vec::new();
    let (pixels, color) = if alpha {
        (rgba(w, h), image::ExtendedColorType::Rgba8)
    } else {
        (rgb(w, h), image::ExtendedColorType::Rgb8)
    };
    match format {
        ImageFormat::Jpeg => {
            let mut e = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 85);
            if let Some(x) = exif {
                e.set_exif_metadata(x.to_vec()).unwrap();
            }
            e.write_image(&pixels, w, h, color).unwrap();
        }
        ImageFormat::Png => {
            let mut e = image::codecs::png::PngEncoder::new(&mut buf);
            if let Some(x) = exif {
                e.set_exif_metadata(x.to_vec()).unwrap();
            }
            e.write_image(&pixels, w, h, color).unwrap();
        }
        ImageFormat::WebP => {
            let mut e = image::codecs::webp::WebPEncoder::new_lossless(&mut buf);
            if let Some(x) = exif {
                e.set_exif_metadata(x.to_vec()).unwrap();
            }
            e.write_image(&pixels, w, h, color).unwrap();
        }
        _ => unreachable!(),
    }
    buf
}

fn decode(bytes: &[u8], format: ImageFormat) -> (u32, u32, ColorType) {
    let img = image::load_from_memory_with_format(bytes, format).expect("output decodes");
    (img.width(), img.height(), img.color())
}

/// The EXIF block as the image crate's own decoders find it.
fn image_crate_exif(bytes: &[u8]) -> Option<Vec<u8>> {
    let reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .unwrap();
    let mut decoder = reader.into_decoder().unwrap();
    decoder.exif_metadata().unwrap()
}

// -- Independent test-side readers ---------------------------------------

/// A separate, naive IFD0 reader: the raw bytes of an ASCII tag up to
/// its first NUL.
fn naive_ifd0_ascii(t: &[u8], want: u16) -> Option<String> {
    let big = &t[0..2] == b"MM";
    let r16 = |o: usize| {
        if big {
            (t[o] as u16) << 8 | t[o + 1] as u16
        } else {
            (t[o + 1] as u16) << 8 | t[o] as u16
        }
    };
    let r32 = |o: usize| {
        if big {
            (r16(o) as u32) << 16 | r16(o + 2) as u32
        } else {
            (r16(o + 2) as u32) << 16 | r16(o) as u32
        }
    };
    let ifd = r32(4) as usize;
    for i in 0..r16(ifd) as usize {
        let e = ifd + 2 + 12 * i;
        if r16(e) == want {
            assert_eq!(r16(e + 2), 2, "tag type ASCII");
            let n = r32(e + 4) as usize;
            let at = if n <= 4 { e + 8 } else { r32(e + 8) as usize };
            let raw = &t[at..at + n];
            assert_eq!(raw.last(), Some(&0), "ASCII value NUL-terminated");
            let end = raw.iter().position(|&b| b == 0).unwrap();
            return Some(String::from_utf8(raw[..end].to_vec()).unwrap());
        }
    }
    None
}

/// A bitwise CRC-32 (not crc32fast) to check PNG chunks.
fn naive_crc(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// PNG chunk names, checking every CRC on the way.
fn naive_png_chunks(f: &[u8]) -> Vec<(String, Vec<u8>)> {
    assert_eq!(&f[..8], PNG_SIGNATURE);
    let mut out = Vec::new();
    let mut p = 8;
    while p < f.len() {
        let n = u32::from_be_bytes(f[p..p + 4].try_into().unwrap()) as usize;
        let kind = String::from_utf8(f[p + 4..p + 8].to_vec()).unwrap();
        let crc = u32::from_be_bytes(f[p + 8 + n..p + 12 + n].try_into().unwrap());
        assert_eq!(crc, naive_crc(&f[p + 4..p + 8 + n]), "CRC of {kind}");
        out.push((kind, f[p + 8..p + 8 + n].to_vec()));
        p += 12 + n;
    }
    out
}

/// WebP chunks, checking the RIFF size and even alignment.
fn naive_webp_chunks(f: &[u8]) -> Vec<(String, Vec<u8>)> {
    assert_eq!(&f[..4], b"RIFF");
    assert_eq!(
        u32::from_le_bytes(f[4..8].try_into().unwrap()) as usize,
        f.len() - 8
    );
    assert_eq!(&f[8..12], b"WEBP");
    let mut out = Vec::new();
    let mut p = 12;
    while p < f.len() {
        let n = u32::from_le_bytes(f[p + 4..p + 8].try_into().unwrap()) as usize;
        out.push((
            String::from_utf8(f[p..p + 4].to_vec()).unwrap(),
            f[p + 8..p + 8 + n].to_vec(),
        ));
        p += 8 + n + n % 2;
    }
    assert_eq!(p, f.len(), "chunks padded and fill the RIFF exactly");
    out
}

/// JPEG segments before SOS as (marker, payload).
fn naive_jpeg_segments(f: &[u8]) -> Vec<(u8, Vec<u8>)> {
    assert_eq!(&f[..2], &[0xFF, 0xD8]);
    let mut out = Vec::new();
    let mut p = 2;
    loop {
        assert_eq!(f[p], 0xFF);
        let m = f[p + 1];
        if m == 0xDA {
            return out;
        }
        let n = u16::from_be_bytes([f[p + 2], f[p + 3]]) as usize;
        out.push((m, f[p + 4..p + 2 + n].to_vec()));
        p += 2 + n;
    }
}

static FILE_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// (group, tag, value) lines from exiftool, or `None` when it is not
/// installed (a hard failure when PIXGATE_REQUIRE_EXIFTOOL is set).
fn exiftool(bytes: &[u8], ext: &str) -> Option<Vec<(String, String, String)>> {
    let n = FILE_COUNTER.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!(
        "pixgate-copyright-test-{}-{n}.{ext}",
        std::process::id()
    ));
    std::fs::write(&path, bytes).unwrap();
    let result = std::process::Command::new("exiftool")
        .args([
            "-a",
            "-G1",
            "-s",
            "-Copyright",
            "-Artist",
            "-Warning",
            "-Error",
        ])
        .arg(&path)
        .output();
    let _ = std::fs::remove_file(&path);
    let output = match result {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var_os("PIXGATE_REQUIRE_EXIFTOOL").is_none(),
                "exiftool required but not installed"
            );
            eprintln!("exiftool not installed: independent check skipped");
            return None;
        }
        Err(e) => panic!("exiftool failed to run: {e}"),
    };
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    Some(
        text.lines()
            .filter_map(|line| {
                let (left, value) = line.split_once(" : ")?;
                let mut words = left.split_whitespace();
                let group = words.next()?.trim_matches(['[', ']']).to_owned();
                let tag = words.next()?.to_owned();
                Some((group, tag, value.trim_end().to_owned()))
            })
            .collect(),
    )
}

/// exiftool sees exactly `c` in IFD0 and reports no warning or error.
fn assert_exiftool(bytes: &[u8], ext: &str, c: &Copyright) {
    let Some(tags) = exiftool(bytes, ext) else {
        return;
    };
    let mut want = Vec::new();
    if let Some(v) = &c.copyright {
        want.push(("IFD0".to_owned(), "Copyright".to_owned(), v.clone()));
    }
    if let Some(v) = &c.artist {
        want.push(("IFD0".to_owned(), "Artist".to_owned(), v.clone()));
    }
    for w in &want {
        assert!(tags.contains(w), "exiftool lacks {w:?}: {tags:?}");
    }
    assert!(
        !tags.iter().any(|(_, t, _)| t == "Warning" || t == "Error"),
        "exiftool complained: {tags:?}"
    );
}

fn assert_naive_exif(blob: &[u8], c: &Copyright) {
    assert_eq!(naive_ifd0_ascii(blob, 0x8298), c.copyright);
    assert_eq!(naive_ifd0_ascii(blob, 0x013B), c.artist);
}

// -- JPEG ----------------------------------------------------------------

#[test]
fn jpeg_roundtrip_after_jfif() {
    let src = encode(ImageFormat::Jpeg, 33, 17, false, None);
    assert_eq!(read(&src), None);
    let out = insert(&src, &sample()).unwrap();
    assert_eq!(read(&out), Some(sample()));
    let segs = naive_jpeg_segments(&out);
    assert_eq!(segs[0].0, 0xE0, "APP0 stays first");
    assert!(segs[0].1.starts_with(b"JFIF\0"));
    assert_eq!(segs[1].0, 0xE1, "APP1 right after APP0 JFIF");
    assert!(segs[1].1.starts_with(b"Exif\0\0"));
    assert_eq!(segs.iter().filter(|s| s.0 == 0xE1).count(), 1);
    assert_naive_exif(&image_crate_exif(&out).unwrap(), &sample());
    assert_exiftool(&out, "jpg", &sample());
    assert_eq!(
        decode(&out, ImageFormat::Jpeg),
        decode(&src, ImageFormat::Jpeg)
    );
    // Everything from the first non-APP segment on is untouched.
    let tail = src.len() - 20;
    assert!(out.ends_with(&src[20..]), "rest copied ({tail} bytes)");
}

#[test]
fn jpeg_without_app0_gets_app1_right_after_soi() {
    let src = encode(ImageFormat::Jpeg, 8, 8, false, None);
    let app0_len = u16::from_be_bytes([src[4], src[5]]) as usize;
    let mut bare = vec![0xFF, 0xD8];
    bare.extend_from_slice(&src[4 + app0_len..]);
    let c = Copyright {
        copyright: Some("ACME".into()),
        artist: None,
    };
    let out = insert(&bare, &c).unwrap();
    assert_eq!(&out[2..4], &[0xFF, 0xE1]);
    assert_eq!(&out[6..12], b"Exif\0\0");
    assert_eq!(read(&out), Some(c.clone()));
    assert_exiftool(&out, "jpg", &c);
    assert_eq!(decode(&out, ImageFormat::Jpeg).0, 8);
}

#[test]
fn jpeg_existing_exif_is_replaced() {
    let src = encode(ImageFormat::Jpeg, 9, 9, false, Some(MM_EXIF));
    assert_eq!(read(&src), Some(mm_expected()));
    let out = insert(&src, &sample()).unwrap();
    let exif_segs = naive_jpeg_segments(&out)
        .into_iter()
        .filter(|s| s.0 == 0xE1 && s.1.starts_with(b"Exif\0\0"))
        .count();
    assert_eq!(exif_segs, 1);
    assert_eq!(read(&out), Some(sample()));
    assert_exiftool(&out, "jpg", &sample());
    assert_eq!(decode(&out, ImageFormat::Jpeg).0, 9);
}

#[test]
fn big_endian_exif_made_by_hand() {
    assert_eq!(parse_tiff(MM_EXIF), Some(mm_expected()));
    // The hand-made block, carried by the image crate's JPEG encoder,
    // is read by read() and by exiftool alike.
    let jpeg = encode(ImageFormat::Jpeg, 8, 8, false, Some(MM_EXIF));
    assert_eq!(read(&jpeg), Some(mm_expected()));
    assert_exiftool(&jpeg, "jpg", &mm_expected());
    // ... and in PNG and WebP containers.
    let png = encode(ImageFormat::Png, 4, 4, false, Some(MM_EXIF));
    assert_eq!(read(&png), Some(mm_expected()));
    let webp = encode(ImageFormat::WebP, 4, 4, false, Some(MM_EXIF));
    assert_eq!(read(&webp), Some(mm_expected()));
    assert_exiftool(&webp, "webp", &mm_expected());
}

#[test]
fn jpeg_insert_rejects_broken_structure() {
    let src = encode(ImageFormat::Jpeg, 8, 8, false, None);
    let sos = src.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
    for cut in [0, 1, 2, 3, 5, 10, 19, 20, sos - 1, sos] {
        assert!(insert(&src[..cut], &sample()).is_err(), "cut at {cut}");
    }
    let mut bad = src.clone();
    bad[4] = 0xFF; // APP0 length now runs past the end
    assert!(insert(&bad, &sample()).is_err());
}

// -- PNG -----------------------------------------------------------------

#[test]
fn png_roundtrip() {
    let src = encode(ImageFormat::Png, 21, 13, true, None);
    let out = insert(&src, &sample()).unwrap();
    assert_eq!(read(&out), Some(sample()));
    let chunks = naive_png_chunks(&out);
    let names: Vec<&str> = chunks.iter().map(|c| c.0.as_str()).collect();
    let idat = names.iter().position(|&n| n == "IDAT").unwrap();
    assert_eq!(names[idat - 1], "eXIf");
    assert_eq!(names.iter().filter(|&&n| n == "eXIf").count(), 1);
    assert_eq!(names.last(), Some(&"IEND"));
    assert_eq!(chunks[idat - 1].1, exif_blob(&sample()));
    assert_naive_exif(&image_crate_exif(&out).unwrap(), &sample());
    assert_exiftool(&out, "png", &sample());
    assert_eq!(decode(&out, ImageFormat::Png), (21, 13, ColorType::Rgba8));
}

#[test]
fn png_existing_exif_is_replaced() {
    let src = encode(ImageFormat::Png, 5, 5, false, Some(MM_EXIF));
    let out = insert(&src, &sample()).unwrap();
    let chunks = naive_png_chunks(&out);
    assert_eq!(chunks.iter().filter(|c| c.0 == "eXIf").count(), 1);
    assert_eq!(read(&out), Some(sample()));
    assert_eq!(decode(&out, ImageFormat::Png).0, 5);
}

/// `base` with extra chunks put right before its first IDAT.
fn png_with_chunks(base: &[u8], extra: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
    let idat = base.windows(4).position(|w| w == b"IDAT").unwrap() - 4;
    let mut out = base[..idat].to_vec();
    for (kind, data) in extra {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut typed = kind.to_vec();
        typed.extend_from_slice(data);
        out.extend_from_slice(&typed);
        out.extend_from_slice(&naive_crc(&typed).to_be_bytes());
    }
    out.extend_from_slice(&base[idat..]);
    out
}

#[test]
fn png_text_chunks() {
    let base = encode(ImageFormat::Png, 3, 3, false, None);
    let text = png_with_chunks(
        &base,
        &[
            (b"tEXt", b"Comment\0not this".to_vec()),
            (b"tEXt", b"Copyright\0(c) Caf\xe9 Ltd  ".to_vec()), // Latin-1
            (b"iTXt", b"Author\0\0\0de\0Autor\0J\xc3\xbcrgen".to_vec()),
        ],
    );
    let both = Copyright {
        copyright: Some("(c) Café Ltd".into()),
        artist: Some("Jürgen".into()),
    };
    assert_eq!(read(&text), Some(both));
    assert_eq!(decode(&text, ImageFormat::Png).0, 3);
    // EXIF wins over text; text fills what EXIF lacks.
    let only_copyright = Copyright {
        copyright: Some("EXIF owner".into()),
        artist: None,
    };
    let mixed = png_with_chunks(
        &base,
        &[
            (b"tEXt", b"Copyright\0text owner".to_vec()),
            (b"tEXt", b"Author\0text author".to_vec()),
            (b"eXIf", exif_blob(&only_copyright)),
        ],
    );
    assert_eq!(
        read(&mixed),
        Some(Copyright {
            copyright: Some("EXIF owner".into()),
            artist: Some("text author".into()),
        })
    );
    // Compressed iTXt and zTXt are skipped, blank values are absent.
    let skipped = png_with_chunks(
        &base,
        &[
            (b"iTXt", b"Copyright\0\x01\0\0\0x\x9c".to_vec()),
            (b"zTXt", b"Author\0\0x\x9c".to_vec()),
            (b"tEXt", b"Author\0   ".to_vec()),
        ],
    );
    assert_eq!(read(&skipped), None);
}

#[test]
fn apng_exif_goes_before_first_fctl() {
    let base = encode(ImageFormat::Png, 2, 2, false, None);
    let mut fctl = vec![0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 2];
    fctl.extend_from_slice(&[0; 14]);
    let apng = png_with_chunks(
        &base,
        &[(b"acTL", vec![0, 0, 0, 1, 0, 0, 0, 0]), (b"fcTL", fctl)],
    );
    let out = insert(&apng, &sample()).unwrap();
    let names: Vec<String> = naive_png_chunks(&out).into_iter().map(|c| c.0).collect();
    assert_eq!(names[1..5], ["acTL", "eXIf", "fcTL", "IDAT"]);
    assert_eq!(read(&out), Some(sample()));
}

#[test]
fn png_insert_rejects_broken_structure() {
    let src = encode(ImageFormat::Png, 4, 4, false, None);
    let idat = src.windows(4).position(|w| w == b"IDAT").unwrap();
    for cut in [0, 7, 8, 12, 20, 33, idat + 2] {
        assert!(insert(&src[..cut], &sample()).is_err(), "cut at {cut}");
    }
    // No IDAT at all: signature + IHDR + IEND.
    let mut no_idat = src[..33].to_vec();
    no_idat.extend_from_slice(&src[src.len() - 12..]);
    assert_eq!(
        insert(&no_idat, &sample()),
        Err("malformed PNG: no IDAT chunk")
    );
}

// -- WebP ----------------------------------------------------------------

fn vp8x_of(out: &[u8]) -> (u8, u32, u32) {
    let chunks = naive_webp_chunks(out);
    assert_eq!(chunks[0].0, "VP8X");
    let p = &chunks[0].1;
    assert_eq!(p.len(), 10);
    let w = u32::from_le_bytes([p[4], p[5], p[6], 0]) + 1;
    let h = u32::from_le_bytes([p[7], p[8], p[9], 0]) + 1;
    (p[0], w, h)
}

#[test]
fn webp_lossless_simple_rgb() {
    let src = encode(ImageFormat::WebP, 37, 11, false, None);
    assert_eq!(
        &src[12..16],
        b"VP8L",
        "the image crate writes a simple VP8L file"
    );
    let out = insert(&src, &sample()).unwrap();
    assert_eq!(read(&out), Some(sample()));
    assert_eq!(vp8x_of(&out), (0x08, 37, 11));
    let names: Vec<String> = naive_webp_chunks(&out).into_iter().map(|c| c.0).collect();
    assert_eq!(names, ["VP8X", "VP8L", "EXIF"]);
    assert_naive_exif(&image_crate_exif(&out).unwrap(), &sample());
    assert_exiftool(&out, "webp", &sample());
    assert_eq!(
        decode(&out, ImageFormat::WebP),
        decode(&src, ImageFormat::WebP)
    );
}

#[test]
fn webp_lossless_simple_with_alpha() {
    let src = encode(ImageFormat::WebP, 6, 300, true, None);
    let out = insert(&src, &sample()).unwrap();
    assert_eq!(vp8x_of(&out), (0x18, 6, 300), "EXIF and ALPHA flags");
    assert_eq!(read(&out), Some(sample()));
    assert_exiftool(&out, "webp", &sample());
    assert_eq!(decode(&out, ImageFormat::WebP), (6, 300, ColorType::Rgba8));
}

#[test]
fn webp_lossy_simple_vp8() {
    assert_eq!(
        decode(LOSSY_VP8_5X3, ImageFormat::WebP),
        (5, 3, ColorType::Rgb8)
    );
    let out = insert(LOSSY_VP8_5X3, &sample()).unwrap();
    assert_eq!(vp8x_of(&out), (0x08, 5, 3));
    let names: Vec<String> = naive_webp_chunks(&out).into_iter().map(|c| c.0).collect();
    assert_eq!(names, ["VP8X", "VP8 ", "EXIF"]);
    assert_eq!(read(&out), Some(sample()));
    assert_naive_exif(&image_crate_exif(&out).unwrap(), &sample());
    assert_exiftool(&out, "webp", &sample());
    assert_eq!(decode(&out, ImageFormat::WebP), (5, 3, ColorType::Rgb8));
    // A VP8 inter frame (bit 0 of the frame tag set) is refused.
    let mut inter = LOSSY_VP8_5X3.to_vec();
    inter[20] |= 1;
    assert!(insert(&inter, &sample()).is_err());
}

#[test]
fn webp_existing_vp8x_gets_flag_and_chunk_at_end() {
    let out = insert(LOSSY_ALPHA_VP8X_4X4, &sample()).unwrap();
    assert_eq!(vp8x_of(&out), (0x18, 4, 4));
    let names: Vec<String> = naive_webp_chunks(&out).into_iter().map(|c| c.0).collect();
    assert_eq!(names, ["VP8X", "ALPH", "VP8 ", "EXIF"]);
    assert_eq!(read(&out), Some(sample()));
    assert_exiftool(&out, "webp", &sample());
    assert_eq!(decode(&out, ImageFormat::WebP), (4, 4, ColorType::Rgba8));
    // An image-crate VP8X (because of an ICC profile) works as well.
    let mut src = Vec::new();
    let mut e = image::codecs::webp::WebPEncoder::new_lossless(&mut src);
    e.set_icc_profile(vec![0; 9]).unwrap();
    e.write_image(&rgb(7, 5), 7, 5, image::ExtendedColorType::Rgb8)
        .unwrap();
    let out = insert(&src, &sample()).unwrap();
    assert_eq!(vp8x_of(&out).0, 0x20 | 0x08, "ICC flag kept, EXIF flag set");
    assert_eq!(read(&out), Some(sample()));
    assert_eq!(decode(&out, ImageFormat::WebP).0, 7);
}

#[test]
fn webp_existing_exif_replaced_and_xmp_order() {
    let src = encode(ImageFormat::WebP, 4, 4, false, Some(MM_EXIF));
    let mut body = naive_webp_chunks(&src);
    body.push(("XMP ".into(), b"<x:xmpmeta/>".to_vec()));
    let rebuilt = riff(&body);
    let out = insert(&rebuilt, &sample()).unwrap();
    let names: Vec<String> = naive_webp_chunks(&out).into_iter().map(|c| c.0).collect();
    assert_eq!(names, ["VP8X", "VP8L", "EXIF", "XMP "]);
    assert_eq!(read(&out), Some(sample()));
    assert_eq!(decode(&out, ImageFormat::WebP).0, 4);
}

/// A WebP file from (fourcc, payload) chunks.
fn riff(chunks: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut body = b"WEBP".to_vec();
    for (name, data) in chunks {
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(data);
        if data.len() % 2 == 1 {
            body.push(0);
        }
    }
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

#[test]
fn webp_exif_with_and_without_prefix() {
    let mut chunks = naive_webp_chunks(LOSSY_ALPHA_VP8X_4X4);
    chunks[0].1[0] |= 0x08;
    let mut with_prefix = b"Exif\0\0".to_vec();
    with_prefix.extend_from_slice(MM_EXIF);
    chunks.push(("EXIF".into(), with_prefix));
    let file = riff(&chunks);
    assert_eq!(read(&file), Some(mm_expected()));
    chunks.last_mut().unwrap().1 = MM_EXIF.to_vec();
    assert_eq!(read(&riff(&chunks)), Some(mm_expected()));
    // A manually built VP8X + VP8L file goes through insert too.
    let simple = naive_webp_chunks(&encode(ImageFormat::WebP, 3, 2, false, None));
    let vp8x = ("VP8X".to_owned(), vec![0, 0, 0, 0, 2, 0, 0, 1, 0, 0]);
    let hand = riff(&[vp8x, simple[0].clone()]);
    let out = insert(&hand, &sample()).unwrap();
    assert_eq!(vp8x_of(&out), (0x08, 3, 2));
    assert_eq!(read(&out), Some(sample()));
    assert_eq!(decode(&out, ImageFormat::WebP).0, 3);
}

#[test]
fn webp_insert_rejects_broken_structure() {
    let src = encode(ImageFormat::WebP, 4, 4, false, None);
    for cut in [0, 4, 11, 12, 19, 20, src.len() - 1] {
        assert!(insert(&src[..cut], &sample()).is_err(), "cut at {cut}");
    }
    let mut bad_sig = src.clone();
    bad_sig[20] = 0x2E; // VP8L signature
    assert!(insert(&bad_sig, &sample()).is_err());
    let only_alph = riff(&[("ALPH".into(), vec![0; 3])]);
    assert!(insert(&only_alph, &sample()).is_err());
}

// -- Other formats, values, malformed input -----------------------------

#[test]
fn other_formats_and_empty_copyright_are_refused() {
    let c = sample();
    let gif = b"GIF89a\x01\0\x01\0\0\0\0;".to_vec();
    assert_eq!(
        insert(&gif, &c),
        Err("GIF output cannot carry the copyright")
    );
    let avif = b"\0\0\0\x20ftypavif\0\0\0\0avifmif1miaf".to_vec();
    assert_eq!(
        insert(&avif, &c),
        Err("AVIF output cannot carry the copyright")
    );
    assert!(insert(&[0xFF, 0x0A, 0xFA, 0x7F], &c)
        .unwrap_err()
        .contains("JPEG XL"));
    let jxl_box = b"\0\0\0\x0CJXL \x0D\x0A\x87\x0A\0\0".to_vec();
    assert!(insert(&jxl_box, &c).unwrap_err().contains("JPEG XL"));
    assert_eq!(insert(b"hello", &c), Err("unrecognized output format"));
    assert_eq!(insert(&[], &c), Err("unrecognized output format"));
    let png = encode(ImageFormat::Png, 2, 2, false, None);
    assert!(insert(&png, &Copyright::default()).is_err());
    let blank = Copyright {
        copyright: Some(String::new()),
        artist: Some(String::new()),
    };
    assert!(blank.is_empty());
    assert!(insert(&png, &blank).is_err());
    for f in [gif, avif, jxl_box] {
        assert_eq!(read(&f), None);
    }
}

#[test]
fn exif_blob_layout() {
    let c = Copyright {
        copyright: Some("ACME Corp".into()),
        artist: Some("Al".into()),
    };
    #[rustfmt::skip]
    let want: Vec<u8> = [
        &b"II\x2A\0\x08\0\0\0"[..],
        &[2, 0],
        &[0x3B, 0x01, 2, 0, 3, 0, 0, 0, b'A', b'l', 0, 0], // Artist inline
        &[0x98, 0x82, 2, 0, 10, 0, 0, 0, 38, 0, 0, 0],     // Copyright at 38
        &[0, 0, 0, 0],
        b"ACME Corp\0",
    ]
    .concat();
    assert_eq!(exif_blob(&c), want);
    assert_eq!(
        exif_blob(&Copyright::default()),
        b"II\x2A\0\x08\0\0\0\0\0\0\0\0\0"
    );
    assert_eq!(parse_tiff(&exif_blob(&Copyright::default())), None);
    // Odd-length values are padded so the next one starts even.
    let long = Copyright {
        copyright: Some("odd".repeat(3)),
        artist: Some("abcde".into()),
    };
    let blob = exif_blob(&long);
    assert_eq!(&blob[18..22], &38u32.to_le_bytes()); // artist
    assert_eq!(&blob[30..34], &44u32.to_le_bytes()); // 38 + 6, even
    assert_eq!(parse_tiff(&blob), Some(long));
}

/// A little-endian TIFF with one entry holding `raw` (type `kind`).
fn one_tag(tag: u16, kind: u16, raw: &[u8]) -> Vec<u8> {
    let mut t = b"II\x2A\0\x08\0\0\0\x01\0".to_vec();
    t.extend_from_slice(&tag.to_le_bytes());
    t.extend_from_slice(&kind.to_le_bytes());
    t.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    if raw.len() <= 4 {
        let mut inline = raw.to_vec();
        inline.resize(4, 0);
        t.extend_from_slice(&inline);
    } else {
        t.extend_from_slice(&26u32.to_le_bytes());
    }
    t.extend_from_slice(&[0; 4]);
    if raw.len() > 4 {
        t.extend_from_slice(raw);
    }
    t
}

fn copyright_of(raw: &[u8]) -> Option<String> {
    parse_tiff(&one_tag(0x8298, 2, raw)).and_then(|c| c.copyright)
}

#[test]
fn value_cleaning() {
    assert_eq!(copyright_of(b"Me  \0\0 \0"), Some("Me".into()));
    assert_eq!(copyright_of(b"M\0"), Some("M".into()));
    assert_eq!(copyright_of(b"  \0\0"), None);
    assert_eq!(copyright_of(b""), None);
    // EXIF photographer/editor form.
    assert_eq!(copyright_of(b"Ph\0Ed\0junk"), Some("Ph\0Ed".into()));
    assert_eq!(copyright_of(b" \0Editor\0"), Some(" \0Editor".into()));
    assert_eq!(copyright_of(b"Ph\0 \0junk"), Some("Ph".into()));
    // Artist stops at its first NUL.
    let artist = parse_tiff(&one_tag(0x013B, 2, b"Al\0Bo\0")).unwrap();
    assert_eq!(artist.artist, Some("Al".into()));
    assert_eq!(artist.copyright, None);
    // Non-UTF-8 is replaced.
    assert_eq!(
        copyright_of(b"Caf\xe9 \xff\0"),
        Some("Caf\u{FFFD} \u{FFFD}".into())
    );
    // BYTE and UNDEFINED are read like ASCII; SHORT is not.
    assert!(parse_tiff(&one_tag(0x8298, 7, b"Undefined")).is_some());
    assert!(parse_tiff(&one_tag(0x8298, 1, b"Byte")).is_some());
    assert_eq!(parse_tiff(&one_tag(0x8298, 3, b"Shor")), None);
    // Capped at 1024 bytes on a character boundary.
    let long = "é".repeat(700); // 1400 bytes
    let capped = copyright_of(long.as_bytes()).unwrap();
    assert_eq!(capped.len(), 1024);
    assert_eq!(capped, "é".repeat(512));
    let odd = format!("x{long}");
    assert_eq!(copyright_of(odd.as_bytes()).unwrap().len(), 1023);
    assert_eq!(copyright_of(&[b'a'; 5000]).unwrap().len(), 1024);
    // exif_blob caps on write as well.
    let big = Copyright {
        copyright: Some("z".repeat(3000)),
        artist: None,
    };
    assert_eq!(
        parse_tiff(&exif_blob(&big))
            .unwrap()
            .copyright
            .unwrap()
            .len(),
        1024
    );
}

#[test]
fn malformed_exif_blocks() {
    let good = exif_blob(&sample());
    assert_eq!(parse_tiff(&good), Some(sample()));
    // Bad header, IFD0 offset, entry table cut short.
    assert_eq!(parse_tiff(b"XX\x2A\0\x08\0\0\0"), None);
    assert_eq!(parse_tiff(b"II\0\x2A\x08\0\0\0\0\0"), None);
    let mut bad = good.clone();
    bad[4] = 4; // IFD0 inside the header
    assert_eq!(parse_tiff(&bad), None);
    let mut bad = good.clone();
    bad[4] = 200; // IFD0 past the end
    assert_eq!(parse_tiff(&bad), None);
    let mut bad = good.clone();
    bad[8] = 50; // 50 entries do not fit
    assert_eq!(parse_tiff(&bad), None);
    // One value outside the block: that tag alone is dropped.
    let mut bad = good.clone();
    bad[10 + 12 + 8] = 0xF0; // Copyright value offset
    assert_eq!(
        parse_tiff(&bad),
        Some(Copyright {
            copyright: None,
            artist: sample().artist,
        })
    );
    for cut in 0..good.len() - 1 {
        let got = parse_tiff(&good[..cut]);
        assert_ne!(got, Some(sample()), "cut at {cut}");
    }
}

#[test]
fn truncated_and_garbage_sources() {
    for garbage in [
        &b""[..],
        b"\xFF\xD8",
        b"\xFF\xD8\xFF",
        b"\xFF\xD8\xFF\xE1\x00\x10Exif\0\0II",
        PNG_SIGNATURE,
        b"RIFF\0\0\0\0WEBP",
        b"RIFF\xFF\xFF\xFF\xFFWEBPEXIF\xFF\xFF\xFF\xFF",
        b"II\x2A\0\x08\0\0\0",
        b"not an image at all",
    ] {
        assert_eq!(read(garbage), None, "{garbage:?}");
    }
    // Cut anywhere before the end of the metadata: None; after it the
    // facts found are kept (the image data is not read).
    let c = sample();
    let jpeg = insert(&encode(ImageFormat::Jpeg, 16, 16, false, None), &c).unwrap();
    let app1_end = 20 + 4 + 6 + exif_blob(&c).len();
    assert_eq!(&jpeg[20..22], &[0xFF, 0xE1]);
    let png = insert(&encode(ImageFormat::Png, 16, 16, false, None), &c).unwrap();
    let exif_end = png.windows(4).position(|w| w == b"eXIf").unwrap() + 4 + exif_blob(&c).len() + 4;
    let webp = insert(LOSSY_VP8_5X3, &c).unwrap();
    for (file, meta_end) in [(&jpeg, app1_end), (&png, exif_end), (&webp, webp.len())] {
        for cut in 0..file.len() {
            let want = if cut >= meta_end {
                Some(c.clone())
            } else {
                None
            };
            assert_eq!(read(&file[..cut]), want, "cut at {cut} of {}", file.len());
        }
    }
}

// -- Property tests --------------------------------------------------------

/// Valid files, with and without metadata, to mutate.
fn corpus() -> &'static [Vec<u8>] {
    static CORPUS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let c = sample();
        let jpeg = encode(ImageFormat::Jpeg, 9, 7, false, None);
        let png = encode(ImageFormat::Png, 9, 7, true, None);
        let webp = encode(ImageFormat::WebP, 9, 7, true, None);
        let mut all = vec![
            insert(&jpeg, &c).unwrap(),
            insert(&png, &c).unwrap(),
            insert(&webp, &c).unwrap(),
            insert(LOSSY_VP8_5X3, &c).unwrap(),
            insert(LOSSY_ALPHA_VP8X_4X4, &c).unwrap(),
            encode(ImageFormat::Jpeg, 3, 3, false, Some(MM_EXIF)),
            png_with_chunks(
                &png,
                &[
                    (b"tEXt", b"Copyright\0text".to_vec()),
                    (b"iTXt", b"Author\0\0\0en\0Author\0me".to_vec()),
                ],
            ),
            LOSSY_VP8_5X3.to_vec(),
            LOSSY_ALPHA_VP8X_4X4.to_vec(),
        ];
        all.extend([jpeg, png, webp]);
        all
    })
}

fn cap_1024(s: &str) -> String {
    s.char_indices()
        .take_while(|(i, ch)| i + ch.len_utf8() <= 1024)
        .map(|(_, ch)| ch)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..4096)) {
        let _ = read(&data);
        let _ = insert(&data, &sample());
    }

    #[test]
    fn magic_prefixed_bytes_never_panic(
        kind in 0usize..5,
        data in prop::collection::vec(any::<u8>(), 0..1024),
    ) {
        let mut f: Vec<u8> = match kind {
            0 => vec![0xFF, 0xD8, 0xFF],
            1 => PNG_SIGNATURE.to_vec(),
            2 => {
                let mut h = b"RIFF".to_vec();
                h.extend_from_slice(&(data.len() as u32 + 4).to_le_bytes());
                h.extend_from_slice(b"WEBP");
                h
            }
            3 => b"\xFF\xD8\xFF\xE1\xFF\xFFExif\0\0".to_vec(),
            _ => b"RIFF\xFF\xFF\xFF\x7FWEBPVP8X\x0A\0\0\0".to_vec(),
        };
        f.extend_from_slice(&data);
        let _ = read(&f);
        let _ = parse_tiff(&data);
        let _ = insert(&f, &sample());
    }

    #[test]
    fn mutated_files_never_panic(
        which in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let files = corpus();
        let mut f = files[which.index(files.len())].clone();
        for (at, byte) in flips {
            let i = at.index(f.len());
            f[i] = byte;
        }
        if let Some(cut) = cut {
            f.truncate(cut.index(f.len() + 1));
        }
        let _ = read(&f);
        // Whatever insert accepts, read finds the inserted facts in.
        if let Ok(out) = insert(&f, &sample()) {
            prop_assert_eq!(read(&out), Some(sample()));
        }
    }

    #[test]
    fn roundtrip_any_text(
        copyright in "[^\\x00]{0,1100}",
        artist in "[^\\x00]{0,40}",
        which in 0usize..3,
    ) {
        let c = Copyright { copyright: Some(copyright.clone()), artist: Some(artist.clone()) };
        let base = match which {
            0 => encode(ImageFormat::Jpeg, 2, 2, false, None),
            1 => encode(ImageFormat::Png, 2, 2, false, None),
            _ => LOSSY_VP8_5X3.to_vec(),
        };
        let want = |s: &str| {
            let v = cap_1024(s).trim_end_matches(' ').to_owned();
            if v.is_empty() { None } else { Some(v) }
        };
        let expected = Copyright { copyright: want(&copyright), artist: want(&artist) };
        let expected = if expected.is_empty() { None } else { Some(expected) };
        match insert(&base, &c) {
            Ok(out) => prop_assert_eq!(read(&out), expected),
            Err(_) => prop_assert!(c.is_empty()),
        }
    }
}
