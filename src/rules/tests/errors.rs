//! Every error kind names the file, the exact line and the key path.

use std::path::PathBuf;

use super::super::{LoadError, LoadErrors, RuleSet};
use super::{dir_with, load_err, where_};

/// Asserts a single error at (`file`, `line`, `key`) whose message contains `needle`.
fn one(files: &[(&str, &str)], file: &str, line: usize, key: &str, needle: &str) {
    let errs = load_err(files);
    assert_eq!(
        where_(&errs),
        [(file.to_string(), Some(line), key.to_string())],
        "{errs:?}"
    );
    assert!(errs[0].message.contains(needle), "{:?}", errs[0].message);
    assert!(
        !errs[0].message.contains(" at line "),
        "{:?}",
        errs[0].message
    );
}

#[test]
fn serde_type_error() {
    let yaml = "rules:\n  - name: a\n    quality:\n      webp: high\n";
    one(
        &[("a.yaml", yaml)],
        "a.yaml",
        4,
        "rules[0].quality.webp",
        "invalid type",
    );
}

#[test]
fn unknown_keys() {
    let rule = "rules:\n  - name: a\n\n    colour: red\n";
    one(
        &[("a.yaml", rule)],
        "a.yaml",
        4,
        "rules[0].colour",
        "unknown field `colour`",
    );
    let top = "# c\nrulez: []\n";
    one(
        &[("a.yaml", top)],
        "a.yaml",
        2,
        "rulez",
        "unknown field `rulez`",
    );
    let quality = "rules:\n  - name: a\n    quality: { webp: 5, png: 3 }\n";
    one(
        &[("a.yaml", quality)],
        "a.yaml",
        3,
        "rules[0].quality.png",
        "unknown field `png`",
    );
}

#[test]
fn missing_name_and_bad_enum_variant() {
    let yaml = "rules:\n  - name: a\n  - paths: [/x]\n";
    one(
        &[("a.yaml", yaml)],
        "a.yaml",
        3,
        "rules[1]",
        "missing field `name`",
    );
    let yaml = "rules:\n  - name: a\n    source_formats:\n      - jpeg\n      - tiff\n";
    one(
        &[("a.yaml", yaml)],
        "a.yaml",
        5,
        "rules[0].source_formats[1]",
        "unknown variant `tiff`",
    );
}

#[test]
fn yaml_syntax_error() {
    let errs = load_err(&[("a.yaml", "rules:\n  - name: a\n    paths: [\"/x\"\n")]);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].line, Some(4));
    assert!(!errs[0].message.contains("at line"), "{}", errs[0].message);
}

#[test]
fn duplicate_fields_and_presets_in_one_mapping() {
    let yaml = "rules:\n  - name: a\n    ttl: 1h\n    ttl: 2h\n";
    one(
        &[("a.yaml", yaml)],
        "a.yaml",
        4,
        "rules[0].ttl",
        "duplicate field `ttl`",
    );
    let yaml = "presets:\n  a: w=1\n  b: w=2\n  a: w=3\n";
    one(
        &[("a.yaml", yaml)],
        "a.yaml",
        4,
        "presets.a",
        "duplicate preset `a`",
    );
}

#[test]
fn quality_out_of_range() {
    let yaml = "rules:\n  - name: a\n    quality:\n      avif: 50\n      webp: 300\n";
    one(
        &[("a.yaml", yaml)],
        "a.yaml",
        5,
        "rules[0].quality.webp",
        "between 1 and 100, got 300",
    );
    // In a flow mapping the locator falls back to the parent key's line.
    let yaml = "rules:\n  - name: a\n  - name: b\n    quality: { jpeg: 0 }\n";
    one(
        &[("a.yaml", yaml)],
        "a.yaml",
        4,
        "rules[1].quality.jpeg",
        "got 0",
    );
}

#[test]
fn dimensions_out_of_range() {
    let yaml = "rules:\n- name: a\n  max_width: 0\n  max_height: 16385\n";
    let errs = load_err(&[("a.yaml", yaml)]);
    assert_eq!(
        where_(&errs),
        [
            ("a.yaml".into(), Some(3), "rules[0].max_width".into()),
            ("a.yaml".into(), Some(4), "rules[0].max_height".into()),
        ]
    );
    assert!(errs[1].message.contains("got 16385"), "{}", errs[1].message);
}

