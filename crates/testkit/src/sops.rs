//! SOPS fixtures made at test time by the real tools: age keys from `age-keygen`, OpenPGP keys
//! from Debian's `gpg` (in a throwaway GNUPGHOME), and files encrypted by the pinned `sops`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, bail};

use crate::tools::tool;

fn run(mut command: Command, what: &str) -> anyhow::Result<Output> {
    let output = command
        .output()
        .with_context(|| format!("running {what}"))?;
    if !output.status.success() {
        bail!(
            "{what} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output)
}

/// An age key pair made by `age-keygen`.
#[derive(Debug, Clone)]
pub struct AgeKey {
    /// The identity file as `age-keygen` writes it (comments and `AGE-SECRET-KEY-1...`): what
    /// goes into a `*.agekey` Secret key.
    pub identity: String,
    /// The public recipient, `age1...`.
    pub recipient: String,
}

/// Makes a new age key pair.
pub fn age_key() -> anyhow::Result<AgeKey> {
    let output = run(Command::new(tool("age-keygen")?), "age-keygen")?;
    let identity = String::from_utf8(output.stdout)?;
    let recipient = identity
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .context("age-keygen printed no public key")?
        .trim()
        .to_owned();
    Ok(AgeKey {
        identity,
        recipient,
    })
}

/// An OpenPGP key pair made by `gpg`, without a passphrase, in its own GNUPGHOME.
#[derive(Debug)]
pub struct PgpKey {
    /// The fingerprint (40 hex digits, upper case).
    pub fingerprint: String,
    /// The armored private key: what goes into a `*.asc` Secret key.
    pub armored_secret: String,
    home: tempfile::TempDir,
}

impl PgpKey {
    /// The GNUPGHOME holding the key (sops encrypts through it).
    pub fn home(&self) -> &Path {
        self.home.path()
    }
}

impl Drop for PgpKey {
    fn drop(&mut self) {
        // gpg starts an agent for the home; it must not outlive the test.
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "gpg-agent"])
            .output();
    }
}

/// Makes a new OpenPGP key pair (the default algorithm of Debian's gpg) named `name`.
pub fn pgp_key(name: &str) -> anyhow::Result<PgpKey> {
    pgp_key_with(name, "default")
}

/// Makes a new OpenPGP key pair named `name` with `algorithm` as gpg names it (`rsa3072`,
/// `ed25519`, `default`).
pub fn pgp_key_with(name: &str, algorithm: &str) -> anyhow::Result<PgpKey> {
    let home = tempfile::Builder::new().prefix("gnupg-").tempdir()?;
    let gpg = |args: &[&str]| {
        let mut command = Command::new("gpg");
        command
            .env("GNUPGHOME", home.path())
            .args([
                "--batch",
                "--quiet",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
            ])
            .args(args);
        command
    };
    let uid = format!("{name} <{name}@mooring.test>");
    run(
        gpg(&["--quick-gen-key", &uid, algorithm, "default", "never"]),
        "gpg --quick-gen-key",
    )?;
    let listing = run(
        gpg(&["--with-colons", "--list-secret-keys", &uid]),
        "gpg --list-secret-keys",
    )?;
    let fingerprint = String::from_utf8(listing.stdout)?
        .lines()
        .find_map(|l| l.strip_prefix("fpr:"))
        .and_then(|l| l.split(':').find(|f| f.len() == 40))
        .context("gpg listed no fingerprint")?
        .to_owned();
    if algorithm != "default" {
        // A primary key of another algorithm only signs: give it an encryption subkey.
        run(
            gpg(&["--quick-add-key", &fingerprint, algorithm, "encr", "never"]),
            "gpg --quick-add-key",
        )?;
    }
    let export = run(
        gpg(&["--armor", "--export-secret-keys", &fingerprint]),
        "gpg --export-secret-keys",
    )?;
    Ok(PgpKey {
        fingerprint,
        armored_secret: String::from_utf8(export.stdout)?,
        home,
    })
}

/// Who a file is encrypted for, and how.
#[derive(Debug, Default)]
pub struct Encrypt<'a> {
    /// age recipients.
    pub age: Vec<&'a AgeKey>,
    /// OpenPGP keys.
    pub pgp: Vec<&'a PgpKey>,
    /// Further `sops encrypt` flags (`--encrypted-regex`, `--unencrypted-suffix`, ...).
    pub args: Vec<String>,
    /// A `.sops.yaml` for settings that have no flag (`mac_only_encrypted`).
    pub config: Option<&'a str>,
}

impl Encrypt<'_> {
    /// Encrypts `plain` as a file named `name` (its extension picks the format) with the real
    /// `sops`, and returns the encrypted file.
    pub fn file(&self, name: &str, plain: &[u8]) -> anyhow::Result<Vec<u8>> {
        let dir = tempfile::Builder::new().prefix("sops-").tempdir()?;
        let path: PathBuf = dir.path().join(name);
        std::fs::write(&path, plain)?;
        if let Some(config) = self.config {
            std::fs::write(dir.path().join(".sops.yaml"), config)?;
        }
        let mut command = Command::new(tool("sops")?);
        // No .sops.yaml is looked up above the temporary directory, no key service is asked.
        command
            .current_dir(dir.path())
            .env_remove("SOPS_AGE_KEY_FILE")
            .env_remove("SOPS_AGE_RECIPIENTS")
            .env_remove("SOPS_PGP_FP")
            .arg("encrypt");
        if !self.age.is_empty() {
            let recipients: Vec<&str> = self.age.iter().map(|k| k.recipient.as_str()).collect();
            command.args(["--age", &recipients.join(",")]);
        }
        if let Some(first) = self.pgp.first() {
            // sops reads the public keys through gpg; every key lives in its own home, so
            // import them all into the first one's.
            for other in self.pgp.iter().skip(1) {
                import_public(other, first.home())?;
            }
            command.env("GNUPGHOME", first.home());
            let fingerprints: Vec<&str> = self.pgp.iter().map(|k| k.fingerprint.as_str()).collect();
            command.args(["--pgp", &fingerprints.join(",")]);
        }
        command.args(&self.args).arg(name);
        Ok(run(command, "sops encrypt")?.stdout)
    }
}

fn import_public(key: &PgpKey, into: &Path) -> anyhow::Result<()> {
    let export = run(
        {
            let mut c = Command::new("gpg");
            c.env("GNUPGHOME", key.home()).args([
                "--batch",
                "--armor",
                "--export",
                &key.fingerprint,
            ]);
            c
        },
        "gpg --export",
    )?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("public.asc");
    std::fs::write(&file, export.stdout)?;
    let mut c = Command::new("gpg");
    c.env("GNUPGHOME", into)
        .arg("--batch")
        .arg("--import")
        .arg(&file);
    run(c, "gpg --import")?;
    Ok(())
}
