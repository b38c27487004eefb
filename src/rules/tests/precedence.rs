//! Matching semantics and the four precedence criteria. In each precedence
//! test only the criterion under test differs, and the rule that should win
//! comes *later* in load order, so the final tie-break alone would pick the
//! other one.

use super::super::matcher::{literal_prefix_len, normalize_host};
use super::super::{RuleSet, SourceFormat};
use super::load_ok;

const JPEG: Option<SourceFormat> = Some(SourceFormat::Jpeg);

fn id<'a>(set: &'a RuleSet, host: &str, path: &str, src: Option<SourceFormat>) -> Option<&'a str> {
    set.find(host, path, src).map(|r| r.id())
}

fn rules(body: &str) -> RuleSet {
    load_ok(&[("r.yaml", &format!("rules:\n{body}"))])
}

#[test]
fn host_exact_beats_glob_beats_unconstrained() {
    let set = rules(
        "  - { name: any, paths: [\"/img/**\"] }\n\
         \x20 - { name: glob, hosts: [\"*.example.com\"], paths: [\"/img/**\"] }\n\
         \x20 - { name: exact, hosts: [\"www.example.com\"], paths: [\"/img/**\"] }\n",
    );
    assert_eq!(
        id(&set, "www.example.com", "/img/a.jpg", None),
        Some("exact")
    );
    assert_eq!(
        id(&set, "cdn.example.com", "/img/a.jpg", None),
        Some("glob")
    );
    assert_eq!(id(&set, "other.org", "/img/a.jpg", None), Some("any"));
    assert_eq!(id(&set, "www.example.com", "/css/a.jpg", None), None);
}

#[test]
fn exact_host_listed_with_globs_counts_as_exact() {
    let set = rules(
        "  - { name: glob, hosts: [\"*.example.com\"] }\n\
         \x20 - { name: mixed, hosts: [\"*.example.org\", \"www.example.com\"] }\n",
    );
    assert_eq!(id(&set, "www.example.com", "/", None), Some("mixed"));
    assert_eq!(id(&set, "a.example.com", "/", None), Some("glob"));
}

#[test]
fn host_specificity_outranks_path_specificity() {
    let set = rules(
        "  - { name: deep-path, hosts: [\"*.example.com\"], paths: [\"/img/products/large/**\"] }\n\
         \x20 - { name: exact-host, hosts: [\"www.example.com\"], paths: [\"/**\"] }\n",
    );
    assert_eq!(
        id(&set, "www.example.com", "/img/products/large/a.jpg", None),
        Some("exact-host")
    );
}

#[test]
fn longer_literal_path_prefix_wins() {
    let set = rules(
        "  - { name: none }\n\
         \x20 - { name: root, paths: [\"/**\"] }\n\
         \x20 - { name: img, paths: [\"/img/**\"] }\n\
         \x20 - { name: products, paths: [\"/img/products/**\"] }\n",
    );
    assert_eq!(id(&set, "h", "/img/products/a.jpg", None), Some("products"));
    assert_eq!(id(&set, "h", "/img/other/a.jpg", None), Some("img"));
    // "/**" (prefix 1) beats no path constraint (-1).
    assert_eq!(id(&set, "h", "/css/a.png", None), Some("root"));
    assert_eq!(id(&set, "h", "relative", None), Some("none"));
}

#[test]
fn only_the_matching_path_pattern_counts() {
    // `long` has the longest pattern overall, but the one that matches /x/y/z
    // is "/x/**" (prefix 3) versus "/x/y/" (prefix 5) of `short`.
    let set = rules(
        "  - { name: short, paths: [\"/x/y/*\"] }\n\
         \x20 - { name: long, paths: [\"/aaaaaaaaaaaa/**\", \"/x/**\"] }\n",
    );
    assert_eq!(id(&set, "h", "/x/y/z", None), Some("short"));
    assert_eq!(id(&set, "h", "/x/q/z", None), Some("long"));
    // With several matching patterns, the longest literal prefix counts.
    let set = rules(
        "  - { name: img, paths: [\"/img/**\"] }\n\
         \x20 - { name: multi, paths: [\"/**\", \"/img/products/**\"] }\n",
    );
    assert_eq!(id(&set, "h", "/img/products/a.jpg", None), Some("multi"));
    assert_eq!(id(&set, "h", "/img/a.jpg", None), Some("img"));
    assert_eq!(literal_prefix_len("/x/y/*"), 5);
    assert_eq!(literal_prefix_len("/a/{b,c}/x"), 3);
    assert_eq!(literal_prefix_len("/a?"), 2);
    assert_eq!(literal_prefix_len("/a[0-9]"), 2);
    assert_eq!(literal_prefix_len("/plain.png"), 10);
}

#[test]
fn path_specificity_outranks_source_formats() {
    let set = rules(
        "  - { name: deep, paths: [\"/img/products/**\"] }\n\
         \x20 - { name: typed, paths: [\"/img/**\"], source_formats: [jpeg] }\n",
    );
    assert_eq!(id(&set, "h", "/img/products/a.jpg", JPEG), Some("deep"));
}

