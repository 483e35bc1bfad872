//! Helpers for the archive tests: repositories on the testkit git server, bare clones made
//! with the git CLI, and reading archives back with the tar crate.

#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use flate2::read::GzDecoder;
use mooring_source_controller::archive::{
    ArchiveError, ArchiveOptions, ArchiveSummary, build_archive,
};
use mooring_testkit::git::{Auth, GitServer, Repo};

/// A new repository on the shared git server.
pub fn new_repo(name: &str) -> Repo {
    GitServer::shared()
        .expect("git server")
        .create_repo(name, Auth::None)
        .expect("create repo")
}

/// git with no user or system configuration.
pub fn git(home: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@mooring.invalid",
        ]);
    cmd
}

/// Runs `cmd`, panicking with its stderr on failure; returns stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run git");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `git clone --bare` of `repo` over HTTP into `dir/<label>.git`.
pub fn clone_bare(repo: &Repo, dir: &Path, label: &str) -> PathBuf {
    let target = dir.join(format!("{label}.git"));
    run(git(dir)
        .args(["clone", "--bare", "-q", repo.http_url()])
        .arg(&target));
    target
}

/// Archives into memory.
pub fn archive(
    repo: &Path,
    commit: &str,
    options: &ArchiveOptions,
) -> Result<(Vec<u8>, ArchiveSummary), ArchiveError> {
    let mut out = Vec::new();
    let summary = build_archive(repo, commit, options, &mut out)?;
    Ok((out, summary))
}

/// One entry of an archive, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarEntry {
    pub path: String,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub user: Vec<u8>,
    pub group: Vec<u8>,
    pub link: Option<String>,
    pub content: Vec<u8>,
}

/// Entry type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
    Other,
}

/// Reads every entry of a `.tar.gz`.
pub fn read_entries(bytes: &[u8]) -> Vec<TarEntry> {
    let mut archive = tar::Archive::new(GzDecoder::new(bytes));
    let mut out = Vec::new();
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let header = entry.header().clone();
        let kind = match header.entry_type() {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Regular => Kind::File,
            tar::EntryType::Symlink => Kind::Symlink,
            _ => Kind::Other,
        };
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let link = entry
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned());
        let mut content = Vec::new();
        entry.read_to_end(&mut content).expect("content");
        out.push(TarEntry {
            path,
            kind,
            mode: header.mode().expect("mode"),
            uid: header.uid().expect("uid"),
            gid: header.gid().expect("gid"),
            mtime: header.mtime().expect("mtime"),
            user: header.username_bytes().unwrap_or_default().to_vec(),
            group: header.groupname_bytes().unwrap_or_default().to_vec(),
            link,
            content,
        });
    }
    out
}

/// Paths of the entries of `kind`, in archive order.
pub fn paths_of(entries: &[TarEntry], kind: Kind) -> Vec<String> {
    entries
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.path.trim_end_matches('/').to_string())
        .collect()
}

/// All paths, directories without their trailing slash, in archive order.
pub fn all_paths(entries: &[TarEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e.path.trim_end_matches('/').to_string())
        .collect()
}

/// The content of the file at `path`.
pub fn content(entries: &[TarEntry], path: &str) -> String {
    let entry = entries
        .iter()
        .find(|e| e.path == path)
        .unwrap_or_else(|| panic!("no entry {path}"));
    String::from_utf8_lossy(&entry.content).into_owned()
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}
