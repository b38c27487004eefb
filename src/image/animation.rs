//! Animations kept (issue 21): an animated GIF, WebP or APNG becomes an animated WebP for
//! clients that take WebP, and a resized GIF stays a GIF for the others. Every frame as the
//! source shows it (the image crate's decoders composite each frame onto the canvas,
//! honouring disposal, blending and transparency), resized like a still image, and encoded
//! with the source's per-frame delays and loop count.
//!
//! Bounded before any pixel is decoded: the frame count (`images.animation.max_frames`, from
//! the GIF's blocks, WebP's `ANMF` chunks or APNG's `acTL`) and the pixels decoded over all
//! frames (`images.animation.max_pixels`, frames × canvas); past either, the original is sent
//! (`too_many_frames` / `too_many_pixels`). The deadline is checked between frames.
//!
//! libwebp's `WebPAnimEncoder` is called through `libwebp-sys` rather than the `webp` crate's
//! `AnimEncoder`, which ends every animation with timestamp 0: libwebp refuses that as a
//! decreasing timestamp and gives the last frame the average duration instead of its own.

use super::codec::EncodeSettings;
use super::format::{OutputFormat, SourceFormat};
use super::probe;
use super::resize::{self, ResizeSpec};
use super::Reason;
use image::AnimationDecoder;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// `images.animation`: whether and how far animations are transformed.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AnimationConfig {
    /// Transform animations: animated WebP for clients that take WebP, a resized GIF for the
    /// others. `false`: every animation is sent as it is. Default `true`.
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

/// The encoders pixgate has for animations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnimatedOutput {
    /// Animated WebP (libwebp's animation encoder), for clients that take WebP.
    Webp,
    /// GIF (the image crate's encoder, NeuQuant colours per frame), for a GIF source resized
    /// for a client without WebP.
    Gif,
}

impl AnimatedOutput {
    /// The output format it is.
    pub fn format(self) -> OutputFormat {
        match self {
            AnimatedOutput::Webp => OutputFormat::Webp,
            AnimatedOutput::Gif => OutputFormat::Gif,
        }
    }
}

/// An encoded animation.
#[derive(Debug)]
pub struct Animated {
    /// The encoded animation.
    pub bytes: Vec<u8>,
    /// Output width.
    pub width: u32,
    /// Output height.
    pub height: u32,
    /// Frames encoded.
    pub frames: u32,
}

/// How often an animation plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loops {
    /// For ever.
    Forever,
    /// This many times, as the source counts them.
    Times(u16),
    /// A GIF without the NETSCAPE2.0 extension: once.
    Unset,
}

impl Loops {
    /// WebP's loop count (0 = for ever).
    fn webp(self) -> i32 {
        match self {
            Loops::Forever => 0,
            Loops::Times(n) => i32::from(n),
            Loops::Unset => 1,
        }
    }

    fn from_image(l: image::metadata::LoopCount) -> Loops {
        match l {
            image::metadata::LoopCount::Infinite => Loops::Forever,
            image::metadata::LoopCount::Finite(n) => {
                Loops::Times(u16::try_from(n.get()).unwrap_or(u16::MAX))
            }
        }
    }
}

/// The GIF's loop count from its NETSCAPE2.0 extension (0 = for ever).
fn gif_loops(d: &[u8]) -> Loops {
    const APP: &[u8] = b"NETSCAPE2.0\x03\x01";
    match d
        .windows(APP.len())
        .position(|w| w == APP)
        .and_then(|i| d.get(i + APP.len()..i + APP.len() + 2))
    {
        Some(b) => match u16::from_le_bytes([b[0], b[1]]) {
            0 => Loops::Forever,
            n => Loops::Times(n),
        },
        None => Loops::Unset,
    }
}

/// One frame as the animation shows it (composited onto the whole canvas) and how long.
struct Frame {
    image: image::RgbaImage,
    delay_ms: u32,
}

