//! Fixtures encrypted at test time by the real `sops`, with keys from the real `age-keygen` and
//! `gpg`.

use std::collections::BTreeMap;

use mooring_testkit::sops::{AgeKey, Encrypt, PgpKey, age_key, pgp_key, pgp_key_with};

use super::tree::Node;
use super::*;

const SECRET: &str = "apiVersion: v1
kind: Secret
metadata:
  name: db
  labels:
    tier: data
type: Opaque
stringData:
  password: hunter2-marker
  port: \"5432\"
  list:
    - a
    - b
data:
  token: c2VjcmV0
";

fn age_keys(keys: &[&AgeKey]) -> Keys {
    let data: BTreeMap<String, Vec<u8>> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (format!("k{i}.agekey"), k.identity.clone().into_bytes()))
        .collect();
    Keys::from_secret_data(&data).expect("keys")
}

fn pgp_keys(key: &PgpKey) -> Keys {
    let data = BTreeMap::from([(
        "sops.asc".to_string(),
        key.armored_secret.clone().into_bytes(),
    )]);
    Keys::from_secret_data(&data).expect("keys")
}

fn yaml(bytes: &[u8]) -> Node {
    super::tree::parse_yaml(std::str::from_utf8(bytes).expect("utf-8"))
        .expect("yaml")
        .remove(0)
}

fn encrypt_age(key: &AgeKey, name: &str, plain: &[u8], args: &[&str]) -> Vec<u8> {
    Encrypt {
        age: vec![key],
        args: args.iter().map(|a| a.to_string()).collect(),
        ..Default::default()
    }
    .file(name, plain)
    .expect("sops encrypt")
}

#[test]
fn an_age_encrypted_secret_decrypts_to_the_plain_document() {
    let key = age_key().expect("age key");
    let encrypted = encrypt_age(&key, "secret.yaml", SECRET.as_bytes(), &[]);
    assert!(!String::from_utf8_lossy(&encrypted).contains("hunter2-marker"));
    assert!(is_encrypted_document(
        std::str::from_utf8(&encrypted).expect("utf-8")
    ));
    let plain = decrypt(&encrypted, Format::Yaml, &age_keys(&[&key]), "secret.yaml")
        .expect("decrypt")
        .expect("encrypted");
    assert_eq!(yaml(&plain), yaml(SECRET.as_bytes()));
    assert!(!is_encrypted_document(
        std::str::from_utf8(&plain).expect("utf-8")
    ));
}

#[test]
fn an_openpgp_encrypted_secret_decrypts() {
    for key in [
        pgp_key("decrypt-pgp").expect("gpg key"),
        pgp_key_with("decrypt-rsa", "rsa3072").expect("gpg RSA key"),
    ] {
        decrypts_with_openpgp(&key);
    }
}

fn decrypts_with_openpgp(key: &PgpKey) {
    let encrypted = Encrypt {
        pgp: vec![key],
        args: vec!["--encrypted-regex".into(), "^(data|stringData)$".into()],
        ..Default::default()
    }
    .file("secret.yaml", SECRET.as_bytes())
    .expect("sops encrypt");
    let plain = decrypt(&encrypted, Format::Yaml, &pgp_keys(key), "secret.yaml")
        .expect("decrypt")
        .expect("encrypted");
    assert_eq!(yaml(&plain), yaml(SECRET.as_bytes()));
}

#[test]
fn a_file_for_several_recipients_decrypts_with_any_one_of_them() {
    let (a, b) = (age_key().expect("age"), age_key().expect("age"));
    let pgp = pgp_key("decrypt-multi").expect("gpg key");
    let encrypted = Encrypt {
        age: vec![&a, &b],
        pgp: vec![&pgp],
        ..Default::default()
    }
    .file("secret.yaml", SECRET.as_bytes())
    .expect("sops encrypt");
    for keys in [age_keys(&[&a]), age_keys(&[&b]), pgp_keys(&pgp)] {
        let plain = decrypt(&encrypted, Format::Yaml, &keys, "secret.yaml")
            .expect("decrypt")
            .expect("encrypted");
        assert_eq!(yaml(&plain), yaml(SECRET.as_bytes()));
    }
}

#[test]
fn a_wrong_key_names_the_file_and_the_recipients_never_the_key() {
    let (right, wrong) = (age_key().expect("age"), age_key().expect("age"));
    let encrypted = encrypt_age(&right, "secret.yaml", SECRET.as_bytes(), &[]);
    let err = decrypt(
        &encrypted,
        Format::Yaml,
        &age_keys(&[&wrong]),
        "apps/secret.yaml",
    )
    .expect_err("wrong key");
    let message = err.to_string();
    assert!(message.starts_with("apps/secret.yaml: no key"), "{message}");
    assert!(message.contains(&right.recipient), "{message}");
    assert!(!message.contains(&wrong.recipient), "{message}");
    assert!(!message.contains("AGE-SECRET-KEY"), "{message}");
}

