//! A minimal HTTPS origin for the URL API tests: a fresh CA (rcgen), a certificate for
//! `localhost` and `127.0.0.1` signed by it, and a tokio-rustls server that answers every
//! request with one fixed body and closes the connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;

/// A fresh CA and a certificate for `localhost` and `127.0.0.1` signed by it.
pub struct TestCert {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// The leaf certificate, PEM and DER.
    pub cert_pem: String,
    /// The leaf's DER.
    pub cert_der: Vec<u8>,
    /// The leaf's private key, PKCS#8 PEM and DER.
    pub key_pem: String,
    /// The leaf's key, PKCS#8 DER.
    pub key_der: Vec<u8>,
}

impl TestCert {
    /// Makes one.
    pub fn new(ca_name: &str) -> TestCert {
        let ca_key = rcgen::KeyPair::generate().expect("ca key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, ca_name);
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("ca");
        let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
        let leaf =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("leaf params")
                .signed_by(&leaf_key, &ca)
                .expect("leaf");
        TestCert {
            ca_pem: ca.pem(),
            cert_pem: leaf.pem(),
            cert_der: leaf.der().to_vec(),
            key_pem: leaf_key.serialize_pem(),
            key_der: leaf_key.serialize_der(),
        }
    }

    /// A rustls client config that trusts only this CA and offers `alpn`.
    pub fn client_config(&self, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        let ca = rustls::pki_types::CertificateDer::from_pem_slice(self.ca_pem.as_bytes())
            .expect("ca pem");
        roots.add(ca).expect("root");
        let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("tls versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(cfg)
    }
}

/// The running HTTPS origin.
pub struct TlsOrigin {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The CA certificate (PEM) that signed its certificate.
    pub ca_pem: String,
    hits: Arc<AtomicUsize>,
}

impl TlsOrigin {
    /// Serves `body` as `content_type` to every request.
    pub fn start(body: Vec<u8>, content_type: &'static str) -> TlsOrigin {
        Self::start_with(body, content_type, None)
    }

    /// Like [`TlsOrigin::start`], and with `clients_from`, only clients presenting a
    /// certificate signed by that CA complete the handshake (mutual TLS).
    pub fn start_with(
        body: Vec<u8>,
        content_type: &'static str,
        clients_from: Option<&TestCert>,
    ) -> TlsOrigin {
        let tc = TestCert::new("pixgate test CA");
        let key = rustls::pki_types::PrivatePkcs8KeyDer::from(tc.key_der.clone());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("tls versions");
        let builder = match clients_from {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                let der = rustls::pki_types::CertificateDer::from_pem_slice(ca.ca_pem.as_bytes())
                    .expect("client ca");
                roots.add(der).expect("client root");
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .expect("client verifier");
                builder.with_client_cert_verifier(verifier)
            }
        };
        let cfg = builder
            .with_single_cert(vec![tc.cert_der.clone().into()], key.into())
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let body = Arc::new(body);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("rt");
            rt.block_on(async move {
                let l = tokio::net::TcpListener::from_std(listener).expect("listener");
                loop {
                    let Ok((tcp, _)) = l.accept().await else { continue };
                    let (acceptor, body, h) = (acceptor.clone(), body.clone(), h.clone());
                    tokio::spawn(async move {
                        let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                        let mut req = Vec::new();
                        let mut buf = [0u8; 1024];
                        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                            match tls.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => req.extend_from_slice(&buf[..n]),
                            }
                        }
                        h.fetch_add(1, Ordering::SeqCst);
                        let head = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = tls.write_all(head.as_bytes()).await;
                        let _ = tls.write_all(&body).await;
                        let _ = tls.shutdown().await;
                    });
                }
            });
        });
        TlsOrigin {
            addr,
            ca_pem: tc.ca_pem,
            hits,
        }
    }

    /// Requests answered so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}
