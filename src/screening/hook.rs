//! The external screening hook: one HTTP/1.1 POST per upload to a configured `http://` URL,
//! answered by `{"allow": true|false}` (or a bare 200 = allow, 403 or 451 = deny). Anything else
//! (no connection, the timeout, another status, a body that is not that JSON) is a failure the
//! caller resolves by the configured fail mode.

use super::config::{HookConfig, SendMode};
use bytes::Bytes;
use http::{header, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use std::time::Duration;
use tokio::net::TcpStream;

/// The most of an answer read (the expected one is a few bytes).
const MAX_ANSWER: usize = 16 * 1024;

/// Where the hook lives, checked once at start-up.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    host: String,
    port: u16,
    /// `host[:port]`, the `Host` header.
    authority: String,
    /// Path and query.
    path: String,
}

impl Target {
    /// Parses an `http://host[:port][/path]` URL.
    pub(crate) fn parse(url: &str) -> Result<Target, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("not a URL ({e}): expected http://host[:port]/path"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => {
                return Err(format!(
                    "scheme `{other}` is not supported: the hook is plain http:// (a sidecar or a \
                     private network)"
                ))
            }
            None => return Err("expected http://host[:port]/path".to_string()),
        }
        let authority = uri.authority().ok_or("the URL has no host")?;
        if authority.as_str().contains('@') {
            return Err("the URL must not carry credentials".to_string());
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        Ok(Target {
            host: host.to_string(),
            port: authority.port_u16().unwrap_or(80),
            authority: authority.as_str().to_string(),
            path: uri.path_and_query().map_or("/", |p| p.as_str()).to_string(),
        })
    }
}

/// Why the hook gave no usable answer (logged by kind; a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookError {
    /// No full answer within the timeout.
    Timeout,
    /// Connecting, sending or reading failed.
    Connection,
    /// A status other than 200, 403 or 451.
    Status,
    /// A 200 whose body is neither empty nor `{"allow": bool}`.
    Answer,
}

impl HookError {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            HookError::Timeout => "timeout",
            HookError::Connection => "connection",
            HookError::Status => "status",
            HookError::Answer => "answer",
        }
    }
}

/// The configured hook.
#[derive(Debug, Clone)]
pub(crate) struct Hook {
    target: Target,
    timeout: Duration,
    send: SendMode,
}

/// What the hook is told about one upload.
pub(crate) struct Subject<'a> {
    pub sha256: &'a str,
    pub dhash: &'a str,
    pub bytes: &'a Bytes,
}

impl Hook {
    /// The hook of a validated config.
    pub(crate) fn new(cfg: &HookConfig) -> Result<Hook, String> {
        Ok(Hook {
            target: Target::parse(&cfg.url)?,
            timeout: cfg.timeout.get(),
            send: cfg.send,
        })
    }

    /// Asks the hook: `Ok(true)` allow, `Ok(false)` deny.
    pub(crate) async fn ask(&self, s: &Subject<'_>) -> Result<bool, HookError> {
        tokio::time::timeout(self.timeout, self.exchange(s))
            .await
            .unwrap_or(Err(HookError::Timeout))
    }

    async fn exchange(&self, s: &Subject<'_>) -> Result<bool, HookError> {
        let t = &self.target;
        let request = Request::post(t.path.as_str()).header(header::HOST, t.authority.as_str());
        let request = match self.send {
            SendMode::Hash => {
                let body = serde_json::json!({ "sha256": s.sha256, "dhash": s.dhash });
                request
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Full::new(Bytes::from(body.to_string())))
            }
            SendMode::Bytes => request
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header("x-pixgate-sha256", s.sha256)
                .header("x-pixgate-dhash", s.dhash)
                .body(Full::new(s.bytes.clone())),
        }
        .map_err(|_| HookError::Connection)?;
        let stream = TcpStream::connect((t.host.as_str(), t.port))
            .await
            .map_err(|_| HookError::Connection)?;
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| HookError::Connection)?;
        // Drives the connection; ends when `sender` is dropped or the peer closes.
        let driver = tokio::spawn(conn);
        let answer = async {
            let resp = sender
                .send_request(request)
                .await
                .map_err(|_| HookError::Connection)?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|_| HookError::Connection)?
                .to_bytes();
            Ok::<_, HookError>((status, body))
        }
        .await;
        driver.abort();
        let (status, body) = answer?;
        match status {
            StatusCode::OK => read_answer(&body),
            StatusCode::FORBIDDEN | StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS => Ok(false),
            _ => Err(HookError::Status),
        }
    }
}

/// A 200's body: empty (allow) or a JSON object with a boolean `allow`.
fn read_answer(body: &[u8]) -> Result<bool, HookError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(true);
    }
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|_| HookError::Answer)?;
    v.get("allow")
        .and_then(serde_json::Value::as_bool)
        .ok_or(HookError::Answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = Target::parse("http://127.0.0.1:9000/check?v=1").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 9000));
        assert_eq!(
            (t.authority.as_str(), t.path.as_str()),
            ("127.0.0.1:9000", "/check?v=1")
        );
        let t = Target::parse("http://[::1]").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.path.as_str()), ("::1", 80, "/"));
        for bad in ["https://h/x", "h/x", "", "http://user:pw@h/x", "ftp://h"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn answers() {
        assert_eq!(read_answer(b""), Ok(true));
        assert_eq!(read_answer(b"{\"allow\": true}"), Ok(true));
        assert_eq!(read_answer(b"{\"allow\":false,\"why\":\"x\"}"), Ok(false));
        assert_eq!(read_answer(b"{\"allow\":\"no\"}"), Err(HookError::Answer));
        assert_eq!(read_answer(b"deny"), Err(HookError::Answer));
    }
}
