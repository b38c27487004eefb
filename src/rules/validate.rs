//! Semantic checks that serde cannot express (ranges, globs, durations,
//! names, preset strings) and the conversion of a raw `RuleSpec` into a
//! [`Rule`].
//!
//! Problems are returned with key paths relative to the rule (`quality.webp`)
//! so the loader can prefix `rules[N]` and locate the line.

use std::path::PathBuf;
use std::time::Duration;

use super::matcher::{host_pattern, path_pattern, RuleMatcher};
use super::model::{Quality, Rule, RuleSpec};
use crate::located::KeyPath;

/// Inclusive bounds for `max_width` / `max_height`.
pub(crate) const MAX_DIMENSION: u32 = 16_384;
/// Smallest accepted `ttl`.
pub(crate) const MIN_TTL: Duration = Duration::from_secs(1);

/// Outcome of checking one rule: the rule when everything converted, and all
/// problems found (key paths relative to the rule).
pub(crate) struct RuleCheck {
    pub rule: Option<Rule>,
    pub problems: Vec<(KeyPath, String)>,
}

/// Rule and preset names: non-empty ASCII letters, digits, `.`, `_`, `-`
/// (they end up in cache keys and query strings).
pub(crate) fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "invalid {what} `{name}`: character {c:?} not allowed (use ASCII letters, digits, `.`, `_`, `-`)"
        ));
    }
    Ok(())
}

/// Preset values: non-empty, only URL query characters (RFC 3986 `query`),
/// `%` only as a `%XX` escape.
pub(crate) fn check_preset_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("preset value must not be empty".to_string());
    }
    let bytes = value.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let ok = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?".contains(&b);
        let escape = b == b'%'
            && bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
            && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
        if !ok && !escape {
            let c = value.get(i..).and_then(|s| s.chars().next()).unwrap_or('?');
            return Err(format!(
                "preset value `{value}` contains {c:?} at byte {i}: only URL query characters are allowed"
            ));
        }
    }
    Ok(())
}

fn check_quality(q: Option<u32>) -> Result<Option<u8>, String> {
    match q {
        None => Ok(None),
        Some(v @ 1..=100) => Ok(u8::try_from(v).ok()),
        Some(v) => Err(format!("quality must be between 1 and 100, got {v}")),
    }
}

fn check_dimension(d: Option<u32>) -> Result<Option<u32>, String> {
    match d {
        Some(v) if v == 0 || v > MAX_DIMENSION => Err(format!(
            "must be between 1 and {MAX_DIMENSION} pixels, got {v}"
        )),
        other => Ok(other),
    }
}

fn check_ttl(ttl: Option<&str>) -> Result<Option<Duration>, String> {
    let Some(raw) = ttl else { return Ok(None) };
    let d = humantime::parse_duration(raw.trim())
        .map_err(|e| format!("invalid duration `{raw}`: {e}"))?;
    if d < MIN_TTL {
        return Err(format!("ttl must be at least 1s, got `{raw}`"));
    }
    Ok(Some(d))
}

/// Checks one rule and converts it. `file` and `presets` of the returned
/// rule are left empty for the loader to fill in.
pub(crate) fn check_rule(spec: &RuleSpec) -> RuleCheck {
    let root = KeyPath::default();
    let mut problems = Vec::new();
    let mut note = |key: KeyPath, r: Result<(), String>| {
        if let Err(message) = r {
            problems.push((key, message));
        }
    };
    note(root.key("name"), check_name("rule name", &spec.name));

    let mut hosts = Vec::new();
    let mut host_patterns = Vec::new();
    for (j, raw) in spec.hosts.iter().flatten().enumerate() {
        match host_pattern(raw) {
            Ok(p) => {
                hosts.push(raw.to_ascii_lowercase());
                host_patterns.push(p);
            }
            Err(e) => note(root.key("hosts").index(j), Err(e)),
        }
    }
    let mut paths = Vec::new();
    let mut path_patterns = Vec::new();
    for (j, raw) in spec.paths.iter().flatten().enumerate() {
        match path_pattern(raw) {
            Ok(p) => {
                paths.push(raw.clone());
                path_patterns.push(p);
            }
            Err(e) => note(root.key("paths").index(j), Err(e)),
        }
    }
    if spec.formats.as_ref().is_some_and(Vec::is_empty) {
        note(
            root.key("formats"),
            Err("must list at least one output format (omit the key to allow any)".to_string()),
        );
    }
    if let Some(t) = &spec.tenant {
        if !crate::telemetry::tenant::valid_name(t) {
            note(
                root.key("tenant"),
                Err(format!("`{t}`: use 1-64 letters, digits, `-`, `_` or `.`")),
            );
        }
    }
    let q = spec.quality.as_ref();
    let mut quality = Quality::default();
    for (name, raw, slot) in [
        ("avif", q.and_then(|q| q.avif), &mut quality.avif),
        ("webp", q.and_then(|q| q.webp), &mut quality.webp),
        ("jpeg", q.and_then(|q| q.jpeg), &mut quality.jpeg),
    ] {
        match check_quality(raw) {
            Ok(v) => *slot = v,
            Err(e) => note(root.key("quality").key(name), Err(e)),
        }
    }
    let auto_target = match spec.auto_quality.as_ref().map(|a| a.target) {
        Some(t) if t.is_finite() && (1.0..=99.0).contains(&t) => Some(t as f32),
        Some(t) => {
            note(
                root.key("auto_quality").key("target"),
                Err(format!("must be between 1 and 99, got {t}")),
            );
            None
        }
        None => None,
    };
    let max_width = check_dimension(spec.max_width)
        .map_err(|e| note(root.key("max_width"), Err(e)))
        .ok()
        .flatten();
    let max_height = check_dimension(spec.max_height)
        .map_err(|e| note(root.key("max_height"), Err(e)))
        .ok()
        .flatten();
    let ttl = check_ttl(spec.ttl.as_deref())
        .map_err(|e| note(root.key("ttl"), Err(e)))
        .ok()
        .flatten();
    let watermark = spec.watermark.as_deref().and_then(|w| {
        let args: Vec<&str> = w.split(':').collect();
        let mut steps = crate::image::steps::Steps::default();
        match crate::request::steps::set(&mut steps, "watermark", &args) {
            Some(Ok(())) if steps.watermark.is_some() => steps.watermark,
            Some(Err(e)) => {
                note(root.key("watermark"), Err(e.message));
                None
            }
            _ => {
                note(
                    root.key("watermark"),
                    Err("an opacity of 0 draws nothing: remove the key instead".into()),
                );
                None
            }
        }
    });
    let matcher = RuleMatcher::new(host_patterns, path_patterns)
        .map_err(|e| note(root.clone(), Err(format!("cannot compile patterns: {e}"))))
        .ok();

    let rule = matcher.map(|matcher| Rule {
        name: spec.name.clone(),
        file: PathBuf::new(),
        hosts,
        paths,
        // An empty list is the same as no constraint.
        source_formats: spec.source_formats.clone().filter(|f| !f.is_empty()),
        formats: spec.formats.clone(),
        quality,
        auto_target,
        max_width,
        max_height,
        strip_metadata: spec.strip_metadata.unwrap_or(true),
        ttl,
        bypass: spec.bypass.unwrap_or(false),
        cache: spec.cache,
        require_signature: spec.require_signature.unwrap_or(false),
        tenant: spec.tenant.clone(),
        watermark,
        watermark_spec: spec.watermark.clone(),
        presets: Default::default(),
        matcher,
    });
    RuleCheck { rule, problems }
}
