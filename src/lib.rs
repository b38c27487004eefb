//! pixgate: an image-optimizing reverse proxy built on pingora.
//!
//! A request's path through the modules (docs/architecture.md has the long version):
//! [`proxy`] decides whether a request is an image candidate; if not, pingora streams it through.
//! If so, [`proxy::image_path`] turns it into values ([`request`]), [`variant::decide`] picks
//! the variant under the matched rule ([`rules`]), and the proxy serves it: [`cache`], else a
//! fetch ([`fetch`]) and [`image::pipeline`] (probe → decode → resize → encode) on the bounded
//! [`image::pool`], then one complete response.

pub mod admin;
pub mod cache;
pub mod config;
pub mod demo;
pub mod fetch;
#[cfg(feature = "fuzzing")]
pub mod fuzz_entry;
pub mod image;
pub mod limits;
pub mod listener;
pub mod located;
pub mod path;
pub mod proxy;
pub mod ratelimit;
pub mod request;
pub mod rules;
pub mod screening;
pub mod security;
pub mod server;
pub mod telemetry;
pub mod tls;
pub mod units;
pub mod upgrade;
pub mod upload;
pub mod variant;
