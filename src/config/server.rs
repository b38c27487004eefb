//! The `server` section: process settings handed to pingora and the listener.
//!
//! It stays under `config/` because `server.rs` wires everything together (config included):
//! a section owned by `server` would make `config -> server -> config` a cycle.

use crate::units::{ByteSize, Dur};
use serde::{Deserialize, Serialize};

/// Process settings handed to pingora.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Worker threads of the proxy service. Default `2`.
    pub threads: usize,
    /// pingora's work stealing between the worker threads: `true` runs one multi-threaded
    /// tokio runtime; `false` runs one single-threaded runtime per thread, each connection
    /// staying on the thread it was given at accept. Transforms, disk reads and other CPU
    /// work run on blocking threads either way, so `false` costs no fairness here and saves
    /// the wake-ups between workers: a cached 2 KiB hit served 1.22× the requests per second
    /// (docs/benchmarks.md, 2026-12-07). Default `false`.
    pub work_stealing: bool,
    /// On SIGTERM, keep serving this long before shutting down. Default `5s`.
    pub grace_period: Dur,
    /// Unix socket over which a new process started with `--upgrade` takes the listening
    /// sockets from this one when it gets SIGQUIT (pingora's graceful upgrade). `null`: a
    /// private runtime directory (`crate::upgrade::default_path`). Its directory is created
    /// 0700 if missing; start-up is refused when it is a symlink, not owned by this user, or
    /// writable by group or others. Default `null`.
    pub upgrade_sock: Option<std::path::PathBuf>,
    /// Per-connection write buffer of the proxy listener. A response whose header and body
    /// fit go out in one write; a Content-Length body streamed from the origin is sent when
    /// this much has gathered (chunked bodies are sent chunk by chunk whatever the size).
    /// `0` writes straight through. Default `16KiB`: a 12 KB hit is one `sendto` instead of
    /// two, 15 % less CPU per hit (docs/benchmarks.md); pingora's own default is 1460 B.
    pub write_buffer: ByteSize,
    /// An encoded `/` or `\` (`%2F`, `%5C`) in a request path: `refuse` (400: an origin that
    /// decodes it would serve a path the rules never judged) or `keep` (data inside its
    /// segment, for APIs such as `projects/group%2Fname` behind an origin that does not decode
    /// it). Default `refuse`.
    pub encoded_slashes: crate::path::EncodedSlashes,
    /// Accept HTTP/2 without TLS (prior knowledge, "h2c") on a plain `listen`, beside
    /// HTTP/1.1 on the same port. Default `false`.
    pub h2c: bool,
}
impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            threads: 2,
            work_stealing: false,
            grace_period: Dur::secs(5),
            upgrade_sock: None,
            write_buffer: ByteSize(16 * 1024),
            encoded_slashes: crate::path::EncodedSlashes::Refuse,
            h2c: false,
        }
    }
}
