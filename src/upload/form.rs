//! An upload request's body and options, as values: the files (a multipart form's file
//! fields, or a raw body) and the options (query parameters, then form fields, which win).
//!
//! The body has already been read into memory under `upload.max_bytes`; multipart parsing
//! (multer) works on those bytes and never writes anything to disk.

use crate::image::resize::Fit;
use crate::request::options::{OptionError, Options};
use bytes::Bytes;
use std::time::Duration;

/// Social-media sizes every service knows (fit `cover`, centred).
pub const SOCIAL: [(&str, u32, u32); 9] = [
    ("instagram-square", 1080, 1080),
    ("instagram-portrait", 1080, 1350),
    ("story", 1080, 1920),
    ("facebook-post", 1200, 630),
    ("facebook-cover", 851, 315),
    ("x-post", 1600, 900),
    ("linkedin-post", 1200, 627),
    ("og-image", 1200, 630),
    ("youtube-thumbnail", 1280, 720),
];

/// Longest text field value read.
const MAX_FIELD: usize = 1024;

/// One uploaded file.
#[derive(Debug, Clone)]
pub struct File {
    /// Its bytes.
    pub bytes: Bytes,
    /// The name the client gave it (used only when `keep_name` asks, and never logged).
    pub name: Option<String>,
}

/// A parsed request body.
#[derive(Debug, Default)]
pub struct Body {
    /// The files, in order.
    pub files: Vec<File>,
    /// Text fields, in order.
    pub fields: Vec<(String, String)>,
}

/// A body that cannot be read (400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadBody(pub String);

/// Splits a body: `multipart/form-data` into its files and fields (a part with a file name,
/// or named `file`, is a file), anything else is one file.
pub async fn parse(content_type: Option<&str>, body: Bytes) -> Result<Body, BadBody> {
    let multipart = content_type.is_some_and(|t| {
        t.trim_start()
            .to_ascii_lowercase()
            .starts_with("multipart/")
    });
    if !multipart {
        return Ok(Body {
            files: vec![File {
                bytes: body,
                name: None,
            }],
            fields: Vec::new(),
        });
    }
    let boundary = content_type
        .and_then(|t| multer::parse_boundary(t).ok())
        .ok_or_else(|| BadBody("the multipart Content-Type has no boundary".into()))?;
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut out = Body::default();
    let bad = |e: multer::Error| BadBody(format!("the multipart body cannot be read: {e}"));
    while let Some(field) = form.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or("").to_string();
        let file_name = field.file_name().map(str::to_string);
        let bytes = field.bytes().await.map_err(bad)?;
        if file_name.is_some() || name == "file" {
            out.files.push(File {
                bytes,
                name: file_name,
            });
        } else {
            if bytes.len() > MAX_FIELD {
                return Err(BadBody(format!(
                    "form field `{name}` is longer than {MAX_FIELD} bytes"
                )));
            }
            let value = String::from_utf8(bytes.to_vec())
                .map_err(|_| BadBody(format!("form field `{name}` is not UTF-8")))?;
            out.fields.push((name, value));
        }
    }
    Ok(out)
}

/// What one upload request asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ask {
    /// Format, quality, size, fit, gravity (and the proxy's other options).
    pub options: Options,
    /// `crop=x,y,w,h` in source pixels.
    pub crop: Option<[u32; 4]>,
    /// `rotate=90|180|270`.
    pub rotate: Option<u16>,
    /// `ttl`: keep for less than `upload.retention`.
    pub ttl: Option<Duration>,
    /// `delete_after_download`.
    pub once: bool,
    /// `keep_name`: the download name is the file's own (made safe) instead of `pixgate-<id>`.
    pub keep_name: bool,
}

fn err(param: &str, message: impl Into<String>) -> OptionError {
    OptionError {
        param: param.to_string(),
        message: message.into(),
    }
}

fn flag(param: &str, v: &str) -> Result<bool, OptionError> {
    match v {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(err(param, format!("`{v}` must be true or false"))),
    }
}

/// The names of the presets an upload may use: the social sizes, then the rule files'
/// file-level presets.
pub type Presets<'a> = &'a dyn Fn(&str) -> Option<String>;

impl Ask {
    /// The options of `pairs` (query first, then form fields): a preset applies first, so
    /// explicit fields override it wherever they stand.
    pub fn from_pairs(pairs: &[(String, String)], presets: Presets) -> Result<Ask, OptionError> {
        let mut a = Ask::default();
        for (k, v) in pairs.iter().filter(|(k, _)| k == "preset") {
            a.preset(k, v, presets)?;
        }
        for (k, v) in pairs.iter().filter(|(k, _)| k != "preset") {
            a.set(k, v)?;
        }
        Ok(a)
    }

    fn preset(&mut self, param: &str, name: &str, presets: Presets) -> Result<(), OptionError> {
        if name.is_empty() || name == "none" {
            return Ok(());
        }
        if let Some((_, w, h)) = SOCIAL.iter().find(|(n, _, _)| *n == name) {
            self.options.width = Some(*w);
            self.options.height = Some(*h);
            self.options.fit = Fit::Cover;
            return Ok(());
        }
        let set = presets(name).ok_or_else(|| err(param, format!("unknown preset `{name}`")))?;
        for (k, v) in form_urlencoded::parse(set.as_bytes()) {
            self.options
                .set(&k, &v)
                .map_err(|e| err(param, format!("preset `{name}`: {e}")))?;
        }
        Ok(())
    }

