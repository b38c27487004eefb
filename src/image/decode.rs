//! Decoding: pixels out of the source, upright (EXIF orientation applied) and in sRGB (an
//! embedded RGB ICC profile is converted away), normalised to 8-bit Luma, RGB or RGBA. Nothing
//! from the source's metadata survives this step, which is how metadata gets stripped.

use super::format::SourceFormat;
use super::probe::{to_image_format, Probe};
pub use super::shrink::ShrinkTo;
use super::shrink::{dct_numerator, halved};
use super::Reason;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder};
use std::io::Cursor;

/// Decoded, upright, sRGB pixels.
#[derive(Debug)]
pub struct Decoded {
    /// `Luma8`, `Rgb8` or `Rgba8`; `Rgba8` only when some pixel is not fully opaque.
    pub image: DynamicImage,
    /// True when the image has real transparency.
    pub has_alpha: bool,
    /// True when an ICC profile was converted to sRGB.
    pub color_converted: bool,
    /// The EXIF orientation that was applied (1–8; 1 for none).
    pub orientation: u8,
}

/// Decodes `data`, whose header was already checked by [`super::probe::probe`].
pub fn decode(data: &[u8], probe: &Probe) -> Result<Decoded, Reason> {
    decode_for(data, probe, None)
}

/// Decodes `data` for a resize to `target`. JPEGs are decoded by mozjpeg; one that will be
/// shrunk a lot is decoded at a reduced DCT scale (n/8), chosen so the decoded image stays at
/// least `target.margin` times the size the resize needs, and the Lanczos resize does the rest. WebP is
/// decoded whole by libwebp. AVIF and HEIC by libheif ([`super::heif`]). Anything else, and
/// anything those refuse (CMYK JPEG, animation, any libjpeg/libwebp error), is decoded whole
/// by the image crate.
pub fn decode_for(
    data: &[u8],
    probe: &Probe,
    target: Option<ShrinkTo<'_>>,
) -> Result<Decoded, Reason> {
    let Some(format) = to_image_format(probe.format) else {
        // libheif applies the container's rotation itself; EXIF orientation does not apply.
        let h = super::heif::decode(data)?;
        return Ok(upright_srgb(
            h.image,
            Orientation::NoTransforms,
            h.icc,
            probe.format,
        ));
    };
    let mut reader = image::ImageReader::with_format(Cursor::new(data), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(probe.width);
    limits.max_image_height = Some(probe.height);
    // 16-bit RGBA is 8 bytes a pixel; leave room for the decoder's own buffers.
    limits.max_alloc = Some(u64::from(probe.width) * u64::from(probe.height) * 8 + (64 << 20));
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|_| Reason::Undecodable)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let icc = decoder.icc_profile().ok().flatten();
    let scaled = match (probe.format, target) {
        // mozjpeg for every JPEG, at 8/8 when not shrinking much: 5.7 ms whole against
        // 12.6-14.9 ms for the image crate's decoder on the 2 MP photo (docs/benchmarks.md).
        (SourceFormat::Jpeg, spec) => {
            let n = spec.and_then(|s| dct_numerator(probe, orientation, s));
            jpeg_at_scale(data, n.unwrap_or(8))
        }
        // libwebp whole: 29 ms against 67-92 ms for the pure-Rust decoder on the 2 MP photo.
        // Its rescaler was slower still (38 ms to 2x a 512 px fit), so the resize does that.
        // Shrunk to half or less, chroma is upsampled by copying rather than interpolated:
        // the resize averages it anyway.
        (SourceFormat::Webp, to) => webp_whole(data, to.is_some_and(|t| halved(probe, t))),
        _ => None,
    };
    let img = match scaled {
        Some(img) => img,
        None => DynamicImage::from_decoder(decoder).map_err(|e| match e {
            image::ImageError::Limits(_) => Reason::TooManyPixels,
            _ => Reason::Undecodable,
        })?,
    };
    Ok(upright_srgb(img, orientation, icc, probe.format))
}

