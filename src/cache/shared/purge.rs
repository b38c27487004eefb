//! The shared tier's purge: every master's value names scanned, each value's sealed metadata
//! opened and matched, the matches unlinked; then a new purge epoch and the sealed message for
//! the other nodes ([`super::bus`]).

use super::{bus, count, describe, new_epoch, Clients, SharedTier};
use crate::cache::seal::{Header, HEADER_LEN};
use crate::cache::Selector;
use crate::telemetry::metrics;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long a whole purge may take (it scans every value name).
const PURGE_LIMIT: Duration = Duration::from_secs(30);
/// Bytes read of a value to open its metadata (more when it is longer).
const META_PROBE: usize = 4096;

impl SharedTier {
    /// The clients of every master (one for a single instance).
    pub(super) async fn masters(&self) -> Result<Vec<redis::Client>, String> {
        match &self.clients {
            Clients::Single(c) => Ok(vec![(**c).clone()]),
            Clients::Cluster(_, seeds) => {
                let nodes: String = self
                    .run("purge", |c| {
                        c.cmd(redis::cmd("CLUSTER").arg("NODES").clone())
                    })
                    .await
                    .map_err(describe)?;
                let seed = seeds.first().ok_or("no seed URL")?;
                master_urls(&nodes, seed)
                    .iter()
                    .map(|u| redis::Client::open(u.as_str()).map_err(|e| e.to_string()))
                    .collect()
            }
        }
    }

    /// Deletes every value the selector matches from Redis, moves the purge epoch and tells the
    /// other nodes. Returns how many values were deleted; `Err` when Redis could not be
    /// reached (the other nodes were not told).
    pub async fn purge(&self, sel: &Selector) -> Result<u64, String> {
        if self.disabled.load(Ordering::Relaxed) {
            return Err("the shared tier is off (Redis persists to disk)".into());
        }
        let started = Instant::now();
        let work = async {
            let mut n = 0;
            for m in self.masters().await? {
                n += self.purge_one(m, sel).await?;
            }
            let epoch = new_epoch()?;
            let msg = bus::Message {
                node: self.node,
                epoch: epoch.clone(),
                selector: sel.clone(),
            };
            let sealed = self
                .sealer
                .seal_message(bus::CONTEXT, &msg.encode())
                .ok_or("cannot seal the purge message")?;
            let (e, ch) = (self.epoch_name(), self.channel());
            let ep = epoch.clone();
            // Two commands, not a pipeline: a cluster refuses a pipeline across slots.
            self.run("publish", move |c| async move {
                c.clone()
                    .cmd::<()>(redis::cmd("SET").arg(e).arg(ep).clone())
                    .await?;
                c.cmd::<i64>(redis::cmd("PUBLISH").arg(ch).arg(sealed).clone())
                    .await
            })
            .await
            .map_err(describe)?;
            count("publish", "ok");
            self.set_epoch(epoch);
            Ok::<u64, String>(n)
        };
        let res = tokio::time::timeout(PURGE_LIMIT, work)
            .await
            .unwrap_or_else(|_| Err("timed out".into()));
        metrics::SHARED_SECONDS
            .with_label_values(&["purge"])
            .observe(started.elapsed().as_secs_f64());
        count("purge", if res.is_ok() { "ok" } else { "error" });
        res
    }

    /// Scans one master's value names and deletes the selected.
    async fn purge_one(&self, client: redis::Client, sel: &Selector) -> Result<u64, String> {
        let con = self.direct(client).await?;
        let pattern = format!("{}e:*", self.cfg.prefix);
        let mut cursor: u64 = 0;
        let mut n = 0u64;
        loop {
            let mut c = con.clone();
            let (next, names): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut c)
                .await
                .map_err(|e| e.to_string())?;
            let doomed = if *sel == Selector::All {
                names
            } else {
                self.selected(&con, names, sel).await?
            };
            if !doomed.is_empty() {
                let mut p = redis::pipe();
                for d in &doomed {
                    p.cmd("UNLINK").arg(d).ignore();
                }
                let mut c = con.clone();
                p.query_async::<()>(&mut c)
                    .await
                    .map_err(|e| e.to_string())?;
                n += doomed.len() as u64;
            }
            if next == 0 {
                return Ok(n);
            }
            cursor = next;
        }
    }

    /// The names among `names` whose sealed source the selector matches.
    async fn selected(
        &self,
        con: &redis::aio::MultiplexedConnection,
        names: Vec<String>,
        sel: &Selector,
    ) -> Result<Vec<String>, String> {
        // SCAN may return a batch without names (and an empty pipeline is an error).
        if names.is_empty() {
            return Ok(names);
        }
        let mut p = redis::pipe();
        for k in &names {
            p.cmd("GETRANGE").arg(k).arg(0).arg(META_PROBE - 1);
        }
        let mut c = con.clone();
        let heads: Vec<Vec<u8>> = p.query_async(&mut c).await.map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for (k, mut head) in names.into_iter().zip(heads) {
            let Some(fname) = self.parse_name(&k) else {
                continue;
            };
            let Some(h) = Header::parse(&head) else {
                continue;
            };
            let end = usize::try_from(h.meta_end()).unwrap_or(usize::MAX);
            if head.len() < end && end > HEADER_LEN {
                let mut c = con.clone();
                head = redis::cmd("GETRANGE")
                    .arg(&k)
                    .arg(0)
                    .arg(end - 1)
                    .query_async(&mut c)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            if let Some((_, _, e)) = self.sealer.open_meta(&fname, &head) {
                if sel.matches(&e.source) {
                    out.push(k);
                }
            }
        }
        Ok(out)
    }
}

/// The URLs of the masters in `CLUSTER NODES` output, with `seed`'s scheme and credentials.
fn master_urls(nodes: &str, seed: &str) -> Vec<String> {
    let (scheme, rest) = seed.split_once("://").unwrap_or(("redis", seed));
    let auth = rest
        .split('/')
        .next()
        .and_then(|h| h.rfind('@').map(|i| &h[..=i]))
        .unwrap_or("");
    nodes
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let flags = f.get(2)?;
            let ok = flags.split(',').any(|x| x == "master")
                && !flags.split(',').any(|x| x == "fail" || x == "noaddr");
            let addr = f.get(1)?.split('@').next()?;
            ok.then(|| format!("{scheme}://{auth}{addr}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masters_are_read_from_cluster_nodes_with_the_seeds_credentials() {
        let nodes = "\
07c3 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460
67ed 127.0.0.1:30002@40002 master - 0 1 2 connected 5461-10922
292f 127.0.0.1:30003@40003 master,fail - 0 1 3 connected 10923-16383
6ec2 127.0.0.1:30004@40004 slave 07c3 0 1 1 connected
";
        assert_eq!(
            master_urls(nodes, "redis://u:pw@127.0.0.1:30001/0"),
            [
                "redis://u:pw@127.0.0.1:30001",
                "redis://u:pw@127.0.0.1:30002"
            ]
        );
        assert_eq!(
            master_urls(nodes, "redis://h:1")[0],
            "redis://127.0.0.1:30001"
        );
    }
}
