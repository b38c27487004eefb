//! The transform pipeline as data: probe → decode → choose → encode → never-larger, with the
//! deadline checked between steps. Runs on a blocking thread (see [`super::pool`]).

use super::animation::{AnimatedOutput, AnimationJob};
use super::codec::{self, EncodeSettings};
use super::decode;
use super::fit::Gravity;
use super::format::{OutputFormat, SourceFormat};
use super::plan::{Choice, Plan};
use super::probe::{self, HeaderLimits};
use super::resize::{self, ResizeSpec};
use super::steps::{self, Steps};
use super::Reason;
use std::time::{Duration, Instant};

/// What to do to the pixels besides re-encoding (from URL options, later rules), in device
/// pixels. The default changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Transform {
    /// Resize (the DPR is already applied).
    pub resize: Option<ResizeSpec>,
    /// Gaussian blur sigma.
    pub blur: Option<f32>,
    /// Unsharp-mask sigma.
    pub sharpen: Option<f32>,
    /// Quality for whichever format is chosen, instead of its configured one.
    pub quality: Option<u8>,
    /// The URL's background colour: padding, and what transparency becomes when it is opaque
    /// (in every format; in a JPEG, white without one).
    pub background: Option<[u8; 4]>,
    /// Trim, turn, flip, crop, padding, effects, watermark and output controls
    /// ([`super::steps`], in its order).
    pub steps: Steps,
    /// Keep every pixel: WebP is encoded lossless (the plan offers only such formats).
    pub lossless: bool,
    /// An animated source becomes a still of its first frame (`anim=false`).
    pub first_frame: bool,
    /// Choose the quality by perceptual target (`q=auto`, [`super::auto_quality`]).
    pub auto_quality: bool,
    /// The target for it when a rule sets one (else `images.auto_quality.target`).
    pub auto_target: Option<f32>,
    /// Describe the source as JSON instead ([`super::info`]).
    pub info: bool,
}

impl Transform {
    /// Whether the output pixels differ from the source's (then the original is no fallback
    /// for a larger result: it would have the wrong size or look).
    pub(crate) fn changes_pixels(&self) -> bool {
        self.resize.is_some()
            || self.blur.is_some()
            || self.sharpen.is_some()
            || self.steps.changes_pixels()
    }

    /// The gravity crops use when they name none: the resize's.
    fn gravity(&self) -> Gravity {
        self.resize.map(|r| r.gravity).unwrap_or_default()
    }

    /// The resize box the decoder may shrink a `width`×`height` (upright) source towards: none
    /// when a trim or a crop comes first (they name full-size pixels); a quarter turn swaps
    /// the box's sides, since the decoder sees the source before the turn.
    fn shrink_spec(&self, width: u32, height: u32) -> Option<ResizeSpec> {
        if !self.steps.keeps_source_region() {
            return None;
        }
        let (w, h) = match self.steps.swaps_sides() {
            true => (height, width),
            false => (width, height),
        };
        let mut spec = steps::resize_spec(self.resize, &self.steps, w, h)?;
        if self.steps.swaps_sides() {
            (spec.width, spec.height) = (spec.height, spec.width);
        }
        Some(spec)
    }
}

/// Everything a transform needs, owned so it can move to another thread.
#[derive(Debug, Clone)]
pub struct Job {
    /// The source bytes (shared, not copied).
    pub source: bytes::Bytes,
    /// Format sniffed from the bytes.
    pub format: SourceFormat,
    /// What each source family becomes (from the client's Accept and the enabled formats).
    pub plan: Plan,
    /// Encoder settings.
    pub settings: EncodeSettings,
    /// Header limits.
    pub limits: HeaderLimits,
    /// Pixel operations.
    pub transform: Transform,
    /// Give up (and send the original) after this instant.
    pub deadline: Instant,
    /// Whether and how far animations are transformed.
    pub animation: super::animation::AnimationConfig,
    /// The perceptual target and bounds of `q=auto`.
    pub auto_quality: std::sync::Arc<super::auto_quality::AutoQualityConfig>,
    /// `images.shrink_on_load`: how much larger than the output a JPEG is decoded at least.
    pub shrink_on_load: Option<f32>,
    /// The configured watermarks (`images.watermarks`), for a transform that draws one.
    pub marks: Option<std::sync::Arc<super::marks::Marks>>,
}

