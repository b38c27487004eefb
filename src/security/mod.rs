//! What stands between a URL and the network: the URL API's signatures ([`signing`]) and the
//! SSRF guard for remote sources ([`ssrf`]: the allowlist, refused address ranges, CIDRs).
//! Knows nothing of HTTP serving; `fetch` (the checked connection), `request` and `ratelimit`
//! (trusted proxies) and `proxy` (connection limits, the API route) import it.

pub mod signing;
pub mod ssrf;
