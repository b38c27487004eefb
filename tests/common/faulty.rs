//! An origin that misbehaves on purpose, at the TCP level: it hangs, resets, cuts a body short
//! or lies about Content-Length. One thread, plain sockets, so each fault is exactly what the
//! bytes say.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How the origin answers every request.
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// Reads the request and never answers.
    Hang,
    /// Closes the connection with a reset once the request has arrived.
    Reset,
    /// Sends a 200 header announcing `Content-Length` N bytes, then `sent` bytes, then closes.
    Truncated { announced: usize, sent: usize },
    /// Sends a `500` with a small body.
    ServerError,
    /// Sends a 200 header announcing `Content-Length` N bytes, then `sent` bytes, then holds
    /// the connection open without sending more (a source that stalls mid-body).
    Stall { announced: usize, sent: usize },
}

/// A running faulty origin (one thread per connection, lives as long as the test).
pub struct FaultyOrigin {
    /// Where it listens.
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl FaultyOrigin {
    /// Starts an origin that answers every request with `fault`; `body` is an image whose
    /// prefix a truncated answer sends.
    pub fn start(fault: Fault, body: Vec<u8>) -> FaultyOrigin {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let body = Arc::new(body);
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let (h, body) = (h.clone(), body.clone());
                std::thread::spawn(move || serve(s, fault, &body, &h));
            }
        });
        FaultyOrigin { addr, hits }
    }

    /// Requests received.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn serve(mut s: TcpStream, fault: Fault, body: &[u8], hits: &AtomicUsize) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    if let Fault::Reset = fault {
        // Closing with unread bytes in the receive buffer makes the kernel send a reset.
        let mut peek = [0u8; 8192];
        loop {
            match s.peek(&mut peek) {
                Ok(0) | Err(_) => return,
                Ok(n) if peek[..n].windows(4).any(|w| w == b"\r\n\r\n") => break,
                Ok(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        hits.fetch_add(1, Ordering::SeqCst);
        return;
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    hits.fetch_add(1, Ordering::SeqCst);
    match fault {
        Fault::Hang => std::thread::sleep(Duration::from_secs(30)),
        Fault::Reset => {}
        Fault::Truncated { announced, sent } => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: image/jpeg\r\ncontent-length: {announced}\r\ncache-control: max-age=600\r\n\r\n"
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body[..sent.min(body.len())]);
            let _ = s.flush();
        }
        Fault::Stall { announced, sent } => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: image/jpeg\r\ncontent-length: {announced}\r\n\r\n"
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body[..sent.min(body.len())]);
            let _ = s.flush();
            std::thread::sleep(Duration::from_secs(30));
        }
        Fault::ServerError => {
            let _ = s.write_all(
                b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\ncontent-length: 5\r\ncache-control: max-age=600\r\n\r\noops!",
            );
        }
    }
}
