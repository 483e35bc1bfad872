//! The test certificate authority and the HTTPS server certificate it signs.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::Error;

/// A CA and the rustls configuration of a server whose certificate it signed.
pub(crate) struct Tls {
    pub(crate) ca_pem: String,
    pub(crate) server_config: Arc<rustls::ServerConfig>,
}

/// Generates a fresh CA and a server certificate for `127.0.0.1` and `localhost`.
///
/// A private CA (rather than a self-signed leaf) is what clients are configured with in real
/// clusters (`http.sslCAInfo`, a `caFile` in a Secret), so tests exercise that same path.
pub(crate) fn generate() -> Result<Tls, Error> {
    let ca_key = KeyPair::generate().map_err(Error::GenerateCertificate)?;
    let mut ca_params =
        CertificateParams::new(Vec::<String>::new()).map_err(Error::GenerateCertificate)?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Mooring test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .map_err(Error::GenerateCertificate)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().map_err(Error::GenerateCertificate)?;
    let mut server_params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .map_err(Error::GenerateCertificate)?;
    server_params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .map_err(Error::GenerateCertificate)?;

    // An explicit provider: the process-wide default may be unset or ambiguous in a test binary
    // that links both rustls providers.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    let chain = vec![
        server_cert.der().clone(),
        CertificateDer::from(ca_cert.der().to_vec()),
    ];
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(Error::ConfigureTls)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(Error::ConfigureTls)?;
    // The server speaks HTTP/1.1 only; announcing it keeps clients from trying h2.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];

    Ok(Tls {
        ca_pem: ca_cert.pem(),
        server_config: Arc::new(config),
    })
}
