//! The options for [`crate::image::steps`], parsed once for both URL styles: imgproxy's path
//! grammar (`name:arg:arg`, long or short names) and query parameters on proxied URLs (the
//! long names only, arguments joined by `:`: `?crop=300:200:sm&rotate=90`; short names such
//! as `t` or `c` stay the origin's). [`canonical`] writes them back in query form for the
//! variant key.

use super::options::{Gravity, OptionError};
use crate::image::format::OutputFormat;
use crate::image::steps::{
    parse_color, Adjust, Crop, Flip, Len, MarkName, Padding, Placement, Position, Steps, Trim,
    WatermarkUse,
};

/// The long names, which are also the query parameters.
pub const QUERY_NAMES: [&str; 25] = [
    "trim",
    "rotate",
    "flip",
    "crop",
    "zoom",
    "min-width",
    "min-height",
    "padding",
    "pixelate",
    "adjust",
    "brightness",
    "contrast",
    "saturation",
    "watermark",
    "max_bytes",
    "format_quality",
    "keep_copyright",
    "strip_metadata",
    "extend_aspect_ratio",
    "max_result_dimension",
    "max_src_resolution",
    "max_src_file_size",
    "max_animation_frames",
    "max_animation_frame_resolution",
    "skip_processing",
];

/// The long name of an imgproxy name or short name, when it is a step option.
fn long_name(name: &str) -> Option<&'static str> {
    Some(match name {
        "t" => "trim",
        "rot" => "rotate",
        "fl" => "flip",
        "c" => "crop",
        "z" => "zoom",
        "mw" | "min_width" => "min-width",
        "mh" | "min_height" => "min-height",
        "pd" => "padding",
        "pix" => "pixelate",
        "a" => "adjust",
        "br" => "brightness",
        "co" => "contrast",
        "sa" => "saturation",
        "wm" => "watermark",
        "mb" => "max_bytes",
        "fq" => "format_quality",
        "kcr" => "keep_copyright",
        "sm" => "strip_metadata",
        "exar" | "extend_ar" => "extend_aspect_ratio",
        "mrd" => "max_result_dimension",
        "msr" => "max_src_resolution",
        "msfs" => "max_src_file_size",
        "maf" => "max_animation_frames",
        "mafr" => "max_animation_frame_resolution",
        "skp" => "skip_processing",
        // Not a query parameter (a common name on sites): the path grammar only.
        "raw" => "raw",
        other => return QUERY_NAMES.iter().find(|n| **n == other).copied(),
    })
}

use super::args::{err, float, int};

fn flag(param: &str, v: &str) -> Result<bool, OptionError> {
    super::args::flag(param, v, true)
}

/// A gravity with optional offsets: `type[:x:y]` or `fp:X:Y` (imgproxy's arguments); `sm`
/// and `fp` take no offsets.
pub fn gravity(name: &str, args: &[&str]) -> Result<(Gravity, (i32, i32)), OptionError> {
    let bad = |v: &str| {
        err(
            name,
            format!("`{v}` is not a gravity: ce, no, so, ea, we, noea, nowe, soea, sowe, sm, fp:X:Y (X and Y from 0 to 1), with optional offsets type:X:Y"),
        )
    };
    let arg = |i: usize| args.get(i).copied().unwrap_or("");
    if arg(0) == "fp" {
        if args.len() > 3 {
            return Err(err(name, "a focal point takes no offsets"));
        }
        let g = Gravity::parse(&format!("fp:{}:{}", arg(1), arg(2)))
            .ok_or_else(|| bad(&args.join(":")))?;
        return Ok((g, (0, 0)));
    }
    if args.len() > 3 {
        return Err(err(name, "takes a gravity and at most two offsets"));
    }
    let g = Gravity::parse(arg(0)).ok_or_else(|| bad(arg(0)))?;
    let offset = |i: usize| match arg(i) {
        "" => Ok(0),
        v => int(name, v, -65_535, 65_535).map(|n| n as i32),
    };
    let off = (offset(1)?, offset(2)?);
    if g == Gravity::Smart && off != (0, 0) {
        return Err(err(name, "smart gravity takes no offsets"));
    }
    Ok((g, off))
}

/// Where an image sits on a larger canvas (`extend`, `extend_aspect_ratio`): a [`gravity`]
/// other than `sm` and `fp`, which name no place on a canvas.
pub fn canvas_gravity(name: &str, args: &[&str]) -> Result<(Gravity, (i32, i32)), OptionError> {
    let (g, off) = gravity(name, args)?;
    if matches!(g, Gravity::Smart | Gravity::Focus(..)) {
        return Err(err(
            name,
            "the padding's gravity is one of ce, no, so, ea, we, noea, nowe, soea, sowe",
        ));
    }
    Ok((g, off))
}

