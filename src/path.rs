//! The one normal form of a path. pixgate matches rules, names cache entries, purges, assigns
//! tenants and asks the origin by the same path, so `/%70rivate/a.png`, `//private/a.png` and
//! `/x/../private/a.png` are all `/private/a.png` everywhere, and a rule on `/private/**`
//! cannot be walked around.
//!
//! [`normalize`] (RFC 3986 §6.2.2), on the bytes as sent:
//! - percent-escapes of unreserved characters (`A–Z a–z 0–9 - . _ ~`) are decoded; every other
//!   escape stays encoded, with its hex digits in upper case; bytes that may not stand raw in a
//!   path (non-ASCII, space, `"<>[]{}|^` and the like) are percent-encoded, so `/é`,
//!   `/%c3%a9` and `/%C3%A9` are one path;
//! - dot segments are removed (§5.2.4; `..` above the root stays at the root);
//! - repeated slashes are merged (request paths; a remote source's path keeps them).
//!
//! Refused (the caller answers 400): a malformed escape, an encoded NUL, a raw `\` (a separator
//! to some servers), an encoded `/` or `\` unless [`EncodedSlashes::Keep`] (an origin that
//! decodes it would fetch a path the rules never judged), a dot segment carrying parameters
//! (`..;x`, which Tomcat-style servers treat as `..`), and a segment that becomes a dot segment
//! or a separator only after one or two more decodings (`%252e%252e`, `%252F`).
//!
//! Case is kept: `/PRIVATE/` and `/private/` are different paths to pixgate; so are `/a;x` and
//! `/a`. Whether they are the same file is the origin's business (docs/hardening.md).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a path has no normal form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// `%` not followed by two hex digits.
    BadEscape,
    /// `%00`.
    Nul,
    /// A raw `\`, or (unless kept) `%2F` / `%5C`: a separator hidden from the rules.
    Separator,
    /// A dot segment hidden by an escape, a second decoding or `;` parameters.
    HiddenDotSegment,
    /// Not an origin-form path (does not start with `/`).
    NotAbsolute,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathError::BadEscape => "the path has a malformed percent-escape",
            PathError::Nul => "the path has an encoded NUL",
            PathError::Separator => "the path has a `\\` or an encoded `/` or `\\`",
            PathError::HiddenDotSegment => "the path has an encoded or parameterised dot segment",
            PathError::NotAbsolute => "the request target must be a path starting with `/`",
        })
    }
}

impl std::error::Error for PathError {}

/// What an encoded `/` or `\` (`%2F`, `%5C`) in a request path gets (`server.encoded_slashes`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EncodedSlashes {
    /// 400: an origin that decodes it (nginx, many static servers) would serve a path the
    /// rules never judged. The default.
    #[default]
    Refuse,
    /// Kept as data inside its segment (APIs that put `group%2Fproject` in one segment);
    /// only safe when the origin does not decode it into a separator.
    Keep,
}

/// How a path is normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Form {
    /// `%2F` / `%5C`.
    pub encoded_slashes: EncodedSlashes,
    /// Merge `//` into `/`.
    pub merge_slashes: bool,
}

impl Form {
    /// A request path: encoded slashes as configured, slashes merged.
    pub const fn request(encoded_slashes: EncodedSlashes) -> Form {
        Form {
            encoded_slashes,
            merge_slashes: true,
        }
    }

