//! Downloading an artifact to a temporary file while hashing it.

use std::path::Path;

use futures::StreamExt;
use mooring_api::{Digest, DigestAlgorithm};
use sha2::Digest as _;
use tokio::io::AsyncWriteExt;

use super::{ArtifactError, Limits, storage};

/// A running hash of the digest's algorithm.
enum Hasher {
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    fn new(algorithm: DigestAlgorithm) -> Self {
        match algorithm {
            DigestAlgorithm::Sha256 => Self::Sha256(sha2::Sha256::new()),
            DigestAlgorithm::Sha384 => Self::Sha384(sha2::Sha384::new()),
            DigestAlgorithm::Sha512 => Self::Sha512(sha2::Sha512::new()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(bytes),
            Self::Sha384(h) => h.update(bytes),
            Self::Sha512(h) => h.update(bytes),
        }
    }

    fn finish(self, algorithm: DigestAlgorithm) -> Result<Digest, mooring_api::DigestError> {
        let bytes = match self {
            Self::Sha256(h) => h.finalize().to_vec(),
            Self::Sha384(h) => h.finalize().to_vec(),
            Self::Sha512(h) => h.finalize().to_vec(),
        };
        Digest::from_bytes(algorithm, &bytes)
    }
}

/// Downloads `url` into a temporary file in `dir` (deleted when dropped), enforcing the
/// download limit, and returns it only when its digest is `expected`.
pub async fn to_temp_file(
    client: &reqwest::Client,
    url: &str,
    expected: &Digest,
    dir: &Path,
    limits: &Limits,
) -> Result<tempfile::NamedTempFile, ArtifactError> {
    let transport = |source| ArtifactError::Download {
        url: url.to_owned(),
        source,
    };
    let too_large = || ArtifactError::DownloadTooLarge {
        url: url.to_owned(),
        limit: limits.max_download_bytes,
    };
    let response = client.get(url).send().await.map_err(transport)?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Err(ArtifactError::NotFound {
            url: url.to_owned(),
        });
    }
    if !status.is_success() {
        return Err(ArtifactError::HttpStatus {
            url: url.to_owned(),
            status: status.as_u16(),
        });
    }
    if response
        .content_length()
        .is_some_and(|len| len > limits.max_download_bytes)
    {
        return Err(too_large());
    }
    let temp = tempfile::Builder::new()
        .prefix(".download-")
        .suffix(".tar.gz")
        .tempfile_in(dir)
        .map_err(|e| storage("create", dir, e))?;
    let mut file =
        tokio::fs::File::from_std(temp.reopen().map_err(|e| storage("open", temp.path(), e))?);
    let mut hasher = Hasher::new(expected.algorithm());
    let mut total: u64 = 0;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(transport)?;
        total += chunk.len() as u64;
        if total > limits.max_download_bytes {
            return Err(too_large());
        }
        hasher.update(&chunk);
        file.write_all(&chunk)
            .await
            .map_err(|e| storage("write", temp.path(), e))?;
    }
    file.flush()
        .await
        .map_err(|e| storage("write", temp.path(), e))?;
    let actual = hasher
        .finish(expected.algorithm())
        .map_err(ArtifactError::InvalidDigest)?;
    if &actual != expected {
        return Err(ArtifactError::DigestMismatch {
            expected: expected.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(temp)
}
