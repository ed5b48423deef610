//! TLS client settings of the reporter: the bundled Mozilla roots (webpki-roots, no system
//! store needed) plus an optional extra root from `report_ca_file` (the dev h3-gateway's
//! self-signed certificate). Crypto: aws-lc-rs, the provider DTLS already brings.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;

use super::ReportSetupError;

/// ALPN id of HTTP/3.
pub const ALPN_H3: &[u8] = b"h3";
/// ALPN id of HTTP/1.1.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The web's roots, plus every certificate in `ca_file` (PEM, or one DER certificate).
pub fn root_store(ca_file: Option<&Path>) -> Result<RootCertStore, ReportSetupError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let ca_error = |reason: String| ReportSetupError::CaFile {
            path: path.to_owned(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
        let certs: Vec<CertificateDer<'static>> = if bytes.starts_with(b"-----BEGIN") {
            CertificateDer::pem_slice_iter(&bytes)
                .collect::<Result<_, _>>()
                .map_err(|e| ca_error(format!("not a PEM certificate file ({e})")))?
        } else {
            vec![CertificateDer::from(bytes)]
        };
        if certs.is_empty() {
            return Err(ca_error("holds no CERTIFICATE block".to_owned()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| ca_error(format!("not a usable certificate ({e})")))?;
        }
    }
    Ok(roots)
}

/// A client configuration trusting `roots` and offering `alpn`; `tls13_only` for QUIC.
pub fn client_config(
    roots: RootCertStore,
    alpn: &[u8],
    tls13_only: bool,
) -> Result<rustls::ClientConfig, ReportSetupError> {
    let versions: &[&rustls::SupportedProtocolVersion] = if tls13_only {
        &[&rustls::version::TLS13]
    } else {
        rustls::DEFAULT_VERSIONS
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .map_err(|e| ReportSetupError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_bad_ca_file_is_an_error_naming_the_file() {
        let missing = Path::new("/nonexistent/ca.pem");
        let err = root_store(Some(missing)).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");

        let dir = std::env::temp_dir().join(format!("report-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty_pem = dir.join("empty.pem");
        std::fs::write(&empty_pem, "-----BEGIN NOTHING-----\n").unwrap();
        assert!(root_store(Some(&empty_pem)).is_err());
        let garbage_der = dir.join("garbage.der");
        std::fs::write(&garbage_der, [0x30, 0x01, 0x00]).unwrap();
        assert!(root_store(Some(&garbage_der)).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn default_roots_are_the_web_roots() {
        let roots = root_store(None).unwrap();
        assert!(roots.len() > 100);
        assert!(client_config(roots, ALPN_H3, true).is_ok());
    }
}
