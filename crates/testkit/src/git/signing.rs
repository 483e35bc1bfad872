//! Signing keys for tests: real OpenPGP keys made by `gpg` in a private `GNUPGHOME` and real SSH
//! keys made by `ssh-keygen`, and the git settings that make `git commit -S` / `git tag -s` sign
//! with them.
//!
//! ```no_run
//! use mooring_testkit::git::{Auth, GitServer, Signer, GpgKey};
//! let key = GpgKey::generate("Alice", "alice@example.invalid")?;
//! let repo = GitServer::shared()?.create_repo("signed", Auth::None)?;
//! let sha = repo.commit_signed(&[("a.yaml", "x: 1\n")], "signed", &Signer::Gpg(key.clone()))?;
//! let secret_value = key.public_armored()?; // what goes into the verification Secret
//! # Ok::<(), mooring_testkit::git::Error>(())
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use super::{Error, output, write_file};

/// A time in the past at which [`GpgKey::generate_expired`] creates its key (gpg's
/// `--faked-system-time` format); the key expires one day later.
const PAST: &str = "20200101T000000";

/// A private directory, removed (with its gpg-agent stopped) when the last handle goes.
#[derive(Debug)]
struct Home {
    dir: tempfile::TempDir,
    gpg: bool,
}

impl Drop for Home {
    fn drop(&mut self) {
        if self.gpg {
            // The agent gpg started for this home would otherwise outlive the test.
            let _ = Command::new("gpgconf")
                .env("GNUPGHOME", self.dir.path())
                .args(["--kill", "gpg-agent"])
                .output();
        }
    }
}

fn private_dir(prefix: &str, gpg: bool) -> Result<Arc<Home>, Error> {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(Error::CreateTempDir)?;
    Ok(Arc::new(Home { dir, gpg }))
}

/// An OpenPGP key pair in its own `GNUPGHOME`, made by the real `gpg`.
#[derive(Debug, Clone)]
pub struct GpgKey {
    home: Arc<Home>,
    /// Fingerprint of the primary key, upper-case hex as gpg prints it.
    pub fingerprint: String,
    /// The user id, `Name <email>`.
    pub user_id: String,
    /// The `--faked-system-time` the key must sign at (it is expired today), if any.
    faked_time: Option<&'static str>,
}

impl GpgKey {
    /// A new ed25519 signing key for `Name <email>` that never expires.
    pub fn generate(name: &str, email: &str) -> Result<GpgKey, Error> {
        Self::make(name, email, None, "never")
    }

    /// A key created in 2020 that expired a day later. It still signs (gpg is told the date
    /// is 2020), so its signatures are good but made by a key that is expired today.
    pub fn generate_expired(name: &str, email: &str) -> Result<GpgKey, Error> {
        Self::make(name, email, Some(PAST), "1d")
    }

    fn make(
        name: &str,
        email: &str,
        faked_time: Option<&'static str>,
        expiry: &str,
    ) -> Result<GpgKey, Error> {
        let home = private_dir("mooring-gpg-", true)?;
        let user_id = format!("{name} <{email}>");
        let mut key = GpgKey {
            home,
            fingerprint: String::new(),
            user_id: user_id.clone(),
            faked_time,
        };
        output(
            key.gpg()
                .args(["--passphrase", "", "--quick-gen-key", &user_id])
                .args(["ed25519", "sign", expiry]),
        )?;
        let listing = output(key.gpg().args(["--with-colons", "--list-keys", &user_id]))?;
        key.fingerprint = listing
            .lines()
            .find_map(|l| l.strip_prefix("fpr:"))
            .and_then(|rest| rest.split(':').find(|f| f.len() == 40))
            .unwrap_or_default()
            .to_string();
        Ok(key)
    }

    /// Adds a signing subkey (ed25519); gpg signs with the newest signing subkey from then
    /// on. Returns the subkey's fingerprint.
    pub fn add_signing_subkey(&self) -> Result<String, Error> {
        output(
            self.gpg()
                .args(["--passphrase", "", "--quick-add-key", &self.fingerprint])
                .args(["ed25519", "sign", "never"]),
        )?;
        let listing = output(
            self.gpg()
                .args(["--with-colons", "--list-keys", &self.fingerprint]),
        )?;
        Ok(listing
            .lines()
            .filter_map(|l| l.strip_prefix("fpr:"))
            .filter_map(|rest| rest.split(':').find(|f| f.len() == 40))
            .next_back()
            .unwrap_or_default()
            .to_string())
    }

    /// The ASCII-armored public key (with its current revocation state).
    pub fn public_armored(&self) -> Result<String, Error> {
        output(self.gpg().args(["--armor", "--export", &self.fingerprint]))
    }

