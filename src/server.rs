//! Builds the pingora server from a validated configuration and runs it.

use crate::admin::Admin;
use crate::cache::Cache;
use crate::config::Config;
use crate::demo;
use crate::fetch::origin::{Origin, OriginTarget};
use crate::listener::Listener;
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

/// Removes expired entries of every store every `every` (the retention lag) and publishes
/// their usage gauges.
struct Sweeper {
    /// `(store label, cache)`: `variants` (the proxy's cache), `uploads` (the upload store).
    stores: Vec<(&'static str, Arc<Cache>)>,
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
            let stores = self.stores.clone();
            let scrub = last_scrub.elapsed() >= SCRUB_EVERY;
            if scrub {
                last_scrub = Instant::now();
            }
            // File deletes block: keep them off this runtime's reactor.
            let _ = tokio::task::spawn_blocking(move || {
                let now = SystemTime::now();
                for (store, cache) in &stores {
                    let removed = cache.sweep(now);
                    if *store == "uploads" && removed > 0 {
                        metrics::UPLOAD_LINKS
                            .with_label_values(&["expired"])
                            .inc_by(removed);
                    }
                    if scrub {
                        cache.scrub(now);
                    }
                    publish(store, &cache.stats());
                }
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

/// Loads the watermark files again when one changes; a file that no longer loads keeps the
/// previous marks.
struct MarksWatcher {
    marks: Arc<crate::image::marks::LiveMarks>,
    poll: Duration,
}

#[async_trait]
impl BackgroundService for MarksWatcher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut tick = tokio::time::interval(self.poll);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tick.tick() => match self.marks.reload_if_changed() {
                    Ok(true) => tracing::info!("watermarks reloaded"),
                    Ok(false) => {}
                    Err(errors) => tracing::error!(?errors, "watermarks not reloaded, the old ones stay"),
                },
            }
        }
    }
}