impl Job {
    /// A job for `source` under a negotiation plan (the cache key holds the same plan) with
    /// the settings of `images`; the deadline is far off until the pool sets it
    /// ([`super::pool::Pool::run`]).
    pub fn for_plan(
        source: bytes::Bytes,
        format: SourceFormat,
        plan: Plan,
        images: &crate::image::config::ImagesConfig,
        limits: HeaderLimits,
    ) -> Job {
        Job {
            source,
            format,
            plan,
            settings: EncodeSettings::from(images),
            limits,
            transform: Transform::default(),
            deadline: Instant::now() + Duration::from_secs(3600),
            animation: images.animation,
            auto_quality: std::sync::Arc::new(images.auto_quality.clone()),
            shrink_on_load: images.shrink_on_load,
            marks: None,
        }
    }

    /// The same job with the configured watermarks.
    #[must_use]
    pub fn with_marks(mut self, marks: std::sync::Arc<super::marks::Marks>) -> Job {
        self.marks = Some(marks);
        self
    }

    /// The same job with per-format qualities (a rule's) replacing the configured ones.
    #[must_use]
    pub(crate) fn with_qualities(mut self, q: &[(OutputFormat, u8)]) -> Job {
        for (f, v) in q {
            self.settings = self.settings.with_quality(*f, *v);
        }
        self
    }

    /// The same job with pixel operations.
    #[must_use]
    pub fn with_transform(mut self, t: Transform) -> Job {
        self.transform = t;
        self
    }

    /// The output's pixel count, from the source's header and the geometry, before any
    /// decode: `None` for an animation or a header that does not parse. Reads the header only
    /// (not [`probe::probe`]'s walk of a JPEG's scans, which the transform does anyway).
    pub fn output_pixels(&self) -> Option<u64> {
        if probe::animation_frames(&self.source, self.format, 2) > 1 {
            return None;
        }
        let p = probe::dimensions(&self.source, self.format, self.limits).ok()?;
        let t = &self.transform;
        let (mut w, mut h) = (p.width, p.height);
        if t.steps.swaps_sides() {
            (w, h) = (h, w);
        }
        match t.steps.crop {
            Some(steps::Crop::Region([x, y, cw, ch])) => {
                w = cw.min(w.saturating_sub(x));
                h = ch.min(h.saturating_sub(y));
            }
            Some(steps::Crop::Sized { width, height, .. }) => {
                (w, h) = (width.on(w), height.on(h));
            }
            None => {}
        }
        if let Some(spec) = steps::resize_spec(t.resize, &t.steps, w, h) {
            (w, h) = resize::geometry(w, h, &spec).output();
        }
        if let Some(p) = t.steps.padding {
            w = w.saturating_add(p.left).saturating_add(p.right);
            h = h.saturating_add(p.top).saturating_add(p.bottom);
        }
        Some(u64::from(w) * u64::from(h))
    }

    /// The same job with another plan (the WebP answer while AVIF encodes).
    #[must_use]
    pub fn with_plan(mut self, plan: Plan) -> Job {
        self.plan = plan;
        self
    }
}

/// Time spent in each step.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// Decoding, orientation, colour conversion.
    pub decode: Duration,
    /// Encoding.
    pub encode: Duration,
    /// Frames encoded (1 for a still).
    pub frames: u32,
}

