//! Encryption at rest for the disk tier: each file is sealed with XChaCha20-Poly1305 under a
//! key held in memory (a fresh random key per start unless a key file is configured), and is
//! named by a keyed MAC of its variant key, so a copy of the directory tells neither which
//! images were cached nor when.
//!
//! File layout (all integers little-endian):
//! ```text
//! 0   "PXGC"  magic            4
//! 4   2       version          1
//! 5   key id  (SHA-256 of key) 8    files sealed under another key are deleted at start
//! 13  meta length              4
//! 17  body length              8
//! 25  nonce, sealed metadata (+16-byte tag), nonce, sealed body (+16-byte tag)
//! ```
//! The sealed metadata is the variant key followed by [`Entry::encode_meta`] (times, source,
//! headers): nothing but lengths and the key id is readable without the key. The associated
//! data of both sealed parts is the 25-byte header, the file name and a part tag, so a file
//! renamed, truncated, spliced or edited fails its tag check.
//!
//! File names: HMAC-SHA256 of the variant key under a naming key derived from the disk key
//! (`HMAC-SHA256(disk key, "pixgate file names v1")`), so nobody without the key can compute
//! the name a URL would have. Version 1 files (plaintext times, names that were the unkeyed
//! variant key) no longer parse and are deleted at start.

use super::entry::Entry;
use super::key::Key;
use bytes::Bytes;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::path::Path;

const MAGIC: &[u8; 4] = b"PXGC";
const VERSION: u8 = 2;
/// Length of the plaintext header.
pub const HEADER_LEN: usize = 25;
const NONCE: usize = 24;
const TAG: usize = 16;
/// Domain separation of the naming key from the sealing key.
const NAMES: &[u8] = b"pixgate file names v1";

/// A cache file's name: a keyed MAC of its variant key, written as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileName(pub [u8; 32]);

impl FileName {
    /// Lowercase hex, as on disk.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses [`FileName::hex`] output: exactly 64 lowercase hex digits, nothing else.
    pub fn parse(s: &str) -> Option<FileName> {
        if !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return None;
        }
        Key::from_hex(s).map(|k| FileName(k.0))
    }
}

impl std::fmt::Debug for FileName {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "FileName({})", &self.hex()[..12])
    }
}

/// The plaintext header of a cache file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Which key sealed the file.
    pub key_id: [u8; 8],
    /// Plaintext length of the sealed metadata (the variant key and the entry's metadata).
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
        Some(Header {
            key_id: b[5..13].try_into().ok()?,
            meta_len: u32::from_le_bytes(b[13..17].try_into().ok()?),
            body_len: u64::from_le_bytes(b[17..25].try_into().ok()?),
        })
    }

    fn bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..4].copy_from_slice(MAGIC);
        b[4] = VERSION;
        b[5..13].copy_from_slice(&self.key_id);
        b[13..17].copy_from_slice(&self.meta_len.to_le_bytes());
        b[17..25].copy_from_slice(&self.body_len.to_le_bytes());
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

/// The cipher, the naming MAC and the id of their key. The key itself lives only inside the
/// cipher (zeroized on drop), in the naming MAC's state (derived from it; not zeroized) and,
/// when configured, in the key file. Nothing derived from it is ever written.
pub struct Sealer {
    cipher: XChaCha20Poly1305,
    names: Hmac<Sha256>,
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

    /// A key given as 32 raw bytes or 64 hex digits (the shared tier's cluster key); `None`
    /// for anything else. Never creates one: every node must hold the same.
    pub fn from_secret(b: &[u8]) -> Option<Sealer> {
        parse_key(b).map(|k| Self::from_key(&k.into()))
    }

    /// Seals a message that is not a cache entry (the purge bus): nonce, ciphertext and tag;
    /// `context` is bound as associated data, so a message sealed for one use does not open
    /// for another.
    pub fn seal_message(&self, context: &[u8], msg: &[u8]) -> Option<Vec<u8>> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ct = self
            .cipher
            .encrypt(&nonce, Payload { msg, aad: context })
            .ok()?;
        let mut out = Vec::with_capacity(NONCE + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Some(out)
    }

