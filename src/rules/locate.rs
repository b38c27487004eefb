//! Finds the 1-based line of a dotted key path (`rules[2].quality.webp`) in
//! YAML text, so semantic errors can point at the offending line.
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
    let (mut lo, mut hi) = (0, lines.len());
    let mut found = None;
    for (depth, seg) in path.0.iter().enumerate() {
        let last = depth + 1 == path.0.len();
        let hit = match seg {
            Seg::Key(k) => find_key(&lines, lo, hi, k, if last { nth } else { 0 }),
            Seg::Index(i) => find_item(&lines, lo, hi, *i),
        };
        let Some(idx) = hit else { break };
        found = Some(idx);
        (lo, hi) = match seg {
            Seg::Key(_) => key_children(&lines, idx, hi),
            Seg::Index(_) => item_children(&lines, idx, hi),
        };
    }
    found.map(|i| lines[i].no)
}

/// `true` if the text has no YAML content (only blanks and comments).
pub(crate) fn is_blank_yaml(text: &str) -> bool {
    text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---" || t == "..."
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &[Seg]) -> KeyPath {
        KeyPath(s.to_vec())
    }
    fn k(s: &str) -> Seg {
        Seg::Key(s.to_string())
    }

    const DOC: &str = "\
# comment
presets:
  thumb: \"w=1\"
rules:
- name: a
  quality: { webp: 5 }
  paths:
    - /x/*
    - /y/*
-   name: b
    \"max_width\": 0
    presets:
      hero: \"\"
";

    #[test]
    fn finds_block_keys_and_items() {
        assert_eq!(locate(DOC, &path(&[k("presets"), k("thumb")])), Some(3));
        assert_eq!(locate(DOC, &path(&[k("rules"), Seg::Index(0)])), Some(5));
        assert_eq!(
            locate(DOC, &path(&[k("rules"), Seg::Index(0), k("name")])),
            Some(5)
        );
        assert_eq!(
            locate(
                DOC,
                &path(&[k("rules"), Seg::Index(0), k("paths"), Seg::Index(1)])
            ),
            Some(9)
        );
        assert_eq!(
            locate(DOC, &path(&[k("rules"), Seg::Index(1), k("max_width")])),
            Some(11)
        );
        assert_eq!(
            locate(
                DOC,
                &path(&[k("rules"), Seg::Index(1), k("presets"), k("hero")])
            ),
            Some(13)
        );
    }

    #[test]
    fn falls_back_to_nearest_parent() {
        // Flow mapping: the key inside is not scanned, its parent line is used.
        assert_eq!(
            locate(
                DOC,
                &path(&[k("rules"), Seg::Index(0), k("quality"), k("webp")])
            ),
            Some(6)
        );
        // Absent key in item 1: the item line.
        assert_eq!(
            locate(DOC, &path(&[k("rules"), Seg::Index(1), k("ttl")])),
            Some(10)
        );
        // Keys of item 0 are not visible from item 1.
        assert_eq!(
            locate(DOC, &path(&[k("rules"), Seg::Index(1), k("paths")])),
            Some(10)
        );
        assert_eq!(locate(DOC, &path(&[k("nope")])), None);
        assert_eq!(locate(DOC, &KeyPath::default()), None);
    }

    #[test]
    fn lines_end_as_in_yaml() {
        assert_eq!(
            yaml_lines("a\r\nb\rc\nd\u{2028}e\n"),
            ["a", "b", "c", "d", "e"]
        );
        let doc = "rules:\r- name: a\r  ttl: x\r";
        let ttl = path(&[k("rules"), Seg::Index(0), k("ttl")]);
        assert_eq!(locate(doc, &ttl), Some(3));
    }

    #[test]
    fn display_matches_serde_path_to_error_style() {
        let p = KeyPath::default()
            .key("rules")
            .index(3)
            .key("quality")
            .key("webp");
        assert_eq!(p.to_string(), "rules[3].quality.webp");
    }
}
