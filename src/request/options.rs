//! Transform options from the query string of a proxied image URL, with the names people know
//! from imgix, Cloudflare and sharp: `w`, `h`, `fit`, `g` (gravity), `q`, `fm`, `dpr`, `blur`,
//! `sharpen`, `enlarge`, `bg`, `lossless`, `anim` (and the long forms `width`, `height`, `gravity`, `quality`,
//! `format`). Recognised parameters are removed from the origin request and become part of the
//! variant key through [`Options::canonical`]; unknown parameters are the origin's and stay.
//! A bad value is an error that names the parameter (answered 400).

use super::accept::Accept;
use super::negotiate::{plan_for, Plan};
use crate::image::format::OutputFormat;
use crate::image::pipeline::Transform;
use crate::image::resize::ResizeSpec;
pub use crate::image::resize::{Fit, Gravity};
use std::fmt;

/// The output format a URL asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FormatReq {
    /// Negotiate from Accept (the default).
    #[default]
    Auto,
    /// This format, whatever Accept says.
    Force(crate::image::format::OutputFormat),
}

impl FormatReq {
    /// `auto`, or the named format's name.
    pub fn name(self) -> &'static str {
        match self {
            FormatReq::Auto => "auto",
            FormatReq::Force(f) => f.name(),
        }
    }
}

/// Transform options. The default is the identity: re-encode only.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Options {
    /// Box width in CSS pixels (before `dpr`).
    pub width: Option<u32>,
    /// Box height in CSS pixels (before `dpr`).
    pub height: Option<u32>,
    /// How the image fits the box.
    pub fit: Fit,
    /// Where crops keep the image.
    pub gravity: Gravity,
    /// Gravity offsets in CSS pixels (imgproxy's `g:%type:%x:%y`, query `g=ce:10:5`).
    pub gravity_offset: (i32, i32),
    /// Encoder quality 1–100, overriding the format's default.
    pub quality: Option<u8>,
    /// Output format.
    pub format: FormatReq,
    /// Device pixel ratio: the box is multiplied by it (capped by `transform.max_dpr`).
    pub dpr: Option<f32>,
    /// Gaussian blur sigma (0.3–100).
    pub blur: Option<f32>,
    /// Unsharp-mask sigma (0.3–10).
    pub sharpen: Option<f32>,
    /// Allow results larger than the source.
    pub enlarge: bool,
    /// Padding colour for `fit=contain` as RGBA (default opaque white).
    pub background: Option<[u8; 4]>,
    /// Keep every pixel: only formats encoded without loss (WebP, PNG) are negotiated.
    pub lossless: bool,
    /// `anim=false`: an animated source becomes a still of its first frame.
    pub first_frame: bool,
    /// `q=auto`: the quality is chosen per image for a perceptual target.
    pub auto_quality: bool,
    /// Trim, turn, flip, crop, zoom, padding, effects, watermark and output controls
    /// ([`super::steps`]).
    pub steps: crate::image::steps::Steps,
    /// `info=1`: describe the source as JSON instead ([`crate::image::info`]).
    pub info: bool,
}

/// A bad parameter: its name and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionError {
    /// The parameter as written.
    pub param: String,
    /// What is wrong, and what is accepted.
    pub message: String,
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "parameter `{}`: {}", self.param, self.message)
    }
}

/// Largest width/height a URL may ask for, before the configured output limit applies.
const MAX_SIDE: u32 = 65_535;

use super::args::{err, float};

fn int(param: &str, v: &str, lo: u32, hi: u32) -> Result<u32, OptionError> {
    super::args::int(param, v, i64::from(lo), i64::from(hi)).map(|n| n as u32)
}

fn flag(param: &str, v: &str) -> Result<bool, OptionError> {
    super::args::flag(param, v, false)
}

/// Parses `RRGGBB`, `RRGGBBAA` or `transparent`.
fn color(param: &str, v: &str) -> Result<[u8; 4], OptionError> {
    crate::image::steps::parse_color(v).ok_or_else(|| {
        err(
            param,
            format!("`{v}` must be RRGGBB, RRGGBBAA or transparent"),
        )
    })
}

/// Whether a query parameter name is one of pixgate's.
pub fn is_option(name: &str) -> bool {
    matches!(
        name,
        "w" | "width"
            | "h"
            | "height"
            | "fit"
            | "g"
            | "gravity"
            | "q"
            | "quality"
            | "fm"
            | "format"
            | "dpr"
            | "blur"
            | "sharpen"
            | "enlarge"
            | "bg"
            | "lossless"
            | "anim"
            | "info"
    ) || super::steps::is_query_name(name)
}

