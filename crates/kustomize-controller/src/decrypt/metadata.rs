//! The `sops` metadata of an encrypted file: who can unwrap the data key, the MAC, and which
//! values are encrypted.

use regex::Regex;

use super::tree::Node;

/// The suffix SOPS leaves unencrypted when a file names no other rule.
const DEFAULT_UNENCRYPTED_SUFFIX: &str = "_unencrypted";

/// A data key wrapped for one age recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgeStanza {
    /// The recipient (`age1...`), a public key.
    pub recipient: String,
    /// The data key, as an armored age file.
    pub enc: String,
}

/// A data key wrapped for one OpenPGP key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgpStanza {
    /// The fingerprint of the key, as SOPS records it.
    pub fingerprint: String,
    /// The data key, as an armored OpenPGP message.
    pub enc: String,
}

/// Which values of the tree are encrypted.
#[derive(Debug, Clone)]
pub enum Rule {
    /// All but those whose path has a key ending so.
    UnencryptedSuffix(String),
    /// Only those whose path has a key ending so.
    EncryptedSuffix(String),
    /// All but those whose path has a key matching.
    UnencryptedRegex(Regex),
    /// Only those whose path has a key matching.
    EncryptedRegex(Regex),
}

/// The metadata SOPS stores beside the encrypted values.
#[derive(Debug, Clone)]
pub struct Metadata {
    /// Age recipients.
    pub age: Vec<AgeStanza>,
    /// OpenPGP keys.
    pub pgp: Vec<PgpStanza>,
    /// Key services this controller does not reach (`AWS KMS`, ...), for error messages.
    pub unsupported: Vec<&'static str>,
    /// `lastmodified`, normalized as Go's RFC 3339 format writes it (the MAC's additional data).
    pub last_modified: String,
    /// The encrypted MAC (`ENC[...]`); empty when missing.
    pub mac: String,
    /// `mac_only_encrypted`: the MAC covers only the encrypted values.
    pub mac_only_encrypted: bool,
    /// Which values are encrypted.
    pub rule: Rule,
}

impl Metadata {
    /// Whether the value at `path` (its map keys, lists adding none) is encrypted.
    pub fn is_encrypted(&self, path: &[String]) -> bool {
        match &self.rule {
            Rule::UnencryptedSuffix(s) => !path.iter().any(|k| k.ends_with(s.as_str())),
            Rule::EncryptedSuffix(s) => path.iter().any(|k| k.ends_with(s.as_str())),
            Rule::UnencryptedRegex(r) => !path.iter().any(|k| r.is_match(k)),
            Rule::EncryptedRegex(r) => path.iter().any(|k| r.is_match(k)),
        }
    }

    /// Reads the metadata map (the value of the `sops` key, unflattened for dotenv and INI).
    pub fn parse(node: &Node) -> Result<Self, String> {
        let Node::Map(_) = node else {
            return Err("the sops metadata is not a map".into());
        };
        let text =
            |key: &str| -> String { node.get(key).and_then(Node::to_text).unwrap_or_default() };
        let (mut age, mut pgp, mut unsupported) = (Vec::new(), Vec::new(), Vec::new());
        collect_keys(node, &mut age, &mut pgp, &mut unsupported);
        if let Some(Node::List(groups)) = node.get("key_groups") {
            if groups.len() > 1 {
                return Err(format!(
                    "it uses {} key groups (Shamir secret sharing), which is not supported: \
                     encrypt it for one group of keys",
                    groups.len()
                ));
            }
            for group in groups {
                collect_keys(group, &mut age, &mut pgp, &mut unsupported);
            }
        }
        let regex =
            |key: &str, value: &str| Regex::new(value).map_err(|e| format!("invalid {key}: {e}"));
        let mut rules = Vec::new();
        for key in [
            "unencrypted_suffix",
            "encrypted_suffix",
            "unencrypted_regex",
            "encrypted_regex",
        ] {
            let value = text(key);
            if value.is_empty() {
                continue;
            }
            rules.push(match key {
                "unencrypted_suffix" => Rule::UnencryptedSuffix(value),
                "encrypted_suffix" => Rule::EncryptedSuffix(value),
                "unencrypted_regex" => Rule::UnencryptedRegex(regex(key, &value)?),
                _ => Rule::EncryptedRegex(regex(key, &value)?),
            });
        }
        for key in ["unencrypted_comment_regex", "encrypted_comment_regex"] {
            if !text(key).is_empty() {
                return Err(format!(
                    "{key} is not supported (comments are not kept): use encrypted_regex or a \
                     suffix rule"
                ));
            }
        }
        if rules.len() > 1 {
            return Err(
                "it names more than one of the encrypted/unencrypted suffix and regex \
                        rules"
                    .into(),
            );
        }
        let rule = rules
            .pop()
            .unwrap_or_else(|| Rule::UnencryptedSuffix(DEFAULT_UNENCRYPTED_SUFFIX.into()));
        let mac_only_encrypted = match node.get("mac_only_encrypted") {
            Some(Node::Bool(b)) => *b,
            Some(Node::Str(s)) => s.eq_ignore_ascii_case("true") || s == "1",
            _ => false,
        };
        let last_modified = normalize_time(&text("lastmodified"))
            .ok_or_else(|| "the sops metadata has no valid lastmodified".to_string())?;
        Ok(Metadata {
            age,
            pgp,
            unsupported,
            last_modified,
            mac: text("mac"),
            mac_only_encrypted,
            rule,
        })
    }

