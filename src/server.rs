//! Builds the pingora server from a validated configuration and runs it.

use crate::admin::Admin;
use crate::cache::Cache;
use crate::config::Config;
use crate::demo;
use crate::fetch::origin::{Origin, OriginTarget};
use crate::proxy::conns::ConnLimits;
use crate::proxy::deadline::Guarded;
use crate::proxy::{Pixgate, State};
use crate::telemetry::metrics;
use anyhow::{anyhow, Context};
use async_trait::async_trait;
use pingora::listeners::ListenerConfig;
use pingora::protocols::l4::stream::L4BufferSettings;
use pingora::server::configuration::ServerConf;
use pingora::server::{Server, ShutdownWatch};
use pingora::services::background::{background_service, BackgroundService};
use pingora::services::listening::Service;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How often the sweeper also walks the disk directory for strays.
const SCRUB_EVERY: Duration = Duration::from_secs(30);

/// Removes expired entries every `every` (the retention lag) and publishes usage gauges.
struct Sweeper {
    cache: Arc<Cache>,
    every: Duration,
}

#[async_trait]
impl BackgroundService for Sweeper {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_scrub = Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tick.tick() => {}
            }
            let cache = self.cache.clone();
            let scrub = last_scrub.elapsed() >= SCRUB_EVERY;
            if scrub {
                last_scrub = Instant::now();
            }
            // File deletes block: keep them off this runtime's reactor.
            let _ = tokio::task::spawn_blocking(move || {
                let now = SystemTime::now();
                cache.sweep(now);
                if scrub {
                    cache.scrub(now);
                }
                publish(&cache.stats());
            })
            .await;
        }
    }
}

/// Forgets rate-limit keys (client addresses) whose bucket has refilled, every second.
struct Forgetter {
    limits: Arc<crate::ratelimit::RateLimits>,
}

#[async_trait]
impl BackgroundService for Forgetter {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tick.tick() => self.limits.forget_idle(),
            }
        }
    }
}

/// Reloads the rules on SIGHUP and on file changes; a bad file keeps the old rules.
struct RulesWatcher {
    rules: Arc<crate::rules::Rules>,
    poll: Duration,
}

#[async_trait]
impl BackgroundService for RulesWatcher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let on_event = |e: crate::rules::ReloadEvent| match e {
            crate::rules::ReloadEvent::Reloaded { rules } => {
                metrics::RULES_RELOADS.with_label_values(&["ok"]).inc();
                metrics::RULES_LOADED.set(rules as i64);
                tracing::info!(rules, "rules reloaded");
            }
            crate::rules::ReloadEvent::Failed { errors } => {
                metrics::RULES_RELOADS.with_label_values(&["error"]).inc();
                tracing::error!("rules not reloaded, the old rules stay: {errors}");
            }
        };
        tokio::select! {
            _ = shutdown.changed() => {}
            _ = self.rules.clone().watch(self.poll, on_event) => {}
        }
    }
}

fn publish(s: &crate::cache::Stats) {
    use crate::telemetry::metrics::{CACHE_BYTES, CACHE_ENTRIES, CACHE_OLDEST};
    let g = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    CACHE_BYTES
        .with_label_values(&["memory"])
        .set(g(s.memory_bytes));
    CACHE_BYTES
        .with_label_values(&["disk"])
        .set(g(s.disk_bytes));
    CACHE_ENTRIES
        .with_label_values(&["memory"])
        .set(g(s.memory_entries));
    CACHE_ENTRIES
        .with_label_values(&["disk"])
        .set(g(s.disk_entries));
    CACHE_OLDEST.set(g(s.oldest_age_seconds.unwrap_or(0)));
}

