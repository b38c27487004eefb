//! Image formats, detected from bytes: one table of capabilities instead of scattered
//! `if format == ...` checks.

use serde::{Deserialize, Serialize};

/// A source format recognised from its magic bytes (named in rules' `source_formats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    /// JPEG / JFIF / EXIF (`FF D8 FF`).
    Jpeg,
    /// PNG (including APNG).
    Png,
    /// GIF87a / GIF89a.
    Gif,
    /// WebP (RIFF....WEBP).
    Webp,
    /// AVIF (ISO-BMFF `ftyp` with an avif/avis brand).
    Avif,
    /// HEIC/HEIF (ISO-BMFF `ftyp` with a heic/heix/hevc/mif1... brand): iPhone photos.
    Heic,
}

/// What pixgate does with one format: a row of the capability table. Every capability
/// question in the code is answered from [`CAPABILITIES`] (`SourceFormat::decodable`,
/// `OutputFormat::supports_alpha`, ...), and docs/url-api.md prints the table
/// ([`capability_table`]; a test keeps the two equal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capability {
    /// Short lowercase name.
    pub name: &'static str,
    /// Decoded as a source.
    pub decode: bool,
    /// Encoded as an output.
    pub encode: bool,
    /// What happens to an animated source.
    pub animation: &'static str,
    /// Carries transparency (an output in it keeps alpha).
    pub alpha: bool,
    /// Chosen only when the client's Accept names it (the modern formats); the others are
    /// the family every client decodes.
    pub negotiated: bool,
    /// Encoded without loss (`lossless=1` picks among these).
    pub lossless: bool,
}

impl Capability {
    /// A format pixgate does nothing with (yet).
    const fn none(name: &'static str) -> Capability {
        Capability {
            name,
            decode: false,
            encode: false,
            animation: "—",
            alpha: false,
            negotiated: false,
            lossless: false,
        }
    }
}

/// The capability table, one row per format pixgate recognises or is asked about.
pub const CAPABILITIES: [Capability; 7] = [
    Capability {
        name: "jpeg",
        decode: true,
        encode: true,
        animation: "—",
        alpha: false,
        negotiated: false,
        lossless: false,
    },
    Capability {
        name: "png",
        decode: true,
        encode: true,
        animation: "APNG: animated WebP for WebP clients, else sent as it is",
        alpha: true,
        negotiated: false,
        lossless: true,
    },
    Capability {
        name: "gif",
        decode: true,
        encode: true,
        animation: "animated WebP for WebP clients; resized: a GIF for the others, else sent as it is (GIF output is for animations only)",
        alpha: true,
        negotiated: false,
        lossless: false,
    },
    Capability {
        name: "webp",
        decode: true,
        encode: true,
        animation: "animated WebP (resized; else re-encoded only when smaller); sent as it is to clients without WebP",
        alpha: true,
        negotiated: true,
        lossless: true,
    },
    Capability {
        name: "avif",
        decode: super::heif::DECODES,
        encode: true,
        animation: "the primary image (a still)",
        alpha: true,
        negotiated: true,
        lossless: false,
    },
    Capability {
        name: "heic",
        decode: super::heif::DECODES,
        encode: false,
        animation: "the primary image (a still)",
        alpha: true,
        negotiated: false,
        lossless: false,
    },
    Capability {
        name: "jxl",
        decode: false,
        encode: cfg!(feature = "jxl"),
        animation: "—",
        alpha: true,
        negotiated: true,
        lossless: cfg!(feature = "jxl"),
    },
];

/// The row for `name` (every [`SourceFormat`] and [`OutputFormat`] has one).
fn capability(name: &str) -> Capability {
    CAPABILITIES
        .iter()
        .find(|c| c.name == name)
        .copied()
        .unwrap_or(Capability::none("unknown"))
}

/// The capability table as Markdown, as docs/url-api.md prints it.
pub fn capability_table() -> String {
    let yes = |b: bool| if b { "yes" } else { "no" };
    let mut t = String::from(
        "| format | decoded (source) | encoded (output) | animation | alpha | chosen by Accept | lossless output |\n|---|---|---|---|---|---|---|\n",
    );
    for c in CAPABILITIES {
        t.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            c.name,
            yes(c.decode),
            yes(c.encode),
            c.animation,
            yes(c.alpha),
            yes(c.negotiated),
            yes(c.lossless),
        ));
    }
    t
}

/// How many bytes [`sniff`] needs to decide.
pub(crate) const SNIFF_LEN: usize = 32;

