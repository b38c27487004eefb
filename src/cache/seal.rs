//! Encryption at rest for the disk tier: each file is sealed with XChaCha20-Poly1305 under a
//! key held in memory (a fresh random key per start unless a key file is configured).
//!
//! File layout (all integers little-endian):
//! ```text
//! 0   "PXGC"  magic            4
//! 4   1       version          1
//! 5   key id  (SHA-256 of key) 8    files sealed under another key are deleted at start
//! 13  created (ms since epoch) 8    plaintext so the sweeper can delete without the key,
//! 21  expires (ms since epoch) 8    authenticated as associated data
//! 29  meta length              4
//! 33  body length              8
//! 41  nonce, sealed metadata (+16-byte tag), nonce, sealed body (+16-byte tag)
//! ```
//! The associated data of both sealed parts is the 41-byte header, the variant key (the file
//! name) and a part tag, so a file renamed, truncated, spliced or edited fails its tag check.

use super::entry::{millis, Entry};
use super::key::Key;
use bytes::Bytes;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::SystemTime;

const MAGIC: &[u8; 4] = b"PXGC";
const VERSION: u8 = 1;
/// Length of the plaintext header.
pub const HEADER_LEN: usize = 41;
const NONCE: usize = 24;
const TAG: usize = 16;

/// The plaintext header of a cache file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Which key sealed the file.
    pub key_id: [u8; 8],
    /// When the source was fetched (ms since epoch).
    pub created_ms: u64,
    /// When the entry expires (ms since epoch).
    pub expires_ms: u64,
    /// Plaintext metadata length.
    pub meta_len: u32,
    /// Plaintext body length.
    pub body_len: u64,
}

impl Header {
    /// Parses the first [`HEADER_LEN`] bytes.
    pub fn parse(b: &[u8]) -> Option<Header> {
        let b = b.get(..HEADER_LEN)?;
        if &b[..4] != MAGIC || b[4] != VERSION {
            return None;
        }
        let u64_at = |i: usize| b.get(i..i + 8)?.try_into().ok().map(u64::from_le_bytes);
        Some(Header {
            key_id: b[5..13].try_into().ok()?,
            created_ms: u64_at(13)?,
            expires_ms: u64_at(21)?,
            meta_len: u32::from_le_bytes(b[29..33].try_into().ok()?),
            body_len: u64_at(33)?,
        })
    }

    fn bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..4].copy_from_slice(MAGIC);
        b[4] = VERSION;
        b[5..13].copy_from_slice(&self.key_id);
        b[13..21].copy_from_slice(&self.created_ms.to_le_bytes());
        b[21..29].copy_from_slice(&self.expires_ms.to_le_bytes());
        b[29..33].copy_from_slice(&self.meta_len.to_le_bytes());
        b[33..41].copy_from_slice(&self.body_len.to_le_bytes());
        b
    }

    /// Bytes from the start of the file to the end of the sealed metadata.
    pub fn meta_end(&self) -> u64 {
        (HEADER_LEN + NONCE + TAG) as u64 + u64::from(self.meta_len)
    }

    /// The whole file's length.
    pub fn file_len(&self) -> u64 {
        self.meta_end() + (NONCE + TAG) as u64 + self.body_len
    }
}

/// The cipher and the id of its key. The key itself lives only inside the cipher (zeroized
/// on drop) and, when configured, in the key file.
pub struct Sealer {
    cipher: XChaCha20Poly1305,
    key_id: [u8; 8],
}

impl Sealer {
    /// A fresh random key that exists only in this process's memory.
    pub fn ephemeral() -> Sealer {
        Self::from_key(&XChaCha20Poly1305::generate_key(&mut OsRng))
    }