/// Resolves the origin (starting the demo origin when asked), binds the listeners and serves
/// until SIGINT / SIGTERM / SIGQUIT.
pub fn run(cfg: Config, upgrade: bool) -> anyhow::Result<()> {
    metrics::init();
    let upgrade_sock = crate::upgrade::prepare(
        cfg.server.upgrade_sock.as_deref(),
        &crate::upgrade::Env::current(),
    )
    .map_err(|e| anyhow!(e))?;
    tracing::info!(upgrade_sock = %upgrade_sock.display(), "graceful-upgrade socket");
    let target = OriginTarget::parse(&cfg.origin.url).map_err(|e| anyhow!(e))?;
    let origin = match target {
        OriginTarget::Demo => {
            let addr = demo::start_in_background().context("starting the demo origin")?;
            print_demo_banner(&cfg, addr);
            Origin::resolve("127.0.0.1", addr.port(), &cfg.origin)
        }
        OriginTarget::Http { host, port } => Origin::resolve(&host, port, &cfg.origin),
    }
    .map_err(|e| anyhow!(e))?;

    let conf = ServerConf {
        threads: cfg.server.threads,
        grace_period_seconds: Some(cfg.server.grace_period.get().as_secs()),
        graceful_shutdown_timeout_seconds: Some(1),
        upgrade_sock: upgrade_sock.display().to_string(),
        ..ServerConf::default()
    };
    let opt = pingora::server::configuration::Opt {
        upgrade,
        ..Default::default()
    };
    let mut server = Server::new_with_opt_and_conf(Some(opt), conf);
    server.bootstrap();

    let cache = Arc::new(Cache::open(&cfg.cache).map_err(|e| anyhow!(e))?);
    let listen = cfg.listen.to_string();
    let admin = cfg.admin.listen;
    let token = cfg.admin.token.clone();
    let keepalive = cfg.limits.keepalive_secs();
    let paths = crate::path::Form::request(cfg.server.encoded_slashes);
    let sweep = cfg.cache.sweep_interval.get();
    let rules = match &cfg.rules.dir {
        Some(dir) => {
            let r = crate::rules::Rules::load(dir.clone()).map_err(|e| anyhow!("{e}"))?;
            metrics::RULES_LOADED.set(r.current().len() as i64);
            Some(Arc::new(r))
        }
        None => None,
    };
    let poll = cfg.rules.poll_interval.get();
    metrics::CACHE_MAX_RETENTION
        .set(i64::try_from(cfg.cache.max_retention.get().as_secs()).unwrap_or(i64::MAX));
    metrics::TRANSFORM_SLOTS.set(cfg.limits.max_concurrent_transforms as i64);
    let origin_addr = origin.addr;
    let state = Arc::new(State::new(cfg, origin, cache.clone(), rules.clone()));
    let ready = crate::admin::Readiness {
        telemetry: state.telemetry.clone(),
        origin: origin_addr,
        rules: rules.clone(),
    };
    server.add_service(background_service(
        "rate-limit forgetter",
        Forgetter {
            limits: state.limits.clone(),
        },
    ));
    let header_timeout = state.cfg.limits.header_timeout.get();
    let state_write_buffer = state.cfg.server.write_buffer.get();
    let l = &state.cfg.limits;
    // Per address only where the operator opted into per-address limits (docs/hardening.md).
    let per_ip = state
        .cfg
        .rate_limit
        .per_ip
        .map(|_| l.max_connections_per_ip);
    let conns = ConnLimits::new(l.max_connections, per_ip, state.limits.trusted.clone());
    let app = pingora::proxy::http_proxy(&server.configuration, Pixgate::new(state));
    let mut proxy = Service::new(
        "pixgate proxy".to_string(),
        Guarded::new(app, header_timeout, conns),
    );
    let write_buffer = usize::try_from(state_write_buffer).unwrap_or(usize::MAX);
    proxy.add_listener(
        ListenerConfig::tcp(&listen).l4_buffer(L4BufferSettings::default().write(write_buffer)),
    );
    server.add_service(proxy);
    server.add_service(background_service(
        "cache sweeper",
        Sweeper {
            cache: cache.clone(),
            every: sweep,
        },
    ));
    if let Some(rules) = rules {
        server.add_service(background_service(
            "rules watcher",
            RulesWatcher { rules, poll },
        ));
    }
    if let Some(a) = admin {
        let mut svc = Service::new(
            "pixgate admin".to_string(),
            Admin::new(cache, token, ready, keepalive, paths),
        );
        svc.add_tcp(&a.to_string());
        server.add_service(svc);
    }
    tracing::info!(%listen, "pixgate listening");
    server.run_forever()
}

fn print_demo_banner(cfg: &Config, origin: std::net::SocketAddr) {
    let l = cfg.listen;
    let first = demo::SAMPLES.first().map_or("photo.jpg", |s| s.name);
    println!("pixgate: demo origin on http://{origin}, proxy on http://{l}");
    println!("  open  http://{l}/  in a browser, or try:");
    println!(
        "  curl -sD- -o out.avif -H 'Accept: image/avif,image/webp,*/*' http://{l}/samples/{first}"
    );
    println!("  curl -sD- -o out.webp -H 'Accept: image/webp,*/*' http://{l}/samples/{first}");
    println!("  curl -sD- -o out.jpg  http://{l}/samples/{first}");
}
