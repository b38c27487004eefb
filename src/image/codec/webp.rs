//! Lossy WebP via libwebp (the `webp` crate); the image crate only writes lossless WebP.

use crate::image::config::WebpConfig;
use image::DynamicImage;

/// Encodes RGB or RGBA pixels (Luma is expanded to RGB).
pub fn encode(img: &DynamicImage, c: WebpConfig) -> Result<Vec<u8>, String> {
    let mut config =
        webp::WebPConfig::new().map_err(|_| "libwebp config init failed".to_string())?;
    config.quality = f32::from(c.quality);
    config.method = i32::from(c.method);
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
