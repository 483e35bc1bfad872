//! Disk damage, for tests of what a client does with a repository it can no longer read.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Flips one byte in the middle of the stored (compressed) data of the object `revision` names
/// (`<commit>:<path>` for a file) in a pack of the bare repository `git_dir`, as a damaged disk
/// would, and returns the object's id. Panics when no pack holds it.
pub fn damage_object_in_pack(git_dir: &Path, revision: &str) -> String {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(git_dir)
        .args(["rev-parse", revision])
        .output()
        .expect("git rev-parse");
    assert!(out.status.success(), "git rev-parse {revision} failed");
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let packs: Vec<PathBuf> = std::fs::read_dir(git_dir.join("objects/pack"))
        .expect("pack dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "pack"))
        .collect();
    for pack in packs {
        let out = Command::new("git")
            .arg("verify-pack")
            .arg("-v")
            .arg(&pack)
            .output()
            .expect("git verify-pack");
        let listing = String::from_utf8_lossy(&out.stdout);
        let Some(line) = listing.lines().find(|l| l.starts_with(&id)) else {
            continue;
        };
        // <id> <type> <size> <size-in-pack> <offset> ...
        let fields: Vec<u64> = line
            .split_whitespace()
            .skip(3)
            .take(2)
            .map(|f| f.parse().expect("a number in git verify-pack's listing"))
            .collect();
        let (stored, offset) = (fields[0], fields[1]);
        let mut data = std::fs::read(&pack).expect("read pack");
        data[usize::try_from(offset + stored / 2).expect("offset")] ^= 0xff;
        // git makes packs read-only.
        let mut perms = std::fs::metadata(&pack).expect("metadata").permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(&pack, perms).expect("chmod");
        std::fs::write(&pack, &data).expect("write pack");
        return id;
    }
    panic!("object {id} is in no pack of {}", git_dir.display());
}
