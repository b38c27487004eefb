//! Client hints (RFC 8942): `Sec-CH-DPR` / `DPR`, `Sec-CH-Width` / `Width` and `Save-Data`
//! fill in what a URL leaves out. URL parameters always win. Widths are rounded up to a step
//! so hints cannot split the cache into one variant per pixel.

use super::options::Options;
use http::HeaderMap;

/// Hints to advertise in `Accept-CH` on HTML pages.
pub const ACCEPT_CH: &str = "Sec-CH-DPR, Sec-CH-Width, DPR, Width";
/// Request headers an image response varies on when hints are used.
pub const VARY: &[&str] = &["Sec-CH-DPR", "Sec-CH-Width", "DPR", "Width", "Save-Data"];
/// Hint widths are rounded up to a multiple of this.
pub const WIDTH_STEP: u32 = 50;

/// The hints a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Hints {
    /// Device pixel ratio.
    pub dpr: Option<f32>,
    /// Intended display width of the image, in device pixels.
    pub width: Option<u32>,
    /// The client asked to save data.
    pub save_data: bool,
}

fn header<'a>(h: &'a HeaderMap, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| h.get(*n).and_then(|v| v.to_str().ok()))
        .map(str::trim)
}

impl Hints {
    /// Reads the hints from request headers; malformed values are ignored.
    pub fn from_headers(h: &HeaderMap) -> Hints {
        Hints {
            dpr: header(h, &["sec-ch-dpr", "dpr"])
                .and_then(|v| v.parse::<f32>().ok())
                // The URL's `dpr` range, so the options' canonical form parses back.
                .filter(|d| d.is_finite() && (0.1..=10.0).contains(d)),
            width: header(h, &["sec-ch-width", "width"])
                .and_then(|v| v.parse::<u32>().ok())
                // Rounded up to a step, it must still be a valid `w` (at most 65535).
                .filter(|w| (1..=65_500).contains(w)),
            save_data: header(h, &["save-data"]).is_some_and(|v| v.eq_ignore_ascii_case("on")),
        }
    }

    /// `o` with the gaps filled from the hints: a DPR when the URL has none; a width (device
    /// pixels, rounded up to [`WIDTH_STEP`]) when the URL has neither width nor height; the
    /// Save-Data quality when the URL sets none.
    pub fn apply(&self, mut o: Options, save_data_quality: u8) -> Options {
        if o.width.is_none() && o.height.is_none() {
            if let Some(w) = self.width {
                // Width is already in device pixels: no DPR on top of it.
                o.width = Some(w.div_ceil(WIDTH_STEP) * WIDTH_STEP);
                o.dpr = None;
            } else if o.dpr.is_none() {
                o.dpr = self.dpr;
            }
        } else if o.dpr.is_none() {
            o.dpr = self.dpr;
        }
        if self.save_data && o.quality.is_none() {
            o.quality = Some(save_data_quality);
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn h(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, HeaderValue::from_static(v));
        }
        m
    }

    #[test]
    fn reads_both_spellings_and_ignores_garbage() {
        let x = Hints::from_headers(&h(&[
            ("sec-ch-dpr", "2"),
            ("width", "333"),
            ("save-data", "on"),
        ]));
        assert_eq!(
            x,
            Hints {
                dpr: Some(2.0),
                width: Some(333),
                save_data: true
            }
        );
        let y = Hints::from_headers(&h(&[
            ("dpr", "NaN"),
            ("sec-ch-width", "-4"),
            ("save-data", "off"),
        ]));
        assert_eq!(y, Hints::default());
    }

    #[test]
    fn the_url_wins_and_hints_fill_gaps() {
        let hints = Hints {
            dpr: Some(2.0),
            width: Some(333),
            save_data: true,
        };
        let url = Options::from_query("w=100").unwrap().0;
        let o = hints.apply(url, 50);
        assert_eq!(
            (o.width, o.dpr, o.quality),
            (Some(100), Some(2.0), Some(50))
        );
        let o = hints.apply(Options::default(), 50);
        assert_eq!(
            (o.width, o.dpr),
            (Some(350), None),
            "Width in device pixels, stepped"
        );
        let explicit = Options::from_query("w=100&dpr=1&q=90").unwrap().0;
        assert_eq!(hints.apply(explicit, 50), explicit);
        assert!(Hints::default().apply(Options::default(), 50).is_identity());
    }
}
