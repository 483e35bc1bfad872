//! The TLS settings of a git HTTPS connection, made without reading the disk.
//!
//! gix builds a new reqwest client for every connection, and reqwest's default verifier reads
//! and parses every certificate of the system's trust store each time: for an idle ref
//! listing that was most of its CPU. Here the system's trust anchors are read once per process,
//! and each connection gets a rustls configuration over them (plus the Secret's `ca.crt`, and
//! its client certificate), which reqwest takes as it is.

use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use super::auth::{AuthError, ClientCertificate};

/// The system's trust anchors (`SSL_CERT_FILE`, `SSL_CERT_DIR` or the usual places), read at
/// the first HTTPS connection.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                tracing::warn!(%error, "reading the system's trusted certificates");
            }
            let mut roots = RootCertStore::empty();
            let (added, ignored) = roots.add_parsable_certificates(found.certs);
            tracing::debug!(added, ignored, "system trust anchors loaded");
            Arc::new(roots)
        })
        .clone()
}

/// The crypto provider every rustls configuration here uses (aws-lc-rs, as reqwest's own).
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

/// The client configuration for a connection: the system's anchors plus `ca_pem`'s
/// certificates, and `client` as the client certificate when given.
pub(crate) fn client_config(
    ca_pem: Option<&[u8]>,
    client: Option<&ClientCertificate>,
) -> Result<ClientConfig, AuthError> {
    let invalid = |key, why| AuthError::Invalid { key, why };
    let roots = match ca_pem {
        None => system_roots(),
        Some(pem) => {
            let certs = CertificateDer::pem_slice_iter(pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| invalid("ca.crt", "it holds no PEM certificate"))?;
            if certs.is_empty() {
                return Err(invalid("ca.crt", "it holds no PEM certificate"));
            }
            let mut roots = RootCertStore::clone(&system_roots());
            for cert in certs {
                roots.add(cert).map_err(|_| {
                    invalid("ca.crt", "a certificate in it cannot be a trust anchor")
                })?;
            }
            Arc::new(roots)
        }
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|_| invalid("ca.crt", "no TLS version is available"))?
        .with_root_certificates(roots);
    match client {
        None => Ok(builder.with_no_client_auth()),
        Some(client) => {
            let bad = || invalid("tls.crt", "not a PEM certificate and key");
            let chain = CertificateDer::pem_slice_iter(&client.cert_pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| bad())?;
            if chain.is_empty() {
                return Err(bad());
            }
            let key = PrivateKeyDer::from_pem_slice(client.key_pem.expose()).map_err(|_| bad())?;
            builder.with_client_auth_cert(chain, key).map_err(|_| bad())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::auth::Sensitive;

    fn self_signed() -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["git.example".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("certificate");
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn the_system_anchors_are_read_once_and_a_secret_ca_is_added_to_a_copy() {
        let first = system_roots();
        assert!(
            Arc::ptr_eq(&first, &system_roots()),
            "read once per process"
        );
        let (ca, _) = self_signed();
        client_config(Some(ca.as_bytes()), None).expect("config with the Secret's CA");
        assert_eq!(
            system_roots().len(),
            first.len(),
            "the shared anchors stay as they were"
        );
    }

    #[test]
    fn a_client_certificate_is_used_and_unusable_pem_is_refused_naming_the_key() {
        let (cert, key) = self_signed();
        let client = ClientCertificate {
            cert_pem: cert.clone().into_bytes(),
            key_pem: Sensitive::new(key.into_bytes()),
        };
        let config = client_config(None, Some(&client)).expect("config");
        assert!(config.client_auth_cert_resolver.has_certs());

        let error = client_config(Some(b"not a certificate"), None).expect_err("refused");
        assert!(error.to_string().contains("ca.crt"), "{error}");
        let wrong_key = ClientCertificate {
            cert_pem: cert.into_bytes(),
            key_pem: Sensitive::new(b"no key here".to_vec()),
        };
        let error = client_config(None, Some(&wrong_key)).expect_err("refused");
        assert!(error.to_string().contains("tls.crt"), "{error}");
    }
}
