//! The configured watermarks (`images.watermarks`): each a name and an image file or a line of
//! text in the bundled font, loaded at start (a bad one stops the start, naming its key) and
//! loaded again when a file changes ([`LiveMarks::reload_if_changed`], polled by the server;
//! a file that no longer loads keeps the previous marks). The variant key holds the marks'
//! [`Marks::fingerprint`], so a changed logo never serves variants drawn with the old one.

use super::steps::{parse_color, MarkName};
use super::watermark::Mark;
use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// One watermark as configured: `file` or `text`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WatermarkSpec {
    /// An image (PNG with alpha, JPEG, WebP, GIF), at most 4096×4096.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// A line of text (at most 256 characters; `\n` breaks lines) in DejaVu Sans.
    #[serde(default)]
    pub text: Option<String>,
    /// The text's pixel height, 4–512. Default 24.
    #[serde(default = "default_size")]
    pub size: f32,
    /// The text's colour, `RRGGBB` or `RRGGBBAA`. Default `ffffffff`.
    #[serde(default = "default_color")]
    pub color: String,
    /// A dark outline under the text, for light backgrounds. Default `true`.
    #[serde(default = "default_shadow")]
    pub shadow: bool,
}

fn default_size() -> f32 {
    24.0
}
fn default_color() -> String {
    "ffffffff".into()
}
fn default_shadow() -> bool {
    true
}

impl WatermarkSpec {
    /// Loads the mark.
    pub fn load(&self) -> Result<Mark, String> {
        match (&self.file, &self.text) {
            (Some(path), None) => {
                let bytes = std::fs::read(path)
                    .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
                Mark::from_bytes(&bytes).map_err(|e| format!("`{}`: {e}", path.display()))
            }
            (None, Some(text)) => {
                let color = parse_color(&self.color)
                    .ok_or_else(|| format!("color `{}` must be RRGGBB or RRGGBBAA", self.color))?;
                Mark::text(text, self.size, color, self.shadow)
            }
            _ => Err("needs exactly one of `file` and `text`".into()),
        }
    }
}

/// Loaded marks by name.
#[derive(Debug, Default)]
pub struct Marks {
    marks: HashMap<MarkName, Arc<Mark>>,
    fingerprint: String,
}

