//! The bounded transform pool: at most N transforms run at once, each on a blocking thread, so
//! decoding and encoding never run on the network reactor. A request that cannot get a slot
//! within the queue timeout, or whose transform outlives the transform timeout, gets the
//! original bytes. An abandoned transform keeps its slot until it really ends, so CPU use stays
//! bounded even when clients give up.

use super::pipeline::{self, Job, Outcome};
use super::Reason;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

use crate::telemetry::metrics;

/// Holds a gauge one higher while alive (a transform queued or running, even if its request
/// is gone).
struct Gauged(&'static prometheus::IntGauge);

impl Gauged {
    fn on(g: &'static prometheus::IntGauge) -> Gauged {
        g.inc();
        Gauged(g)
    }
}

impl Drop for Gauged {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A handle to the pool (cheap to clone).
#[derive(Clone, Debug)]
pub struct Pool {
    slots: Arc<Semaphore>,
    queue_timeout: Duration,
    transform_timeout: Duration,
}

/// What happened to one submission.
#[derive(Debug)]
pub struct PoolResult {
    /// The pipeline's outcome (or the timeout reason).
    pub outcome: Outcome,
    /// Time spent waiting for a slot.
    pub queued: Duration,
    /// Time from slot to result.
    pub ran: Duration,
}

impl Pool {
    /// A pool of `slots` concurrent transforms.
    pub fn new(slots: usize, queue_timeout: Duration, transform_timeout: Duration) -> Pool {
        Pool {
            slots: Arc::new(Semaphore::new(slots.max(1))),
            queue_timeout,
            transform_timeout,
        }
    }

    /// Runs `job` with the pool's limits. The job's deadline is set here.
    pub async fn run(&self, mut job: Job) -> PoolResult {
        let t0 = Instant::now();
        let waiting = Gauged::on(&metrics::TRANSFORMS_QUEUED);
        let permit =
            tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned()).await;
        drop(waiting);
        let permit = match permit {
            Ok(Ok(p)) => p,
            _ => {
                return PoolResult {
                    outcome: Outcome::Original(Reason::QueueTimeout),
                    queued: t0.elapsed(),
                    ran: Duration::ZERO,
                }
            }
        };
        let queued = t0.elapsed();
        let t1 = Instant::now();
        job.deadline = t1 + self.transform_timeout;
        let running = Gauged::on(&metrics::TRANSFORMS_RUNNING);
        let handle = tokio::task::spawn_blocking(move || {
            let out = pipeline::run(&job);
            drop(permit);
            drop(running);
            out
        });
        let outcome = match tokio::time::timeout(self.transform_timeout, handle).await {
            Ok(Ok(o)) => o,
            Ok(Err(_)) => Outcome::Original(Reason::EncodeFailed), // the task panicked
            Err(_) => Outcome::Original(Reason::Timeout),
        };
        PoolResult {
            outcome,
            queued,
            ran: t1.elapsed(),
        }
    }
}
