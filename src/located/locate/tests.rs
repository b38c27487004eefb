//! The locator: block keys, sequence items, fallbacks, line ends; dotted configuration keys.

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

#[test]
fn falls_back_to_the_nearest_parent() {
    let y = "cache:\n  disk:\n    max_bytes: 1\n";
    assert_eq!(line_of_nearest(y, "cache.disk.dir"), Some(2));
    assert_eq!(line_of_nearest(y, "cache.disk.max_bytes"), Some(3));
    assert_eq!(line_of_nearest(y, "other.key"), None);
}

#[test]
fn finds_nested_keys() {
    let y =
        "listen: 1\n# c\nlimits:\n  x: 1\n  max_source_bytes: 3\nimages:\n  avif: { quality: 0 }\n";
    assert_eq!(line_of(y, "listen"), Some(1));
    assert_eq!(line_of(y, "limits.max_source_bytes"), Some(5));
    assert_eq!(line_of(y, "images.avif.quality"), Some(7));
    assert_eq!(line_of(y, "limits.nope"), None);
    assert_eq!(line_of(y, ""), None);
}