/// The source's composited frames (disposal and blending applied by the image crate's
/// decoders) and its loop count.
fn frames_of(src: &[u8], format: SourceFormat) -> Result<(image::Frames<'_>, Loops), Reason> {
    use image::codecs::{gif::GifDecoder, png::PngDecoder, webp::WebPDecoder};
    let bad = |_| Reason::Undecodable;
    let cursor = std::io::Cursor::new(src);
    match format {
        SourceFormat::Gif => {
            let d = GifDecoder::new(cursor).map_err(bad)?;
            Ok((d.into_frames(), gif_loops(src)))
        }
        SourceFormat::Webp => {
            let mut d = WebPDecoder::new(cursor).map_err(bad)?;
            // Browsers show an animated WebP over transparency, whatever its ANIM colour says.
            d.set_background_color(image::Rgba([0, 0, 0, 0]))
                .map_err(bad)?;
            let loops = Loops::from_image(d.loop_count());
            Ok((d.into_frames(), loops))
        }
        SourceFormat::Png => {
            let d = PngDecoder::new(cursor).map_err(bad)?.apng().map_err(bad)?;
            let loops = Loops::from_image(d.loop_count());
            Ok((d.into_frames(), loops))
        }
        _ => Err(Reason::Animated),
    }
}

/// What an animation transform does: the resize (if any), encoder settings, bounds, output.
#[derive(Debug, Clone, Copy)]
pub struct AnimationJob<'a> {
    /// Resize every frame.
    pub resize: Option<&'a ResizeSpec>,
    /// Encoder settings (WebP's quality, method, lossless).
    pub settings: &'a EncodeSettings,
    /// Frame and pixel bounds.
    pub cfg: AnimationConfig,
    /// The encoder.
    pub output: AnimatedOutput,
    /// Give up after this instant.
    pub deadline: Instant,
    /// A watermark drawn on every frame, after the resize.
    pub mark: Option<(&'a super::watermark::Mark, &'a super::watermark::Placement)>,
}

/// Transforms an animated GIF, WebP or APNG of `canvas` pixels: every frame resized like a
/// still, encoded as `job.output` with the source's delays and loop count.
pub fn transform(
    src: &[u8],
    format: SourceFormat,
    canvas: (u32, u32),
    job: AnimationJob<'_>,
) -> Result<Animated, Reason> {
    let cfg = job.cfg;
    let frames = probe::animation_frames(src, format, cfg.max_frames.saturating_add(1));
    if frames > cfg.max_frames {
        return Err(Reason::TooManyFrames);
    }
    let per_frame = u64::from(canvas.0) * u64::from(canvas.1);
    if per_frame.saturating_mul(frames.max(1) as u64) > cfg.max_pixels {
        return Err(Reason::TooManyPixels);
    }
    let (decoded, loops) = frames_of(src, format)?;
    let mut out: Vec<Frame> = Vec::with_capacity(frames);
    for frame in decoded {
        if Instant::now() > job.deadline {
            return Err(Reason::Timeout);
        }
        // The declared count may lie (an APNG's acTL): the decoded frames are bounded too.
        if out.len() == cfg.max_frames {
            return Err(Reason::TooManyFrames);
        }
        let frame = frame.map_err(|_| Reason::Undecodable)?;
        let (num, den) = frame.delay().numer_denom_ms();
        let mut delay_ms = num.checked_div(den).unwrap_or(0);
        // Browsers show a GIF frame of 10 ms or less for 100 ms; libwebp needs time to pass.
        if format == SourceFormat::Gif && job.output == AnimatedOutput::Webp && delay_ms <= 10 {
            delay_ms = 100;
        }
        let mut img = image::DynamicImage::ImageRgba8(frame.into_buffer());
        if let Some(spec) = job.resize {
            img = resize::apply(img, spec)?;
        }
        if let Some((mark, placement)) = job.mark {
            img = super::watermark::apply(img, mark, placement);
        }
        out.push(Frame {
            image: img.into_rgba8(),
            delay_ms,
        });
    }
    let (w, h) = out
        .first()
        .map(|f| f.image.dimensions())
        .ok_or(Reason::Undecodable)?;
    let frames = u32::try_from(out.len()).unwrap_or(u32::MAX);
    let bytes = match job.output {
        AnimatedOutput::Webp => encode_webp(&out, w, h, job.settings, loops.webp())?,
        AnimatedOutput::Gif => encode_gif(out, loops, job.deadline)?,
    };
    Ok(Animated {
        bytes,
        width: w,
        height: h,
        frames,
    })
}