/// The result of a transform.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A smaller re-encoding.
    Transformed {
        /// The format produced.
        format: OutputFormat,
        /// The encoded bytes.
        bytes: bytes::Bytes,
        /// Output width.
        width: u32,
        /// Output height.
        height: u32,
        /// Step timings.
        timings: Timings,
    },
    /// Send the source unchanged, for this reason.
    Original(Reason),
    /// The source described as JSON ([`super::info`]).
    Info(bytes::Bytes),
}

/// What an animated source becomes when only a resize (or nothing) is asked and
/// `images.animation.enabled`: an animated WebP when the client takes WebP, a GIF for a GIF
/// source that is resized; `None`, the original (`animated`).
fn animated_output(job: &Job) -> Option<AnimatedOutput> {
    let t = &job.transform;
    let only_resize =
        t.blur.is_none() && t.sharpen.is_none() && !t.steps.changes_more_than_the_watermark();
    if !job.animation.enabled || !only_resize {
        return None;
    }
    let webp = match job.plan.for_source(job.format, true) {
        Choice::Encode(OutputFormat::Webp) => true,
        Choice::Encode(OutputFormat::Avif) => job.plan.webp_too,
        _ => false,
    };
    // Without a resize a GIF re-encoded frame by frame is larger than its source (whole-canvas
    // frames against the source's changed rectangles): only a resize is worth it.
    match (webp, job.format) {
        (true, _) => Some(AnimatedOutput::Webp),
        // A watermark too is worth it: the original is no answer then.
        (false, SourceFormat::Gif) if t.resize.is_some() || t.steps.watermark.is_some() => {
            Some(AnimatedOutput::Gif)
        }
        _ => None,
    }
}

/// An animated source transformed as an animation ([`animated_output`]), else the original.
fn animated(job: &Job) -> Result<Outcome, Reason> {
    let t = &job.transform;
    let output = animated_output(job).ok_or(Reason::Animated)?;
    let t0 = Instant::now();
    let canvas = probe::dimensions(&job.source, job.format, job.limits)?;
    let mut settings = match t.quality {
        Some(q) => job.settings.with_quality(OutputFormat::Webp, q),
        None => job.settings,
    };
    settings.lossless = t.lossless;
    let mark = match &t.steps.watermark {
        Some(w) => Some((
            job.marks
                .as_ref()
                .and_then(|m| m.get(w.mark))
                .ok_or(Reason::WatermarkMissing)?,
            w.placement,
        )),
        None => None,
    };
    let a = super::animation::transform(
        &job.source,
        job.format,
        (canvas.width, canvas.height),
        AnimationJob {
            resize: t.resize.as_ref(),
            settings: &settings,
            cfg: job.animation,
            output,
            deadline: job.deadline,
            mark: mark.as_ref().map(|(m, p)| (&**m, p)),
        },
    )?;
    // Never larger unless the pixels changed; and a GIF never, even resized: its frames are
    // whole-canvas, and a source of changed rectangles can be tens of times smaller (a
    // 544 KB screen recording re-encoded whole came to 38.9 MB). The original is the better
    // answer for the few clients without WebP.
    // A watermarked GIF goes whatever its size: the original is no answer.
    let gif_may_fall_back = output == AnimatedOutput::Gif && t.steps.watermark.is_none();
    if a.bytes.len() >= job.source.len() && (!t.changes_pixels() || gif_may_fall_back) {
        return Err(Reason::NotSmaller);
    }
    Ok(Outcome::Transformed {
        format: output.format(),
        bytes: a.bytes.into(),
        width: a.width,
        height: a.height,
        timings: Timings {
            decode: Duration::ZERO,
            encode: t0.elapsed(),
            frames: a.frames,
        },
    })
}

/// At most this many colours make an image a graphic worth a lossless WebP attempt.
const GRAPHIC_COLOURS: usize = 4096;

