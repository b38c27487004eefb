//! Data types: the raw serde view of a rule file and the validated [`Rule`] /
//! [`RuleSet`] handed to callers.
//!
//! The raw types (`RuleFile`, `RuleSpec`, ...) mirror the YAML one-to-one and
//! reject unknown keys; `load` turns them into [`Rule`]s after semantic checks.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::matcher::RuleMatcher;
use super::{OutputFormat, SourceFormat};

/// One YAML rule file, exactly as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleFile {
    #[serde(default)]
    pub presets: PresetMap,
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

/// One entry of `rules:`, exactly as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleSpec {
    pub name: String,
    pub hosts: Option<Vec<String>>,
    pub paths: Option<Vec<String>>,
    pub source_formats: Option<Vec<SourceFormat>>,
    pub formats: Option<Vec<OutputFormat>>,
    pub quality: Option<QualitySpec>,
    pub auto_quality: Option<AutoQualitySpec>,
    pub max_width: Option<u32>,
    pub max_height: Option<u32>,
    pub strip_metadata: Option<bool>,
    pub ttl: Option<String>,
    pub bypass: Option<bool>,
    pub cache: Option<crate::cache::config::Scope>,
    pub require_signature: Option<bool>,
    pub tenant: Option<String>,
    /// A watermark drawn on every transformed image the rule matches, in imgproxy's `wm`
    /// arguments: `opacity:position:x:y:scale[:name]`.
    pub watermark: Option<String>,
    #[serde(default)]
    pub presets: PresetMap,
}

/// `quality:` mapping as written (range-checked later).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct QualitySpec {
    pub avif: Option<u32>,
    pub webp: Option<u32>,
    pub jpeg: Option<u32>,
}

/// `auto_quality:` as written: the rule's SSIMULACRA2 target (range-checked later).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AutoQualitySpec {
    pub target: f64,
}

/// A `name: "options"` mapping that keeps file order and duplicates (a plain
/// map would silently keep the last one); the loader reports duplicates.
#[derive(Debug, Default)]
pub(crate) struct PresetMap(pub Vec<(String, String)>);

impl<'de> Deserialize<'de> for PresetMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PresetVisitor;
        impl<'de> Visitor<'de> for PresetVisitor {
            type Value = PresetMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of preset names to option strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PresetMap, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, String>()? {
                    out.push(entry);
                }
                Ok(PresetMap(out))
            }
        }
        deserializer.deserialize_map(PresetVisitor)
    }
}

/// Per-output-format quality (1-100); `None` means "use pixgate's default".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Quality {
    /// Quality for AVIF output.
    pub avif: Option<u8>,
    /// Quality for WebP output.
    pub webp: Option<u8>,
    /// Quality for JPEG output.
    pub jpeg: Option<u8>,
}

impl Quality {
    /// Quality configured for `format` (always `None` for PNG, which is lossless).
    pub fn get(&self, format: OutputFormat) -> Option<u8> {
        match format {
            OutputFormat::Avif => self.avif,
            OutputFormat::Webp => self.webp,
            OutputFormat::Jpeg => self.jpeg,
            OutputFormat::Png | OutputFormat::Gif | OutputFormat::Jxl => None,
        }
    }
}

/// A validated rule. Obtain one from [`RuleSet::find`].
#[derive(Debug)]
pub struct Rule {
    pub(crate) name: String,
    pub(crate) file: PathBuf,
    pub(crate) hosts: Vec<String>,
    pub(crate) paths: Vec<String>,
    pub(crate) source_formats: Option<Vec<SourceFormat>>,
    pub(crate) formats: Option<Vec<OutputFormat>>,
    pub(crate) quality: Quality,
    pub(crate) auto_target: Option<f32>,
    pub(crate) max_width: Option<u32>,
    pub(crate) max_height: Option<u32>,
    pub(crate) strip_metadata: bool,
    pub(crate) ttl: Option<Duration>,
    pub(crate) bypass: bool,
    pub(crate) cache: Option<crate::cache::config::Scope>,
    pub(crate) require_signature: bool,
    pub(crate) tenant: Option<String>,
    pub(crate) watermark: Option<crate::image::steps::WatermarkUse>,
    /// The watermark as written (for the fingerprint).
    pub(crate) watermark_spec: Option<String>,
    pub(crate) presets: BTreeMap<String, String>,
    pub(crate) matcher: RuleMatcher,
}

