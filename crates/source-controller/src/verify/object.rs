//! Splitting a raw git commit or tag object into the bytes that were signed and the signature.
//!
//! A signed commit carries its signature in a `gpgsig` header whose continuation lines start
//! with a space; the signed payload is the object without that header. A signed tag carries
//! its signature at the end of the message; the payload is everything before it.

/// A signature found in a git object, by format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signature {
    /// An ASCII-armored OpenPGP signature (`-----BEGIN PGP SIGNATURE-----`).
    OpenPgp(String),
    /// An armored SSH signature (`-----BEGIN SSH SIGNATURE-----`, git's `gpg.format=ssh`).
    Ssh(String),
    /// A signature of another kind (X.509 through gpgsm), which is not verified.
    Other(String),
}

impl Signature {
    fn classify(armored: String) -> Signature {
        if armored.starts_with("-----BEGIN PGP SIGNATURE-----") {
            Signature::OpenPgp(armored)
        } else if armored.starts_with("-----BEGIN SSH SIGNATURE-----") {
            Signature::Ssh(armored)
        } else {
            Signature::Other(armored)
        }
    }
}

/// The signed bytes and the signature of a signed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// What the signer signed.
    pub payload: Vec<u8>,
    /// The signature over [`Signed::payload`].
    pub signature: Signature,
}

/// The signature of a raw commit object (`git cat-file commit`), or `None` when unsigned.
pub fn split_commit(raw: &[u8]) -> Option<Signed> {
    let header_end = find(raw, b"\n\n").map_or(raw.len(), |i| i + 1);
    let (headers, body) = raw.split_at(header_end);
    let mut payload = Vec::with_capacity(raw.len());
    let mut signature: Option<Vec<u8>> = None;
    let mut in_signature = false;
    for line in headers.split_inclusive(|b| *b == b'\n') {
        if in_signature && line.first() == Some(&b' ') {
            if let Some(sig) = signature.as_mut() {
                sig.extend_from_slice(&line[1..]);
            }
            continue;
        }
        in_signature = false;
        // Only the SHA-1 signature header: `gpgsig-sha256` signs the SHA-256 form of the
        // object, which a SHA-1 repository does not have.
        if let Some(rest) = line.strip_prefix(b"gpgsig ")
            && signature.is_none()
        {
            signature = Some(rest.to_vec());
            in_signature = true;
            continue;
        }
        payload.extend_from_slice(line);
    }
    payload.extend_from_slice(body);
    let signature = String::from_utf8_lossy(&signature?).into_owned();
    Some(Signed {
        payload,
        signature: Signature::classify(signature),
    })
}

/// The signature of a raw annotated tag object (`git cat-file tag`), or `None` when unsigned.
pub fn split_tag(raw: &[u8]) -> Option<Signed> {
    const MARKERS: [&[u8]; 3] = [
        b"-----BEGIN PGP SIGNATURE-----",
        b"-----BEGIN SSH SIGNATURE-----",
        b"-----BEGIN SIGNED MESSAGE-----",
    ];
    // The signature is the last block, starting at the beginning of a line, after the headers.
    let body_start = find(raw, b"\n\n").map(|i| i + 2)?;
    let start = MARKERS
        .iter()
        .filter_map(|marker| {
            let mut found = None;
            let mut from = body_start;
            while let Some(i) = find(&raw[from..], marker) {
                let at = from + i;
                if at == body_start || raw[at - 1] == b'\n' {
                    found = Some(at);
                }
                from = at + 1;
            }
            found
        })
        .max()?;
    let (payload, signature) = raw.split_at(start);
    Some(Signed {
        payload: payload.to_vec(),
        signature: Signature::classify(String::from_utf8_lossy(signature).into_owned()),
    })
}

/// A header of a commit or tag (`tagger`, `author`), without the key.
pub fn header<'a>(raw: &'a [u8], key: &str) -> Option<&'a [u8]> {
    let header_end = find(raw, b"\n\n").unwrap_or(raw.len());
    raw[..header_end]
        .split(|b| *b == b'\n')
        .find_map(|line| line.strip_prefix(key.as_bytes())?.strip_prefix(b" "))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMIT: &str = "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\
author A <a@x> 1700000060 +0000\n\
committer A <a@x> 1700000060 +0000\n\
gpgsig -----BEGIN SSH SIGNATURE-----\n \
U1NIU0lH\n \
-----END SSH SIGNATURE-----\n\
\n\
message\n";

    #[test]
    fn commit_payload_is_the_object_without_the_signature_header() {
        let signed = split_commit(COMMIT.as_bytes()).expect("signed");
        assert_eq!(
            String::from_utf8_lossy(&signed.payload),
            "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\
author A <a@x> 1700000060 +0000\n\
committer A <a@x> 1700000060 +0000\n\
\n\
message\n"
        );
        assert_eq!(
            signed.signature,
            Signature::Ssh(
                "-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n".into()
            )
        );
    }

    #[test]
    fn a_signature_in_the_message_does_not_sign_a_commit() {
        let raw = "tree 4b82\nauthor A <a@x> 1 +0000\n\ngpgsig -----BEGIN PGP SIGNATURE-----\n";
        assert_eq!(split_commit(raw.as_bytes()), None);
    }

    #[test]
    fn tag_signature_is_the_last_block_of_the_message() {
        let raw = "object 1234\ntype commit\ntag v1\ntagger T <t@x> 1 +0000\n\n\
release\n-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n";
        let signed = split_tag(raw.as_bytes()).expect("signed");
        assert_eq!(
            String::from_utf8_lossy(&signed.payload),
            "object 1234\ntype commit\ntag v1\ntagger T <t@x> 1 +0000\n\nrelease\n"
        );
        assert!(matches!(signed.signature, Signature::OpenPgp(_)));
        assert_eq!(split_tag(b"object 1\ntype commit\n\nplain\n"), None);
        assert_eq!(
            header(raw.as_bytes(), "tagger"),
            Some(&b"T <t@x> 1 +0000"[..])
        );
    }
}
