//! Encoders, one file per format, all taking upright sRGB 8-bit pixels and returning bytes.
//! Codec panics (mozjpeg reports libjpeg errors that way) are caught here and become errors.

pub mod avif;
pub mod jpeg;
#[cfg(feature = "jxl")]
pub mod jxl;
pub mod png;
pub mod webp;

use super::format::OutputFormat;
use crate::image::config::ImagesConfig;
use image::DynamicImage;

/// Quality and effort for one encode.
#[derive(Debug, Clone, Copy)]
pub struct EncodeSettings {
    /// AVIF quality and speed.
    pub avif: crate::image::config::AvifConfig,
    /// WebP quality and method.
    pub webp: crate::image::config::WebpConfig,
    /// JPEG quality and progressive flag.
    pub jpeg: crate::image::config::JpegConfig,
    /// oxipng level.
    pub png: crate::image::config::PngConfig,
    /// JPEG XL distance (from a quality) and effort.
    pub jxl: crate::image::config::JxlConfig,
    /// Keep every pixel (a URL's `lossless=1`): WebP is encoded lossless; PNG always is.
    pub lossless: bool,
}

impl EncodeSettings {
    /// The quality `format` is encoded at (100 for the lossless formats).
    pub fn quality(&self, format: OutputFormat) -> u8 {
        match format {
            OutputFormat::Avif => self.avif.quality,
            OutputFormat::Webp => self.webp.quality,
            OutputFormat::Jpeg => self.jpeg.quality,
            OutputFormat::Jxl => self.jxl.quality,
            OutputFormat::Png | OutputFormat::Gif => 100,
        }
    }

    /// The same settings with `format`'s quality set to `q` (1–100).
    #[must_use]
    pub fn with_quality(mut self, format: OutputFormat, q: u8) -> EncodeSettings {
        let q = q.clamp(1, 100);
        match format {
            OutputFormat::Avif => self.avif.quality = q,
            OutputFormat::Webp => self.webp.quality = q,
            OutputFormat::Jpeg => self.jpeg.quality = q,
            OutputFormat::Jxl => self.jxl.quality = q,
            OutputFormat::Png | OutputFormat::Gif => {} // no quality setting
        }
        self
    }
}

impl From<&ImagesConfig> for EncodeSettings {
    fn from(c: &ImagesConfig) -> Self {
        EncodeSettings {
            avif: c.avif,
            webp: c.webp,
            jpeg: c.jpeg,
            png: c.png,
            jxl: c.jxl,
            lossless: false,
        }
    }
}

/// Encodes `img` (Luma8, Rgb8 or Rgba8) into `format`.
pub fn encode(
    img: &DynamicImage,
    format: OutputFormat,
    s: &EncodeSettings,
) -> Result<Vec<u8>, String> {
    let run = || match format {
        OutputFormat::Jpeg => jpeg::encode(img, s.jpeg),
        OutputFormat::Png => png::encode(img, s.png),
        OutputFormat::Webp => webp::encode(img, s.webp, s.lossless),
        OutputFormat::Avif => avif::encode(img, s.avif),
        OutputFormat::Gif => Err("GIF is encoded for animations only".to_string()),
        #[cfg(feature = "jxl")]
        OutputFormat::Jxl => jxl::encode(img, s.jxl, s.lossless),
        #[cfg(not(feature = "jxl"))]
        OutputFormat::Jxl => Err("this build has no JPEG XL encoder (feature jxl)".to_string()),
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(r) => r,
        Err(p) => Err(format!(
            "{} encoder panicked: {}",
            format.name(),
            p.downcast_ref::<String>()
                .map(String::as_str)
                .or(p.downcast_ref::<&str>().copied())
                .unwrap_or("?")
        )),
    }
}
