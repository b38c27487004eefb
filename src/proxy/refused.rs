//! The image path's one error type: a request pixgate answers with an error of its own (a bad
//! option, a bad signature, a refused source, a variant the rules forbid). Each step returns it
//! with `?`; [`Refused::answer`] writes it once, puts its label in the access log's `reason`
//! and counts the URL API's refusals in `pixgate_remote_refusals_total`.
//!
//! Failures of the origin itself (502/504, stale-if-error) and overload (503) are not
//! refusals: they have their own answers in `respond` and `serve`.

use super::respond;
use crate::fetch;
use crate::request::options::OptionError;
use crate::telemetry::{metrics, Record};
use crate::variant;
use pingora::proxy::Session;
use pingora::Result;

/// What was refused, as a closed set of labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The request target has no normal form (400; see [`crate::path`]).
    BadPath,
    /// A URL option or imgproxy path segment is malformed (400).
    BadOption,
    /// The URL API's source URL does not parse (400).
    BadSource,
    /// The URL API's signature does not verify (403).
    Signature,
    /// The signed URL's expiry has passed (404).
    Expired,
    /// The URL API is not configured (404).
    ApiOff,
    /// The source is not in `url_api.sources` (403).
    NotAllowed,
    /// The rules give this request no variant ([`variant::Refusal`]).
    Variant(&'static str),
    /// The remote source was refused while fetching ([`fetch::Refusal`]: its kind).
    Fetch(&'static str),
}

impl Kind {
    /// The label in the access log's `reason`.
    pub fn label(self) -> &'static str {
        match self {
            Kind::BadPath => "bad_path",
            Kind::BadOption => "bad_option",
            Kind::BadSource => "bad_source",
            Kind::Signature => "signature",
            Kind::Expired => "expired",
            Kind::ApiOff => "api_off",
            Kind::NotAllowed => "not_allowed",
            Kind::Variant(l) | Kind::Fetch(l) => l,
        }
    }

    /// The `kind` label of `pixgate_remote_refusals_total`, for the refusals it counts.
    fn remote(self) -> Option<&'static str> {
        match self {
            Kind::Signature | Kind::NotAllowed | Kind::Fetch(_) => Some(self.label()),
            _ => None,
        }
    }
}

/// A refusal: its kind, the status and the message the client reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// What was refused.
    pub kind: Kind,
    /// The HTTP status.
    pub status: u16,
    /// The public message (it may quote the request; answers are inert text).
    pub message: String,
}

impl Refused {
    /// A refusal of `kind` with `status` and `message`.
    pub fn new(kind: Kind, status: u16, message: impl Into<String>) -> Refused {
        Refused {
            kind,
            status,
            message: message.into(),
        }
    }

    /// Records the refusal once: the access log's reason, and the URL API's refusal count.
    pub fn record(&self, rec: &mut Record) {
        if let Some(label) = self.kind.remote() {
            metrics::REMOTE_REFUSALS.with_label_values(&[label]).inc();
        }
        rec.reason = Some(self.kind.label());
    }

    /// Writes the answer (inert text, never cached).
    pub async fn write(&self, session: &mut Session) -> Result<u16> {
        respond::error(session, self.status, &self.message).await
    }

    /// Records the refusal and writes its answer.
    pub async fn answer(self, session: &mut Session, rec: &mut Record) -> Result<u16> {
        self.record(rec);
        self.write(session).await
    }
}

impl From<OptionError> for Refused {
    fn from(e: OptionError) -> Refused {
        Refused::new(Kind::BadOption, 400, e.to_string())
    }
}

impl From<variant::Refusal> for Refused {
    fn from(r: variant::Refusal) -> Refused {
        Refused::new(Kind::Variant(r.label()), r.status(), r.message())
    }
}

impl From<fetch::Refusal> for Refused {
    fn from(r: fetch::Refusal) -> Refused {
        Refused::new(Kind::Fetch(r.kind), r.status, r.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_counted_kinds() {
        let e: Refused = OptionError {
            param: "w".into(),
            message: "not a number".into(),
        }
        .into();
        assert_eq!((e.status, e.kind.label()), (400, "bad_option"));
        assert_eq!(e.message, "parameter `w`: not a number");
        assert_eq!(e.kind.remote(), None);
        let v: Refused = variant::Refusal::Bypassed.into();
        assert_eq!((v.status, v.kind.label()), (403, "rule_refuses_api"));
        let f: Refused = fetch::Refusal {
            status: 502,
            kind: "connect",
            message: "no".into(),
        }
        .into();
        assert_eq!(f.kind.remote(), Some("connect"));
        assert_eq!(Kind::Signature.remote(), Some("signature"));
        assert_eq!(Kind::NotAllowed.remote(), Some("not_allowed"));
        assert_eq!(Kind::Expired.remote(), None);
    }
}
