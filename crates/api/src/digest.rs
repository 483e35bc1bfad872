//! Artifact digests: `<algorithm>:<hex>`, for example `sha256:<64 hex>`.

use std::fmt;
use std::str::FromStr;

use crate::revision::normalize_hex;

/// Hash algorithm of an artifact digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    /// SHA-256, 64 hex digits; what Mooring produces.
    Sha256,
    /// SHA-384, 96 hex digits.
    Sha384,
    /// SHA-512, 128 hex digits.
    Sha512,
}

impl DigestAlgorithm {
    /// The algorithm's name in a digest.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    /// Number of hex digits of a digest.
    pub fn hex_len(self) -> usize {
        match self {
            Self::Sha256 => 64,
            Self::Sha384 => 96,
            Self::Sha512 => 128,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha256" => Some(Self::Sha256),
            "sha384" => Some(Self::Sha384),
            "sha512" => Some(Self::Sha512),
            _ => None,
        }
    }
}

/// Why a digest was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestError {
    input: String,
    problem: &'static str,
}

impl fmt::Display for DigestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid digest {:?}: {}", self.input, self.problem)
    }
}

impl std::error::Error for DigestError {}

/// The digest of an artifact file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Digest {
    algorithm: DigestAlgorithm,
    hex: String,
}

impl Digest {
    /// A digest from the raw hash output.
    pub fn from_bytes(algorithm: DigestAlgorithm, bytes: &[u8]) -> Result<Self, DigestError> {
        if bytes.len() * 2 != algorithm.hex_len() {
            return Err(DigestError {
                input: format!("{} bytes", bytes.len()),
                problem: "the length does not match the algorithm",
            });
        }
        let hex = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self { algorithm, hex })
    }

    /// The hash algorithm.
    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// The hash, in lower-case hex.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.hex)
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let error = |problem| DigestError {
            input: input.to_owned(),
            problem,
        };
        let (algorithm, hex) = input
            .split_once(':')
            .ok_or_else(|| error("expected <algorithm>:<hex>"))?;
        let algorithm = DigestAlgorithm::from_name(algorithm)
            .ok_or_else(|| error("the algorithm is sha256, sha384 or sha512"))?;
        if hex.len() != algorithm.hex_len() {
            return Err(error("the hex length does not match the algorithm"));
        }
        let hex = normalize_hex(hex).ok_or_else(|| error("the hash is hexadecimal"))?;
        Ok(Self { algorithm, hex })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

    #[test]
    fn parses_and_formats_sha256() {
        let digest: Digest = format!("sha256:{HEX}").parse().expect("valid");
        assert_eq!(digest.algorithm(), DigestAlgorithm::Sha256);
        assert_eq!(digest.hex(), HEX);
        assert_eq!(digest.to_string(), format!("sha256:{HEX}"));
    }

    #[test]
    fn normalizes_upper_case_hex() {
        let digest: Digest = format!("sha256:{}", HEX.to_uppercase())
            .parse()
            .expect("valid");
        assert_eq!(digest.hex(), HEX);
    }

    #[test]
    fn parses_longer_algorithms() {
        let sha512: Digest = format!("sha512:{}", "ab".repeat(64))
            .parse()
            .expect("valid");
        assert_eq!(sha512.algorithm(), DigestAlgorithm::Sha512);
        let sha384: Digest = format!("sha384:{}", "ab".repeat(48))
            .parse()
            .expect("valid");
        assert_eq!(sha384.algorithm(), DigestAlgorithm::Sha384);
    }

    #[test]
    fn builds_from_hash_bytes() {
        let bytes: Vec<u8> = (0..32).collect();
        let digest = Digest::from_bytes(DigestAlgorithm::Sha256, &bytes).expect("32 bytes");
        assert_eq!(
            digest.to_string(),
            "sha256:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
        );
        assert!(Digest::from_bytes(DigestAlgorithm::Sha256, &bytes[..31]).is_err());
    }

    #[test]
    fn rejects_malformed_digests() {
        for bad in [
            String::new(),
            HEX.to_owned(),
            format!("md5:{HEX}"),
            format!("sha256:{}", &HEX[..63]),
            format!("sha256:{}g", &HEX[..63]),
            format!("sha512:{HEX}"),
            format!("sha256:{HEX}:x"),
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad:?} should be rejected");
        }
    }
}
