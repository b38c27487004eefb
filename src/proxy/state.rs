//! The state shared by every request of the proxy service: the configuration, the origin and
//! its connection pool, the transform pool, the cache, the URL API's guard and signer, the
//! rules, telemetry, rate limits and the source byte budget. The request handlers
//! (service, image_path, respond, source) import it from here; it imports none of them.

use crate::cache::Cache;
use crate::config::Config;
use crate::fetch::origin::Origin;
use crate::image::codec::EncodeSettings;
use crate::image::pool::Pool;
use crate::image::probe::HeaderLimits;
use crate::path::Form;
use crate::rules::Applied;
use crate::telemetry::{metrics, Telemetry};
use pingora::connectors::http::Connector;
use pingora::http::ResponseHeader;
use pingora::Result;
use std::sync::Arc;

/// Shared state of the proxy service.
pub struct State {
    /// The loaded configuration.
    pub cfg: Config,
    /// The resolved origin.
    pub origin: Origin,
    /// Connection pool for the image path's own origin fetches.
    pub connector: Connector,
    /// Bounded transform pool.
    pub pool: Pool,
    /// Encoder settings from config.
    pub settings: EncodeSettings,
    /// Header limits from config.
    pub header_limits: HeaderLimits,
    /// The variant cache.
    pub cache: Arc<Cache>,
    /// Hash of every setting that changes a variant's bytes (part of each cache key).
    pub settings_fingerprint: String,
    /// The URL API's SSRF guard (when the API is on).
    pub guard: Option<crate::fetch::Guard>,
    /// The URL API's signature checker (when the API is on).
    pub signer: Option<crate::security::signing::Signer>,
    /// The live rules (when `rules.dir` is set).
    pub rules: Option<Arc<crate::rules::Rules>>,
    /// Metrics, tenants, the access log and origin health.
    pub telemetry: Arc<Telemetry>,
    /// Rate limiters and trusted proxies.
    pub limits: Arc<crate::ratelimit::RateLimits>,
    /// Source bytes image requests may hold at once (`limits.max_buffered_bytes`).
    pub budget: super::budget::Budget,
    /// The configured watermarks (`images.watermarks`).
    pub marks: Arc<crate::image::marks::LiveMarks>,
}

impl State {
    /// Builds the state from a validated config, a resolved origin and an opened cache.
    pub fn new(
        cfg: Config,
        origin: Origin,
        cache: Arc<Cache>,
        rules: Option<Arc<crate::rules::Rules>>,
    ) -> State {
        let l = cfg.limits;
        let settings = format!(
            "{}\n{}",
            serde_yaml_ng::to_string(&cfg.images).unwrap_or_default(),
            serde_yaml_ng::to_string(&cfg.limits).unwrap_or_default()
        );
        let api = &cfg.url_api;
        let pairs = api
            .keys
            .iter()
            .zip(&api.salts)
            .filter_map(|(k, s)| {
                Some((crate::fetch::config::hex(k)?, crate::fetch::config::hex(s)?))
            })
            .collect();
        State {
            marks: Arc::new(crate::image::marks::LiveMarks::load_or_empty(
                &cfg.images.watermarks,
            )),
            telemetry: Arc::new(Telemetry::new(&cfg.metrics, &cfg.log)),
            limits: Arc::new(crate::ratelimit::RateLimits::new(&cfg.rate_limit)),
            rules,
            guard: api
                .enabled
                .then(|| crate::fetch::Guard::new(api, cfg.limits.max_source_bytes.get())),
            signer: api.enabled.then(|| {
                crate::security::signing::Signer::new(pairs, api.signature_size, api.allow_unsigned)
            }),
            cache,
            settings_fingerprint: crate::cache::key::fingerprint(&settings),
            pool: Pool::new(
                l.max_concurrent_transforms,
                l.max_queued_transforms,
                l.queue_timeout.get(),
                l.transform_timeout.get(),
            )
            .with_gauges(
                metrics::TRANSFORMS_QUEUED.clone(),
                metrics::TRANSFORMS_RUNNING.clone(),
            ),
            settings: EncodeSettings::from(&cfg.images),
            header_limits: HeaderLimits {
                max_pixels: l.max_source_pixels,
                max_dimension: l.max_source_dimension,
            },
            connector: Connector::new(None),
            budget: super::budget::Budget::new(l.max_buffered_bytes.get()),
            origin,
            cfg,
        }
    }
}

impl State {
    /// The rule for a site host and path (client's Host header).
    pub fn applied(&self, host: &str, path: &str) -> Applied {
        Applied::find(self.rules.as_ref().map(|r| r.current()), host, path)
    }

    /// On an HTML page, asks browsers (`Accept-CH`) to send client hints with their image
    /// requests, when hints are on.
    pub fn advertise_hints(&self, resp: &mut ResponseHeader) -> Result<()> {
        if self.cfg.transform.client_hints && is_html(resp) {
            resp.insert_header("accept-ch", crate::request::hints::ACCEPT_CH)?;
        }
        Ok(())
    }

    /// The settings [`crate::variant::decide`] reads.
    pub fn variant_settings(&self) -> crate::variant::Settings<'_> {
        crate::variant::Settings {
            formats: &self.cfg.images.formats,
            transform: &self.cfg.transform,
            marks: Some(&self.marks),
        }
    }

    /// How request paths are normalised (`server.encoded_slashes`).
    pub fn path_form(&self) -> Form {
        Form::request(self.cfg.server.encoded_slashes)
    }

    /// Request headers besides `Accept` that image responses vary on.
    pub fn vary(&self) -> &'static [&'static str] {
        if self.cfg.transform.client_hints {
            crate::request::hints::VARY
        } else {
            &[]
        }
    }
}

fn is_html(resp: &ResponseHeader) -> bool {
    resp.headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"))
}