#[test]
fn source_formats_beat_no_source_formats() {
    let set = rules(
        "  - { name: generic, paths: [\"/img/**\"] }\n\
         \x20 - { name: jpeg-only, paths: [\"/img/**\"], source_formats: [jpeg] }\n",
    );
    assert_eq!(id(&set, "h", "/img/a.jpg", JPEG), Some("jpeg-only"));
    assert_eq!(
        id(&set, "h", "/img/a.png", Some(SourceFormat::Png)),
        Some("generic")
    );
    assert_eq!(id(&set, "h", "/img/a", None), Some("generic"));
}

#[test]
fn source_formats_never_match_unknown_source() {
    let set = rules("  - { name: typed, source_formats: [jpeg, png, gif, webp, avif] }\n");
    assert_eq!(id(&set, "h", "/a", None), None);
    assert_eq!(id(&set, "h", "/a", Some(SourceFormat::Avif)), Some("typed"));
}

#[test]
fn ties_go_to_load_order_file_then_position() {
    // b.yaml is written first, but a.yaml sorts first.
    let same = "  - { name: NAME, hosts: [\"*.example.com\"], paths: [\"/img/*\"] }\n";
    let set = load_ok(&[
        ("b.yaml", &format!("rules:\n{}", same.replace("NAME", "b1"))),
        (
            "a.yaml",
            &format!(
                "rules:\n{}{}",
                same.replace("NAME", "a1"),
                same.replace("NAME", "a2")
            ),
        ),
    ]);
    assert_eq!(id(&set, "x.example.com", "/img/p.jpg", None), Some("a1"));
    let within = rules(
        "  - { name: first, paths: [\"/img/*\"] }\n\
         \x20 - { name: second, paths: [\"/img/*\"] }\n",
    );
    assert_eq!(id(&within, "h", "/img/p.jpg", None), Some("first"));
}

#[test]
fn host_is_lowercased_and_port_stripped() {
    let set = rules(
        "  - { name: exact, hosts: [\"Img.Example.COM\"] }\n\
         \x20 - { name: glob, hosts: [\"*.CDN.example.com\"] }\n",
    );
    assert_eq!(id(&set, "IMG.example.com:8443", "/", None), Some("exact"));
    assert_eq!(id(&set, "img.example.com.", "/", None), Some("exact"));
    assert_eq!(id(&set, "A.cdn.EXAMPLE.com:80", "/", None), Some("glob"));
    assert_eq!(id(&set, "a.b.cdn.example.com", "/", None), Some("glob"));
    assert_eq!(id(&set, "cdn.example.com", "/", None), None);
    assert_eq!(id(&set, "img.example.com.evil.org", "/", None), None);
    assert_eq!(normalize_host("[::1]:8080"), "[::1]");
    assert_eq!(normalize_host("::1"), "::1");
    assert_eq!(normalize_host(" Example.COM:443 "), "example.com");
    assert_eq!(normalize_host("[::1"), "[::1");
}

#[test]
fn path_globs_respect_separators_and_ignore_query() {
    let set = rules(
        "  - { name: one-level, paths: [\"/img/*.jpg\"] }\n\
         \x20 - { name: any-depth, paths: [\"/deep/**/*.png\"] }\n\
         \x20 - { name: alt, paths: [\"/{a,b}/x\"] }\n",
    );
    assert_eq!(id(&set, "h", "/img/a.jpg", None), Some("one-level"));
    assert_eq!(
        id(&set, "h", "/img/sub/a.jpg", None),
        None,
        "* must not cross /"
    );
    assert_eq!(
        id(&set, "h", "/img/a.jpg?w=100&h=2", None),
        Some("one-level")
    );
    assert_eq!(id(&set, "h", "/img/a.jpg#frag", None), Some("one-level"));
    assert_eq!(
        id(&set, "h", "/IMG/a.jpg", None),
        None,
        "paths are case-sensitive"
    );
    assert_eq!(id(&set, "h", "/deep/a.png", None), Some("any-depth"));
    assert_eq!(id(&set, "h", "/deep/1/2/3/a.png", None), Some("any-depth"));
    assert_eq!(id(&set, "h", "/deep/1/2/3/a.jpg", None), None);
    assert_eq!(id(&set, "h", "/b/x", None), Some("alt"));
    assert_eq!(id(&set, "h", "/c/x", None), None);
    assert!(set.rules()[0].matches("H:1", "/img/z.jpg?q", None));
}

#[test]
fn presets_rule_local_first_then_any_file() {
    let a = "presets:\n  thumb: w=1\n  og: w=2\nrules:\n  - name: a\n    presets: { thumb: w=10, zoom: w=11 }\n";
    let b = "presets:\n  hero: w=3\nrules:\n  - name: b\n";
    let set = load_ok(&[("a.yaml", a), ("b.yaml", b)]);
    let ra = set.rules().iter().find(|r| r.id() == "a");
    let rb = set.rules().iter().find(|r| r.id() == "b");
    assert_eq!(
        set.preset(ra, "thumb"),
        Some("w=10"),
        "rule-local shadows global"
    );
    assert_eq!(set.preset(ra, "zoom"), Some("w=11"));
    assert_eq!(
        set.preset(ra, "hero"),
        Some("w=3"),
        "global of another file"
    );
    assert_eq!(
        set.preset(rb, "thumb"),
        Some("w=1"),
        "other rule's locals are invisible"
    );
    assert_eq!(set.preset(rb, "zoom"), None);
    assert_eq!(set.preset(None, "og"), Some("w=2"));
    assert_eq!(set.preset(None, "missing"), None);
}