    /// The key in `path` (32 raw bytes or 64 hex digits); a new one is created there with mode
    /// 0600 when the file does not exist.
    pub fn from_key_file(path: &Path) -> Result<Sealer, String> {
        match std::fs::read(path) {
            Ok(b) => parse_key(&b)
                .map(|k| Self::from_key(&k.into()))
                .ok_or_else(|| {
                    format!(
                        "{}: a key file holds 32 raw bytes or 64 hex digits",
                        path.display()
                    )
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = XChaCha20Poly1305::generate_key(&mut OsRng);
                let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
                write_private(path, hex.as_bytes(), true)
                    .map_err(|e| format!("{}: cannot create the key file: {e}", path.display()))?;
                Ok(Self::from_key(&key))
            }
            Err(e) => Err(format!("{}: cannot read the key file: {e}", path.display())),
        }
    }

    fn from_key(key: &chacha20poly1305::Key) -> Sealer {
        let mut h = Sha256::new();
        h.update(b"pixgate-key-id");
        h.update(key);
        let d = h.finalize();
        let mut key_id = [0u8; 8];
        key_id.copy_from_slice(&d[..8]);
        Sealer {
            cipher: XChaCha20Poly1305::new(key),
            key_id,
        }
    }

    /// Whether a file header was sealed with this key.
    pub fn owns(&self, h: &Header) -> bool {
        h.key_id == self.key_id
    }

    /// Seals `e` as the file for `key`.
    pub fn seal(&self, key: &Key, e: &Entry) -> Option<Vec<u8>> {
        let meta = e.encode_meta();
        let header = Header {
            key_id: self.key_id,
            created_ms: millis(e.created),
            expires_ms: millis(e.expires),
            meta_len: u32::try_from(meta.len()).ok()?,
            body_len: e.body.len() as u64,
        };
        let hb = header.bytes();
        let mut out = Vec::with_capacity(usize::try_from(header.file_len()).ok()?);
        out.extend_from_slice(&hb);
        for (part, tag) in [(&meta[..], b'm'), (&e.body[..], b'b')] {
            let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
            let aad = aad(&hb, key, tag);
            let ct = self
                .cipher
                .encrypt(
                    &nonce,
                    Payload {
                        msg: part,
                        aad: &aad,
                    },
                )
                .ok()?;
            out.extend_from_slice(&nonce);
            out.extend_from_slice(&ct);
        }
        Some(out)
    }

    /// Opens the metadata from the first [`Header::meta_end`] bytes of a file: the entry with
    /// an empty body. `None` if the header, key or tag is wrong.
    pub fn open_meta(&self, key: &Key, b: &[u8]) -> Option<(Header, Entry)> {
        let h = Header::parse(b)?;
        if !self.owns(&h) {
            return None;
        }
        let end = usize::try_from(h.meta_end()).ok()?;
        let meta = self.open_part(key, &b[..HEADER_LEN], b.get(HEADER_LEN..end)?, b'm')?;
        let e = Entry::decode_meta(&meta, Bytes::new())?;
        // The plaintext times must agree with the sealed ones.
        if millis(e.created) != h.created_ms || millis(e.expires) != h.expires_ms {
            return None;
        }
        Some((h, e))
    }

    /// Opens a whole file. `None` for anything torn, tampered, renamed or sealed elsewhere.
    pub fn open(&self, key: &Key, b: &[u8]) -> Option<Entry> {
        let (h, mut e) = self.open_meta(key, b)?;
        if b.len() as u64 != h.file_len() {
            return None;
        }
        let start = usize::try_from(h.meta_end()).ok()?;
        let body = self.open_part(key, &b[..HEADER_LEN], &b[start..], b'b')?;
        if body.len() as u64 != h.body_len {
            return None;
        }
        e.body = Bytes::from(body);
        Some(e)
    }

    fn open_part(&self, key: &Key, header: &[u8], sealed: &[u8], tag: u8) -> Option<Vec<u8>> {
        if sealed.len() < NONCE + TAG {
            return None;
        }
        let (nonce, ct) = sealed.split_at(NONCE);
        let aad = aad(header, key, tag);
        self.cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .ok()
    }
}

fn aad(header: &[u8], key: &Key, tag: u8) -> Vec<u8> {
    let mut a = Vec::with_capacity(header.len() + 33);
    a.extend_from_slice(header);
    a.extend_from_slice(&key.0);
    a.push(tag);
    a
}

fn parse_key(b: &[u8]) -> Option<[u8; 32]> {
    if b.len() == 32 {
        return b.try_into().ok();
    }
    let t = std::str::from_utf8(b).ok()?.trim();
    super::key::Key::from_hex(t).map(|k| k.0)
}

/// Writes a new file readable only by its owner; `durable` waits for the disk. Cache files skip
/// that: a file torn by a crash fails its tag check and is deleted at start.
pub fn write_private(path: &Path, data: &[u8], durable: bool) -> std::io::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path)?;
    f.write_all(data)?;
    if durable {
        f.sync_all()?;
    }
    Ok(())
}

/// Whether `h` says the entry is expired at `now`.
pub fn expired(h: &Header, now: SystemTime) -> bool {
    millis(now) >= h.expires_ms
}

#[cfg(test)]
mod tests {
    use super::super::entry::tests::sample;
    use super::*;
    use std::time::Duration;

    fn entry() -> Entry {
        sample(
            "/x.jpg",
            b"pixels pixels pixels",
            super::super::entry::from_millis(1_700_000_000_000),
            Duration::from_secs(60),
        )
    }

    #[test]
    fn round_trip_and_plaintext_is_not_on_disk() {
        let s = Sealer::ephemeral();
        let k = Key([9; 32]);
        let f = s.seal(&k, &entry()).unwrap();
        assert_eq!(s.open(&k, &f), Some(entry()));
        let has = |needle: &[u8]| f.windows(needle.len()).any(|w| w == needle);
        assert!(!has(b"pixels"), "body is sealed");
        assert!(!has(b"/x.jpg"), "path is sealed");
        assert!(!has(b"example.com"), "host is sealed");
    }

    #[test]
    fn every_flipped_bit_and_every_truncation_is_refused() {
        let s = Sealer::ephemeral();
        let k = Key([9; 32]);
        let f = s.seal(&k, &entry()).unwrap();
        for i in 0..f.len() {
            let mut g = f.clone();
            g[i] ^= 0x01;
            assert_eq!(s.open(&k, &g), None, "bit flip at {i} accepted");
        }
        for cut in 0..f.len() {
            assert_eq!(s.open(&k, &f[..cut]), None, "truncation at {cut} accepted");
        }
        let mut longer = f.clone();
        longer.push(0);
        assert_eq!(s.open(&k, &longer), None);
    }

    #[test]
    fn other_keys_and_other_names_are_refused() {
        let s = Sealer::ephemeral();
        let k = Key([9; 32]);
        let f = s.seal(&k, &entry()).unwrap();
        assert_eq!(
            Sealer::ephemeral().open(&k, &f),
            None,
            "another process's key"
        );
        assert_eq!(s.open(&Key([8; 32]), &f), None, "renamed to another key");
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cache.key");
        let a = Sealer::from_key_file(&p).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let b = Sealer::from_key_file(&p).unwrap();
        let k = Key([1; 32]);
        let f = a.seal(&k, &entry()).unwrap();
        assert_eq!(b.open(&k, &f), Some(entry()));
        std::fs::write(&p, b"short").unwrap();
        assert!(Sealer::from_key_file(&p).is_err());
    }
}
