//! imgproxy's URL grammar, so existing imgproxy templates work unchanged:
//!
//! ```text
//! /{signature}/{option}/{option}/.../plain/{source url}[@{ext}]
//! /{signature}/{option}/{option}/.../{base64url(source url)}[.{ext}]
//! ```
//!
//! Options are `name:arg:arg`. The signature (everything before the first option) is checked
//! by [`crate::security::signing::Signer`] against the signed part ([`ApiUrl::signed`]). The
//! supported subset maps onto [`Options`]; anything else is an error that names the option
//! (docs/url-api.md has the table).

use super::options::{Fit, FormatReq, OptionError, Options};
use base64::Engine;

/// A parsed API path.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiUrl {
    /// The signature segment as written.
    pub signature: String,
    /// The signed part: everything after the signature, with its leading `/`.
    pub signed: String,
    /// The transform options.
    pub options: Options,
    /// The source URL.
    pub source: String,
    /// `exp:` — not valid after this Unix time.
    pub expires: Option<u64>,
    /// `filename:`/`return_attachment:` — the answer's `Content-Disposition`.
    pub disposition: Option<Disposition>,
}

/// What `filename` and `return_attachment` ask for: a `Content-Disposition` header (never
/// logged: only the answer carries it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Disposition {
    /// The name without its extension (the output format's is added); `None`: the source
    /// URL's last path segment.
    pub filename: Option<String>,
    /// `attachment` (download) instead of `inline`.
    pub attachment: bool,
}

impl Disposition {
    /// The header value for an answer of extension `ext` from a source at `source_path`,
    /// as RFC 6266: an ASCII `filename` and a UTF-8 `filename*`.
    pub fn header(&self, ext: &str, source_path: &str) -> String {
        let stem = match &self.filename {
            Some(f) => f.clone(),
            None => {
                let last = source_path.split('?').next().unwrap_or("");
                let last = last.rsplit('/').next().unwrap_or("");
                let last = percent_decode(last);
                match last.rsplit_once('.') {
                    Some((stem, _)) if !stem.is_empty() => stem.to_string(),
                    _ if !last.is_empty() => last,
                    _ => "image".to_string(),
                }
            }
        };
        let name = format!("{stem}.{ext}");
        let ascii: String = name
            .chars()
            .map(|c| match c {
                ' '..='~' if c != '"' && c != '\\' => c,
                _ => '_',
            })
            .collect();
        let utf8: String = name
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let kind = if self.attachment {
            "attachment"
        } else {
            "inline"
        };
        format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{utf8}")
    }

    /// What the cache key adds: the answer's headers differ.
    pub fn key_part(&self) -> String {
        format!(
            ";cd={}:{}",
            u8::from(self.attachment),
            self.filename.as_deref().unwrap_or("")
        )
    }
}

/// What the options of one path set besides [`Options`].
#[derive(Default)]
struct Parsed {
    /// `extend` (applied after every option).
    extend: bool,
    /// `background_alpha` (applied after every option).
    bg_alpha: Option<u8>,
    expires: Option<u64>,
    disposition: Option<Disposition>,
}

/// `filename:%name:%encoded`: at most 255 bytes, no control characters or path separators.
fn filename(name: &str, args: &[&str]) -> Result<String, OptionError> {
    let raw = args.first().copied().unwrap_or("");
    let f = if truthy(name, args.get(1).copied().unwrap_or(""))? {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(raw.trim_end_matches('='))
            .map_err(|_| err(name, "the encoded filename is not base64url"))?;
        String::from_utf8(bytes).map_err(|_| err(name, "the filename is not UTF-8"))?
    } else {
        percent_decode(raw)
    };
    if f.is_empty() || f.len() > 255 || f.chars().any(|c| c.is_control() || c == '/' || c == '\\') {
        return Err(err(
            name,
            "a filename is 1-255 bytes without control characters or slashes",
        ));
    }
    Ok(f)
}

use super::args::err;

fn format_of(ext: &str) -> Result<FormatReq, OptionError> {
    let mut o = Options::default();
    o.set("fm", ext).map_err(|_| {
        err(
            "format",
            format!("`{ext}` is not one of avif, webp, jpeg, jpg, png, jxl"),
        )
    })?;
    Ok(o.format)
}

fn truthy(name: &str, v: &str) -> Result<bool, OptionError> {
    super::args::flag(name, v, true)
}

/// `0` or empty means "not set" for imgproxy's sizes.
fn size(o: &mut Options, name: &str, key: &str, v: &str) -> Result<(), OptionError> {
    if v.is_empty() || v == "0" {
        return Ok(());
    }
    o.set(key, v).map_err(|e| err(name, e.message))
}

