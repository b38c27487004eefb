//! Builds the pingora server from a validated configuration and runs it.

use crate::config::Config;
use crate::demo;
use crate::proxy::origin::{Origin, OriginTarget};
use crate::proxy::{Pixgate, State};
use crate::telemetry::metrics;
use anyhow::{anyhow, Context};
use pingora::server::configuration::ServerConf;
use pingora::server::Server;
use std::sync::Arc;

/// Resolves the origin (starting the demo origin when asked), binds the listeners and serves
/// until SIGINT / SIGTERM / SIGQUIT.
pub fn run(cfg: Config) -> anyhow::Result<()> {
    metrics::init();
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
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    let listen = cfg.listen.to_string();
    let admin = cfg.admin.listen;
    let state = Arc::new(State::new(cfg, origin));
    let mut proxy = pingora::proxy::http_proxy_service(&server.configuration, Pixgate::new(state));
    proxy.add_tcp(&listen);
    server.add_service(proxy);
    if let Some(a) = admin {
        let mut prom = pingora_prometheus::prometheus_http_service();
        prom.add_tcp(&a.to_string());
        server.add_service(prom);
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