/// Whether EXIF orientation `o` (1–8) swaps width and height.
pub fn turns_sideways(o: u8) -> bool {
    (5..=8).contains(&o)
}

/// The last decoding steps for every decoder: orientation, 8-bit channels, sRGB.
fn upright_srgb(
    mut img: DynamicImage,
    orientation: Orientation,
    icc: Option<Vec<u8>>,
    format: SourceFormat,
) -> Decoded {
    img.apply_orientation(orientation);
    let img = normalise(img);
    let (image, color_converted) = match icc {
        Some(icc) if format != SourceFormat::Gif => to_srgb(img, &icc),
        _ => (img, false),
    };
    let has_alpha = image.as_rgba8().is_some();
    Decoded {
        image,
        has_alpha,
        color_converted,
        orientation: orientation.to_exif(),
    }
}

/// Decodes one of pixgate's own outputs (to score it, [`super::auto_quality`]): JPEG with
/// mozjpeg, WebP with libwebp, AVIF with libheif, PNG with the image crate.
pub(crate) fn decode_output(
    data: &[u8],
    format: super::format::OutputFormat,
) -> Option<DynamicImage> {
    use super::format::OutputFormat as F;
    match format {
        F::Jpeg => jpeg_at_scale(data, 8),
        F::Webp => webp_whole(data, false),
        F::Avif => super::heif::decode(data).ok().map(|h| h.image),
        F::Png | F::Gif => image::load_from_memory(data).ok(),
        F::Jxl => jxl(data),
    }
}

/// Decodes a JPEG XL (pixgate's own output, to score it) with jxl-oxide.
#[cfg(feature = "jxl")]
fn jxl(data: &[u8]) -> Option<DynamicImage> {
    let img = jxl_oxide::JxlImage::builder().read(data).ok()?;
    let render = img.render_frame(0).ok()?;
    let fb = render.image_all_channels();
    let (w, h, c) = (fb.width(), fb.height(), fb.channels());
    let px: Vec<u8> = fb
        .buf()
        .iter()
        .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    match c {
        3 => image::RgbImage::from_raw(w as u32, h as u32, px).map(DynamicImage::ImageRgb8),
        4 => image::RgbaImage::from_raw(w as u32, h as u32, px).map(DynamicImage::ImageRgba8),
        _ => None,
    }
}

#[cfg(not(feature = "jxl"))]
fn jxl(_: &[u8]) -> Option<DynamicImage> {
    None
}

/// Decodes a still WebP whole with libwebp. `None` (decode with the image crate instead) for
/// an animation or any libwebp error.
fn webp_whole(data: &[u8], simple_upsampling: bool) -> Option<DynamicImage> {
    use libwebp_sys as ffi;
    // SAFETY: `config` is initialised by libwebp before use; the output buffer is ours, sized
    // to exactly stride × height for the colourspace asked for, and outlives the call;
    // `data` is only read.
    unsafe {
        let mut config: ffi::WebPDecoderConfig = std::mem::zeroed();
        if !ffi::WebPInitDecoderConfig(&mut config) {
            return None;
        }
        let status = ffi::WebPGetFeatures(data.as_ptr(), data.len(), &mut config.input);
        if status != ffi::VP8StatusCode::VP8_STATUS_OK || config.input.has_animation != 0 {
            return None;
        }
        config.options.no_fancy_upsampling = i32::from(simple_upsampling);
        let alpha = config.input.has_alpha != 0;
        let (w, h) = (
            u32::try_from(config.input.width).ok()?,
            u32::try_from(config.input.height).ok()?,
        );
        let channels: usize = if alpha { 4 } else { 3 };
        let stride = w as usize * channels;
        let mut px = vec![0u8; stride.checked_mul(h as usize)?];
        config.output.colorspace = if alpha {
            ffi::WEBP_CSP_MODE::MODE_RGBA
        } else {
            ffi::WEBP_CSP_MODE::MODE_RGB
        };
        config.output.is_external_memory = 1;
        config.output.u.RGBA = ffi::WebPRGBABuffer {
            rgba: px.as_mut_ptr(),
            stride: i32::try_from(stride).ok()?,
            size: px.len(),
        };
        let status = ffi::WebPDecode(data.as_ptr(), data.len(), &mut config);
        ffi::WebPFreeDecBuffer(&mut config.output);
        if status != ffi::VP8StatusCode::VP8_STATUS_OK {
            return None;
        }
        if alpha {
            image::RgbaImage::from_raw(w, h, px).map(DynamicImage::ImageRgba8)
        } else {
            image::RgbImage::from_raw(w, h, px).map(DynamicImage::ImageRgb8)
        }
    }
}

