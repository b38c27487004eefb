//! TLS to clients (issue 20): `tls: { cert, key }` makes `listen` a TLS listener (rustls through
//! pingora, ALPN `h2` and `http/1.1`). The certificate is served by [`CertStore`], a rustls
//! certificate resolver whose key pair is swapped in place by [`Reloader`] on SIGHUP, so a
//! renewed certificate takes effect for new handshakes without a restart (open connections
//! keep the one they began with). A file that does not load keeps the previous certificate and
//! is counted and logged.
//!
//! pingora's own `TlsSettings::build` panics on unreadable files, so the files are loaded here
//! first (at config validation and at start) and the listener only ever sees the resolver.

use crate::telemetry::metrics;
use arc_swap::ArcSwap;
use pingora::listeners::tls::TlsSettings;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use pingora::tls::sign::CertifiedKey;
use pingora::tls::{
    CertificateDer, ClientHello, CryptoProvider, PrivateKeyDer, ResolvesServerCert,
};
use pingora::utils::tls::{parse_x509, CertKey, WrappedX509};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `tls:` in the config.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the certificate chain (leaf first). Required.
    pub cert: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1). Required.
    pub key: PathBuf,
    /// Offer HTTP/2 by ALPN (`h2`, then `http/1.1`). Default `true`.
    #[serde(default = "yes")]
    pub h2: bool,
}

fn yes() -> bool {
    true
}

impl TlsConfig {
    /// `(key, problem)` for files that do not give a usable certificate and key.
    pub fn validate(&self) -> Vec<(String, String)> {
        match load(&self.cert, &self.key) {
            Ok(_) => Vec::new(),
            Err(e) => vec![("tls.cert".into(), e)],
        }
    }
}

/// Loads a certificate chain and its private key from PEM files; checks that they belong
/// together.
pub fn load(cert: &Path, key: &Path) -> Result<CertifiedKey, String> {
    let (certs, k, provider) = read_pair(cert, key)?;
    CertifiedKey::from_der(certs, k, &provider).map_err(|e| {
        format!(
            "{} and {} do not make a usable key pair: {e}",
            cert.display(),
            key.display()
        )
    })
}

type Pair = (
    Vec<CertificateDer<'static>>,
    PrivateKeyDer<'static>,
    Arc<CryptoProvider>,
);

fn read_pair(cert: &Path, key: &Path) -> Result<Pair, String> {
    pingora::tls::install_default_crypto_provider();
    let (c, k) = (cert.display().to_string(), key.display().to_string());
    let (certs, key) = pingora::tls::load_certs_and_key_files(&c, &k)
        .map_err(|e| format!("cannot read {c} / {k}: {e}"))?
        .ok_or_else(|| format!("{c} has no certificate or {k} no private key (PEM)"))?;
    let provider = CryptoProvider::get_default()
        .ok_or("no TLS crypto provider")?
        .clone();
    Ok((certs, key, provider))
}

/// A client certificate for an https origin (`origin.client_cert` / `origin.client_key`),
/// checked as [`load`] checks the listener's (pingora's own parser panics on bad input).
pub fn client_cert(cert: &Path, key: &Path) -> Result<CertKey, String> {
    load(cert, key)?;
    let (certs, key, _) = read_pair(cert, key)?;
    Ok(CertKey::new(
        certs.iter().map(|c| c.to_vec()).collect(),
        key.secret_der().to_vec(),
    ))
}

/// The CA certificates of a PEM file (`origin.ca_file`), each checked by rustls' parser.
pub fn ca_list(path: &Path) -> Result<Arc<[WrappedX509]>, String> {
    use rustls_pki_types::pem::PemObject;
    let shown = path.display();
    let ders = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read {shown}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{shown} is not PEM certificates: {e}"))?;
    if ders.is_empty() {
        return Err(format!("{shown} holds no certificate"));
    }
    let mut store = pingora::tls::RootCertStore::empty();
    for d in &ders {
        store
            .add(d.clone())
            .map_err(|e| format!("{shown} has a certificate rustls cannot use: {e}"))?;
    }
    Ok(ders
        .into_iter()
        .map(|d| WrappedX509::new(d.to_vec(), parse_x509))
        .collect::<Vec<_>>()
        .into())
}

/// The certificate every handshake gets; swapped whole on reload.
#[derive(Debug)]
pub struct CertStore(ArcSwap<CertifiedKey>);

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

impl CertStore {
    /// The store for `cfg`'s files (loaded now).
    pub fn open(cfg: &TlsConfig) -> Result<Arc<CertStore>, String> {
        Ok(Arc::new(CertStore(ArcSwap::from_pointee(load(
            &cfg.cert, &cfg.key,
        )?))))
    }

    /// Loads the files again; on failure the current certificate stays.
    pub fn reload(&self, cfg: &TlsConfig) -> Result<(), String> {
        let k = load(&cfg.cert, &cfg.key)?;
        self.0.store(Arc::new(k));
        Ok(())
    }

    /// pingora listener settings that use this store (and ALPN h2 when `h2`).
    pub fn settings(self: &Arc<Self>, h2: bool) -> pingora::Result<TlsSettings> {
        // The paths are ignored once a resolver is set.
        let mut s = TlsSettings::intermediate("", "")?;
        s.set_cert_resolver(self.clone());
        if h2 {
            s.enable_h2();
        }
        Ok(s)
    }
}

/// Reloads the certificate on SIGHUP.
pub struct Reloader {
    /// The store the listener reads.
    pub store: Arc<CertStore>,
    /// Where the files are.
    pub cfg: TlsConfig,
}

#[async_trait::async_trait]
impl BackgroundService for Reloader {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::error!("cannot listen for SIGHUP: TLS certificates will not be reloaded");
            return;
        };
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = hup.recv() => {
                    let result = match self.store.reload(&self.cfg) {
                        Ok(()) => {
                            tracing::info!("TLS certificate reloaded");
                            "ok"
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "TLS certificate reload failed; the previous one stays");
                            "error"
                        }
                    };
                    metrics::TLS_RELOADS.with_label_values(&[result]).inc();
                }
            }
        }
    }
}
