//! The purge bus: a purge on one node reaches every other node's memory and disk tiers through
//! a Redis pub/sub channel (`{prefix}purge`), in a message sealed under the cluster key (so
//! Redis and its other clients learn no path, and nobody without the key can purge).
//!
//! A node that loses its subscription may miss purges. Every purge also moves the cluster's
//! purge epoch (`{prefix}epoch`, a random value); a node that (re)subscribes compares it with
//! the one its tiers are consistent with and drops its local tiers when they differ, or when it
//! has none yet and holds entries (e.g. a disk tier kept across a restart). A Redis restarted
//! without persistence has lost the epoch: a new one is drawn, and every node drops.

use super::{hex, SharedTier};
use crate::cache::{Cache, Selector};
use crate::telemetry::metrics;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;

/// Associated data of sealed purge messages.
pub const CONTEXT: &[u8] = b"pixgate purge v1";

/// How often the subscription is pinged; a silent connection is noticed within this plus the
/// timeout.
const PING_EVERY: Duration = Duration::from_millis(500);

/// One purge, as published.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The node that purged (it has applied it already).
    pub node: [u8; 16],
    /// The purge epoch it set.
    pub epoch: String,
    /// What was purged.
    pub selector: Selector,
}

impl Message {
    /// `node | epoch | kind | host | value`, each variable part prefixed with its u32 length.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Vec::with_capacity(64);
        w.extend_from_slice(&self.node);
        let (kind, host, value): (u8, Option<&str>, &str) = match &self.selector {
            Selector::Url { host, path } => (1, host.as_deref(), path),
            Selector::Prefix { host, prefix } => (2, host.as_deref(), prefix),
            Selector::Tag(t) => (3, None, t),
            Selector::All => (4, None, ""),
        };
        w.push(kind);
        for part in [
            self.epoch.as_bytes(),
            &[u8::from(host.is_some())],
            host.unwrap_or("").as_bytes(),
            value.as_bytes(),
        ] {
            w.extend_from_slice(&(part.len() as u32).to_le_bytes());
            w.extend_from_slice(part);
        }
        w
    }

    /// Reads what [`Message::encode`] wrote; `None` for anything else.
    pub fn decode(b: &[u8]) -> Option<Message> {
        let (node, mut r) = b.split_first_chunk::<16>()?;
        let (&kind, rest) = r.split_first()?;
        r = rest;
        let mut part = || -> Option<String> {
            let (n, rest) = r.split_first_chunk::<4>()?;
            let n = usize::try_from(u32::from_le_bytes(*n)).ok()?;
            let (v, rest) = (rest.get(..n)?, rest.get(n..)?);
            r = rest;
            String::from_utf8(v.to_vec()).ok()
        };
        let epoch = part()?;
        let has_host = part()? == "\u{1}";
        let host = part()?;
        let value = part()?;
        let host = has_host.then_some(host);
        let selector = match kind {
            1 => Selector::Url { host, path: value },
            2 => Selector::Prefix {
                host,
                prefix: value,
            },
            3 => Selector::Tag(value),
            4 => Selector::All,
            _ => return None,
        };
        Some(Message {
            node: *node,
            epoch,
            selector,
        })
    }
}

/// Subscribes on the tier's runtime and applies other nodes' purges to `caches` (this node's
/// variant cache and upload store), for as long as the process lives.
pub fn start(tier: Arc<SharedTier>, caches: Vec<Arc<Cache>>) {
    let t = tier.clone();
    tier.handle.spawn(async move { run(t, caches).await });
}

