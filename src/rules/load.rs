//! Loading a rules directory: listing files, parsing, semantic validation and
//! error reporting.
//!
//! Every problem in every file is collected (a file that fails to parse does
//! not stop the others from being checked) and reported as a [`LoadError`]
//! naming the file, the 1-based line when known and the dotted key path.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::model::{PresetMap, Rule, RuleFile, RuleSet};
use super::validate::{self, RuleCheck};
use crate::located::{is_blank_yaml, locate, locate_nth, KeyPath};

/// One problem found while loading rule files: the located error shared with the
/// configuration (file, line, key path, message).
pub use crate::located::Error as LoadError;
/// All problems found by one load, in file order then position.
pub use crate::located::Errors as LoadErrors;

/// `true` for names the loader reads: `*.yaml` / `*.yml`, not hidden
/// (editor lock/backup files such as `.#x.yaml` are skipped).
pub(crate) fn is_rule_file_name(name: &str) -> bool {
    !name.starts_with('.') && (name.ends_with(".yaml") || name.ends_with(".yml"))
}

/// Rule files of `dir` sorted by file name. A missing directory has none;
/// directories named `*.yaml` are skipped, anything else that cannot be
/// inspected is kept so that reading it reports the problem.
pub(crate) fn rule_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        if !name.to_str().is_some_and(is_rule_file_name) {
            continue;
        }
        let path = entry.path();
        if std::fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        files.push(path);
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

impl RuleSet {
    /// Loads every `*.yaml` / `*.yml` file of `dir` (in file name order).
    /// A missing or empty directory gives an empty set.
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<RuleSet, LoadErrors> {
        load_dir(dir.as_ref())
    }
}

/// See [`RuleSet::load_dir`].
pub fn load_dir(dir: &Path) -> Result<RuleSet, LoadErrors> {
    let files = rule_files(dir).map_err(|e| {
        LoadErrors(vec![LoadError::whole_file(
            dir,
            format!("cannot list rules directory: {e}"),
        )])
    })?;
    let mut loader = Loader::default();
    for file in files {
        match std::fs::read_to_string(&file) {
            Ok(text) => loader.add_file(&file, &text),
            Err(e) => loader.errors.push(LoadError::whole_file(
                file,
                format!("cannot read file: {e}"),
            )),
        }
    }
    loader.finish()
}

/// Accumulates rules, presets and errors across files.
#[derive(Default)]
struct Loader {
    rules: Vec<Rule>,
    presets: BTreeMap<String, String>,
    /// Where each rule name / global preset name was first defined.
    rule_sites: HashMap<String, String>,
    preset_sites: HashMap<String, String>,
    errors: Vec<LoadError>,
}

/// `file:line` (or `file`) for "first defined in ..." messages.
fn site(file: &Path, line: Option<usize>) -> String {
    match line {
        Some(line) => format!("{}:{line}", file.display()),
        None => file.display().to_string(),
    }
}

impl Loader {
    fn error(&mut self, file: &Path, text: &str, key: &KeyPath, message: String) {
        self.errors.push(LoadError {
            file: file.to_path_buf(),
            line: locate(text, key),
            key: key.to_string(),
            message,
        });
    }

    fn add_file(&mut self, file: &Path, text: &str) {
        let start = self.errors.len();
        self.check_file(file, text);
        // Within a file, report in line order (stable for equal lines).
        self.errors[start..].sort_by_key(|e| e.line);
    }

    fn check_file(&mut self, file: &Path, text: &str) {
        let parsed = match parse(text) {
            Ok(parsed) => parsed,
            Err((key, line, message)) => {
                self.errors.push(LoadError {
                    file: file.to_path_buf(),
                    line: line.or_else(|| locate(text, &key)),
                    key: key.to_string(),
                    message,
                });
                return;
            }
        };
        let root = KeyPath::default();
        let presets = self.check_presets(file, text, &root.key("presets"), &parsed.presets);
        for (name, value) in presets {
            let key = root.key("presets").key(&name);
            let line = locate(text, &key);
            if let Some(first) = self.preset_sites.get(&name) {
                let msg = format!(
                    "preset `{name}` is already defined in {first} (file-level preset names must be unique across files)"
                );
                self.error(file, text, &key, msg);
            } else {
                self.preset_sites.insert(name.clone(), site(file, line));
                self.presets.insert(name, value);
            }
        }
        for (i, spec) in parsed.rules.into_iter().enumerate() {
            let base = root.key("rules").index(i);
            let name_key = base.key("name");
            let name_line = locate(text, &name_key);
            if let Some(first) = self.rule_sites.get(&spec.name) {
                let msg = format!(
                    "duplicate rule name `{}` (first defined in {first})",
                    spec.name
                );
                self.error(file, text, &name_key, msg);
            } else {
                self.rule_sites
                    .insert(spec.name.clone(), site(file, name_line));
            }
            let local = self.check_presets(file, text, &base.key("presets"), &spec.presets);
            let checked = validate::check_rule(&spec);
            self.report(file, text, &base, &checked);
            let (Some(mut rule), true) = (checked.rule, checked.problems.is_empty()) else {
                continue;
            };
            rule.file = file.to_path_buf();
            rule.presets = local;
            self.rules.push(rule);
        }
    }

