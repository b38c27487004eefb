//! The shared tier: variants and shield responses kept in Redis for every node of a cluster
//! (docs/caching.md, "Shared tier"). After a node's memory and disk, before the origin.
//!
//! - **Sealed.** A value is the same sealed form as a disk file ([`Sealer::seal`]) under the
//!   cluster key; its name is `{prefix}e:` and a keyed MAC of the variant key, so Redis holds no
//!   readable path, header or pixel.
//! - **Retention.** Every value is SET with `PX` = the entry's remaining life, which the cache
//!   has already capped at its retention limit: Redis itself stops serving it then.
//! - **Coalescing.** A node about to make a variant first takes `{prefix}l:{name}` with
//!   `SET NX PX lock_ttl`; the others poll for the value until the lock is gone or `lock_wait`
//!   has passed, then make it themselves.
//! - **Purge.** [`SharedTier::purge`] scans the value names, opens each one's sealed metadata,
//!   deletes those the selector matches, moves the purge epoch and publishes the selector
//!   (sealed) for the other nodes' local tiers ([`bus`]).
//! - **Trouble loses nothing.** Every command has `timeout`; a circuit breaker skips Redis after
//!   `breaker.failures` failures in a row. A skipped or failed lookup is a miss, a failed store
//!   keeps the entry local.
//!
//! Commands run on a runtime of their own (one thread, `pixgate-redis`), so connection tasks
//! never depend on a request's runtime; sealing and opening run on the caller's.

pub mod breaker;
pub mod bus;
mod claim;
pub mod config;
mod persistence;
mod purge;

pub use claim::{Claim, Lock, Waited};
pub use persistence::Persistence;

use super::entry::Entry;
use super::key::Key;
use super::seal::{FileName, Sealer};
use crate::telemetry::metrics;
use breaker::{Breaker, Pass};
use config::{redact, SharedConfig};
use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, RedisError, RedisResult};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::OnceCell;

/// One connection: a single instance's (reconnecting) or a cluster's.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Conn {
    async fn cmd<T: redis::FromRedisValue>(mut self, c: Cmd) -> RedisResult<T> {
        match &mut self {
            Conn::Single(m) => c.query_async(m).await,
            Conn::Cluster(m) => c.query_async(m).await,
        }
    }

    async fn pipe<T: redis::FromRedisValue>(mut self, p: redis::Pipeline) -> RedisResult<T> {
        match &mut self {
            Conn::Single(m) => p.query_async(m).await,
            Conn::Cluster(m) => p.query_async(m).await,
        }
    }
}

#[derive(Clone)]
enum Clients {
    Single(Box<redis::Client>),
    Cluster(Box<redis::cluster::ClusterClient>, Vec<String>),
}

/// A failed or skipped command.
#[derive(Debug)]
enum Failed {
    Skipped,
    Timeout,
    Error(RedisError),
}

/// The shared tier.
pub struct SharedTier {
    cfg: SharedConfig,
    sealer: Sealer,
    /// This process's id in purge messages and lock tokens.
    node: [u8; 16],
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    clients: Clients,
    pool: Vec<OnceCell<Conn>>,
    next: AtomicUsize,
    locks: AtomicU64,
    breaker: Breaker,
    /// Set when Redis persists to disk under `memory_only_promise`: nothing goes to Redis.
    disabled: AtomicBool,
    /// The last operation failed: claims and stores wait for a lookup to succeed, so a request
    /// whose lookup just timed out does not wait again to claim and to store (one `timeout`
    /// per request, not three, until the breaker opens).
    failing: AtomicBool,
    /// `cache.memory_only_promise`.
    promise: bool,
    /// The purge epoch this node's local tiers are known to be consistent with.
    epoch: Mutex<Option<String>>,
}

