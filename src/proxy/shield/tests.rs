//! Unit tests of the shield's pure parts (encoding class, Location targets, stored headers).

use super::invalidate::same_host_target;
use super::*;
use http::{HeaderMap, HeaderValue};

fn req(ae: &str) -> RequestHeader {
    let mut r = RequestHeader::build("GET", b"/", None).expect("request");
    if !ae.is_empty() {
        r.insert_header("accept-encoding", ae).expect("header");
    }
    r
}

#[test]
fn encoding_classes() {
    assert_eq!(class(&req("gzip, deflate, br, zstd")), "br");
    assert_eq!(class(&req("gzip, deflate")), "gzip");
    assert_eq!(class(&req("br;q=0, gzip")), "gzip");
    assert_eq!(class(&req("identity")), "identity");
    assert_eq!(class(&req("")), "identity");
}

#[test]
fn locations_on_the_same_host_only() {
    assert_eq!(same_host_target("/a?b", "x.test").as_deref(), Some("/a?b"));
    assert_eq!(
        same_host_target("http://X.test:80/p", "x.test").as_deref(),
        Some("/p")
    );
    assert_eq!(same_host_target("https://other.test/p", "x.test"), None);
    assert_eq!(same_host_target("//other.test/p", "x.test"), None);
}

#[test]
fn stored_headers_drop_per_answer_and_hop_by_hop_fields() {
    let mut h = HeaderMap::new();
    for (k, v) in [
        ("content-type", "text/css"),
        ("content-length", "10"),
        ("connection", "keep-alive"),
        ("age", "3"),
        ("via", "1.1 origin"),
        ("x-cache", "MISS"),
        ("etag", "\"a\""),
    ] {
        h.insert(
            http::header::HeaderName::from_static(k),
            HeaderValue::from_static(v),
        );
    }
    let names: Vec<String> = stored_headers(&h, Some("X-Cache"))
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(names, ["content-type", "etag"]);
}
