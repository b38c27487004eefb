//! Finds the 1-based line of a key path (`rules[2].quality.webp`, `limits.max_source_bytes`)
//! in YAML text, so that errors found after deserialization (range checks, semantic checks)
//! still point at a line. One scanner serves the configuration file and the rule files.
//!
//! This is a small indentation scanner, not a YAML parser: it understands
//! block mappings (`key: value`, plain or quoted keys) and block sequences
//! (`- item`, including `- key: value` items and sequences indented at the
//! same column as their parent key). Anything it cannot follow (flow
//! collections like `{ a: 1 }`, block scalars, anchors) makes it stop and
//! return the line of the deepest key it did find, i.e. the nearest parent.

use std::fmt;

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    /// Mapping key.
    Key(String),
    /// Sequence index (0-based).
    Index(usize),
}

/// A dotted key path such as `rules[0].quality.webp`; empty = document root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    /// This path extended by a mapping key.
    pub(crate) fn key(&self, key: &str) -> KeyPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_string()));
        KeyPath(segs)
    }

    /// This path extended by a sequence index.
    pub(crate) fn index(&self, index: usize) -> KeyPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        KeyPath(segs)
    }

    /// Converts a `serde_path_to_error` path.
    pub(crate) fn from_serde(path: &serde_path_to_error::Path) -> KeyPath {
        use serde_path_to_error::Segment;
        KeyPath(
            path.iter()
                .map(|seg| match seg {
                    Segment::Seq { index } => Seg::Index(*index),
                    Segment::Map { key } => Seg::Key(key.clone()),
                    Segment::Enum { variant } => Seg::Key(variant.clone()),
                    Segment::Unknown => Seg::Key("?".to_string()),
                })
                .collect(),
        )
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => f.write_str(k)?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A structural (non-blank, non-comment) line.
#[derive(Debug)]
struct Line {
    /// 1-based line number.
    no: usize,
    /// Column of the first non-space character.
    indent: usize,
    /// Number of leading `- ` sequence markers.
    dashes: usize,
    /// Column where the content after the markers starts.
    entry_col: usize,
    /// Mapping key on this line, if any.
    key: Option<String>,
}

/// The lines of `text` as YAML, and so serde's error lines, count them: `\r\n`, `\n`, a lone
/// `\r`, NEL, LS and PS each end one (`str::lines` knows only the first two, so a file with
/// lone `\r`s had its semantic errors and its syntax errors numbered differently).
fn yaml_lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut chars) = (0, text.char_indices().peekable());
    while let Some((i, c)) = chars.next() {
        if matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}') {
            out.push(&text[start..i]);
            start = i + c.len_utf8();
            if c == '\r' && chars.next_if(|&(_, n)| n == '\n').is_some() {
                start += 1;
            }
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

fn scan(text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    for (i, raw) in yaml_lines(text).into_iter().enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let indent = raw.len() - raw.trim_start_matches(' ').len();
        let mut rest = &raw[indent..];
        if rest.trim().is_empty() || rest.starts_with('#') {
            continue;
        }
        if indent == 0 && (rest.starts_with("---") || rest.starts_with("...")) {
            continue;
        }
        let mut col = indent;
        let mut dashes = 0;
        while rest == "-" || rest.starts_with("- ") {
            dashes += 1;
            let after = rest[1..].trim_start_matches(' ');
            col += rest.len() - after.len();
            rest = after;
        }
        out.push(Line {
            no: i + 1,
            indent,
            dashes,
            entry_col: col,
            key: parse_key(rest),
        });
    }
    out
}

/// The key of `key: value` / `"key": value` / `key:`; `None` otherwise.
fn parse_key(rest: &str) -> Option<String> {
    let (key, after) = match rest.chars().next()? {
        q @ ('"' | '\'') => {
            let body = &rest[1..];
            let end = body.find(q)?;
            (body[..end].to_string(), &body[end + 1..])
        }
        '[' | '{' | '#' | '&' | '*' | '!' | '|' | '>' | '%' | '@' | '`' | '?' => return None,
        _ => {
            let pos = rest
                .char_indices()
                .find(|&(i, c)| {
                    c == ':' && matches!(rest[i + 1..].chars().next(), None | Some(' '))
                })
                .map(|(i, _)| i)?;
            (rest[..pos].trim_end().to_string(), &rest[pos..])
        }
    };
    let after = after.trim_start_matches(' ');
    if after == ":" || after.starts_with(": ") {
        Some(key)
    } else {
        None
    }
}

/// Index of the line holding the `nth` (0-based) occurrence of `key` among
/// the top-level entries of a mapping spanning `lines[lo..hi]`.
fn find_key(lines: &[Line], lo: usize, hi: usize, key: &str, nth: usize) -> Option<usize> {
    let region = lines.get(lo..hi)?;
    let key_col = region.iter().find(|l| l.key.is_some())?.entry_col;
    region
        .iter()
        .enumerate()
        .filter(|(_, l)| l.entry_col == key_col && l.key.as_deref() == Some(key))
        .nth(nth)
        .map(|(p, _)| lo + p)
}

