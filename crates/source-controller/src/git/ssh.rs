//! The external OpenSSH client: a private temp dir with the key material, the `ssh` command
//! gix runs (`core.sshCommand`), and reading ssh's own log to explain a failure.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::GitError;
use super::auth::SshCredentials;

/// How much of ssh's log is read to explain a failure.
const MAX_LOG: u64 = 512 * 1024;

/// The key material on disk for one operation; removed when dropped.
pub(crate) struct SshFiles {
    dir: tempfile::TempDir,
    command: String,
}

impl SshFiles {
    /// Writes the identity (0600), known_hosts and, for an encrypted key, the passphrase file
    /// (0600) and an askpass script (0700) into a new private (0700) temp dir.
    pub(crate) fn write(creds: &SshCredentials, connect_timeout: Duration) -> io::Result<SshFiles> {
        let dir = tempfile::Builder::new()
            .prefix("mooring-ssh-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir()?;
        let path = |name: &str| dir.path().join(name);
        write_private(&path("identity"), creds.identity.expose(), 0o600)?;
        write_private(&path("known_hosts"), &creds.known_hosts, 0o600)?;
        // BatchMode would also stop ssh from asking SSH_ASKPASS for the key's passphrase;
        // without it, no other prompt can happen: host keys are checked strictly and only
        // public-key authentication is tried.
        let mut env = String::new();
        let mut batch = "-o BatchMode=yes";
        if let Some(passphrase) = &creds.passphrase {
            // ssh reports a wrong passphrase at debug2 only ("bad passphrase given").
            batch = "-o NumberOfPasswordPrompts=1 -o LogLevel=DEBUG2";
            write_private(&path("passphrase"), passphrase.expose().as_bytes(), 0o600)?;
            // Shell builtins only: the image needs /bin/sh, nothing more.
            let script = format!(
                "#!/bin/sh\nIFS= read -r passphrase < {}\nprintf '%s\\n' \"$passphrase\"\n",
                quote(&path("passphrase"))
            );
            write_private(&path("askpass"), script.as_bytes(), 0o700)?;
            // OpenSSH >= 8.4 then asks the script for the passphrase, with or without a tty.
            env = format!(
                "SSH_ASKPASS={} SSH_ASKPASS_REQUIRE=force ",
                quote(&path("askpass"))
            );
        }
        let seconds = connect_timeout.as_secs().max(1);
        let command = format!(
            "{env}ssh -F /dev/null -E {log} -i {identity} -o IdentitiesOnly=yes \
             -o UserKnownHostsFile={known_hosts} -o GlobalKnownHostsFile=/dev/null \
             -o StrictHostKeyChecking=yes -o UpdateHostKeys=no -o CheckHostIP=no \
             {batch} -o PreferredAuthentications=publickey \
             -o ConnectTimeout={seconds} -o ServerAliveInterval=15 -o ServerAliveCountMax=3",
            log = quote(&path("ssh.log")),
            identity = quote(&path("identity")),
            known_hosts = quote(&path("known_hosts")),
        );
        Ok(SshFiles { dir, command })
    }

    /// The value of `core.sshCommand` (gix runs it through `sh -c`, appending its arguments).
    pub(crate) fn command(&self) -> &str {
        &self.command
    }

    /// The beginning of ssh's log (`-E`), where connection and authentication problems are;
    /// empty when there is none.
    pub(crate) fn log(&self) -> String {
        let Ok(file) = fs::File::open(self.log_path()) else {
            return String::new();
        };
        let mut text = Vec::new();
        let _ = file.take(MAX_LOG).read_to_end(&mut text);
        String::from_utf8_lossy(&text).into_owned()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("ssh.log")
    }
}

fn write_private(path: &Path, content: &[u8], mode: u32) -> io::Result<()> {
    // Created with its final mode, so the content is never readable by others.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.write_all(content)?;
    // ssh rejects a key without a final newline ("invalid format").
    if path.ends_with("identity") && !content.ends_with(b"\n") {
        file.write_all(b"\n")?;
    }
    file.sync_all()
}

/// `path` in single quotes for `sh`.
fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// Explains an SSH failure from ssh's log, when the log says what happened. `host` and `url`
/// are for the message.
pub(crate) fn explain(log: &str, host: &str, url: &str) -> Option<GitError> {
    let line = |needle: &str| {
        log.lines()
            .find(|l| l.contains(needle))
            .map(|l| l.trim().to_owned())
    };
    if log.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || log.contains("Host key for") && log.contains("has changed")
    {
        return Some(GitError::HostKeyChanged {
            host: host.to_owned(),
        });
    }
    if let Some(detail) =
        line("host key is known for").or_else(|| line("Host key verification failed"))
    {
        return Some(GitError::HostKeyUnknown {
            host: host.to_owned(),
            detail,
        });
    }
    let auth_failed = |detail: String| GitError::AuthenticationFailed {
        url: url.to_owned(),
        detail,
    };
    if log.contains("incorrect passphrase") || log.contains("bad passphrase given") {
        let detail = "ssh could not decrypt the key with the passphrase in Secret key 'password'";
        return Some(auth_failed(detail.to_owned()));
    }
    if let Some(l) = line("Load key") {
        return Some(auth_failed(format!(
            "ssh could not load Secret key 'identity': {}",
            after_colon(&l)
        )));
    }
    if let Some(l) = line("Permission denied") {
        return Some(auth_failed(format!("the server rejected the SSH key: {l}")));
    }
    let unreachable = [
        "Connection refused",
        "Could not resolve hostname",
        "No route to host",
        "Network is unreachable",
        "timed out",
        "Connection closed",
        "Connection reset",
    ];
    unreachable
        .iter()
        .find_map(|needle| line(needle))
        .map(|detail| GitError::Unreachable {
            url: url.to_owned(),
            detail,
        })
}

/// The text after the last ": " (ssh's "Load key \"<path>\": <why>" names a temp path).
fn after_colon(line: &str) -> &str {
    line.rsplit(": ").next().unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "ssh://git@127.0.0.1:2222/r.git";
    const HOST: &str = "127.0.0.1:2222";

    fn label(log: &str) -> Option<&'static str> {
        explain(log, HOST, URL).map(|e| e.label())
    }

