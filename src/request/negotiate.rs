//! Chooses the output format from the client's Accept header, the enabled formats and the
//! source image.
//!
//! Policy (docs/architecture.md, "Format negotiation"):
//! - AVIF and WebP are candidates only when the Accept header names them explicitly with q > 0.
//!   A wildcard (`*/*`, `image/*`) says nothing about what a client can decode, so it never
//!   selects a modern format; this is what imgproxy and Cloudflare do too.
//! - The source's own family (JPEG for photos, PNG for graphics or anything with alpha) is
//!   always a candidate: it is what the origin would have sent.
//! - The candidate with the highest q wins; ties go to the configured order, family last.
//! - An image with real transparency never becomes JPEG.

use super::accept::Accept;
use super::options::FormatReq;
use crate::image::format::{OutputFormat, SourceFormat};
pub use crate::image::plan::{Choice, Plan};

/// Picks the output for a source image.
pub fn choose(
    accept: &Accept,
    enabled: &[OutputFormat],
    source: SourceFormat,
    has_alpha: bool,
) -> Choice {
    let family = source.family(has_alpha);
    let mut best: Option<(OutputFormat, f32)> = None;
    for &f in enabled.iter().filter(|f| f.is_modern()) {
        if has_alpha && !f.supports_alpha() {
            continue;
        }
        let v = accept.verdict(f.mime());
        if v.explicit && v.q > 0.0 && best.is_none_or(|(_, q)| v.q > q) {
            best = Some((f, v.q));
        }
    }
    let family_q = accept.verdict(family.mime()).q;
    match best {
        Some((f, q)) if q >= family_q => Choice::Encode(f),
        _ if enabled.contains(&family) => Choice::Encode(family),
        _ => Choice::Keep,
    }
}

/// The plan for a URL's format request: negotiated from `accept` (`Auto`), or every source
/// becomes the named format; `None` when the named format is not among `enabled`.
pub fn plan_for(req: FormatReq, accept: &Accept, enabled: &[OutputFormat]) -> Option<Plan> {
    match req {
        FormatReq::Auto => Some(Plan::new(accept, enabled)),
        FormatReq::Force(f) if enabled.contains(&f) => Some(Plan::forced(f)),
        FormatReq::Force(_) => None,
    }
}