/// Encodes full-canvas frames as a GIF (each frame quantised to its own palette; the
/// NETSCAPE extension only when the source had one).
fn encode_gif(frames: Vec<Frame>, loops: Loops, deadline: Instant) -> Result<Vec<u8>, Reason> {
    use image::codecs::gif::{GifEncoder, Repeat};
    let failed = |_| Reason::EncodeFailed;
    let mut out = Vec::new();
    {
        // NeuQuant speed 10 (1 is best and slowest, 30 fastest): the image crate's default of
        // 1 costs seconds on a few hundred frames.
        let mut enc = GifEncoder::new_with_speed(&mut out, 10);
        match loops {
            Loops::Forever => enc.set_repeat(Repeat::Infinite).map_err(failed)?,
            Loops::Times(n) => enc.set_repeat(Repeat::Finite(n)).map_err(failed)?,
            Loops::Unset => {}
        }
        for f in frames {
            if Instant::now() > deadline {
                return Err(Reason::Timeout);
            }
            let delay = image::Delay::from_numer_denom_ms(f.delay_ms, 1);
            enc.encode_frame(image::Frame::from_parts(f.image, 0, 0, delay))
                .map_err(failed)?;
        }
    }
    Ok(out)
}

/// Owns a `WebPAnimEncoder` and deletes it however the encode ends.
struct Encoder(*mut libwebp_sys::WebPAnimEncoder);

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: the pointer came from WebPAnimEncoderNewInternal and is deleted once.
        unsafe { libwebp_sys::WebPAnimEncoderDelete(self.0) }
    }
}

/// Encodes `frames` (RGBA, `w`×`h`) as an animated WebP.
fn encode_webp(
    frames: &[Frame],
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
        let mut at_ms: i32 = 0;
        for f in frames {
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
            let imported = sys::WebPPictureImportRGBA(&mut pic, f.image.as_raw().as_ptr(), wi * 4);
            let added =
                imported != 0 && sys::WebPAnimEncoderAdd(enc.0, &mut pic, at_ms, &config) != 0;
            sys::WebPPictureFree(&mut pic);
            if !added {
                return Err(Reason::EncodeFailed);
            }
            let delay = i32::try_from(f.delay_ms).map_err(|_| Reason::TooManyFrames)?;
            at_ms = at_ms.checked_add(delay).ok_or(Reason::TooManyFrames)?;
        }
        if sys::WebPAnimEncoderAdd(enc.0, std::ptr::null_mut(), at_ms, std::ptr::null()) == 0 {
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
    use super::{gif_loops, Loops};

    #[test]
    fn the_loop_count_comes_from_the_netscape_extension() {
        let mut g = b"GIF89a\x01\x00\x01\x00\x00\x00\x00!\xff\x0bNETSCAPE2.0\x03\x01".to_vec();
        g.extend_from_slice(&[3, 0, 0]);
        assert_eq!(gif_loops(&g), Loops::Times(3));
        assert_eq!(gif_loops(&g).webp(), 3);
        let n = g.len();
        g[n - 3] = 0;
        assert_eq!(gif_loops(&g), Loops::Forever);
        assert_eq!(gif_loops(&g).webp(), 0, "0: for ever");
        let once = gif_loops(b"GIF89a\x01\x00\x01\x00\x00\x00\x00");
        assert_eq!((once, once.webp()), (Loops::Unset, 1), "no extension: once");
    }
}