impl Options {
    /// Whether these options change nothing but the encoding.
    pub fn is_identity(&self) -> bool {
        *self == Options::default()
    }

    /// Whether the output's dimensions may differ from the source's.
    pub fn resizes(&self) -> bool {
        self.width.is_some() || self.height.is_some()
    }

    /// Sets one option from a query parameter.
    pub fn set(&mut self, name: &str, v: &str) -> Result<(), OptionError> {
        match name {
            "w" | "width" => self.width = Some(int(name, v, 1, MAX_SIDE)?),
            "h" | "height" => self.height = Some(int(name, v, 1, MAX_SIDE)?),
            "fit" => {
                self.fit = Fit::parse(v).ok_or_else(|| {
                    err(name, format!("`{v}` is not one of inside, cover, contain, fill, outside (or crop, clip, max, scale-down, pad, scale, min)"))
                })?
            }
            "g" | "gravity" => {
                let args: Vec<&str> = v.split(':').collect();
                (self.gravity, self.gravity_offset) = super::steps::gravity(name, &args)?;
            }
            "q" | "quality" if v == "auto" => {
                self.quality = None;
                self.auto_quality = true;
            }
            "q" | "quality" => {
                self.quality = Some(int(name, v, 1, 100).map_err(|_| {
                    err(
                        name,
                        format!("`{v}` must be auto or a whole number from 1 to 100"),
                    )
                })? as u8);
                self.auto_quality = false;
            }
            "fm" | "format" => {
                use crate::image::format::OutputFormat as F;
                self.format = match v {
                    "auto" => FormatReq::Auto,
                    "avif" => FormatReq::Force(F::Avif),
                    "webp" => FormatReq::Force(F::Webp),
                    "jpeg" | "jpg" | "pjpg" => FormatReq::Force(F::Jpeg),
                    "png" => FormatReq::Force(F::Png),
                    "jxl" => FormatReq::Force(F::Jxl),
                    _ => {
                        return Err(err(
                            name,
                            format!("`{v}` is not one of auto, avif, webp, jpeg, png, jxl"),
                        ))
                    }
                }
            }
            "dpr" => self.dpr = Some(float(name, v, 0.1, 10.0)?),
            "blur" => self.blur = Some(float(name, v, 0.3, 100.0)?),
            "sharpen" => self.sharpen = Some(float(name, v, 0.3, 10.0)?),
            "enlarge" => self.enlarge = flag(name, v)?,
            "lossless" => self.lossless = flag(name, v)?,
            "anim" => self.first_frame = !flag(name, v)?,
            "info" => self.info = flag(name, v)?,
            "bg" => self.background = Some(color(name, v)?),
            _ => {
                let args: Vec<&str> = v.split(':').collect();
                return super::steps::set(&mut self.steps, name, &args)
                    .unwrap_or_else(|| Err(err(name, "is not a pixgate parameter")));
            }
        }
        Ok(())
    }

    /// Splits a query into options and the query that stays for the origin (`None` when
    /// nothing stays). Parameters are applied in order; a repeated one keeps its last value.
    pub fn from_query(query: &str) -> Result<(Options, Option<String>), OptionError> {
        let mut o = Options::default();
        let mut rest: Vec<&str> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode(raw_name);
            if !is_option(&name) {
                rest.push(pair);
                continue;
            }
            o.set(&name, &decode(raw_value))?;
        }
        let rest = (!rest.is_empty()).then(|| rest.join("&"));
        Ok((o, rest))
    }

    /// The canonical form: only what differs from the default, in a fixed order, so equal
    /// options give equal cache keys. [`Options::from_query`] parses it back to `self`.
    pub fn canonical(&self) -> String {
        let mut p: Vec<String> = Vec::new();
        if let Some(w) = self.width {
            p.push(format!("w={w}"));
        }
        if let Some(h) = self.height {
            p.push(format!("h={h}"));
        }
        if self.fit != Fit::default() {
            p.push(format!("fit={}", self.fit.name()));
        }
        if self.gravity != Gravity::default() || self.gravity_offset != (0, 0) {
            p.push(format!(
                "g={}",
                super::steps::gravity_name(self.gravity, self.gravity_offset)
            ));
        }
        if let Some(q) = self.quality {
            p.push(format!("q={q}"));
        }
        if self.auto_quality {
            p.push("q=auto".into());
        }
        if let FormatReq::Force(f) = self.format {
            p.push(format!("fm={}", f.name()));
        }
        if let Some(d) = self.dpr {
            p.push(format!("dpr={d}"));
        }
        if let Some(b) = self.blur {
            p.push(format!("blur={b}"));
        }
        if let Some(s) = self.sharpen {
            p.push(format!("sharpen={s}"));
        }
        if self.enlarge {
            p.push("enlarge=1".into());
        }
        if let Some([r, g, b, a]) = self.background {
            p.push(format!("bg={r:02x}{g:02x}{b:02x}{a:02x}"));
        }
        if self.lossless {
            p.push("lossless=1".into());
        }
        if self.first_frame {
            p.push("anim=0".into());
        }
        super::steps::canonical(&self.steps, &mut p);
        if self.info {
            p.push("info=1".into());
        }
        p.join("&")
    }
}