/// Decodes a JPEG at `n`/8 scale (8: whole) with mozjpeg. `None` (decode with the image crate
/// instead) for CMYK or any libjpeg error, which mozjpeg reports by panicking.
fn jpeg_at_scale(data: &[u8], n: u8) -> Option<DynamicImage> {
    let run = || -> Option<DynamicImage> {
        let mut d = mozjpeg::Decompress::new_mem(data).ok()?;
        d.scale(n);
        match d.image().ok()? {
            mozjpeg::decompress::Format::RGB(mut s) => {
                let (w, h) = (s.width() as u32, s.height() as u32);
                let px: Vec<u8> = s.read_scanlines().ok()?;
                s.finish().ok()?;
                image::RgbImage::from_raw(w, h, px).map(DynamicImage::ImageRgb8)
            }
            mozjpeg::decompress::Format::Gray(mut s) => {
                let (w, h) = (s.width() as u32, s.height() as u32);
                let px: Vec<u8> = s.read_scanlines().ok()?;
                s.finish().ok()?;
                image::GrayImage::from_raw(w, h, px).map(DynamicImage::ImageLuma8)
            }
            mozjpeg::decompress::Format::CMYK(_) => None,
        }
    };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
        .ok()
        .flatten()
}

/// 8-bit Luma / RGB / RGBA, dropping an alpha channel that is fully opaque.
fn normalise(img: DynamicImage) -> DynamicImage {
    match img {
        DynamicImage::ImageLuma8(_) | DynamicImage::ImageRgb8(_) => img,
        DynamicImage::ImageLuma16(_) => DynamicImage::ImageLuma8(img.into_luma8()),
        DynamicImage::ImageRgb16(_) | DynamicImage::ImageRgb32F(_) => {
            DynamicImage::ImageRgb8(img.into_rgb8())
        }
        other if !other.has_alpha() => DynamicImage::ImageRgb8(other.into_rgb8()),
        other => {
            let rgba = other.into_rgba8();
            if rgba.pixels().all(|p| p.0[3] == 255) {
                DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(rgba).into_rgb8())
            } else {
                DynamicImage::ImageRgba8(rgba)
            }
        }
    }
}

