//! The `transform` section: which transform options URLs may carry, and their limits.

use serde::{Deserialize, Serialize};

/// Transform options from URLs (docs/url-api.md).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TransformConfig {
    /// Read `w`, `h`, `fit`, `g`, `q`, `fm`, `dpr`, `blur`, `sharpen`, `enlarge`, `bg` from the
    /// query of proxied image URLs (they are removed from the origin request). Default `true`.
    pub query_options: bool,
    /// Largest output width or height a URL may ask for, after the DPR; larger requests are
    /// scaled down proportionally. Default `4096`.
    pub max_output_dimension: u32,
    /// `dpr` values above this are capped. Default `3`.
    pub max_dpr: f32,
    /// Use client hints (`Sec-CH-DPR`/`DPR`, `Sec-CH-Width`/`Width`, `Save-Data`) where the URL
    /// is silent, advertise them with `Accept-CH` on HTML pages, and add them to `Vary` on
    /// images. Default `false` (a site opts in: hints fragment CDN caches).
    pub client_hints: bool,
    /// Quality used for `Save-Data: on` clients when the URL sets none. Default `50`.
    pub save_data_quality: u8,
}

impl Default for TransformConfig {
    fn default() -> Self {
        TransformConfig {
            query_options: true,
            max_output_dimension: 4096,
            max_dpr: 3.0,
            client_hints: false,
            save_data_quality: 50,
        }
    }
}
