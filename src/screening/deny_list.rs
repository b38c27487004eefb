//! The deny list file: one entry a line, `sha256:<64 hex>` (an exact digest) or `dhash:<16 hex>`
//! (a perceptual hash matched within `max_distance` bits); blank lines and everything from `#`
//! on are ignored. Every bad line is reported with its file and line number; a file with any bad
//! line is not used.

use super::dhash::distance;
use crate::located::{Error, Errors};
use std::collections::HashSet;
use std::path::Path;

/// A parsed deny list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DenyList {
    sha256: HashSet<[u8; 32]>,
    dhash: Vec<u64>,
}

impl DenyList {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<DenyList, Errors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Errors(vec![Error::whole_file(
                path,
                format!("cannot read the deny list: {e}"),
            )])
        })?;
        DenyList::parse(path, &text)
    }

    /// Parses the text of a deny list read from `path` (named in errors).
    pub fn parse(path: &Path, text: &str) -> Result<DenyList, Errors> {
        let mut list = DenyList::default();
        let mut errors = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let entry = line.split('#').next().unwrap_or_default().trim();
            if entry.is_empty() {
                continue;
            }
            let problem = match entry.split_once(':') {
                Some((kind, hex)) if kind.eq_ignore_ascii_case("sha256") => {
                    match decode_hex::<32>(hex.trim()) {
                        Some(d) => {
                            list.sha256.insert(d);
                            continue;
                        }
                        None => "a sha256 entry needs 64 hex digits",
                    }
                }
                Some((kind, hex)) if kind.eq_ignore_ascii_case("dhash") => {
                    match decode_hex::<8>(hex.trim()) {
                        Some(d) => {
                            list.dhash.push(u64::from_be_bytes(d));
                            continue;
                        }
                        None => "a dhash entry needs 16 hex digits",
                    }
                }
                // The line itself is not echoed: it is a hash of a denied image.
                _ => "expected `sha256:<64 hex>` or `dhash:<16 hex>`",
            };
            errors.push(Error {
                file: path.to_path_buf(),
                line: Some(i + 1),
                key: String::new(),
                message: problem.to_string(),
            });
        }
        list.dhash.sort_unstable();
        list.dhash.dedup();
        if errors.is_empty() {
            Ok(list)
        } else {
            Err(Errors(errors))
        }
    }

    /// True when `digest` is listed.
    pub fn has_digest(&self, digest: &[u8; 32]) -> bool {
        self.sha256.contains(digest)
    }

    /// True when a listed dHash is within `max_distance` bits of `hash` (a linear scan: a few
    /// hundred thousand entries cost well under a millisecond).
    pub fn has_near(&self, hash: u64, max_distance: u32) -> bool {
        self.dhash
            .iter()
            .any(|&d| distance(d, hash) <= max_distance)
    }

    /// True when there are perceptual hashes to compare with (so pixels must be decoded).
    pub fn wants_dhash(&self) -> bool {
        !self.dhash.is_empty()
    }

    /// (digests, perceptual hashes).
    pub fn len(&self) -> (usize, usize) {
        (self.sha256.len(), self.dhash.len())
    }

    /// True when nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.sha256.is_empty() && self.dhash.is_empty()
    }
}

/// `N` bytes from exactly `2·N` hex digits.
fn decode_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn parses_entries_comments_and_blank_lines() {
        let text = format!(
            "# deny list\n\nsha256:{SHA}\n  DHASH:00FF00FF00FF00FF  # from a report\nsha256:{}\n",
            SHA.to_uppercase()
        );
        let list = DenyList::parse(Path::new("deny.txt"), &text).unwrap();
        assert_eq!(list.len(), (1, 1));
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&decode_hex::<32>(SHA).unwrap());
        assert!(list.has_digest(&digest));
        assert!(!list.has_digest(&[0; 32]));
        assert!(list.has_near(0x00ff_00ff_00ff_00ff, 0));
        assert!(list.has_near(0x00ff_00ff_00ff_00f0, 4));
        assert!(!list.has_near(0x00ff_00ff_00ff_00f0, 3));
        assert!(list.wants_dhash());
        assert_eq!(hex(&digest), SHA);
        let empty = DenyList::parse(Path::new("e"), "# nothing\n").unwrap();
        assert!(empty.is_empty() && !empty.wants_dhash());
    }

    #[test]
    fn every_bad_line_is_reported_with_its_number() {
        let text = format!(
            "sha256:{SHA}\nsha256:abc\n\nmd5:{SHA}\ndhash:00ff00ff00ff00fg\ndhash:+0ff00ff00ff00ff\n{SHA}\nsha256:{SHA}x\n"
        );
        let errs = DenyList::parse(Path::new("/etc/deny.txt"), &text).unwrap_err();
        let lines: Vec<_> = errs.errors().iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 4, 5, 6, 7, 8].map(Some));
        let first = errs.errors()[0].to_string();
        assert_eq!(first, "/etc/deny.txt:2: a sha256 entry needs 64 hex digits");
        // No line's content is echoed.
        assert!(!errs.to_string().contains(SHA));
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let e = DenyList::load(Path::new("/nonexistent/deny.txt")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/nonexistent/deny.txt: cannot read"),
            "{e}"
        );
    }
}
