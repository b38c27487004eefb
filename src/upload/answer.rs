//! Every answer the upload listener writes: JSON (`{error, message}` for refusals), the page,
//! downloads and ZIPs. Headers are pixgate's own: nothing of a request (its Content-Type, the
//! file's name as given) is echoed except a download name made safe by [`safe_name`].

use http::{header, HeaderValue, Response, StatusCode};
use std::time::Duration;

/// The page's policy: its own script and style, previews from `blob:` URLs and links, nothing
/// external, no framing.
pub const PAGE_CSP: &str = "default-src 'self'; img-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// A download's policy: opened as a document, it runs nothing and loads nothing.
const DOWNLOAD_CSP: &str = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox";

/// A refusal: status, machine-readable code, human message, optional `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The status.
    pub status: u16,
    /// `error` in the JSON (also the `pixgate_uploads_total` outcome where it is one).
    pub code: &'static str,
    /// `message` in the JSON, in words.
    pub message: String,
    /// Seconds for `Retry-After` (429, 503).
    pub retry_after: Option<u64>,
}

impl Refusal {
    /// A refusal without `Retry-After`.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// With `Retry-After` for `wait`.
    #[must_use]
    pub fn retry(mut self, wait: Duration) -> Refusal {
        self.retry_after = Some(crate::ratelimit::retry_after(wait));
        self
    }

    /// The answer.
    pub fn response(&self) -> Response<Vec<u8>> {
        let body = serde_json::json!({"error": self.code, "message": self.message});
        let mut r = json(self.status, &body);
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }

    /// The answer for a link that is not there (never existed, expired, erased: the same).
    pub fn not_found() -> Refusal {
        Refusal::new(404, "not_found", "There is nothing at this address.")
    }
}

/// A response with the headers every answer of this listener carries.
pub fn reply(status: u16, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    let len = body.len();
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    // Links are capabilities: not cached by anyone, not leaked in a Referer.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// A JSON answer.
pub fn json(status: u16, v: &serde_json::Value) -> Response<Vec<u8>> {
    reply(status, "application/json", v.to_string().into_bytes())
}

/// The page or one of its files.
pub fn page_file(content_type: &str, body: &'static str) -> Response<Vec<u8>> {
    let mut r = reply(200, content_type, body.as_bytes().to_vec());
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    r.headers_mut()
        .insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

/// A stored result or a ZIP, as an attachment named `name`.
pub fn download(content_type: &str, name: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    let mut r = reply(200, content_type, body);
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(DOWNLOAD_CSP),
    );
    r
}

/// The file extension for a format name.
pub fn extension(format: &str) -> &str {
    match format {
        "jpeg" => "jpg",
        other => other,
    }
}

/// A download name: the upload's own stem made safe (ASCII letters, digits, `-`, `_`, `.`;
/// at most 64 characters; no leading dot) when `keep` asks, else `pixgate-<id>`; then the
/// result's extension.
pub fn safe_name(given: Option<&str>, keep: bool, id: &str, format: &str) -> String {
    let stem = given
        .filter(|_| keep)
        .map(|n| {
            // The last path component, without its extension.
            let base = n.rsplit(['/', '\\']).next().unwrap_or(n);
            let stem = base.rsplit_once('.').map_or(base, |(s, _)| s);
            let clean: String = stem
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                        c
                    } else {
                        '_'
                    }
                })
                .take(64)
                .collect();
            clean.trim_start_matches('.').to_string()
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("pixgate-{id}"));
    format!("{stem}.{}", extension(format))
}

/// A ZIP (stored, not deflated: the results are compressed already) of `(name, bytes)`;
/// repeated names get `-2`, `-3`, ... before their extension.
pub fn zip(files: &[(String, bytes::Bytes)]) -> Result<Vec<u8>, String> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut seen = std::collections::HashSet::new();
    for (name, bytes) in files {
        let mut n = name.clone();
        let mut i = 2;
        while !seen.insert(n.clone()) {
            n = match name.rsplit_once('.') {
                Some((s, e)) => format!("{s}-{i}.{e}"),
                None => format!("{name}-{i}"),
            };
            i += 1;
        }
        w.start_file(n, opts).map_err(|e| e.to_string())?;
        w.write_all(bytes).map_err(|e| e.to_string())?;
    }
    w.finish()
        .map(std::io::Cursor::into_inner)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_and_kept_only_when_asked() {
        assert_eq!(
            safe_name(Some("holiday.JPG"), false, "ab12", "webp"),
            "pixgate-ab12.webp"
        );
        assert_eq!(
            safe_name(Some("../../a \"b\";c.png"), true, "ab12", "jpeg"),
            "a__b__c.jpg"
        );
        assert_eq!(
            safe_name(Some(".htaccess"), true, "x", "png"),
            "pixgate-x.png"
        );
        assert_eq!(safe_name(None, true, "x", "avif"), "pixgate-x.avif");
        let long = "é".repeat(100);
        assert!(safe_name(Some(&long), true, "x", "png").len() <= 64 + 4);
    }

    #[test]
    fn zips_hold_every_file_under_a_distinct_name() {
        let z = zip(&[
            ("a.webp".into(), bytes::Bytes::from_static(b"one")),
            ("a.webp".into(), bytes::Bytes::from_static(b"two")),
        ])
        .expect("zip");
        let mut r = zip::ZipArchive::new(std::io::Cursor::new(z)).expect("readable");
        assert_eq!(r.len(), 2);
        let names: Vec<String> = r.file_names().map(str::to_string).collect();
        assert!(names.contains(&"a.webp".into()) && names.contains(&"a-2.webp".into()));
        let mut s = String::new();
        std::io::Read::read_to_string(&mut r.by_name("a-2.webp").expect("second"), &mut s)
            .expect("read");
        assert_eq!(s, "two");
    }

    #[test]
    fn refusals_are_json_with_retry_after() {
        let r = Refusal::new(429, "limited", "Too many.")
            .retry(Duration::from_millis(1500))
            .response();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
        let v: serde_json::Value = serde_json::from_slice(r.body()).expect("json");
        assert_eq!(v["error"], "limited");
        assert_eq!(v["message"], "Too many.");
    }
}
