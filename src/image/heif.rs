//! HEIF-family sources: HEIC (iPhone photos, HEVC inside) and AVIF (AV1 inside), read by
//! libheif, Debian's `libheif1` (libde265 for HEVC, dav1d/aom for AV1), linked dynamically
//! (LGPL-3). Behind the `heif` cargo feature (on by default); without it both formats are
//! recognised but not decoded (`unsupported_source`).
//!
//! The container is parsed first without decoding a pixel ([`dimensions`]), so the pixel
//! limits apply before libheif allocates anything. libheif applies the container's rotation
//! and mirroring (`irot`/`imir`) while decoding, which is what browsers and Apple show; an
//! embedded ICC profile is returned for the sRGB conversion every source goes through.

use super::Reason;
use image::DynamicImage;

/// Decoded pixels and the ICC profile the image carries, if any.
pub(crate) struct Heif {
    /// 8-bit RGB, or RGBA when the image has an alpha channel.
    pub image: DynamicImage,
    /// An embedded ICC profile (`prof`/`rICC`), for the conversion to sRGB.
    pub icc: Option<Vec<u8>>,
}

#[cfg(feature = "heif")]
mod imp {
    use super::{Heif, Reason};
    use image::DynamicImage;
    use libheif_rs::{ColorSpace, HeifContext, LibHeif, RgbChroma};
    use std::sync::OnceLock;

    /// libheif's initialisation, once for the process (`heif_init` loads its decoders).
    fn lib() -> &'static LibHeif {
        static LIB: OnceLock<LibHeif> = OnceLock::new();
        LIB.get_or_init(LibHeif::new)
    }

    fn context(data: &[u8]) -> Result<HeifContext<'_>, Reason> {
        let _ = lib();
        HeifContext::read_from_bytes(data).map_err(|_| Reason::Undecodable)
    }

    pub(crate) fn dimensions(data: &[u8]) -> Result<(u32, u32), Reason> {
        let ctx = context(data)?;
        let h = ctx
            .primary_image_handle()
            .map_err(|_| Reason::Undecodable)?;
        Ok((h.width(), h.height()))
    }

    pub(crate) fn decode(data: &[u8]) -> Result<Heif, Reason> {
        let ctx = context(data)?;
        let h = ctx
            .primary_image_handle()
            .map_err(|_| Reason::Undecodable)?;
        let alpha = h.has_alpha_channel();
        let chroma = if alpha {
            RgbChroma::Rgba
        } else {
            RgbChroma::Rgb
        };
        // No decoding options: libheif-rs before 1.0.1 frees them too early.
        let img = lib()
            .decode(&h, ColorSpace::Rgb(chroma), None)
            .map_err(|_| Reason::Undecodable)?;
        let planes = img.planes();
        let p = planes.interleaved.ok_or(Reason::Undecodable)?;
        let channels: usize = if alpha { 4 } else { 3 };
        let row = p.width as usize * channels;
        // 8 bits a channel (libheif converts deeper sources), `channels` bytes a pixel.
        if p.bits_per_pixel != 8
            || p.storage_bits_per_pixel as usize != channels * 8
            || p.stride < row
        {
            return Err(Reason::Undecodable);
        }
        let mut px = Vec::with_capacity(row * p.height as usize);
        for y in 0..p.height as usize {
            let line = p
                .data
                .get(y * p.stride..y * p.stride + row)
                .ok_or(Reason::Undecodable)?;
            px.extend_from_slice(line);
        }
        let image = if alpha {
            image::RgbaImage::from_raw(p.width, p.height, px).map(DynamicImage::ImageRgba8)
        } else {
            image::RgbImage::from_raw(p.width, p.height, px).map(DynamicImage::ImageRgb8)
        }
        .ok_or(Reason::Undecodable)?;
        let icc = h.color_profile_raw().map(|c| c.data);
        Ok(Heif { image, icc })
    }
}

#[cfg(not(feature = "heif"))]
mod imp {
    use super::{Heif, Reason};

    pub(crate) fn dimensions(_: &[u8]) -> Result<(u32, u32), Reason> {
        Err(Reason::UnsupportedSource)
    }

    pub(crate) fn decode(_: &[u8]) -> Result<Heif, Reason> {
        Err(Reason::UnsupportedSource)
    }
}

/// The primary image's width and height, from the container alone (no pixel decoded).
pub(crate) fn dimensions(data: &[u8]) -> Result<(u32, u32), Reason> {
    imp::dimensions(data)
}

/// Decodes the primary image to 8-bit RGB(A), rotated and mirrored as the container says.
pub(crate) fn decode(data: &[u8]) -> Result<Heif, Reason> {
    imp::decode(data)
}

/// Whether this build decodes HEIF-family sources (the `heif` feature).
pub(crate) const DECODES: bool = cfg!(feature = "heif");