/// Converts RGB(A) pixels from an embedded profile to sRGB. Gray and CMYK profiles are left
/// alone (the decoder already produced device RGB for CMYK); an unreadable profile is ignored,
/// which is what browsers do.
fn to_srgb(img: DynamicImage, icc: &[u8]) -> (DynamicImage, bool) {
    use moxcms::{ColorProfile, DataColorSpace, Layout, TransformOptions};
    let Ok(profile) = ColorProfile::new_from_slice(icc) else {
        return (img, false);
    };
    if profile.color_space != DataColorSpace::Rgb {
        return (img, false);
    }
    let srgb = ColorProfile::new_srgb();
    let layout = match &img {
        DynamicImage::ImageRgb8(_) => Layout::Rgb,
        DynamicImage::ImageRgba8(_) => Layout::Rgba,
        _ => return (img, false),
    };
    let Ok(t) = profile.create_transform_8bit(layout, &srgb, layout, TransformOptions::default())
    else {
        return (img, false);
    };
    let mut out = img.clone();
    let ok = match (&img, &mut out) {
        (DynamicImage::ImageRgb8(s), DynamicImage::ImageRgb8(d)) => t.transform(s, d).is_ok(),
        (DynamicImage::ImageRgba8(s), DynamicImage::ImageRgba8(d)) => t.transform(s, d).is_ok(),
        _ => false,
    };
    if ok {
        (out, true)
    } else {
        (img, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::probe::{probe, HeaderLimits};
    use crate::image::resize::ResizeSpec;
    use image::{GenericImageView, ImageEncoder, Rgb, RgbImage};

    const L: HeaderLimits = HeaderLimits {
        max_pixels: 1 << 24,
        max_dimension: 8192,
    };

    /// A 600×400 gradient with a soft-edged transparent hole, as lossy WebP.
    fn webp_sample(alpha: bool) -> (Vec<u8>, image::RgbaImage) {
        let img = image::RgbaImage::from_fn(600, 400, |x, y| {
            let d = ((x as i32 - 300).pow(2) + (y as i32 - 200).pow(2)) as f32;
            let a = if alpha {
                (d.sqrt() * 2.0).min(255.0) as u8
            } else {
                255
            };
            image::Rgba([(x * 255 / 600) as u8, (y * 255 / 400) as u8, 128, a])
        });
        let dynimg = if alpha {
            DynamicImage::ImageRgba8(img.clone())
        } else {
            DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(img.clone()).into_rgb8())
        };
        let c = crate::image::config::WebpConfig::default();
        let bytes = crate::image::codec::webp::encode(&dynimg, c, false).expect("webp encode");
        (bytes, img)
    }

    fn shrink(spec: &ResizeSpec) -> ShrinkTo<'_> {
        ShrinkTo { spec, margin: 2.0 }
    }

    fn fit(w: u32) -> ResizeSpec {
        ResizeSpec::inside(Some(w), Some(w))
    }

    #[test]
    fn webp_decoded_by_libwebp_matches_the_pure_rust_decoder() {
        for alpha in [false, true] {
            let (bytes, _) = webp_sample(alpha);
            let p = probe(&bytes, SourceFormat::Webp, L).expect("probe");
            let d = decode_for(&bytes, &p, Some(shrink(&fit(100)))).expect("decode");
            assert_eq!((d.image.width(), d.image.height()), (600, 400));
            assert_eq!(d.has_alpha, alpha);
            let a = d.image.to_rgba8();
            let b = normalise(image::load_from_memory(&bytes).expect("image-webp")).to_rgba8();
            let diff: u64 = a
                .as_raw()
                .iter()
                .zip(b.as_raw())
                .map(|(x, y)| u64::from(x.abs_diff(*y)))
                .sum();
            let mean = diff as f64 / a.as_raw().len() as f64;
            assert!(mean < 2.0, "alpha {alpha}: mean abs diff {mean}");
        }
    }

    #[test]
    fn webp_without_resize_decodes_whole_with_libwebp() {
        let (bytes, src) = webp_sample(true);
        let p = probe(&bytes, SourceFormat::Webp, L).expect("probe");
        let d = decode(&bytes, &p).expect("decode");
        assert_eq!((d.image.width(), d.image.height()), (600, 400));
        let px = d.image.to_rgba8();
        // Lossy, but near the source: the centre is transparent, the corner opaque.
        assert!(
            px.get_pixel(300, 200).0[3] < 40,
            "{:?}",
            px.get_pixel(300, 200)
        );
        assert_eq!(px.get_pixel(0, 0).0[3], src.get_pixel(0, 0).0[3]);
        assert!(webp_whole(b"RIFF\0\0\0\0WEBPVP8 ", false).is_none());
        assert!(webp_whole(&bytes[..bytes.len() / 2], true).is_none());
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
        assert_eq!(a.len(), b.len());
        let sum: u64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| u64::from(x.abs_diff(*y)))
            .sum();
        sum as f64 / a.len() as f64
    }

    #[test]
    fn jpeg_decoded_whole_by_mozjpeg_matches_the_image_crate() {
        for (name, gray) in [
            ("progressive.jpg", false),
            ("meta.jpg", false),
            ("gray.jpg", true),
        ] {
            let bytes = fixture(name);
            let moz = jpeg_at_scale(&bytes, 8).expect("mozjpeg decodes it");
            assert_eq!(matches!(moz, DynamicImage::ImageLuma8(_)), gray, "{name}");
            let reference = image::load_from_memory(&bytes).expect("image crate");
            assert_eq!(moz.dimensions(), reference.dimensions(), "{name}");
            let mean = mean_abs_diff(moz.to_rgb8().as_raw(), reference.to_rgb8().as_raw());
            // Two IDCTs and upsamplers: close, not identical.
            assert!(mean < 1.5, "{name}: mean abs diff {mean}");
        }
    }

    #[test]
    fn cmyk_and_broken_jpegs_fall_back_to_the_image_crate() {
        let cmyk = fixture("cmyk.jpg");
        assert!(
            jpeg_at_scale(&cmyk, 8).is_none(),
            "mozjpeg leaves CMYK alone"
        );
        let p = probe(&cmyk, SourceFormat::Jpeg, L).expect("probe");
        let d = decode(&cmyk, &p).expect("the image crate decodes CMYK");
        assert!(matches!(d.image, DynamicImage::ImageRgb8(_)));
        assert!(jpeg_at_scale(b"\xff\xd8\xff\xe0 not a jpeg", 8).is_none());
    }

    fn png_with_icc(px: [u8; 3], icc: Option<Vec<u8>>) -> Vec<u8> {
        let img = RgbImage::from_pixel(8, 8, Rgb(px));
        let mut out = Vec::new();
        let mut enc = image::codecs::png::PngEncoder::new(&mut out);
        if let Some(icc) = icc {
            enc.set_icc_profile(icc).expect("png takes icc");
        }
        enc.write_image(img.as_raw(), 8, 8, image::ExtendedColorType::Rgb8)
            .expect("encode");
        out
    }

    fn decode_px(data: &[u8]) -> ([u8; 3], bool) {
        let l = HeaderLimits {
            max_pixels: 1 << 20,
            max_dimension: 1024,
        };
        let p = probe(data, SourceFormat::Png, l).expect("probe");
        let d = decode(data, &p).expect("decode");
        let px = d.image.to_rgb8().get_pixel(4, 4).0;
        (px, d.color_converted)
    }

    #[test]
    fn wide_gamut_profile_is_converted_to_srgb() {
        let p3 = moxcms::ColorProfile::new_display_p3()
            .encode()
            .expect("p3 icc");
        let src = [200, 100, 50];
        let (px, converted) = decode_px(&png_with_icc(src, Some(p3)));
        assert!(converted);
        // A saturated P3 orange is more saturated than sRGB can show: red goes up, blue down.
        assert!(px[0] > src[0] + 5 && px[2] < src[2], "{px:?}");
        let (plain, converted) = decode_px(&png_with_icc(src, None));
        assert!(!converted);
        assert_eq!(plain, src);
    }

    #[test]
    fn srgb_profile_keeps_pixels() {
        let srgb = moxcms::ColorProfile::new_srgb().encode().expect("srgb icc");
        let (px, _) = decode_px(&png_with_icc([200, 100, 50], Some(srgb)));
        for (a, b) in px.iter().zip([200u8, 100, 50]) {
            assert!((*a as i32 - b as i32).abs() <= 1, "{px:?}");
        }
    }

    #[test]
    fn garbage_profile_is_ignored() {
        let (px, converted) = decode_px(&png_with_icc([1, 2, 3], Some(vec![0u8; 200])));
        assert!(!converted);
        assert_eq!(px, [1, 2, 3]);
    }
}
