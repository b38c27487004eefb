//! The private links: `GET`/`HEAD`/`DELETE /d/{token}` and `GET /d/{token}.zip`.

use super::*;

impl Upload {
    /// `/d/{token}` and `/d/{token}.zip`: GET, HEAD, DELETE.
    pub(super) async fn link(
        &self,
        method: &str,
        rest: &str,
    ) -> Result<Response<Vec<u8>>, Refusal> {
        let (token, zip) = match rest.strip_suffix(".zip") {
            Some(t) => (t, true),
            None => (rest, false),
        };
        let gone = || {
            metrics::UPLOAD_LINKS
                .with_label_values(&["not_found"])
                .inc();
            Refusal::not_found()
        };
        let e = self.store.get(token).await.ok_or_else(gone)?;
        let kind = Kind::of(&e).ok_or_else(gone)?;
        match (method, kind, zip) {
            ("DELETE", Kind::Batch, _) => {
                for t in children(&e.body) {
                    let _ = self.store.take(t).await;
                }
                self.erase(token).await
            }
            ("DELETE", Kind::File { .. }, false) => self.erase(token).await,
            ("GET" | "HEAD", Kind::File { once }, false) => {
                let e = if once && method == "GET" {
                    let e = self.store.take(token).await.ok_or_else(gone)?;
                    metrics::UPLOAD_LINKS
                        .with_label_values(&["downloaded_once"])
                        .inc();
                    e
                } else {
                    e
                };
                metrics::UPLOAD_LINKS.with_label_values(&["download"]).inc();
                let mime = e
                    .headers
                    .iter()
                    .find(|(k, _)| k == "content-type")
                    .and_then(|(_, v)| std::str::from_utf8(v).ok())
                    .unwrap_or("application/octet-stream");
                let name = store::name_of(&e).unwrap_or_else(|| "pixgate".into());
                Ok(answer::download(mime, &name, e.body.to_vec()))
            }
            ("GET" | "HEAD", Kind::Batch, true) => {
                let mut files = Vec::new();
                for t in children(&e.body) {
                    let child = match self.store.get(t).await {
                        Some(c) if Kind::of(&c) == Some(Kind::File { once: true }) => {
                            if method == "GET" {
                                self.store.take(t).await
                            } else {
                                Some(c)
                            }
                        }
                        other => other,
                    };
                    if let Some(c) = child {
                        files.push((
                            store::name_of(&c).unwrap_or_else(|| "pixgate".into()),
                            c.body.clone(),
                        ));
                    }
                }
                if files.is_empty() {
                    return Err(gone());
                }
                let body = answer::zip(&files).map_err(|m| Refusal::new(500, "failed", m))?;
                metrics::UPLOAD_LINKS.with_label_values(&["zip"]).inc();
                let name = store::name_of(&e).unwrap_or_else(|| "pixgate.zip".into());
                Ok(answer::download("application/zip", &name, body))
            }
            ("GET" | "HEAD" | "DELETE", _, _) => Err(gone()),
            _ => Err(Refusal::new(
                405,
                "method_not_allowed",
                format!("{method} is not allowed here."),
            )),
        }
    }

    async fn erase(&self, token: &str) -> Result<Response<Vec<u8>>, Refusal> {
        match self.store.take(token).await {
            Some(_) => {
                metrics::UPLOAD_LINKS.with_label_values(&["erased"]).inc();
                Ok(answer::reply(204, "application/json", Vec::new()))
            }
            None => Err(Refusal::not_found()),
        }
    }
}

/// The tokens a batch entry lists.
fn children(body: &Bytes) -> impl Iterator<Item = &str> {
    std::str::from_utf8(body)
        .unwrap_or("")
        .split('\n')
        .filter(|t| !t.is_empty())
}
