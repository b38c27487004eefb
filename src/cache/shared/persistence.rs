//! Whether Redis writes its data to disk (`CONFIG GET save` / `appendonly`), and what the
//! shared tier does about it: a warning, or under `cache.memory_only_promise` a refusal.

use super::SharedTier;
use std::sync::atomic::Ordering;

/// What Redis does with its data on disk (`CONFIG GET save` / `appendonly`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Persistence {
    /// Neither RDB snapshots nor an append-only file.
    Off,
    /// It writes to disk; what (e.g. `save "3600 1"`).
    On(String),
    /// It could not be asked (ACL, renamed CONFIG, unreachable).
    Unknown(String),
}

impl SharedTier {
    /// What Redis (every master) does with its data on disk.
    pub async fn persistence(&self) -> Persistence {
        let masters = match self.masters().await {
            Ok(m) => m,
            Err(e) => return Persistence::Unknown(e),
        };
        for m in masters {
            let asked = async {
                let mut c = self.direct(m).await?;
                let mut p = redis::pipe();
                p.cmd("CONFIG").arg("GET").arg("save");
                p.cmd("CONFIG").arg("GET").arg("appendonly");
                p.query_async::<(Vec<String>, Vec<String>)>(&mut c)
                    .await
                    .map_err(|e| e.to_string())
            };
            match asked.await {
                Ok((save, aof)) => {
                    let save = save.get(1).cloned().unwrap_or_default();
                    let aof = aof.get(1).cloned().unwrap_or_default();
                    if !save.trim().is_empty() {
                        return Persistence::On(format!("save \"{save}\""));
                    }
                    if aof.eq_ignore_ascii_case("yes") {
                        return Persistence::On("appendonly yes".into());
                    }
                }
                Err(e) => return Persistence::Unknown(e),
            }
        }
        Persistence::Off
    }

    /// Checks Redis' persistence and turns the tier off while it would break the promise.
    /// `Err` when it persists (or cannot be asked) and `memory_only_promise` is set.
    pub async fn verify(&self) -> Result<(), String> {
        let p = self.persistence().await;
        let problem = match &p {
            Persistence::Off => None,
            Persistence::On(what) => Some(format!("Redis writes its data to disk ({what})")),
            Persistence::Unknown(e) => {
                Some(format!("Redis' persistence could not be checked ({e})"))
            }
        };
        let Some(problem) = problem else {
            self.disabled.store(false, Ordering::Relaxed);
            return Ok(());
        };
        if self.promise {
            self.disabled.store(true, Ordering::Relaxed);
            return Err(format!(
                "{problem}: cache.memory_only_promise forbids the shared tier there; set `save \"\"` and `appendonly no` (docs/deployment.md)"
            ));
        }
        tracing::warn!(
            "shared tier: {problem}: sealed cached images may reach Redis' disk; set `save \"\"` and `appendonly no` to keep them in memory only (docs/deployment.md)"
        );
        Ok(())
    }

    /// The start-up check, from outside any runtime: refuses under the promise when Redis
    /// persists or cannot be asked; without it, a warning (the purge bus checks again on every
    /// connect).
    pub fn verify_at_start(&self) -> Result<(), String> {
        self.handle.block_on(self.verify())
    }
}
