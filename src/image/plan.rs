//! The negotiation's outcome as data: what each source family becomes for one client
//! ([`Plan`]). `request::negotiate` makes a plan from an Accept header (`Plan::new` is defined
//! there, so this module knows nothing of HTTP); the pipeline follows it and the cache key
//! names it.

use super::format::{OutputFormat, SourceFormat};

/// What to produce, or `Keep` when the source family is wanted but its re-encoding is disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Choice {
    /// Encode into this format.
    Encode(OutputFormat),
    /// Send the original bytes.
    Keep,
}

/// The negotiation decided before the source is fetched: what each source family becomes for
/// this client. The choice depends on the source only through its family (JPEG for opaque photos,
/// PNG for graphics or transparency), so two choices describe every outcome exactly. The plan is
/// what the cache key holds instead of the raw Accept header, so the cache does not fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Plan {
    /// What a JPEG-family source (opaque JPEG / WebP / AVIF) becomes.
    pub jpeg: Choice,
    /// What a PNG-family source (PNG, GIF, anything with transparency) becomes.
    pub png: Choice,
    /// PNG-family sources go to AVIF and the client takes WebP too: a graphic may then go as
    /// lossless WebP when that is smaller (`images.webp.try_lossless`).
    pub webp_too: bool,
}

impl Plan {
    /// Every source becomes `f` (a URL's `fm=`), whatever the Accept header says.
    pub fn forced(f: OutputFormat) -> Plan {
        Plan {
            jpeg: Choice::Encode(f),
            png: Choice::Encode(f),
            webp_too: false,
        }
    }

    /// The choice for a decoded source.
    pub(crate) fn for_source(&self, source: SourceFormat, has_alpha: bool) -> Choice {
        match source.family(has_alpha) {
            OutputFormat::Png => self.png,
            _ => self.jpeg,
        }
    }

    /// Whether some source would be encoded as AVIF (the slow encoder).
    pub(crate) fn wants_avif(&self) -> bool {
        self.jpeg == Choice::Encode(OutputFormat::Avif)
            || self.png == Choice::Encode(OutputFormat::Avif)
    }

    /// Whether WebP may answer while AVIF encodes: the plan wants AVIF and the client named
    /// WebP too ([`Plan::webp_too`] is set for exactly such clients). A client that names AVIF
    /// and not WebP waits for AVIF.
    pub(crate) fn webp_may_stand_in(&self) -> bool {
        self.wants_avif() && self.webp_too
    }

    /// The same plan with AVIF replaced by WebP: the quick answer while AVIF is encoded.
    #[must_use]
    pub(crate) fn avif_as_webp(&self) -> Plan {
        let swap = |c: Choice| match c {
            Choice::Encode(OutputFormat::Avif) => Choice::Encode(OutputFormat::Webp),
            other => other,
        };
        Plan {
            jpeg: swap(self.jpeg),
            png: swap(self.png),
            webp_too: false,
        }
    }

    /// A short stable label for cache keys: `avif` when both families agree, else
    /// `jpeg=webp,png=png`; `keep` means the original bytes; `+webp` when graphics may go as
    /// WebP ([`Plan::webp_too`]).
    pub(crate) fn label(&self) -> String {
        let name = |c: Choice| match c {
            Choice::Encode(f) => f.name(),
            Choice::Keep => "keep",
        };
        let base = if self.jpeg == self.png {
            name(self.jpeg).to_string()
        } else {
            format!("jpeg={},png={}", name(self.jpeg), name(self.png))
        };
        if self.webp_too {
            format!("{base}+webp")
        } else {
            base
        }
    }
}