    /// The recipients the file is encrypted for, for an error message (public keys and
    /// fingerprints only).
    pub fn recipients(&self) -> String {
        let mut names: Vec<String> = self
            .age
            .iter()
            .map(|a| format!("age {}", a.recipient))
            .chain(
                self.pgp
                    .iter()
                    .map(|p| format!("OpenPGP {}", p.fingerprint)),
            )
            .collect();
        names.extend(
            self.unsupported
                .iter()
                .map(|k| format!("{k} (not supported)")),
        );
        if names.is_empty() {
            "no recipient".into()
        } else {
            names.join(", ")
        }
    }
}

fn collect_keys(
    node: &Node,
    age: &mut Vec<AgeStanza>,
    pgp: &mut Vec<PgpStanza>,
    unsupported: &mut Vec<&'static str>,
) {
    let list = |key: &str| match node.get(key) {
        Some(Node::List(items)) => items.as_slice(),
        _ => &[],
    };
    let field =
        |entry: &Node, key: &str| entry.get(key).and_then(Node::to_text).unwrap_or_default();
    for entry in list("age") {
        age.push(AgeStanza {
            recipient: field(entry, "recipient"),
            enc: field(entry, "enc"),
        });
    }
    for entry in list("pgp") {
        pgp.push(PgpStanza {
            fingerprint: field(entry, "fp"),
            enc: field(entry, "enc"),
        });
    }
    for (key, name) in [
        ("kms", "AWS KMS"),
        ("gcp_kms", "GCP KMS"),
        ("azure_kv", "Azure Key Vault"),
        ("hc_vault", "HashiCorp Vault"),
        ("hckms", "Huawei Cloud KMS"),
    ] {
        if !list(key).is_empty() {
            unsupported.push(name);
        }
    }
}

/// `lastmodified` as Go's `time.Format(time.RFC3339)` writes it after parsing: fractional
/// seconds dropped, the offset kept. `None` when it is not an RFC 3339 time.
pub fn normalize_time(value: &str) -> Option<String> {
    let (datetime, zone) = match value.find(['Z', 'z']) {
        Some(i) => (&value[..i], "Z"),
        None => {
            let i = value.rfind(['+', '-']).filter(|&i| i > 10)?;
            (&value[..i], &value[i..])
        }
    };
    let datetime = datetime.split('.').next()?;
    (datetime.len() == 19
        && datetime
            .as_bytes()
            .get(10)
            .is_some_and(|c| *c == b'T' || *c == b't'))
    .then(|| format!("{}T{}{zone}", &datetime[..10], &datetime[11..]))
}

