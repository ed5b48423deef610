//! The gateway's self-signed certificate and its QUIC/TLS server configuration.

use std::net::IpAddr;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::GatewayError;

/// ALPN protocol id of HTTP/3.
pub const ALPN_H3: &[u8] = b"h3";

/// A certificate made at start, with its key.
pub struct SelfSigned {
    /// The certificate, DER.
    pub der: CertificateDer<'static>,
    /// The certificate, PEM.
    pub pem: String,
    key: PrivatePkcs8KeyDer<'static>,
}

impl std::fmt::Debug for SelfSigned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelfSigned")
            .field("der_len", &self.der.len())
            .finish_non_exhaustive()
    }
}

impl SelfSigned {
    /// A fresh certificate for `localhost`, `127.0.0.1`, `::1` and `listen_ip` (unless it is a
    /// wildcard address).
    pub fn generate(listen_ip: IpAddr) -> Result<Self, rcgen::Error> {
        let mut names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        if !listen_ip.is_unspecified() && !listen_ip.is_loopback() {
            names.push(listen_ip.to_string());
        }
        let certified = rcgen::generate_simple_self_signed(names)?;
        Ok(Self {
            der: certified.cert.der().clone(),
            pem: certified.cert.pem(),
            key: PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()),
        })
    }
}

/// The aws-lc-rs provider, named explicitly so that no process-wide default is needed.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// QUIC server configuration: TLS 1.3, ALPN `h3`, the self-signed certificate.
pub fn server_config(cert: &SelfSigned) -> Result<quinn::ServerConfig, GatewayError> {
    let tls_error = |e: &dyn std::fmt::Display| GatewayError::Tls(e.to_string());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| tls_error(&e))?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der.clone()],
            PrivateKeyDer::Pkcs8(cert.key.clone_key()),
        )
        .map_err(|e| tls_error(&e))?;
    tls.alpn_protocols = vec![ALPN_H3.to_vec()];
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(|e| tls_error(&e))?;
    Ok(quinn::ServerConfig::with_crypto(Arc::new(quic)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_is_pem_and_der_of_the_same_thing() {
        let cert = SelfSigned::generate("127.0.0.1".parse().unwrap()).unwrap();
        assert!(cert.pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(cert.der.len() > 100);
        assert!(server_config(&cert).is_ok());
    }
}
