//! A real OpenSSH server for `ssh://` clones, as the operator's clients (git, gix) run the
//! external `ssh` binary and must meet a real host key check and key authentication.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{Error, output, write_file};
use crate::process::Supervised;

const SSHD: &str = "/usr/sbin/sshd";
/// The passphrase of the encrypted user key.
pub(crate) const PASSPHRASE: &str = "mooring-passphrase";
/// How long sshd may take to listen, on a slow and busy CI machine.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The running sshd and the keys that reach it.
#[derive(Debug)]
pub(crate) struct Sshd {
    pub(crate) process: Supervised,
    pub(crate) port: u16,
    pub(crate) user: String,
    pub(crate) known_hosts: String,
    pub(crate) known_hosts_file: PathBuf,
    pub(crate) user_key_file: PathBuf,
    pub(crate) user_key_pem: String,
    pub(crate) encrypted_key_file: PathBuf,
    pub(crate) encrypted_key_pem: String,
}

/// Generates keys and configuration under `dir` and starts sshd; its git commands run with
/// `home` as HOME and are recorded in `ssh_log`.
pub(crate) fn start(dir: &Path, home: &Path, ssh_log: &Path) -> Result<Sshd, Error> {
    let sshd = Path::new(SSHD);
    if !sshd.exists() {
        return Err(Error::SshdMissing {
            path: sshd.to_path_buf(),
        });
    }
    let user = output(Command::new("id").arg("-un"))?.trim().to_string();
    ensure_privsep_dir()?;

    let host_key = dir.join("host_ed25519");
    let user_key_file = dir.join("user_ed25519");
    let encrypted_key_file = dir.join("user_ed25519_encrypted");
    keygen(&host_key, "", "mooring-test-host")?;
    keygen(&user_key_file, "", "mooring-test-user")?;
    keygen(&encrypted_key_file, PASSPHRASE, "mooring-test-encrypted")?;

    let wrapper = dir.join("git-command.sh");
    write_file(&wrapper, &wrapper_script(dir, home, ssh_log))?;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).map_err(
        |source| Error::WriteFile {
            path: wrapper.clone(),
            source,
        },
    )?;
    let options = "no-port-forwarding,no-X11-forwarding,no-agent-forwarding,no-pty";
    let authorized = format!(
        "command=\"{w} user\",{options} {}\ncommand=\"{w} encrypted\",{options} {}\n",
        read(&dir.join("user_ed25519.pub"))?.trim(),
        read(&dir.join("user_ed25519_encrypted.pub"))?.trim(),
        w = wrapper.display(),
    );
    let authorized_keys = dir.join("authorized_keys");
    write_file(&authorized_keys, &authorized)?;

    let config = dir.join("sshd_config");
    write_file(
        &config,
        &sshd_config(dir, &host_key, &authorized_keys, &user),
    )?;

    let host_public = read(&dir.join("host_ed25519.pub"))?;
    let host_public: Vec<&str> = host_public.split_whitespace().take(2).collect();
    let log = dir.join("sshd.log");
    // The port is picked free and then handed to sshd, so another process can take it in
    // between; a few attempts make that race harmless.
    let mut last_error = None;
    for _ in 0..3 {
        let port = free_port()?;
        let args: Vec<String> = ["-D", "-e", "-f"]
            .iter()
            .map(|s| s.to_string())
            .chain([
                config.display().to_string(),
                "-p".to_string(),
                port.to_string(),
            ])
            .collect();
        let mut process =
            Supervised::spawn("sshd", sshd, &args, &[], &log, dir).map_err(Error::StartSshd)?;
        match wait_ready(&mut process, port) {
            Ok(()) => {
                let known_hosts = format!("[127.0.0.1]:{port} {}", host_public.join(" "));
                let known_hosts_file = dir.join("known_hosts");
                write_file(&known_hosts_file, &format!("{known_hosts}\n"))?;
                return Ok(Sshd {
                    process,
                    port,
                    user,
                    known_hosts,
                    known_hosts_file,
                    user_key_pem: read(&user_key_file)?,
                    user_key_file,
                    encrypted_key_pem: read(&encrypted_key_file)?,
                    encrypted_key_file,
                });
            }
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or(Error::SshdNotReady {
        port: 0,
        log: String::new(),
    }))
}