    /// Opens what [`Sealer::seal_message`] sealed with the same key and `context`.
    pub fn open_message(&self, context: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE + TAG {
            return None;
        }
        let (nonce, ct) = sealed.split_at(NONCE);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: context,
                },
            )
            .ok()
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
            names: keyed(&mac(keyed(key), NAMES)),
            key_id,
        }
    }

    /// The file name of `key`'s entry.
    pub fn name(&self, key: &Key) -> FileName {
        FileName(mac(self.names.clone(), &key.0))
    }

    /// Whether a file header was sealed with this key.
    pub fn owns(&self, h: &Header) -> bool {
        h.key_id == self.key_id
    }

    /// Seals `e` as the file for `key`: its name and its bytes.
    pub fn seal(&self, key: &Key, e: &Entry) -> Option<(FileName, Vec<u8>)> {
        let name = self.name(key);
        let mut meta = Vec::with_capacity(512);
        meta.extend_from_slice(&key.0);
        meta.extend_from_slice(&e.encode_meta());
        let header = Header {
            key_id: self.key_id,
            meta_len: u32::try_from(meta.len()).ok()?,
            body_len: e.body.len() as u64,
        };
        let hb = header.bytes();
        let mut out = Vec::with_capacity(usize::try_from(header.file_len()).ok()?);
        out.extend_from_slice(&hb);
        for (part, tag) in [(&meta[..], b'm'), (&e.body[..], b'b')] {
            let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
            let aad = aad(&hb, &name, tag);
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
        Some((name, out))
    }

    /// Opens the metadata from the first [`Header::meta_end`] bytes of the file called `name`:
    /// its variant key and the entry with an empty body. `None` if the header, key, tag or name
    /// is wrong.
    pub fn open_meta(&self, name: &FileName, b: &[u8]) -> Option<(Header, Key, Entry)> {
        let h = Header::parse(b)?;
        if !self.owns(&h) {
            return None;
        }
        let end = usize::try_from(h.meta_end()).ok()?;
        let meta = self.open_part(name, &b[..HEADER_LEN], b.get(HEADER_LEN..end)?, b'm')?;
        let (k, rest) = meta.split_first_chunk::<32>()?;
        let key = Key(*k);
        // The tag binds the name; this binds the name to the key inside.
        if self.name(&key) != *name {
            return None;
        }
        let e = Entry::decode_meta(rest, Bytes::new())?;
        Some((h, key, e))
    }

    /// Opens the whole file called `name`: its variant key and entry. `None` for anything torn,
    /// tampered, renamed or sealed elsewhere.
    pub fn open(&self, name: &FileName, b: &[u8]) -> Option<(Key, Entry)> {
        let (h, key, mut e) = self.open_meta(name, b)?;
        if b.len() as u64 != h.file_len() {
            return None;
        }
        let start = usize::try_from(h.meta_end()).ok()?;
        let body = self.open_part(name, &b[..HEADER_LEN], &b[start..], b'b')?;
        if body.len() as u64 != h.body_len {
            return None;
        }
        e.body = Bytes::from(body);
        Some((key, e))
    }

    fn open_part(&self, name: &FileName, header: &[u8], sealed: &[u8], tag: u8) -> Option<Vec<u8>> {
        if sealed.len() < NONCE + TAG {
            return None;
        }
        let (nonce, ct) = sealed.split_at(NONCE);
        let aad = aad(header, name, tag);
        self.cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .ok()
    }
}

/// HMAC-SHA256 under `key`.
fn keyed(key: &[u8]) -> Hmac<Sha256> {
    // Runs at start only; HMAC takes keys of any length, so this cannot fail.
    <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length")
}

fn mac(mut m: Hmac<Sha256>, data: &[u8]) -> [u8; 32] {
    m.update(data);
    m.finalize().into_bytes().into()
}

fn aad(header: &[u8], name: &FileName, tag: u8) -> Vec<u8> {
    let mut a = Vec::with_capacity(header.len() + 33);
    a.extend_from_slice(header);
    a.extend_from_slice(&name.0);
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
    let mut f = create_private(path)?;
    f.write_all(data)?;
    if durable {
        f.sync_all()?;
    }
    Ok(())
}

