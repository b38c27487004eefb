//! `Vary` on request headers (RFC 9111 §4.1). A response that varies on fields other than
//! `Accept-Encoding` (which the primary key holds as the request's encoding class) is stored
//! under a secondary key; the primary key then holds a small [`Marker`] entry naming the
//! fields, a generation, and the secondary keys stored so far (at most `cache.max_variants`:
//! storing one more drops the oldest).
//!
//! The generation is part of every secondary key, so a marker that goes away (purged,
//! invalidated by an unsafe method, expired) takes its variants' reachability with it: a new
//! marker starts a new generation, and nothing stored under the old one can answer again, even
//! a variant the list lost to a race between two concurrent stores. The marker lives in the
//! same cache as everything else, under the same retention limit, sweeper and purge (its
//! source is the URL's).

use super::{Base, NOTE};
use crate::cache::{Entry, Key, Source};
use crate::proxy::state::State;
use bytes::{BufMut, Bytes, BytesMut};
use pingora::http::RequestHeader;
use std::time::SystemTime;

/// The `Entry::note` of a marker.
pub(super) const MARKER: &str = "shield-vary";

/// What a URL's responses vary on, and which variants are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Marker {
    generation: u64,
    names: Vec<String>,
    keys: Vec<Key>,
}

impl Marker {
    /// A new generation for responses that vary on `names` (from [`crate::cache::policy::vary_fields`]).
    pub(super) fn new(names: Vec<String>) -> Marker {
        let mut g = [0u8; 8];
        // A generation only has to differ from the previous marker's: the clock will do if the
        // OS has no randomness to give.
        let generation = match getrandom::fill(&mut g) {
            Ok(()) => u64::from_le_bytes(g),
            Err(_) => crate::cache::entry::millis(SystemTime::now()),
        };
        Marker {
            generation,
            names,
            keys: Vec::new(),
        }
    }

    /// The marker an entry holds, if it is one.
    pub(super) fn of(e: &Entry) -> Option<Marker> {
        if e.note != MARKER {
            return None;
        }
        let names = String::from_utf8_lossy(e.header("vary")?).into_owned();
        let (generation, keys) = e.body.split_first_chunk::<8>()?;
        if keys.len() % 32 != 0 {
            return None;
        }
        Some(Marker {
            generation: u64::from_le_bytes(*generation),
            names: names.split(',').map(str::to_string).collect(),
            keys: keys
                .chunks_exact(32)
                .filter_map(|c| c.try_into().ok().map(Key))
                .collect(),
        })
    }

    /// Whether it was made for responses that vary on `names`.
    pub(super) fn names_are(&self, names: &[String]) -> bool {
        self.names == names
    }

    /// The keys of the variants it lists.
    pub(super) fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// The secondary key of `req`: the URL's primary parts, the generation, and the values of
    /// the named request headers, normalised (lines joined, list items trimmed; an absent
    /// header differs from an empty one).
    pub(super) fn key(&self, st: &State, base: &Base, req: &RequestHeader) -> Key {
        let mut s = format!("{:016x}", self.generation);
        for name in &self.names {
            s.push('\n');
            s.push_str(name);
            let mut values = req.headers.get_all(name.as_str()).iter().peekable();
            if values.peek().is_none() {
                continue;
            }
            s.push(':');
            let items = values
                .flat_map(|v| v.as_bytes().split(|b| *b == b','))
                .map(|i| String::from_utf8_lossy(i.trim_ascii()).into_owned())
                .collect::<Vec<_>>();
            s.push_str(&items.join(","));
        }
        base.key(st, &s)
    }

    /// Lists `key` (once); returns the keys dropped to stay within `max`, oldest first.
    pub(super) fn add(&mut self, key: Key, max: usize) -> Vec<Key> {
        if self.keys.contains(&key) {
            return Vec::new();
        }
        self.keys.push(key);
        let over = self.keys.len().saturating_sub(max.max(1));
        self.keys.drain(..over).collect()
    }

    /// The marker as a cache entry for `source`, kept for as long as retention allows (the
    /// cache caps it; it holds key hashes and header names, never a response byte).
    pub(super) fn entry(
        &self,
        source: Source,
        now: SystemTime,
        hold: std::time::Duration,
    ) -> Entry {
        let mut body = BytesMut::with_capacity(8 + 32 * self.keys.len());
        body.put_u64_le(self.generation);
        for k in &self.keys {
            body.put_slice(&k.0);
        }
        Entry {
            status: 200,
            headers: vec![("vary".into(), self.names.join(",").into_bytes())],
            body: Bytes::from(body),
            etag: None,
            note: MARKER.into(),
            source,
            created: now,
            fresh_until: now + hold,
            expires: now + hold,
            origin_age: 0,
            source_bytes: 0,
            source_format: "unknown".into(),
            source_etag: None,
        }
    }
}

/// Removes `key` and, when it holds a marker, every variant the marker lists; returns how
/// many shield entries went.
pub(super) async fn forget(st: &State, key: &Key) -> u64 {
    let Some(e) = st.cache.take(key).await else {
        return 0;
    };
    let mut n = u64::from(e.note == NOTE);
    if let Some(m) = Marker::of(&e) {
        for k in m.keys() {
            if st.cache.take(k).await.is_some() {
                n += 1;
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_and_stay_bounded() {
        let mut m = Marker::new(vec!["accept-language".into(), "x-foo".into()]);
        assert!(m.add(Key([1; 32]), 2).is_empty());
        assert!(m.add(Key([1; 32]), 2).is_empty(), "listed once");
        assert!(m.add(Key([2; 32]), 2).is_empty());
        assert_eq!(m.add(Key([3; 32]), 2), vec![Key([1; 32])]);
        assert_eq!(m.keys(), [Key([2; 32]), Key([3; 32])]);
        let src = crate::cache::key::source_of("h", "/p");
        let now = SystemTime::now();
        let e = m.entry(src, now, std::time::Duration::from_secs(60));
        assert_eq!(Marker::of(&e), Some(m.clone()));
        assert!(Marker::new(vec!["x".into()]).generation != m.generation);
        let mut not = e.clone();
        not.note = NOTE.into();
        assert_eq!(Marker::of(&not), None);
    }
}
