//! An RFC 9110 Accept header parser: media ranges, wildcards, parameters and q-values.
//! Never panics; malformed members are skipped, as browsers and servers do.

/// One media range of an Accept header.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaRange {
    /// Lowercased type, or `*`.
    pub kind: String,
    /// Lowercased subtype, or `*`.
    pub subtype: String,
    /// Quality 0.0–1.0 (`q=0` means "not acceptable").
    pub q: f32,
    /// Parameters other than q (they make a range more specific).
    pub params: usize,
}

impl MediaRange {
    /// How specific the range is: `*/*` < `image/*` < `image/webp` < `image/webp;x=y`.
    fn specificity(&self) -> usize {
        match (self.kind.as_str(), self.subtype.as_str()) {
            ("*", _) => 0,
            (_, "*") => 1,
            _ => 2 + self.params,
        }
    }
    fn matches(&self, kind: &str, subtype: &str) -> bool {
        (self.kind == "*" || self.kind == kind) && (self.subtype == "*" || self.subtype == subtype)
    }
}

/// A parsed Accept header.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Accept {
    /// The ranges in header order.
    pub ranges: Vec<MediaRange>,
}

/// How a media type fares against an Accept header.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// The q-value of the most specific matching range (1.0 when there is no Accept header,
    /// 0.0 when nothing matches).
    pub q: f32,
    /// True when the match came from a range naming the exact type (not a wildcard).
    pub explicit: bool,
}

impl Accept {
    /// Parses a header value. `None` (no header) accepts everything.
    pub fn parse(header: Option<&str>) -> Accept {
        let Some(h) = header else {
            return Accept {
                ranges: vec![MediaRange {
                    kind: "*".into(),
                    subtype: "*".into(),
                    q: 1.0,
                    params: 0,
                }],
            };
        };
        let mut ranges = Vec::new();
        for member in h.split(',') {
            let mut parts = member.split(';');
            let Some(mt) = parts.next().map(str::trim) else {
                continue;
            };
            let Some((kind, subtype)) = mt.split_once('/') else {
                continue;
            };
            let (kind, subtype) = (kind.trim(), subtype.trim());
            if !is_token(kind) || !is_token(subtype) || (kind == "*" && subtype != "*") {
                continue;
            }
            let mut q = 1.0f32;
            let mut params = 0;
            let mut valid = true;
            for p in parts {
                let Some((k, v)) = p.split_once('=') else {
                    if !p.trim().is_empty() {
                        valid = false;
                    }
                    continue;
                };
                if k.trim().eq_ignore_ascii_case("q") {
                    match parse_q(v.trim()) {
                        Some(v) => q = v,
                        None => valid = false,
                    }
                } else {
                    params += 1;
                }
            }
            if valid {
                ranges.push(MediaRange {
                    kind: kind.to_ascii_lowercase(),
                    subtype: subtype.to_ascii_lowercase(),
                    q,
                    params,
                });
            }
        }
        Accept { ranges }
    }

    /// The verdict for `media_type` (e.g. `image/webp`): the q of the most specific matching
    /// range, as RFC 9110 §12.5.1 prescribes.
    pub fn verdict(&self, media_type: &str) -> Verdict {
        let (kind, subtype) = media_type.split_once('/').unwrap_or((media_type, ""));
        let best = self
            .ranges
            .iter()
            .filter(|r| r.matches(kind, subtype))
            .max_by_key(|r| r.specificity());
        match best {
            Some(r) => Verdict {
                q: r.q,
                explicit: r.specificity() >= 2,
            },
            None => Verdict {
                q: 0.0,
                explicit: false,
            },
        }
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`, leniently: any float in [0, 1].
fn parse_q(v: &str) -> Option<f32> {
    let q: f32 = v.parse().ok()?;
    (q.is_finite() && (0.0..=1.0).contains(&q)).then_some(q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn most_specific_range_wins() {
        let a = Accept::parse(Some("image/*;q=0.5, image/webp, */*;q=0.1"));
        assert_eq!(
            a.verdict("image/webp"),
            Verdict {
                q: 1.0,
                explicit: true
            }
        );
        assert_eq!(
            a.verdict("image/png"),
            Verdict {
                q: 0.5,
                explicit: false
            }
        );
        assert_eq!(
            a.verdict("text/html"),
            Verdict {
                q: 0.1,
                explicit: false
            }
        );
    }

    #[test]
    fn q_zero_excludes_even_with_wildcards() {
        let a = Accept::parse(Some("image/avif;q=0, image/*"));
        assert_eq!(a.verdict("image/avif").q, 0.0);
        assert_eq!(a.verdict("image/webp").q, 1.0);
    }

    #[test]
    fn case_whitespace_and_params() {
        let a = Accept::parse(Some(" IMAGE/WebP ; Q=0.7 ,text/html;level=1"));
        assert_eq!(a.verdict("image/webp").q, 0.7);
        assert_eq!(a.ranges[1].params, 1);
    }

    #[test]
    fn no_header_accepts_all_but_names_nothing() {
        let a = Accept::parse(None);
        assert_eq!(
            a.verdict("image/avif"),
            Verdict {
                q: 1.0,
                explicit: false
            }
        );
    }

    #[test]
    fn malformed_members_are_skipped() {
        let a = Accept::parse(Some(
            "garbage, image/webp;q=2, image/avif;q=abc, */png, ,image/png",
        ));
        assert_eq!(a.ranges.len(), 1);
        assert_eq!(a.verdict("image/png").q, 1.0);
        assert_eq!(a.verdict("image/webp").q, 0.0);
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,200}") {
            let a = Accept::parse(Some(&s));
            for r in &a.ranges {
                prop_assert!((0.0..=1.0).contains(&r.q));
            }
            let _ = a.verdict("image/webp");
        }

        #[test]
        fn explicit_q_round_trips(q in 0u32..=1000) {
            let qf = q as f32 / 1000.0;
            let a = Accept::parse(Some(&format!("text/html, image/webp;q={qf}, */*;q=0.5")));
            prop_assert_eq!(a.verdict("image/webp"), Verdict { q: qf, explicit: true });
        }
    }
}
