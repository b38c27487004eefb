//! Animated GIF → animated WebP (issue 21, first part). Every frame as the GIF shows it (the
//! image crate's GIF decoder composites each frame onto the canvas, honouring disposal and
//! transparency), resized like a still image, and encoded with libwebp's animation encoder
//! with the source's per-frame delays and loop count.
//!
//! Bounded before any pixel is decoded: the frame count (`images.animation.max_frames`, walked
//! from the GIF's blocks) and the pixels decoded over all frames
//! (`images.animation.max_pixels`, frames × canvas); past either, the original is sent
//! (`too_many_frames` / `too_many_pixels`). The deadline is checked between frames.
//!
//! libwebp's `WebPAnimEncoder` is called through `libwebp-sys` rather than the `webp` crate's
//! `AnimEncoder`, which ends every animation with timestamp 0: libwebp refuses that as a
//! decreasing timestamp and gives the last frame the average duration instead of its own.

use super::codec::EncodeSettings;
use super::probe;
use super::resize::{self, ResizeSpec};
use super::Reason;
use image::AnimationDecoder;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// `images.animation`: whether and how far animated GIFs are transformed.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AnimationConfig {
    /// Transform animated GIFs into animated WebP for clients that take WebP (others get the
    /// GIF as it is). `false`: every animation is sent as it is. Default `true`.
    pub enabled: bool,
    /// Most frames transformed; past it the original is sent. Default `500`.
    pub max_frames: usize,
    /// Most pixels decoded over all frames (frames × canvas); past it the original is sent.
    /// Default `50000000` (the decoded frames are held until encoded: at most 4 bytes each).
    pub max_pixels: u64,
}

impl Default for AnimationConfig {
    fn default() -> Self {
        AnimationConfig {
            enabled: true,
            max_frames: 500,
            max_pixels: 50_000_000,
        }
    }
}

/// An encoded animation.
#[derive(Debug)]
pub struct Animated {
    /// The animated WebP.
    pub bytes: Vec<u8>,
    /// Output width.
    pub width: u32,
    /// Output height.
    pub height: u32,
}

/// The GIF's loop count from its NETSCAPE2.0 extension, as WebP counts it (0 = for ever);
/// without the extension a GIF plays once.
fn gif_loop_count(d: &[u8]) -> i32 {
    const APP: &[u8] = b"NETSCAPE2.0\x03\x01";
    d.windows(APP.len())
        .position(|w| w == APP)
        .and_then(|i| d.get(i + APP.len()..i + APP.len() + 2))
        .map_or(1, |b| i32::from(u16::from_le_bytes([b[0], b[1]])))
}

/// Transforms an animated GIF of `canvas` pixels into an animated WebP.
pub fn gif_to_webp(
    src: &[u8],
    canvas: (u32, u32),
    resize_spec: Option<&ResizeSpec>,
    settings: &EncodeSettings,
    cfg: AnimationConfig,
    deadline: Instant,
) -> Result<Animated, Reason> {
    let frames = probe::gif_frames(src, cfg.max_frames.saturating_add(1));
    if frames > cfg.max_frames {
        return Err(Reason::TooManyFrames);
    }
    let per_frame = u64::from(canvas.0) * u64::from(canvas.1);
    if per_frame.saturating_mul(frames as u64) > cfg.max_pixels {
        return Err(Reason::TooManyPixels);
    }
    let decoder = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(src))
        .map_err(|_| Reason::Undecodable)?;
    let mut out: Vec<(image::RgbaImage, i32)> = Vec::with_capacity(frames);
    let mut at_ms: i64 = 0;
    for frame in decoder.into_frames() {
        if Instant::now() > deadline {
            return Err(Reason::Timeout);
        }
        if out.len() == cfg.max_frames {
            return Err(Reason::TooManyFrames);
        }
        let frame = frame.map_err(|_| Reason::Undecodable)?;
        let (num, den) = frame.delay().numer_denom_ms();
        let delay = i64::from(num.checked_div(den).unwrap_or(0));
        let mut img = image::DynamicImage::ImageRgba8(frame.into_buffer());
        if let Some(spec) = resize_spec {
            img = resize::apply(img, spec)?;
        }
        let ts = i32::try_from(at_ms).map_err(|_| Reason::TooManyFrames)?;
        out.push((img.into_rgba8(), ts));
        at_ms += delay;
    }
    let end = i32::try_from(at_ms).map_err(|_| Reason::TooManyFrames)?;
    let (w, h) = out
        .first()
        .map(|(f, _)| f.dimensions())
        .ok_or(Reason::Undecodable)?;
    let bytes = encode(&out, end, w, h, settings, gif_loop_count(src))?;
    Ok(Animated {
        bytes,
        width: w,
        height: h,
    })
}

