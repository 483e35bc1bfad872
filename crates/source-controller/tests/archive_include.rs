//! Includes, size limits, modes that the testkit cannot commit (executables, submodules), and
//! the archive stored through `Storage`.

#[path = "archive_support/mod.rs"]
mod support;

use std::path::Path;

use mooring_source_controller::archive::{
    ArchiveOptions, EXECUTABLE_MODE, FILE_MODE, IncludeSource, build_archive,
};
use mooring_source_controller::storage::Storage;
use support::{Kind, archive, clone_bare, content, git, new_repo, paths_of, read_entries, run};

/// Archives `repo`'s head into `dir/<label>.tar.gz`, as storage would hold it.
fn stored_artifact(
    repo: &mooring_testkit::git::Repo,
    dir: &Path,
    label: &str,
) -> std::path::PathBuf {
    let clone = clone_bare(repo, dir, label);
    let commit = repo.head("main").expect("head");
    let (bytes, _) = archive(&clone, &commit, &ArchiveOptions::default()).expect("archive");
    let path = dir.join(format!("{label}.tar.gz"));
    std::fs::write(&path, bytes).expect("write artifact");
    path
}

fn include(archive: &Path, from: Option<&str>, to: &str) -> IncludeSource {
    IncludeSource {
        archive: archive.to_path_buf(),
        from_path: from.map(str::to_string),
        to_path: to.to_string(),
    }
}

#[test]
fn includes_are_placed_under_to_path_and_win() {
    let lib = new_repo("include-lib");
    lib.commit(
        &[
            ("deploy/app.yaml", "from lib\n"),
            ("deploy/base/k.yaml", "base\n"),
            ("other.yaml", "other\n"),
        ],
        "lib",
    )
    .expect("commit");
    let main = new_repo("include-main");
    let commit = main
        .commit(
            &[
                ("main.yaml", "main\n"),
                ("vendor/lib/app.yaml", "stale copy\n"),
                ("vendor/lib/local.yaml", "local\n"),
            ],
            "main",
        )
        .expect("commit");
    let dir = tempfile::tempdir().expect("temp dir");
    let lib_artifact = stored_artifact(&lib, dir.path(), "lib");
    let clone = clone_bare(&main, dir.path(), "main");

    let options = ArchiveOptions {
        includes: vec![
            include(&lib_artifact, Some("./deploy/"), "vendor/lib"),
            include(&lib_artifact, None, "all"),
        ],
        ..ArchiveOptions::default()
    };
    let (bytes, summary) = archive(&clone, &commit, &options).expect("archive");
    let entries = read_entries(&bytes);
    assert_eq!(
        paths_of(&entries, Kind::File),
        [
            "README.md",
            "all/README.md",
            "all/deploy/app.yaml",
            "all/deploy/base/k.yaml",
            "all/other.yaml",
            "main.yaml",
            "vendor/lib/app.yaml",
            "vendor/lib/base/k.yaml",
            "vendor/lib/local.yaml",
        ]
    );
    assert_eq!(content(&entries, "vendor/lib/app.yaml"), "from lib\n");
    assert_eq!(content(&entries, "all/other.yaml"), "other\n");
    assert_eq!(summary.files, 9);
    assert!(paths_of(&entries, Kind::Dir).contains(&"all/deploy/base".to_string()));

    let (again, _) = archive(&clone, &commit, &options).expect("archive");
    assert_eq!(bytes, again, "includes must not break determinism");

    // A single included file can be placed under another name.
    let single = ArchiveOptions {
        includes: vec![include(
            &lib_artifact,
            Some("other.yaml"),
            "config/other.yaml",
        )],
        ..ArchiveOptions::default()
    };
    let (bytes, _) = archive(&clone, &commit, &single).expect("archive");
    assert_eq!(
        content(&read_entries(&bytes), "config/other.yaml"),
        "other\n"
    );
}

#[test]
fn include_errors_name_the_problem() {
    let lib = new_repo("include-errors-lib");
    let main = new_repo("include-errors-main");
    let commit = main.head("main").expect("head");
    let dir = tempfile::tempdir().expect("temp dir");
    let lib_artifact = stored_artifact(&lib, dir.path(), "lib");
    let clone = clone_bare(&main, dir.path(), "main");
    let run_with = |inc: IncludeSource, limit: Option<u64>| {
        let options = ArchiveOptions {
            includes: vec![inc],
            max_include_size: limit,
            ..ArchiveOptions::default()
        };
        archive(&clone, &commit, &options).expect_err("include must fail")
    };

    for to in ["../x", "/abs", "a/../../x"] {
        let err = run_with(include(&lib_artifact, None, to), None);
        assert_eq!(err.label(), "IllegalPath", "{to}");
    }
    let err = run_with(include(&lib_artifact, Some("../up"), "x"), None);
    assert_eq!(err.label(), "IllegalPath");
    let err = run_with(include(&lib_artifact, Some("missing"), "x"), None);
    assert_eq!(err.label(), "IncludeFromPathMissing");
    assert!(err.to_string().contains("missing"), "{err}");
    let err = run_with(include(&dir.path().join("absent.tar.gz"), None, "x"), None);
    assert_eq!(err.label(), "ReadInclude");
    let err = run_with(include(&lib_artifact, None, "x"), Some(3));
    assert_eq!(err.label(), "IncludeTooLarge");
}

