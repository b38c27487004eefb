//! The `rules` section: where rule files live and how often they are reloaded.

use crate::units::Dur;
use serde::{Deserialize, Serialize};

/// Where rules live and how they reload (docs/rules.md).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RulesConfig {
    /// Directory of `*.yaml` rule files; `null`: no rules (the global settings apply to every
    /// image). Errors at start are fatal; on reload a bad file keeps the old rules. Default `null`.
    pub dir: Option<std::path::PathBuf>,
    /// How often the directory is checked for changes (SIGHUP also reloads). Default `1s`.
    pub poll_interval: Dur,
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            dir: None,
            poll_interval: Dur::secs(1),
        }
    }
}
