use super::*;

#[test]
fn embedded_default_is_valid_and_equals_code_defaults() {
    let c = Config::embedded_default().expect("embedded default must load");
    assert_eq!(
        c,
        Config::default(),
        "config/pixgate.yaml and Default impls disagree"
    );
}

#[test]
fn empty_file_gives_defaults() {
    assert_eq!(
        Config::from_yaml("{}", "x.yaml").unwrap(),
        Config::default()
    );
}

#[test]
fn units_are_typed() {
    let c = Config::from_yaml(
        "limits:\n  max_source_bytes: 8MiB\n  transform_timeout: 1500ms\n",
        "x.yaml",
    )
    .unwrap();
    assert_eq!(c.limits.max_source_bytes.get(), 8 << 20);
    assert_eq!(c.limits.transform_timeout.get().as_millis(), 1500);
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let e = Config::from_yaml(
        "listen: 127.0.0.1:1\nlimits:\n  max_source_byte: 1\n",
        "a.yaml",
    )
    .unwrap_err();
    let s = e.to_string();
    assert!(s.starts_with("a.yaml:3:"), "{s}");
    assert!(s.contains("max_source_byte"), "{s}");
    assert!(s.contains("limits"), "{s}");
}

#[test]
fn bad_unit_names_file_line_and_key() {
    let e = Config::from_yaml("limits:\n\n  transform_timeout: 3 parsecs\n", "b.yaml").unwrap_err();
    let s = e.to_string();
    assert!(s.starts_with("b.yaml:3:"), "{s}");
    assert!(s.contains("limits.transform_timeout"), "{s}");
}

#[test]
fn range_errors_are_all_reported_with_lines() {
    let y = "images:\n  avif:\n    quality: 0\n  webp: { quality: 101 }\n";
    let e = Config::from_yaml(y, "c.yaml").unwrap_err();
    assert_eq!(e.0.len(), 2, "{e}");
    assert_eq!(e.0[0].line, Some(3));
    assert_eq!(e.0[0].key, "images.avif.quality");
    assert_eq!(e.0[1].line, Some(4));
}

#[test]
fn bad_format_and_origin_are_rejected() {
    let e = Config::from_yaml("images:\n  formats: [avif, gif]\n", "d.yaml").unwrap_err();
    assert!(e.to_string().contains("images.formats"), "{e}");
    let e = Config::from_yaml("origin:\n  url: ftp://x\n", "d.yaml").unwrap_err();
    assert!(
        e.to_string().starts_with("d.yaml:2: key `origin.url`"),
        "{e}"
    );
}

#[test]
fn yaml_syntax_error_has_line() {
    let e = Config::from_yaml("listen: [\n", "e.yaml").unwrap_err();
    assert!(e.0[0].line.is_some(), "{e}");
}
