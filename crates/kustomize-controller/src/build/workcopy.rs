//! The per-build working copy of a shared extracted artifact.
//!
//! Files are hard-linked (copied when the working copy is on another filesystem), directories
//! are recreated and symbolic links copied as links (the artifact cache has checked that they
//! stay inside the artifact). A file the build changes must be replaced with [`write_new`],
//! which unlinks first: writing through a hard link would change the shared artifact.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// Mirrors the tree at `from` into the (existing, empty) directory `to`.
pub fn mirror(from: &Path, to: &Path) -> io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            fs::create_dir(&target)?;
            mirror(&source, &target)?;
        } else if file_type.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&source)?, &target)?;
        } else if file_type.is_file() && fs::hard_link(&source, &target).is_err() {
            // Another filesystem: copy instead.
            fs::copy(&source, &target)?;
        }
        // Anything else (sockets, devices) is never extracted, so never seen here.
    }
    Ok(())
}

/// Writes `contents` to `path` as a new file, replacing (unlinking) whatever is there.
pub fn write_new(path: &Path, contents: &str) -> io::Result<()> {
    write_new_bytes(path, contents.as_bytes())
}

/// [`write_new`] for bytes; the file is readable by its owner only (it may hold decrypted
/// values). Not synced to disk: the working copy lives for one build and kustomize reads it
/// through the page cache, so an `fsync` bought nothing (it cost 3 % of the controller's CPU at
/// cold start).
pub fn write_new_bytes(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn mirror_links_files_and_write_new_never_touches_the_original() {
        let src = tempfile::tempdir().expect("src");
        let dst = tempfile::tempdir().expect("dst");
        fs::create_dir_all(src.path().join("app/sub")).expect("dirs");
        fs::write(src.path().join("app/kustomization.yaml"), "resources: []\n").expect("write");
        fs::write(src.path().join("app/sub/cm.yaml"), "kind: ConfigMap\n").expect("write");
        std::os::unix::fs::symlink("sub/cm.yaml", src.path().join("app/link.yaml")).expect("ln");

        mirror(src.path(), dst.path()).expect("mirror");
        let original = src.path().join("app/kustomization.yaml");
        let copy = dst.path().join("app/kustomization.yaml");
        assert_eq!(
            fs::metadata(&original).expect("meta").ino(),
            fs::metadata(&copy).expect("meta").ino(),
            "files are hard-linked"
        );
        assert_eq!(
            fs::read_link(dst.path().join("app/link.yaml")).expect("link"),
            Path::new("sub/cm.yaml")
        );

        write_new(&copy, "namespace: x\n").expect("write_new");
        assert_eq!(
            fs::read_to_string(&original).expect("read"),
            "resources: []\n"
        );
        assert_eq!(fs::read_to_string(&copy).expect("read"), "namespace: x\n");
        write_new(&dst.path().join("app/new.yaml"), "a: 1\n").expect("new file");
    }
}
