//! TLS for `custody serve --tls-cert --tls-key`: rustls with the aws-lc-rs provider.
//!
//! Handshakes run in each connection's own task, within the listener's header timeout
//! (`crate::listener`), so a slow or silent client never holds up the accept loop.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The TLS server configuration type (rustls).
pub use rustls::ServerConfig;

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