impl Options {
    /// Caps the DPR at `max_dpr` (so `dpr=5` and `dpr=3` share a variant when 3 is the cap).
    #[must_use]
    pub fn capped(mut self, max_dpr: f32) -> Options {
        self.dpr = self.dpr.map(|d| d.min(max_dpr));
        self
    }

    /// The output plan for a client's Accept and the `enabled` formats: [`plan_for`], among
    /// the formats encoded without loss when `lossless` is asked for. `None`: the format the
    /// URL names is not enabled (or, with `lossless`, has no lossless encoder).
    pub fn plan(&self, accept: &Accept, enabled: &[OutputFormat]) -> Option<Plan> {
        if !self.lossless {
            return plan_for(self.format, accept, enabled);
        }
        let lossless: Vec<OutputFormat> = enabled
            .iter()
            .copied()
            .filter(|f| f.encodes_lossless())
            .collect();
        plan_for(self.format, accept, &lossless)
    }

    /// The pixel operations these options ask for, in device pixels: the box times the DPR,
    /// scaled down proportionally so no side exceeds `max_dim`.
    pub fn transform(&self, max_dim: u32) -> Transform {
        let dpr = f64::from(self.dpr.unwrap_or(1.0));
        let scale = |v: u32| ((f64::from(v) * dpr).round() as u32).max(1);
        let (mut w, mut h) = (self.width.map(scale), self.height.map(scale));
        let longest = w.unwrap_or(0).max(h.unwrap_or(0));
        if longest > max_dim {
            let k = f64::from(max_dim) / f64::from(longest);
            let shrink = |v: u32| ((f64::from(v) * k).round() as u32).max(1);
            w = w.map(shrink);
            h = h.map(shrink);
        }
        let bg = self.background.unwrap_or([255, 255, 255, 255]);
        let mut steps = self.steps;
        // Padding and minimum sizes are CSS pixels, like the box.
        if let Some(p) = &mut steps.padding {
            for side in [&mut p.top, &mut p.right, &mut p.bottom, &mut p.left] {
                *side = ((f64::from(*side) * dpr).round() as u32).min(max_dim);
            }
        }
        let (mw, mh) = steps.min_size;
        steps.min_size = (
            mw.map(|v| scale(v).min(max_dim)),
            mh.map(|v| scale(v).min(max_dim)),
        );
        // A zoom or a minimum size without a box still resizes (the box is the image).
        let resizes =
            w.is_some() || h.is_some() || steps.zoom.is_some() || steps.min_size != (None, None);
        Transform {
            resize: resizes.then_some(ResizeSpec {
                width: w,
                height: h,
                fit: self.fit,
                gravity: self.gravity,
                enlarge: self.enlarge,
                background: bg,
                offset: (
                    (f64::from(self.gravity_offset.0) * dpr).round() as i32,
                    (f64::from(self.gravity_offset.1) * dpr).round() as i32,
                ),
            }),
            blur: self.blur,
            sharpen: self.sharpen,
            quality: self.quality,
            background: self.background,
            lossless: self.lossless,
            first_frame: self.first_frame,
            auto_quality: self.auto_quality,
            steps,
            info: self.info,
            ..Transform::default()
        }
    }
}

/// Percent-decoding of one query component (`+` is a space, as in forms).
fn decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
