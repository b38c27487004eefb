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
fn avif_depth_is_8_or_10() {
    for (depth, ok) in [(8, true), (9, false), (10, true), (12, false)] {
        let y = format!("images:\n  avif:\n    depth: {depth}\n");
        match Config::from_yaml(&y, "c.yaml") {
            Ok(c) => assert!(ok, "{depth} accepted: {:?}", c.images.avif),
            Err(e) => {
                assert!(!ok, "{depth} refused: {e}");
                assert_eq!(e.0[0].key, "images.avif.depth");
                assert_eq!(e.0[0].line, Some(3), "{e}");
            }
        }
    }
}

#[test]
fn shrink_on_load_is_a_margin_from_1_to_8_or_null() {
    for (v, ok) in [
        ("1", true),
        ("1.5", true),
        ("8", true),
        ("null", true),
        ("0.5", false),
    ] {
        let y = format!("images:\n  shrink_on_load: {v}\n");
        match Config::from_yaml(&y, "s.yaml") {
            Ok(c) => assert!(ok, "{v} accepted: {:?}", c.images.shrink_on_load),
            Err(e) => {
                assert!(!ok, "{v} refused: {e}");
                assert_eq!(e.0[0].key, "images.shrink_on_load");
                assert_eq!(e.0[0].line, Some(2), "{e}");
            }
        }
    }
    let e = Config::from_yaml("images:\n  shrink_on_load: 9\n", "s.yaml").unwrap_err();
    assert!(e.to_string().contains("between 1 and 8"), "{e}");
}

