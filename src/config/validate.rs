//! Checks of values that types alone cannot express, within a section and across sections
//! (`limits.max_buffered_bytes` against `limits.max_source_bytes`, `url_api.tenants` against
//! `metrics.tenants`, `admin.listen` against `listen`). Problems are reported in one fixed
//! order, the order of the checks below.

use super::Config;

impl Config {
    /// Checks values that types alone cannot; returns `(key, problem)` for every problem.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        let mut range = |key: &str, v: u64, lo: u64, hi: u64| {
            if v < lo || v > hi {
                p.push((
                    key.to_string(),
                    format!("must be between {lo} and {hi}, got {v}"),
                ));
            }
        };
        let i = &self.images;
        range("images.avif.quality", i.avif.quality.into(), 1, 100);
        range("images.avif.speed", i.avif.speed.into(), 1, 10);
        range("images.webp.quality", i.webp.quality.into(), 1, 100);
        range("images.webp.method", i.webp.method.into(), 0, 6);
        range("images.jpeg.quality", i.jpeg.quality.into(), 1, 100);
        range("images.png.level", i.png.level.into(), 0, 6);
        range("images.jxl.quality", i.jxl.quality.into(), 1, 100);
        range("images.jxl.effort", i.jxl.effort.into(), 1, 9);
        range(
            "images.auto_quality.max_encodes",
            i.auto_quality.max_encodes.into(),
            1,
            10,
        );
        let target = i.auto_quality.target;
        range(
            "images.auto_quality.target",
            if target.is_finite() { target as u64 } else { 0 },
            1,
            99,
        );
        let l = &self.limits;
        range(
            "limits.max_concurrent_transforms",
            l.max_concurrent_transforms as u64,
            1,
            256,
        );
        range(
            "limits.max_queued_transforms",
            l.max_queued_transforms as u64,
            0,
            100_000,
        );
        range(
            "limits.max_source_dimension",
            l.max_source_dimension.into(),
            1,
            65_535,
        );
        range("limits.max_source_pixels", l.max_source_pixels, 1, 1 << 32);
        range(
            "limits.max_source_bytes",
            l.max_source_bytes.get(),
            1,
            1 << 32,
        );
        range("server.threads", self.server.threads as u64, 1, 1024);
        // Allocated per connection: a few connections' worth must not exhaust memory.
        range(
            "server.write_buffer",
            self.server.write_buffer.get(),
            0,
            1 << 20,
        );
        range(
            "transform.save_data_quality",
            self.transform.save_data_quality.into(),
            1,
            100,
        );
        range(
            "transform.max_output_dimension",
            self.transform.max_output_dimension.into(),
            16,
            16_384,
        );
        range(
            "limits.max_connections",
            l.max_connections as u64,
            1,
            1_000_000,
        );
        range(
            "limits.max_connections_per_ip",
            l.max_connections_per_ip as u64,
            1,
            1_000_000,
        );
        let keepalive = l.keepalive_timeout.get();
        if keepalive.is_zero() || keepalive > std::time::Duration::from_secs(3600) {
            p.push((
                "limits.keepalive_timeout".into(),
                format!("must be between 1s and 1h, got {}", l.keepalive_timeout),
            ));
        }
        for (key, d) in [
            ("limits.transform_timeout", l.transform_timeout),
            ("limits.header_timeout", l.header_timeout),
            ("limits.client_write_timeout", l.client_write_timeout),
        ] {
            if d.get().is_zero() {
                p.push((key.into(), "must be greater than 0".into()));
            }
        }
        if l.max_buffered_bytes.get() < l.max_source_bytes.get() {
            p.push((
                "limits.max_buffered_bytes".into(),
                format!(
                    "must be at least limits.max_source_bytes ({}), got {}",
                    l.max_source_bytes.get(),
                    l.max_buffered_bytes.get()
                ),
            ));
        }
        let mut seen = Vec::new();
        for f in &i.formats {
            if seen.contains(f) {
                p.push((
                    "images.formats".into(),
                    format!("`{}` is listed twice", f.name()),
                ));
            }
            seen.push(*f);
        }
        if i.formats.contains(&crate::image::format::OutputFormat::Jxl) && !cfg!(feature = "jxl") {
            p.push((
                "images.formats".into(),
                "`jxl` needs a pixgate built with the `jxl` cargo feature".into(),
            ));
        }
        p.extend(self.origin.validate());
        if let Err(e) = crate::fetch::origin::OriginTarget::parse(&self.origin.url) {
            p.push(("origin.url".into(), e));
        }
        if !(1.0..=10.0).contains(&self.transform.max_dpr) {
            p.push((
                "transform.max_dpr".into(),
                format!("must be between 1 and 10, got {}", self.transform.max_dpr),
            ));
        }
        let poll = self.rules.poll_interval.get().as_millis();
        if !(10..=60_000).contains(&poll) {
            p.push((
                "rules.poll_interval".into(),
                format!(
                    "must be between 10ms and 60s, got {}",
                    self.rules.poll_interval
                ),
            ));
        }
        if !matches!(self.images.avif.depth, 8 | 10) {
            let got = self.images.avif.depth;
            p.push((
                "images.avif.depth".into(),
                format!("must be 8 or 10, got {got}"),
            ));
        }
        p.extend(self.url_api.validate());
        if let Some(t) = &self.tls {
            p.extend(t.validate());
        }
        p.extend(self.cache.validate());
        if self.cache.memory_only_promise
            && matches!(self.upload.disk, crate::cache::config::DiskSetting::On(_))
        {
            p.push((
                "upload.disk".into(),
                "must be `off` under cache.memory_only_promise".into(),
            ));
        }
        p.extend(self.log.validate());
        p.extend(self.metrics.validate());
        p.extend(self.rate_limit.validate());
        for (i, t) in self.url_api.tenants.iter().enumerate() {
            if !self.metrics.tenants.contains(t) {
                p.push((
                    format!("url_api.tenants[{i}]"),
                    format!("`{t}` is not listed in metrics.tenants"),
                ));
            }
        }
        if self.url_api.tenants.len() > self.url_api.keys.len() {
            p.push((
                "url_api.tenants".into(),
                format!(
                    "names a tenant for {} keys, but there are {} keys",
                    self.url_api.tenants.len(),
                    self.url_api.keys.len()
                ),
            ));
        }
        if self.admin.token.is_some() && self.admin.token_file.is_some() {
            p.push((
                "admin.token_file".into(),
                "give admin.token or admin.token_file, not both".into(),
            ));
        }
        if self.admin.token.as_deref().is_some_and(|t| t.len() < 16) {
            p.push((
                "admin.token".into(),
                "must be at least 16 characters".into(),
            ));
        }
        if let Some(a) = self.admin.listen {
            if a == self.listen {
                p.push(("admin.listen".into(), "must differ from `listen`".into()));
            }
        }
        p.extend(self.upload.validate());
        p.extend(self.upload_against_the_rest());
        if let Some(m) = self
            .images
            .shrink_on_load
            .filter(|m| !(1.0..=8.0).contains(m))
        {
            p.push((
                "images.shrink_on_load".to_string(),
                format!("must be between 1 and 8 (or null), got {m}"),
            ));
        }
        if let Err(errors) = crate::image::marks::Marks::load(&self.images.watermarks) {
            p.extend(errors);
        }
        p
    }

    /// The upload section against the others: its listener is a port of its own, its API keys'
    /// tenants are metered ones, and its disk tier a directory of its own.
    fn upload_against_the_rest(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        let u = &self.upload;
        if let Some(l) = u.listen {
            if l == self.listen || Some(l) == self.admin.listen {
                p.push((
                    "upload.listen".into(),
                    "must differ from `listen` and `admin.listen`".into(),
                ));
            }
        }
        for (i, k) in u.api_keys.iter().enumerate() {
            if !self.metrics.tenants.contains(&k.tenant) {
                p.push((
                    format!("upload.api_keys[{i}].tenant"),
                    format!("`{}` is not listed in metrics.tenants", k.tenant),
                ));
            }
        }
        if let (Some(a), Some(b)) = (u.disk.on(), self.cache.disk.on()) {
            if a.dir == b.dir {
                p.push((
                    "upload.disk.dir".into(),
                    "must differ from `cache.disk.dir`".into(),
                ));
            }
        }
        p
    }
}
