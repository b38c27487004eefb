//! Where results wait for their download: a [`Cache`] of its own (memory tier, and the sealed
//! disk tier only when `upload.disk` is set) whose `max_retention` is `upload.retention`, so
//! the cache's guarantee is the upload promise: every deadline is capped at creation +
//! retention, the sweeper removes what falls due whether or not anyone asks, the byte limits
//! hold, and a purge on the admin listener reaches it.
//!
//! A link's token is 16 bytes from the OS CSPRNG (base64url, 22 characters), never derived
//! from the file or its name. The store is keyed by HMAC-SHA256(per-process secret, token),
//! so neither the token nor anything derived from it without the secret names an entry; a
//! restart forgets the secret, and with it every link (the sealed disk tier's key is also held
//! in memory only).

use crate::cache::config::CacheConfig;
use crate::cache::{Cache, Entry, Key, Source};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::Arc;
use std::time::SystemTime;

/// The `Source::host` of every upload entry: an admin purge of `http://upload/<id>` erases
/// one upload by its id.
pub const HOST: &str = "upload";

/// Random bytes in a token.
const TOKEN_BYTES: usize = 16;

/// Fills `buf` from the OS CSPRNG.
pub(crate) fn random(buf: &mut [u8]) -> Result<(), String> {
    getrandom::fill(buf).map_err(|e| format!("the OS random source failed: {e}"))
}

/// A fresh random token (22 base64url characters).
fn new_token() -> Result<String, String> {
    let mut b = [0u8; TOKEN_BYTES];
    random(&mut b)?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

/// Whether `t` has a token's shape (anything else is simply not found).
fn well_formed(t: &str) -> bool {
    t.len() == 22
        && t.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// What an entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One result; `once`: erased by its first download.
    File { once: bool },
    /// A batch: the tokens of its files (for the ZIP).
    Batch,
}

impl Kind {
    fn note(self) -> &'static str {
        match self {
            Kind::File { once: false } => "file",
            Kind::File { once: true } => "file;once",
            Kind::Batch => "batch",
        }
    }

    /// The kind an entry was stored as (`None`: not an upload entry).
    pub fn of(e: &Entry) -> Option<Kind> {
        match e.note.as_str() {
            "file" => Some(Kind::File { once: false }),
            "file;once" => Some(Kind::File { once: true }),
            "batch" => Some(Kind::Batch),
            _ => None,
        }
    }
}

/// One thing to keep.
#[derive(Debug, Clone)]
pub struct Keep {
    /// The bytes.
    pub body: Bytes,
    /// Its media type (derived from the bytes' format, never from the upload's headers).
    pub mime: &'static str,
    /// The download name (already safe: see [`super::answer::safe_name`]).
    pub name: String,
    /// The public id (random, unrelated to the token).
    pub id: String,
    /// What it is.
    pub kind: Kind,
    /// Size and format of the upload it was made from (metering).
    pub source_bytes: u64,
    /// The upload's format name.
    pub source_format: &'static str,
    /// When it must be gone (the store caps it at creation + retention anyway).
    pub expires: SystemTime,
}

/// A kept entry's link token and its actual deadline (the requested one, capped by the
/// retention).
#[derive(Debug, Clone)]
pub struct Stored {
    /// The capability token of `/d/{token}`.
    pub token: String,
    /// When the entry is gone.
    pub expires: SystemTime,
}

/// The store.
pub struct Store {
    cache: Arc<Cache>,
    /// HMAC-SHA256 keyed with the per-process secret, cloned for each token.
    mac: Hmac<Sha256>,
}

impl Store {
    /// Opens the store's tiers (a disk tier's directory is cleaned first) and draws the
    /// per-process secret.
    pub fn open(cfg: &CacheConfig) -> Result<Store, String> {
        let mut secret = [0u8; 32];
        random(&mut secret)?;
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(&secret)
            .map_err(|e| format!("upload store key: {e}"))?;
        Ok(Store {
            cache: Arc::new(Cache::open(cfg)?),
            mac,
        })
    }

    /// The cache underneath (for the sweeper, the gauges and the admin purge).
    pub fn cache(&self) -> &Arc<Cache> {
        &self.cache
    }