fn resizing_type(o: &mut Options, name: &str, v: &str) -> Result<(), OptionError> {
    o.fit = match v {
        "" => return Ok(()),
        "fit" => Fit::Inside,
        "fill" | "fill-down" | "auto" => Fit::Cover,
        "force" => Fit::Fill,
        _ => {
            return Err(err(
                name,
                format!("`{v}` is not one of fit, fill, fill-down, force, auto"),
            ))
        }
    };
    Ok(())
}

/// imgproxy's `extend:%extend:%gravity` (also the tail of `resize` and `size`): the result is
/// padded to the box, placed by the gravity. A flag, applied after every option, since
/// imgproxy's options do not depend on their order.
fn extend_with(
    o: &mut Options,
    extend: &mut bool,
    name: &str,
    args: &[&str],
) -> Result<(), OptionError> {
    let arg = |i: usize| args.get(i).copied().unwrap_or("");
    *extend = truthy(name, arg(0))?;
    if *extend && !arg(1).is_empty() {
        (o.gravity, o.gravity_offset) = super::steps::canvas_gravity(name, &args[1..])?;
    }
    Ok(())
}

/// Looks up a preset's option string (query form, e.g. `w=200&h=200&fit=cover`).
pub type Presets<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Applies one `name:args` option.
fn apply(o: &mut Options, st: &mut Parsed, seg: &str, presets: Presets) -> Result<(), OptionError> {
    let mut parts = seg.split(':');
    let name = parts.next().unwrap_or_default();
    let args: Vec<&str> = parts.collect();
    let arg = |i: usize| args.get(i).copied().unwrap_or("");
    match name {
        "resize" | "rs" => {
            resizing_type(o, name, arg(0))?;
            size(o, name, "w", arg(1))?;
            size(o, name, "h", arg(2))?;
            o.enlarge = truthy(name, arg(3))? || o.enlarge;
            // Only when given: `rs:fit:300:150` keeps an earlier `ex:1`.
            if args.len() > 4 {
                extend_with(o, &mut st.extend, name, &args[4..])?;
            }
        }
        "size" | "s" => {
            size(o, name, "w", arg(0))?;
            size(o, name, "h", arg(1))?;
            o.enlarge = truthy(name, arg(2))? || o.enlarge;
            if args.len() > 3 {
                extend_with(o, &mut st.extend, name, &args[3..])?;
            }
        }
        "resizing_type" | "rt" => resizing_type(o, name, arg(0))?,
        "width" | "w" => size(o, name, "w", arg(0))?,
        "height" | "h" => size(o, name, "h", arg(0))?,
        "enlarge" | "el" => o.enlarge = truthy(name, arg(0))?,
        "extend" | "ex" => extend_with(o, &mut st.extend, name, &args)?,
        "dpr" => o.set("dpr", arg(0)).map_err(|e| err(name, e.message))?,
        "quality" | "q" => {
            if arg(0) != "0" {
                o.set("q", arg(0)).map_err(|e| err(name, e.message))?
            }
        }
        "format" | "f" | "ext" => o.format = format_of(arg(0)).map_err(|e| err(name, e.message))?,
        "blur" | "bl" => {
            if arg(0) != "0" {
                o.set("blur", arg(0)).map_err(|e| err(name, e.message))?
            }
        }
        "sharpen" | "sh" => {
            if arg(0) != "0" {
                o.set("sharpen", arg(0)).map_err(|e| err(name, e.message))?
            }
        }
        "gravity" | "g" => (o.gravity, o.gravity_offset) = super::steps::gravity(name, &args)?,
        "background" | "bg" => {
            let hex = if args.len() == 3 {
                let c: Result<Vec<u8>, _> = args.iter().map(|a| a.parse::<u8>()).collect();
                let c = c.map_err(|_| err(name, "R:G:B must be numbers from 0 to 255"))?;
                format!("{:02x}{:02x}{:02x}", c[0], c[1], c[2])
            } else {
                arg(0).to_string()
            };
            o.set("bg", &hex).map_err(|e| err(name, e.message))?;
        }
        // Colours are converted to sRGB and outputs encoded from pixels: no source profile
        // describes them any more.
        "strip_color_profile" | "scp" => {
            truthy(name, arg(0))?;
        }
        // A hint to use an embedded thumbnail: pixgate decodes the primary image, reduced
        // (a JPEG at 1/8 when that covers the output), so there is nothing to enforce.
        "enforce_thumbnail" | "eth" => {
            truthy(name, arg(0))?;
        }
        // Lanczos3 is the only resampling filter.
        "resizing_algorithm" | "ra" => {
            if !matches!(arg(0), "lanczos3" | "") {
                return Err(err(
                    name,
                    format!(
                        "`{}` is not supported: pixgate resizes with lanczos3",
                        arg(0)
                    ),
                ));
            }
        }
        "background_alpha" | "bga" => {
            let a = arg(0)
                .parse::<f32>()
                .ok()
                .filter(|a| (0.0..=1.0).contains(a))
                .ok_or_else(|| err(name, format!("`{}` must be a number from 0 to 1", arg(0))))?;
            st.bg_alpha = Some((a * 255.0).round() as u8);
        }
        // Always applied: EXIF orientation is part of decoding.
        "auto_rotate" | "ar" => {
            if !truthy(name, arg(0))? {
                return Err(err(
                    name,
                    "`0` is not supported: orientation is always applied",
                ));
            }
        }
        "disable_animation" | "da" => o.first_frame = truthy(name, arg(0))?,
        "cachebuster" | "cb" => {}
        "filename" | "fn" => {
            let f = filename(name, &args)?;
            st.disposition
                .get_or_insert_with(Disposition::default)
                .filename = Some(f);
        }
        "return_attachment" | "att" => {
            let a = truthy(name, arg(0))?;
            st.disposition
                .get_or_insert_with(Disposition::default)
                .attachment = a;
        }
        "expires" | "exp" => {
            st.expires = Some(
                arg(0)
                    .parse()
                    .map_err(|_| err(name, "must be a Unix timestamp"))?,
            )
        }
        "preset" | "pr" => {
            for p in &args {
                let set = presets(p).ok_or_else(|| err(name, format!("unknown preset `{p}`")))?;
                for (k, v) in form_urlencoded::parse(set.as_bytes()) {
                    o.set(&k, &v)
                        .map_err(|e| err(name, format!("preset `{p}`: {e}")))?;
                }
            }
        }
        "" => return Err(err(seg, "an empty option")),
        other => {
            return super::steps::set(&mut o.steps, other, &args).unwrap_or_else(|| {
                Err(err(
                    other,
                    "is not supported by pixgate (docs/url-api.md lists what is)",
                ))
            })
        }
    }
    Ok(())
}