impl Drop for SharedTier {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl SharedTier {
    /// Reads the cluster key and builds the clients; connects on first use. `promise`:
    /// `cache.memory_only_promise`.
    pub fn new(cfg: &SharedConfig, promise: bool) -> Result<Arc<SharedTier>, String> {
        let sealer = cluster_key(cfg)?;
        let urls = cfg.redis.list();
        let clients = if cfg.cluster {
            let c = redis::cluster::ClusterClient::builder(urls.clone())
                .connection_timeout(cfg.timeout.get())
                .response_timeout(cfg.timeout.get())
                .build()
                .map_err(|e| format!("cache.shared.redis: {e}"))?;
            Clients::Cluster(Box::new(c), urls)
        } else {
            let url = urls.first().ok_or("cache.shared.redis: no URL")?;
            let c = redis::Client::open(url.as_str())
                .map_err(|e| format!("cache.shared.redis: `{}`: {e}", redact(url)))?;
            Clients::Single(Box::new(c))
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("pixgate-redis")
            .enable_all()
            .build()
            .map_err(|e| format!("cache.shared: cannot start its runtime: {e}"))?;
        let mut node = [0u8; 16];
        getrandom::fill(&mut node).map_err(|e| format!("the OS random source failed: {e}"))?;
        Ok(Arc::new(SharedTier {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            sealer,
            node,
            clients,
            pool: (0..cfg.pool.max(1)).map(|_| OnceCell::new()).collect(),
            next: AtomicUsize::new(0),
            locks: AtomicU64::new(0),
            breaker: Breaker::new(cfg.breaker.failures, cfg.breaker.open_for.get()),
            disabled: AtomicBool::new(false),
            failing: AtomicBool::new(false),
            promise,
            epoch: Mutex::new(None),
            cfg: cfg.clone(),
        }))
    }

    /// Runs `work` on the tier's runtime, detached.
    pub fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        self.handle.spawn(work);
    }

    /// The settings.
    pub fn config(&self) -> &SharedConfig {
        &self.cfg
    }

    /// The value's name, `{prefix}e:{<mac>}`. The braces are a Redis Cluster hash tag: the
    /// value and its claim ([`SharedTier::lock_name`]) live in one slot, so one pipeline reads
    /// both.
    fn entry_name(&self, key: &Key) -> (FileName, String) {
        let n = self.sealer.name(key);
        let s = format!("{}e:{{{}}}", self.cfg.prefix, n.hex());
        (n, s)
    }

    /// The claim's name, `{prefix}l:{<mac>}`.
    fn lock_name(&self, name: &FileName) -> String {
        format!("{}l:{{{}}}", self.cfg.prefix, name.hex())
    }

    /// The MAC in a value's name.
    fn parse_name(&self, name: &str) -> Option<FileName> {
        let inner = name
            .strip_prefix(self.cfg.prefix.as_str())?
            .strip_prefix("e:{")?
            .strip_suffix('}')?;
        FileName::parse(inner)
    }

    fn epoch_name(&self) -> String {
        format!("{}epoch", self.cfg.prefix)
    }

    fn channel(&self) -> String {
        format!("{}purge", self.cfg.prefix)
    }

    /// A pooled connection, connected on first use (on the tier's runtime, where its driver
    /// task then lives).
    async fn conn(&self) -> RedisResult<Conn> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.pool.len();
        self.slot(i, self.cfg.timeout.get()).await
    }

    /// Pooled connection `i`, connecting it within `limit` when it has none yet.
    async fn slot(&self, i: usize, limit: Duration) -> RedisResult<Conn> {
        let c = self.pool[i % self.pool.len()]
            .get_or_try_init(|| {
                let clients = self.clients.clone();
                let task = self
                    .handle
                    .spawn(async move { connect(clients, limit).await });
                async move { task.await.map_err(|e| io_error(&e.to_string()))? }
            })
            .await?;
        Ok(c.clone())
    }

    /// Connects the whole pool off any request's path (at start, with a connection limit of
    /// at least 2 s), so the first requests pay no connection set-up inside their `timeout`.
    /// A slot that fails is connected on first use instead.
    pub(crate) async fn warm(&self) {
        let limit = self.cfg.timeout.get().max(Duration::from_secs(2));
        for i in 0..self.pool.len() {
            let _ = self.slot(i, limit).await;
        }
    }

    /// The limit of work off any request's path (the purge bus, purges, the persistence
    /// check): `timeout`, at least 1 s.
    fn background_limit(&self) -> Duration {
        self.cfg.timeout.get().max(Duration::from_secs(1))
    }

