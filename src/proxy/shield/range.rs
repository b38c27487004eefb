//! Range requests answered from a stored full body (RFC 9110 §14). One range gets a `206`
//! with `Content-Range`; a range past the end gets a `416`; several ranges, a unit other than
//! `bytes`, a malformed header, or an `If-Range` that does not match the stored validator get
//! the whole body (`200`), which RFC 9110 allows a server to send instead.

use http::HeaderValue;

/// What to send for a request's `Range` against a body of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ranged {
    /// The whole body, `200`.
    Full,
    /// Bytes `start..=end`, `206`.
    Part { start: usize, end: usize },
    /// `416` with `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// Decides from `Range` and `If-Range` (compared with the entry's `ETag`, strong only, or its
/// `Last-Modified` as sent).
pub(super) fn decide(
    range: Option<&HeaderValue>,
    if_range: Option<&HeaderValue>,
    etag: Option<&str>,
    last_modified: Option<&[u8]>,
    len: usize,
) -> Ranged {
    let Some(range) = range.and_then(|v| v.to_str().ok()) else {
        return Ranged::Full;
    };
    if let Some(cond) = if_range {
        let cond = cond.as_bytes();
        let strong_match = etag.is_some_and(|t| !t.starts_with("W/") && t.as_bytes() == cond);
        let date_match = last_modified.is_some_and(|lm| lm == cond);
        if !(strong_match || date_match) {
            return Ranged::Full;
        }
    }
    let Some(spec) = range.trim().strip_prefix("bytes=") else {
        return Ranged::Full;
    };
    if spec.contains(',') {
        return Ranged::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Ranged::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| -> Option<usize> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        // Larger than any body: clamp (a last-byte past the end means "to the end").
        Some(s.parse::<usize>().unwrap_or(usize::MAX))
    };
    match (a.is_empty(), num(a), num(b)) {
        // bytes=-N: the last N bytes.
        (true, _, Some(n)) => {
            if n == 0 || len == 0 {
                Ranged::Unsatisfiable
            } else {
                Ranged::Part {
                    start: len - n.min(len),
                    end: len - 1,
                }
            }
        }
        (false, Some(start), end) if b.is_empty() || end.is_some() => {
            if start >= len {
                return Ranged::Unsatisfiable;
            }
            match end {
                Some(e) if e < start => Ranged::Full,
                Some(e) => Ranged::Part {
                    start,
                    end: e.min(len - 1),
                },
                None => Ranged::Part {
                    start,
                    end: len - 1,
                },
            }
        }
        _ => Ranged::Full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(range: &str, len: usize) -> Ranged {
        decide(
            Some(&HeaderValue::from_str(range).unwrap()),
            None,
            None,
            None,
            len,
        )
    }

    #[test]
    fn single_ranges() {
        assert_eq!(d("bytes=0-9", 100), Ranged::Part { start: 0, end: 9 });
        assert_eq!(d("bytes=90-", 100), Ranged::Part { start: 90, end: 99 });
        assert_eq!(d("bytes=-10", 100), Ranged::Part { start: 90, end: 99 });
        assert_eq!(d("bytes=-1000", 100), Ranged::Part { start: 0, end: 99 });
        assert_eq!(d("bytes=50-1000", 100), Ranged::Part { start: 50, end: 99 });
        assert_eq!(
            d("bytes=50-99999999999999999999999", 100),
            Ranged::Part { start: 50, end: 99 }
        );
        assert_eq!(d("bytes=100-", 100), Ranged::Unsatisfiable);
        assert_eq!(d("bytes=-0", 100), Ranged::Unsatisfiable);
        assert_eq!(d("bytes=0-1,5-6", 100), Ranged::Full);
        assert_eq!(d("bytes=9-1", 100), Ranged::Full);
        assert_eq!(d("items=0-1", 100), Ranged::Full);
        assert_eq!(d("bytes=a-b", 100), Ranged::Full);
        assert_eq!(d("bytes=-", 100), Ranged::Full);
        assert_eq!(d("bytes=+1-2", 100), Ranged::Full);
    }

    #[test]
    fn if_range_needs_the_strong_etag_or_the_date() {
        let r = HeaderValue::from_static("bytes=0-0");
        let ir = |v: &'static str| Some(HeaderValue::from_static(v));
        let part = Ranged::Part { start: 0, end: 0 };
        assert_eq!(
            decide(Some(&r), ir("\"a\"").as_ref(), Some("\"a\""), None, 5),
            part
        );
        assert_eq!(
            decide(Some(&r), ir("\"b\"").as_ref(), Some("\"a\""), None, 5),
            Ranged::Full
        );
        assert_eq!(
            decide(Some(&r), ir("W/\"a\"").as_ref(), Some("W/\"a\""), None, 5),
            Ranged::Full
        );
        let lm = b"Tue, 01 Dec 2026 00:00:00 GMT".as_slice();
        assert_eq!(
            decide(
                Some(&r),
                ir("Tue, 01 Dec 2026 00:00:00 GMT").as_ref(),
                None,
                Some(lm),
                5
            ),
            part
        );
    }

    proptest::proptest! {
        #[test]
        fn any_range_stays_inside_the_body(s in "[ -~]{0,40}", len in 0usize..5000) {
            if let Ok(v) = HeaderValue::from_str(&s) {
                if let Ranged::Part { start, end } = decide(Some(&v), None, None, None, len) {
                    proptest::prop_assert!(start <= end && end < len);
                }
            }
        }
    }
}
