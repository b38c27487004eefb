//! pixgate: an image-optimizing reverse proxy built on pingora.
//!
//! A request's path through the modules (docs/architecture.md has the long version):
//! [`proxy`] decides whether a request is an image candidate; if not, pingora streams it through.
//! If so, [`proxy::image_path`] fetches the origin, sniffs the bytes ([`image::format`]), and runs
//! [`image::pipeline`] (probe → decode → negotiate via [`request`] → encode) on the bounded
//! [`image::pool`], then writes one complete response.

pub mod admin;
pub mod cache;
pub mod config;
pub mod demo;
pub mod fetch;
#[cfg(feature = "fuzzing")]
pub mod fuzz_entry;
pub mod image;
pub mod path;
pub mod proxy;
pub mod ratelimit;
pub mod request;
pub mod rules;
pub mod server;
pub mod telemetry;
pub mod units;
pub mod upgrade;