    /// A connection of its own to one server (a master, for a purge's scan or the persistence
    /// check), opened on the tier's runtime within [`SharedTier::background_limit`].
    async fn direct(
        &self,
        client: redis::Client,
    ) -> Result<redis::aio::MultiplexedConnection, String> {
        let t = self.background_limit();
        let cfg = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(t))
            .set_response_timeout(Some(t));
        self.handle
            .spawn(async move {
                client
                    .get_multiplexed_async_connection_with_config(&cfg)
                    .await
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    /// Runs one Redis operation with the timeout, the breaker and the metrics.
    async fn run<T, F, Fut>(&self, op: &'static str, f: F) -> Result<T, Failed>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>> + Send + 'static,
        T: Send + 'static,
    {
        if self.disabled.load(Ordering::Relaxed) {
            count(op, "skipped");
            return Err(Failed::Skipped);
        }
        let pass = self.breaker.pass(Instant::now());
        if pass == Pass::Skip {
            count(op, "skipped");
            return Err(Failed::Skipped);
        }
        let started = Instant::now();
        let work = async {
            let conn = self.conn().await?;
            self.handle
                .spawn(f(conn))
                .await
                .map_err(|e| io_error(&e.to_string()))?
        };
        let res = match tokio::time::timeout(self.cfg.timeout.get(), work).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) if e.is_timeout() => Err(Failed::Timeout),
            Ok(Err(e)) => Err(Failed::Error(e)),
            Err(_) => Err(Failed::Timeout),
        };
        metrics::SHARED_SECONDS
            .with_label_values(&[op])
            .observe(started.elapsed().as_secs_f64());
        let was_open = self.breaker.is_open();
        self.failing.store(res.is_err(), Ordering::Relaxed);
        let open = self.breaker.report(pass, res.is_ok(), Instant::now());
        metrics::SHARED_BREAKER_OPEN.set(i64::from(open));
        match &res {
            Err(Failed::Timeout) => count(op, "timeout"),
            Err(Failed::Error(e)) => {
                count(op, "error");
                tracing::debug!(op, error = %e, "shared tier: redis error");
            }
            _ => {}
        }
        if open && !was_open {
            tracing::warn!(
                open_for = %self.cfg.breaker.open_for,
                "shared tier: redis failing, skipped for a while (requests go on without it)"
            );
        } else if was_open && !open {
            tracing::info!("shared tier: redis answers again");
        }
        res
    }

    /// Whether a claim or store should be skipped: the last operation failed (a lookup, which
    /// every request makes first, clears this when Redis answers again).
    fn skip_after_failure(&self, op: &'static str) -> bool {
        let skip = self.failing.load(Ordering::Relaxed);
        if skip {
            count(op, "skipped");
        }
        skip
    }

    /// The fresh or stale entry for `key`, if Redis has it and it opens under the cluster key.
    pub async fn get(&self, key: &Key) -> Option<Entry> {
        let (name, rk) = self.entry_name(key);
        let got: Option<Vec<u8>> = self
            .run("get", move |c| c.cmd(redis::cmd("GET").arg(rk).clone()))
            .await
            .ok()?;
        self.opened("get", key, &name, got)
    }

    /// Opens a value read from Redis; counts the result.
    fn opened(
        &self,
        op: &'static str,
        key: &Key,
        name: &FileName,
        got: Option<Vec<u8>>,
    ) -> Option<Entry> {
        let Some(b) = got else {
            count(op, "miss");
            return None;
        };
        metrics::SHARED_BYTES
            .with_label_values(&["read"])
            .inc_by(b.len() as u64);
        match self.sealer.open(name, &b) {
            Some((k, e)) if k == *key && SystemTime::now() < e.expires => {
                count(op, "hit");
                Some(e)
            }
            _ => {
                count(op, "miss");
                None
            }
        }
    }

    /// Stores `e` under `key` until `e.expires` (Redis drops it then). `false` when it was not
    /// stored (expired, too large, Redis trouble).
    pub async fn put(&self, key: &Key, e: &Entry) -> bool {
        let Some(px) = e
            .expires
            .duration_since(SystemTime::now())
            .ok()
            .map(|d| d.as_millis())
            .filter(|ms| *ms > 0)
        else {
            return false;
        };
        let Some((_, sealed)) = self.sealer.seal(key, e) else {
            return false;
        };
        if sealed.len() as u64 > self.cfg.max_entry_bytes.get() {
            count("put", "too_large");
            return false;
        }
        if self.skip_after_failure("put") {
            return false;
        }
        let n = sealed.len() as u64;
        let (_, rk) = self.entry_name(key);
        let px = u64::try_from(px).unwrap_or(u64::MAX);
        let res = self
            .run("put", move |c| {
                let mut cmd = redis::cmd("SET");
                cmd.arg(rk).arg(sealed).arg("PX").arg(px);
                c.cmd::<()>(cmd)
            })
            .await;
        if res.is_ok() {
            count("put", "ok");
            metrics::SHARED_BYTES
                .with_label_values(&["written"])
                .inc_by(n);
        }
        res.is_ok()
    }

    /// Deletes `key`'s value.
    pub async fn delete(&self, key: &Key) -> bool {
        let (_, rk) = self.entry_name(key);
        let res = self
            .run("delete", move |c| {
                c.cmd::<i64>(redis::cmd("UNLINK").arg(rk).clone())
            })
            .await;
        if res.is_ok() {
            count("delete", "ok");
        }
        res.is_ok()
    }

    /// Reads and deletes `key`'s value in one command (`GETDEL`).
    pub async fn take(&self, key: &Key) -> Option<Entry> {
        let (name, rk) = self.entry_name(key);
        let got: Option<Vec<u8>> = self
            .run("delete", move |c| {
                c.cmd(redis::cmd("GETDEL").arg(rk).clone())
            })
            .await
            .ok()?;
        count("delete", "ok");
        self.opened("get", key, &name, got)
    }

    /// Reads the cluster's purge epoch (creating one when Redis has none, e.g. after a restart).
    async fn current_epoch(&self) -> Result<String, String> {
        let fresh = new_epoch()?;
        let e = self.epoch_name();
        self.run("get", move |c| {
            let mut p = redis::pipe();
            p.cmd("SET").arg(&e).arg(fresh).arg("NX").ignore();
            p.cmd("GET").arg(&e);
            c.pipe::<(String,)>(p)
        })
        .await
        .map(|(s,)| s)
        .map_err(describe)
    }

    fn set_epoch(&self, e: String) -> Option<String> {
        self.epoch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(e)
    }

    /// Whether the breaker is open (Redis is being skipped).
    pub fn breaker_open(&self) -> bool {
        self.breaker.is_open()
    }

    /// Whether the tier is off because Redis persists under `memory_only_promise`.
    pub fn disabled(&self) -> bool {
        self.disabled.load(Ordering::Relaxed)
    }
}

/// Opens a connection of the configured kind.
async fn connect(clients: Clients, timeout: Duration) -> RedisResult<Conn> {
    match clients {
        Clients::Single(c) => {
            let c = *c;
            let cfg = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout))
                .set_number_of_retries(2)
                .set_max_delay(Duration::from_millis(500));
            ConnectionManager::new_with_config(c, cfg)
                .await
                .map(Conn::Single)
        }
        Clients::Cluster(c, _) => c.get_async_connection().await.map(Conn::Cluster),
    }
}

