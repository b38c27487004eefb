//! Hostile inputs from the origin: SVG (a document that can carry scripts) is never rendered
//! and goes out untouched with a sandboxing Content-Security-Policy and `nosniff`, on the
//! proxy path and on the image path alike.

mod common;

use common::{Pixgate, Route, TestOrigin, CHROME};

const SVG: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(document.cookie)</script><rect width="10" height="10" fill="red"/></svg>"#;

#[tokio::test]
async fn svg_passes_through_sandboxed() {
    let origin = TestOrigin::start(vec![
        ("/logo.svg", Route::ok("image/svg+xml", SVG)),
        ("/icon", Route::ok("image/svg+xml; charset=utf-8", SVG)),
        ("/page.html", Route::ok("text/html", "<p>hi</p>")),
    ]);
    let px = Pixgate::start(&origin);
    // No Accept (proxy path) and Chrome's image Accept (the image path sniffs, then streams).
    for (path, accept) in [
        ("/logo.svg", None),
        ("/logo.svg", Some(CHROME)),
        ("/icon", Some(CHROME)),
    ] {
        let r = common::get(&px.url(path), accept).await;
        assert_eq!(r.status(), 200);
        let h = r.headers().clone();
        assert!(h["content-type"]
            .to_str()
            .unwrap()
            .starts_with("image/svg+xml"));
        assert_eq!(h["x-content-type-options"], "nosniff", "{path} {accept:?}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("sandbox"),
            "{csp}"
        );
        assert_eq!(
            r.text().await.unwrap(),
            SVG,
            "byte-identical, never rendered"
        );
    }
    // Other types are left alone.
    let r = common::get(&px.url("/page.html"), None).await;
    assert!(r.headers().get("content-security-policy").is_none());
}