/// Parses a path (after the API prefix), e.g. `/sig/rs:fill:300:200/plain/http://x/a.jpg@webp`.
pub fn parse(path: &str, presets: Presets) -> Result<ApiUrl, OptionError> {
    let rest = path.strip_prefix('/').unwrap_or(path);
    // `/info/{signature}/...`: the same URL, answered with the source's description.
    let (info, rest) = match rest.strip_prefix("info/") {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let (signature, after) = rest
        .split_once('/')
        .ok_or_else(|| err("path", "expected /{signature}/{options}/{source}"))?;
    let segs: Vec<&str> = after.split('/').collect();
    let mut o = Options::default();
    let mut st = Parsed::default();
    let mut source = None;
    for (i, seg) in segs.iter().enumerate() {
        if *seg == "plain" {
            let raw = segs[i + 1..].join("/");
            let (url, ext) = match raw.rsplit_once('@') {
                Some((u, e)) if !e.is_empty() && !e.contains('/') => (u.to_string(), Some(e)),
                _ => (raw.clone(), None),
            };
            if let Some(e) = ext {
                o.format = format_of(e)?;
            }
            source = Some(percent_decode(&url));
            break;
        }
        if seg.contains(':') {
            apply(&mut o, &mut st, seg, presets)?;
            continue;
        }
        // The encoded source, possibly split by slashes, with an optional .ext.
        let joined: String = segs[i..].concat();
        let (b64, ext) = match joined.rsplit_once('.') {
            Some((b, e)) => (b.to_string(), Some(e.to_string())),
            None => (joined, None),
        };
        if let Some(e) = ext {
            o.format = format_of(&e)?;
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b64.trim_end_matches('='))
            .map_err(|_| err("source", "the encoded source URL is not base64url"))?;
        source = Some(
            String::from_utf8(bytes).map_err(|_| err("source", "the source URL is not UTF-8"))?,
        );
        break;
    }
    let source = source.filter(|s| !s.is_empty()).ok_or_else(|| {
        err(
            "source",
            "no source URL: use /plain/{url} or a base64url segment",
        )
    })?;
    o.info = info;
    if st.extend {
        o.fit = Fit::Contain;
    }
    // `bga` sets the alpha of `bg` (white when no `bg` is given), whatever the order.
    if let Some(a) = st.bg_alpha {
        let [r, g, b, _] = o.background.unwrap_or([255; 4]);
        o.background = Some([r, g, b, a]);
    }
    Ok(ApiUrl {
        signature: signature.to_string(),
        signed: format!("/{after}"),
        options: o,
        source,
        expires: st.expires,
        disposition: st.disposition,
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests;