/// Whether a lossless WebP attempt is worth its encode: `images.webp.try_lossless`, a PNG or
/// GIF source, and at most [`GRAPHIC_COLOURS`] colours.
fn lossless_candidate(job: &Job, image: &image::DynamicImage) -> bool {
    job.settings.webp.try_lossless
        && matches!(job.format, SourceFormat::Png | SourceFormat::Gif)
        && few_colours(image, GRAPHIC_COLOURS)
}

/// Whether `image` has at most `max` distinct colours (RGBA; Luma and RGB are opaque). Runs of
/// one colour, the bulk of a screenshot, cost a comparison each.
pub(crate) fn few_colours(image: &image::DynamicImage, max: usize) -> bool {
    use image::DynamicImage as D;
    let pixels: Box<dyn Iterator<Item = u32> + '_> = match image {
        D::ImageRgba8(p) => Box::new(p.pixels().map(|q| u32::from_le_bytes(q.0))),
        D::ImageRgb8(p) => Box::new(
            p.pixels()
                .map(|q| u32::from_le_bytes([q[0], q[1], q[2], 255])),
        ),
        D::ImageLuma8(p) => Box::new(
            p.pixels()
                .map(|q| u32::from_le_bytes([q[0], q[0], q[0], 255])),
        ),
        _ => return false,
    };
    let mut seen = std::collections::HashSet::with_capacity(max + 1);
    let mut last = None;
    for c in pixels {
        if last == Some(c) {
            continue;
        }
        last = Some(c);
        if seen.insert(c) && seen.len() > max {
            return false;
        }
    }
    true
}

/// Runs the pipeline. Never panics on input: every failure is an [`Outcome::Original`].
pub fn run(job: &Job) -> Outcome {
    let steps = &job.transform.steps;
    if steps.skip.contains(job.format) {
        return Outcome::Original(Reason::SkipProcessing);
    }
    let limited;
    let job = match steps.source_limits == steps::SourceLimits::default() {
        true => job,
        false => {
            limited = job.tightened(&steps.source_limits);
            if let Err(r) = limited.source_within(&steps.source_limits) {
                return Outcome::Original(r);
            }
            &limited
        }
    };
    match run_steps(job) {
        Ok(o) => o,
        Err(r) => Outcome::Original(r),
    }
}

impl Job {
    /// The job under a URL's tighter source limits (the configured ones still bound them).
    fn tightened(&self, l: &steps::SourceLimits) -> Job {
        let mut job = self.clone();
        if let Some(p) = l.max_pixels {
            job.limits.max_pixels = job.limits.max_pixels.min(p);
        }
        if let Some(f) = l.max_frames {
            let f = usize::try_from(f).unwrap_or(usize::MAX);
            job.animation.max_frames = job.animation.max_frames.min(f);
        }
        let animated = probe::animation_frames(&self.source, self.format, 2) > 1;
        if let (Some(p), true) = (l.max_frame_pixels, animated) {
            job.limits.max_pixels = job.limits.max_pixels.min(p);
        }
        job
    }

    /// Whether the source's size is within `l.max_bytes`.
    fn source_within(&self, l: &steps::SourceLimits) -> Result<(), Reason> {
        match l.max_bytes {
            Some(m) if self.source.len() as u64 > m => Err(Reason::TooLarge),
            _ => Ok(()),
        }
    }
}

