//! The embedded demo origin: a tiny hyper server on a free loopback port serving a few real
//! sample photos, a PNG with transparency and an HTML page showing them, so that a newcomer sees
//! AVIF / WebP come back from pixgate without setting up a website. `origin.url: builtin:demo`.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;

/// One embedded file.
pub struct Sample {
    /// File name under `/samples/`.
    pub name: &'static str,
    /// Content-Type sent by the demo origin.
    pub mime: &'static str,
    /// The bytes.
    pub bytes: &'static [u8],
    /// What it is.
    pub caption: &'static str,
}

/// The embedded samples (licences in `src/demo/samples/LICENSES.md`).
pub const SAMPLES: &[Sample] = &include!("samples/list.rs");

/// The HTML page listing the samples.
pub fn index_html() -> String {
    let mut s = String::from(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>pixgate demo</title>\
         <style>body{font-family:sans-serif;max-width:60em;margin:2em auto}img{max-width:100%}\
         figure{margin:2em 0}</style></head><body>\n<h1>pixgate demo origin</h1>\n\
         <p>Every image below is served by the demo origin as JPEG or PNG and re-encoded by \
         pixgate into the best format your browser accepts.</p>\n",
    );
    for x in SAMPLES {
        s.push_str(&format!(
            "<figure><img src=\"/samples/{}\" alt=\"{}\"><figcaption>{} ({}, {} bytes at the origin)</figcaption></figure>\n",
            x.name, x.caption, x.caption, x.mime, x.bytes.len()
        ));
    }
    s.push_str("</body></html>\n");
    s
}

fn respond(req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let build = |status: StatusCode, mime: &str, body: Bytes| {
        Response::builder()
            .status(status)
            .header("content-type", mime)
            .header("cache-control", "public, max-age=3600")
            .body(Full::new(body))
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
    };
    if path == "/" || path == "/index.html" {
        return build(
            StatusCode::OK,
            "text/html; charset=utf-8",
            Bytes::from(index_html()),
        );
    }
    if let Some(name) = path.strip_prefix("/samples/") {
        if let Some(x) = SAMPLES.iter().find(|x| x.name == name) {
            return build(StatusCode::OK, x.mime, Bytes::from_static(x.bytes));
        }
    }
    build(
        StatusCode::NOT_FOUND,
        "text/plain",
        Bytes::from_static(b"not found\n"),
    )
}

/// Serves the demo on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let svc =
                service_fn(
                    |req: Request<Incoming>| async move { Ok::<_, Infallible>(respond(&req)) },
                );
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// Starts the demo origin on `127.0.0.1:0` in a background thread; returns its address.
pub fn start_in_background() -> std::io::Result<SocketAddr> {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    std::thread::Builder::new()
        .name("pixgate-demo-origin".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "demo origin runtime failed");
                    return;
                }
            };
            rt.block_on(async move {
                match tokio::net::TcpListener::from_std(std_listener) {
                    Ok(l) => serve(l).await,
                    Err(e) => tracing::error!(error = %e, "demo origin listener failed"),
                }
            });
        })?;
    Ok(addr)
}
