//! Repositories on the server and the helpers that change them.
//!
//! Each bare repository has a private work clone outside the served root; changes are
//! committed there and pushed through the filesystem, so no write path is exposed over HTTP.
//! Commit and tag dates come from a per-repository counter: the same sequence of changes gives
//! the same SHAs in every run, which keeps expected revisions in tests stable.

use std::os::unix::fs::symlink;
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use super::signing::Signer;
use super::{Error, lock, output, write_file};

/// The first commit timestamp; each commit or tag adds a minute.
const EPOCH: u64 = 1_700_000_000;

/// A bare repository served over HTTP, HTTPS and SSH. Cloning the handle shares the repository.
#[derive(Debug, Clone)]
pub struct Repo {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: String,
    bare: PathBuf,
    work: PathBuf,
    home: PathBuf,
    http_url: String,
    https_url: String,
    ssh_url: String,
    /// The date counter; the lock also serializes changes to the work clone.
    clock: Mutex<u64>,
}

/// Where a new repository goes and how it is reached.
pub(crate) struct RepoPlace {
    pub(crate) name: String,
    pub(crate) bare: PathBuf,
    pub(crate) work: PathBuf,
    pub(crate) home: PathBuf,
    pub(crate) http_url: String,
    pub(crate) https_url: String,
    pub(crate) ssh_url: String,
}

impl Repo {
    /// Creates the bare repository and its work clone, with no commits.
    pub(crate) fn init(place: RepoPlace) -> Result<Repo, Error> {
        let inner = Inner {
            name: place.name,
            bare: place.bare,
            work: place.work,
            home: place.home,
            http_url: place.http_url,
            https_url: place.https_url,
            ssh_url: place.ssh_url,
            clock: Mutex::new(0),
        };
        let repo = Repo {
            inner: Arc::new(inner),
        };
        output(
            repo.git_in(None)
                .args(["init", "-q", "--bare", "-b", "main"])
                .arg(&repo.inner.bare),
        )?;
        // Like GitHub and GitLab: clients may want any reachable commit (a pinned SHA) and
        // ask for partial clones.
        let config = repo.inner.bare.join("config");
        let mut text = std::fs::read_to_string(&config).map_err(|source| Error::ReadFile {
            path: config.clone(),
            source,
        })?;
        text.push_str("[uploadpack]\n\tallowAnySHA1InWant = true\n\tallowFilter = true\n");
        write_file(&config, &text)?;
        output(
            repo.git_in(None)
                .args(["init", "-q", "-b", "main"])
                .arg(&repo.inner.work),
        )?;
        Ok(repo)
    }

    /// The name the repository was created with (without `.git`).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The bare repository on disk.
    pub fn path(&self) -> &Path {
        &self.inner.bare
    }

    /// `http://127.0.0.1:<port>/<name>.git`.
    pub fn http_url(&self) -> &str {
        &self.inner.http_url
    }

    /// `https://127.0.0.1:<port>/<name>.git`, with a certificate signed by the server's CA.
    pub fn https_url(&self) -> &str {
        &self.inner.https_url
    }

    /// [`Repo::https_url`] under the server's `/moved` prefix: every request there is answered
    /// 301 with the same path without the prefix, as a host does for a renamed repository.
    pub fn moved_https_url(&self) -> String {
        let url = &self.inner.https_url;
        let host_end = url["https://".len()..]
            .find('/')
            .map_or(url.len(), |i| i + "https://".len());
        format!(
            "{}{}{}",
            &url[..host_end],
            super::http::MOVED_PREFIX,
            &url[host_end..]
        )
    }

    /// `ssh://<user>@127.0.0.1:<port><root>/<name>.git`.
    pub fn ssh_url(&self) -> &str {
        &self.inner.ssh_url
    }

    /// Writes (or overwrites) `files` on `main`, commits and pushes; returns the commit SHA.
    pub fn commit(&self, files: &[(&str, &str)], message: &str) -> Result<String, Error> {
        self.commit_on("main", files, message)
    }

    /// Like [`Repo::commit`] on `branch`, which is created from `main` when it does not exist.
    pub fn commit_on(
        &self,
        branch: &str,
        files: &[(&str, &str)],
        message: &str,
    ) -> Result<String, Error> {
        self.change(branch, message, |work| write_files(work, files))
    }

