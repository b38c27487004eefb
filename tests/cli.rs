//! The command line: check-config, the embedded default, and start-up refusing bad config with
//! the file, line and key named.

use std::process::Command;

fn pixgate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pixgate"))
        .args(args)
        .output()
        .expect("run pixgate")
}

#[test]
fn check_config_accepts_the_shipped_files() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = pixgate(&["check-config", &format!("{root}/config/pixgate.yaml")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = pixgate(&["check-config"]);
    assert!(
        out.status.success(),
        "embedded default: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn default_config_prints_the_documented_file() {
    let out = pixgate(&["default-config"]);
    let shipped = std::fs::read_to_string(format!(
        "{}/config/pixgate.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), shipped);
}

#[test]
fn bad_config_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "listen: 127.0.0.1:9\nlimits:\n  max_source_byts: 1MiB\n",
            3,
            "max_source_byts",
        ),
        (
            "limits:\n  transform_timeout: soon\n",
            2,
            "limits.transform_timeout",
        ),
        (
            "images:\n  webp:\n    quality: 300\n",
            3,
            "images.webp.quality",
        ),
        ("images:\n  formats: [avif, bmp]\n", 2, "images.formats"),
        ("origin:\n  url: ftp://example.com\n", 2, "origin.url"),
        (
            "limits:\n  max_source_bytes: 12 parsecs\n",
            2,
            "limits.max_source_bytes",
        ),
    ];
    for (i, (yaml, line, key)) in cases.iter().enumerate() {
        let p = dir.path().join(format!("bad{i}.yaml"));
        std::fs::write(&p, yaml).unwrap();
        for args in [
            vec!["check-config", p.to_str().unwrap()],
            vec!["--config", p.to_str().unwrap()],
        ] {
            let out = pixgate(&args);
            assert_eq!(out.status.code(), Some(2), "{yaml}");
            let err = String::from_utf8_lossy(&out.stderr);
            let want = format!("{}:{line}:", p.display());
            assert!(err.contains(&want), "expected `{want}` in: {err}");
            assert!(err.contains(key), "expected key `{key}` in: {err}");
        }
    }
    let out = pixgate(&["check-config", "/nonexistent/pixgate.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/pixgate.yaml"));
}