/// Owns a `WebPAnimEncoder` and deletes it however the encode ends.
struct Encoder(*mut libwebp_sys::WebPAnimEncoder);

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: the pointer came from WebPAnimEncoderNewInternal and is deleted once.
        unsafe { libwebp_sys::WebPAnimEncoderDelete(self.0) }
    }
}

/// Encodes `frames` (RGBA, `w`×`h`, each with its start time in ms) ending at `end` ms.
fn encode(
    frames: &[(image::RgbaImage, i32)],
    end: i32,
    w: u32,
    h: u32,
    s: &EncodeSettings,
    loop_count: i32,
) -> Result<Vec<u8>, Reason> {
    use libwebp_sys as sys;
    let (wi, hi) = (
        i32::try_from(w).map_err(|_| Reason::TooManyPixels)?,
        i32::try_from(h).map_err(|_| Reason::TooManyPixels)?,
    );
    let mut config = webp::WebPConfig::new().map_err(|_| Reason::EncodeFailed)?;
    config.quality = f32::from(s.webp.quality);
    config.method = i32::from(s.webp.method);
    config.lossless = i32::from(s.lossless);
    // SAFETY: every libwebp structure is initialised by its Init function before use; the
    // pictures import copies of the frame pixels (their buffers outlive the calls) and are
    // freed after each add; the encoder is deleted by `Encoder`'s drop; the assembled data is
    // copied out before it is cleared.
    unsafe {
        let mut opts = std::mem::MaybeUninit::<sys::WebPAnimEncoderOptions>::zeroed();
        let abi = sys::WebPGetMuxABIVersion();
        if sys::WebPAnimEncoderOptionsInitInternal(opts.as_mut_ptr(), abi) == 0 {
            return Err(Reason::EncodeFailed);
        }
        let mut opts = opts.assume_init();
        opts.anim_params.loop_count = loop_count;
        let enc = sys::WebPAnimEncoderNewInternal(wi, hi, &opts, abi);
        if enc.is_null() {
            return Err(Reason::EncodeFailed);
        }
        let enc = Encoder(enc);
        for (img, ts) in frames {
            let mut pic = std::mem::MaybeUninit::<sys::WebPPicture>::zeroed();
            if sys::WebPPictureInitInternal(pic.as_mut_ptr(), sys::WEBP_ENCODER_ABI_VERSION as i32)
                == 0
            {
                return Err(Reason::EncodeFailed);
            }
            let mut pic = pic.assume_init();
            pic.use_argb = 1;
            pic.width = wi;
            pic.height = hi;
            let imported = sys::WebPPictureImportRGBA(&mut pic, img.as_raw().as_ptr(), wi * 4);
            let added =
                imported != 0 && sys::WebPAnimEncoderAdd(enc.0, &mut pic, *ts, &config) != 0;
            sys::WebPPictureFree(&mut pic);
            if !added {
                return Err(Reason::EncodeFailed);
            }
        }
        if sys::WebPAnimEncoderAdd(enc.0, std::ptr::null_mut(), end, std::ptr::null()) == 0 {
            return Err(Reason::EncodeFailed);
        }
        let mut data = std::mem::MaybeUninit::<sys::WebPData>::zeroed();
        if sys::WebPAnimEncoderAssemble(enc.0, data.as_mut_ptr()) == 0 {
            return Err(Reason::EncodeFailed);
        }
        let mut data = data.assume_init();
        let bytes = std::slice::from_raw_parts(data.bytes, data.size).to_vec();
        sys::WebPDataClear(&mut data);
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::gif_loop_count;

    #[test]
    fn the_loop_count_comes_from_the_netscape_extension() {
        let mut g = b"GIF89a\x01\x00\x01\x00\x00\x00\x00!\xff\x0bNETSCAPE2.0\x03\x01".to_vec();
        g.extend_from_slice(&[3, 0, 0]);
        assert_eq!(gif_loop_count(&g), 3);
        let n = g.len();
        g[n - 3] = 0;
        assert_eq!(gif_loop_count(&g), 0, "0: for ever");
        assert_eq!(
            gif_loop_count(b"GIF89a\x01\x00\x01\x00\x00\x00\x00"),
            1,
            "no extension: once"
        );
    }
}
