//! Per-address limits of the upload listener: requests (a token bucket, as `rate_limit`), and
//! the quotas uploads per hour and bytes per day (token buckets refilled evenly over their
//! period). All held in memory only, keyed by the address (IPv6 by its /64), and forgotten once
//! a bucket has refilled (the state of a fresh key): "IP used only for rate limiting".

use super::config::UploadConfig;
use crate::ratelimit::{ip_key, Bucket};
use crate::telemetry::metrics;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

/// Bytes are counted in KiB cells (a day of several GiB fits governor's u32 burst).
const CELL: u64 = 1024;

/// Which limit refused a request (the `pixgate_upload_limited_total` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `upload.rate_limit`.
    Requests,
    /// `upload.uploads_per_hour`.
    Uploads,
    /// `upload.bytes_per_day`.
    Bytes,
}

impl Limit {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Limit::Requests => "requests",
            Limit::Uploads => "uploads_per_hour",
            Limit::Bytes => "bytes_per_day",
        }
    }

    /// The message the uploader reads.
    pub fn message(self) -> &'static str {
        match self {
            Limit::Requests => "Too many requests from this address.",
            Limit::Uploads => "This address has reached its hourly upload limit.",
            Limit::Bytes => "This address has reached its daily upload volume.",
        }
    }
}

/// `n` cells per `period`, all of them at once after a quiet period.
fn spread(n: u64, period: Duration) -> Option<Quota> {
    let burst = NonZeroU32::new(u32::try_from(n).unwrap_or(u32::MAX))?;
    Quota::with_period(period / burst.get()).map(|q| q.allow_burst(burst))
}

fn bucket(b: Bucket) -> Option<Quota> {
    Some(Quota::per_second(NonZeroU32::new(b.rate)?).allow_burst(NonZeroU32::new(b.burst)?))
}

/// The live limiters.
pub struct Quotas {
    requests: Option<DefaultKeyedRateLimiter<IpAddr>>,
    uploads: Option<DefaultKeyedRateLimiter<IpAddr>>,
    bytes: Option<DefaultKeyedRateLimiter<IpAddr>>,
    clock: DefaultClock,
}

impl Quotas {
    /// From a validated section.
    pub fn new(cfg: &UploadConfig) -> Quotas {
        let hour = Duration::from_secs(3600);
        let day = Duration::from_secs(86_400);
        Quotas {
            requests: cfg.rate_limit.and_then(bucket).map(RateLimiter::keyed),
            uploads: cfg
                .uploads_per_hour
                .and_then(|n| spread(n.into(), hour))
                .map(RateLimiter::keyed),
            bytes: cfg
                .bytes_per_day
                .and_then(|b| spread(b.get() / CELL, day))
                .map(RateLimiter::keyed),
            clock: DefaultClock::default(),
        }
    }

    fn take(
        &self,
        l: &Option<DefaultKeyedRateLimiter<IpAddr>>,
        ip: IpAddr,
        n: u64,
        which: Limit,
    ) -> Result<(), (Limit, Duration)> {
        let Some(l) = l else { return Ok(()) };
        let n =
            NonZeroU32::new(u32::try_from(n.max(1)).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN);
        let refused = |wait| {
            metrics::UPLOAD_LIMITED
                .with_label_values(&[which.label()])
                .inc();
            (which, wait)
        };
        match l.check_key_n(&ip_key(ip), n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(refused(not_until.wait_time_from(self.clock.now()))),
            // More than the whole bucket: never possible; wait a full period.
            Err(_) => Err(refused(Duration::from_secs(3600))),
        }
    }

    /// One request from `ip` (any route).
    pub fn request(&self, ip: Option<IpAddr>) -> Result<(), (Limit, Duration)> {
        match ip {
            Some(ip) => self.take(&self.requests, ip, 1, Limit::Requests),
            None => Ok(()),
        }
    }

    /// `files` uploads of `bytes` in all from `ip`.
    pub fn upload(
        &self,
        ip: Option<IpAddr>,
        files: u64,
        bytes: u64,
    ) -> Result<(), (Limit, Duration)> {
        let Some(ip) = ip else { return Ok(()) };
        self.take(&self.uploads, ip, files, Limit::Uploads)?;
        self.take(&self.bytes, ip, bytes.div_ceil(CELL), Limit::Bytes)
    }

    /// Forgets every address whose buckets have refilled; returns how many are still held.
    pub fn forget_idle(&self) -> usize {
        [&self.requests, &self.uploads, &self.bytes]
            .into_iter()
            .flatten()
            .map(|l| {
                l.retain_recent();
                l.shrink_to_fit();
                l.len()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::ByteSize;

    fn cfg(per_hour: u32, per_day: u64) -> UploadConfig {
        UploadConfig {
            rate_limit: Some(Bucket { rate: 1, burst: 2 }),
            uploads_per_hour: Some(per_hour),
            bytes_per_day: Some(ByteSize(per_day)),
            ..UploadConfig::default()
        }
    }

    #[test]
    fn each_limit_refuses_with_a_wait_and_addresses_are_separate() {
        let q = Quotas::new(&cfg(3, 10 * 1024 * 1024));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(q.request(Some(a)).is_ok() && q.request(Some(a)).is_ok());
        let (which, wait) = q.request(Some(a)).unwrap_err();
        assert_eq!(which, Limit::Requests);
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        assert!(q.request(Some(b)).is_ok());
        // Three uploads an hour: two, then one, then refused for about 20 minutes.
        assert!(q.upload(Some(a), 2, 1000).is_ok());
        assert!(q.upload(Some(a), 1, 1000).is_ok());
        let (which, wait) = q.upload(Some(a), 1, 1000).unwrap_err();
        assert_eq!(which, Limit::Uploads);
        assert!(wait > Duration::from_secs(1000), "{wait:?}");
        // 10 MiB a day: 6 MiB, then 6 MiB more is refused.
        assert!(q.upload(Some(b), 1, 6 << 20).is_ok());
        assert_eq!(q.upload(Some(b), 1, 6 << 20).unwrap_err().0, Limit::Bytes);
        assert!(q.forget_idle() > 0);
    }
}
