//! TLS for the control API: a rustls server (aws-lc-rs, the provider DTLS already brings;
//! TLS 1.2 and 1.3; ALPN `http/1.1`) from the PEM files `control_tls_cert` and
//! `control_tls_key`.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A TLS file that cannot be used: which key names it, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct ControlTlsError {
    /// The config key: `control_tls_cert` or `control_tls_key`.
    pub key: &'static str,
    /// What is wrong with the file.
    pub reason: String,
}

/// Builds the control API's TLS server configuration from a PEM certificate chain (leaf first)
/// and a PEM private key (PKCS#8, PKCS#1 or SEC1) that matches the leaf.
pub fn server_config(
    cert: &Path,
    key: &Path,
) -> Result<Arc<rustls::ServerConfig>, ControlTlsError> {
    let cert_error = |reason: String| ControlTlsError {
        key: "control_tls_cert",
        reason: format!("{}: {reason}", cert.display()),
    };
    let key_error = |reason: String| ControlTlsError {
        key: "control_tls_key",
        reason: format!("{}: {reason}", key.display()),
    };
    let cert_pem = std::fs::read(cert).map_err(|e| cert_error(format!("cannot read ({e})")))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| cert_error(format!("not a PEM certificate file ({e})")))?;
    if chain.is_empty() {
        return Err(cert_error(
            "holds no CERTIFICATE block; expected a PEM certificate chain, leaf first".to_owned(),
        ));
    }
    let key_pem = std::fs::read(key).map_err(|e| key_error(format!("cannot read ({e})")))?;
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        key_error(format!(
            "no usable PEM private key (PKCS#8, PKCS#1 or SEC1) ({e})"
        ))
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| cert_error(format!("TLS setup failed ({e})")))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => key_error(format!(
                "does not match the certificate {} ({e})",
                cert.display()
            )),
            other => key_error(format!("not usable with the certificate ({other})")),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_garbage_or_mismatched_files_name_the_key() {
        let dir = std::env::temp_dir().join(format!("control-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let one = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let two = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        let other_key = dir.join("other-key.pem");
        let garbage = dir.join("garbage.pem");
        std::fs::write(&cert, one.cert.pem()).unwrap();
        std::fs::write(&key, one.signing_key.serialize_pem()).unwrap();
        std::fs::write(&other_key, two.signing_key.serialize_pem()).unwrap();
        std::fs::write(&garbage, "not pem at all\n").unwrap();

        let config = server_config(&cert, &key).unwrap();
        assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);

        let missing = dir.join("missing.pem");
        assert_eq!(
            server_config(&missing, &key).unwrap_err().key,
            "control_tls_cert"
        );
        assert_eq!(
            server_config(&garbage, &key).unwrap_err().key,
            "control_tls_cert"
        );
        assert_eq!(
            server_config(&cert, &missing).unwrap_err().key,
            "control_tls_key"
        );
        assert_eq!(
            server_config(&cert, &garbage).unwrap_err().key,
            "control_tls_key"
        );
        // Swapped files: the key file holds no certificate.
        assert_eq!(
            server_config(&key, &cert).unwrap_err().key,
            "control_tls_cert"
        );
        let err = server_config(&cert, &other_key).unwrap_err();
        assert_eq!(err.key, "control_tls_key");
        assert!(err.reason.contains("does not match"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