/// The cluster key, from `key_file` or `key_env`.
fn cluster_key(cfg: &SharedConfig) -> Result<Sealer, String> {
    let bad = "a cluster key is 32 raw bytes or 64 hex digits";
    if let Some(p) = &cfg.key_file {
        let b =
            std::fs::read(p).map_err(|e| format!("cache.shared.key_file: {}: {e}", p.display()))?;
        return Sealer::from_secret(&b)
            .ok_or_else(|| format!("cache.shared.key_file: {}: {bad}", p.display()));
    }
    if let Some(v) = &cfg.key_env {
        let s = std::env::var(v)
            .map_err(|_| format!("cache.shared.key_env: the variable {v} is not set"))?;
        return Sealer::from_secret(s.trim().as_bytes())
            .ok_or_else(|| format!("cache.shared.key_env: {v}: {bad}"));
    }
    Err("cache.shared: a cluster key is required (key_file or key_env)".into())
}

fn new_epoch() -> Result<String, String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| format!("the OS random source failed: {e}"))?;
    Ok(hex(&b))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn io_error(m: &str) -> RedisError {
    RedisError::from(std::io::Error::other(m.to_string()))
}

fn describe(f: Failed) -> String {
    match f {
        Failed::Skipped => "redis is being skipped (breaker open)".into(),
        Failed::Timeout => "redis timed out".into(),
        Failed::Error(e) => e.to_string(),
    }
}

fn count(op: &str, result: &str) {
    metrics::SHARED_OPS.with_label_values(&[op, result]).inc();
}
