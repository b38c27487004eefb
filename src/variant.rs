//! Which variant one image request gets: a pure function of the URL's options, the client's
//! Accept header, the rule that applies and the transform settings. The proxy path, the URL
//! API and the fuzz target all call [`decide`]; nothing here reads a session, a clock or the
//! network, so every combination is unit-tested (`variant/tests.rs`).
//!
//! Rules are matched twice when a rule set names `source_formats`: before the fetch (the
//! source's format is unknown; this decision names the cache key) and after it, through
//! [`Ask::under_source_rule`], which re-derives the pixels and qualities under the rule for the
//! source's format while keeping the key and, where that rule allows it, the agreed plan.

use crate::image::format::OutputFormat;
use crate::image::pipeline::Transform;
use crate::image::plan::Plan;
use crate::request::accept::Accept;
use crate::request::config::TransformConfig;
use crate::request::hints::Hints;
use crate::request::options::{FormatReq, Options};
use crate::rules::Applied;
use std::time::Duration;

/// Which way the request came in: the rules treat the two differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Query options on a proxied image URL.
    Proxy,
    /// The URL API; `signed`: the URL carried a real signature (not `insecure`/`unsafe`/`_`).
    Api { signed: bool },
}

/// The settings the decision reads (`images.formats`, `transform.*`).
#[derive(Debug, Clone, Copy)]
pub struct Settings<'a> {
    /// The output formats enabled in `images.formats`, in preference order.
    pub formats: &'a [OutputFormat],
    /// The `transform` section.
    pub transform: &'a TransformConfig,
    /// The configured watermarks (`None`: none are, as in unit tests).
    pub marks: Option<&'a crate::image::marks::LiveMarks>,
}

/// The request, as values: what the URL asked for and what the client accepts.
#[derive(Debug, Clone)]
pub struct Ask {
    /// The URL's options, after presets and the DPR cap.
    pub options: Options,
    /// The client hints it sent (proxy route); used where the URL is silent when
    /// `transform.client_hints` is on.
    pub hints: Option<Hints>,
    /// The client's Accept header.
    pub accept: Accept,
    /// How the request came in.
    pub route: Route,
}

/// What one request gets.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// What each source family becomes.
    pub plan: Plan,
    /// The pixel operations, capped by the rule.
    pub transform: Transform,
    /// The rule's per-format qualities.
    pub qualities: Vec<(OutputFormat, u8)>,
    /// The rule's TTL cap.
    pub rule_ttl: Option<Duration>,
    /// The options part of the cache key: canonical options and the rule's name and set.
    pub key_options: String,
    /// A cold AVIF may be answered with WebP while it encodes (`cache.avif_budget`): only when
    /// the format was negotiated; an explicit `fm=avif` waits for AVIF.
    pub budgeted: bool,
}

/// Why a request gets no variant. Each is a client error with a fixed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The rule allows only signed transforms and this is an unsigned one (403).
    SignatureRequired(Route),
    /// The rule passes this source through untouched: the URL API refuses it (403). (On the
    /// proxy path such a request never reaches the decision: pingora proxies it.)
    Bypassed,
    /// The named output format is not enabled here (400).
    FormatDisabled { route: Route, format: &'static str },
    /// The URL or the rule names a watermark that is not configured (400 for a URL's; a
    /// rule's is answered 500: the site's configuration is wrong, and the image is not sent
    /// without its mark).
    UnknownWatermark { name: String, from_rule: bool },
}

impl Refusal {
    /// The status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::SignatureRequired(_) | Refusal::Bypassed => 403,
            Refusal::FormatDisabled { .. } => 400,
            Refusal::UnknownWatermark { from_rule, .. } => match from_rule {
                true => 500,
                false => 400,
            },
        }
    }

    /// The access log's `reason` (distinct from the transform outcomes' labels).
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::SignatureRequired(_) => "signature_required",
            Refusal::Bypassed => "rule_refuses_api",
            Refusal::FormatDisabled { .. } => "format_not_enabled",
            Refusal::UnknownWatermark { .. } => "unknown_watermark",
        }
    }

    /// The message the client reads.
    pub fn message(&self) -> String {
        match self {
            Refusal::SignatureRequired(Route::Proxy) => {
                "this path only allows signed transforms (the URL API)".to_string()
            }
            Refusal::SignatureRequired(Route::Api { .. }) => {
                "this source requires a signed URL".to_string()
            }
            Refusal::Bypassed => "a rule excludes this source from transforms".to_string(),
            Refusal::FormatDisabled {
                route: Route::Proxy,
                format,
            } => format!(
                "parameter `fm`: `{format}` is not enabled here (images.formats or the path's rule)"
            ),
            Refusal::FormatDisabled { format, .. } => {
                format!("format `{format}` is not enabled here")
            }
            Refusal::UnknownWatermark { name, .. } => {
                format!("watermark `{name}` is not configured (images.watermarks)")
            }
        }
    }
}

