//! What the matched rule (rules/*.yaml, `src/rules`) changes for one request: allowed output
//! formats and their order, per-format quality, an output size cap, the cache TTL cap, presets,
//! bypass and signature requirements, and the cache-key part that names the rule.

use super::{Rule, RuleSet};
use crate::image::format::OutputFormat;
use crate::image::pipeline::Transform;
use crate::image::resize::{Fit, ResizeSpec};
use std::time::Duration;

/// The rule that applies, with the set it came from (kept alive for the request: a reload
/// swaps the set, in-flight requests finish under the old one).
pub struct Applied {
    set: Option<std::sync::Arc<RuleSet>>,
    index: Option<usize>,
}

impl Applied {
    /// Finds the rule for `host` and `path` (before the fetch: source formats are unknown).
    pub fn find(set: Option<std::sync::Arc<RuleSet>>, host: &str, path: &str) -> Applied {
        let index = set.as_ref().and_then(|s| {
            let r = s.find(host, path, None)?;
            s.rules().iter().position(|x| std::ptr::eq(x, r))
        });
        Applied { set, index }
    }

    /// After the fetch: the rule for the same host and path given the source's format, when it
    /// differs from the one matched before (a rule with `source_formats` applies).
    pub fn for_source(
        &self,
        host: &str,
        path: &str,
        format: crate::image::format::SourceFormat,
    ) -> Option<Applied> {
        let set = self.set.as_ref()?;
        let r = set.find(host, path, Some(format))?;
        let index = set.rules().iter().position(|x| std::ptr::eq(x, r));
        (index != self.index).then(|| Applied {
            set: Some(set.clone()),
            index,
        })
    }

    /// The rule, if one matched.
    pub fn rule(&self) -> Option<&Rule> {
        Some(&self.set.as_ref()?.rules()[self.index?])
    }

    /// A preset's option string (rule-local first, then file-level).
    pub fn preset(&self, name: &str) -> Option<String> {
        self.set
            .as_ref()?
            .preset(self.rule(), name)
            .map(str::to_string)
    }

    /// Whether the rule says to pass images through untouched.
    pub fn bypass(&self) -> bool {
        self.rule().is_some_and(Rule::bypass)
    }

    /// What the cache stores for this request: the rule's `cache:`, else `global`.
    pub fn scope(&self, global: crate::cache::config::Scope) -> crate::cache::config::Scope {
        self.rule().and_then(Rule::cache).unwrap_or(global)
    }

    /// Whether the rule requires signed URLs.
    pub fn require_signature(&self) -> bool {
        self.rule().is_some_and(Rule::require_signature)
    }

    /// The enabled formats, narrowed and ordered by the rule.
    pub fn formats(&self, enabled: &[OutputFormat]) -> Vec<OutputFormat> {
        match self.rule().and_then(Rule::formats) {
            Some(allowed) => allowed
                .iter()
                .filter(|f| enabled.contains(f))
                .copied()
                .collect(),
            None => enabled.to_vec(),
        }
    }

    /// Per-format quality the rule sets.
    pub fn qualities(&self) -> Vec<(OutputFormat, u8)> {
        let Some(q) = self.rule().map(Rule::quality) else {
            return Vec::new();
        };
        [OutputFormat::Avif, OutputFormat::Webp, OutputFormat::Jpeg]
            .into_iter()
            .filter_map(|f| q.get(f).map(|v| (f, v)))
            .collect()
    }

    /// The tenant the rule meters its requests for.
    pub fn tenant(&self) -> Option<&str> {
        self.rule().and_then(Rule::tenant)
    }

    /// The rule's TTL cap.
    pub fn ttl(&self) -> Option<Duration> {
        self.rule().and_then(Rule::ttl)
    }

    /// The transform under the rule: its size cap applied, `q=auto` at its target when it
    /// sets `auto_quality`, and its watermark.
    pub fn clamp(&self, mut t: Transform) -> Transform {
        let Some(rule) = self.rule() else {
            return t;
        };
        if let Some(target) = rule.auto_target() {
            t.auto_quality = true;
            t.auto_target = Some(target);
        }
        // The rule's watermark is enforced: a URL's `wm` cannot move or remove it.
        if let Some(w) = rule.watermark() {
            t.steps.watermark = Some(w);
        }
        clamp(t, rule.max_width(), rule.max_height())
    }

    /// What the cache key adds for the rule: its name and the rule set's fingerprint, so a
    /// reload that changes rules never serves variants made under the old ones.
    pub fn key_part(&self) -> String {
        match (self.rule(), &self.set) {
            (Some(r), Some(s)) => format!(";rule={}@{}", r.id(), s.fingerprint()),
            _ => String::new(),
        }
    }
}

/// Caps a transform's output at `max_w` × `max_h` (proportionally), adding a shrink-only
/// resize when there was none.
pub fn clamp(mut t: Transform, max_w: Option<u32>, max_h: Option<u32>) -> Transform {
    if max_w.is_none() && max_h.is_none() {
        return t;
    }
    match &mut t.resize {
        None => t.resize = Some(ResizeSpec::inside(max_w, max_h)),
        Some(spec) => {
            let kw = match (spec.width, max_w) {
                (Some(w), Some(m)) if w > m => f64::from(m) / f64::from(w),
                _ => 1.0,
            };
            let kh = match (spec.height, max_h) {
                (Some(h), Some(m)) if h > m => f64::from(m) / f64::from(h),
                _ => 1.0,
            };
            let k = kw.min(kh);
            let shrink = |v: u32| ((f64::from(v) * k).round() as u32).max(1);
            spec.width = spec.width.map(shrink);
            spec.height = spec.height.map(shrink);
            // A box with only one side set may still grow past the other limit.
            if spec.width.is_none() {
                spec.width = max_w;
            }
            if spec.height.is_none() {
                spec.height = max_h;
            }
            if matches!(spec.fit, Fit::Fill | Fit::Outside) && (kw < 1.0 || kh < 1.0) {
                spec.fit = Fit::Inside;
            }
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::resize::Gravity;

    fn spec(w: Option<u32>, h: Option<u32>) -> Transform {
        Transform {
            resize: Some(ResizeSpec {
                width: w,
                height: h,
                fit: Fit::Cover,
                gravity: Gravity::Center,
                enlarge: false,
                background: [255; 4],
                offset: (0, 0),
            }),
            ..Transform::default()
        }
    }

    #[test]
    fn caps_apply_proportionally_and_add_a_resize() {
        let t = clamp(Transform::default(), Some(100), None).resize.unwrap();
        assert_eq!((t.width, t.height, t.fit), (Some(100), None, Fit::Inside));
        let t = clamp(spec(Some(400), Some(200)), Some(100), None)
            .resize
            .unwrap();
        assert_eq!((t.width, t.height), (Some(100), Some(50)));
        let t = clamp(spec(Some(80), Some(60)), Some(100), Some(100))
            .resize
            .unwrap();
        assert_eq!(
            (t.width, t.height),
            (Some(80), Some(60)),
            "within the cap: unchanged"
        );
        assert_eq!(clamp(spec(Some(5), None), None, None), spec(Some(5), None));
    }
}