/// The canonical form of a gravity with offsets ([`gravity`] reads it back).
pub fn gravity_name(g: Gravity, (x, y): (i32, i32)) -> String {
    match (x, y) {
        (0, 0) => g.name(),
        _ => format!("{}:{x}:{y}", g.name()),
    }
}

/// Sets the step option `name` (a long or short name) from its arguments. `None`: `name` is
/// not a step option.
pub fn set(s: &mut Steps, name: &str, args: &[&str]) -> Option<Result<(), OptionError>> {
    let long = long_name(name)?;
    Some(apply(s, name, long, args))
}

/// Whether a query parameter is a step option (long names only).
pub fn is_query_name(name: &str) -> bool {
    QUERY_NAMES.contains(&name)
}

fn apply(s: &mut Steps, name: &str, long: &str, args: &[&str]) -> Result<(), OptionError> {
    let arg = |i: usize| args.get(i).copied().unwrap_or("");
    let max_args = |n: usize| {
        if args.len() > n {
            Err(err(name, format!("takes at most {n} arguments")))
        } else {
            Ok(())
        }
    };
    match long {
        "trim" => {
            max_args(4)?;
            let threshold = float(name, arg(0), 0.0, 255.0)?;
            let color = match arg(1) {
                "" => None,
                c => {
                    let [r, g, b, _] = parse_color(c)
                        .filter(|_| c.len() == 6)
                        .ok_or_else(|| err(name, format!("colour `{c}` must be RRGGBB")))?;
                    Some([r, g, b])
                }
            };
            s.trim = Some(Trim {
                threshold,
                color,
                equal_hor: flag(name, arg(2))?,
                equal_ver: flag(name, arg(3))?,
            });
        }
        "rotate" => {
            max_args(1)?;
            let a = int(name, arg(0), -3600, 3600)?;
            if a % 90 != 0 {
                return Err(err(name, format!("`{a}` is not a multiple of 90")));
            }
            s.rotate = a.rem_euclid(360) as u16;
        }
        "flip" => {
            max_args(2)?;
            s.flip = match (arg(0), args.len()) {
                ("h", 1) => Flip {
                    horizontal: true,
                    vertical: false,
                },
                ("v", 1) => Flip {
                    horizontal: false,
                    vertical: true,
                },
                ("hv" | "vh" | "both", 1) => Flip {
                    horizontal: true,
                    vertical: true,
                },
                _ => Flip {
                    horizontal: flag(name, arg(0))?,
                    vertical: flag(name, arg(1))?,
                },
            };
        }
        "crop" => {
            let len = |v: &str| {
                Len::parse(v).ok_or_else(|| {
                    err(
                        name,
                        format!("`{v}` must be pixels, 0 (the whole side) or a fraction below 1"),
                    )
                })
            };
            let (width, height) = (len(arg(0))?, len(arg(1))?);
            let (gravity, offset) = match arg(2) {
                "" => (None, (0, 0)),
                _ => {
                    let (g, off) = gravity(name, &args[2..])?;
                    (Some(g), off)
                }
            };
            s.crop = match (width, height) {
                (Len::Full, Len::Full) => None,
                _ => Some(Crop::Sized {
                    width,
                    height,
                    gravity,
                    offset,
                }),
            };
        }
        "zoom" => {
            max_args(2)?;
            let x = float(name, arg(0), 0.01, 10.0)?;
            let y = match arg(1) {
                "" => x,
                v => float(name, v, 0.01, 10.0)?,
            };
            s.zoom = ((x, y) != (1.0, 1.0)).then_some((x, y));
        }
        "min-width" | "min-height" => {
            max_args(1)?;
            let v = match int(name, arg(0), 0, 65_535)? {
                0 => None,
                v => Some(v as u32),
            };
            match long {
                "min-width" => s.min_size.0 = v,
                _ => s.min_size.1 = v,
            }
        }
        "padding" => {
            max_args(4)?;
            let side = |i: usize, or: u32| match arg(i) {
                "" => Ok(or),
                v => int(name, v, 0, 4096).map(|n| n as u32),
            };
            let top = side(0, 0)?;
            let right = side(1, top)?;
            let bottom = side(2, top)?;
            let left = side(3, right)?;
            let p = Padding {
                top,
                right,
                bottom,
                left,
            };
            s.padding = (p != Padding::default()).then_some(p);
        }
        "pixelate" => {
            max_args(1)?;
            s.pixelate = match int(name, arg(0), 0, 4096)? {
                0 | 1 => None,
                n => Some(n as u32),
            };
        }
        "adjust" | "brightness" | "contrast" | "saturation" => {
            let mut a = s.adjust.unwrap_or_default();
            let parts: &[(&str, usize)] = match long {
                "adjust" => &[("brightness", 0), ("contrast", 1), ("saturation", 2)],
                other => &[(other, 0)],
            };
            max_args(parts.len())?;
            for (what, i) in parts {
                match (*what, arg(*i)) {
                    (_, "") => {}
                    ("brightness", v) => a.brightness = int(name, v, -255, 255)? as i16,
                    ("contrast", v) => a.contrast = float(name, v, 0.0, 10.0)?,
                    (_, v) => a.saturation = float(name, v, 0.0, 10.0)?,
                }
            }
            s.adjust = (a != Adjust::default()).then_some(a);
        }
        "watermark" => {
            max_args(6)?;
            let opacity = float(name, arg(0), 0.0, 1.0)?;
            if opacity == 0.0 {
                s.watermark = None;
                return Ok(());
            }
            let position = match arg(1) {
                "" => Position::default(),
                p => Position::parse(p).ok_or_else(|| {
                    err(name, format!("`{p}` is not a position: ce, no, so, ea, we, noea, nowe, soea, sowe, re"))
                })?,
            };
            let offset = |i: usize| match arg(i) {
                "" => Ok(0),
                v => int(name, v, -4096, 4096).map(|n| n as i32),
            };
            let scale = match arg(4) {
                "" => 0.0,
                v => float(name, v, 0.0, 1.0)?,
            };
            let mark = match arg(5) {
                "" => MarkName::DEFAULT,
                m => MarkName::new(m).ok_or_else(|| {
                    err(
                        name,
                        format!("`{m}` is not a watermark name (a-z, 0-9, _ and -, up to 16)"),
                    )
                })?,
            };
            s.watermark = Some(WatermarkUse {
                mark,
                placement: Placement {
                    opacity,
                    position,
                    x: offset(2)?,
                    y: offset(3)?,
                    scale,
                },
            });
        }
        "max_bytes" => {
            max_args(1)?;
            s.max_bytes = match int(name, arg(0), 0, 1 << 30)? {
                0 => None,
                n => Some(n as u32),
            };
        }
        "format_quality" => {
            if args.len() % 2 != 0 || args.is_empty() {
                return Err(err(
                    name,
                    "takes pairs of format and quality, e.g. avif:50:webp:70",
                ));
            }
            for pair in args.chunks(2) {
                let f = match pair[0] {
                    "avif" => OutputFormat::Avif,
                    "webp" => OutputFormat::Webp,
                    "jpeg" | "jpg" => OutputFormat::Jpeg,
                    "jxl" => OutputFormat::Jxl,
                    other => {
                        return Err(err(
                            name,
                            format!(
                                "`{other}` is not a format with a quality: avif, webp, jpeg, jxl"
                            ),
                        ))
                    }
                };
                let q = int(name, pair[1], 0, 100)? as u8;
                s.format_quality.set(f, q);
            }
        }
        "keep_copyright" => {
            max_args(1)?;
            s.keep_copyright = flag(name, arg(0))?;
        }
        "extend_aspect_ratio" => {
            max_args(4)?;
            s.extend_aspect = match flag(name, arg(0))? {
                false => None,
                true if arg(1).is_empty() => Some(Gravity::Center),
                true => {
                    let (g, off) = canvas_gravity(name, &args[1..])?;
                    if off != (0, 0) {
                        return Err(err(name, "gravity offsets are not supported"));
                    }
                    Some(g)
                }
            };
        }
        "max_result_dimension" => {
            max_args(1)?;
            s.max_result = match int(name, arg(0), 0, 65_535)? {
                0 => None,
                n => Some(n as u32),
            };
        }
        "max_src_resolution" | "max_animation_frame_resolution" => {
            max_args(1)?;
            let mp = float(name, arg(0), 0.0, 10_000.0)?;
            let px = (mp > 0.0).then(|| (f64::from(mp) * 1e6).round() as u64);
            match long {
                "max_src_resolution" => s.source_limits.max_pixels = px,
                _ => s.source_limits.max_frame_pixels = px,
            }
        }
        "max_src_file_size" => {
            max_args(1)?;
            s.source_limits.max_bytes = match int(name, arg(0), 0, 1 << 40)? {
                0 => None,
                n => Some(n as u64),
            };
        }
        "max_animation_frames" => {
            max_args(1)?;
            s.source_limits.max_frames = match int(name, arg(0), 0, 1_000_000)? {
                0 => None,
                n => Some(n as u32),
            };
        }
        "skip_processing" => {
            use crate::image::format::SourceFormat as F;
            if args.is_empty() {
                return Err(err(name, "names the source formats to send as they are"));
            }
            for f in args {
                match *f {
                    "jpeg" | "jpg" => s.skip.add(F::Jpeg),
                    "png" => s.skip.add(F::Png),
                    "gif" => s.skip.add(F::Gif),
                    "webp" => s.skip.add(F::Webp),
                    "avif" => s.skip.add(F::Avif),
                    "heic" | "heif" => s.skip.add(F::Heic),
                    "all" => s.skip = crate::image::steps::SkipFormats::ALL,
                    // Never transformed anyway.
                    "svg" => {}
                    other => {
                        return Err(err(
                            name,
                            format!("`{other}` is not a source format: jpeg, png, gif, webp, avif, heic, svg"),
                        ))
                    }
                }
            }
        }
        "raw" => {
            max_args(1)?;
            if flag(name, arg(0))? {
                s.skip = crate::image::steps::SkipFormats::ALL;
            }
        }
        // Outputs are encoded from pixels, so metadata is always stripped; `0` keeps what
        // `keep_copyright` keeps (never a position, a camera serial or a date).
        _ => {
            max_args(1)?;
            s.keep_copyright = !flag(name, arg(0))?;
        }
    }
    Ok(())
}