#[test]
fn write_buffer_is_at_most_a_mebibyte() {
    let c = Config::from_yaml("server:\n  write_buffer: 0\n", "w.yaml").expect("0 is valid");
    assert_eq!(c.server.write_buffer.get(), 0);
    let e = Config::from_yaml("server:\n  write_buffer: 2MiB\n", "w.yaml").unwrap_err();
    assert_eq!(e.0[0].key, "server.write_buffer");
    assert_eq!(e.0[0].line, Some(2), "{e}");
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

#[test]
fn disk_tier_is_off_or_a_map() {
    let c = Config::from_yaml("cache:\n  disk: off\n", "x.yaml").unwrap();
    assert_eq!(c.cache.disk, DiskSetting::Off);
    let c = Config::from_yaml(
        "cache:\n  disk: { dir: /var/cache/pixgate, max_bytes: 2GiB }\n",
        "x.yaml",
    )
    .unwrap();
    let d = c.cache.disk.on().expect("on");
    assert_eq!(d.dir, std::path::PathBuf::from("/var/cache/pixgate"));
    assert_eq!(d.max_bytes.get(), 2 << 30);
    assert_eq!(d.key_file, None);
    // Round trip through the serializer the harness uses.
    let back = serde_yaml_ng::to_string(&c).unwrap();
    assert_eq!(Config::from_yaml(&back, "y.yaml").unwrap(), c);
    let off = serde_yaml_ng::to_string(&Config::default()).unwrap();
    assert!(off.contains("disk: off"), "{off}");
}

#[test]
fn cache_errors_name_file_line_and_key() {
    let e = Config::from_yaml(
        "cache:\n  disk:\n    dir: /x\n    max_byte: 1GiB\n",
        "c.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("c.yaml:4:"), "{e}");
    assert!(e.contains("cache.disk"), "{e}");
    assert!(e.contains("max_byte"), "{e}");

    let e = Config::from_yaml("cache:\n  disk: on\n", "c.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("c.yaml:2:") && e.contains("cache.disk"),
        "{e}"
    );

    let e = Config::from_yaml(
        "cache:\n  max_retention: 500ms\n  sweep_interval: 5s\n  disk:\n    max_bytes: 10KiB\n",
        "c.yaml",
    )
    .unwrap_err()
    .to_string();
    for (line, key) in [
        (2, "cache.max_retention"),
        (3, "cache.sweep_interval"),
        (4, "cache.disk.dir"), // missing: the section that needs it
        (5, "cache.disk.max_bytes"),
    ] {
        assert!(
            e.contains(&format!("c.yaml:{line}: key `{key}`")),
            "{key}: {e}"
        );
    }
}

#[test]
fn log_and_metrics_errors_name_file_line_and_key() {
    let y = "log:\n  access:\n    client_ip: full\n";
    let s = Config::from_yaml(y, "l.yaml").unwrap_err().to_string();
    assert!(s.starts_with("l.yaml:3:"), "{s}");
    assert!(s.contains("log.access.client_ip"), "{s}");

    let y = "log:\n  level: \"pixgate=loud\"\n  access:\n    hash_rotation: 1s\n";
    let e = Config::from_yaml(y, "m.yaml").unwrap_err();
    let keys: Vec<_> = e.0.iter().map(|x| (x.key.as_str(), x.line)).collect();
    assert_eq!(
        keys,
        [
            ("log.level", Some(2)),
            ("log.access.hash_rotation", Some(4))
        ],
        "{e}"
    );

    let y = "metrics:\n  tenants: [acme, acme, \"a b\", none]\nurl_api:\n  keys: [\"00112233445566778899aabbccddeeff\"]\n  salts: [\"00\"]\n  tenants: [globex]\n";
    let e = Config::from_yaml(y, "t.yaml").unwrap_err();
    let keys: Vec<_> = e.0.iter().map(|x| x.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "metrics.tenants[1]",
            "metrics.tenants[2]",
            "metrics.tenants[3]",
            "url_api.tenants[0]"
        ],
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("`globex` is not listed in metrics.tenants"),
        "{e}"
    );

    let y = "log:\n  access:\n    destination: /var/log/pixgate/access.log\n";
    let c = Config::from_yaml(y, "d.yaml").unwrap();
    assert_eq!(
        c.log.access.destination,
        crate::telemetry::config::Destination::File("/var/log/pixgate/access.log".into())
    );
}

#[test]
fn pingora_version_label_matches_the_lock_file() {
    let lock = include_str!("../../Cargo.lock");
    let want = format!(
        "name = \"pingora\"\nversion = \"{}\"",
        crate::telemetry::metrics::PINGORA_VERSION
    );
    assert!(
        lock.contains(&want),
        "update PINGORA_VERSION to Cargo.lock's pingora"
    );
}

#[test]
fn connection_limits_are_validated_and_keepalive_is_whole_seconds() {
    assert_eq!(Config::default().limits.keepalive_secs(), 60);
    let c = Config::from_yaml("limits:\n  keepalive_timeout: 1500ms\n", "k.yaml").unwrap();
    assert_eq!(c.limits.keepalive_secs(), 2, "a fraction rounds up");
    for (yaml, key) in [
        (
            "limits:\n  keepalive_timeout: 0s\n",
            "limits.keepalive_timeout",
        ),
        (
            "limits:\n  keepalive_timeout: 2h\n",
            "limits.keepalive_timeout",
        ),
        ("limits:\n  max_connections: 0\n", "limits.max_connections"),
        (
            "limits:\n  max_connections_per_ip: 0\n",
            "limits.max_connections_per_ip",
        ),
    ] {
        let e = Config::from_yaml(yaml, "k.yaml").unwrap_err();
        assert_eq!(e.0.len(), 1, "{e}");
        assert_eq!(e.0[0].key, key, "{e}");
        assert_eq!(e.0[0].line, Some(2), "{e}");
    }
}

#[test]
fn upgrade_sock_is_automatic_unless_configured() {
    assert_eq!(Config::default().server.upgrade_sock, None);
    let c = Config::from_yaml("server:\n  upgrade_sock: /run/px/u.sock\n", "u.yaml").unwrap();
    assert_eq!(
        c.server.upgrade_sock.as_deref(),
        Some(std::path::Path::new("/run/px/u.sock"))
    );
}