impl Marks {
    /// Loads every spec; the errors are `(key, message)` pairs
    /// (`images.watermarks.NAME`).
    pub fn load(specs: &BTreeMap<String, WatermarkSpec>) -> Result<Marks, Vec<(String, String)>> {
        let mut marks = HashMap::new();
        let mut errors = Vec::new();
        let mut hash = Sha256::new();
        for (name, spec) in specs {
            let key = format!("images.watermarks.{name}");
            let Some(id) = MarkName::new(name) else {
                errors.push((key, "a name is 1-16 characters of a-z, 0-9, _ and -".into()));
                continue;
            };
            match spec.load() {
                Ok(m) => {
                    hash.update(name.as_bytes());
                    hash.update(m.width().to_le_bytes());
                    hash.update(m.height().to_le_bytes());
                    hash.update(m.pixels().as_raw());
                    marks.insert(id, Arc::new(m));
                }
                Err(e) => errors.push((key, e)),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let digest = hash.finalize();
        let fingerprint = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        Ok(Marks { marks, fingerprint })
    }

    /// The mark called `name`.
    pub fn get(&self, name: MarkName) -> Option<Arc<Mark>> {
        self.marks.get(&name).cloned()
    }

    /// A hash of every mark's name and pixels (12 hex digits).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// The marks in use, swapped whole when a file changes.
pub struct LiveMarks {
    specs: BTreeMap<String, WatermarkSpec>,
    current: ArcSwap<Marks>,
    stamps: Mutex<Vec<Option<SystemTime>>>,
}

impl std::fmt::Debug for LiveMarks {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.debug_struct("LiveMarks")
            .field("names", &self.specs.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl LiveMarks {
    /// Loads the marks of `specs`.
    pub fn load(
        specs: &BTreeMap<String, WatermarkSpec>,
    ) -> Result<LiveMarks, Vec<(String, String)>> {
        let marks = Marks::load(specs)?;
        Ok(LiveMarks::of(specs, marks, stamps(specs)))
    }

    fn of(
        specs: &BTreeMap<String, WatermarkSpec>,
        marks: Marks,
        seen: Vec<Option<SystemTime>>,
    ) -> LiveMarks {
        LiveMarks {
            stamps: Mutex::new(seen),
            specs: specs.clone(),
            current: ArcSwap::from_pointee(marks),
        }
    }

    /// The marks of a validated configuration: a file that has gone since the validation
    /// leaves no marks (logged; variants that name one are refused, never sent without it)
    /// until the watcher loads it.
    pub fn load_or_empty(specs: &BTreeMap<String, WatermarkSpec>) -> LiveMarks {
        let (marks, seen) = match Marks::load(specs) {
            Ok(m) => (m, stamps(specs)),
            Err(errors) => {
                tracing::error!(?errors, "watermarks not loaded");
                (Marks::default(), Vec::new())
            }
        };
        LiveMarks::of(specs, marks, seen)
    }

    /// The marks now.
    pub fn current(&self) -> Arc<Marks> {
        self.current.load_full()
    }

    /// Whether any mark is configured (then the watcher polls).
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// Loads the marks again when a file's modification time changed: `Ok(true)` when they
    /// were swapped; on an error the previous marks stay.
    pub fn reload_if_changed(&self) -> Result<bool, Vec<(String, String)>> {
        let now = stamps(&self.specs);
        let mut seen = self.stamps.lock().unwrap_or_else(|p| p.into_inner());
        if *seen == now {
            return Ok(false);
        }
        *seen = now;
        let marks = Marks::load(&self.specs)?;
        self.current.store(Arc::new(marks));
        Ok(true)
    }
}

fn stamps(specs: &BTreeMap<String, WatermarkSpec>) -> Vec<Option<SystemTime>> {
    specs
        .values()
        .map(|s| {
            s.file
                .as_ref()
                .and_then(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(path: &std::path::Path, rgba: [u8; 4]) {
        image::RgbaImage::from_pixel(8, 4, image::Rgba(rgba))
            .save(path)
            .unwrap();
    }

    #[test]
    fn marks_load_fingerprint_and_reload_when_a_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let logo = dir.path().join("logo.png");
        png(&logo, [255, 0, 0, 255]);
        let mut specs = BTreeMap::new();
        specs.insert(
            "default".to_string(),
            WatermarkSpec {
                file: Some(logo.clone()),
                text: None,
                size: 24.0,
                color: "ffffff".into(),
                shadow: false,
            },
        );
        let live = LiveMarks::load(&specs).unwrap();
        let first = live.current();
        let m = first.get(MarkName::DEFAULT).unwrap();
        assert_eq!((m.width(), m.height()), (8, 4));
        assert_eq!(first.fingerprint().len(), 12);
        assert!(!live.reload_if_changed().unwrap(), "nothing changed");
        std::thread::sleep(std::time::Duration::from_millis(20));
        png(&logo, [0, 0, 255, 255]);
        let t = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&logo)
            .unwrap()
            .set_modified(t)
            .unwrap();
        assert!(live.reload_if_changed().unwrap(), "a new file is loaded");
        assert_ne!(live.current().fingerprint(), first.fingerprint());
        std::fs::write(&logo, b"not an image").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&logo)
            .unwrap()
            .set_modified(t + std::time::Duration::from_secs(5))
            .unwrap();
        let errors = live.reload_if_changed().unwrap_err();
        assert_eq!(errors[0].0, "images.watermarks.default");
        assert!(
            live.current().get(MarkName::DEFAULT).is_some(),
            "the old marks stay"
        );
    }

    #[test]
    fn bad_specs_name_their_key() {
        let mut specs = BTreeMap::new();
        let spec = WatermarkSpec {
            file: None,
            text: None,
            size: 24.0,
            color: "ffffff".into(),
            shadow: false,
        };
        specs.insert("Bad Name".to_string(), spec.clone());
        specs.insert("neither".to_string(), spec);
        let errors = Marks::load(&specs).unwrap_err();
        let keys: Vec<&str> = errors.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["images.watermarks.Bad Name", "images.watermarks.neither"]
        );
    }
}
