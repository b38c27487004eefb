//! `POST /api/v1/images`: the body under `upload.max_bytes`, files and options, the variant
//! decision, quotas, screening, then transform and store of every file (all or nothing).

use super::*;

/// One stored result, as answered.
struct Done {
    token: String,
    json: serde_json::Value,
    in_bytes: u64,
    out_bytes: u64,
    secs: f64,
}

impl Upload {
    /// `POST /api/v1/images`.
    pub(super) async fn post(
        &self,
        s: &mut ServerSession,
        ip: Option<IpAddr>,
        seen: &mut Seen,
    ) -> Result<Response<Vec<u8>>, Refusal> {
        let refuse = |outcome: &'static str, r: Refusal| {
            metrics::UPLOADS.with_label_values(&[outcome]).inc();
            r
        };
        let _slot = match self.slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                // The body stays unread: the connection cannot carry another request.
                s.set_keepalive(None);
                return Err(refuse(
                    "overloaded",
                    Refusal::new(503, "overloaded", "The service is busy.")
                        .retry(Duration::from_secs(2)),
                ));
            }
        };
        let body = self.read_body(s).await.inspect_err(|r| {
            metrics::UPLOADS
                .with_label_values(&[if r.status == 413 {
                    "too_large"
                } else {
                    "bad_request"
                }])
                .inc();
        })?;
        seen.bytes_in = body.len() as u64;
        let req = s.req_header();
        let content_type = req
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let accept = Accept::parse(
            req.headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok()),
        );
        let mut pairs: Vec<(String, String)> = req
            .uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let bad = |m: String| refuse("bad_request", Refusal::new(400, "bad_request", m));
        let parsed = form::parse(content_type.as_deref(), body)
            .await
            .map_err(|b| bad(b.0))?;
        pairs.extend(parsed.fields);
        let files = parsed.files;
        if files.is_empty() {
            return Err(bad(
                "The request has no file (send it as a `file` field).".into()
            ));
        }
        if files.len() > self.cfg.max_files {
            return Err(bad(format!(
                "At most {} files per request, got {}.",
                self.cfg.max_files,
                files.len()
            )));
        }
        let ask = self.ask(&pairs).map_err(|e| bad(e.to_string()))?;
        let v = self.decide(&ask, accept).map_err(bad)?;
        let total: u64 = files.iter().map(|f| f.bytes.len() as u64).sum();
        self.quotas
            .upload(ip, files.len() as u64, total)
            .map_err(|(l, wait)| {
                refuse(
                    "limited",
                    Refusal::new(429, "limited", l.message()).retry(wait),
                )
            })?;
        // Screen every file before anything is kept.
        for f in &files {
            let verdict = self.screening.check(&f.bytes).await;
            if let Some(status) = verdict.status() {
                let code = match verdict {
                    Verdict::Deny(_) => "denied",
                    Verdict::Unreadable(crate::screening::Unreadable::NotImage) => "not_image",
                    _ => "unreadable",
                };
                return Err(refuse(code, Refusal::new(status, code, verdict.message())));
            }
        }
        let mut done: Vec<Done> = Vec::with_capacity(files.len());
        for f in &files {
            match self.one(f, &ask, &v).await {
                Ok(d) => done.push(d),
                Err((outcome, r)) => {
                    for d in &done {
                        let _ = self.store.take(&d.token).await;
                    }
                    return Err(refuse(outcome, r));
                }
            }
        }
        let zip = if done.len() > 1 {
            let tokens: Vec<&str> = done.iter().map(|d| d.token.as_str()).collect();
            let id = random_id().map_err(|e| refuse("failed", Refusal::new(500, "failed", e)))?;
            let stored = self
                .store
                .put(Keep {
                    body: Bytes::from(tokens.join("\n")),
                    mime: "text/plain",
                    name: format!("pixgate-{id}.zip"),
                    id,
                    kind: Kind::Batch,
                    source_bytes: 0,
                    source_format: "batch",
                    expires: SystemTime::now() + self.keep_for(&ask),
                })
                .await
                .map_err(|e| refuse("failed", Refusal::new(500, "failed", e)))?;
            Some(format!("{}/d/{}.zip", self.base(), stored.token))
        } else {
            None
        };
        for d in &done {
            metrics::UPLOADS.with_label_values(&["stored"]).inc();
            metrics::UPLOAD_BYTES
                .with_label_values(&["in"])
                .inc_by(d.in_bytes);
            metrics::UPLOAD_BYTES
                .with_label_values(&["out"])
                .inc_by(d.out_bytes);
            metrics::UPLOAD_SECONDS.observe(d.secs);
            if d.in_bytes > 0 {
                metrics::UPLOAD_SAVINGS
                    .observe((1.0 - d.out_bytes as f64 / d.in_bytes as f64).max(0.0));
            }
            self.telemetry
                .tenants
                .record(seen.tenant, d.in_bytes, d.out_bytes, d.secs);
        }
        seen.transform = Some(Duration::from_secs_f64(done.iter().map(|d| d.secs).sum()));
        let files: Vec<serde_json::Value> = done.into_iter().map(|d| d.json).collect();
        Ok(answer::json(200, &json!({"files": files, "zip": zip})))
    }

    /// The options of a request, with the rule files' presets.
    fn ask(&self, pairs: &[(String, String)]) -> Result<Ask, crate::request::options::OptionError> {
        let global = self.rules.as_ref().map(|r| r.current());
        let presets = |name: &str| {
            global
                .as_ref()
                .and_then(|g| g.preset(None, name))
                .map(str::to_string)
        };
        let ask = Ask::from_pairs(pairs, &presets)?;
        if ask.ttl.is_some_and(|t| t > self.cfg.retention.get()) {
            return Err(crate::request::options::OptionError {
                param: "ttl".into(),
                message: format!("must be at most the retention, {}", self.cfg.retention),
            });
        }
        Ok(ask)
    }

    /// The variant: the proxy's decision, as for a signed URL API request with no rule.
    fn decide(&self, ask: &Ask, accept: Accept) -> Result<Variant, String> {
        let a = variant::Ask {
            options: ask.options.capped(self.transform.max_dpr),
            hints: None,
            accept,
            route: Route::Api { signed: true },
        };
        let settings = variant::Settings {
            formats: &self.images.formats,
            transform: &self.transform,
            marks: None,
        };
        variant::decide(&a, &Applied::find(None, "", "/"), settings).map_err(|r| r.message())
    }

    /// How long a result of `ask` is kept.
    fn keep_for(&self, ask: &Ask) -> Duration {
        let r = self.cfg.retention.get();
        ask.ttl.map_or(r, |t| t.min(r))
    }

    fn base(&self) -> &str {
        self.cfg.public_url.as_deref().unwrap_or("")
    }

    /// Transforms and stores one screened file.
    async fn one(
        &self,
        f: &form::File,
        ask: &Ask,
        v: &Variant,
    ) -> Result<Done, (&'static str, Refusal)> {
        let t0 = Instant::now();
        let unreadable = |m: &str| ("unreadable", Refusal::new(422, "unreadable", m));
        let format = sniff(&f.bytes).ok_or_else(|| {
            (
                "not_image",
                Refusal::new(
                    415,
                    "not_image",
                    "The file is not an image in a supported format.",
                ),
            )
        })?;
        let mut t = v.transform;
        t.steps.crop = ask.crop.map(crate::image::steps::Crop::Region);
        t.steps.rotate = ask.rotate.unwrap_or(0);
        let job = Job::for_plan(f.bytes.clone(), format, v.plan, &self.images, self.limits)
            .with_transform(t)
            .with_qualities(&v.qualities);
        let res = self.pool.run(job).await;
        let n = f.bytes.len();
        let (body, out, width, height) = match res.outcome {
            Outcome::Transformed {
                format: out,
                bytes,
                width,
                height,
                ..
            } => {
                metrics::record_transformed(format, out, n, bytes.len(), res.ran.as_secs_f64());
                (bytes, Format::Out(out), Some(width), Some(height))
            }
            // The upload form has no `info`.
            Outcome::Info(_) => return Err(unreadable("The image could not be processed.")),
            Outcome::Original(reason) => {
                metrics::record_original(format.name(), reason, n, n);
                match reason {
                    Reason::NotSmaller
                    | Reason::Animated
                    | Reason::TooManyFrames
                    | Reason::FormatDisabled
                    | Reason::NoTransform
                    | Reason::RuleBypass
                    | Reason::SkipProcessing
                    | Reason::UnsupportedSource => {
                        let p = crate::image::probe::dimensions(&f.bytes, format, self.limits).ok();
                        // Kept as uploaded, but never with its EXIF/XMP (strip_metadata).
                        let stripped =
                            crate::image::metadata::strip(&f.bytes, format).map_err(|_| {
                                unreadable("The image's metadata could not be removed.")
                            })?;
                        (
                            Bytes::from(stripped),
                            Format::Source(format),
                            p.map(|p| p.width),
                            p.map(|p| p.height),
                        )
                    }
                    Reason::Undecodable | Reason::Truncated | Reason::Empty => {
                        return Err(unreadable("The image could not be decoded."))
                    }
                    Reason::TooManyPixels | Reason::TooManyScans | Reason::TooLarge => {
                        return Err(unreadable(
                            "The image, or the result asked for, has too many pixels.",
                        ))
                    }
                    Reason::CropOutside => {
                        return Err((
                            "bad_request",
                            Refusal::new(
                                400,
                                "bad_request",
                                "parameter `crop`: the crop starts outside the image",
                            ),
                        ))
                    }
                    Reason::Timeout
                    | Reason::QueueTimeout
                    | Reason::Overloaded
                    | Reason::BufferBudget
                    | Reason::WatermarkMissing
                    | Reason::EncodeFailed => {
                        return Err((
                            "overloaded",
                            Refusal::new(
                                503,
                                "overloaded",
                                "The service is busy; the image was not processed.",
                            )
                            .retry(Duration::from_secs(5)),
                        ))
                    }
                }
            }
        };
        let id = random_id().map_err(|e| ("failed", Refusal::new(500, "failed", e)))?;
        let name = answer::safe_name(f.name.as_deref(), ask.keep_name, &id, out.name());
        let out_bytes = body.len() as u64;
        let stored = self
            .store
            .put(Keep {
                body,
                mime: out.mime(),
                name,
                id: id.clone(),
                kind: Kind::File { once: ask.once },
                source_bytes: n as u64,
                source_format: format.name(),
                expires: SystemTime::now() + self.keep_for(ask),
            })
            .await
            .map_err(|e| ("failed", Refusal::new(500, "failed", e)))?;
        let secs = t0.elapsed().as_secs_f64();
        let savings = if n > 0 {
            ((1.0 - out_bytes as f64 / n as f64) * 10_000.0).round() / 10_000.0
        } else {
            0.0
        };
        Ok(Done {
            json: json!({
                "id": id,
                "link": format!("{}/d/{}", self.base(), stored.token),
                "expires_at": humantime::format_rfc3339_seconds(stored.expires).to_string(),
                "input_bytes": n,
                "output_bytes": out_bytes,
                "savings": savings,
                "format": out.name(),
                "width": width,
                "height": height,
                "ms": (secs * 1000.0).round() as u64,
                "delete_after_download": ask.once,
            }),
            token: stored.token,
            in_bytes: n as u64,
            out_bytes,
            secs,
        })
    }

    /// `upload.max_bytes` against the declared length (413 before a byte is read), then the
    /// body, read under the same limit (413 as soon as it is passed).
    async fn read_body(&self, s: &mut ServerSession) -> Result<Bytes, Refusal> {
        let max = self.cfg.max_bytes.get();
        let too_large = || {
            Refusal::new(
                413,
                "too_large",
                format!(
                    "The upload is larger than the {} limit.",
                    self.cfg.max_bytes
                ),
            )
        };
        let declared = s
            .req_header()
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > max) {
            // The body stays unread: the connection cannot carry another request.
            s.set_keepalive(None);
            return Err(too_large());
        }
        let expects = s
            .req_header()
            .headers
            .get(header::EXPECT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
        if expects && s.write_continue_response().await.is_err() {
            s.set_keepalive(None);
            return Err(Refusal::new(400, "bad_request", "The connection failed."));
        }
        let cap = usize::try_from(declared.unwrap_or(0).min(max)).unwrap_or(0);
        let mut buf = BytesMut::with_capacity(cap);
        loop {
            match s.read_request_body().await {
                Ok(Some(chunk)) => {
                    if (buf.len() + chunk.len()) as u64 > max {
                        s.set_keepalive(None);
                        return Err(too_large());
                    }
                    buf.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(_) => {
                    s.set_keepalive(None);
                    return Err(Refusal::new(
                        400,
                        "bad_request",
                        "The request body could not be read.",
                    ));
                }
            }
        }
        Ok(buf.freeze())
    }
}

/// A result's public id: 8 random bytes in hex, unrelated to its token.
fn random_id() -> Result<String, String> {
    let mut b = [0u8; 8];
    store::random(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// The format of a kept result: an encoding, or the upload itself (never larger).
#[derive(Clone, Copy)]
enum Format {
    Out(OutputFormat),
    Source(SourceFormat),
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Out(f) => f.name(),
            Format::Source(f) => f.name(),
        }
    }

    fn mime(self) -> &'static str {
        match self {
            Format::Out(f) => f.mime(),
            Format::Source(f) => f.mime(),
        }
    }
}
