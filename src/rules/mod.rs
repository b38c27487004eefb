//! Per-site / per-path transformation rules.
//!
//! Rules are loaded from a directory of YAML files (`rules/*.yaml` and
//! `*.yml`, read in file name order; hidden files and other extensions are
//! ignored; a missing or empty directory is a valid empty rule set). Each
//! file may define `presets:` (named option strings shared by all rules) and
//! `rules:`. Unknown keys are errors. All problems of all files are reported
//! at once as ``file.yaml:LINE: key `rules[0].quality.webp`: message``.
//!
//! # Matching
//!
//! [`RuleSet::find`]`(host, path, source)` considers a rule matching when
//!
//! * its `hosts` globs (if any) match the host, after the host is lowercased
//!   and its `:port` (and a trailing `.`) removed; host globs are
//!   case-insensitive and `*` also matches dots (`*.example.com` matches
//!   `a.b.example.com` but not `example.com`);
//! * its `paths` globs (if any) match the path, with the query string (and
//!   fragment) removed; path globs use `literal_separator(true)`, so `*`
//!   stays within one `/` segment and `**` spans segments;
//! * its `source_formats` (if any) contain `source`; a rule with
//!   `source_formats` never matches when `source` is `None`.
//!
//! Empty lists (`hosts: []`, `paths: []`, `source_formats: []`) mean the
//! same as omitting the key.
//!
//! # Precedence
//!
//! The most specific matching rule wins, compared in this order:
//!
//! 1. host specificity: an exact (glob-free) host pattern that matched > a
//!    glob host pattern that matched > no host constraint;
//! 2. path specificity: the length (in chars) of the literal prefix, i.e.
//!    the chars before the first glob metacharacter `*`, `?`, `[` or `{`, of
//!    the matching path pattern with the longest such prefix (more is more
//!    specific); no path constraint counts as -1;
//! 3. a rule with `source_formats` beats one without;
//! 4. the rule loaded first (file name order, then position in the file)
//!    wins ties.
//!
//! # Presets
//!
//! [`RuleSet::preset`] looks a name up in the matched rule's own `presets`
//! first, then in the file-level `presets` of all files. A file-level preset
//! name defined in two files is a load error.
//!
//! # Reloading
//!
//! [`Rules`] holds the live [`RuleSet`] behind an `ArcSwap`:
//! [`Rules::reload`] swaps atomically on success and keeps the old set on
//! failure; [`Rules::watch`] reloads on SIGHUP and on file changes.

pub mod applied;
pub mod config;
pub mod load;
mod matcher;
pub mod model;
pub mod reload;
mod validate;

#[cfg(test)]
mod tests;

/// Rules name pixgate's own formats (lowercase in rule files).
pub use crate::image::format::{OutputFormat, SourceFormat};
pub use applied::Applied;
pub use load::{load_dir, LoadError, LoadErrors};
pub use model::{Quality, Rule, RuleSet};
pub use reload::{ReloadEvent, Rules};
