//! Which requests pixgate examines as possible images. Being a candidate only means the body's
//! first bytes get sniffed; the bytes decide whether it is an image. Everything else goes
//! through pingora's proxy path untouched.

use crate::config::DetectMode;
use crate::request::accept::Accept;
use http::{header, Method};
use pingora::http::RequestHeader;

/// Path extensions that hint at an image.
const IMAGE_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "jpe", "jfif", "pjpeg", "pjp", "png", "apng", "gif", "webp", "avif", "heic",
    "heif", "jxl",
];

/// True when the request should take the image path.
pub fn is_candidate(req: &RequestHeader, mode: DetectMode) -> bool {
    if req.method != Method::GET
        || req.headers.contains_key(header::RANGE)
        || req.headers.contains_key(header::UPGRADE)
        || req.headers.contains_key(header::TRANSFER_ENCODING)
        || req
            .headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
    {
        return false;
    }
    match mode {
        DetectMode::AllGet => true,
        DetectMode::Hinted => has_image_extension(req.uri.path()) || accept_leads_with_image(req),
    }
}

fn has_image_extension(path: &str) -> bool {
    let last = path.rsplit('/').next().unwrap_or("");
    match last.rsplit_once('.') {
        Some((_, ext)) => IMAGE_EXTENSIONS.iter().any(|e| ext.eq_ignore_ascii_case(e)),
        None => false,
    }
}

/// Browsers fetching for `<img>` list image types first; navigations list `text/html` first.
fn accept_leads_with_image(req: &RequestHeader) -> bool {
    let Some(v) = req
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    Accept::parse(Some(v))
        .ranges
        .first()
        .is_some_and(|r| r.kind == "image" && r.q > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, path: &str, headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build(method, path.as_bytes(), None).unwrap();
        for (k, v) in headers {
            r.insert_header(k.to_string(), *v).unwrap();
        }
        r
    }

    #[test]
    fn hints() {
        let m = DetectMode::Hinted;
        assert!(is_candidate(&req("GET", "/a/b.JPG?x=1", &[]), m));
        assert!(is_candidate(
            &req(
                "GET",
                "/img?id=4",
                &[("accept", "image/avif,image/webp,*/*")]
            ),
            m
        ));
        assert!(!is_candidate(
            &req("GET", "/", &[("accept", "text/html,image/avif,image/webp")]),
            m
        ));
        assert!(!is_candidate(&req("GET", "/app.js", &[]), m));
        assert!(!is_candidate(&req("HEAD", "/a.jpg", &[]), m));
        assert!(!is_candidate(&req("POST", "/a.jpg", &[]), m));
        assert!(!is_candidate(
            &req("GET", "/a.jpg", &[("range", "bytes=0-9")]),
            m
        ));
        assert!(is_candidate(
            &req("GET", "/page.html", &[]),
            DetectMode::AllGet
        ));
        assert!(!is_candidate(&req("GET", "/dir.jpg/file", &[]), m));
    }
}
