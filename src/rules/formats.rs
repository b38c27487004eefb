//! Image formats understood by the rules module.
//!
//! These are deliberately tiny stand-ins: pixgate will swap them for its own
//! format enums later. Both serialize as lowercase names (`jpeg`, `png`, ...).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Format of the original (upstream) image, used by `source_formats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    /// JPEG / JFIF.
    Jpeg,
    /// PNG.
    Png,
    /// GIF (possibly animated).
    Gif,
    /// WebP.
    Webp,
    /// AVIF.
    Avif,
}

impl SourceFormat {
    /// The lowercase name used in rule files.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceFormat::Jpeg => "jpeg",
            SourceFormat::Png => "png",
            SourceFormat::Gif => "gif",
            SourceFormat::Webp => "webp",
            SourceFormat::Avif => "avif",
        }
    }
}

impl fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Format pixgate may produce, used by `formats` and `quality`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// AVIF.
    Avif,
    /// WebP.
    Webp,
    /// JPEG.
    Jpeg,
    /// PNG.
    Png,
}

impl OutputFormat {
    /// The lowercase name used in rule files.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Avif => "avif",
            OutputFormat::Webp => "webp",
            OutputFormat::Jpeg => "jpeg",
            OutputFormat::Png => "png",
        }
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
