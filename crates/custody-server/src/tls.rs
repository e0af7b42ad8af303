//! TLS for `custody serve --tls-cert --tls-key`: rustls with the aws-lc-rs provider.
//!
//! Handshakes run in their own tasks (with a deadline), so a slow or silent client never holds
//! up the accept loop; finished connections are handed to axum through [`TlsListener`], which
//! keeps axum's graceful shutdown.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The TLS server configuration type (rustls).
pub use rustls::ServerConfig;

/// A handshake not finished by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Finished handshakes waiting for axum to take them.
const READY_QUEUE: usize = 1024;

/// Why the certificate or key cannot be used (an operational error: exit 2).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "TLS certificate {path}: {error} (give a PEM file with the certificate chain, leaf first)"
    )]
    Cert { path: String, error: String },
    #[error(
        "TLS key {path}: {error} (give a PEM file with the private key: PKCS#8, SEC1 or PKCS#1)"
    )]
    Key { path: String, error: String },
    #[error("TLS certificate {cert} and key {key} do not work together: {error}")]
    Config {
        cert: String,
        key: String,
        error: String,
    },
}

/// Reads a PEM certificate chain and private key into a server configuration (HTTP/1.1).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let cert_error = |error: String| TlsError::Cert {
        path: cert.display().to_string(),
        error,
    };
    let key_error = |error: String| TlsError::Key {
        path: key.display().to_string(),
        error,
    };
    let cert_bytes = std::fs::read(cert).map_err(|e| cert_error(e.to_string()))?;
    let chain = CertificateDer::pem_slice_iter(&cert_bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_error(format!("not PEM: {e}")))?;
    if chain.is_empty() {
        return Err(cert_error("no CERTIFICATE block".into()));
    }
    let key_bytes = std::fs::read(key).map_err(|e| key_error(e.to_string()))?;
    let private = PrivateKeyDer::from_pem_slice(&key_bytes)
        .map_err(|e| key_error(format!("no private key: {e}")))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config_error = |error: String| TlsError::Config {
        cert: cert.display().to_string(),
        key: key.display().to_string(),
        error,
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| config_error(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| config_error(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// TCP accept + TLS handshake, as an axum listener.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
    acceptor: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Starts accepting on `listener`. Must be called inside the runtime.
    pub fn new(listener: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(READY_QUEUE);
        let tls = TlsAcceptor::from(config);
        let acceptor = tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let (tls, tx) = (tls.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            ready,
            addr,
            acceptor,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if let Some(conn) = self.ready.recv().await {
                return conn;
            }
            // The acceptor stopped (it never does on its own): wait for shutdown.
            std::future::pending::<()>().await;
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}
