//! The bounded transform pool: at most N transforms run at once, each on a blocking thread, so
//! decoding and encoding never run on the network reactor. A request that cannot get a slot
//! within the queue timeout, or whose transform outlives the transform timeout, gets the
//! original bytes. An abandoned transform keeps its slot until it really ends, so CPU use stays
//! bounded even when clients give up.

use super::cost::EncodeCosts;
use super::pipeline::{self, Job, Outcome};
use super::Reason;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Holds a gauge one higher while alive (a transform queued or running, even if its request
/// is gone). The gauges are the caller's (telemetry registers them); none: nothing counted.
struct Gauged(Option<prometheus::IntGauge>);

impl Gauged {
    fn on(g: &Option<prometheus::IntGauge>) -> Gauged {
        if let Some(g) = g {
            g.inc();
        }
        Gauged(g.clone())
    }
}

impl Drop for Gauged {
    fn drop(&mut self) {
        if let Some(g) = &self.0 {
            g.dec();
        }
    }
}

/// A place in the queue: counted while alive.
struct InQueue<'a> {
    waiting: &'a std::sync::atomic::AtomicUsize,
    _gauge: Gauged,
}

impl Drop for InQueue<'_> {
    fn drop(&mut self) {
        self.waiting
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// A handle to the pool (cheap to clone).
#[derive(Clone, Debug)]
pub struct Pool {
    slots: Arc<Semaphore>,
    /// Requests waiting for a slot now, and how many may.
    waiting: Arc<std::sync::atomic::AtomicUsize>,
    max_waiting: usize,
    queue_timeout: Duration,
    transform_timeout: Duration,
    /// Transforms waiting for a slot / running now.
    gauges: (Option<prometheus::IntGauge>, Option<prometheus::IntGauge>),
    /// Encode time per output pixel, learnt from every transform run here.
    costs: Arc<EncodeCosts>,
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
    /// A pool of `slots` concurrent transforms, `max_waiting` more allowed to queue.
    pub(crate) fn new(
        slots: usize,
        max_waiting: usize,
        queue_timeout: Duration,
        transform_timeout: Duration,
    ) -> Pool {
        Pool {
            slots: Arc::new(Semaphore::new(slots.max(1))),
            waiting: Arc::default(),
            max_waiting,
            queue_timeout,
            transform_timeout,
            gauges: (None, None),
            costs: Arc::default(),
        }
    }

    /// What encodes have cost per output pixel in this pool.
    pub fn costs(&self) -> &EncodeCosts {
        &self.costs
    }

    /// The same pool, counting transforms waiting and running in these gauges.
    #[must_use]
    pub(crate) fn with_gauges(
        mut self,
        queued: prometheus::IntGauge,
        running: prometheus::IntGauge,
    ) -> Pool {
        self.gauges = (Some(queued), Some(running));
        self
    }

    /// Runs `job` with the pool's limits. The job's deadline is set here.
    pub async fn run(&self, mut job: Job) -> PoolResult {
        use std::sync::atomic::Ordering;
        let t0 = Instant::now();
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(p) => Ok(Ok(p)),
            Err(_) => {
                // Join the queue only while it has room; a full queue answers at once.
                let joined = self
                    .waiting
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                        (w < self.max_waiting).then_some(w + 1)
                    })
                    .is_ok();
                if !joined {
                    return PoolResult {
                        outcome: Outcome::Original(Reason::Overloaded),
                        queued: Duration::ZERO,
                        ran: Duration::ZERO,
                    };
                }
                // Leaves the queue when dropped, also if the request is abandoned.
                let place = InQueue {
                    waiting: &self.waiting,
                    _gauge: Gauged::on(&self.gauges.0),
                };
                let p =
                    tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned())
                        .await;
                drop(place);
                p
            }
        };
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
        let running = Gauged::on(&self.gauges.1);
        let costs = self.costs.clone();
        let handle = tokio::task::spawn_blocking(move || {
            let out = pipeline::run(&job);
            if let Outcome::Transformed {
                format,
                width,
                height,
                timings,
                ..
            } = &out
            {
                let pixels = u64::from(*width) * u64::from(*height);
                costs.record(*format, timings.encode, pixels * u64::from(timings.frames));
            }
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
