//! The SSH keys of a Secret: `identity` (is it encrypted?), `known_hosts`, `password`.

use base64::Engine;

use super::auth::{AuthError, SecretData, Sensitive, SshCredentials, text};

/// `identity` and `known_hosts` (both required, checked for shape), and `password` as the
/// passphrase when the key is encrypted.
pub(crate) fn ssh_from_secret(data: &SecretData) -> Result<SshCredentials, AuthError> {
    let identity = data
        .get("identity")
        .ok_or(AuthError::MissingSshKey { key: "identity" })?;
    let known_hosts = data
        .get("known_hosts")
        .ok_or(AuthError::MissingSshKey { key: "known_hosts" })?;
    let encrypted = ssh_key_is_encrypted(identity)?;
    if !has_host_key_line(known_hosts) {
        let why = "it has no '<host> <key type> <key>' line";
        return Err(AuthError::Invalid {
            key: "known_hosts",
            why,
        });
    }
    let passphrase = match (encrypted, text(data, "password")?) {
        (true, None) => return Err(AuthError::EncryptedKeyWithoutPassword),
        (true, Some(pass)) => Some(Sensitive::new(
            pass.trim_end_matches(['\r', '\n']).to_owned(),
        )),
        (false, _) => None,
    };
    Ok(SshCredentials {
        identity: Sensitive::new(identity.clone()),
        known_hosts: known_hosts.clone(),
        passphrase,
    })
}

/// Whether a PEM private key needs a passphrase: OpenSSH keys name their cipher, PKCS#8 keys
/// say `ENCRYPTED PRIVATE KEY`, and legacy PEM keys carry a `Proc-Type: 4,ENCRYPTED` header.
pub(crate) fn ssh_key_is_encrypted(pem: &[u8]) -> Result<bool, AuthError> {
    let invalid = |why| AuthError::Invalid {
        key: "identity",
        why,
    };
    let pem = std::str::from_utf8(pem).map_err(|_| invalid("it is not a PEM private key"))?;
    const OPENSSH_BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
    const OPENSSH_END: &str = "-----END OPENSSH PRIVATE KEY-----";
    if let Some(start) = pem.find(OPENSSH_BEGIN) {
        let body = &pem[start + OPENSSH_BEGIN.len()..];
        let body = &body[..body
            .find(OPENSSH_END)
            .ok_or_else(|| invalid("the PEM block is not closed"))?];
        let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| invalid("the OpenSSH key is not valid base64"))?;
        // "openssh-key-v1\0", then the cipher name as a length-prefixed string.
        let rest = raw
            .strip_prefix(b"openssh-key-v1\0")
            .ok_or_else(|| invalid("the OpenSSH key has an unknown format"))?;
        let len = rest
            .get(..4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or_else(|| invalid("the OpenSSH key is truncated"))?;
        let cipher = rest
            .get(4..4 + len)
            .ok_or_else(|| invalid("the OpenSSH key is truncated"))?;
        return Ok(cipher != b"none");
    }
    if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Ok(true);
    }
    if pem.contains("PRIVATE KEY-----") {
        return Ok(pem.contains("Proc-Type: 4,ENCRYPTED"));
    }
    Err(invalid("it is not a PEM private key"))
}

fn has_host_key_line(known_hosts: &[u8]) -> bool {
    String::from_utf8_lossy(known_hosts).lines().any(|line| {
        let line = line.trim();
        !line.is_empty() && !line.starts_with('#') && line.split_whitespace().count() >= 3
    })
}