    /// The ASCII-armored public key with its revocation: the revocation certificate gpg made
    /// when it created the key, imported into a scratch keyring. The key itself stays usable
    /// here, so it can still sign (as a stolen key would).
    pub fn revoked_public_armored(&self) -> Result<String, Error> {
        let cert_path = self
            .home
            .dir
            .path()
            .join("openpgp-revocs.d")
            .join(format!("{}.rev", self.fingerprint));
        let text = std::fs::read_to_string(&cert_path).map_err(|source| Error::ReadFile {
            path: cert_path.clone(),
            source,
        })?;
        // gpg guards the stored certificate against an accidental import with a leading ':'.
        let cert = text.replace(
            ":-----BEGIN PGP PUBLIC KEY BLOCK-----",
            "-----BEGIN PGP PUBLIC KEY BLOCK-----",
        );
        let scratch = private_dir("mooring-gpg-revoked-", true)?;
        let public = scratch.dir.path().join("public.asc");
        let revocation = scratch.dir.path().join("revocation.asc");
        write_file(&public, &self.public_armored()?)?;
        write_file(&revocation, &cert)?;
        let gpg = || {
            let mut cmd = Command::new("gpg");
            cmd.env("GNUPGHOME", scratch.dir.path())
                .args(["--batch", "--yes", "--quiet"]);
            cmd
        };
        output(gpg().arg("--import").arg(&public))?;
        output(gpg().arg("--import").arg(&revocation))?;
        output(gpg().args(["--armor", "--export", &self.fingerprint]))
    }

    fn gpg(&self) -> Command {
        let mut cmd = Command::new("gpg");
        cmd.env("GNUPGHOME", self.home.dir.path())
            .args(["--batch", "--yes", "--quiet"]);
        if let Some(time) = self.faked_time {
            cmd.arg("--faked-system-time").arg(format!("{time}!"));
        }
        cmd
    }

    /// A `gpg` wrapper for git's `gpg.program` that signs at the key's faked time.
    fn program(&self) -> Result<PathBuf, Error> {
        let path = self.home.dir.path().join("gpg-for-git");
        if !path.exists() {
            let faked = match self.faked_time {
                Some(time) => format!(" --faked-system-time {time}!"),
                None => String::new(),
            };
            write_file(&path, &format!("#!/bin/sh\nexec gpg{faked} \"$@\"\n"))?;
            set_mode(&path, 0o755)?;
        }
        Ok(path)
    }
}

/// An SSH key pair made by `ssh-keygen`, for git's `gpg.format=ssh`.
#[derive(Debug, Clone)]
pub struct SshKey {
    home: Arc<Home>,
    /// The public key line, `ssh-ed25519 AAAA... <comment>`.
    pub public: String,
    /// The key's fingerprint as `ssh-keygen -l` prints it, `SHA256:<base64>`.
    pub fingerprint: String,
}

impl SshKey {
    /// A new ed25519 key with `comment` (usually an email).
    pub fn generate(comment: &str) -> Result<SshKey, Error> {
        Self::generate_typed("ed25519", comment)
    }

    /// A new key of `kind` (`ed25519`, `ecdsa`, `rsa`) with `comment`.
    pub fn generate_typed(kind: &str, comment: &str) -> Result<SshKey, Error> {
        let home = private_dir("mooring-sshsig-", false)?;
        let private = home.dir.path().join("id");
        output(
            Command::new("ssh-keygen")
                .args(["-q", "-t", kind, "-N", "", "-C", comment, "-f"])
                .arg(&private),
        )?;
        let public_path = private.with_extension("pub");
        let public = std::fs::read_to_string(&public_path)
            .map_err(|source| Error::ReadFile {
                path: public_path.clone(),
                source,
            })?
            .trim()
            .to_string();
        let listing = output(
            Command::new("ssh-keygen")
                .arg("-l")
                .arg("-f")
                .arg(&public_path),
        )?;
        let fingerprint = listing
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string();
        Ok(SshKey {
            home,
            public,
            fingerprint,
        })
    }

    fn private_key(&self) -> PathBuf {
        self.home.dir.path().join("id")
    }
}

/// Who signs a commit or tag, and how git is told to.
#[derive(Debug, Clone)]
pub enum Signer {
    /// OpenPGP, through `gpg`.
    Gpg(GpgKey),
    /// SSH (`gpg.format=ssh`), through `ssh-keygen -Y sign`.
    Ssh(SshKey),
}

impl Signer {
    /// Arguments and environment for a git command that signs with this key.
    pub(crate) fn configure(&self, cmd: &mut Command) -> Result<(), Error> {
        match self {
            Signer::Gpg(key) => {
                let program = key.program()?;
                cmd.env("GNUPGHOME", key.home.dir.path())
                    .args(["-c", "gpg.format=openpgp", "-c"])
                    .arg(format!("gpg.program={}", program.display()))
                    .args(["-c", &format!("user.signingkey={}", key.fingerprint)]);
            }
            Signer::Ssh(key) => {
                cmd.args(["-c", "gpg.format=ssh", "-c"])
                    .arg(format!("user.signingkey={}", key.private_key().display()));
            }
        }
        Ok(())
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| {
        Error::WriteFile {
            path: path.to_path_buf(),
            source,
        }
    })
}