/// Index of the line starting item `index` of a block sequence spanning
/// `lines[lo..hi]`.
fn find_item(lines: &[Line], lo: usize, hi: usize, index: usize) -> Option<usize> {
    let region = lines.get(lo..hi)?;
    let first = region.first()?;
    if first.dashes == 0 {
        return None;
    }
    let item_col = first.indent;
    region
        .iter()
        .enumerate()
        .filter(|(_, l)| l.dashes > 0 && l.indent == item_col)
        .nth(index)
        .map(|(p, _)| lo + p)
}

/// Lines belonging to the value of the key on line `idx`.
fn key_children(lines: &[Line], idx: usize, hi: usize) -> (usize, usize) {
    let col = lines[idx].entry_col;
    let mut end = idx + 1;
    while end < hi {
        let l = &lines[end];
        if l.indent > col || (l.indent == col && l.dashes > 0) {
            end += 1;
        } else {
            break;
        }
    }
    (idx + 1, end)
}

/// Lines belonging to the sequence item starting on line `idx` (the item
/// line itself is included when it carries an inline `key:`).
fn item_children(lines: &[Line], idx: usize, hi: usize) -> (usize, usize) {
    let col = lines[idx].indent;
    let mut end = idx + 1;
    while end < hi && lines[end].indent > col {
        end += 1;
    }
    let start = if lines[idx].key.is_some() {
        idx
    } else {
        idx + 1
    };
    (start, end)
}

/// 1-based line of `path` in `text`, or of its deepest locatable parent;
/// `None` if not even the first segment is found.
pub(crate) fn locate(text: &str, path: &KeyPath) -> Option<usize> {
    locate_nth(text, path, 0)
}

/// Like [`locate`], but when the last segment is a key that occurs several
/// times in its mapping (a duplicate), finds its `nth` (0-based) occurrence.
pub(crate) fn locate_nth(text: &str, path: &KeyPath, nth: usize) -> Option<usize> {
    let lines = scan(text);
    walk(&lines, path, nth).map(|(i, _)| lines[i].no)
}

/// Follows `path` through `lines`: the index of the line of the deepest segment found and how
/// many segments were found; `None` if not even the first one is.
fn walk(lines: &[Line], path: &KeyPath, nth: usize) -> Option<(usize, usize)> {
    let (mut lo, mut hi) = (0, lines.len());
    let mut found = None;
    for (depth, seg) in path.0.iter().enumerate() {
        let last = depth + 1 == path.0.len();
        let hit = match seg {
            Seg::Key(k) => find_key(lines, lo, hi, k, if last { nth } else { 0 }),
            Seg::Index(i) => find_item(lines, lo, hi, *i),
        };
        let Some(idx) = hit else { break };
        found = Some((idx, depth + 1));
        (lo, hi) = match seg {
            Seg::Key(_) => key_children(lines, idx, hi),
            Seg::Index(_) => item_children(lines, idx, hi),
        };
    }
    found
}

/// A dotted configuration key (`limits.max_source_bytes`, `url_api.keys[1]`) as a path of
/// mapping keys, split at the dots only: a segment such as `keys[1]` is looked for as a key
/// (and so is not found: its error points at the section, `url_api`).
fn dotted(path: &str) -> KeyPath {
    if path.is_empty() {
        return KeyPath::default();
    }
    KeyPath(path.split('.').map(|k| Seg::Key(k.to_string())).collect())
}

/// The 1-based line where the dotted key `path` itself is written, if it can be found: every
/// segment found, or a flow mapping on one line that holds the next one
/// (`avif: { quality: 60 }` for `images.avif.quality`). `None` when the key is not written
/// out (a default value is at fault).
pub(crate) fn line_of(text: &str, path: &str) -> Option<usize> {
    let path = dotted(path);
    let lines = scan(text);
    let (idx, depth) = walk(&lines, &path, 0)?;
    if depth == path.0.len() {
        return Some(lines[idx].no);
    }
    let Seg::Key(next) = &path.0[depth] else {
        return None;
    };
    let raw = yaml_lines(text)[lines[idx].no - 1];
    let raw = raw.split(" #").next().unwrap_or(raw);
    (raw.contains('{') && raw.contains(&format!("{next}:"))).then_some(lines[idx].no)
}

/// The line of the dotted key `path`, or of its nearest written parent when `path` itself is
/// missing (a required key left out points at the section that needs it).
pub(crate) fn line_of_nearest(text: &str, path: &str) -> Option<usize> {
    locate(text, &dotted(path))
}

/// `true` if the text has no YAML content (only blanks and comments).
pub(crate) fn is_blank_yaml(text: &str) -> bool {
    text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---" || t == "..."
    })
}

#[cfg(test)]
mod tests;
