//! Variant keys. A key names one stored response: origin + host + path and query + the
//! transform options that matter + the negotiation plan (what each source family becomes for
//! this client, never the raw Accept header) + a fingerprint of the encoder settings. It is
//! hashed (SHA-256) into 32 bytes. Anyone can compute that hash from a URL, so it never names
//! anything on disk: the disk tier names files by a keyed MAC of it ([`super::seal::FileName`])
//! and keeps the key itself inside the sealed part.

use sha2::{Digest, Sha256};
use std::fmt;

/// A 32-byte variant key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(pub [u8; 32]);

impl Key {
    /// Lowercase hex.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses [`Key::hex`] output.
    pub fn from_hex(s: &str) -> Option<Key> {
        if s.len() != 64 {
            return None;
        }
        let mut k = [0u8; 32];
        for (i, byte) in k.iter_mut().enumerate() {
            *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Key(k))
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        // Short: anyone can hash a guessed URL, so the whole key is never printed.
        write!(f, "Key({})", &self.hex()[..12])
    }
}

/// Where a stored variant came from: what purge selects on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Source {
    /// Host as the origin saw it, lowercase, without a default port.
    pub host: String,
    /// Path without the query.
    pub path: String,
    /// The origin's surrogate keys (`Surrogate-Key`, `Cache-Tag`): what a purge by tag
    /// selects. Empty for most entries.
    pub tags: Vec<String>,
}

/// The parts of a variant key, before hashing.
#[derive(Debug, Clone)]
pub struct KeyParts<'a> {
    /// The configured origin (`origin.url`).
    pub origin: &'a str,
    /// Host sent to the origin.
    pub host: &'a str,
    /// Path and query sent to the origin.
    pub path_and_query: &'a str,
    /// Canonical transform options (empty when none).
    pub options: &'a str,
    /// The negotiation plan's label (`avif`, `webp`, `jpeg=jpeg,png=png`, ...).
    pub plan: &'a str,
    /// Fingerprint of the encoder settings, so a config change never serves old variants.
    pub settings: &'a str,
}

impl KeyParts<'_> {
    /// The hashed key. Fields are length-prefixed, so no two part lists collide by
    /// concatenation.
    pub fn key(&self) -> Key {
        let mut h = Sha256::new();
        h.update(b"pixgate-variant-v1");
        for part in [
            self.origin,
            &normalize_host(self.host),
            self.path_and_query,
            self.options,
            self.plan,
            self.settings,
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        Key(h.finalize().into())
    }

    /// The source this key derives from.
    pub fn source(&self) -> Source {
        source_of(self.host, self.path_and_query)
    }
}

/// The response headers that carry surrogate keys (purge by tag): `Surrogate-Key` (keys
/// separated by spaces) and `Cache-Tag` (by commas).
pub const TAG_HEADERS: [&str; 2] = ["surrogate-key", "cache-tag"];

impl Source {
    /// `self` tagged with the surrogate keys `h` carries (at most
    /// [`super::entry::MAX_TAGS`], each at most 1 KiB, duplicates once).
    pub fn tagged(mut self, h: &http::HeaderMap) -> Source {
        let keys = TAG_HEADERS
            .iter()
            .flat_map(|n| h.get_all(*n).iter())
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split([' ', ',', '\t']))
            .filter(|t| !t.is_empty() && t.len() <= 1024);
        for t in keys {
            if self.tags.len() == super::entry::MAX_TAGS {
                break;
            }
            if !self.tags.iter().any(|x| x == t) {
                self.tags.push(t.to_string());
            }
        }
        self
    }
}

/// The source of a request: its normalised host and its path without the query.
pub fn source_of(host: &str, path_and_query: &str) -> Source {
    let path = path_and_query
        .split_once('?')
        .map_or(path_and_query, |(p, _)| p);
    Source {
        host: normalize_host(host),
        path: path.to_string(),
        tags: Vec::new(),
    }
}

/// Lowercase, without `:80` (hosts are case-insensitive; the default port is implied).
pub fn normalize_host(h: &str) -> String {
    let h = h.trim().to_ascii_lowercase();
    match h.strip_suffix(":80") {
        Some(bare) => bare.to_string(),
        None => h,
    }
}

/// A hash of anything that changes the bytes of a variant (encoder settings, limits).
pub fn fingerprint(text: &str) -> String {
    let d = Sha256::digest(text.as_bytes());
    d[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts<'a>(host: &'a str, path: &'a str, plan: &'a str) -> KeyParts<'a> {
        KeyParts {
            origin: "http://o",
            host,
            path_and_query: path,
            options: "",
            plan,
            settings: "s",
        }
    }

    #[test]
    fn host_case_and_default_port_do_not_fragment() {
        assert_eq!(
            parts("Example.COM:80", "/a.jpg", "avif").key(),
            parts("example.com", "/a.jpg", "avif").key()
        );
        assert_ne!(
            parts("example.com:8080", "/a.jpg", "avif").key(),
            parts("example.com", "/a.jpg", "avif").key()
        );
    }

    #[test]
    fn every_part_matters() {
        let base = parts("h", "/a.jpg?v=1", "avif").key();
        assert_ne!(base, parts("h", "/a.jpg?v=2", "avif").key());
        assert_ne!(base, parts("h", "/a.jpg?v=1", "webp").key());
        assert_ne!(base, parts("h2", "/a.jpg?v=1", "avif").key());
        let mut p = parts("h", "/a.jpg?v=1", "avif");
        p.settings = "t";
        assert_ne!(base, p.key());
        // Length prefixes: moving a character between fields changes the key.
        assert_ne!(parts("ab", "/c", "x").key(), parts("a", "b/c", "x").key());
    }

    #[test]
    fn surrogate_keys_are_split_and_bounded() {
        let mut h = http::HeaderMap::new();
        h.append("surrogate-key", "a b  a".parse().unwrap());
        h.append("cache-tag", "c,d, e".parse().unwrap());
        let s = source_of("x", "/p").tagged(&h);
        assert_eq!(s.tags, ["a", "b", "c", "d", "e"]);
        let many = (0..200)
            .map(|i| format!("t{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        h.insert("surrogate-key", many.parse().unwrap());
        assert_eq!(
            source_of("x", "/p").tagged(&h).tags.len(),
            super::super::entry::MAX_TAGS
        );
    }

    #[test]
    fn hex_round_trips_and_source_drops_query() {
        let k = parts("h", "/a.jpg?v=1", "avif").key();
        assert_eq!(Key::from_hex(&k.hex()), Some(k));
        assert_eq!(Key::from_hex("zz"), None);
        let s = parts("H:80", "/a.jpg?v=1", "avif").source();
        assert_eq!((s.host.as_str(), s.path.as_str()), ("h", "/a.jpg"));
    }
}