#[test]
fn bad_ttls() {
    let yaml = "rules:\n  - name: a\n    ttl: 500ms\n";
    one(
        &[("a.yaml", yaml)],
        "a.yaml",
        3,
        "rules[0].ttl",
        "at least 1s",
    );
    let yaml = "rules:\n  - name: a\n  - name: b\n    ttl: soon\n";
    one(
        &[("a.yaml", yaml)],
        "a.yaml",
        4,
        "rules[1].ttl",
        "invalid duration `soon`",
    );
}

#[test]
fn bad_globs_and_patterns() {
    let yaml = "rules:\n  - name: a\n    hosts:\n      - ok.example.com\n      - \"[bad\"\n";
    one(
        &[("a.yaml", yaml)],
        "a.yaml",
        5,
        "rules[0].hosts[1]",
        "invalid host glob",
    );
    let yaml = "rules:\n  - name: a\n    hosts: [\"example.com:8080\"]\n";
    one(
        &[("a.yaml", yaml)],
        "a.yaml",
        3,
        "rules[0].hosts[0]",
        "no scheme, port",
    );
    let yaml = "rules:\n  - name: a\n    paths:\n      - \"/a/{b\"\n";
    one(
        &[("a.yaml", yaml)],
        "a.yaml",
        4,
        "rules[0].paths[0]",
        "invalid path glob",
    );
    let yaml = "rules:\n  - name: a\n    paths:\n      - /ok/**\n      - img/*.jpg\n";
    one(
        &[("a.yaml", yaml)],
        "a.yaml",
        5,
        "rules[0].paths[1]",
        "must start with `/`",
    );
}

#[test]
fn empty_formats_list() {
    let yaml = "rules:\n  - name: a\n    formats: []\n";
    one(
        &[("a.yaml", yaml)],
        "a.yaml",
        3,
        "rules[0].formats",
        "at least one output format",
    );
}

#[test]
fn bad_names_and_preset_values() {
    let yaml = "rules:\n  - name: \"has space\"\n";
    one(
        &[("a.yaml", yaml)],
        "a.yaml",
        2,
        "rules[0].name",
        "invalid rule name",
    );
    let yaml = "presets:\n  thumb: \"\"\n";
    one(
        &[("a.yaml", yaml)],
        "a.yaml",
        2,
        "presets.thumb",
        "must not be empty",
    );
    let yaml = "rules:\n  - name: a\n    presets:\n      hero: \"w=1 h=2\"\n";
    one(
        &[("a.yaml", yaml)],
        "a.yaml",
        4,
        "rules[0].presets.hero",
        "URL query characters",
    );
    let yaml = "presets:\n  ok: \"w=1%2C\"\n  bad: \"w=1%zz\"\n";
    one(&[("a.yaml", yaml)], "a.yaml", 3, "presets.bad", "'%'");
    let yaml = "presets:\n  \"bad name\": w=1\n";
    one(
        &[("a.yaml", yaml)],
        "a.yaml",
        2,
        "presets.bad name",
        "invalid preset name",
    );
}

#[test]
fn duplicate_rule_names_across_and_within_files() {
    let a = "rules:\n  - name: shared\n";
    let b = "# b\nrules:\n  - name: other\n  - name: shared\n  - name: other\n";
    let errs = load_err(&[("a.yaml", a), ("b.yaml", b)]);
    assert_eq!(
        where_(&errs),
        [
            ("b.yaml".into(), Some(4), "rules[1].name".into()),
            ("b.yaml".into(), Some(5), "rules[2].name".into()),
        ]
    );
    assert!(errs[0].message.contains("duplicate rule name `shared`"));
    assert!(errs[0].message.contains("a.yaml:2"), "{}", errs[0].message);
    assert!(errs[1].message.contains("b.yaml:3"), "{}", errs[1].message);
}

