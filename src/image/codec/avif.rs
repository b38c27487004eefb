//! AVIF via ravif (rav1e). The slowest encoder by far: speed is the main knob (FACTS: a 2 MP
//! photo takes ~6 s at speed 6 and ~0.8 s at speed 10 on one core).

use crate::image::config::AvifConfig;
use image::DynamicImage;
use ravif::{Encoder, Img, RGB8, RGBA8};

/// Encodes RGB or RGBA pixels (Luma is expanded to RGB).
pub fn encode(img: &DynamicImage, c: AvifConfig) -> Result<Vec<u8>, String> {
    let enc = Encoder::new()
        .with_quality(f32::from(c.quality.clamp(1, 100)))
        .with_alpha_quality(f32::from(c.quality.clamp(1, 100)))
        .with_speed(c.speed.clamp(1, 10))
        .with_bit_depth(if c.depth >= 10 {
            ravif::BitDepth::Ten
        } else {
            ravif::BitDepth::Eight
        });
    let (w, h) = (img.width() as usize, img.height() as usize);
    let res = match img {
        DynamicImage::ImageRgba8(p) => {
            let px: Vec<RGBA8> = p
                .as_raw()
                .chunks_exact(4)
                .map(|c| RGBA8::new(c[0], c[1], c[2], c[3]))
                .collect();
            enc.encode_rgba(Img::new(&px[..], w, h))
        }
        other => {
            let owned;
            let raw: &[u8] = match other {
                DynamicImage::ImageRgb8(p) => p.as_raw(),
                _ => {
                    owned = other.to_rgb8();
                    owned.as_raw()
                }
            };
            let px: Vec<RGB8> = raw
                .chunks_exact(3)
                .map(|c| RGB8::new(c[0], c[1], c[2]))
                .collect();
            enc.encode_rgb(Img::new(&px[..], w, h))
        }
    };
    res.map(|e| e.avif_file).map_err(|e| e.to_string())
}