fn trim_part(t: &Trim) -> String {
    let color = t
        .color
        .map(|[r, g, b]| format!("{r:02x}{g:02x}{b:02x}"))
        .unwrap_or_default();
    format!(
        "trim={}:{color}:{}:{}",
        t.threshold,
        u8::from(t.equal_hor),
        u8::from(t.equal_ver)
    )
}

/// The steps in query form, in a fixed order: [`set`] reads each part back to the same value.
pub fn canonical(s: &Steps, out: &mut Vec<String>) {
    if let Some(t) = &s.trim {
        out.push(trim_part(t));
    }
    if s.rotate != 0 {
        out.push(format!("rotate={}", s.rotate));
    }
    if s.flip != Flip::default() {
        out.push(format!(
            "flip={}:{}",
            u8::from(s.flip.horizontal),
            u8::from(s.flip.vertical)
        ));
    }
    match s.crop {
        Some(Crop::Sized {
            width,
            height,
            gravity,
            offset,
        }) => {
            let g = gravity
                .map(|g| format!(":{}", gravity_name(g, offset)))
                .unwrap_or_default();
            out.push(format!("crop={}:{}{g}", width.name(), height.name()));
        }
        // The upload service's exact regions never come from a URL.
        Some(Crop::Region([x, y, w, h])) => out.push(format!("region={x}:{y}:{w}:{h}")),
        None => {}
    }
    if let Some((x, y)) = s.zoom {
        out.push(format!("zoom={x}:{y}"));
    }
    if let Some(w) = s.min_size.0 {
        out.push(format!("min-width={w}"));
    }
    if let Some(h) = s.min_size.1 {
        out.push(format!("min-height={h}"));
    }
    if let Some(p) = s.padding {
        out.push(format!(
            "padding={}:{}:{}:{}",
            p.top, p.right, p.bottom, p.left
        ));
    }
    if let Some(n) = s.pixelate {
        out.push(format!("pixelate={n}"));
    }
    if let Some(a) = s.adjust {
        out.push(format!(
            "adjust={}:{}:{}",
            a.brightness, a.contrast, a.saturation
        ));
    }
    if let Some(w) = &s.watermark {
        let p = &w.placement;
        out.push(format!(
            "watermark={}:{}:{}:{}:{}:{}",
            p.opacity,
            p.position.name(),
            p.x,
            p.y,
            p.scale,
            w.mark.as_str()
        ));
    }
    if let Some(m) = s.max_bytes {
        out.push(format!("max_bytes={m}"));
    }
    let fq: Vec<String> = s
        .format_quality
        .iter()
        .map(|(f, q)| format!("{}:{q}", f.name()))
        .collect();
    if !fq.is_empty() {
        out.push(format!("format_quality={}", fq.join(":")));
    }
    if s.keep_copyright {
        out.push("keep_copyright=1".into());
    }
    if let Some(g) = s.extend_aspect {
        out.push(format!("extend_aspect_ratio=1:{}", g.name()));
    }
    if let Some(m) = s.max_result {
        out.push(format!("max_result_dimension={m}"));
    }
    let l = &s.source_limits;
    let mp = |p: u64| p as f64 / 1e6;
    if let Some(p) = l.max_pixels {
        out.push(format!("max_src_resolution={}", mp(p)));
    }
    if let Some(b) = l.max_bytes {
        out.push(format!("max_src_file_size={b}"));
    }
    if let Some(f) = l.max_frames {
        out.push(format!("max_animation_frames={f}"));
    }
    if let Some(p) = l.max_frame_pixels {
        out.push(format!("max_animation_frame_resolution={}", mp(p)));
    }
    if s.skip != crate::image::steps::SkipFormats::default() {
        out.push(format!("skip_processing={}", s.skip.names().join(":")));
    }
}

/// Random steps whose canonical form reads back to them (for the option proptests).
#[cfg(test)]
pub(crate) mod arb;

#[cfg(test)]
mod tests;
