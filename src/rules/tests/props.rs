//! Property tests: matching and loading never panic on arbitrary input.

use proptest::prelude::*;

use super::super::{RuleSet, SourceFormat};
use super::load_ok;
use crate::located::{locate, KeyPath};

const RULES: &str = r#"
rules:
  - { name: a, hosts: ["*.example.com", "example.com"], paths: ["/img/**", "/{x,y}/*.png"] }
  - { name: b, hosts: ["[a-c]?.test"], source_formats: [jpeg, gif] }
  - { name: c, paths: ["**/*.jpg", "/"] }
  - { name: d }
"#;

fn source() -> impl Strategy<Value = Option<SourceFormat>> {
    prop_oneof![
        Just(None),
        Just(Some(SourceFormat::Jpeg)),
        Just(Some(SourceFormat::Png)),
        Just(Some(SourceFormat::Gif)),
        Just(Some(SourceFormat::Webp)),
        Just(Some(SourceFormat::Avif)),
    ]
}

/// YAML-looking text built from fragments that reach deep into the loader
/// (keys at various indents, sequence markers, flow collections, values).
fn yamlish() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        Just("rules:".to_string()),
        Just("presets:".to_string()),
        Just("- name: r".to_string()),
        Just("name: x".to_string()),
        Just("hosts: [\"*.a\", \"[\"]".to_string()),
        Just("paths: [\"/a/**\", \"x\"]".to_string()),
        Just("quality: { webp: 0, avif: 101 }".to_string()),
        Just("quality:".to_string()),
        Just("webp: 300".to_string()),
        Just("ttl: 1ms".to_string()),
        Just("max_width: 0".to_string()),
        Just("source_formats: [jpeg, tiff]".to_string()),
        Just("thumb: \"w=1 2\"".to_string()),
        Just("- \"quoted\": {".to_string()),
        Just("- - -".to_string()),
        Just("? complex".to_string()),
        Just("&anchor *alias <<: |".to_string()),
        Just("---".to_string()),
        "[ -~]{0,12}".prop_map(String::from),
    ];
    prop::collection::vec((0usize..8, fragment), 0..16).prop_map(|lines| {
        lines
            .into_iter()
            .map(|(indent, text)| format!("{}{text}\n", " ".repeat(indent)))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn find_never_panics(host in any::<String>(), path in any::<String>(), src in source()) {
        let set = load_ok(&[("r.yaml", RULES)]);
        let found = set.find(&host, &path, src);
        if let Some(rule) = found {
            prop_assert!(rule.matches(&host, &path, src));
        }
        let _ = RuleSet::empty().find(&host, &path, src);
    }

    #[test]
    fn find_never_panics_on_host_like_input(
        host in "[A-Za-z0-9.:\\[\\]-]{0,30}",
        path in "(/[a-z0-9.*?\\[\\]{}]{0,6}){0,6}(\\?[ -~]{0,8})?",
        src in source(),
    ) {
        let set = load_ok(&[("r.yaml", RULES)]);
        let _ = set.find(&host, &path, src);
    }

    #[test]
    fn loading_arbitrary_text_never_panics(text in any::<String>()) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.yaml"), &text).unwrap();
        check_loaded(RuleSet::load_dir(dir.path()));
    }

    #[test]
    fn loading_yaml_like_text_never_panics(text in yamlish()) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.yaml"), &text).unwrap();
        std::fs::write(dir.path().join("y.yaml"), &text).unwrap();
        check_loaded(RuleSet::load_dir(dir.path()));
    }

    #[test]
    fn locator_never_panics(text in yamlish(), keys in prop::collection::vec(("[a-z]{1,6}", 0usize..3), 0..4)) {
        let mut path = KeyPath::default();
        for (key, index) in keys {
            path = path.key(&key).index(index);
        }
        if let Some(line) = locate(&text, &path) {
            prop_assert!(line >= 1 && line <= text.lines().count());
        }
    }
}

/// Errors must be well-formed: a line, when present, is within the file.
fn check_loaded(result: Result<RuleSet, super::super::LoadErrors>) {
    if let Err(errors) = result {
        assert!(!errors.is_empty());
        for e in errors.errors() {
            assert!(e.line != Some(0), "{e}");
            assert!(!e.message.is_empty(), "{e}");
        }
    }
}