/// Rebuilds the metadata tree from flattened keys (`age__list_0__map_recipient`), as SOPS
/// writes it into dotenv and INI files.
pub fn unflatten(entries: &[(String, String)]) -> Node {
    let mut root = Node::Map(Vec::new());
    for (key, value) in entries {
        let mut node = &mut root;
        let tokens = tokenize(key);
        for (i, token) in tokens.iter().enumerate() {
            let last = i + 1 == tokens.len();
            let fresh = if last {
                Node::Str(value.clone())
            } else if matches!(tokens[i + 1], Token::Index(_)) {
                Node::List(Vec::new())
            } else {
                Node::Map(Vec::new())
            };
            node = match (node, token) {
                (Node::Map(entries), Token::Key(k)) => {
                    let index = match entries.iter().position(|(e, _)| e == k) {
                        Some(index) => index,
                        None => {
                            entries.push((k.clone(), fresh));
                            entries.len() - 1
                        }
                    };
                    &mut entries[index].1
                }
                (Node::List(items), Token::Index(n)) => {
                    while items.len() <= *n {
                        items.push(Node::Null);
                    }
                    if items[*n] == Node::Null {
                        items[*n] = fresh;
                    }
                    &mut items[*n]
                }
                // A key that mixes shapes is left out; the metadata then misses it.
                _ => break,
            };
        }
    }
    root
}

enum Token {
    Key(String),
    Index(usize),
}

fn tokenize(key: &str) -> Vec<Token> {
    const MAP: &str = "__map_";
    const LIST: &str = "__list_";
    let mut tokens = Vec::new();
    let mut rest = key;
    let mut current_is_index = false;
    loop {
        let next = [rest.find(MAP), rest.find(LIST)]
            .into_iter()
            .flatten()
            .min();
        let (part, after) = match next {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        tokens.push(if current_is_index {
            Token::Index(part.parse().unwrap_or(usize::MAX))
        } else {
            Token::Key(part.to_owned())
        });
        if after.is_empty() {
            return tokens;
        }
        current_is_index = after.starts_with(LIST);
        rest = &after[if current_is_index {
            LIST.len()
        } else {
            MAP.len()
        }..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_as_go_writes_rfc3339() {
        assert_eq!(
            normalize_time("2024-05-01T10:11:12Z").as_deref(),
            Some("2024-05-01T10:11:12Z")
        );
        assert_eq!(
            normalize_time("2024-05-01T10:11:12.123456Z").as_deref(),
            Some("2024-05-01T10:11:12Z")
        );
        assert_eq!(
            normalize_time("2024-05-01T10:11:12+02:00").as_deref(),
            Some("2024-05-01T10:11:12+02:00")
        );
        assert_eq!(normalize_time("yesterday"), None);
    }

    #[test]
    fn unsupported_settings_are_refused_by_name() {
        let parse = |yaml: &str| {
            let node = crate::decrypt::tree::parse_yaml(yaml)
                .expect("yaml")
                .remove(0);
            Metadata::parse(&node).map(|m| m.recipients())
        };
        let base = "lastmodified: \"2024-05-01T10:11:12Z\"\nmac: x\n";
        let err = parse(&format!(
            "{base}key_groups:\n  - age: [{{recipient: a, enc: x}}]\n  - age: [{{recipient: b, enc: y}}]\n"
        ))
        .expect_err("shamir");
        assert!(err.contains("2 key groups"), "{err}");
        let err = parse(&format!("{base}encrypted_comment_regex: x\n")).expect_err("comments");
        assert!(
            err.contains("encrypted_comment_regex is not supported"),
            "{err}"
        );
        let err = parse(&format!(
            "{base}encrypted_regex: a\nunencrypted_suffix: b\n"
        ))
        .expect_err("two rules");
        assert!(err.contains("more than one"), "{err}");
        let kms = parse(&format!(
            "{base}kms: [{{arn: x}}]\nage: [{{recipient: age1z, enc: e}}]\n"
        ))
        .expect("kms and age");
        assert_eq!(kms, "age age1z, AWS KMS (not supported)");
    }

    #[test]
    fn flattened_metadata_is_rebuilt() {
        let entries: Vec<(String, String)> = [
            ("age__list_0__map_recipient", "age1a"),
            ("age__list_0__map_enc", "A"),
            ("age__list_1__map_recipient", "age1b"),
            ("lastmodified", "2024-05-01T10:11:12Z"),
            ("mac", "ENC[x]"),
            ("encrypted_regex", "^secret"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let meta = Metadata::parse(&unflatten(&entries)).expect("metadata");
        assert_eq!(meta.age.len(), 2);
        assert_eq!(meta.age[0].recipient, "age1a");
        assert_eq!(meta.age[0].enc, "A");
        assert_eq!(meta.mac, "ENC[x]");
        assert!(meta.is_encrypted(&["secret_token".into()]));
        assert!(!meta.is_encrypted(&["plain".into()]));
        assert_eq!(meta.recipients(), "age age1a, age age1b");
    }
}