    fn key(&self, token: &str) -> Key {
        let mut m = self.mac.clone();
        m.update(token.as_bytes());
        Key(m.finalize().into_bytes().into())
    }

    /// Stores `k` under a new token and returns the token and deadline, once the entry is in
    /// every tier it goes to (so the link works the moment it is handed out).
    pub async fn put(&self, k: Keep) -> Result<Stored, String> {
        let token = new_token()?;
        let now = SystemTime::now();
        let e = Entry {
            status: 200,
            headers: vec![
                ("content-type".into(), k.mime.as_bytes().to_vec()),
                (
                    "content-disposition".into(),
                    format!("attachment; filename=\"{}\"", k.name).into_bytes(),
                ),
            ],
            body: k.body,
            etag: None,
            note: k.kind.note().to_string(),
            source: Source {
                tags: Vec::new(),
                host: HOST.into(),
                path: format!("/{}", k.id),
            },
            created: now,
            fresh_until: k.expires,
            expires: k.expires,
            origin_age: 0,
            source_bytes: k.source_bytes,
            source_format: k.source_format.to_string(),
            source_etag: None,
        };
        let e = self.cache.within_retention(Arc::new(e));
        let expires = e.expires;
        let epoch = self.cache.epoch();
        self.cache.insert(self.key(&token), e, epoch).await;
        Ok(Stored { token, expires })
    }

    /// The entry behind `token`, if it is still there.
    pub async fn get(&self, token: &str) -> Option<Arc<Entry>> {
        if !well_formed(token) {
            return None;
        }
        self.cache.get(&self.key(token)).await.map(|(e, _)| e)
    }

    /// Removes the entry behind `token` and returns it if it was there.
    pub async fn take(&self, token: &str) -> Option<Arc<Entry>> {
        if !well_formed(token) {
            return None;
        }
        self.cache.take(&self.key(token)).await
    }
}

/// The download name an entry carries (from its `Content-Disposition`).
pub fn name_of(e: &Entry) -> Option<String> {
    let (_, v) = e.headers.iter().find(|(k, _)| k == "content-disposition")?;
    let v = std::str::from_utf8(v).ok()?;
    let start = v.find("filename=\"")? + "filename=\"".len();
    let rest = &v[start..];
    Some(rest[..rest.find('"')?].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn keep(kind: Kind) -> Keep {
        Keep {
            body: Bytes::from_static(b"RIFF....WEBP"),
            mime: "image/webp",
            name: "pixgate-1.webp".into(),
            id: "0123456789abcdef".into(),
            kind,
            source_bytes: 100,
            source_format: "jpeg",
            expires: SystemTime::now() + Duration::from_secs(60),
        }
    }

    #[tokio::test]
    async fn tokens_are_random_and_only_their_own_key_finds_them() {
        let s = Store::open(&CacheConfig::default()).expect("memory store");
        let a = s
            .put(keep(Kind::File { once: false }))
            .await
            .expect("put")
            .token;
        let b = s
            .put(keep(Kind::File { once: false }))
            .await
            .expect("put")
            .token;
        assert_ne!(a, b);
        assert!(well_formed(&a) && well_formed(&b), "{a} {b}");
        let e = s.get(&a).await.expect("stored");
        assert_eq!(Kind::of(&e), Some(Kind::File { once: false }));
        assert_eq!(name_of(&e).as_deref(), Some("pixgate-1.webp"));
        // One character off, or another shape: not found.
        let mut off = a.clone().into_bytes();
        off[0] = if off[0] == b'A' { b'B' } else { b'A' };
        assert!(s.get(&String::from_utf8(off).unwrap()).await.is_none());
        assert!(s.get("../../etc/passwd").await.is_none());
        // A second store (another process) has another secret: the token means nothing there.
        let other = Store::open(&CacheConfig::default()).expect("memory store");
        assert!(other.get(&a).await.is_none());
        // Taken once; then gone.
        assert!(s.take(&a).await.is_some());
        assert!(s.take(&a).await.is_none());
        assert!(s.get(&a).await.is_none());
        assert!(s.get(&b).await.is_some());
    }
}