    /// A remote source's path (the URL API): encoded slashes kept as data (storage APIs name
    /// objects `images%2Fphoto.jpg`), `//` kept; hidden dot segments refused all the same.
    pub const SOURCE: Form = Form {
        encoded_slashes: EncodedSlashes::Keep,
        merge_slashes: false,
    };
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// May stand raw in a path segment (RFC 3986 `pchar` minus `%`, which is handled apart).
fn pchar(b: u8) -> bool {
    unreserved(b) || b"!$&'()*+,;=:@".contains(&b)
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn push_escaped(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(HEX[usize::from(b >> 4)] as char);
    out.push(HEX[usize::from(b & 15)] as char);
}

/// Whether `target` (path and optional query, as sent) is already in normal form, checked
/// without allocating: the common request (`/img/a.jpg?w=40`) skips the rewrite entirely.
/// Conservative: `false` only means "run [`normalize_target`]".
pub fn is_normal_target(target: &[u8], form: Form) -> bool {
    let path_end = target
        .iter()
        .position(|b| *b == b'?')
        .unwrap_or(target.len());
    let (path, query) = target.split_at(path_end);
    if path.first() != Some(&b'/') || path.contains(&b'%') {
        return false;
    }
    let last = path[1..].iter().filter(|b| **b == b'/').count();
    let segments_ok = path[1..].split(|b| *b == b'/').enumerate().all(|(i, seg)| {
        let last = i == last;
        seg.iter().all(|b| pchar(*b))
            && !(seg.contains(&b';') && seg.first() == Some(&b'.'))
            && seg != b"."
            && seg != b".."
            && (!seg.is_empty() || last || !form.merge_slashes)
    });
    let query_ok = query
        .iter()
        .skip(1)
        .all(|b| b.is_ascii_graphic() && !b"\"<>\\^`{|}#".contains(b));
    segments_ok && query_ok
}

/// One segment in normal form; refuses what [`PathError`] names.
fn segment(raw: &[u8], form: Form) -> Result<String, PathError> {
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'\\' {
            return Err(PathError::Separator);
        }
        if b == 0 {
            return Err(PathError::Nul);
        }
        if b != b'%' {
            if pchar(b) {
                out.push(b as char);
            } else {
                push_escaped(&mut out, b);
            }
            i += 1;
            continue;
        }
        let (Some(h), Some(l)) = (
            raw.get(i + 1).copied().and_then(hex_val),
            raw.get(i + 2).copied().and_then(hex_val),
        ) else {
            return Err(PathError::BadEscape);
        };
        match h * 16 + l {
            0 => return Err(PathError::Nul),
            v @ (b'/' | b'\\') if form.encoded_slashes == EncodedSlashes::Keep => {
                push_escaped(&mut out, v)
            }
            b'/' | b'\\' => return Err(PathError::Separator),
            v if unreserved(v) => out.push(v as char),
            v => push_escaped(&mut out, v),
        }
        i += 3;
    }
    Ok(out)
}

/// Every escape decoded (bytes that are not UTF-8 kept as U+FFFD: only dots and separators
/// matter to the caller).
fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let esc = (b[i] == b'%')
            .then(|| Some(hex_val(*b.get(i + 1)?)? * 16 + hex_val(*b.get(i + 2)?)?))
            .flatten();
        match esc {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_dot(s: &str) -> bool {
    s == "." || s == ".."
}

/// Whether a segment in normal form hides a dot segment or a separator that an origin would
/// find by decoding it once or twice more, or by reading `;` as a parameter separator.
fn hides_something(seg: &str, form: Form) -> Result<(), PathError> {
    if seg.contains(';') && is_dot(seg.split(';').next().unwrap_or(seg)) {
        return Err(PathError::HiddenDotSegment);
    }
    if !seg.contains('%') {
        return Ok(());
    }
    let once = pct_decode(seg);
    let twice = pct_decode(&once);
    for d in [&once, &twice] {
        let mut parts = d
            .split(['/', '\\'])
            .map(|c| c.split(';').next().unwrap_or(c));
        if parts.any(is_dot) {
            return Err(PathError::HiddenDotSegment);
        }
    }
    // A kept `%2F` is a separator after one decoding by design; one that appears only at the
    // second decoding (`%252F`) never is.
    let seps = |d: &str| d.matches(['/', '\\']).count();
    let first = seps(&once);
    if (first > 0 && form.encoded_slashes == EncodedSlashes::Refuse) || seps(&twice) > first {
        return Err(PathError::Separator);
    }
    Ok(())
}

/// The normal form of the path `path` (bytes as sent, no query), or why it has none.
pub fn normalize_bytes(path: &[u8], form: Form) -> Result<String, PathError> {
    let Some(rest) = path.strip_prefix(b"/") else {
        return Err(PathError::NotAbsolute);
    };
    let mut out: Vec<String> = Vec::new();
    let raw: Vec<&[u8]> = rest.split(|b| *b == b'/').collect();
    let last = raw.len() - 1;
    let mut trailing = false;
    for (i, r) in raw.into_iter().enumerate() {
        let seg = segment(r, form)?;
        hides_something(&seg, form)?;
        match seg.as_str() {
            "" if !form.merge_slashes && i != last => {
                out.push(seg);
                trailing = false;
            }
            // `/a//b` merges; `/a/` keeps its trailing slash.
            "" | "." => trailing = i == last,
            ".." => {
                out.pop();
                trailing = i == last;
            }
            _ => {
                out.push(seg);
                trailing = false;
            }
        }
    }
    let mut s = String::with_capacity(path.len());
    for seg in &out {
        s.push('/');
        s.push_str(seg);
    }
    if trailing || s.is_empty() {
        s.push('/');
    }
    Ok(s)
}

/// [`normalize_bytes`] of a request path with the default [`Form`] (encoded slashes refused).
pub fn normalize(path: &str) -> Result<String, PathError> {
    normalize_bytes(path.as_bytes(), Form::request(EncodedSlashes::Refuse))
}

/// The query as sent, with bytes that may not stand raw in a URI percent-encoded (so a
/// rewritten request target always parses); its meaning is unchanged.
pub fn clean_query(q: &[u8]) -> String {
    let mut out = String::with_capacity(q.len());
    for &b in q {
        if b.is_ascii_graphic() && !b"\"<>\\^`{|}#".contains(&b) {
            out.push(b as char);
        } else {
            push_escaped(&mut out, b);
        }
    }
    out
}

/// A request target in normal form: the path normalised, the query cleaned.
pub fn normalize_target(target: &[u8], form: Form) -> Result<String, PathError> {
    let (path, query) = match target.iter().position(|b| *b == b'?') {
        Some(i) => (&target[..i], Some(&target[i + 1..])),
        None => (target, None),
    };
    let path = normalize_bytes(path, form)?;
    Ok(match query {
        Some(q) => format!("{path}?{}", clean_query(q)),
        None => path,
    })
}

#[cfg(test)]
mod tests;
