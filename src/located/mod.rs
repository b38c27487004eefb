//! Problems located in a YAML file: the one error type of the configuration file and of the
//! rule files ([`Error`], [`Errors`]), and the scanner that finds the line of a key path
//! ([`locate`], [`line_of`], [`line_of_nearest`]).
//!
//! A leaf: imports no other pixgate module. `config` names these `ConfigError` /
//! `ConfigErrors`, `rules` names them `LoadError` / `LoadErrors`.

mod locate;

pub(crate) use locate::{is_blank_yaml, line_of, line_of_nearest, locate, locate_nth, KeyPath};

use std::fmt;
use std::path::PathBuf;

/// One problem, located in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// File the problem is in (`<embedded config/pixgate.yaml>` for the built-in configuration,
    /// the directory itself for a rules directory that cannot be listed).
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Key path such as `limits.max_source_bytes` or `rules[0].quality.webp`; empty for
    /// problems with the file as a whole (unreadable, not YAML, ...).
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl Error {
    /// A problem with the file as a whole: no line, no key.
    pub fn whole_file(file: impl Into<PathBuf>, message: String) -> Error {
        Error {
            file: file.into(),
            line: None,
            key: String::new(),
            message,
        }
    }
}

impl fmt::Display for Error {
    /// ``file.yaml:LINE: key `a.b`: message``, omitting `:LINE` when unknown and
    /// `key ...: ` when the key path is empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if self.key.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": key `{}`: {}", self.key, self.message)
        }
    }
}

/// All problems found by one load (validation reports every one at once), in file order then
/// position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Errors(pub Vec<Error>);

impl Errors {
    /// The individual problems.
    pub fn errors(&self) -> &[Error] {
        &self.0
    }
    /// Number of problems.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// `true` if there are none (never the case for a returned `Err`).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Errors {
    /// One problem per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Errors {}

#[cfg(test)]
mod tests {
    use super::{Error, Errors};

    #[test]
    fn display_names_file_line_and_key() {
        let e = Error {
            file: "<embedded config/pixgate.yaml>".into(),
            line: Some(3),
            key: "limits.max_source_bytes".into(),
            message: "must be between 1 and 4294967296, got 0".into(),
        };
        assert_eq!(
            e.to_string(),
            "<embedded config/pixgate.yaml>:3: key `limits.max_source_bytes`: must be between 1 and 4294967296, got 0"
        );
        let whole = Error::whole_file("c.yaml", "cannot read: gone".into());
        assert_eq!(whole.to_string(), "c.yaml: cannot read: gone");
        let both = Errors(vec![e, whole]);
        assert_eq!(both.to_string().lines().count(), 2);
        assert_eq!(both.len(), 2);
    }
}
