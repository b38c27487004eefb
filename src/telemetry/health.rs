//! What `/readyz` reports: whether the origin answered recently (any HTTP response counts;
//! a refused or timed-out connection does not), and an active probe when it has not been
//! asked lately.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How recent an origin answer must be for `/readyz` to trust it without a probe.
pub(crate) const RECENT: Duration = Duration::from_secs(30);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The last time the origin answered and the last time it failed (ms since the epoch; 0 =
/// never). Lock-free: updated on every origin exchange.
#[derive(Debug, Default)]
pub struct OriginHealth {
    last_ok: AtomicU64,
    last_err: AtomicU64,
}

/// The origin's state as `/readyz` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OriginState {
    /// It answered this long ago, with no failure since.
    Answered(Duration),
    /// The latest exchange failed.
    Failing,
    /// Nothing recent either way: probe.
    Unknown,
}

impl OriginHealth {
    /// The origin answered (any status).
    pub(crate) fn ok(&self) {
        self.last_ok.store(now_ms(), Ordering::Relaxed);
    }
    /// Connecting to or reading from the origin failed.
    pub(crate) fn failed(&self) {
        self.last_err.store(now_ms(), Ordering::Relaxed);
    }

    /// What the recorded exchanges say, `window` being "recently".
    pub(crate) fn state(&self, window: Duration) -> OriginState {
        let (ok, err, now) = (
            self.last_ok.load(Ordering::Relaxed),
            self.last_err.load(Ordering::Relaxed),
            now_ms(),
        );
        let w = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        if err > ok && now.saturating_sub(err) <= w {
            return OriginState::Failing;
        }
        if ok > 0 && now.saturating_sub(ok) <= w {
            return OriginState::Answered(Duration::from_millis(now.saturating_sub(ok)));
        }
        OriginState::Unknown
    }

    /// Connects to `addr` within `timeout`; records the result.
    pub async fn probe(&self, addr: SocketAddr, timeout: Duration) -> bool {
        let ok = matches!(
            tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await,
            Ok(Ok(_))
        );
        if ok {
            self.ok();
        } else {
            self.failed();
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_exchange_wins() {
        let h = OriginHealth::default();
        assert_eq!(h.state(RECENT), OriginState::Unknown);
        h.ok();
        assert!(matches!(h.state(RECENT), OriginState::Answered(_)));
        std::thread::sleep(Duration::from_millis(2));
        h.failed();
        assert_eq!(h.state(RECENT), OriginState::Failing);
        std::thread::sleep(Duration::from_millis(2));
        h.ok();
        assert!(matches!(h.state(RECENT), OriginState::Answered(_)));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(h.state(Duration::from_millis(1)), OriginState::Unknown);
    }

    #[tokio::test]
    async fn probe_connects() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let h = OriginHealth::default();
        assert!(
            h.probe(l.local_addr().unwrap(), Duration::from_secs(1))
                .await
        );
        let closed = l.local_addr().unwrap();
        drop(l);
        // Exchanges are ordered by their millisecond.
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert!(!h.probe(closed, Duration::from_secs(1)).await);
        assert_eq!(h.state(RECENT), OriginState::Failing);
    }
}
