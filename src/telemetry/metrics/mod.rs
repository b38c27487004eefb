//! Metric names and label sets in one place. Every label value comes from a closed set
//! (formats, reasons, routes, status classes), so cardinality stays bounded.
//!
//! The metrics are declared by area, one file each (the sections of docs/metrics.md), with
//! [`metrics!`], which also lists them for [`init`]: a metric is registered by being declared.

use prometheus::core::Collector;

/// Declares metrics: each `NAME: Type = register_macro!(name, help, ...);` becomes a
/// `pub(crate) static NAME` (a `prometheus::Type`) registered in the default registry on first use,
/// and the module gets `all()`, which returns every one of them (registering them).
macro_rules! metrics {
    ($($(#[$doc:meta])* $name:ident: $ty:ident = $register:ident!($($args:tt)*);)*) => {
        $(
            $(#[$doc])*
            pub(crate) static $name: ::once_cell::sync::Lazy<::prometheus::$ty> =
                ::once_cell::sync::Lazy::new(|| {
                    ::prometheus::$register!($($args)*).expect("metric registers once")
                });
        )*

        /// Every metric declared here, registered.
        pub(super) fn all() -> Vec<&'static dyn ::prometheus::core::Collector> {
            vec![$(&*$name),*]
        }
    };
}

mod cache;
mod process;
mod requests;
mod screening;
mod shared;
mod tenants;
mod transforms;
mod upload;

pub(crate) use cache::*;
pub(crate) use process::*;
pub(crate) use requests::*;
pub(crate) use screening::*;
pub(crate) use shared::*;
pub(crate) use tenants::*;
pub(crate) use transforms::*;
pub(crate) use upload::*;

/// Every metric pixgate declares (registering each one in the default registry).
pub(crate) fn all() -> impl Iterator<Item = &'static dyn Collector> {
    [
        requests::all,
        transforms::all,
        cache::all,
        tenants::all,
        process::all,
        screening::all,
        shared::all,
        upload::all,
    ]
    .into_iter()
    .flat_map(|area| area())
}

/// The pingora version pixgate is built on (Cargo.lock pins it).
pub(crate) const PINGORA_VERSION: &str = "0.9.1";

/// The status class label (`2xx`...) for a status code.
pub(crate) fn status_class(code: u16) -> &'static str {
    match code {
        // No response: the client went away first (or the connection broke before one).
        0 => "aborted",
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Counts a transformed image: transforms, bytes in/out, time.
pub(crate) fn record_transformed(
    src: crate::image::format::SourceFormat,
    out: crate::image::format::OutputFormat,
    bytes_in: usize,
    bytes_out: usize,
    secs: f64,
) {
    TRANSFORMS
        .with_label_values(&[src.name(), out.name(), "ok"])
        .inc();
    BYTES_IN
        .with_label_values(&[out.name()])
        .inc_by(bytes_in as u64);
    BYTES_OUT
        .with_label_values(&[out.name()])
        .inc_by(bytes_out as u64);
    TRANSFORM_SECONDS
        .with_label_values(&[out.name()])
        .observe(secs);
    if bytes_in > 0 {
        SAVINGS
            .with_label_values(&[out.name()])
            .observe(1.0 - (bytes_out as f64 / bytes_in as f64).min(1.0));
    }
}

/// Counts an image sent as its original bytes, with the reason.
pub(crate) fn record_original(
    src: &str,
    reason: crate::image::Reason,
    bytes_in: usize,
    bytes_out: usize,
) {
    TRANSFORMS
        .with_label_values(&[src, "original", reason.label()])
        .inc();
    BYTES_IN
        .with_label_values(&["original"])
        .inc_by(bytes_in as u64);
    BYTES_OUT
        .with_label_values(&["original"])
        .inc_by(bytes_out as u64);
}

/// Registers every metric so `/metrics` lists them from the start, and sets the constant ones.
pub(crate) fn init() {
    for _registered in all() {}
    BUILD_INFO
        .with_label_values(&[env!("CARGO_PKG_VERSION"), PINGORA_VERSION])
        .set(1);
    // Vectors show in the text only once a label set exists: create the common ones at 0,
    // so dashboards and `rate()` see them from the start.
    for outcome in ["allow", "digest", "near_duplicate", "hook"] {
        SCREENING.with_label_values(&[outcome]);
    }
    for scope in ["ip", "tenant"] {
        RATE_LIMITED.with_label_values(&[scope]);
        RATE_LIMIT_KEYS.with_label_values(&[scope]);
    }
    const FORMATS: [&str; 6] = ["avif", "webp", "jpeg", "png", "original", "none"];
    for status in ["2xx", "3xx", "4xx", "5xx"] {
        REQUESTS.with_label_values(&["proxy", status, "none"]);
        REQUESTS.with_label_values(&["admin", status, "none"]);
        for route in ["image", "api"] {
            for cache in ["hit", "miss", "bypass", "stale", "none"] {
                REQUESTS.with_label_values(&[route, status, cache]);
            }
        }
    }
    for route in ["proxy", "image", "api"] {
        ORIGIN_SECONDS.with_label_values(&[route]);
        for f in FORMATS {
            if route != "proxy" || f == "none" {
                RESPONSE_BYTES.with_label_values(&[route, f]);
                ORIGIN_BYTES.with_label_values(&[route, f]);
            }
        }
    }
    for out in crate::image::format::OutputFormat::PRODUCED {
        SAVINGS.with_label_values(&[out.name()]);
        TRANSFORM_SECONDS.with_label_values(&[out.name()]);
        BYTES_IN.with_label_values(&[out.name()]);
        BYTES_OUT.with_label_values(&[out.name()]);
        for src in crate::image::format::SourceFormat::ALL.map(|s| s.name()) {
            TRANSFORMS.with_label_values(&[src, out.name(), "ok"]);
        }
    }
    for kind in [
        "connect",
        "connect_timeout",
        "timeout",
        "io",
        "protocol",
        "other",
    ] {
        ORIGIN_ERRORS.with_label_values(&[kind]);
    }
    for status in ["hit", "miss", "bypass", "stale"] {
        CACHE_REQUESTS.with_label_values(&[status]);
    }
    for status in ["hit", "miss", "revalidated", "stale"] {
        SHIELD_REQUESTS.with_label_values(&[status]);
    }
    for cause in ["origin_error", "origin_5xx"] {
        CACHE_STALE.with_label_values(&[cause]);
    }
    for limit in ["total", "per_ip"] {
        CONNECTIONS_REFUSED.with_label_values(&[limit]);
    }
    shared::init();
    CACHE_HITS.with_label_values(&["shared"]);
    for tier in ["memory", "disk"] {
        CACHE_HITS.with_label_values(&[tier]);
        CACHE_BYTES.with_label_values(&["variants", tier]);
        CACHE_ENTRIES.with_label_values(&["variants", tier]);
    }
}

#[cfg(test)]
mod tests;
