//! A real `redis-server` (Debian's package; `scripts/deps.sh test` installs it) on a loopback
//! port, with persistence off unless asked, killed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running redis-server.
pub struct Redis {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    args: Vec<String>,
    /// Its working directory (where it would write RDB/AOF files).
    pub dir: tempfile::TempDir,
}

/// The redis-server binary.
fn binary() -> PathBuf {
    for p in ["/usr/bin/redis-server", "/usr/local/bin/redis-server"] {
        if std::path::Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("redis-server is not installed: `scripts/deps.sh test` installs it (Debian package redis-server)");
}

impl Redis {
    /// Starts one with persistence off (`save ""`, `appendonly no`).
    pub fn start() -> Redis {
        Self::start_with(&["--save", "", "--appendonly", "no"])
    }

    /// Starts one with these extra arguments.
    pub fn start_with(extra: &[&str]) -> Redis {
        let mut r = Redis {
            child: None,
            port: super::free_port(),
            args: extra.iter().map(|s| s.to_string()).collect(),
            dir: tempfile::tempdir().expect("tempdir"),
        };
        r.restart();
        r
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A plain connection for inspection.
    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
            .expect("redis connection")
    }

    /// Stops it at once (SIGKILL: nothing is saved).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// (Re)starts it on the same port and waits until it answers PING.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new(binary())
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--protected-mode", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ok = redis::Client::open(self.url())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
                .is_ok();
            if ok {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Redis Cluster of three masters (no replicas) on loopback, persistence off.
pub struct RedisCluster {
    /// The masters.
    pub nodes: Vec<Redis>,
}

impl RedisCluster {
    /// Starts three cluster-enabled servers, joins them (`redis-cli --cluster create`) and waits
    /// for `cluster_state:ok`.
    pub fn start() -> RedisCluster {
        let nodes: Vec<Redis> = (0..3)
            .map(|_| {
                Redis::start_with(&[
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-node-timeout",
                    "2000",
                ])
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|r| format!("127.0.0.1:{}", r.port))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            out.status.success(),
            "cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = nodes.iter().all(|r| {
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query(&mut r.conn())
                    .unwrap_or_default();
                info.contains("cluster_state:ok")
            });
            if ok {
                return RedisCluster { nodes };
            }
            assert!(Instant::now() < deadline, "the cluster did not form");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The seed URLs.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|r| r.url()).collect()
    }

    /// Value names (`pg:e:*`) on every master.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let mut all = Vec::new();
        for r in &self.nodes {
            let k: Vec<String> = redis::cmd("KEYS")
                .arg(pattern)
                .query(&mut r.conn())
                .expect("KEYS");
            all.extend(k);
        }
        all
    }
}
