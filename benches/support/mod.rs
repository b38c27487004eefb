//! Inputs shared by the benches: the demo photos, and a 12 MP photo made from one.

/// A demo sample's bytes by file name (empty when missing).
pub fn sample(name: &str) -> &'static [u8] {
    pixgate::demo::SAMPLES
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.bytes)
        .unwrap_or_default()
}

/// A 12 MP (4000×3000) photo-like JPEG made from the 2 MP demo photo, with grain.
pub fn twelve_mp_jpeg() -> Vec<u8> {
    let base = image::load_from_memory(sample("retina.jpg"))
        .map(|i| i.resize_exact(4000, 3000, image::imageops::FilterType::Triangle))
        .unwrap_or_else(|_| image::DynamicImage::new_rgb8(4000, 3000))
        .into_rgb8();
    let grainy = image::RgbImage::from_fn(4000, 3000, |x, y| {
        let p = base.get_pixel(x, y).0;
        let n = ((x.wrapping_mul(7919) ^ y.wrapping_mul(104_729)) % 17) as u8;
        image::Rgb([
            p[0].saturating_add(n),
            p[1].saturating_add(n),
            p[2].saturating_add(n),
        ])
    });
    let mut out = Vec::new();
    let _ = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90).encode_image(&grainy);
    out
}

/// The 2 MP demo photo as lossy WebP q90 (what the peer harness makes with `cwebp -q 90`).
#[allow(dead_code)] // each bench is its own crate; only some use this
pub fn webp_2mp() -> Vec<u8> {
    let c = pixgate::config::WebpConfig {
        quality: 90,
        ..Default::default()
    };
    image::load_from_memory(sample("retina.jpg"))
        .ok()
        .and_then(|i| pixgate::image::codec::webp::encode(&i, c, false).ok())
        .unwrap_or_default()
}
