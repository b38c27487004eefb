//! Request coalescing: the first miss for a variant becomes the leader and does the work; the
//! others wait for its result. A leader that ends without a shareable result (the response was
//! not cacheable, it failed, or its request was dropped) releases the waiters with `None`,
//! and each then fetches for itself.
//!
//! A key whose response could not be stored is remembered for a while (Varnish's
//! "hit-for-miss"): waiting for a leader there would only queue every concurrent request
//! behind one origin round trip and gain nothing, so its misses go to the origin at once
//! ([`Flights::uncacheable`]). Their responses are still judged, and a storable one ends the
//! mark ([`Flights::cacheable`]). A mark holds the key only, never a byte of a response.

use super::entry::Entry;
use super::key::Key;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

type Slot = watch::Receiver<Option<Option<Arc<Entry>>>>;

/// The variants being produced right now, and the keys not worth collapsing.
#[derive(Default)]
pub struct Flights {
    map: Arc<Mutex<HashMap<Key, Slot>>>,
    /// Keys whose last response could not be stored; `None`: always collapse.
    uncacheable: Option<moka::sync::Cache<Key, ()>>,
}

/// At most this many uncacheable keys are remembered (32 bytes each, plus moka's overhead).
const MAX_UNCACHEABLE: u64 = 100_000;

/// The outcome of [`Flights::join`].
pub enum Join {
    /// Do the work and [`Leader::finish`].
    Leader(Leader),
    /// Someone else is doing it: [`Follower::wait`].
    Follower(Follower),
}

/// The one request producing a variant. Dropping it without `finish` releases the waiters.
pub struct Leader {
    key: Key,
    tx: watch::Sender<Option<Option<Arc<Entry>>>>,
    map: Arc<Mutex<HashMap<Key, Slot>>>,
    done: bool,
    /// The cluster-wide claim (shared tier), released after the flight ends.
    claim: Option<super::shared::Lock>,
}

/// A request waiting for a leader.
pub struct Follower {
    rx: Slot,
}

impl Flights {
    /// Flights whose uncacheable keys are remembered for `window` (zero: not at all).
    pub fn new(window: Duration) -> Flights {
        let uncacheable = (!window.is_zero()).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(MAX_UNCACHEABLE)
                .time_to_live(window)
                .build()
        });
        Flights {
            map: Arc::default(),
            uncacheable,
        }
    }

    /// Whether `key`'s last response could not be stored (within the window): its misses go
    /// to the origin without waiting for each other.
    pub fn uncacheable(&self, key: &Key) -> bool {
        self.uncacheable
            .as_ref()
            .is_some_and(|c| c.contains_key(key))
    }

    /// Remembers that `key`'s response could not be stored.
    pub fn mark_uncacheable(&self, key: Key) {
        if let Some(c) = &self.uncacheable {
            c.insert(key, ());
        }
    }

    /// `key`'s response can be stored again: its misses collapse again.
    pub fn cacheable(&self, key: &Key) {
        if let Some(c) = &self.uncacheable {
            c.invalidate(key);
        }
    }

    /// Joins the flight for `key`, leading it when there is none.
    pub fn join(&self, key: Key) -> Join {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rx) = map.get(&key) {
            return Join::Follower(Follower { rx: rx.clone() });
        }
        let (tx, rx) = watch::channel(None);
        map.insert(key, rx);
        Join::Leader(Leader {
            key,
            tx,
            map: self.map.clone(),
            done: false,
            claim: None,
        })
    }

    /// Follows the flight for `key` when there is one (never leads).
    pub fn follow(&self, key: &Key) -> Option<Follower> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key).map(|rx| Follower { rx: rx.clone() })
    }

    /// Flights in progress.
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether no flight is in progress.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Leader {
    /// Holds the cluster-wide claim until the flight ends (so other nodes wait for this one).
    pub fn hold(&mut self, claim: Option<super::shared::Lock>) {
        self.claim = claim;
    }

    /// Takes the cluster-wide claim out, to be released once the entry is in Redis.
    pub fn take_claim(&mut self) -> Option<super::shared::Lock> {
        self.claim.take()
    }

    /// Publishes the result (`None`: not shareable) and ends the flight.
    pub fn finish(mut self, result: Option<Arc<Entry>>) {
        self.end(result);
    }

    fn end(&mut self, result: Option<Arc<Entry>>) {
        if self.done {
            return;
        }
        self.done = true;
        // Remove first: a request arriving after this point looks in the cache (already
        // filled by the leader) instead of joining a finished flight.
        if let Ok(mut m) = self.map.lock() {
            m.remove(&self.key);
        }
        let _ = self.tx.send(Some(result));
        // Other nodes stop waiting once the claim is gone: they find the entry in Redis (it was
        // stored before `finish`) or, without one, make it themselves.
        self.claim = None;
    }
}