    fn set(&mut self, k: &str, v: &str) -> Result<(), OptionError> {
        match k {
            "crop" => {
                let n: Vec<u32> = v
                    .split(',')
                    .map(|p| p.trim().parse::<u32>())
                    .collect::<Result<_, _>>()
                    .map_err(|_| err(k, format!("`{v}` must be x,y,width,height in pixels")))?;
                match n.as_slice() {
                    [x, y, w, h] if *w > 0 && *h > 0 => self.crop = Some([*x, *y, *w, *h]),
                    _ => {
                        return Err(err(
                            k,
                            format!("`{v}` must be x,y,width,height with width and height above 0"),
                        ))
                    }
                }
            }
            "rotate" => {
                self.rotate = match v {
                    "0" => None,
                    "90" => Some(90),
                    "180" => Some(180),
                    "270" => Some(270),
                    _ => return Err(err(k, format!("`{v}` must be 0, 90, 180 or 270"))),
                }
            }
            "strip_metadata" => {
                if !flag(k, v)? {
                    return Err(err(
                        k,
                        "`false` is not supported: results never carry the upload's metadata (EXIF, XMP, ICC are removed; the pixels are converted to sRGB)",
                    ));
                }
            }
            "ttl" => {
                let d = crate::units::parse_duration(v).map_err(|e| err(k, e))?;
                if d < Duration::from_secs(1) {
                    return Err(err(k, format!("`{v}` must be at least 1s")));
                }
                self.ttl = Some(d);
            }
            "delete_after_download" => self.once = flag(k, v)?,
            "keep_name" => self.keep_name = flag(k, v)?,
            // An empty size field (a cleared input on the page) means no size.
            "width" | "height" | "w" | "h" if v.is_empty() => {}
            _ if crate::request::options::is_option(k) => self.options.set(k, v)?,
            _ => {
                return Err(err(
                    k,
                    "unknown option; use format, quality, width, height, fit, gravity, crop, rotate, strip_metadata, preset, ttl, delete_after_download or keep_name",
                ))
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::format::OutputFormat;
    use crate::request::options::FormatReq;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn every_option_parses_and_presets_yield_to_explicit_fields() {
        let a = Ask::from_pairs(
            &pairs(&[
                ("width", "500"),
                ("preset", "instagram-square"),
                ("format", "webp"),
                ("quality", "70"),
                ("crop", "10,20,300,200"),
                ("rotate", "90"),
                ("ttl", "10m"),
                ("delete_after_download", "true"),
                ("strip_metadata", "true"),
                ("gravity", "no"),
            ]),
            &none,
        )
        .expect("valid");
        assert_eq!(a.options.width, Some(500));
        assert_eq!(a.options.height, Some(1080));
        assert_eq!(a.options.fit, Fit::Cover);
        assert_eq!(a.options.format, FormatReq::Force(OutputFormat::Webp));
        assert_eq!(a.options.quality, Some(70));
        assert_eq!(a.crop, Some([10, 20, 300, 200]));
        assert_eq!(a.rotate, Some(90));
        assert_eq!(a.ttl, Some(Duration::from_secs(600)));
        assert!(a.once && !a.keep_name);
        let rules = |n: &str| (n == "thumb").then(|| "w=200&h=100&fit=cover".to_string());
        let t = Ask::from_pairs(&pairs(&[("preset", "thumb")]), &rules).expect("rule preset");
        assert_eq!((t.options.width, t.options.height), (Some(200), Some(100)));
    }

    #[test]
    fn bad_options_name_themselves() {
        for (k, v) in [
            ("quality", "0"),
            ("quality", "101"),
            ("format", "gif"),
            ("crop", "1,2,3"),
            ("crop", "0,0,0,10"),
            ("rotate", "45"),
            ("strip_metadata", "false"),
            ("preset", "myspace"),
            ("ttl", "soon"),
            ("delete_after_download", "maybe"),
            ("colour", "red"),
        ] {
            let e = Ask::from_pairs(&pairs(&[(k, v)]), &none).expect_err(k);
            assert_eq!(e.param, k, "{e}");
        }
    }

    #[tokio::test]
    async fn multipart_files_and_fields_and_raw_bodies() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a b.jpg\"\r\nContent-Type: image/jpeg\r\n\r\nJPEGDATA\r\n--XyZ\r\nContent-Disposition: form-data; name=\"quality\"\r\n\r\n70\r\n--XyZ--\r\n";
        let b = parse(Some("multipart/form-data; boundary=XyZ"), Bytes::from(body))
            .await
            .expect("multipart");
        assert_eq!(b.files.len(), 1);
        assert_eq!(&b.files[0].bytes[..], b"JPEGDATA");
        assert_eq!(b.files[0].name.as_deref(), Some("a b.jpg"));
        assert_eq!(b.fields, pairs(&[("quality", "70")]));
        let raw = parse(Some("image/png"), Bytes::from_static(b"PNG"))
            .await
            .expect("raw");
        assert_eq!((raw.files.len(), raw.files[0].name.is_none()), (1, true));
        assert!(parse(Some("multipart/form-data"), Bytes::new())
            .await
            .is_err());
        let cut = &body[..body.len() - 12];
        assert!(
            parse(Some("multipart/form-data; boundary=XyZ"), Bytes::from(cut))
                .await
                .is_err()
        );
    }
}