fn run_steps(job: &Job) -> Result<Outcome, Reason> {
    let check = || {
        if Instant::now() > job.deadline {
            Err(Reason::Timeout)
        } else {
            Ok(())
        }
    };
    let t0 = Instant::now();
    let t = &job.transform;
    if t.info {
        let max_frames = job.animation.max_frames;
        return super::info::json(&job.source, job.format, job.limits, max_frames)
            .map(|j| Outcome::Info(j.into()));
    }
    // `anim=false` makes an animation a still of its first frame: not the original's pixels.
    let mut still_of_animation = false;
    let probe = match probe::probe(&job.source, job.format, job.limits) {
        Err(Reason::Animated) if t.first_frame => {
            still_of_animation = true;
            probe::dimensions(&job.source, job.format, job.limits)?
        }
        Err(Reason::Animated) => return animated(job),
        p => p?,
    };
    let shrink_spec = t.shrink_spec(probe.width, probe.height);
    let shrink = match (&shrink_spec, job.shrink_on_load) {
        (Some(spec), Some(margin)) => Some(decode::ShrinkTo {
            spec,
            margin: f64::from(margin),
        }),
        _ => None,
    };
    let decoded = decode::decode_for(&job.source, &probe, shrink)?;
    check()?;
    let mut image = steps::before_resize(decoded.image, &t.steps, t.gravity())?;
    if let Some(spec) = steps::resize_spec(t.resize, &t.steps, image.width(), image.height()) {
        // Enlarging (a single side, or `outside`) can ask for far more pixels than the source
        // has: a 1x16384 strip at `w=4096&enlarge=1` would be 4096x67M. The output is held to
        // the source limits.
        let (w, h) = resize::geometry(image.width(), image.height(), &spec).output();
        if w > job.limits.max_dimension
            || h > job.limits.max_dimension
            || u64::from(w) * u64::from(h) > job.limits.max_pixels
        {
            return Err(Reason::TooManyPixels);
        }
        image = resize::apply(image, &spec)?;
        check()?;
    }
    let background = t.background.unwrap_or([255; 4]);
    if let (
        Some(g),
        Some(ResizeSpec {
            width: Some(w),
            height: Some(h),
            ..
        }),
    ) = (t.steps.extend_aspect, t.resize)
    {
        image = steps::extend_to_aspect(image, (w, h), g, background, job.limits)?;
    }
    if let Some(p) = t.steps.padding {
        image = steps::pad(image, p, background, job.limits)?;
    }
    if let Some(sigma) = t.blur {
        image = image.fast_blur(sigma);
    }
    if let Some(sigma) = t.sharpen {
        image = image.unsharpen(sigma, 1);
    }
    image = steps::effects(image, &t.steps);
    if let Some(wm) = &t.steps.watermark {
        let mark = job
            .marks
            .as_ref()
            .and_then(|m| m.get(wm.mark))
            .ok_or(Reason::WatermarkMissing)?;
        image = super::watermark::apply(image, &mark, &wm.placement);
    }
    let decode_time = t0.elapsed();
    check()?;
    // Padding with a transparent background can add alpha to an opaque source.
    let has_alpha = matches!(image, image::DynamicImage::ImageRgba8(_));
    let mut target = match job.plan.for_source(job.format, has_alpha) {
        Choice::Encode(f) => f,
        Choice::Keep => return Err(Reason::FormatDisabled),
    };
    // An opaque background the URL names flattens transparency in every format (imgproxy's
    // `background`); a JPEG is flattened anyway, onto white by default.
    let flatten_onto = t.background.filter(|c| c[3] == 255);
    if has_alpha && (flatten_onto.is_some() || target == OutputFormat::Jpeg) {
        let [r, g, b, _] = flatten_onto.unwrap_or([255; 4]);
        image = resize::flatten(image, [r, g, b]);
    }
    let named_quality = |f: OutputFormat| t.quality.or(t.steps.format_quality.get(f));
    let mut settings = match named_quality(target) {
        Some(q) => job.settings.with_quality(target, q),
        None => job.settings,
    };
    settings.lossless = t.lossless;
    let t1 = Instant::now();
    let encode = |f: OutputFormat, s: &EncodeSettings| {
        codec::encode(&image, f, s).map_err(|e| {
            tracing::warn!(format = f.name(), error = %e, "encode failed");
            Reason::EncodeFailed
        })
    };
    // q=auto (or a format configured to it), unless the URL named a quality.
    let auto = named_quality(target).is_none()
        && !settings.lossless
        && (t.auto_quality || job.auto_quality.formats.contains(&target));
    let chosen = auto
        .then(|| {
            let cfg = match t.auto_target {
                Some(goal) => std::borrow::Cow::Owned(super::auto_quality::AutoQualityConfig {
                    target: f64::from(goal),
                    ..(*job.auto_quality).clone()
                }),
                None => std::borrow::Cow::Borrowed(&*job.auto_quality),
            };
            super::auto_quality::encode(&image, target, &settings, &cfg)
        })
        .flatten();
    let mut out = match chosen {
        Some(c) => {
            tracing::debug!(
                format = target.name(),
                quality = c.quality,
                score = c.score,
                encodes = c.encodes,
                "auto quality"
            );
            c.bytes
        }
        None => encode(target, &settings)?,
    };
    // Graphics: lossless WebP is often smaller than lossy WebP, and than AVIF when the client
    // takes both, and exact (docs/benchmarks.md).
    let webp_allowed =
        target == OutputFormat::Webp || (target == OutputFormat::Avif && job.plan.webp_too);
    if webp_allowed && !settings.lossless && lossless_candidate(job, &image) {
        check()?;
        let exact_settings = EncodeSettings {
            lossless: true,
            ..settings
        };
        let exact = encode(OutputFormat::Webp, &exact_settings)?;
        if exact.len() < out.len() {
            out = exact;
            target = OutputFormat::Webp;
        }
    }
    let (mut width, mut height) = (image.width(), image.height());
    if let Some(limit) = t.steps.max_bytes {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        if out.len() > limit {
            check()?;
            let fitted =
                super::max_bytes::fit(&image, target, &settings, limit, out.len(), job.deadline)?;
            (out, width, height) = (fitted.bytes, fitted.width, fitted.height);
        }
    }
    if t.steps.keep_copyright {
        out = with_copyright(out, &job.source, t.steps.max_bytes);
    }
    let encode_time = t1.elapsed();
    check()?;
    // Never larger, when the original is a valid answer: same pixels, only another encoding,
    // in a format the client takes.
    if out.len() >= job.source.len()
        && !t.changes_pixels()
        && !still_of_animation
        && job.format.original_serves(target)
    {
        return Err(Reason::NotSmaller);
    }
    Ok(Outcome::Transformed {
        format: target,
        bytes: out.into(),
        width,
        height,
        timings: Timings {
            decode: decode_time,
            encode: encode_time,
            frames: 1,
        },
    })
}

