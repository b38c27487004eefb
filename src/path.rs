//! The one normal form of a request path. pixgate matches rules, names cache entries, purges,
//! assigns tenants and asks the origin by the same path, so `/%70rivate/a.png`,
//! `//private/a.png` and `/x/../private/a.png` are all `/private/a.png` everywhere, and a rule
//! on `/private/**` cannot be walked around.
//!
//! [`normalize`] (RFC 3986 §6.2.2):
//! - percent-escapes of unreserved characters (`A–Z a–z 0–9 - . _ ~`) are decoded; every other
//!   escape stays encoded, with its hex digits in upper case;
//! - dot segments are removed (§5.2.4; `..` above the root stays at the root);
//! - repeated slashes are merged.
//!
//! Refused (the caller answers 400): a malformed escape, an encoded NUL, an encoded `/` or `\`
//! (an origin that decodes it would see a different path from the one the rules judged), and a
//! segment that becomes `.` or `..` only after a second decoding (`%252e%252e`, which an
//! origin that decodes twice would walk up with).
//!
//! Case is kept: `/PRIVATE/` and `/private/` are different paths to pixgate. Whether they are
//! the same file is the origin's business (docs/hardening.md).

use std::fmt;

/// Why a path has no normal form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// `%` not followed by two hex digits.
    BadEscape,
    /// `%00`.
    Nul,
    /// `%2F` or `%5C`: a separator hidden from the rules.
    EncodedSeparator,
    /// A segment that decodes (twice) to `.` or `..`.
    EncodedDotSegment,
    /// Not an origin-form path (does not start with `/`).
    NotAbsolute,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathError::BadEscape => "the path has a malformed percent-escape",
            PathError::Nul => "the path has an encoded NUL",
            PathError::EncodedSeparator => "the path has an encoded `/` or `\\`",
            PathError::EncodedDotSegment => "the path has an encoded dot segment",
            PathError::NotAbsolute => "the path must start with `/`",
        })
    }
}

impl std::error::Error for PathError {}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Decodes escapes of unreserved characters, upper-cases the rest; refuses what
/// [`PathError`] names.
fn decode_unreserved(seg: &str) -> Result<String, PathError> {
    let b = seg.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            out.push(b[i] as char);
            i += 1;
            continue;
        }
        let (Some(h), Some(l)) = (
            b.get(i + 1).copied().and_then(hex_val),
            b.get(i + 2).copied().and_then(hex_val),
        ) else {
            return Err(PathError::BadEscape);
        };
        let v = h * 16 + l;
        match v {
            0 => return Err(PathError::Nul),
            b'/' | b'\\' => return Err(PathError::EncodedSeparator),
            v if unreserved(v) => out.push(v as char),
            v => out.push_str(&format!("%{v:02X}")),
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

/// Whether a segment in normal form (unreserved escapes already decoded) walks up or stays
/// put once an origin decodes it once or twice more: `%252e%252e` (`..` after two decodings),
/// `..%252f..`.
fn dot_after_more_decoding(seg: &str) -> bool {
    if !seg.contains('%') {
        return false;
    }
    let once = pct_decode(seg);
    let twice = pct_decode(&once);
    [once, twice]
        .iter()
        .any(|d| d.split(['/', '\\']).any(|c| c == "." || c == ".."))
}

/// The normal form of `path` (no query), or why it has none.
pub fn normalize(path: &str) -> Result<String, PathError> {
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let mut out: Vec<String> = Vec::new();
    let segments: Vec<&str> = path[1..].split('/').collect();
    let last = segments.len() - 1;
    let mut trailing = false;
    for (i, raw) in segments.into_iter().enumerate() {
        let seg = decode_unreserved(raw)?;
        if dot_after_more_decoding(&seg) {
            return Err(PathError::EncodedDotSegment);
        }
        match seg.as_str() {
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

/// [`normalize`] for a path with an optional `?query` (the query is kept as it is).
pub fn normalize_with_query(path_and_query: &str) -> Result<String, PathError> {
    match path_and_query.split_once('?') {
        Some((p, q)) => Ok(format!("{}?{q}", normalize(p)?)),
        None => normalize(path_and_query),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_review_s_paths_are_one_path() {
        for p in [
            "/private/a.png",
            "/%70rivate/a.png",
            "//private/a.png",
            "/x/../private/a.png",
            "/./private//./a.png",
            "/%2e%2e/private/a.png",
            "/x/%2E%2E/private/a.png",
            "/../../private/a.png",
            "/priv%61te/a%2Epng",
        ] {
            assert_eq!(normalize(p).as_deref(), Ok("/private/a.png"), "{p}");
        }
    }

    #[test]
    fn trailing_slashes_and_roots() {
        assert_eq!(normalize("/").as_deref(), Ok("/"));
        assert_eq!(normalize("//").as_deref(), Ok("/"));
        assert_eq!(normalize("/..").as_deref(), Ok("/"));
        assert_eq!(normalize("/a/").as_deref(), Ok("/a/"));
        assert_eq!(normalize("/a/.").as_deref(), Ok("/a/"));
        assert_eq!(normalize("/a/b/..").as_deref(), Ok("/a/"));
        assert_eq!(normalize("/a//").as_deref(), Ok("/a/"));
    }

    #[test]
    fn reserved_escapes_stay_encoded_in_upper_case() {
        assert_eq!(normalize("/a%20b%3f").as_deref(), Ok("/a%20b%3F"));
        assert_eq!(normalize("/%C3%A9t%c3%a9").as_deref(), Ok("/%C3%A9t%C3%A9"));
        assert_eq!(
            normalize_with_query("/%70ic.jpg?w=40&x=%2F").as_deref(),
            Ok("/pic.jpg?w=40&x=%2F")
        );
    }

    #[test]
    fn what_cannot_be_normalised_is_refused() {
        assert_eq!(normalize("/a%2"), Err(PathError::BadEscape));
        assert_eq!(normalize("/a%zz"), Err(PathError::BadEscape));
        assert_eq!(normalize("/a%00b"), Err(PathError::Nul));
        assert_eq!(normalize("/x%2Fprivate"), Err(PathError::EncodedSeparator));
        assert_eq!(
            normalize("/x%5c..%5cprivate"),
            Err(PathError::EncodedSeparator)
        );
        assert_eq!(
            normalize("/media/%252e%252e/secret"),
            Err(PathError::EncodedDotSegment)
        );
        assert_eq!(normalize("/%252E/x"), Err(PathError::EncodedDotSegment));
        assert_eq!(normalize("relative"), Err(PathError::NotAbsolute));
        // Three dots are a name, not a dot segment, however they are written.
        assert_eq!(
            normalize("/%252e%252e%252e").as_deref(),
            Ok("/%252e%252e%252e")
        );
    }

    proptest::proptest! {
        #[test]
        fn normal_forms_are_fixed_points(s in "/[a-zA-Z0-9%./_~-]{0,40}") {
            if let Ok(n) = normalize(&s) {
                proptest::prop_assert_eq!(normalize(&n), Ok(n.clone()));
                proptest::prop_assert!(n.starts_with('/'));
                proptest::prop_assert!(!n.contains("//"));
                proptest::prop_assert!(!n.split('/').any(|x| x == "." || x == ".."));
            }
        }
    }
}
