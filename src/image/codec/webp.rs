//! WebP via libwebp (the `webp` crate), lossy or lossless.

use crate::image::config::WebpConfig;
use image::DynamicImage;

/// Encodes RGB or RGBA pixels (Luma is expanded to RGB); `lossless` keeps every pixel (the
/// quality then sets the effort, as in `cwebp -lossless`).
pub fn encode(img: &DynamicImage, c: WebpConfig, lossless: bool) -> Result<Vec<u8>, String> {
    let mut config =
        webp::WebPConfig::new().map_err(|_| "libwebp config init failed".to_string())?;
    config.quality = f32::from(c.quality);
    config.method = i32::from(c.method);
    config.lossless = i32::from(lossless);
    let out = match img {
        DynamicImage::ImageRgba8(p) => {
            webp::Encoder::from_rgba(p.as_raw(), p.width(), p.height()).encode_advanced(&config)
        }
        DynamicImage::ImageRgb8(p) => {
            webp::Encoder::from_rgb(p.as_raw(), p.width(), p.height()).encode_advanced(&config)
        }
        other => {
            let p = other.to_rgb8();
            webp::Encoder::from_rgb(p.as_raw(), p.width(), p.height()).encode_advanced(&config)
        }
    };
    out.map(|m| m.to_vec())
        .map_err(|e| format!("libwebp: {e:?}"))
}