/// Publishes one store's usage gauges (`store` = `variants` or `uploads`).
fn publish(store: &str, s: &crate::cache::Stats) {
    use crate::telemetry::metrics::{CACHE_BYTES, CACHE_ENTRIES, CACHE_OLDEST};
    let g = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    for (tier, bytes, entries) in [
        ("memory", s.memory_bytes, s.memory_entries),
        ("disk", s.disk_bytes, s.disk_entries),
    ] {
        CACHE_BYTES.with_label_values(&[store, tier]).set(g(bytes));
        CACHE_ENTRIES
            .with_label_values(&[store, tier])
            .set(g(entries));
    }
    CACHE_OLDEST
        .with_label_values(&[store])
        .set(g(s.oldest_age_seconds.unwrap_or(0)));
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
    let mut cfg = cfg;
    let target = OriginTarget::parse(&cfg.origin.url).map_err(|e| anyhow!(e))?;
    let origin = match target {
        OriginTarget::Demo => {
            let addr = demo::start_in_background().context("starting the demo origin")?;
            if cfg.upload.listen.is_none() {
                cfg.upload.listen = Some(demo_upload_addr(&cfg));
            }
            // A text mark, so `watermark=` works in the demo without a logo file.
            if cfg.images.watermarks.is_empty() {
                cfg.images.watermarks.insert(
                    "default".into(),
                    crate::image::marks::WatermarkSpec {
                        file: None,
                        text: Some("pixgate demo".into()),
                        size: 28.0,
                        color: "ffffffe0".into(),
                        shadow: true,
                    },
                );
            }
            print_demo_banner(&cfg, addr);
            Origin::resolve("127.0.0.1", addr.port(), false, &cfg.origin)
        }
        OriginTarget::Http { host, port, tls } => Origin::resolve(&host, port, tls, &cfg.origin),
    }
    .map_err(|e| anyhow!(e))?;

    let conf = ServerConf {
        threads: cfg.server.threads,
        work_stealing: cfg.server.work_stealing,
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

    let shared = match &cfg.cache.shared {
        Some(sh) => {
            let tier = crate::cache::shared::SharedTier::new(sh, cfg.cache.memory_only_promise)
                .map_err(|e| anyhow!(e))?;
            tier.verify_at_start()
                .map_err(|e| anyhow!("cache.shared: {e}"))?;
            Some(tier)
        }
        None => None,
    };
    let cache = Arc::new(Cache::open_shared(&cfg.cache, shared.clone()).map_err(|e| anyhow!(e))?);
    let listen = cfg.listen.to_string();
    let admin = cfg.admin.listen;
    let token = cfg.admin.purge_token().map_err(|e| anyhow!(e))?;
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
    let secs = |d: crate::units::Dur| i64::try_from(d.get().as_secs()).unwrap_or(i64::MAX);
    metrics::CACHE_MAX_RETENTION
        .with_label_values(&["variants"])
        .set(secs(cfg.cache.max_retention));
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
    let mut app = pingora::proxy::http_proxy(&server.configuration, Pixgate::new(state.clone()));
    let h2c = state.cfg.server.h2c && state.cfg.tls.is_none();
    let mut options = pingora::apps::HttpServerOptions::default();
    options.h2c = h2c;
    app.server_options = Some(options);
    let write_buffer = usize::try_from(state_write_buffer).unwrap_or(usize::MAX);
    let mut proxy = Service::new(
        "pixgate proxy".to_string(),
        Guarded::new(app, header_timeout, conns, h2c, write_buffer),
    );
    // HTTP/1 responses gather in the connection's own buffer (`proxy::coalesce`), which sends
    // a header and an overflowing body in one write; pingora's buffer under it would split
    // them again. Under TLS it gathers the encrypted records instead, so it stays.
    let l4_write = if state.cfg.tls.is_some() {
        write_buffer
    } else {
        0
    };
    let mut listener =
        ListenerConfig::tcp(&listen).l4_buffer(L4BufferSettings::default().write(l4_write));
    if let Some(t) = &state.cfg.tls {
        let store = crate::tls::CertStore::open(t).map_err(|e| anyhow!("tls: {e}"))?;
        listener = listener.tls(store.settings(t.h2).map_err(|e| anyhow!("tls: {e}"))?);
        server.add_service(background_service(
            "tls certificate reloader",
            crate::tls::Reloader {
                store,
                cfg: t.clone(),
            },
        ));
    }
    proxy.add_listener(listener);
    server.add_service(proxy);
    let upload = match state.cfg.upload.listen {
        Some(addr) => {
            let u = Arc::new(upload_service(&state, rules.clone())?);
            metrics::CACHE_MAX_RETENTION
                .with_label_values(&["uploads"])
                .set(secs(state.cfg.upload.retention));
            server.add_service(background_service(
                "upload maintenance",
                UploadMaintenance(u.clone()),
            ));
            let mut svc = Service::new("pixgate upload".to_string(), Listener(u.clone()));
            svc.add_tcp(&addr.to_string());
            server.add_service(svc);
            tracing::info!(%addr, "upload service listening");
            Some(u)
        }
        None => None,
    };
    let mut stores = vec![("variants", cache.clone())];
    stores.extend(upload.as_ref().map(|u| ("uploads", u.store().clone())));
    if let Some(tier) = shared {
        // Other nodes' purges reach this node's tiers, uploads included.
        let local = stores.iter().map(|(_, c)| c.clone()).collect();
        crate::cache::shared::bus::start(tier, local);
    }
    server.add_service(background_service(
        "cache sweeper",
        Sweeper {
            stores,
            every: sweep,
        },
    ));
    if let Some(rules) = rules {
        server.add_service(background_service(
            "rules watcher",
            RulesWatcher { rules, poll },
        ));
    }
    if !state.marks.is_empty() {
        server.add_service(background_service(
            "watermark watcher",
            MarksWatcher {
                marks: state.marks.clone(),
                poll,
            },
        ));
    }
    if let Some(a) = admin {
        let admin = Admin::new(cache, token, ready, keepalive, paths)
            .with_uploads(upload.as_ref().map(|u| u.store().clone()));
        let mut svc = Service::new("pixgate admin".to_string(), Listener(admin));
        svc.add_tcp(&a.to_string());
        server.add_service(svc);
    }
    tracing::info!(%listen, "pixgate listening");
    server.run_forever()
}

/// Builds the upload service from the proxy's state: the same transform pool, telemetry,
/// trusted proxies and rules.
fn upload_service(
    state: &State,
    rules: Option<Arc<crate::rules::Rules>>,
) -> anyhow::Result<crate::upload::Upload> {
    let cfg = &state.cfg;
    crate::upload::Upload::new(crate::upload::Setup {
        cfg: cfg.upload.clone(),
        images: cfg.images.clone(),
        transform: cfg.transform,
        limits: state.header_limits,
        pool: state.pool.clone(),
        telemetry: state.telemetry.clone(),
        trusted: state.limits.trusted.clone(),
        keepalive: cfg.limits.keepalive_secs(),
        sweep_interval: cfg.cache.sweep_interval,
        rules,
    })
    .map_err(|e| anyhow!("upload: {e}"))
}

/// Forgets refilled upload quotas and reloads the screening list until shutdown.
struct UploadMaintenance(Arc<crate::upload::Upload>);

#[async_trait]
impl BackgroundService for UploadMaintenance {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        tokio::select! {
            _ = shutdown.changed() => {}
            _ = self.0.clone().maintain() => {}
        }
    }
}

/// The demo's upload address: the proxy's port + 2 on its host, or, when that port is
/// taken, any free port there.
fn demo_upload_addr(cfg: &Config) -> std::net::SocketAddr {
    let mut a = cfg.listen;
    a.set_port(cfg.listen.port().wrapping_add(2));
    let taken = |a: std::net::SocketAddr| {
        Some(a) == cfg.admin.listen || std::net::TcpListener::bind(a).is_err()
    };
    if a.port() < 1024 || taken(a) {
        a.set_port(0);
        if let Ok(l) = std::net::TcpListener::bind(a) {
            if let Ok(free) = l.local_addr() {
                return free;
            }
        }
    }
    a
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
    println!("  curl -s -o out.webp -H 'Accept: image/webp' 'http://{l}/samples/{first}?w=400&crop=0.6:0.6:sm&rotate=90&watermark=0.8:soea:10:10'");
    println!("  curl -s 'http://{l}/samples/{first}?info=1'");
    if let Some(u) = cfg.upload.listen {
        println!("pixgate: compression service on http://{u}/ (upload page), or:");
        println!("  curl -s -F file=@photo.jpg -F format=webp http://{u}/api/v1/images");
    }
}
