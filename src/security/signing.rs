//! imgproxy's URL signature: base64url (no padding) of HMAC-SHA256(key, salt ‖ path), where
//! the path is everything after the signature, truncated to `signature_size` bytes; several
//! key/salt pairs are tried (rotation); comparison is constant-time.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Checks signatures against key/salt pairs.
#[derive(Clone)]
pub struct Signer {
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
    size: usize,
    allow_unsigned: bool,
}

impl Signer {
    /// `pairs` of (key, salt), signatures of `size` bytes (1–32).
    pub fn new(pairs: Vec<(Vec<u8>, Vec<u8>)>, size: usize, allow_unsigned: bool) -> Signer {
        Signer {
            pairs,
            size: size.clamp(1, 32),
            allow_unsigned,
        }
    }

    fn mac(key: &[u8], salt: &[u8], path: &str) -> Option<Hmac<Sha256>> {
        let mut m = Hmac::<Sha256>::new_from_slice(key).ok()?;
        m.update(salt);
        m.update(path.as_bytes());
        Some(m)
    }

    /// Whether `signature` signs `path` under any pair (constant-time per pair).
    pub fn verify(&self, signature: &str, path: &str) -> bool {
        self.check(signature, path).is_some()
    }

    /// Like [`Signer::verify`], saying which key pair signed: `Some(Some(i))` for pair `i`,
    /// `Some(None)` for an allowed unsigned request, `None` when the signature is invalid.
    pub fn check(&self, signature: &str, path: &str) -> Option<Option<usize>> {
        if self.allow_unsigned && matches!(signature, "insecure" | "unsafe" | "_") {
            return Some(None);
        }
        let given = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(signature.trim_end_matches('='))
            .ok()?;
        if given.len() != self.size {
            return None;
        }
        self.pairs
            .iter()
            .position(|(k, s)| {
                Self::mac(k, s, path).is_some_and(|m| m.verify_truncated_left(&given).is_ok())
            })
            .map(Some)
    }

    /// The signature of `path` with the first pair (for tools and tests).
    pub fn sign(&self, path: &str) -> Option<String> {
        let (k, s) = self.pairs.first()?;
        let d = Self::mac(k, s, path)?.finalize().into_bytes();
        Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&d[..self.size]))
    }
}

#[cfg(test)]
mod tests {
    use super::Signer;

    #[test]
    fn signatures_match_imgproxy_and_rotate() {
        // imgproxy's documented example: key "secret", salt "hello".
        let s = Signer::new(vec![(b"secret".to_vec(), b"hello".to_vec())], 32, false);
        let path =
            "/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png";
        let sig = s.sign(path).unwrap();
        assert_eq!(sig, "oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8");
        assert!(s.verify(&sig, path));
        assert!(
            !s.verify(&sig, "/rs:fill:300:401:0/g:sm/x"),
            "tampered path"
        );
        let other = Signer::new(vec![(b"wrong".to_vec(), b"hello".to_vec())], 32, false);
        assert!(!other.verify(&sig, path), "wrong key");
        let rotated = Signer::new(
            vec![
                (b"new".to_vec(), b"salt".to_vec()),
                (b"secret".to_vec(), b"hello".to_vec()),
            ],
            32,
            false,
        );
        assert!(
            rotated.verify(&sig, path),
            "old pair still accepted during rotation"
        );
        assert!(!s.verify("insecure", path));
        assert!(Signer::new(vec![], 32, true).verify("insecure", path));
        let short = Signer::new(vec![(b"secret".to_vec(), b"hello".to_vec())], 8, false);
        let t = short.sign(path).unwrap();
        assert_eq!(t.len(), 11);
        assert!(short.verify(&t, path));
        assert!(
            !short.verify(&sig, path),
            "the full signature is not the truncated one"
        );
    }
}
