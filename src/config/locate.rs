//! Finds the line of a dotted key path (`limits.max_source_bytes`) in YAML text, so that errors
//! found after deserialization (range checks) still point at a line. Handles block mappings,
//! which is what configuration files use; returns `None` when the key is not written out
//! (a default value is at fault) or the layout is unusual.

/// The 1-based line where `path` is written, if it can be found.
pub fn line_of(text: &str, path: &str) -> Option<usize> {
    if path.is_empty() {
        return None;
    }
    let parts: Vec<&str> = path.split('.').collect();
    let mut depth = 0usize;
    let mut parent_indent: Option<usize> = None;
    for (no, raw) in text.lines().enumerate() {
        let line = raw.split(" #").next().unwrap_or(raw);
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        if let Some(pi) = parent_indent {
            if indent <= pi {
                // Left the parent's block without finding the child.
                return None;
            }
        }
        let key = trimmed
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches('"');
        if key == parts[depth] && trimmed.contains(':') {
            if depth + 1 == parts.len() {
                return Some(no + 1);
            }
            // Flow mapping on one line: `avif: { quality: 60 }`.
            if trimmed.contains('{') && trimmed.contains(&format!("{}:", parts[depth + 1])) {
                return Some(no + 1);
            }
            depth += 1;
            parent_indent = Some(indent);
        }
    }
    None
}

/// The line of `path`, or of its nearest written parent when `path` itself is missing (a
/// required key left out points at the section that needs it).
pub fn line_of_nearest(text: &str, path: &str) -> Option<usize> {
    let mut p = path;
    loop {
        if let Some(l) = line_of(text, p) {
            return Some(l);
        }
        p = p.rsplit_once('.')?.0;
    }
}

#[cfg(test)]
mod tests {
    use super::{line_of, line_of_nearest};

    #[test]
    fn falls_back_to_the_nearest_parent() {
        let y = "cache:\n  disk:\n    max_bytes: 1\n";
        assert_eq!(line_of_nearest(y, "cache.disk.dir"), Some(2));
        assert_eq!(line_of_nearest(y, "cache.disk.max_bytes"), Some(3));
        assert_eq!(line_of_nearest(y, "other.key"), None);
    }

    #[test]
    fn finds_nested_keys() {
        let y = "listen: 1\n# c\nlimits:\n  x: 1\n  max_source_bytes: 3\nimages:\n  avif: { quality: 0 }\n";
        assert_eq!(line_of(y, "listen"), Some(1));
        assert_eq!(line_of(y, "limits.max_source_bytes"), Some(5));
        assert_eq!(line_of(y, "images.avif.quality"), Some(7));
        assert_eq!(line_of(y, "limits.nope"), None);
        assert_eq!(line_of(y, ""), None);
    }
}
