//! The trusted public keys of a verification Secret.
//!
//! Every entry of the Secret is read, whatever its name: an entry holding
//! `-----BEGIN PGP PUBLIC KEY BLOCK-----` is one or more armored OpenPGP keys (several blocks,
//! or several keys in one block); any other entry holds SSH keys, one a line, either as plain
//! public keys (`ssh-ed25519 AAAA... comment`) or as git's `allowed_signers` lines
//! (`principals [options] ssh-ed25519 AAAA...`), of which the options `namespaces`,
//! `valid-after` and `valid-before` are honoured.

use std::collections::BTreeMap;

use pgp::composed::{Deserializable, SignedPublicKey};

/// A trusted SSH signing key.
#[derive(Debug, Clone)]
pub struct SshSigner {
    /// The Secret entry it came from.
    pub entry: String,
    /// The principals (`allowed_signers`) or the key's comment; may be empty.
    pub identity: String,
    /// The key.
    pub key: ssh_key::PublicKey,
    /// `valid-after`, as seconds since the epoch.
    pub valid_after: Option<i64>,
    /// `valid-before`, as seconds since the epoch: the key's expiry.
    pub valid_before: Option<i64>,
}

/// A trusted OpenPGP key (certificate).
#[derive(Debug, Clone)]
pub struct OpenPgpKey {
    /// The Secret entry it came from.
    pub entry: String,
    /// The certificate.
    pub key: SignedPublicKey,
}

/// Every trusted key of a Secret.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    /// OpenPGP certificates.
    pub openpgp: Vec<OpenPgpKey>,
    /// SSH signing keys.
    pub ssh: Vec<SshSigner>,
}

/// A Secret entry that holds no usable key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry '{entry}': {detail}")]
pub struct KeyError {
    /// The entry's name.
    pub entry: String,
    /// What is wrong with it.
    pub detail: String,
}

const ARMOR_BEGIN: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
const ARMOR_END: &str = "-----END PGP PUBLIC KEY BLOCK-----";

/// SSH key types git can sign with.
const SSH_KEY_TYPES: [&str; 7] = [
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

impl Keyring {
    /// Reads every entry of a Secret's data. Fails on an entry that is not keys, and when
    /// there is no key at all.
    pub fn from_secret(data: &BTreeMap<String, Vec<u8>>) -> Result<Keyring, KeyError> {
        let mut ring = Keyring::default();
        for (entry, value) in data {
            let text = std::str::from_utf8(value).map_err(|_| KeyError {
                entry: entry.clone(),
                detail: "not text: expected armored OpenPGP keys or SSH public keys".into(),
            })?;
            if text.contains(ARMOR_BEGIN) {
                ring.openpgp.extend(openpgp_keys(entry, text)?);
            } else {
                ring.ssh.extend(ssh_keys(entry, text)?);
            }
        }
        if ring.openpgp.is_empty() && ring.ssh.is_empty() {
            return Err(KeyError {
                entry: "*".into(),
                detail: "the Secret holds no public key".into(),
            });
        }
        Ok(ring)
    }
}

fn openpgp_keys(entry: &str, text: &str) -> Result<Vec<OpenPgpKey>, KeyError> {
    let error = |detail: String| KeyError {
        entry: entry.to_owned(),
        detail,
    };
    let mut keys = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(ARMOR_BEGIN) {
        let end = rest[start..]
            .find(ARMOR_END)
            .map(|i| start + i + ARMOR_END.len())
            .ok_or_else(|| error("an armored OpenPGP key block is not terminated".into()))?;
        let block = &rest[start..end];
        let (parsed, _) = SignedPublicKey::from_string_many(block)
            .map_err(|e| error(format!("reading an OpenPGP key block: {e}")))?;
        for key in parsed {
            let key = key.map_err(|e| error(format!("reading an OpenPGP key: {e}")))?;
            keys.push(OpenPgpKey {
                entry: entry.to_owned(),
                key,
            });
        }
        rest = &rest[end..];
    }
    if keys.is_empty() {
        return Err(error("no OpenPGP public key in the armored block".into()));
    }
    Ok(keys)
}

fn ssh_keys(entry: &str, text: &str) -> Result<Vec<SshSigner>, KeyError> {
    let mut keys = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = ssh_line(entry, line).map_err(|detail| KeyError {
            entry: entry.to_owned(),
            detail: format!("line {}: {detail}", number + 1),
        })?;
        if let Some(key) = key {
            keys.push(key);
        }
    }
    if keys.is_empty() {
        return Err(KeyError {
            entry: entry.to_owned(),
            detail: "neither an armored OpenPGP key nor an SSH public key".into(),
        });
    }
    Ok(keys)
}

