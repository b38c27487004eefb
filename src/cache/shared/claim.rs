//! Cluster-wide coalescing: a node claims the making of a variant (`SET NX PX lock_ttl`);
//! the others poll for its value until it lands, the claim ends without one, or their wait
//! runs out. The claim is released, only if still this node's, when its [`Lock`] is dropped.

use super::{count, hex, SharedTier};
use crate::cache::entry::Entry;
use crate::cache::key::Key;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The outcome of [`SharedTier::claim`].
pub enum Claim {
    /// This node makes the variant; dropping the lock releases it.
    Mine(Lock),
    /// Another node is making it.
    Busy,
    /// Redis could not be asked: go on alone.
    Unavailable,
}

/// What [`SharedTier::wait`] saw.
pub enum Waited {
    /// The other node's entry.
    Entry(Box<Entry>),
    /// The claim is gone without a value (that node's response could not be stored, or it
    /// failed), or Redis failed: make it here.
    Released,
    /// The wait's limit passed with the claim still held.
    TimedOut,
}

/// A held claim on a variant; released (only if still ours) when dropped.
pub struct Lock {
    tier: Arc<SharedTier>,
    name: String,
    token: String,
}

impl Drop for Lock {
    fn drop(&mut self) {
        let tier = self.tier.clone();
        let (name, token) = (
            std::mem::take(&mut self.name),
            std::mem::take(&mut self.token),
        );
        self.tier
            .handle
            .spawn(async move { tier.release(name, token).await });
    }
}

impl SharedTier {
    /// Claims the making of `key`'s variant for this node (`SET NX PX lock_ttl`).
    pub async fn claim(self: &Arc<Self>, key: &Key) -> Claim {
        if self.skip_after_failure("lock") {
            return Claim::Unavailable;
        }
        let name = self.lock_name(&self.entry_name(key).0);
        let n = self.locks.fetch_add(1, Ordering::Relaxed);
        let token = format!("{}-{n}", hex(&self.node));
        let ttl = u64::try_from(self.cfg.lock_ttl.get().as_millis()).unwrap_or(u64::MAX);
        let (nm, tk) = (name.clone(), token.clone());
        let res = self
            .run("lock", move |c| {
                let mut cmd = redis::cmd("SET");
                cmd.arg(nm).arg(tk).arg("NX").arg("PX").arg(ttl);
                c.cmd::<Option<String>>(cmd)
            })
            .await;
        match res {
            Ok(Some(_)) => {
                count("lock", "ok");
                Claim::Mine(Lock {
                    tier: self.clone(),
                    name,
                    token,
                })
            }
            Ok(None) => {
                count("lock", "busy");
                Claim::Busy
            }
            Err(_) => Claim::Unavailable,
        }
    }

    /// Waits up to `limit` for another node's value of `key`.
    pub async fn wait(&self, key: &Key, limit: Duration) -> Waited {
        let (name, rk) = self.entry_name(key);
        let lock = self.lock_name(&name);
        let end = Instant::now() + limit;
        let mut pause = Duration::from_millis(5);
        loop {
            let (k, l) = (rk.clone(), lock.clone());
            let polled: Result<(Option<Vec<u8>>, bool), _> = self
                .run("get", move |c| {
                    let mut p = redis::pipe();
                    p.cmd("GET").arg(k).cmd("EXISTS").arg(l);
                    c.pipe(p)
                })
                .await;
            let Ok((got, held)) = polled else {
                return Waited::Released;
            };
            if got.is_some() || !held {
                return match self.opened("get", key, &name, got) {
                    Some(e) => Waited::Entry(Box::new(e)),
                    None => Waited::Released,
                };
            }
            let now = Instant::now();
            if now >= end {
                return Waited::TimedOut;
            }
            tokio::time::sleep(pause.min(end - now)).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Releases a lock if this node still holds it.
    async fn release(&self, name: String, token: String) {
        const SCRIPT: &str =
            "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('UNLINK', KEYS[1]) else return 0 end";
        let _ = self
            .run("lock", move |c| {
                let mut cmd = redis::cmd("EVAL");
                cmd.arg(SCRIPT).arg(1).arg(name).arg(token);
                c.cmd::<i64>(cmd)
            })
            .await;
    }
}
