//! Storability, freshness, heuristics and windows, with an injected clock.

use super::*;
use http::HeaderValue;

#[test]
fn shield_ttl_needs_freshness_or_last_modified_and_refuses_only_vary_star() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let lim = Limits {
        default_ttl: Duration::from_secs(3600),
        rule_ttl: None,
        max_retention: Duration::from_secs(86_400),
        needs_public: false,
    };
    let hm = |pairs: &[(&str, &str)]| {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                header::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                v.parse().expect("value"),
            );
        }
        h
    };
    assert_eq!(
        shield_ttl(&hm(&[("cache-control", "max-age=60")]), 200, &lim, now),
        Ok(Duration::from_secs(60))
    );
    assert_eq!(
        shield_ttl(&hm(&[]), 200, &lim, now),
        Err(NoStore::NoFreshness)
    );
    // Statuses: heuristic ones like a 200; others only with explicit freshness; never 206/304.
    let lm_only = hm(&[
        ("date", &httpdate::fmt_http_date(now)),
        (
            "last-modified",
            &httpdate::fmt_http_date(now - Duration::from_secs(1000)),
        ),
    ]);
    assert_eq!(
        shield_ttl(&lm_only, 404, &lim, now),
        Ok(Duration::from_secs(100))
    );
    assert_eq!(shield_ttl(&lm_only, 302, &lim, now), Err(NoStore::Status));
    let explicit = hm(&[("cache-control", "max-age=60")]);
    assert_eq!(
        shield_ttl(&explicit, 302, &lim, now),
        Ok(Duration::from_secs(60))
    );
    assert_eq!(
        shield_ttl(&explicit, 503, &lim, now),
        Ok(Duration::from_secs(60))
    );
    for status in [103, 206, 304, 600] {
        assert_eq!(
            shield_ttl(&explicit, status, &lim, now),
            Err(NoStore::Status),
            "{status}"
        );
    }
    // An invalid max-age is stale, not absent; Age counts by its first value.
    for cc in [
        "max-age=-3600",
        "max-age='3600'",
        "max-age=",
        "s-maxage=x, max-age=60",
    ] {
        let h = hm(&[("cache-control", cc), ("etag", "\"v\"")]);
        assert_eq!(shield_ttl(&h, 200, &lim, now), Ok(Duration::ZERO), "{cc}");
    }
    assert_eq!(
        shield_ttl(&hm(&[("cache-control", "max-age=\"60\"")]), 200, &lim, now),
        Ok(Duration::from_secs(60))
    );
    assert_eq!(age(&hm(&[("age", "7200, 0")])), 7200);
    // CDN-Cache-Control replaces Cache-Control (RFC 9213).
    let cdn = hm(&[
        ("cache-control", "no-store"),
        ("cdn-cache-control", "max-age=30"),
    ]);
    assert_eq!(
        shield_ttl(&cdn, 200, &lim, now),
        Ok(Duration::from_secs(30))
    );
    let cdn = hm(&[
        ("cache-control", "max-age=60"),
        ("cdn-cache-control", "private"),
    ]);
    assert_eq!(shield_ttl(&cdn, 200, &lim, now), Err(NoStore::Private));
    // ... unless it is not a valid Structured Field dictionary, or a number has another type.
    for bad in [
        "max-age=10000, &&&&&",
        "max-age=\"10000\"",
        "MaX-aGe=3600",
        "max-age =100",
    ] {
        let h = hm(&[("cache-control", "no-store"), ("cdn-cache-control", bad)]);
        assert_eq!(
            shield_ttl(&h, 200, &lim, now),
            Err(NoStore::NoStoreDirective),
            "{bad}"
        );
    }
    // Last-Modified 1000 s before Date: 100 s of heuristic freshness.
    let date = httpdate::fmt_http_date(now);
    let lm = httpdate::fmt_http_date(now - Duration::from_secs(1000));
    assert_eq!(
        shield_ttl(
            &hm(&[("date", &date), ("last-modified", &lm)]),
            200,
            &lim,
            now
        ),
        Ok(Duration::from_secs(100))
    );
    // ... capped by default_ttl.
    let old = httpdate::fmt_http_date(now - Duration::from_secs(900_000));
    assert_eq!(
        shield_ttl(
            &hm(&[("date", &date), ("last-modified", &old)]),
            200,
            &lim,
            now
        ),
        Ok(Duration::from_secs(3600))
    );
    assert_eq!(
        shield_ttl(
            &hm(&[("cache-control", "max-age=60"), ("vary", "Accept-Encoding")]),
            200,
            &lim,
            now
        ),
        Ok(Duration::from_secs(60))
    );
    assert_eq!(
        shield_ttl(
            &hm(&[
                ("cache-control", "max-age=60"),
                ("vary", "Accept-Encoding, Cookie")
            ]),
            200,
            &lim,
            now
        ),
        Ok(Duration::from_secs(60))
    );
    assert_eq!(
        shield_ttl(
            &hm(&[("cache-control", "max-age=60"), ("vary", "Cookie, *")]),
            200,
            &lim,
            now
        ),
        Err(NoStore::Vary)
    );
    assert_eq!(
        vary_fields(&hm(&[
            ("vary", "X-Foo, accept-encoding"),
            ("vary", "Accept-Language,x-foo")
        ])),
        Ok(vec!["accept-language".to_string(), "x-foo".to_string()])
    );
    assert_eq!(vary_fields(&hm(&[])), Ok(vec![]));
    assert_eq!(
        stale_while_revalidate(
            &hm(&[("cache-control", "max-age=1, stale-while-revalidate=30")]),
            Duration::ZERO
        ),
        Duration::from_secs(30)
    );
    assert_eq!(
        stale_while_revalidate(&hm(&[]), Duration::from_secs(5)),
        Duration::from_secs(5)
    );
    assert_eq!(
        shield_ttl(
            &hm(&[("cache-control", "private, max-age=60")]),
            200,
            &lim,
            now
        ),
        Err(NoStore::Private)
    );
    // Stored only to be revalidated: no-cache, max-age=0, an ETag alone.
    for h in [
        hm(&[("cache-control", "no-cache")]),
        hm(&[("cache-control", "max-age=0")]),
        hm(&[("etag", "\"x\"")]),
    ] {
        assert_eq!(shield_ttl(&h, 200, &lim, now), Ok(Duration::ZERO), "{h:?}");
    }
    assert_eq!(
        shield_ttl(
            &hm(&[("cache-control", "no-cache"), ("set-cookie", "a=b")]),
            200,
            &lim,
            now
        ),
        Err(NoStore::SetCookie)
    );
    assert_eq!(
        shield_ttl(
            &hm(&[("cache-control", "max-age=60"), ("set-cookie", "a=b")]),
            200,
            &lim,
            now
        ),
        Err(NoStore::SetCookie)
    );
}

