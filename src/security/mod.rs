//! What stands between a URL and the network: the URL API's signatures ([`signing`]) and the
//! SSRF guard for remote sources ([`ssrf`]: the allowlist, refused address ranges, CIDRs).
//! Knows nothing of HTTP serving; `fetch` (the checked connection), `request` and `ratelimit`
//! (trusted proxies) and `proxy` (connection limits, the API route) import it.

pub mod signing;
pub mod ssrf;

use sha2::{Digest, Sha256};

/// Constant-time comparison of two secrets (admin token, upload API keys), through their
/// digests so that lengths don't leak either.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (x, y) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    x.iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q))
        == 0
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn secrets_compare() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }
}