#[test]
fn tampering_fails_naming_the_file() {
    let key = age_key().expect("age");
    let keys = age_keys(&[&key]);
    let encrypted = String::from_utf8(encrypt_age(
        &key,
        "secret.yaml",
        SECRET.as_bytes(),
        &["--encrypted-regex", "^(data|stringData)$"],
    ))
    .expect("utf-8");
    // An unencrypted value changed: every value decrypts, the MAC does not match.
    let renamed = encrypted.replace("tier: data", "tier: web");
    assert_ne!(renamed, encrypted);
    let err = decrypt(renamed.as_bytes(), Format::Yaml, &keys, "s.yaml").expect_err("mac");
    assert!(
        err.to_string()
            .starts_with("s.yaml: the MAC does not match"),
        "{err}"
    );
    // An encrypted value changed: it does not authenticate.
    let start = encrypted
        .find("password: ENC[AES256_GCM,data:")
        .expect("value")
        + 30;
    let mut bytes = encrypted.clone().into_bytes();
    bytes[start] = if bytes[start] == b'A' { b'B' } else { b'A' };
    let err = decrypt(&bytes, Format::Yaml, &keys, "s.yaml").expect_err("tampered");
    assert!(
        err.to_string()
            .contains("'stringData.password' does not authenticate"),
        "{err}"
    );
    // The MAC removed.
    let no_mac: String = encrypted
        .lines()
        .filter(|l| !l.trim_start().starts_with("mac:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let err = decrypt(no_mac.as_bytes(), Format::Yaml, &keys, "s.yaml").expect_err("no mac");
    assert!(err.to_string().contains("has no MAC"), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn encryption_rules_leave_the_named_values_plain() {
    let key = age_key().expect("age");
    let keys = age_keys(&[&key]);
    let plain =
        b"user_unencrypted: admin\npassword: s3cret\nnested:\n  n: 1\n  ok: true\n  f: 1.5\n";
    for args in [
        vec![],
        vec!["--encrypted-regex", "^pass"],
        vec!["--unencrypted-regex", "^user"],
        vec!["--encrypted-suffix", "word"],
        vec!["--mac-only-encrypted"],
    ] {
        let encrypted = if args == ["--mac-only-encrypted"] {
            Encrypt {
                age: vec![&key],
                config: Some("creation_rules:\n  - mac_only_encrypted: true\n"),
                ..Default::default()
            }
            .file("values.yaml", plain)
            .expect("sops encrypt")
        } else {
            encrypt_age(&key, "values.yaml", plain, &args)
        };
        let text = String::from_utf8_lossy(&encrypted);
        assert!(text.contains("user_unencrypted: admin"), "{args:?}: {text}");
        if args == ["--mac-only-encrypted"] {
            assert!(text.contains("mac_only_encrypted: true"), "{text}");
        }
        let out = decrypt(&encrypted, Format::Yaml, &keys, "values.yaml")
            .expect("decrypt")
            .expect("encrypted");
        assert_eq!(yaml(&out), yaml(plain), "{args:?}");
    }
}

#[test]
fn json_dotenv_ini_and_binary_files_decrypt() {
    let key = age_key().expect("age");
    let keys = age_keys(&[&key]);
    let json = br#"{"b": "two", "a": {"n": 3, "t": [true, null]}}"#;
    let out = decrypt(
        &encrypt_age(&key, "c.json", json, &[]),
        Format::Json,
        &keys,
        "c.json",
    )
    .expect("decrypt")
    .expect("encrypted");
    let parsed: serde_json::Value = serde_json::from_slice(&out).expect("json");
    assert_eq!(
        parsed,
        serde_json::from_slice::<serde_json::Value>(json).expect("json")
    );

    let env = b"USER=admin\nPASSWORD=p=w\\nx\n";
    let out = decrypt(
        &encrypt_age(&key, "app.env", env, &[]),
        Format::Dotenv,
        &keys,
        "app.env",
    )
    .expect("decrypt")
    .expect("encrypted");
    assert_eq!(out, env);

    let ini = b"[db]\nuser = admin\npassword = s3cret\n";
    let out = decrypt(
        &encrypt_age(&key, "db.ini", ini, &[]),
        Format::Ini,
        &keys,
        "db.ini",
    )
    .expect("decrypt")
    .expect("encrypted");
    assert_eq!(
        String::from_utf8_lossy(&out),
        "[db]\nuser = admin\npassword = s3cret\n\n"
    );

    let binary: Vec<u8> = (0..=255u8).chain(b"marker".iter().copied()).collect();
    let encrypted = encrypt_age(&key, "blob.bin", &binary, &[]);
    let out = decrypt(&encrypted, Format::Binary, &keys, "blob.bin")
        .expect("decrypt")
        .expect("encrypted");
    assert_eq!(out, binary);
    // A plain file of any format is left alone.
    assert_eq!(
        decrypt(&binary, Format::Binary, &keys, "b").expect("plain"),
        None
    );
    assert_eq!(
        decrypt(env, Format::Dotenv, &keys, "e").expect("plain"),
        None
    );
}

#[test]
fn key_secrets_are_read_by_key_name_and_errors_name_only_the_key() {
    let data = BTreeMap::from([("bad.agekey".to_string(), b"AGE-SECRET-KEY-1NOPE".to_vec())]);
    let err = Keys::from_secret_data(&data).expect_err("bad key");
    assert!(err.contains("key 'bad.agekey'"), "{err}");
    assert!(!err.contains("NOPE"), "{err}");
    let data = BTreeMap::from([("other".to_string(), b"x".to_vec())]);
    assert!(Keys::from_secret_data(&data).expect("keys").is_empty());
}
