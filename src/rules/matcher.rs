//! Compiled host/path globs and the "most specific rule wins" selection.
//!
//! A rule's specificity is the tuple `(host, path, source, -load_index)`
//! compared lexicographically, exactly as described in the parent module
//! documentation:
//!
//! 1. host: `2` = an exact (glob-free) host pattern matched, `1` = only a glob
//!    host pattern matched, `0` = the rule has no host constraint;
//! 2. path: number of chars before the first `*`, `?`, `[` or `{` of the
//!    matching path pattern with the longest such literal prefix; `-1` = no
//!    path constraint;
//! 3. source: `1` if the rule has `source_formats`, else `0`;
//! 4. ties go to the rule loaded first.
//!
//! Matching is a linear scan over the rules (each rule has one pre-built
//! [`GlobSet`] for hosts and one for paths), which is ample for the tens to
//! low hundreds of rules a deployment has.

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

use super::model::{Rule, RuleSet};
use super::SourceFormat;

/// Characters that make a pattern a glob.
const GLOB_META: [char; 4] = ['*', '?', '[', '{'];

/// One validated host pattern.
#[derive(Debug)]
pub(crate) enum HostPattern {
    /// Glob-free: compared for equality with the normalized host.
    Exact(String),
    /// Case-insensitive glob.
    Glob(Glob),
}

/// One validated path pattern plus the length of its literal prefix.
#[derive(Debug)]
pub(crate) struct PathPattern {
    glob: Glob,
    prefix: usize,
}

/// Validates and compiles a `hosts:` entry (lowercased; no port, path or spaces).
pub(crate) fn host_pattern(raw: &str) -> Result<HostPattern, String> {
    if raw.is_empty() {
        return Err("host pattern must not be empty".to_string());
    }
    if raw
        .chars()
        .any(|c| c.is_whitespace() || c == '/' || c == ':')
    {
        return Err(format!(
            "invalid host pattern `{raw}`: use a bare host name or glob (no scheme, port, path or spaces)"
        ));
    }
    let lower = raw.to_ascii_lowercase();
    if !lower.contains(GLOB_META) {
        return Ok(HostPattern::Exact(lower));
    }
    GlobBuilder::new(&lower)
        .case_insensitive(true)
        .build()
        .map(HostPattern::Glob)
        .map_err(|e| format!("invalid host glob `{raw}`: {}", e.kind()))
}

/// Validates and compiles a `paths:` entry (`literal_separator(true)`, so `*`
/// stays within one segment and `**` crosses segments).
pub(crate) fn path_pattern(raw: &str) -> Result<PathPattern, String> {
    if !(raw.starts_with('/') || raw.starts_with('*')) {
        return Err(format!(
            "invalid path pattern `{raw}`: must start with `/` (or `**` to match any prefix)"
        ));
    }
    in_normal_form(raw)?;
    let glob = GlobBuilder::new(raw)
        .literal_separator(true)
        .build()
        .map_err(|e| format!("invalid path glob `{raw}`: {}", e.kind()))?;
    Ok(PathPattern {
        glob,
        prefix: literal_prefix_len(raw),
    })
}

/// Request paths are matched in their normal form (`crate::path`), so a pattern whose
/// literal parts are not in it (`/%7Euser/**`, `/a/../b`, `//x`, `/café/**`) could never match:
/// refused, naming the form to write.
fn in_normal_form(raw: &str) -> Result<(), String> {
    use crate::path::{normalize_bytes, EncodedSlashes, Form};
    let problem = |why: String| Err(format!("path pattern `{raw}` {why}"));
    if raw.contains("//") {
        return problem("has `//`: request paths have repeated slashes merged".into());
    }
    for seg in raw.split('/').skip(1) {
        // Glob syntax is not path syntax: judge the literal characters only.
        let probe: String = seg
            .chars()
            .map(|c| if "*?[]{}\\".contains(c) { 'x' } else { c })
            .collect();
        let want = format!("/{probe}");
        match normalize_bytes(want.as_bytes(), Form::request(EncodedSlashes::Keep)) {
            Ok(n) if n == want => {}
            Ok(n) => {
                return problem(format!(
                    "is not in the normal form request paths are matched in: `{seg}` is `{}` \
                     there (docs/hardening.md)",
                    &n[1..]
                ))
            }
            Err(e) => return problem(format!("can never match: {e}")),
        }
    }
    Ok(())
}

/// Number of chars before the first glob metacharacter (`*?[{`).
pub(crate) fn literal_prefix_len(pattern: &str) -> usize {
    pattern
        .chars()
        .take_while(|c| !GLOB_META.contains(c))
        .count()
}