    /// Reports a rule's problems under `base` (e.g. `rules[3]`).
    fn report(&mut self, file: &Path, text: &str, base: &KeyPath, checked: &RuleCheck) {
        for (rel, message) in &checked.problems {
            let mut key = base.clone();
            key.0.extend(rel.0.iter().cloned());
            self.error(file, text, &key, message.clone());
        }
    }

    /// Validates preset names/values, returning the valid ones.
    fn check_presets(
        &mut self,
        file: &Path,
        text: &str,
        base: &KeyPath,
        presets: &PresetMap,
    ) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (name, value) in &presets.0 {
            let key = base.key(name);
            let count = seen.entry(name).or_default();
            *count += 1;
            if *count > 1 {
                self.errors.push(LoadError {
                    file: file.to_path_buf(),
                    line: locate_nth(text, &key, *count - 1),
                    key: key.to_string(),
                    message: format!("duplicate preset `{name}` in the same mapping"),
                });
                continue;
            }
            let problem = validate::check_name("preset name", name)
                .err()
                .or_else(|| validate::check_preset_value(value).err());
            match problem {
                Some(message) => self.error(file, text, &key, message),
                None => {
                    out.insert(name.clone(), value.clone());
                }
            }
        }
        out
    }

    fn finish(self) -> Result<RuleSet, LoadErrors> {
        if self.errors.is_empty() {
            Ok(RuleSet::new(self.rules, self.presets))
        } else {
            Err(LoadErrors(self.errors))
        }
    }
}

/// Parses one file; on failure returns (key path, serde line, message).
fn parse(text: &str) -> Result<RuleFile, (KeyPath, Option<usize>, String)> {
    if is_blank_yaml(text) {
        return Ok(RuleFile::default());
    }
    let de = serde_yaml_ng::Deserializer::from_str(text);
    serde_path_to_error::deserialize::<_, Option<RuleFile>>(de)
        .map(Option::unwrap_or_default)
        .map_err(|e| {
            let mut key = KeyPath::from_serde(e.path());
            let inner = e.into_inner();
            let mut line = inner.location().map(|l| l.line()).filter(|&l| l > 0);
            let message = clean_message(&inner.to_string(), &key.to_string());
            // serde points a duplicate field at its mapping; point at the
            // second occurrence of the field instead.
            let dup = message.strip_prefix("duplicate field `");
            if let Some(field) = dup.and_then(|m| m.strip_suffix('`')) {
                key = key.key(field);
                line = locate_nth(text, &key, 1).or(line);
            }
            (key, line, message)
        })
}

/// Drops serde_yaml_ng's ` at line X column Y` / ` at position N` suffixes
/// and its own `path: ` prefix (when it is a prefix of our key path `key`).
fn clean_message(msg: &str, key: &str) -> String {
    let mut rest = match msg.split_once(": ") {
        Some((prefix, tail)) if !prefix.is_empty() && key.starts_with(prefix) => tail,
        _ => msg,
    };
    let mut out = String::with_capacity(rest.len());
    while let Some(pos) = rest.find(" at ") {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos + 4..];
        match skip_mark(tail) {
            Some(after) => rest = after,
            None => {
                out.push_str(" at ");
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

/// If `s` starts with `line N column M` or `position N`, the text after it.
fn skip_mark(s: &str) -> Option<&str> {
    fn digits(s: &str) -> Option<&str> {
        let rest = s.trim_start_matches(|c: char| c.is_ascii_digit());
        (rest.len() < s.len()).then_some(rest)
    }
    if let Some(s) = s.strip_prefix("line ") {
        digits(digits(s)?.strip_prefix(" column ")?)
    } else {
        digits(s.strip_prefix("position ")?)
    }
}