#[test]
fn duplicate_global_presets_across_files() {
    let a = "presets:\n  thumb: w=1\n";
    let b = "rules: []\npresets:\n  og: w=2\n  thumb: w=3\n";
    let errs = load_err(&[("a.yaml", a), ("b.yaml", b)]);
    assert_eq!(
        where_(&errs),
        [("b.yaml".into(), Some(4), "presets.thumb".into())]
    );
    assert!(errs[0].message.contains("already defined in"));
    assert!(errs[0].message.contains("a.yaml:2"), "{}", errs[0].message);
}

#[test]
fn all_problems_of_all_files_are_reported_in_file_order() {
    let a = "rules:\n  - name: a\n    max_width: 0\n    quality: { webp: 101 }\n";
    let b = "rules: [\n"; // does not parse
    let c = "rules:\n  - name: c\n    ttl: 0s\n";
    let errs = load_err(&[("c.yaml", c), ("a.yaml", a), ("b.yaml", b)]);
    let files: Vec<String> = where_(&errs).into_iter().map(|(f, _, _)| f).collect();
    assert_eq!(files, ["a.yaml", "a.yaml", "b.yaml", "c.yaml"]);
    // Within a file, in line order (max_width on line 3 before quality on 4).
    assert_eq!(
        (errs[0].line, errs[0].key.as_str()),
        (Some(3), "rules[0].max_width")
    );
    assert_eq!(
        (errs[1].line, errs[1].key.as_str()),
        (Some(4), "rules[0].quality.webp")
    );
    assert_eq!(errs[3].key, "rules[0].ttl");
    assert_eq!(errs[3].line, Some(3));
}

#[test]
fn unreadable_file_is_reported_without_line() {
    let dir = dir_with(&[("a.yaml", "rules: []\n")]);
    std::fs::write(dir.path().join("b.yaml"), [0xff, 0xfe, 0x00]).unwrap();
    let errs = RuleSet::load_dir(dir.path()).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!(errs.errors()[0].file, dir.path().join("b.yaml"));
    assert_eq!(errs.errors()[0].line, None);
    assert!(errs.to_string().contains("cannot read file"));
}

#[test]
fn display_format() {
    let dir = dir_with(&[(
        "q.yaml",
        "rules:\n  - name: a\n    quality:\n      webp: 300\n",
    )]);
    let errs = RuleSet::load_dir(dir.path()).unwrap_err();
    let expected = format!(
        "{}:4: key `rules[0].quality.webp`: quality must be between 1 and 100, got 300",
        dir.path().join("q.yaml").display()
    );
    assert_eq!(errs.to_string(), expected);

    let no_line = LoadError {
        file: PathBuf::from("rules/x.yaml"),
        line: None,
        key: "rules[0]".into(),
        message: "boom".into(),
    };
    assert_eq!(no_line.to_string(), "rules/x.yaml: key `rules[0]`: boom");
    let no_key = LoadError {
        key: String::new(),
        line: Some(7),
        ..no_line.clone()
    };
    assert_eq!(no_key.to_string(), "rules/x.yaml:7: boom");
    let both = LoadErrors(vec![no_line, no_key]);
    assert_eq!(both.to_string().lines().count(), 2);
}

#[test]
fn path_patterns_outside_the_normal_form_are_refused() {
    for (pattern, needle) in [
        ("/%7Euser/**", "`~user`"),
        ("/a/../private/**", "normal form"),
        ("//private/**", "`//`"),
        ("/caf\u{e9}/**", "`caf%C3%A9`"),
        ("/%2e%2e/x", "normal form"),
    ] {
        let yaml = format!("rules:\n  - name: a\n    paths: [\"{pattern}\"]\n");
        one(
            &[("p.yaml", &yaml)],
            "p.yaml",
            3,
            "rules[0].paths[0]",
            needle,
        );
    }
    // Glob syntax and canonical escapes are fine.
    let ok =
        "rules:\n  - name: a\n    paths: [\"/photos/**/*.{jpg,png}\", \"/a%20b/[!x]?\", \"/x/\"]\n";
    super::load_ok(&[("ok.yaml", ok)]);
}
