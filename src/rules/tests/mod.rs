//! Unit tests for the rules module, split by concern, plus shared helpers.

mod errors;
mod parse;
mod precedence;
mod props;
mod reload;

use std::path::Path;

use super::{LoadError, RuleSet};

/// A temporary directory containing `files` (name, content).
pub(super) fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

/// Loads `files`, failing the test with the error text if they are invalid.
pub(super) fn load_ok(files: &[(&str, &str)]) -> RuleSet {
    let dir = dir_with(files);
    match RuleSet::load_dir(dir.path()) {
        Ok(set) => set,
        Err(e) => panic!("unexpected load errors:\n{e}"),
    }
}

/// Loads `files`, expecting errors; returns them with file names made
/// relative (just the file name) for easy comparison.
pub(super) fn load_err(files: &[(&str, &str)]) -> Vec<LoadError> {
    let dir = dir_with(files);
    match RuleSet::load_dir(dir.path()) {
        Ok(set) => panic!("expected errors, loaded {} rules", set.len()),
        Err(e) => {
            e.0.into_iter()
                .map(|mut err| {
                    assert!(err.file.starts_with(dir.path()), "{err}");
                    err.file = err.file.file_name().unwrap().into();
                    err
                })
                .collect()
        }
    }
}

/// `(file, line, key)` of each error, for compact assertions.
pub(super) fn where_(errors: &[LoadError]) -> Vec<(String, Option<usize>, String)> {
    errors
        .iter()
        .map(|e| (e.file.display().to_string(), e.line, e.key.clone()))
        .collect()
}

#[test]
fn example_rules_directory_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let set = match RuleSet::load_dir(&dir) {
        Ok(set) => set,
        Err(e) => panic!("example rules are invalid:\n{e}"),
    };
    assert_eq!(set.len(), 9);
    let names: Vec<&str> = set.rules().iter().map(|r| r.id()).collect();
    // File name order: ecommerce, static-site, wordpress.
    assert_eq!(
        names,
        [
            "shop-catalog",
            "shop-banners",
            "shop-static",
            "docs-images",
            "docs-branding",
            "example-org-default",
            "wp-uploads",
            "wp-uploads-gif",
            "wp-theme-assets",
        ]
    );
    for preset in ["thumb", "hero", "og-image", "instagram-square", "wp-medium"] {
        assert!(
            set.preset(None, preset).is_some(),
            "missing preset {preset}"
        );
    }
    assert_eq!(set.preset(None, "og-image"), Some("w=1200&h=630&fit=cover"));
    assert_eq!(
        set.preset(None, "instagram-square"),
        Some("w=1080&h=1080&fit=cover")
    );
    let catalog = set
        .find(
            "shop.example.net",
            "/media/catalog/product/a/b/shoe.jpg",
            Some(super::SourceFormat::Jpeg),
        )
        .map(|r| r.id());
    assert_eq!(catalog, Some("shop-catalog"));
    let gif = set.find(
        "www.example.com",
        "/wp-content/uploads/2024/01/a.gif",
        Some(super::SourceFormat::Gif),
    );
    assert_eq!(
        gif.map(|r| (r.id(), r.bypass())),
        Some(("wp-uploads-gif", true))
    );
}

#[test]
fn missing_and_empty_directories_are_empty_sets() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    assert!(RuleSet::load_dir(&missing).unwrap().is_empty());
    assert!(RuleSet::load_dir(dir.path()).unwrap().is_empty());
    // Blank / comment-only / null files are empty, other extensions ignored.
    let set = load_ok(&[
        ("a.yaml", ""),
        ("b.yml", "# nothing yet\n"),
        ("c.yaml", "null\n"),
        ("notes.txt", "rules: [oops"),
        (".#lock.yaml", "rules: [oops"),
        ("d.yaml.bak", "rules: [oops"),
    ]);
    assert_eq!(set.len(), 0);
    assert_eq!(set.fingerprint(), RuleSet::empty().fingerprint());
    assert_eq!(set.fingerprint(), RuleSet::default().fingerprint());
    assert_eq!(set.find("h", "/", None).map(|r| r.id()), None);
}

#[test]
fn yml_files_are_read_and_sorted_with_yaml_files() {
    let set = load_ok(&[
        ("b.yaml", "rules:\n  - name: from-b\n"),
        ("a.yml", "rules:\n  - name: from-a\n"),
    ]);
    let names: Vec<&str> = set.rules().iter().map(|r| r.id()).collect();
    assert_eq!(names, ["from-a", "from-b"]);
}