const L: Limits = Limits {
    default_ttl: Duration::from_secs(3600),
    rule_ttl: None,
    max_retention: Duration::from_secs(86_400),
    needs_public: false,
};

fn h(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut m = HeaderMap::new();
    for (k, v) in pairs {
        m.append(*k, HeaderValue::from_static(v));
    }
    m
}

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

#[test]
fn stale_if_error_window_comes_from_the_origin_then_the_default_and_stays_in_retention() {
    let d = Duration::from_secs(30);
    let w = |p: &[(&'static str, &'static str)]| stale_if_error(&h(p), d).as_secs();
    assert_eq!(
        w(&[("cache-control", "max-age=60, stale-if-error=600")]),
        600
    );
    assert_eq!(
        w(&[("cache-control", "max-age=60, Stale-If-Error=\"5\"")]),
        5
    );
    assert_eq!(w(&[("cache-control", "max-age=60")]), 30);
    assert_eq!(w(&[("cache-control", "stale-if-error=soon")]), 30);
    assert_eq!(w(&[]), 30);
    // Freshness plus the window never passes max_retention.
    let r = Duration::from_secs(100);
    let fresh = expires_at(t0(), Duration::from_secs(60), r);
    let keep = expires_at(t0(), Duration::from_secs(60 + 600), r);
    assert_eq!(fresh, t0() + Duration::from_secs(60));
    assert_eq!(keep, t0() + r);
}

#[test]
fn freshness_sources_in_order() {
    let now = t0();
    let s = |p: &[(&'static str, &'static str)]| ttl(&h(p), &L, now).map(|d| d.as_secs());
    assert_eq!(s(&[("cache-control", "public, max-age=600")]), Ok(600));
    assert_eq!(
        s(&[("cache-control", "max-age=600, s-maxage=60")]),
        Ok(60),
        "s-maxage wins for a shared cache"
    );
    assert_eq!(s(&[]), Ok(3600), "default_ttl when the origin is silent");
    assert_eq!(
        s(&[("cache-control", "max-age=600"), ("age", "100")]),
        Ok(500)
    );
    let date = httpdate::fmt_http_date(now);
    let exp = httpdate::fmt_http_date(now + Duration::from_secs(120));
    let mut m = HeaderMap::new();
    m.insert("date", HeaderValue::from_str(&date).unwrap());
    m.insert("expires", HeaderValue::from_str(&exp).unwrap());
    assert_eq!(ttl(&m, &L, now), Ok(Duration::from_secs(120)));
    assert_eq!(s(&[("expires", "garbage")]), Err(NoStore::Stale));
}