/// Creates a new file (never an existing one) readable only by its owner.
pub fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
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
        let (n, f) = s.seal(&k, &entry()).unwrap();
        assert_eq!(n, s.name(&k));
        assert_eq!(s.open(&n, &f), Some((k, entry())));
        let has = |needle: &[u8]| f.windows(needle.len()).any(|w| w == needle);
        assert!(!has(b"pixels"), "body is sealed");
        assert!(!has(b"/x.jpg"), "path is sealed");
        assert!(!has(b"example.com"), "host is sealed");
    }

    #[test]
    fn every_flipped_bit_and_every_truncation_is_refused() {
        let s = Sealer::ephemeral();
        let k = Key([9; 32]);
        let (n, f) = s.seal(&k, &entry()).unwrap();
        for i in 0..f.len() {
            let mut g = f.clone();
            g[i] ^= 0x01;
            assert_eq!(s.open(&n, &g), None, "bit flip at {i} accepted");
        }
        for cut in 0..f.len() {
            assert_eq!(s.open(&n, &f[..cut]), None, "truncation at {cut} accepted");
        }
        let mut longer = f.clone();
        longer.push(0);
        assert_eq!(s.open(&n, &longer), None);
    }

    #[test]
    fn other_keys_and_other_names_are_refused() {
        let s = Sealer::ephemeral();
        let k = Key([9; 32]);
        let (n, f) = s.seal(&k, &entry()).unwrap();
        assert_eq!(
            Sealer::ephemeral().open(&n, &f),
            None,
            "another process's key"
        );
        assert_eq!(
            s.open(&s.name(&Key([8; 32])), &f),
            None,
            "renamed to another key's name"
        );
        assert_eq!(s.open_meta(&FileName([0; 32]), &f), None, "any other name");
    }

    #[test]
    fn names_are_keyed_and_stable() {
        let (a, b) = (Sealer::ephemeral(), Sealer::ephemeral());
        let k = Key([7; 32]);
        assert_eq!(a.name(&k), a.name(&k), "one key, one name");
        assert_ne!(a.name(&k), b.name(&k), "another disk key, another name");
        assert_ne!(a.name(&k), a.name(&Key([6; 32])));
        assert_ne!(a.name(&k).0, k.0);
        let hex = a.name(&k).hex();
        assert_eq!(FileName::parse(&hex), Some(a.name(&k)));
        assert_eq!(
            FileName::parse(&hex.to_uppercase()),
            None,
            "only pixgate's spelling"
        );
        assert_eq!(FileName::parse(&hex[1..]), None);
        // The documented construction: HMAC(HMAC(disk key, "pixgate file names v1"), key).
        let disk_key = [0x42u8; 32];
        let names_key = mac(keyed(&disk_key), b"pixgate file names v1");
        assert_eq!(
            Sealer::from_key(&disk_key.into()).name(&k),
            FileName(mac(keyed(&names_key), &k.0))
        );
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
        let (n, f) = a.seal(&k, &entry()).unwrap();
        assert_eq!(
            b.name(&k),
            n,
            "the same key names files alike across restarts"
        );
        assert_eq!(b.open(&n, &f), Some((k, entry())));
        std::fs::write(&p, b"short").unwrap();
        assert!(Sealer::from_key_file(&p).is_err());
    }

    #[test]
    fn times_and_the_variant_key_are_not_in_the_clear() {
        let s = Sealer::ephemeral();
        let k = Key([0x5a; 32]);
        let e = entry();
        let (n, f) = s.seal(&k, &e).unwrap();
        let has = |needle: &[u8]| f.windows(needle.len()).any(|w| w == needle);
        assert!(!has(&n.0), "the file name");
        for t in [e.created, e.expires, e.fresh_until] {
            let ms = super::super::entry::millis(t);
            for v in [ms, ms / 1000] {
                assert!(!has(&v.to_le_bytes()), "{v} little-endian");
                assert!(!has(&v.to_be_bytes()), "{v} big-endian");
                assert!(!has(v.to_string().as_bytes()), "{v} as text");
            }
        }
        assert!(!has(&k.0), "the variant key");
        assert!(!has(k.hex().as_bytes()), "the variant key in hex");
    }
}