impl std::fmt::Debug for Leader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leader").field("key", &self.key).finish()
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        self.end(None);
    }
}

/// What a follower got.
#[derive(Debug)]
pub enum Waited {
    /// The leader's entry.
    Entry(Arc<Entry>),
    /// The leader ended without a shareable result.
    Nothing,
    /// The wait timed out.
    TimedOut,
}

impl Follower {
    /// Waits up to `limit` for the leader.
    pub async fn wait(mut self, limit: Duration) -> Waited {
        match tokio::time::timeout(limit, self.rx.wait_for(|v| v.is_some())).await {
            Err(_) => Waited::TimedOut,
            Ok(Err(_)) => Waited::Nothing, // the leader vanished
            Ok(Ok(v)) => match v.as_ref().and_then(|r| r.clone()) {
                Some(e) => Waited::Entry(e),
                None => Waited::Nothing,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::entry::tests::sample;
    use super::*;
    use std::time::SystemTime;

    #[tokio::test]
    async fn followers_get_the_leaders_entry() {
        let f = Flights::default();
        let k = Key([1; 32]);
        let Join::Leader(lead) = f.join(k) else {
            panic!("first is leader")
        };
        let waiters: Vec<_> = (0..10)
            .map(|_| match f.join(k) {
                Join::Follower(w) => tokio::spawn(w.wait(Duration::from_secs(5))),
                Join::Leader(_) => panic!("only one leader"),
            })
            .collect();
        let e = Arc::new(sample(
            "/a",
            b"x",
            SystemTime::now(),
            Duration::from_secs(9),
        ));
        lead.finish(Some(e.clone()));
        for w in waiters {
            assert!(matches!(w.await.unwrap(), Waited::Entry(got) if got == e));
        }
        assert!(f.is_empty());
    }

    #[tokio::test]
    async fn a_dropped_leader_releases_followers() {
        let f = Flights::default();
        let k = Key([2; 32]);
        let lead = f.join(k);
        let Join::Follower(w) = f.join(k) else {
            panic!("second follows")
        };
        drop(lead);
        assert!(matches!(
            w.wait(Duration::from_secs(5)).await,
            Waited::Nothing
        ));
        assert!(
            matches!(f.join(k), Join::Leader(_)),
            "a new flight can start"
        );
    }

    #[test]
    fn uncacheable_keys_are_remembered_for_the_window_only() {
        let f = Flights::new(Duration::from_millis(300));
        let (a, b) = (Key([4; 32]), Key([5; 32]));
        f.mark_uncacheable(a);
        assert!(f.uncacheable(&a));
        assert!(!f.uncacheable(&b));
        f.cacheable(&a);
        assert!(!f.uncacheable(&a), "a storable response ends the mark");
        f.mark_uncacheable(b);
        std::thread::sleep(Duration::from_millis(400));
        assert!(!f.uncacheable(&b), "the mark expires");
        let off = Flights::default();
        off.mark_uncacheable(a);
        assert!(!off.uncacheable(&a), "a zero window keeps nothing");
    }

    #[tokio::test]
    async fn waiting_is_bounded() {
        let f = Flights::default();
        let k = Key([3; 32]);
        let _lead = f.join(k);
        let Join::Follower(w) = f.join(k) else {
            panic!("second follows")
        };
        assert!(matches!(
            w.wait(Duration::from_millis(20)).await,
            Waited::TimedOut
        ));
    }
}