#[test]
fn never_stored() {
    let now = t0();
    let s = |p: &[(&'static str, &'static str)]| ttl(&h(p), &L, now);
    assert_eq!(
        s(&[("cache-control", "no-store")]),
        Err(NoStore::NoStoreDirective)
    );
    assert_eq!(
        s(&[("cache-control", "Private, max-age=60")]),
        Err(NoStore::Private)
    );
    assert_eq!(s(&[("cache-control", "no-cache")]), Err(NoStore::NoCache));
    assert_eq!(s(&[("set-cookie", "a=b")]), Err(NoStore::SetCookie));
    assert_eq!(s(&[("vary", "Cookie")]), Err(NoStore::Vary));
    assert_eq!(s(&[("vary", "*")]), Err(NoStore::Vary));
    assert!(s(&[("vary", "Accept, accept-encoding")]).is_ok());
    assert_eq!(s(&[("cache-control", "max-age=0")]), Err(NoStore::Stale));
    assert_eq!(
        s(&[("cache-control", "max-age=60"), ("age", "61")]),
        Err(NoStore::Stale)
    );
}

#[test]
fn cookie_requests_need_an_explicitly_shared_response() {
    let now = t0();
    let cookie = Limits {
        needs_public: true,
        ..L
    };
    assert_eq!(ttl(&h(&[]), &cookie, now), Err(NoStore::Cookie));
    let plain = h(&[("cache-control", "max-age=60")]);
    assert_eq!(ttl(&plain, &cookie, now), Err(NoStore::Cookie));
    assert!(ttl(&plain, &L, now).is_ok(), "no cookie: the usual rules");
    for cc in ["public, max-age=60", "s-maxage=60", "max-age=60, PUBLIC"] {
        let shared = h(&[("cache-control", cc)]);
        assert_eq!(
            ttl(&shared, &cookie, now),
            Ok(Duration::from_secs(60)),
            "{cc}"
        );
    }
}

#[test]
fn caps_rule_then_retention() {
    let now = t0();
    let long = h(&[("cache-control", "max-age=31536000")]);
    assert_eq!(ttl(&long, &L, now), Ok(Duration::from_secs(86_400)));
    let ruled = Limits {
        rule_ttl: Some(Duration::from_secs(300)),
        ..L
    };
    assert_eq!(ttl(&long, &ruled, now), Ok(Duration::from_secs(300)));
    let two = Limits {
        max_retention: Duration::from_secs(2),
        ..L
    };
    assert_eq!(ttl(&long, &two, now), Ok(Duration::from_secs(2)));
}

#[test]
fn retention_counts_from_fetch_with_an_injected_clock() {
    let fetched = t0();
    let exp = expires_at(fetched, Duration::from_secs(3600), Duration::from_secs(2));
    assert_eq!(exp, fetched + Duration::from_secs(2));
    let at = |s: u64| fetched + Duration::from_millis(s);
    assert!(servable(exp, fetched, None, at(1999)));
    assert!(!servable(exp, fetched, None, at(2000)));
    // A hit just before the limit does not extend it: retention is from creation.
    assert!(!servable(exp, at(1999), None, at(2001)));
}

#[test]
fn idle_ttl_with_an_injected_clock() {
    let fetched = t0();
    let exp = fetched + Duration::from_secs(86_400);
    let idle = Some(Duration::from_secs(3600));
    let used = fetched + Duration::from_secs(100);
    assert!(servable(exp, used, idle, used + Duration::from_secs(3599)));
    assert!(!servable(exp, used, idle, used + Duration::from_secs(3600)));
}

proptest::proptest! {
    /// Whatever the origin says, nothing is kept past max_retention.
    #[test]
    fn never_past_retention(cc in "[a-z=0-9, -]{0,40}", age in 0u64..100_000, r in 1u64..100_000) {
        let mut m = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&cc) { m.insert("cache-control", v); }
        m.insert("age", HeaderValue::from(age));
        let l = Limits { max_retention: Duration::from_secs(r), ..L };
        if let Ok(t) = ttl(&m, &l, t0()) {
            proptest::prop_assert!(t <= Duration::from_secs(r));
            proptest::prop_assert!(!t.is_zero());
        }
    }
}