/// The variant for `ask` under `rule`, or why there is none.
/// (A bypassing rule on the proxy route never gets here: pingora proxies the request.)
pub fn decide(ask: &Ask, rule: &Applied, s: Settings) -> Result<Variant, Refusal> {
    // Signed-only rules judge what the URL asks for, not what client hints add.
    let unsigned = match ask.route {
        Route::Proxy => !ask.options.is_identity(),
        Route::Api { signed } => !signed,
    };
    if rule.require_signature() && unsigned {
        return Err(Refusal::SignatureRequired(ask.route));
    }
    if rule.bypass() {
        return Err(Refusal::Bypassed);
    }
    let o = ask.effective(s.transform);
    // Info is the same JSON for every client: one variant, whatever the Accept.
    let accept = match o.info {
        true => Accept::parse(None),
        false => ask.accept.clone(),
    };
    let plan = o
        .plan(&accept, &rule.formats(s.formats))
        .ok_or(Refusal::FormatDisabled {
            route: ask.route,
            format: o.format.name(),
        })?;
    let transform = pixels(&o, rule, s);
    Ok(Variant {
        plan,
        transform,
        qualities: rule.qualities(),
        rule_ttl: rule.ttl(),
        key_options: format!(
            "{}{}{}",
            o.canonical(),
            rule.key_part(),
            marks_part(&transform, rule, s)?
        ),
        budgeted: o.format == FormatReq::Auto,
    })
}

/// What the key adds for a watermark: the marks' fingerprint, so a changed file never serves
/// variants drawn with the old mark; refused when the mark is not configured.
fn marks_part(t: &Transform, rule: &Applied, s: Settings) -> Result<String, Refusal> {
    let Some(w) = &t.steps.watermark else {
        return Ok(String::new());
    };
    let marks = s.marks.map(|m| m.current());
    match marks {
        Some(m) if m.get(w.mark).is_some() => Ok(format!(";wm@{}", m.fingerprint())),
        _ => Err(Refusal::UnknownWatermark {
            name: w.mark.as_str().to_string(),
            from_rule: rule.rule().and_then(|r| r.watermark()).is_some(),
        }),
    }
}

/// What the source's format changes once it is known.
#[derive(Debug, Clone, PartialEq)]
pub enum AfterFetch {
    /// The variant agreed before the fetch stands.
    Same,
    /// A rule for this source format applies: transform under it instead.
    Under(Box<Variant>),
    /// A rule for this source format passes it through untouched.
    Original,
}

impl Ask {
    /// The options that apply: the URL's, with client hints filling its gaps (capped again).
    fn effective(&self, t: &TransformConfig) -> Options {
        match self.hints {
            Some(h) if t.client_hints => {
                h.apply(self.options, t.save_data_quality).capped(t.max_dpr)
            }
            _ => self.options,
        }
    }

    /// The variant when `rule` (matched with the source's format) differs from the rule
    /// `before` was decided under. The key stays `before`'s (it named the request before the
    /// format was known); a format the URL named and this rule does not allow keeps `before`'s
    /// plan; signatures were checked already.
    pub fn under_source_rule(
        &self,
        rule: Option<&Applied>,
        before: &Variant,
        s: Settings,
    ) -> AfterFetch {
        let Some(rule) = rule else {
            return AfterFetch::Same;
        };
        if rule.bypass() {
            return AfterFetch::Original;
        }
        let o = self.effective(s.transform);
        let plan = o
            .plan(&self.accept, &rule.formats(s.formats))
            .unwrap_or(before.plan);
        AfterFetch::Under(Box::new(Variant {
            plan,
            transform: pixels(&o, rule, s),
            qualities: rule.qualities(),
            rule_ttl: rule.ttl(),
            key_options: before.key_options.clone(),
            budgeted: before.budgeted,
        }))
    }
}

/// The pixel operations of `o` under `rule`: the box in device pixels, the rule's caps,
/// auto quality and watermark, and the URL's own `max_result_dimension`.
fn pixels(o: &Options, rule: &Applied, s: Settings) -> Transform {
    let t = rule.clamp(o.transform(s.transform.max_output_dimension));
    match o.steps.max_result {
        Some(m) => crate::rules::applied::clamp(t, Some(m), Some(m)),
        None => t,
    }
}

#[cfg(test)]
mod tests;