impl Plan {
    /// The plan for a client's Accept header and the enabled formats.
    pub fn new(accept: &Accept, enabled: &[OutputFormat]) -> Plan {
        let png = choose(accept, enabled, SourceFormat::Png, false);
        let webp = accept.verdict(OutputFormat::Webp.mime());
        Plan {
            jpeg: choose(accept, enabled, SourceFormat::Jpeg, false),
            png,
            webp_too: png == Choice::Encode(OutputFormat::Avif)
                && enabled.contains(&OutputFormat::Webp)
                && webp.explicit
                && webp.q > 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OutputFormat::*;

    pub const CHROME: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
    pub const FIREFOX: &str =
        "image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5";
    pub const SAFARI: &str = "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5";
    const ALL: [OutputFormat; 4] = [Avif, Webp, Jpeg, Png];

    fn pick(accept: Option<&str>, src: SourceFormat, alpha: bool) -> Choice {
        choose(&Accept::parse(accept), &ALL, src, alpha)
    }

    #[test]
    fn browsers_get_avif() {
        for a in [CHROME, FIREFOX, SAFARI] {
            assert_eq!(
                pick(Some(a), SourceFormat::Jpeg, false),
                Choice::Encode(Avif),
                "{a}"
            );
            assert_eq!(
                pick(Some(a), SourceFormat::Png, true),
                Choice::Encode(Avif),
                "{a}"
            );
        }
    }

    #[test]
    fn wildcards_and_absence_keep_the_family() {
        assert_eq!(
            pick(Some("*/*"), SourceFormat::Jpeg, false),
            Choice::Encode(Jpeg)
        );
        assert_eq!(pick(None, SourceFormat::Png, false), Choice::Encode(Png));
        assert_eq!(
            pick(Some("image/*"), SourceFormat::Gif, false),
            Choice::Encode(Png)
        );
    }

    #[test]
    fn q_zero_and_q_order() {
        assert_eq!(
            pick(Some("image/avif;q=0"), SourceFormat::Jpeg, false),
            Choice::Encode(Jpeg)
        );
        assert_eq!(
            pick(
                Some("image/avif;q=0,image/webp,*/*"),
                SourceFormat::Jpeg,
                false
            ),
            Choice::Encode(Webp)
        );
        assert_eq!(
            pick(Some("image/webp"), SourceFormat::Jpeg, false),
            Choice::Encode(Webp)
        );
        assert_eq!(
            pick(
                Some("image/avif;q=0.5,image/webp;q=0.9"),
                SourceFormat::Jpeg,
                false
            ),
            Choice::Encode(Webp)
        );
        assert_eq!(
            pick(
                Some("image/jpeg,image/webp;q=0.5"),
                SourceFormat::Jpeg,
                false
            ),
            Choice::Encode(Jpeg)
        );
    }

    #[test]
    fn alpha_never_becomes_jpeg() {
        assert_eq!(
            pick(Some("*/*"), SourceFormat::Webp, true),
            Choice::Encode(Png)
        );
        let only_jpeg = [Avif, Webp, Jpeg];
        let c = choose(
            &Accept::parse(Some("image/jpeg")),
            &only_jpeg,
            SourceFormat::Png,
            true,
        );
        assert_eq!(c, Choice::Keep);
    }

    #[test]
    fn disabled_formats_are_skipped() {
        let c = choose(
            &Accept::parse(Some(CHROME)),
            &[Webp],
            SourceFormat::Jpeg,
            false,
        );
        assert_eq!(c, Choice::Encode(Webp));
        let c = choose(
            &Accept::parse(Some("*/*")),
            &[Avif, Webp],
            SourceFormat::Jpeg,
            false,
        );
        assert_eq!(c, Choice::Keep);
    }

    #[test]
    fn plan_labels_and_fallback() {
        let p = Plan::new(&Accept::parse(Some(CHROME)), &ALL);
        assert_eq!(p.label(), "avif+webp");
        assert!(p.webp_too);
        let only_avif = Plan::new(&Accept::parse(Some("image/avif,*/*")), &ALL);
        assert_eq!(only_avif.label(), "avif");
        let no_webp = Plan::new(&Accept::parse(Some(CHROME)), &[Avif, Jpeg, Png]);
        assert_eq!(no_webp.label(), "avif");
        assert!(p.wants_avif());
        // WebP answers while AVIF encodes only for a client that named WebP, and only when
        // WebP is enabled.
        assert!(p.webp_may_stand_in());
        assert!(only_avif.wants_avif() && !only_avif.webp_may_stand_in());
        assert!(!no_webp.webp_may_stand_in());
        assert_eq!(p.avif_as_webp().label(), "webp");
        let p = Plan::new(&Accept::parse(Some("*/*")), &ALL);
        assert_eq!(p.label(), "jpeg=jpeg,png=png");
        assert!(!p.wants_avif());
        let p = Plan::new(&Accept::parse(Some("*/*")), &[Avif, Webp]);
        assert_eq!(p.label(), "keep");
    }

    proptest::proptest! {
        /// The plan made before the fetch gives exactly what `choose` gives after the decode,
        /// so a cache key built from it names the negotiated output.
        #[test]
        fn plan_matches_choose(s in ".{0,120}", src in 0usize..6, alpha: bool, mask in 1u8..16) {
            let srcs = SourceFormat::ALL;
            let enabled: Vec<OutputFormat> = ALL.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, f)| *f).collect();
            let a = Accept::parse(Some(&s));
            let plan = Plan::new(&a, &enabled);
            proptest::prop_assert_eq!(plan.for_source(srcs[src], alpha), choose(&a, &enabled, srcs[src], alpha));
        }

        #[test]
        fn never_jpeg_with_alpha(s in ".{0,120}", src in 0usize..6) {
            let srcs = SourceFormat::ALL;
            let c = pick(Some(&s), srcs[src], true);
            proptest::prop_assert_ne!(c, Choice::Encode(Jpeg));
        }
    }

    #[test]
    fn a_named_format_is_granted_only_when_enabled() {
        let chrome = Accept::parse(Some(CHROME));
        assert_eq!(
            plan_for(FormatReq::Auto, &chrome, &[Avif, Webp, Jpeg, Png]),
            Some(Plan::new(&chrome, &[Avif, Webp, Jpeg, Png]))
        );
        assert_eq!(
            plan_for(FormatReq::Force(Webp), &chrome, &[Webp, Jpeg]),
            Some(Plan::forced(Webp))
        );
        assert_eq!(
            plan_for(FormatReq::Force(Avif), &chrome, &[Webp, Jpeg]),
            None
        );
    }
}