    /// Like [`Repo::commit`], signed by `signer` (`git commit -S`).
    pub fn commit_signed(
        &self,
        files: &[(&str, &str)],
        message: &str,
        signer: &Signer,
    ) -> Result<String, Error> {
        self.change_signed("main", message, Some(signer), |work| {
            write_files(work, files)
        })
    }

    /// Makes a commit object that carries the signature of the signed commit `signed` but
    /// whose message is `message` (so the signature no longer matches the content), points
    /// `main` at it and pushes. Returns the forged commit's SHA.
    pub fn forge_signed(&self, signed: &str, message: &str) -> Result<String, Error> {
        let clock = lock(&self.inner.clock);
        let raw = output(self.git().args(["cat-file", "commit", signed]))?;
        let (headers, _) = raw.split_once("\n\n").unwrap_or((raw.as_str(), ""));
        let forged = format!("{headers}\n\n{message}\n");
        let path = self.inner.home.join(format!("forged-{signed}"));
        write_file(&path, &forged)?;
        let sha = output(
            self.git()
                .args(["hash-object", "-t", "commit", "-w"])
                .arg(&path),
        )?
        .trim()
        .to_string();
        drop(clock);
        self.reset("main", &sha)
    }

    /// Removes `paths` (files or directories) from `main`, commits and pushes.
    /// Commits `path` on main as a file of `len` zero bytes, written sparse so that a large
    /// file costs no memory here and little disk (git packs zeros to almost nothing).
    pub fn commit_zeros(&self, path: &str, len: u64, message: &str) -> Result<String, Error> {
        self.change("main", message, |work| {
            let target = work_path(work, path)?;
            create_parent(&target)?;
            let write = |source| Error::WriteFile {
                path: target.clone(),
                source,
            };
            let file = std::fs::File::create(&target).map_err(write)?;
            file.set_len(len).map_err(write)?;
            Ok(vec![path.into()])
        })
    }

    pub fn remove(&self, paths: &[&str], message: &str) -> Result<String, Error> {
        self.change("main", message, |work| {
            for path in paths {
                let target = work_path(work, path)?;
                let removed = if target.is_dir() && !target.is_symlink() {
                    std::fs::remove_dir_all(&target)
                } else {
                    std::fs::remove_file(&target)
                };
                removed.map_err(|source| Error::WriteFile {
                    path: target.clone(),
                    source,
                })?;
            }
            Ok(paths.iter().map(|p| p.into()).collect())
        })
    }