/// `out` with the source's EXIF Copyright and Artist (`keep_copyright`), when the source has
/// them, the format can carry them (JPEG, PNG, WebP) and the result still fits `max_bytes`.
fn with_copyright(out: Vec<u8>, source: &[u8], max_bytes: Option<u32>) -> Vec<u8> {
    let Some(c) = super::copyright::read(source).filter(|c| !c.is_empty()) else {
        return out;
    };
    match super::copyright::insert(&out, &c) {
        Ok(with) if max_bytes.is_none_or(|m| with.len() <= m as usize) => with,
        Ok(_) => out,
        Err(why) => {
            tracing::debug!(why, "copyright not carried");
            out
        }
    }
}

#[cfg(test)]
mod colour_tests {
    use super::few_colours;

    #[test]
    fn colours_are_counted_up_to_the_bound() {
        let flat = image::RgbImage::from_fn(300, 200, |x, _| image::Rgb([(x % 10) as u8, 0, 0]));
        let img = image::DynamicImage::ImageRgb8(flat);
        assert!(few_colours(&img, 10));
        assert!(!few_colours(&img, 9));
        let noisy =
            image::RgbaImage::from_fn(100, 100, |x, y| image::Rgba([x as u8, y as u8, 7, 255]));
        assert!(!few_colours(&image::DynamicImage::ImageRgba8(noisy), 4096));
        let grey = image::GrayImage::from_fn(50, 50, |x, _| image::Luma([(x % 3) as u8]));
        assert!(few_colours(&image::DynamicImage::ImageLuma8(grey), 3));
    }
}