/// Compiled host + path constraints of one rule.
#[derive(Debug)]
pub(crate) struct RuleMatcher {
    exact_hosts: Vec<String>,
    host_globs: GlobSet,
    any_host: bool,
    path_globs: GlobSet,
    path_prefixes: Vec<usize>,
    any_path: bool,
}

impl RuleMatcher {
    /// Builds the matcher; empty pattern lists mean "no constraint".
    pub(crate) fn new(hosts: Vec<HostPattern>, paths: Vec<PathPattern>) -> Result<Self, String> {
        let any_host = hosts.is_empty();
        let any_path = paths.is_empty();
        let mut exact_hosts = Vec::new();
        let mut host_builder = GlobSetBuilder::new();
        for host in hosts {
            match host {
                HostPattern::Exact(h) => exact_hosts.push(h),
                HostPattern::Glob(g) => {
                    host_builder.add(g);
                }
            }
        }
        let mut path_builder = GlobSetBuilder::new();
        let mut path_prefixes = Vec::with_capacity(paths.len());
        for path in paths {
            path_builder.add(path.glob);
            path_prefixes.push(path.prefix);
        }
        Ok(RuleMatcher {
            exact_hosts,
            host_globs: host_builder.build().map_err(|e| e.to_string())?,
            any_host,
            path_globs: path_builder.build().map_err(|e| e.to_string())?,
            path_prefixes,
            any_path,
        })
    }

    /// Host level (2 exact, 1 glob, 0 unconstrained) or `None` if no match.
    fn host_level(&self, host: &str) -> Option<u8> {
        if self.any_host {
            Some(0)
        } else if self.exact_hosts.iter().any(|h| h == host) {
            Some(2)
        } else if self.host_globs.is_match(host) {
            Some(1)
        } else {
            None
        }
    }

    /// Longest literal prefix among matching path patterns (-1 unconstrained).
    fn path_level(&self, path: &str) -> Option<i64> {
        if self.any_path {
            return Some(-1);
        }
        self.path_globs
            .matches(path)
            .into_iter()
            .filter_map(|i| self.path_prefixes.get(i))
            .max()
            .map(|&p| i64::try_from(p).unwrap_or(i64::MAX))
    }
}

/// Ordering key of a matching rule (bigger is more specific; the load-order
/// tie-break is applied by [`RuleSet::find`]).
type Specificity = (u8, i64, u8);

impl Rule {
    /// `Some(specificity)` if the rule matches the normalized request.
    fn specificity(
        &self,
        host: &str,
        path: &str,
        source: Option<SourceFormat>,
    ) -> Option<Specificity> {
        let source_level = match &self.source_formats {
            None => 0,
            Some(formats) => {
                let source = source?;
                if !formats.contains(&source) {
                    return None;
                }
                1
            }
        };
        let host_level = self.matcher.host_level(host)?;
        let path_level = self.matcher.path_level(path)?;
        Some((host_level, path_level, source_level))
    }

    /// `true` if this rule matches the request (host/path are normalized the
    /// same way as in [`RuleSet::find`]).
    pub fn matches(&self, host: &str, path: &str, source: Option<SourceFormat>) -> bool {
        let host = normalize_host(host);
        self.specificity(&host, strip_query(path), source).is_some()
    }
}

impl RuleSet {
    /// The most specific rule matching `host` (port and case are ignored),
    /// `path` (anything from `?` or `#` on is ignored) and `source`; see the
    /// module docs for the precedence order. `None` if no rule matches.
    pub fn find(&self, host: &str, path: &str, source: Option<SourceFormat>) -> Option<&Rule> {
        let host = normalize_host(host);
        let path = strip_query(path);
        let mut best: Option<(Specificity, &Rule)> = None;
        for rule in &self.rules {
            if let Some(spec) = rule.specificity(&host, path, source) {
                // Strictly greater: on a tie the earlier rule stays.
                if best.as_ref().is_none_or(|(b, _)| spec > *b) {
                    best = Some((spec, rule));
                }
            }
        }
        best.map(|(_, rule)| rule)
    }
}

/// Lowercases, strips a `:port` (also after a bracketed IPv6 literal) and a
/// trailing dot. Hosts with several colons and no brackets are kept as is.
pub(crate) fn normalize_host(host: &str) -> String {
    let host = host.trim();
    let without_port = if host.starts_with('[') {
        match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        }
    } else if host.matches(':').count() == 1 {
        host.split(':').next().unwrap_or(host)
    } else {
        host
    };
    let trimmed = without_port.strip_suffix('.').unwrap_or(without_port);
    trimmed.to_ascii_lowercase()
}

/// The path without its query string or fragment.
pub(crate) fn strip_query(path: &str) -> &str {
    match path.find(['?', '#']) {
        Some(i) => &path[..i],
        None => path,
    }
}