/// Text that gzip cannot shrink much: hex of a xorshift sequence.
fn noise(len: usize) -> String {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = String::with_capacity(len);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.push_str(&format!("{state:016x}"));
    }
    out.truncate(len);
    out
}

#[test]
fn max_size_aborts_with_too_large() {
    let repo = new_repo("max-size");
    let big = noise(256 * 1024);
    let commit = repo.commit(&[("big.txt", &big)], "big").expect("commit");
    let dir = tempfile::tempdir().expect("temp dir");
    let clone = clone_bare(&repo, dir.path(), "c");

    let limited = ArchiveOptions {
        max_size: Some(16 * 1024),
        ..ArchiveOptions::default()
    };
    let err = archive(&clone, &commit, &limited).expect_err("too large");
    assert_eq!(err.label(), "TooLarge");
    let text = err.to_string();
    assert!(
        text.contains("16384") && text.contains("too large"),
        "{text}"
    );

    let roomy = ArchiveOptions {
        max_size: Some(1024 * 1024),
        ..ArchiveOptions::default()
    };
    let (bytes, summary) = archive(&clone, &commit, &roomy).expect("fits");
    assert!(summary.size > 16 * 1024 && summary.size == bytes.len() as u64);
}

#[test]
fn executables_keep_their_bit_and_submodules_are_skipped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let work = dir.path().join("work");
    run(git(dir.path())
        .args(["init", "-q", "-b", "main"])
        .arg(&work));
    std::fs::write(work.join("run.sh"), "#!/bin/sh\n").expect("write");
    std::fs::write(work.join("plain.yaml"), "x: 1\n").expect("write");
    run(git(dir.path())
        .current_dir(&work)
        .args(["add", "run.sh", "plain.yaml"]));
    run(git(dir.path())
        .current_dir(&work)
        .args(["update-index", "--chmod=+x", "run.sh"]));
    // A gitlink pointing at a commit that is not in this repository, as a submodule does.
    let gitlink = format!("160000,{},vendor/sub", "1".repeat(40));
    run(git(dir.path()).current_dir(&work).args([
        "update-index",
        "--add",
        "--cacheinfo",
        &gitlink,
    ]));
    run(git(dir.path())
        .current_dir(&work)
        .args(["commit", "-q", "-m", "modes"]));
    let commit = run(git(dir.path())
        .current_dir(&work)
        .args(["rev-parse", "HEAD"]));

    let (bytes, summary) =
        archive(&work, commit.trim(), &ArchiveOptions::default()).expect("archive");
    let entries = read_entries(&bytes);
    let modes: Vec<(String, u32)> = entries.iter().map(|e| (e.path.clone(), e.mode)).collect();
    assert_eq!(
        modes,
        [
            ("plain.yaml".to_string(), FILE_MODE),
            ("run.sh".to_string(), EXECUTABLE_MODE),
            ("vendor/".to_string(), 0o755),
        ]
    );
    assert_eq!(summary.files, 2);
}

#[test]
fn stored_artifact_matches_the_summary_and_verifies() {
    let repo = new_repo("stored");
    let commit = repo.commit(&[("app.yaml", "x\n")], "app").expect("commit");
    let dir = tempfile::tempdir().expect("temp dir");
    let clone = clone_bare(&repo, dir.path(), "c");
    let storage = Storage::new(dir.path().join("storage"));
    let (stored, summary) = storage
        .store("default", "app", &commit, |out| {
            build_archive(&clone, &commit, &ArchiveOptions::default(), out)
        })
        .expect("store");
    assert_eq!(stored.digest, summary.digest);
    assert_eq!(stored.size, summary.size);
    assert!(
        stored
            .path
            .starts_with(&format!("gitrepository/default/app/{commit}-"))
    );
    assert!(storage.verify(&stored.path, &stored.digest));

    // A failed build leaves no file behind.
    let err = storage
        .store("default", "app", &commit, |out| {
            let options = ArchiveOptions {
                max_size: Some(10),
                ..ArchiveOptions::default()
            };
            build_archive(&clone, &commit, &options, out)
        })
        .expect_err("too large");
    assert!(err.to_string().contains("too large"), "{err}");
    let files = std::fs::read_dir(dir.path().join("storage/gitrepository/default/app"))
        .expect("list")
        .count();
    assert_eq!(files, 1);
}
