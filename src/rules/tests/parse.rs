//! Parsing of every key, defaults, normalization and fingerprints.

use std::time::Duration;

use super::super::{OutputFormat, Quality, SourceFormat};
use super::{load_ok, where_};

const FULL: &str = r#"
presets:
  thumb: "w=200&h=200&fit=cover"
  og-image: "w=1200&h=630&fit=cover"
rules:
  - name: wp-uploads
    hosts: ["Example.com", "*.example.com"]
    paths: ["/wp-content/uploads/**"]
    source_formats: [jpeg, png]
    formats: [avif, webp, jpeg]
    quality: { avif: 55, webp: 75, jpeg: 78 }
    max_width: 2048
    max_height: 1024
    strip_metadata: false
    ttl: 1h
    bypass: true
    cache: off
    require_signature: true
    presets: { hero: "w=1600&fit=inside", thumb: "w=100" }
  - name: minimal
"#;

#[test]
fn every_key_is_parsed() {
    let set = load_ok(&[("wp.yaml", FULL)]);
    assert_eq!(set.len(), 2);
    let r = &set.rules()[0];
    assert_eq!(r.id(), "wp-uploads");
    assert_eq!(r.name(), "wp-uploads");
    assert_eq!(r.file().file_name().unwrap(), "wp.yaml");
    // Host patterns are lowercased.
    assert_eq!(r.hosts(), ["example.com", "*.example.com"]);
    assert_eq!(r.paths(), ["/wp-content/uploads/**"]);
    assert_eq!(
        r.source_formats(),
        Some(&[SourceFormat::Jpeg, SourceFormat::Png][..])
    );
    assert_eq!(
        r.formats(),
        Some(&[OutputFormat::Avif, OutputFormat::Webp, OutputFormat::Jpeg][..])
    );
    assert_eq!(
        r.quality(),
        Quality {
            avif: Some(55),
            webp: Some(75),
            jpeg: Some(78)
        }
    );
    assert_eq!(r.quality().get(OutputFormat::Webp), Some(75));
    assert_eq!(r.quality().get(OutputFormat::Png), None);
    assert_eq!(r.max_width(), Some(2048));
    assert_eq!(r.max_height(), Some(1024));
    assert!(!r.strip_metadata());
    assert_eq!(r.ttl(), Some(Duration::from_secs(3600)));
    assert!(r.bypass());
    assert_eq!(r.cache(), Some(crate::cache::config::Scope::Off));
    assert!(r.require_signature());
    assert_eq!(r.presets().len(), 2);
    assert_eq!(r.presets()["hero"], "w=1600&fit=inside");
    assert_eq!(set.global_presets().len(), 2);
    assert_eq!(set.preset(None, "og-image"), Some("w=1200&h=630&fit=cover"));
}

#[test]
fn omitted_keys_get_defaults() {
    let set = load_ok(&[("wp.yaml", FULL)]);
    let r = &set.rules()[1];
    assert_eq!(r.id(), "minimal");
    assert_eq!(r.cache(), None);
    assert!(r.hosts().is_empty());
    assert!(r.paths().is_empty());
    assert_eq!(r.source_formats(), None);
    assert_eq!(r.formats(), None);
    assert_eq!(r.quality(), Quality::default());
    assert_eq!(r.max_width(), None);
    assert_eq!(r.max_height(), None);
    assert!(r.strip_metadata(), "strip_metadata defaults to true");
    assert_eq!(r.ttl(), None);
    assert!(!r.bypass());
    assert!(!r.require_signature());
    assert!(r.presets().is_empty());
}

#[test]
fn empty_lists_mean_no_constraint() {
    let set = load_ok(&[(
        "a.yaml",
        "rules:\n  - name: r\n    hosts: []\n    paths: []\n    source_formats: []\n",
    )]);
    let r = &set.rules()[0];
    assert_eq!(r.source_formats(), None);
    assert_eq!(
        set.find("any.host", "/any/path", None).map(|r| r.id()),
        Some("r")
    );
}

#[test]
fn humantime_ttls_and_block_style_lists() {
    let yaml = "\
rules:
- name: a
  ttl: 30s
  hosts:
  - img.example.com
  source_formats:
    - gif
- name: b
  ttl: 7d
- name: c
  ttl: 5m
";
    let set = load_ok(&[("a.yaml", yaml)]);
    let ttls: Vec<_> = set.rules().iter().map(|r| r.ttl()).collect();
    assert_eq!(
        ttls,
        [
            Some(Duration::from_secs(30)),
            Some(Duration::from_secs(7 * 86_400)),
            Some(Duration::from_secs(300)),
        ]
    );
    assert_eq!(set.rules()[0].hosts(), ["img.example.com"]);
    assert_eq!(
        set.rules()[0].source_formats(),
        Some(&[SourceFormat::Gif][..])
    );
}

#[test]
fn boundary_values_are_accepted() {
    let yaml = "rules:\n  - name: a\n    quality: {avif: 1, webp: 100}\n    max_width: 1\n    max_height: 16384\n    ttl: 1s\n";
    let set = load_ok(&[("a.yaml", yaml)]);
    let r = &set.rules()[0];
    assert_eq!((r.quality().avif, r.quality().webp), (Some(1), Some(100)));
    assert_eq!((r.max_width(), r.max_height()), (Some(1), Some(16384)));
    assert_eq!(r.ttl(), Some(Duration::from_secs(1)));
}

#[test]
fn fingerprint_ignores_formatting_but_not_content() {
    let a = load_ok(&[("a.yaml", FULL)]);
    let reformatted = FULL
        .replace(
            "quality: { avif: 55, webp: 75, jpeg: 78 }",
            "quality:\n      avif: 55\n      webp: 75\n      jpeg: 78  # tuned",
        )
        .replace("rules:", "# comment\nrules:");
    let b = load_ok(&[("other-name.yaml", &reformatted)]);
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_eq!(a.fingerprint().len(), 16);
    assert!(a.fingerprint().chars().all(|c| c.is_ascii_hexdigit()));

    let changed = load_ok(&[("a.yaml", &FULL.replace("webp: 75", "webp: 76"))]);
    assert_ne!(a.fingerprint(), changed.fingerprint());
    let preset_changed = load_ok(&[("a.yaml", &FULL.replace("w=100", "w=101"))]);
    assert_ne!(a.fingerprint(), preset_changed.fingerprint());
    // Rule order is part of the content (it decides ties).
    let swapped = "rules:\n  - name: b\n  - name: a\n";
    let ordered = "rules:\n  - name: a\n  - name: b\n";
    assert_ne!(
        load_ok(&[("a.yaml", swapped)]).fingerprint(),
        load_ok(&[("a.yaml", ordered)]).fingerprint()
    );
    // Deterministic across loads.
    assert_eq!(a.fingerprint(), load_ok(&[("a.yaml", FULL)]).fingerprint());
}

#[test]
fn where_helper_reports_relative_names() {
    let errs = super::load_err(&[("x.yaml", "rules:\n  - name: a\n    max_width: 0\n")]);
    assert_eq!(
        where_(&errs),
        [(
            "x.yaml".to_string(),
            Some(3),
            "rules[0].max_width".to_string()
        )]
    );
}