/// One `allowed_signers` or public key line; `None` for a key restricted to namespaces other
/// than `git`.
fn ssh_line(entry: &str, line: &str) -> Result<Option<SshSigner>, String> {
    let tokens = tokenize(line);
    let at = tokens
        .iter()
        .position(|t| SSH_KEY_TYPES.contains(&t.as_str()))
        .ok_or("no SSH public key (ssh-ed25519, ecdsa-sha2-*, ssh-rsa) on the line")?;
    let key_text = tokens[at..].join(" ");
    let key = ssh_key::PublicKey::from_openssh(&key_text)
        .map_err(|e| format!("reading the SSH public key: {e}"))?;
    let (principals, options) = match at {
        0 => (None, &[][..]),
        _ => (Some(tokens[0].clone()), &tokens[1..at]),
    };
    let mut signer = SshSigner {
        entry: entry.to_owned(),
        identity: principals.unwrap_or_else(|| key.comment().to_owned()),
        key,
        valid_after: None,
        valid_before: None,
    };
    for option in options {
        let (name, value) = option.split_once('=').unwrap_or((option, ""));
        let value = value.trim_matches('"');
        match name.to_ascii_lowercase().as_str() {
            "namespaces" => {
                if !value.split(',').any(|ns| ns.trim() == "git") {
                    return Ok(None);
                }
            }
            "valid-after" => signer.valid_after = Some(ssh_time(value)?),
            "valid-before" => signer.valid_before = Some(ssh_time(value)?),
            "cert-authority" => {
                return Err("cert-authority (SSH certificates) is not supported".into());
            }
            other => return Err(format!("unknown allowed_signers option '{other}'")),
        }
    }
    Ok(Some(signer))
}

/// Splits on spaces outside double quotes.
fn tokenize(line: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

/// `YYYYMMDD[HHMM[SS]][Z]` as seconds since the epoch (UTC; ssh-keygen reads it in local time
/// without `Z`, a controller has no meaningful local time).
fn ssh_time(value: &str) -> Result<i64, String> {
    let digits = value.trim_end_matches(['Z', 'z']);
    let bad = || format!("invalid time '{value}': expected YYYYMMDD[HHMM[SS]]");
    if !digits.chars().all(|c| c.is_ascii_digit()) || ![8, 12, 14].contains(&digits.len()) {
        return Err(bad());
    }
    let part = |range: std::ops::Range<usize>| -> Result<i16, String> {
        digits
            .get(range)
            .map_or(Ok(0), |s| s.parse::<i16>().map_err(|_| bad()))
    };
    let date = jiff::civil::date(part(0..4)?, part(4..6)? as i8, part(6..8)? as i8);
    let time = jiff::civil::time(
        part(8..10)? as i8,
        part(10..12)? as i8,
        part(12..14)? as i8,
        0,
    );
    let stamp = date
        .to_datetime(time)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map_err(|_| bad())?;
    Ok(stamp.timestamp().as_second())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID1Voq3bzFlK5kXsU8VXgGyf56Rew2K1t1ORRVXiNdh8 alice@example.invalid";

    fn secret(entries: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn plain_and_allowed_signers_lines() {
        let data = secret(&[
            ("plain.pub", ED25519),
            (
                "allowed_signers",
                &format!(
                    "# team\nbob@x,carol@x namespaces=\"file,git\" valid-before=\"20300101\" {ED25519}\n\
                     other@x namespaces=\"file\" {ED25519}\n"
                ),
            ),
        ]);
        let ring = Keyring::from_secret(&data).expect("keys");
        assert!(ring.openpgp.is_empty());
        assert_eq!(
            ring.ssh.len(),
            2,
            "the key restricted to 'file' is not a git signer"
        );
        let identities: Vec<_> = ring.ssh.iter().map(|k| k.identity.as_str()).collect();
        assert_eq!(identities, ["bob@x,carol@x", "alice@example.invalid"]);
        assert_eq!(ring.ssh[0].valid_before, Some(1_893_456_000));
    }

    #[test]
    fn entries_that_are_not_keys_are_named() {
        let err = Keyring::from_secret(&secret(&[("keys", "hello\n")])).expect_err("not keys");
        assert_eq!(err.entry, "keys");
        assert!(err.detail.contains("no SSH public key"), "{err}");
        let err = Keyring::from_secret(&secret(&[])).expect_err("empty");
        assert!(err.detail.contains("no public key"), "{err}");
        let broken =
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----\n";
        let err = Keyring::from_secret(&secret(&[("a.asc", broken)])).expect_err("bad pgp");
        assert_eq!(err.entry, "a.asc");
        let err = Keyring::from_secret(&secret(&[("s", &format!("x cert-authority {ED25519}"))]))
            .expect_err("ca");
        assert!(err.detail.contains("cert-authority"), "{err}");
    }
}
