//! The `images` section: which output formats pixgate produces, which requests it examines,
//! what SVG gets, and each encoder's settings. Validated with the rest of the
//! configuration when it is loaded.

use super::format::OutputFormat;
use serde::{Deserialize, Serialize};

/// When a request is examined as a possible image.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DetectMode {
    /// GET requests whose path has an image extension, no extension, or whose Accept header
    /// names an image type explicitly (what browsers send for `<img>`). The bytes decide.
    Hinted,
    /// Every GET request is examined; the bytes decide. Costs one extra code path per GET.
    AllGet,
}

/// Output formats and encoder settings.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ImagesConfig {
    /// Output formats pixgate may produce, in order of preference. `avif` and `webp` are used
    /// when the client's Accept names them; `jpeg` and `png` enable re-encoding within the
    /// source's own family (mozjpeg / oxipng). Default `[avif, webp, jpeg, png]`.
    pub formats: Vec<OutputFormat>,
    /// Which GET requests are examined. Default `hinted`.
    pub detect: DetectMode,
    /// AVIF (ravif / rav1e) settings.
    pub avif: AvifConfig,
    /// WebP (libwebp) settings.
    pub webp: WebpConfig,
    /// JPEG (mozjpeg) settings.
    pub jpeg: JpegConfig,
    /// PNG (oxipng) settings.
    pub png: PngConfig,
    /// JPEG XL (libjxl) settings; `jxl` in `formats` needs a build with the `jxl` feature.
    pub jxl: JxlConfig,
    /// Add an `X-Pixgate` response header naming the outcome (format or fallback reason).
    /// Default `true`.
    pub debug_header: bool,
    /// SVG (a document that can carry scripts) is never rendered: `sandbox` passes it through
    /// untouched with a sandboxing `Content-Security-Policy` and `nosniff`; `reject` answers
    /// `403` instead, on both paths. Default `sandbox`.
    pub svg: SvgPolicy,
    /// Animations: transformed within these bounds.
    pub animation: crate::image::animation::AnimationConfig,
    /// Quality by perceptual target (`q=auto`, and always for the formats listed here).
    pub auto_quality: crate::image::auto_quality::AutoQualityConfig,
    /// Shrink-on-load: a JPEG that will be shrunk is decoded at 1/8, 2/8 or 4/8 scale when
    /// that keeps at least this many times the output's size (1: the smallest scale that still
    /// covers the output, as libvips and Pillow's draft mode; larger keeps more detail for the
    /// Lanczos resize, and costs decode time); `null` always decodes whole. 1–8. Default `1.5`:
    /// on the real photos as sharp as 2 (DSSIM against a whole decode 0.00002–0.00005) and up
    /// to 9 % faster; 1 lost detail where the scale just covers the output (DSSIM 0.0004–0.002
    /// on 4:4:4, 20 MP and 18 MP photos; docs/benchmarks.md, "Shrink-on-load").
    pub shrink_on_load: Option<f32>,
    /// Watermarks by name (`default` is the one `wm`/`watermark` draws when the URL names
    /// none): an image `file` or a `text` line. Loaded at start, again when a file changes.
    pub watermarks: std::collections::BTreeMap<String, crate::image::marks::WatermarkSpec>,
}

/// What happens to SVG responses.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum SvgPolicy {
    /// Pass through with a sandboxing CSP and `nosniff`.
    #[default]
    Sandbox,
    /// Answer `403 Forbidden`; the SVG's bytes never reach the client.
    Reject,
}

impl Default for ImagesConfig {
    fn default() -> Self {
        ImagesConfig {
            formats: vec![
                OutputFormat::Avif,
                OutputFormat::Webp,
                OutputFormat::Jpeg,
                OutputFormat::Png,
            ],
            detect: DetectMode::Hinted,
            avif: AvifConfig::default(),
            webp: WebpConfig::default(),
            jpeg: JpegConfig::default(),
            png: PngConfig::default(),
            jxl: JxlConfig::default(),
            animation: crate::image::animation::AnimationConfig::default(),
            auto_quality: crate::image::auto_quality::AutoQualityConfig::default(),
            shrink_on_load: Some(1.5),
            watermarks: std::collections::BTreeMap::new(),
            debug_header: true,
            svg: SvgPolicy::Sandbox,
        }
    }
}