/// sshd refuses to start as root without its privilege separation directory, which a container
/// without systemd-tmpfiles does not have.
fn ensure_privsep_dir() -> Result<(), Error> {
    let privsep = Path::new("/run/sshd");
    if output(Command::new("id").arg("-u"))?.trim() != "0" || privsep.is_dir() {
        return Ok(());
    }
    let created = std::fs::create_dir_all(privsep)
        .and_then(|()| std::fs::set_permissions(privsep, std::fs::Permissions::from_mode(0o755)));
    created.map_err(|source| Error::WriteFile {
        path: privsep.to_path_buf(),
        source,
    })
}

fn keygen(file: &Path, passphrase: &str, comment: &str) -> Result<(), Error> {
    output(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", passphrase, "-C", comment, "-f"])
            .arg(file),
    )
    .map(drop)
}

/// The forced command of every authorized key (`$1` names the key): it runs the git command sshd
/// received and records it, with a packet trace that tells a ref listing from a fetch. Not `exec`:
/// the line is written after the command so it carries the exit code, and before the client
/// sees the session end, so a test reading the log right after `git` returns finds it.
fn wrapper_script(dir: &Path, home: &Path, ssh_log: &Path) -> String {
    format!(
        r#"#!/bin/sh
# Git commands only: the login may be root, and the key is a test key.
case "$SSH_ORIGINAL_COMMAND" in
  "git-upload-pack "*|"git-receive-pack "*|"git-upload-archive "*) ;;
  *) echo "this test server runs git commands only" >&2; exit 1 ;;
esac
export HOME='{home}' GIT_CONFIG_NOSYSTEM=1
trace=$(mktemp '{dir}/trace.XXXXXX')
GIT_TRACE_PACKET="$trace" sh -c "$SSH_ORIGINAL_COMMAND"
rc=$?
printf '%s\t%s\t%s\t%s\n' "$1" "$rc" "$trace" "$SSH_ORIGINAL_COMMAND" >>'{log}'
exit $rc
"#,
        home = home.display(),
        dir = dir.display(),
        log = ssh_log.display(),
    )
}

fn sshd_config(dir: &Path, host_key: &Path, authorized_keys: &Path, user: &str) -> String {
    format!(
        "ListenAddress 127.0.0.1\n\
         HostKey {host_key}\n\
         PidFile {pid}\n\
         AuthorizedKeysFile {authorized_keys}\n\
         AllowUsers {user}\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UsePAM no\n\
         # CI runs tests as root; keys only, as on a real server.\n\
         PermitRootLogin prohibit-password\n\
         # The keys live in a temp dir whose modes sshd would otherwise reject.\n\
         StrictModes no\n\
         # Without it the server answers protocol v0 even when the client asks for v2.\n\
         AcceptEnv GIT_PROTOCOL\n\
         LogLevel VERBOSE\n",
        host_key = host_key.display(),
        pid = dir.join("sshd-daemon.pid").display(),
        authorized_keys = authorized_keys.display(),
    )
}

/// Waits until sshd answers with its banner, failing early when it has exited.
fn wait_ready(process: &mut Supervised, port: u16) -> Result<(), Error> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut banner = [0u8; 4];
            if stream.read_exact(&mut banner).is_ok() && &banner == b"SSH-" {
                return Ok(());
            }
        }
        if process.has_exited() || Instant::now() > deadline {
            return Err(Error::SshdNotReady {
                port,
                log: process.log_tail(20),
            });
        }
        // Polling interval of a readiness loop bounded by the deadline above.
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn free_port() -> Result<u16, Error> {
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|source| Error::BindListener {
            what: "ssh port probe",
            source,
        })
}

fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::ReadFile {
        path: path.to_path_buf(),
        source,
    })
}