impl Rule {
    /// Stable identifier of the rule (its unique `name`), for cache keys and logs.
    pub fn id(&self) -> &str {
        &self.name
    }
    /// The rule's `name` (same as [`Rule::id`]).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// File the rule was loaded from.
    pub fn file(&self) -> &Path {
        &self.file
    }
    /// Host patterns, lowercased; empty = any host.
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }
    /// Path patterns; empty = any path.
    pub fn paths(&self) -> &[String] {
        &self.paths
    }
    /// Source formats this rule is restricted to (`None` = any, including unknown).
    pub fn source_formats(&self) -> Option<&[SourceFormat]> {
        self.source_formats.as_deref()
    }
    /// Allowed output formats in order of preference (`None` = pixgate decides).
    pub fn formats(&self) -> Option<&[OutputFormat]> {
        self.formats.as_deref()
    }
    /// Per-format quality settings.
    pub fn quality(&self) -> Quality {
        self.quality
    }
    /// The SSIMULACRA2 target the rule chooses qualities for (`auto_quality.target`): every
    /// lossy output under it is `q=auto` unless the URL names a quality.
    pub fn auto_target(&self) -> Option<f32> {
        self.auto_target
    }
    /// Maximum output width in pixels.
    pub fn max_width(&self) -> Option<u32> {
        self.max_width
    }
    /// Maximum output height in pixels.
    pub fn max_height(&self) -> Option<u32> {
        self.max_height
    }
    /// Whether metadata (EXIF, XMP, ...) is stripped; defaults to `true`.
    pub fn strip_metadata(&self) -> bool {
        self.strip_metadata
    }
    /// Cache TTL override (at least one second).
    pub fn ttl(&self) -> Option<Duration> {
        self.ttl
    }
    /// `true` = never transform, pass the original through.
    pub fn bypass(&self) -> bool {
        self.bypass
    }
    /// What the cache stores for this rule's requests (`None`: `cache.scope`).
    pub fn cache(&self) -> Option<crate::cache::config::Scope> {
        self.cache
    }
    /// `true` = requests must carry a valid signature.
    pub fn require_signature(&self) -> bool {
        self.require_signature
    }
    /// The tenant this rule's requests are metered for.
    pub fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }
    /// The watermark the rule draws on every transformed image.
    pub fn watermark(&self) -> Option<crate::image::steps::WatermarkUse> {
        self.watermark
    }
    /// Rule-local presets (they shadow file-level presets of the same name).
    pub fn presets(&self) -> &BTreeMap<String, String> {
        &self.presets
    }
}

/// An immutable, validated set of rules from one load of the rules directory.
#[derive(Debug)]
pub struct RuleSet {
    pub(crate) rules: Vec<Rule>,
    pub(crate) presets: BTreeMap<String, String>,
    pub(crate) fingerprint: String,
}

impl RuleSet {
    /// Builds a set from validated rules (in load order) and global presets.
    pub(crate) fn new(rules: Vec<Rule>, presets: BTreeMap<String, String>) -> RuleSet {
        let fingerprint = fingerprint_of(&rules, &presets);
        RuleSet {
            rules,
            presets,
            fingerprint,
        }
    }

    /// An empty set (matches nothing); same as `RuleSet::default()`.
    pub fn empty() -> RuleSet {
        RuleSet::new(Vec::new(), BTreeMap::new())
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// `true` when there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// All rules in load order (file name order, then position in file).
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// File-level presets of all files (names are unique across files).
    pub fn global_presets(&self) -> &BTreeMap<String, String> {
        &self.presets
    }

    /// Looks up a preset: `rule`'s own presets first, then the file-level
    /// presets of every file.
    pub fn preset<'a>(&'a self, rule: Option<&'a Rule>, name: &str) -> Option<&'a str> {
        if let Some(value) = rule.and_then(|r| r.presets.get(name)) {
            return Some(value);
        }
        self.presets.get(name).map(String::as_str)
    }

    /// 16 hex digits identifying the normalized content (rules in order plus
    /// presets); comments, formatting and file names do not affect it. Uses
    /// FNV-1a so the value is stable across builds and toolchains.
    pub fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }
}

impl Default for RuleSet {
    fn default() -> Self {
        RuleSet::empty()
    }
}

/// Canonical, unambiguous (length-prefixed) serialization hashed with FNV-1a 64.
fn fingerprint_of(rules: &[Rule], presets: &BTreeMap<String, String>) -> String {
    fn put(out: &mut String, tag: &str, value: &str) {
        out.push_str(&format!("{tag}{}:{value};", value.len()));
    }
    fn put_opt<T: fmt::Display>(out: &mut String, tag: &str, value: Option<T>) {
        match value {
            Some(v) => put(out, tag, &v.to_string()),
            None => put(out, tag, "-"),
        }
    }
    fn put_list<T: fmt::Display>(out: &mut String, tag: &str, items: Option<&[T]>) {
        match items {
            Some(items) => {
                put(out, tag, &items.len().to_string());
                for item in items {
                    put(out, "i", &item.to_string());
                }
            }
            None => put(out, tag, "-"),
        }
    }
    let mut out = String::new();
    for (name, value) in presets {
        put(&mut out, "gp", name);
        put(&mut out, "gv", value);
    }
    for rule in rules {
        put(&mut out, "rule", &rule.name);
        put_list(&mut out, "hosts", Some(rule.hosts.as_slice()));
        put_list(&mut out, "paths", Some(rule.paths.as_slice()));
        put_list(&mut out, "src", rule.source_formats.as_deref());
        put_list(&mut out, "fmt", rule.formats.as_deref());
        put_opt(&mut out, "qa", rule.quality.avif);
        put_opt(&mut out, "qw", rule.quality.webp);
        put_opt(&mut out, "qj", rule.quality.jpeg);
        put_opt(&mut out, "mw", rule.max_width);
        put_opt(&mut out, "mh", rule.max_height);
        put_opt(&mut out, "wm", rule.watermark_spec.as_deref());
        put(
            &mut out,
            "strip",
            if rule.strip_metadata { "1" } else { "0" },
        );
        put_opt(&mut out, "ttl", rule.ttl.map(|d| d.as_nanos()));
        put(&mut out, "bypass", if rule.bypass { "1" } else { "0" });
        put(
            &mut out,
            "sig",
            if rule.require_signature { "1" } else { "0" },
        );
        for (name, value) in &rule.presets {
            put(&mut out, "rp", name);
            put(&mut out, "rv", value);
        }
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in out.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}