/// Detects an image format from the first bytes of a body. Returns `None` for anything that is
/// not one of the formats pixgate handles (HTML, SVG, ICO, truncated headers...).
pub fn sniff(b: &[u8]) -> Option<SourceFormat> {
    if b.len() >= 3 && b[..3] == [0xFF, 0xD8, 0xFF] {
        return Some(SourceFormat::Jpeg);
    }
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some(SourceFormat::Png);
    }
    if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        return Some(SourceFormat::Gif);
    }
    if b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        return Some(SourceFormat::Webp);
    }
    if b.len() >= 12 && &b[4..8] == b"ftyp" {
        let size = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let end = size.min(b.len());
        // Major brand, then compatible brands after the minor version.
        let mut brands = vec![&b[8..12]];
        let mut i = 16;
        while i + 4 <= end {
            brands.push(&b[i..i + 4]);
            i += 4;
        }
        if brands.iter().any(|br| *br == b"avif" || *br == b"avis") {
            return Some(SourceFormat::Avif);
        }
        const HEIF: [&[u8; 4]; 9] = [
            b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1",
        ];
        if brands.iter().any(|br| HEIF.iter().any(|h| h == br)) {
            return Some(SourceFormat::Heic);
        }
    }
    None
}

impl SourceFormat {
    /// Every source format pixgate recognises.
    pub(crate) const ALL: [SourceFormat; 6] = [
        SourceFormat::Jpeg,
        SourceFormat::Png,
        SourceFormat::Gif,
        SourceFormat::Webp,
        SourceFormat::Avif,
        SourceFormat::Heic,
    ];
    /// The canonical media type.
    pub(crate) fn mime(self) -> &'static str {
        match self {
            SourceFormat::Jpeg => "image/jpeg",
            SourceFormat::Png => "image/png",
            SourceFormat::Gif => "image/gif",
            SourceFormat::Webp => "image/webp",
            SourceFormat::Avif => "image/avif",
            SourceFormat::Heic => "image/heic",
        }
    }
    /// Short lowercase name, used as a metric label.
    pub(crate) fn name(self) -> &'static str {
        match self {
            SourceFormat::Jpeg => "jpeg",
            SourceFormat::Png => "png",
            SourceFormat::Gif => "gif",
            SourceFormat::Webp => "webp",
            SourceFormat::Avif => "avif",
            SourceFormat::Heic => "heic",
        }
    }
    /// Whether pixgate can decode it (AVIF and HEIC need the `heif` feature: libheif).
    pub(crate) fn decodable(self) -> bool {
        capability(self.name()).decode
    }
    /// The legacy family an image falls back to when the client names no modern format:
    /// photos stay JPEG, graphics stay PNG. `has_alpha` forces PNG (JPEG has no alpha).
    pub(crate) fn family(self, has_alpha: bool) -> OutputFormat {
        match self {
            _ if has_alpha => OutputFormat::Png,
            SourceFormat::Jpeg | SourceFormat::Webp | SourceFormat::Avif | SourceFormat::Heic => {
                OutputFormat::Jpeg
            }
            SourceFormat::Png | SourceFormat::Gif => OutputFormat::Png,
        }
    }
    /// The output format that is the same as the source, if any.
    pub fn as_output(self) -> Option<OutputFormat> {
        match self {
            SourceFormat::Jpeg => Some(OutputFormat::Jpeg),
            SourceFormat::Png => Some(OutputFormat::Png),
            SourceFormat::Webp => Some(OutputFormat::Webp),
            SourceFormat::Avif => Some(OutputFormat::Avif),
            SourceFormat::Gif | SourceFormat::Heic => None,
        }
    }
    /// Whether the original bytes are an answer a client can use in place of an output in
    /// `target` (the never-larger rule sends the original when the output is not smaller).
    /// A HEIC is not (pixgate transforms it so that browsers can show it); an AVIF only to a
    /// client getting AVIF (it named AVIF); the rest are what every client decodes, or the
    /// format the client asked for.
    pub(crate) fn original_serves(self, target: OutputFormat) -> bool {
        match self {
            SourceFormat::Heic => false,
            SourceFormat::Avif => target == OutputFormat::Avif,
            _ => true,
        }
    }
}

/// A format pixgate encodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// AVIF via ravif (rav1e).
    Avif,
    /// Lossy WebP via libwebp.
    Webp,
    /// JPEG via mozjpeg.
    Jpeg,
    /// PNG via oxipng.
    Png,
    /// GIF, for animations only (a resized animated GIF for clients without WebP): never
    /// negotiated, named in a URL or configured.
    #[serde(skip)]
    Gif,
    /// JPEG XL via libjxl (the `jxl` feature), for clients that name `image/jxl`.
    Jxl,
}