    #[test]
    fn host_key_problems_are_recognized() {
        let unknown = "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\r\nHost key verification failed.\r\n";
        let err = explain(unknown, HOST, URL).expect("explained");
        assert_eq!(err.label(), "host_key_unknown");
        assert!(err.to_string().contains("not in known_hosts"), "{err}");
        let changed = "@@@@\nWARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!\nHost key verification failed.\n";
        assert_eq!(label(changed), Some("host_key_changed"));
    }

    #[test]
    fn authentication_and_network_problems_are_recognized() {
        let denied = "git@127.0.0.1: Permission denied (publickey).\r\n";
        assert_eq!(label(denied), Some("authentication_failed"));
        let bad_key = "Load key \"/tmp/mooring-ssh-x/identity\": invalid format\r\n";
        let err = explain(bad_key, HOST, URL).expect("explained");
        assert!(
            err.to_string().contains("'identity': invalid format"),
            "{err}"
        );
        assert!(!err.to_string().contains("/tmp"), "{err}");
        let refused = "ssh: connect to host 127.0.0.1 port 1: Connection refused\r\n";
        assert_eq!(label(refused), Some("unreachable"));
        assert_eq!(label("debug1: nothing useful\n"), None);
        assert_eq!(label(""), None);
    }

    #[test]
    fn key_material_is_private_and_removed_on_drop() {
        let creds = SshCredentials {
            identity: crate::git::Sensitive::new(b"-----BEGIN OPENSSH PRIVATE KEY-----".to_vec()),
            known_hosts: b"host ssh-ed25519 AAAA".to_vec(),
            passphrase: Some(crate::git::Sensitive::new("pass phrase".to_owned())),
        };
        let files = SshFiles::write(&creds, Duration::from_secs(7)).expect("write");
        let dir = files.dir.path().to_owned();
        let mode = |name: &str| {
            let meta = fs::metadata(dir.join(name)).expect("metadata");
            meta.permissions().mode() & 0o777
        };
        assert_eq!(
            fs::metadata(&dir).expect("dir").permissions().mode() & 0o777,
            0o700
        );
        assert_eq!(mode("identity"), 0o600);
        assert_eq!(mode("passphrase"), 0o600);
        assert_eq!(mode("askpass"), 0o700);
        let identity = fs::read(dir.join("identity")).expect("identity");
        assert!(identity.ends_with(b"\n"), "ssh needs a final newline");
        let askpass = std::process::Command::new(dir.join("askpass"))
            .output()
            .expect("askpass");
        assert_eq!(String::from_utf8_lossy(&askpass.stdout), "pass phrase\n");
        let command = files.command();
        for flag in [
            "-F /dev/null",
            "StrictHostKeyChecking=yes",
            "ConnectTimeout=7",
            "SSH_ASKPASS_REQUIRE=force",
        ] {
            assert!(command.contains(flag), "{command}");
        }
        assert!(!command.contains("pass phrase"), "{command}");
        drop(files);
        assert!(!dir.exists());
    }

    #[test]
    fn paths_are_quoted_for_the_shell() {
        assert_eq!(quote(Path::new("/tmp/a b")), "'/tmp/a b'");
        assert_eq!(quote(Path::new("/tmp/it's")), r"'/tmp/it'\''s'");
    }
}
