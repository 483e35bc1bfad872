//! Extracting a verified `.tar.gz` artifact safely.
//!
//! Refused, with an error naming the entry: absolute paths, `..` components, hard links,
//! device files and FIFOs, symbolic links whose target is absolute or leaves the root (also
//! through other links of the archive, such as `b -> a/..` with `a -> .`), and any entry whose
//! path passes through a symbolic link (which is how an archive escapes through a link it
//! created earlier). Limits: number of entries, bytes of file content, and bytes read
//! from the decompressor (so headers cannot be a bomb either). Files are made read-only: a
//! process that is not root cannot then modify the shared tree through a hard link.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use flate2::read::GzDecoder;
use mooring_runtime::links::link_stays_inside;
use tar::EntryType;

use super::{ArtifactError, Limits};

/// A reader that fails once more than `remaining` bytes were read, and says so in `exceeded`.
struct Budget<R> {
    inner: R,
    remaining: u64,
    exceeded: Arc<AtomicBool>,
}

impl<R: Read> Read for Budget<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.remaining {
            self.exceeded.store(true, Ordering::Relaxed);
            return Err(io::Error::other(
                "decompressed archive exceeds the size limit",
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// The relative path of an entry; absolute paths and `..` are refused.
pub fn safe_relative(entry: &Path) -> Result<PathBuf, &'static str> {
    let mut out = PathBuf::new();
    for component in entry.components() {
        match component {
            Component::Normal(c) => out.push(c),
            Component::CurDir => {}
            Component::ParentDir => return Err("the path contains `..`"),
            Component::RootDir | Component::Prefix(_) => return Err("the path is absolute"),
        }
    }
    Ok(out)
}

/// Whether a symbolic link at `link` (relative to the root) pointing to `target` stays inside
/// the root, resolving `..` lexically (no ancestor of an entry can be a link, see
/// [`prepare_parents`]). Links in the target itself are judged once the whole archive is
/// extracted (see `resolves_inside`).
pub fn symlink_stays_inside(link: &Path, target: &Path) -> bool {
    let mut depth: Vec<&std::ffi::OsStr> = link
        .parent()
        .map(|p| {
            p.components()
                .filter_map(|c| match c {
                    Component::Normal(n) => Some(n),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if target.as_os_str().is_empty() {
        return false;
    }
    for component in target.components() {
        match component {
            Component::Normal(n) => depth.push(n),
            Component::CurDir => {}
            Component::ParentDir => {
                if depth.pop().is_none() {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// Whether following the link at `link` (relative to `root`) to `target` ends inside `root`,
/// with the links now under `root` expanded as the kernel would: `b -> a/..` leaves the root
/// when `a -> .`, although it looks inside. Absolute targets, loops and `..` above the root
/// (also through missing components) count as leaving.
fn resolves_inside(root: &Path, link: &Path, target: &Path) -> bool {
    link_stays_inside(
        link.as_os_str().as_bytes(),
        target.as_os_str().as_bytes(),
        |path| {
            fs::read_link(root.join(OsStr::from_bytes(path)))
                .ok()
                .map(|t| t.into_os_string().into_vec())
        },
    )
}

/// Creates the missing parent directories of `rel` under `root`, at most `allowed` of them
/// (else [`ArtifactError::TooManyFiles`] with `limit`), and returns how many; refuses a parent
/// that is a symbolic link or not a directory.
fn prepare_parents(
    root: &Path,
    rel: &Path,
    entry: &str,
    allowed: u64,
    limit: u64,
) -> Result<u64, ArtifactError> {
    let mut current = root.to_path_buf();
    let mut created = 0;
    let Some(parent) = rel.parent() else {
        return Ok(0);
    };
    for component in parent.components() {
        current.push(component);
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(unsafe_entry(
                    entry,
                    "the path passes through a symbolic link",
                ));
            }
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(unsafe_entry(
                    entry,
                    "a parent of the path is not a directory",
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if created >= allowed {
                    return Err(ArtifactError::TooManyFiles { limit });
                }
                fs::create_dir(&current).map_err(|e| storage("create directory", &current, e))?;
                created += 1;
            }
            Err(e) => return Err(storage("inspect", &current, e)),
        }
    }
    Ok(created)
}

fn unsafe_entry(entry: &str, problem: &'static str) -> ArtifactError {
    ArtifactError::UnsafeEntry {
        entry: entry.to_owned(),
        problem,
    }
}

fn storage(operation: &'static str, path: &Path, source: io::Error) -> ArtifactError {
    ArtifactError::Storage {
        operation,
        path: path.to_path_buf(),
        source,
    }
}

/// Removes a previous entry at `path` (duplicate names: the later entry wins), but never a
/// directory.
fn clear(path: &Path, entry: &str) -> Result<(), ArtifactError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => Err(unsafe_entry(entry, "a directory already has this path")),
        Ok(_) => fs::remove_file(path).map_err(|e| storage("replace", path, e)),
        Err(_) => Ok(()),
    }
}

/// Extracts `archive` (gzip-compressed tar) into the existing empty directory `dest`.
pub fn extract(archive: &Path, dest: &Path, limits: &Limits) -> Result<(), ArtifactError> {
    // Links are judged again once all are in place (a later link can make an earlier one lead
    // out), and also when writing stopped early: a refused archive leaves no way out behind.
    let mut links: Vec<(PathBuf, String)> = Vec::new();
    let written = write_entries(archive, dest, limits, &mut links);
    let judged = remove_links_leading_out(dest, &links);
    written.and(judged)
}

/// Writes the entries of `archive` under `dest`, recording the links written in `links`.
fn write_entries(
    archive: &Path,
    dest: &Path,
    limits: &Limits,
    links: &mut Vec<(PathBuf, String)>,
) -> Result<(), ArtifactError> {
    let file = File::open(archive).map_err(|e| storage("open", archive, e))?;
    let exceeded = Arc::new(AtomicBool::new(false));
    let budget = limits
        .max_extracted_bytes
        .saturating_add(limits.max_files.saturating_mul(2048))
        .saturating_add(1 << 20);
    let reader = Budget {
        inner: GzDecoder::new(BufReader::new(file)),
        remaining: budget,
        exceeded: exceeded.clone(),
    };
    let mut tar = tar::Archive::new(reader);
    let format_error = |source: io::Error| {
        if exceeded.load(Ordering::Relaxed) {
            ArtifactError::ExtractedTooLarge {
                limit: limits.max_extracted_bytes,
            }
        } else {
            ArtifactError::Archive { source }
        }
    };
    let mut entries_seen: u64 = 0;
    let mut bytes: u64 = 0;
    for entry in tar.entries().map_err(format_error)? {
        let mut entry = entry.map_err(format_error)?;
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader) {
            continue;
        }
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = entry.path().map_err(format_error)?.into_owned();
        let rel = safe_relative(&path).map_err(|problem| unsafe_entry(&name, problem))?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        entries_seen += 1;
        if entries_seen > limits.max_files {
            return Err(ArtifactError::TooManyFiles {
                limit: limits.max_files,
            });
        }
        // Directories an entry implies count too: one entry with a deep path must not create
        // more directories than the limit allows.
        let allowed = limits.max_files - entries_seen;
        entries_seen += prepare_parents(dest, &rel, &name, allowed, limits.max_files)?;
        let target = dest.join(&rel);
        match kind {
            EntryType::Regular | EntryType::Continuous => {
                let declared = entry.header().size().map_err(format_error)?;
                if bytes.saturating_add(declared) > limits.max_extracted_bytes {
                    return Err(ArtifactError::ExtractedTooLarge {
                        limit: limits.max_extracted_bytes,
                    });
                }
                clear(&target, &name)?;
                let executable = entry
                    .header()
                    .mode()
                    .map(|m| m & 0o111 != 0)
                    .unwrap_or(false);
                let mut out = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&target)
                    .map_err(|e| storage("create file", &target, e))?;
                let written =
                    io::copy(&mut (&mut entry).take(declared), &mut out).map_err(format_error)?;
                bytes += written;
                let mode = if executable { 0o555 } else { 0o444 };
                fs::set_permissions(&target, fs::Permissions::from_mode(mode))
                    .map_err(|e| storage("set permissions", &target, e))?;
            }
            EntryType::Directory => match fs::symlink_metadata(&target) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => return Err(unsafe_entry(&name, "a file or link already has this path")),
                Err(_) => {
                    fs::create_dir(&target).map_err(|e| storage("create directory", &target, e))?
                }
            },
            EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(format_error)?
                    .ok_or_else(|| unsafe_entry(&name, "the link has no target"))?
                    .into_owned();
                if !symlink_stays_inside(&rel, &link) {
                    return Err(unsafe_entry(&name, "the link target leaves the artifact"));
                }
                clear(&target, &name)?;
                std::os::unix::fs::symlink(&link, &target)
                    .map_err(|e| storage("create link", &target, e))?;
                links.push((rel, name));
            }
            EntryType::Link => return Err(unsafe_entry(&name, "hard links are not allowed")),
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                return Err(unsafe_entry(
                    &name,
                    "device files and FIFOs are not allowed",
                ));
            }
            _ => return Err(unsafe_entry(&name, "unsupported entry type")),
        }
    }
    Ok(())
}

/// Removes each link of `links` that now leads out of `dest` (or loops); refuses the archive,
/// naming the first.
fn remove_links_leading_out(dest: &Path, links: &[(PathBuf, String)]) -> Result<(), ArtifactError> {
    let mut refused = None;
    for (rel, name) in links {
        // A link a later entry replaced is gone; the one now at the path is judged.
        let path = dest.join(rel);
        if let Ok(target) = fs::read_link(&path)
            && !resolves_inside(dest, rel, &target)
        {
            fs::remove_file(&path).map_err(|e| storage("remove link", &path, e))?;
            refused.get_or_insert(name);
        }
    }
    match refused {
        Some(name) => Err(unsafe_entry(
            name,
            "the link target leaves the artifact through another link, or loops",
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Extracts a gzip tar of `entries` (`name`, `None` for a directory or `Some(target)` for
    /// a symbolic link) with `limits`.
    fn extract_links(
        entries: &[(&str, Option<&str>)],
        limits: &Limits,
    ) -> Result<(), ArtifactError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (name, target) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(0);
            match target {
                Some(target) => {
                    header.set_entry_type(EntryType::Symlink);
                    header.set_link_name(target).expect("link name");
                }
                None => header.set_entry_type(EntryType::Directory),
            }
            header.set_path(name).expect("name");
            header.set_cksum();
            builder.append(&header, io::empty()).expect("append");
        }
        let bytes = builder.into_inner().expect("tar").finish().expect("gzip");
        let archive = dir.path().join("a.tar.gz");
        fs::write(&archive, bytes).expect("write");
        let dest = dir.path().join("dest");
        fs::create_dir(&dest).expect("dest");
        extract(&archive, &dest, limits)
    }

    #[test]
    fn links_through_links_that_lead_out_are_refused() {
        let limits = Limits::default();
        // `b -> a/..` looks inside, but `a -> .` makes it the parent of the root.
        let err = extract_links(&[("a", Some(".")), ("b", Some("a/.."))], &limits)
            .expect_err("escape through a link");
        assert!(err.to_string().contains("\"b\""), "{err}");
        // The same when the link that makes it escape comes later.
        extract_links(&[("b", Some("a/..")), ("a", Some("."))], &limits)
            .expect_err("escape through a later link");
        extract_links(&[("b", Some("b/x"))], &limits).expect_err("a loop");
        extract_links(
            &[("d", None), ("d/a", Some("..")), ("b", Some("d/a/d"))],
            &limits,
        )
        .expect("links through links that stay inside");
    }

    #[test]
    fn implied_directories_count_toward_the_entry_limit() {
        let limits = Limits {
            max_files: 3,
            ..Limits::default()
        };
        extract_links(&[("a/b/l", Some("x"))], &limits).expect("three entries");
        let err = extract_links(&[("a/b/c/l", Some("x"))], &limits).expect_err("four entries");
        assert!(
            matches!(err, ArtifactError::TooManyFiles { limit: 3 }),
            "{err}"
        );
    }

    #[test]
    fn relative_paths() {
        assert_eq!(safe_relative(Path::new("./a/b")), Ok(PathBuf::from("a/b")));
        assert_eq!(safe_relative(Path::new("./")), Ok(PathBuf::new()));
        assert!(safe_relative(Path::new("/etc/passwd")).is_err());
        assert!(safe_relative(Path::new("a/../../b")).is_err());
        assert!(safe_relative(Path::new("a/../b")).is_err());
    }

    #[test]
    fn symlink_targets() {
        assert!(symlink_stays_inside(Path::new("a/link"), Path::new("../b")));
        assert!(symlink_stays_inside(
            Path::new("a/b/link"),
            Path::new("../../c/./d")
        ));
        assert!(symlink_stays_inside(Path::new("link"), Path::new("x/y")));
        assert!(!symlink_stays_inside(Path::new("link"), Path::new("../x")));
        assert!(!symlink_stays_inside(
            Path::new("a/link"),
            Path::new("../../x")
        ));
        assert!(!symlink_stays_inside(
            Path::new("a/link"),
            Path::new("/etc/passwd")
        ));
        assert!(!symlink_stays_inside(Path::new("a/link"), Path::new("")));
        assert!(!symlink_stays_inside(
            Path::new("a/link"),
            Path::new("b/../../../x")
        ));
    }
}