/// AVIF encoder settings.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AvifConfig {
    /// Quality 1–100. Default `60`.
    pub quality: u8,
    /// rav1e speed 1 (slowest, smallest) – 10 (fastest). Default `6`.
    pub speed: u8,
    /// Bits per sample, 8 or 10. rav1e has assembly for 8-bit only: at speed 6, 8-bit took
    /// 193 ms against 479 ms for 10-bit, for 5 % more bytes at equal DSSIM, and was both
    /// faster and smaller than 10-bit at speed 8 (docs/benchmarks.md). Default `8`.
    pub depth: u8,
}
impl Default for AvifConfig {
    fn default() -> Self {
        AvifConfig {
            quality: 60,
            speed: 6,
            depth: 8,
        }
    }
}

/// WebP encoder settings.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WebpConfig {
    /// Quality 1–100. Default `78`.
    pub quality: u8,
    /// libwebp method 0 (fastest) – 6 (smallest). Default `4`.
    pub method: u8,
    /// For graphics (a PNG or GIF source of at most 4096 colours: screenshots, logos,
    /// diagrams) headed for WebP, or for AVIF when the client takes WebP too, also encode
    /// lossless WebP and send the smaller. On the rustc
    /// book's screenshots lossless was 8–46 % smaller than lossy q78 and no slower
    /// (docs/benchmarks.md). Default `true`.
    pub try_lossless: bool,
}
impl Default for WebpConfig {
    fn default() -> Self {
        WebpConfig {
            quality: 78,
            method: 4,
            try_lossless: true,
        }
    }
}

/// JPEG encoder settings.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct JpegConfig {
    /// Quality 1–100. Default `80`.
    pub quality: u8,
    /// Progressive scans for outputs of at least `progressive_min_pixels`. Default `true`.
    pub progressive: bool,
    /// Smaller outputs are baseline: on the real photos at 512 px baseline was as small
    /// (0.97–1.03 of the bytes at equal DSSIM) and 2.2–3× faster to encode (0.7–1.1 ms
    /// against 1.7–2.9), and a thumbnail gains nothing from drawing in passes
    /// (docs/benchmarks.md). Default `500000` (0 makes every output progressive).
    pub progressive_min_pixels: u64,
    /// Let mozjpeg try several progressive scan scripts and keep the smallest. About 1.6 %
    /// smaller files for about 1.7x the encode time (512 px photo, docs/benchmarks.md), which
    /// an on-the-fly proxy rarely wants. Default `false`.
    pub optimize_scans: bool,
    /// mozjpeg's trellis quantisation (and its deringing and scan script). Off, the encoder is
    /// libjpeg-turbo's with mozjpeg's quantisation table: 512 px photo, 3.3 ms instead of
    /// 11.9 ms, for 6.9 % more bytes at equal DSSIM (docs/benchmarks.md). Default `false`.
    pub trellis: bool,
}
impl Default for JpegConfig {
    fn default() -> Self {
        JpegConfig {
            quality: 80,
            progressive: true,
            progressive_min_pixels: 500_000,
            optimize_scans: false,
            trellis: false,
        }
    }
}

/// JPEG XL encoder settings.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct JxlConfig {
    /// Quality 1–100, mapped to a Butteraugli distance as `cjxl` does. Default `70`.
    pub quality: u8,
    /// libjxl effort 1 (fastest) – 9 (smallest). Default `5` (docs/benchmarks.md).
    pub effort: u8,
}
impl Default for JxlConfig {
    fn default() -> Self {
        JxlConfig {
            quality: 70,
            effort: 5,
        }
    }
}

/// PNG encoder settings.
#[derive(Default, Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PngConfig {
    /// oxipng optimisation level 0 (fastest) – 6 (smallest). Level 0 was 3.7x faster than 1
    /// for 4 % more bytes on a 512 px cut-out (docs/benchmarks.md). Default `0`.
    pub level: u8,
}