async fn run(tier: Arc<SharedTier>, caches: Vec<Arc<Cache>>) {
    tier.warm().await;
    let mut backoff = Duration::from_millis(100);
    let mut seed = 0usize;
    loop {
        match subscribe(&tier, seed).await {
            Ok(pubsub) => {
                backoff = Duration::from_millis(100);
                if let Err(e) = tier.verify().await {
                    tracing::error!("shared tier off: {e}");
                }
                match tier.current_epoch().await {
                    Ok(epoch) => {
                        let known = tier.set_epoch(epoch.clone());
                        let held = caches.iter().any(|c| c.holds_entries());
                        let reason = match known {
                            Some(k) if k != epoch => Some("epoch"),
                            None if held => Some("reconnect"),
                            _ => None,
                        };
                        if let Some(reason) = reason {
                            drop_local(&caches, reason).await;
                        }
                        listen(&tier, &caches, pubsub).await;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "shared tier: cannot read the purge epoch")
                    }
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "shared tier: cannot subscribe to the purge bus");
                seed += 1;
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

async fn subscribe(tier: &SharedTier, seed: usize) -> Result<redis::aio::PubSub, String> {
    let client = match &tier.clients {
        super::Clients::Single(c) => (**c).clone(),
        super::Clients::Cluster(_, seeds) => {
            let u = seeds.get(seed % seeds.len().max(1)).ok_or("no seed URL")?;
            redis::Client::open(u.as_str()).map_err(|e| e.to_string())?
        }
    };
    let t = tier.background_limit();
    let mut ps = tokio::time::timeout(t, client.get_async_pubsub())
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| e.to_string())?;
    tokio::time::timeout(t, ps.subscribe(tier.channel()))
        .await
        .map_err(|_| "subscribe timed out".to_string())?
        .map_err(|e| e.to_string())?;
    Ok(ps)
}

/// Applies messages until the subscription ends or stops answering pings.
async fn listen(tier: &SharedTier, caches: &[Arc<Cache>], pubsub: redis::aio::PubSub) {
    let (mut sink, mut stream) = pubsub.split();
    let t = tier.background_limit();
    let mut tick = tokio::time::interval(PING_EVERY);
    loop {
        tokio::select! {
            msg = stream.next() => {
                let Some(msg) = msg else { return };
                let Some(m) = tier
                    .sealer
                    .open_message(CONTEXT, msg.get_payload_bytes())
                    .and_then(|b| Message::decode(&b))
                else {
                    tracing::warn!("shared tier: a purge message that does not open under the cluster key was ignored");
                    continue;
                };
                tier.set_epoch(m.epoch.clone());
                if m.node == tier.node {
                    continue;
                }
                apply(caches, m.selector).await;
                metrics::SHARED_PURGES_RECEIVED.inc();
            }
            _ = tick.tick() => {
                let pong = tokio::time::timeout(t, sink.ping::<redis::Value>()).await;
                if !matches!(pong, Ok(Ok(_))) {
                    tracing::debug!(node = %hex(&tier.node[..4]), "shared tier: purge bus lost");
                    return;
                }
            }
        }
    }
}

async fn apply(caches: &[Arc<Cache>], sel: Selector) {
    let caches = caches.to_vec();
    let _ = tokio::task::spawn_blocking(move || {
        for c in &caches {
            c.purge(&sel);
        }
    })
    .await;
}

async fn drop_local(caches: &[Arc<Cache>], reason: &'static str) {
    tracing::info!(
        reason,
        "shared tier: dropping this node's memory and disk tiers (purges may have been missed)"
    );
    apply(caches, Selector::All).await;
    metrics::SHARED_LOCAL_DROPS
        .with_label_values(&[reason])
        .inc();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_does_not_decode() {
        let sels = [
            Selector::Url {
                host: Some("a.example".into()),
                path: "/p/ü.jpg".into(),
            },
            Selector::Url {
                host: None,
                path: "/x".into(),
            },
            Selector::Prefix {
                host: None,
                prefix: "/img/".into(),
            },
            Selector::Tag("product-7".into()),
            Selector::All,
        ];
        for selector in sels {
            let m = Message {
                node: [3; 16],
                epoch: "e1".into(),
                selector,
            };
            let b = m.encode();
            assert_eq!(Message::decode(&b), Some(m.clone()));
            for cut in 0..b.len() {
                assert!(Message::decode(&b[..cut]).is_none() || cut == b.len());
            }
        }
        assert_eq!(Message::decode(&[0; 40]), None);
    }
}