impl OutputFormat {
    /// The output formats a still can be encoded in (negotiated, configured, named in URLs).
    #[cfg(feature = "fuzzing")]
    pub(crate) const ALL: [OutputFormat; 5] = [
        OutputFormat::Avif,
        OutputFormat::Webp,
        OutputFormat::Jpeg,
        OutputFormat::Png,
        OutputFormat::Jxl,
    ];
    /// Every format a transform can produce: [`OutputFormat::ALL`] and GIF for animations
    /// (metric labels).
    pub(crate) const PRODUCED: [OutputFormat; 6] = [
        OutputFormat::Avif,
        OutputFormat::Webp,
        OutputFormat::Jpeg,
        OutputFormat::Png,
        OutputFormat::Gif,
        OutputFormat::Jxl,
    ];
    /// The media type written in Content-Type.
    pub(crate) fn mime(self) -> &'static str {
        match self {
            OutputFormat::Avif => "image/avif",
            OutputFormat::Webp => "image/webp",
            OutputFormat::Jpeg => "image/jpeg",
            OutputFormat::Png => "image/png",
            OutputFormat::Gif => "image/gif",
            OutputFormat::Jxl => "image/jxl",
        }
    }
    /// Short lowercase name, used in config, headers and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Avif => "avif",
            OutputFormat::Webp => "webp",
            OutputFormat::Jpeg => "jpeg",
            OutputFormat::Png => "png",
            OutputFormat::Gif => "gif",
            OutputFormat::Jxl => "jxl",
        }
    }
    /// Whether the format carries an alpha channel.
    pub(crate) fn supports_alpha(self) -> bool {
        capability(self.name()).alpha
    }
    /// Whether pixgate encodes it without loss (`lossless=1` chooses among these).
    pub(crate) fn encodes_lossless(self) -> bool {
        capability(self.name()).lossless
    }
    /// Modern formats are chosen only when a client names them in Accept; the legacy ones are
    /// what every client decodes.
    pub(crate) fn is_modern(self) -> bool {
        capability(self.name()).negotiated
    }
}

impl std::fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_magic() {
        assert_eq!(
            sniff(b"\xFF\xD8\xFF\xE0\0\x10JFIF"),
            Some(SourceFormat::Jpeg)
        );
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            Some(SourceFormat::Png)
        );
        assert_eq!(sniff(b"GIF89a\x01\0"), Some(SourceFormat::Gif));
        assert_eq!(sniff(b"RIFF\x10\0\0\0WEBPVP8 "), Some(SourceFormat::Webp));
        let avif = b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf";
        assert_eq!(sniff(avif), Some(SourceFormat::Avif));
        let heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic";
        assert_eq!(sniff(heic), Some(SourceFormat::Heic));
        assert_eq!(sniff(b"\0\0\0\x10ftypmp42\0\0\0\0"), None, "an MP4 video");
        assert_eq!(sniff(b"<!doctype html>"), None);
        assert_eq!(sniff(b"<svg xmlns="), None);
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"\xFF\xD8"), None);
    }

    /// The table describes what the code does, and docs/url-api.md prints the same table.
    #[test]
    fn the_capability_table_matches_the_code_and_the_docs() {
        use SourceFormat as S;
        for s in S::ALL {
            assert_eq!(capability(s.name()).name, s.name(), "{s} has a row");
        }
        for f in OutputFormat::PRODUCED {
            let c = capability(f.name());
            assert!(c.encode, "{f} is encoded");
            assert_eq!(c.alpha, f.supports_alpha());
        }
        assert_eq!(S::Avif.decodable(), cfg!(feature = "heif"));
        assert_eq!(S::Heic.decodable(), cfg!(feature = "heif"));
        assert!(S::Gif.decodable());
        assert!(OutputFormat::Webp.encodes_lossless() && !OutputFormat::Avif.encodes_lossless());
        // The docs print the table of a build with `heif` and `jxl` (as CI tests it).
        let docs = include_str!("../../docs/url-api.md");
        assert!(
            !cfg!(all(feature = "heif", feature = "jxl")) || docs.contains(&capability_table()),
            "docs/url-api.md must hold this table:\n{}",
            capability_table()
        );
    }

    #[test]
    fn alpha_forces_png_family() {
        assert_eq!(SourceFormat::Jpeg.family(false), OutputFormat::Jpeg);
        assert_eq!(SourceFormat::Webp.family(true), OutputFormat::Png);
        assert_eq!(SourceFormat::Gif.family(false), OutputFormat::Png);
        assert!(!OutputFormat::Jpeg.supports_alpha());
    }
}