    /// Adds a symbolic link `path` -> `target` on `main`, commits and pushes.
    pub fn symlink(&self, path: &str, target: &str, message: &str) -> Result<String, Error> {
        self.change("main", message, |work| {
            let link = work_path(work, path)?;
            remove_symlink(&link)?;
            if let Some(parent) = link.parent() {
                std::fs::create_dir_all(parent).map_err(|source| Error::WriteFile {
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
            symlink(target, &link).map_err(|source| Error::WriteFile { path: link, source })?;
            Ok(vec![path.into()])
        })
    }

    /// Tags the head of `main` (annotated with `message`, or lightweight) and pushes the tag;
    /// returns the tagged commit's SHA.
    pub fn tag(&self, name: &str, annotated: bool, message: &str) -> Result<String, Error> {
        let mut clock = lock(&self.inner.clock);
        let mut tag = self.git_at(&mut clock);
        tag.arg("tag");
        if annotated {
            tag.args(["-a", "-m", message]);
        }
        output(tag.args([name, "refs/heads/main"]))?;
        self.push_tag(name)
    }

    /// Tags the head of `main` with an annotated tag signed by `signer` (`git tag -s`) and
    /// pushes it; returns the tagged commit's SHA.
    pub fn tag_signed(&self, name: &str, message: &str, signer: &Signer) -> Result<String, Error> {
        let mut clock = lock(&self.inner.clock);
        let mut tag = self.git_at(&mut clock);
        signer.configure(&mut tag)?;
        output(tag.args(["tag", "-s", "-m", message, name, "refs/heads/main"]))?;
        self.push_tag(name)
    }

    /// Pushes the tag `name`; returns the tagged commit's SHA.
    fn push_tag(&self, name: &str) -> Result<String, Error> {
        let refspec = format!("refs/tags/{name}:refs/tags/{name}");
        output(
            self.git()
                .args(["push", "-q"])
                .arg(&self.inner.bare)
                .arg(refspec),
        )?;
        let commit = format!("refs/tags/{name}^{{commit}}");
        Ok(output(self.git().args(["rev-parse", &commit]))?
            .trim()
            .to_string())
    }

    /// Writes `files` (paths and contents as raw bytes, so that names and contents that are not
    /// UTF-8 can be committed) on `main`, commits and pushes; returns the commit SHA.
    pub fn commit_bytes(&self, files: &[(&[u8], &[u8])], message: &str) -> Result<String, Error> {
        use std::os::unix::ffi::OsStrExt;
        self.change("main", message, |work| {
            let mut paths = Vec::new();
            for (path, content) in files {
                let relative = std::ffi::OsStr::from_bytes(path);
                let target = work_path_os(work, relative)?;
                remove_symlink(&target)?;
                create_parent(&target)?;
                std::fs::write(&target, content).map_err(|source| Error::WriteFile {
                    path: target.clone(),
                    source,
                })?;
                paths.push(relative.to_os_string());
            }
            Ok(paths)
        })
    }

    /// Points `branch` at `commit` and force-pushes it: a rewind, or a rewrite of history when
    /// a commit is then made on top. Returns `commit`.
    pub fn reset(&self, branch: &str, commit: &str) -> Result<String, Error> {
        let _clock = lock(&self.inner.clock);
        self.switch_to(branch)?;
        output(self.git().args(["reset", "-q", "--hard", commit]))?;
        let refspec = format!("+refs/heads/{branch}:refs/heads/{branch}");
        output(
            self.git()
                .args(["push", "-q", "--force"])
                .arg(&self.inner.bare)
                .arg(refspec),
        )?;
        Ok(commit.to_string())
    }

    /// Deletes the tag `name` from the served repository (and the work clone).
    pub fn delete_tag(&self, name: &str) -> Result<(), Error> {
        let _clock = lock(&self.inner.clock);
        let refspec = format!(":refs/tags/{name}");
        output(
            self.git()
                .args(["push", "-q"])
                .arg(&self.inner.bare)
                .arg(refspec),
        )?;
        output(self.git().args(["tag", "-d", name]))?;
        Ok(())
    }

    /// The commit the tag `name` points to in the served repository, if it exists.
    pub fn tag_target(&self, name: &str) -> Option<String> {
        let mut rev_parse = self.git_in(Some(&self.inner.bare));
        let rev = format!("refs/tags/{name}^{{commit}}");
        rev_parse.args(["rev-parse", "--verify", "-q", &rev]);
        output(&mut rev_parse).ok().map(|s| s.trim().to_string())
    }

    /// The SHA `branch` points to in the served repository.
    pub fn head(&self, branch: &str) -> Result<String, Error> {
        let mut rev_parse = self.git_in(Some(&self.inner.bare));
        rev_parse.args(["rev-parse", "--verify", &format!("refs/heads/{branch}")]);
        Ok(output(&mut rev_parse)?.trim().to_string())
    }

    /// Switches the work clone to `branch`, lets `edit` change files (returning the paths it
    /// touched), commits with the next date, pushes, and returns the new SHA.
    fn change(
        &self,
        branch: &str,
        message: &str,
        edit: impl FnOnce(&Path) -> Result<Vec<std::ffi::OsString>, Error>,
    ) -> Result<String, Error> {
        self.change_signed(branch, message, None, edit)
    }

    /// [`Repo::change`], signing the commit with `signer` when given.
    fn change_signed(
        &self,
        branch: &str,
        message: &str,
        signer: Option<&Signer>,
        edit: impl FnOnce(&Path) -> Result<Vec<std::ffi::OsString>, Error>,
    ) -> Result<String, Error> {
        let mut clock = lock(&self.inner.clock);
        self.switch_to(branch)?;
        let paths = edit(&self.inner.work)?;
        output(self.git().args(["add", "-A", "--"]).args(&paths))?;
        let mut commit = self.git_at(&mut clock);
        if let Some(signer) = signer {
            signer.configure(&mut commit)?;
        }
        commit.args(["commit", "-q", "--allow-empty", "-m", message]);
        if signer.is_some() {
            commit.arg("-S");
        }
        // --allow-empty: a test may commit unchanged content to get a new revision.
        output(&mut commit)?;
        let refspec = format!("refs/heads/{branch}:refs/heads/{branch}");
        output(
            self.git()
                .args(["push", "-q"])
                .arg(&self.inner.bare)
                .arg(refspec),
        )?;
        Ok(output(self.git().args(["rev-parse", "HEAD"]))?
            .trim()
            .to_string())
    }

    fn switch_to(&self, branch: &str) -> Result<(), Error> {
        let current = output(self.git().args(["symbolic-ref", "--short", "HEAD"]))?;
        if current.trim() == branch {
            return Ok(());
        }
        let exists =
            |rev: &str| output(self.git().args(["rev-parse", "--verify", "-q", rev])).is_ok();
        if exists(&format!("refs/heads/{branch}")) {
            output(self.git().args(["checkout", "-q", branch]))?;
        } else if exists("refs/heads/main") {
            output(self.git().args(["checkout", "-q", "-b", branch, "main"]))?;
        } else {
            // No commits yet: start the branch unborn.
            let head = format!("refs/heads/{branch}");
            output(self.git().args(["symbolic-ref", "HEAD", &head]))?;
        }
        Ok(())
    }

    /// A git command in the work clone.
    fn git(&self) -> Command {
        self.git_in(Some(&self.inner.work))
    }

    /// A git command in the work clone that creates an object dated by the next clock tick.
    fn git_at(&self, clock: &mut u64) -> Command {
        *clock += 1;
        let date = format!("{} +0000", EPOCH + *clock * 60);
        let mut cmd = self.git();
        cmd.env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date);
        cmd
    }

    /// git with a clean environment and a fixed identity, so the test process's config and
    /// GIT_* variables cannot change the result.
    fn git_in(&self, dir: Option<&Path>) -> Command {
        let mut cmd = Command::new("git");
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.inner.home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .args([
                "-c",
                "user.name=Mooring Test",
                "-c",
                "user.email=test@mooring.invalid",
            ])
            .args(["-c", "commit.gpgSign=false", "-c", "tag.gpgSign=false"])
            .args(["-c", "core.autocrlf=false", "-c", "core.symlinks=true"]);
        if let Some(dir) = dir {
            cmd.current_dir(dir);
        }
        cmd
    }
}

/// `path` inside the work clone; absolute paths and `..` are refused so a test cannot write
/// outside it by mistake.
fn work_path(work: &Path, path: &str) -> Result<PathBuf, Error> {
    let relative = Path::new(path);
    let plain = relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    if path.is_empty() || !plain {
        return Err(Error::InvalidPath(path.to_string()));
    }
    Ok(work.join(relative))
}

/// Like [`work_path`] for a name that may not be UTF-8.
fn work_path_os(work: &Path, relative: &std::ffi::OsStr) -> Result<PathBuf, Error> {
    let relative = Path::new(relative);
    let plain = relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    if relative.as_os_str().is_empty() || !plain {
        return Err(Error::InvalidPath(relative.to_string_lossy().into_owned()));
    }
    Ok(work.join(relative))
}

/// Writing through an existing symlink would change its target instead of replacing it.
fn remove_symlink(path: &Path) -> Result<(), Error> {
    if path.is_symlink() {
        std::fs::remove_file(path).map_err(|source| Error::WriteFile {
            path: path.to_path_buf(),
            source,
        })?;
    }
    Ok(())
}

/// Names become paths and URL segments; a `.git` segment would end the name early in a URL.
pub(crate) fn validate_repo_name(name: &str) -> Result<(), Error> {
    let segment_ok = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && !s.ends_with(".git")
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    };
    if name.split('/').all(segment_ok) {
        Ok(())
    } else {
        Err(Error::InvalidRepoName(name.to_string()))
    }
}

/// Creates the directories `target` goes in.
fn create_parent(target: &Path) -> Result<(), Error> {
    match target.parent() {
        Some(parent) => std::fs::create_dir_all(parent).map_err(|source| Error::WriteFile {
            path: parent.to_path_buf(),
            source,
        }),
        None => Ok(()),
    }
}

/// Writes (or overwrites) `files` in the work tree `work`, replacing a symbolic link at a path;
/// returns their paths for `git add`.
fn write_files(work: &Path, files: &[(&str, &str)]) -> Result<Vec<std::ffi::OsString>, Error> {
    for (path, content) in files {
        let target = work_path(work, path)?;
        remove_symlink(&target)?;
        create_parent(&target)?;
        write_file(&target, content)?;
    }
    Ok(files.iter().map(|(path, _)| path.into()).collect())
}
