//! The artifact built from a real repository served by the testkit git server and cloned
//! bare with the git CLI: determinism, ignore rules, symlinks and sparse directories.

#[path = "archive_support/mod.rs"]
mod support;

use mooring_source_controller::archive::{ArchiveOptions, DIR_MODE, FILE_MODE, SYMLINK_MODE};
use support::{Kind, all_paths, archive, clone_bare, content, new_repo, paths_of, read_entries};

fn options() -> ArchiveOptions {
    ArchiveOptions::default()
}

#[test]
fn archive_is_byte_identical_across_runs_and_clones() {
    let repo = new_repo("determinism");
    let long = format!("deep/{}/file.yaml", "d".repeat(120));
    let commit = repo
        .commit(
            &[
                ("deploy/app.yaml", "kind: Deployment\n"),
                ("deploy/base/kustomization.yaml", "resources: []\n"),
                ("a/x.yaml", "x: 1\n"),
                ("a-b", "dash\n"),
                ("a.txt", "dot\n"),
                ("README.md", "# readme\n"),
                (&long, "long: true\n"),
            ],
            "content",
        )
        .expect("commit");
    let dir = tempfile::tempdir().expect("temp dir");
    let first_clone = clone_bare(&repo, dir.path(), "one");
    let second_clone = clone_bare(&repo, dir.path(), "two");

    let (bytes, summary) = archive(&first_clone, &commit, &options()).expect("archive");
    let (again, summary_again) = archive(&first_clone, &commit, &options()).expect("archive");
    let (other, summary_other) = archive(&second_clone, &commit, &options()).expect("archive");
    assert_eq!(bytes, again, "two runs differ");
    assert_eq!(bytes, other, "two clones differ");
    assert_eq!(summary, summary_again);
    assert_eq!(summary, summary_other);
    assert_eq!(summary.digest, support::sha256(&bytes));
    assert_eq!(summary.size, bytes.len() as u64);
    assert_eq!(summary.files, 7);
    assert!(summary.dropped_symlinks.is_empty());

    // gzip header: no FNAME/FEXTRA/FCOMMENT flags, mtime 0, OS unknown.
    assert_eq!(&bytes[..3], &[0x1f, 0x8b, 8]);
    assert_eq!(bytes[3], 0, "gzip flags");
    assert_eq!(&bytes[4..8], &[0, 0, 0, 0], "gzip mtime");
    assert_eq!(bytes[9], 255, "gzip OS");

    let entries = read_entries(&bytes);
    let paths = all_paths(&entries);
    // Byte order of the whole path: "a" < "a-b" < "a.txt" < "a/x.yaml" (git's tree order
    // would put "a-b" and "a.txt" before the directory "a").
    assert_eq!(
        paths,
        [
            "README.md",
            "a",
            "a-b",
            "a.txt",
            "a/x.yaml",
            "deep",
            &format!("deep/{}", "d".repeat(120)),
            &long,
            "deploy",
            "deploy/app.yaml",
            "deploy/base",
            "deploy/base/kustomization.yaml",
        ]
    );
    for entry in &entries {
        assert_eq!(
            (entry.uid, entry.gid, entry.mtime),
            (0, 0, 0),
            "{}",
            entry.path
        );
        assert!(
            entry.user.is_empty() && entry.group.is_empty(),
            "{}",
            entry.path
        );
        let expected = if entry.kind == Kind::Dir {
            DIR_MODE
        } else {
            FILE_MODE
        };
        assert_eq!(entry.mode, expected, "{}", entry.path);
        assert!(!entry.path.split('/').any(|c| c == ".git"));
    }
    assert!(
        entries
            .iter()
            .filter(|e| e.kind == Kind::Dir)
            .all(|e| e.path.ends_with('/'))
    );
    assert_eq!(content(&entries, "deploy/app.yaml"), "kind: Deployment\n");
    assert_eq!(content(&entries, &long), "long: true\n");
}

#[test]
fn different_commits_give_different_digests() {
    let repo = new_repo("two-commits");
    let first = repo.commit(&[("a.yaml", "1\n")], "one").expect("commit");
    let second = repo.commit(&[("a.yaml", "2\n")], "two").expect("commit");
    let dir = tempfile::tempdir().expect("temp dir");
    let clone = clone_bare(&repo, dir.path(), "c");
    let (_, a) = archive(&clone, &first, &options()).expect("archive");
    let (_, b) = archive(&clone, &second, &options()).expect("archive");
    assert_ne!(a.digest, b.digest);
}

#[test]
fn default_exclusions_apply_without_spec_ignore() {
    let repo = new_repo("defaults");
    let files = [
        "keep.yaml",
        "logo.png",
        "docs/pic.jpg",
        ".github/workflows/ci.yaml",
        ".gitignore",
        ".gitattributes",
        "sub/.sops.yaml",
        ".travis.yml",
        "bundle.tar.gz",
        "sub/cloudbuild.yaml",
    ];
    let content: Vec<(&str, &str)> = files.iter().map(|f| (*f, "x\n")).collect();
    let commit = repo.commit(&content, "files").expect("commit");
    let dir = tempfile::tempdir().expect("temp dir");
    let clone = clone_bare(&repo, dir.path(), "c");
    let (bytes, summary) = archive(&clone, &commit, &options()).expect("archive");
    let entries = read_entries(&bytes);
    // README.md comes from the testkit's initial commit.
    assert_eq!(paths_of(&entries, Kind::File), ["README.md", "keep.yaml"]);
    // Directories whose files are all excluded stay as (empty) directories; `.github` goes.
    assert_eq!(paths_of(&entries, Kind::Dir), ["docs", "sub"]);
    assert_eq!(summary.files, 2);
}

#[test]
fn sourceignore_files_are_scoped_and_defaults_stay() {
    let repo = new_repo("sourceignore");
    let commit = repo
        .commit(
            &[
                (".sourceignore", "*.txt\n"),
                ("apps/.sourceignore", "secret.yaml\n!keep.txt\n"),
                ("notes.txt", "x"),
                ("apps/keep.txt", "x"),
                ("apps/drop.txt", "x"),
                ("apps/secret.yaml", "x"),
                ("apps/x/secret.yaml", "x"),
                ("apps/app.yaml", "x"),
                ("other/secret.yaml", "x"),
                ("logo.png", "x"),
            ],
            "rules",
        )
        .expect("commit");
    let dir = tempfile::tempdir().expect("temp dir");
    let clone = clone_bare(&repo, dir.path(), "c");
    let (bytes, _) = archive(&clone, &commit, &options()).expect("archive");
    assert_eq!(
        paths_of(&read_entries(&bytes), Kind::File),
        [
            ".sourceignore",
            "README.md",
            "apps/.sourceignore",
            "apps/app.yaml",
            "apps/keep.txt",
            "other/secret.yaml",
        ]
    );
}

#[test]
fn spec_ignore_replaces_the_defaults() {
    let repo = new_repo("spec-ignore");
    let commit = repo
        .commit(
            &[
                ("README.md", "x"),
                ("apps/x.yaml", "x"),
                ("deploy/app.yaml", "x"),
                ("deploy/logo.png", "x"),
                ("deploy/.gitignore", "x"),
                ("deploy/.sourceignore", "drop.yaml\n"),
                ("deploy/drop.yaml", "x"),
            ],
            "rules",
        )
        .expect("commit");
    let dir = tempfile::tempdir().expect("temp dir");
    let clone = clone_bare(&repo, dir.path(), "c");
    let spec = ArchiveOptions {
        ignore: Some("# only deploy\n/*\n!/deploy\n".into()),
        ..options()
    };
    let (bytes, _) = archive(&clone, &commit, &spec).expect("archive");
    assert_eq!(
        paths_of(&read_entries(&bytes), Kind::File),
        ["deploy/.sourceignore", "deploy/app.yaml", "deploy/logo.png"]
    );

    let invalid = ArchiveOptions {
        ignore: Some("{a,b".into()),
        ..options()
    };
    let err = archive(&clone, &commit, &invalid).expect_err("invalid pattern");
    assert_eq!(err.label(), "InvalidIgnorePattern");
}

#[test]
fn symlinks_inside_are_kept_and_outside_dropped() {
    let repo = new_repo("symlinks");
    repo.commit(
        &[("v2/app.yaml", "v2\n"), ("sub/file.yaml", "f\n")],
        "files",
    )
    .expect("commit");
    for (path, target) in [
        ("current", "v2"),
        ("sub/up", "../v2/app.yaml"),
        ("abs", "/etc/passwd"),
        ("escape", "../outside"),
        ("sub/deep", "../../etc"),
        ("here", "."),
        ("sub/sneaky", "../here/.."),
    ] {
        repo.symlink(path, target, "link").expect("symlink");
    }
    let commit = repo.head("main").expect("head");
    let dir = tempfile::tempdir().expect("temp dir");
    let clone = clone_bare(&repo, dir.path(), "c");
    let (bytes, summary) = archive(&clone, &commit, &options()).expect("archive");
    assert_eq!(
        summary.dropped_symlinks,
        ["abs", "escape", "sub/deep", "sub/sneaky"]
    );
    let entries = read_entries(&bytes);
    let links: Vec<(String, Option<String>, u32)> = entries
        .iter()
        .filter(|e| e.kind == Kind::Symlink)
        .map(|e| (e.path.clone(), e.link.clone(), e.mode))
        .collect();
    assert_eq!(
        links,
        [
            ("current".to_string(), Some("v2".to_string()), SYMLINK_MODE),
            ("here".to_string(), Some(".".to_string()), SYMLINK_MODE),
            (
                "sub/up".to_string(),
                Some("../v2/app.yaml".to_string()),
                SYMLINK_MODE
            ),
        ]
    );
    assert_eq!(summary.files, 3);
}

#[test]
fn sparse_checkout_keeps_only_listed_directories() {
    let repo = new_repo("sparse");
    let commit = repo
        .commit(
            &[
                (".sourceignore", "*.md\n"),
                ("root.yaml", "x"),
                ("apps/prod/a.yaml", "x"),
                ("apps/prod/README.md", "x"),
                ("apps/prod/sub/b.yaml", "x"),
                ("apps/production/c.yaml", "x"),
                ("apps/dev/c.yaml", "x"),
                ("apps/top.yaml", "x"),
                ("infra/d.yaml", "x"),
            ],
            "tree",
        )
        .expect("commit");
    let dir = tempfile::tempdir().expect("temp dir");
    let clone = clone_bare(&repo, dir.path(), "c");
    let sparse = ArchiveOptions {
        sparse_checkout: vec!["./apps/prod".into(), "infra/".into()],
        ..options()
    };
    let (bytes, _) = archive(&clone, &commit, &sparse).expect("archive");
    // The root `.sourceignore` still applies inside the sparse directories.
    assert_eq!(
        all_paths(&read_entries(&bytes)),
        [
            "apps",
            "apps/prod",
            "apps/prod/a.yaml",
            "apps/prod/sub",
            "apps/prod/sub/b.yaml",
            "infra",
            "infra/d.yaml",
        ]
    );

    for missing in ["apps/missing", "root.yaml"] {
        let options = ArchiveOptions {
            sparse_checkout: vec!["infra".into(), missing.into()],
            ..options()
        };
        let err = archive(&clone, &commit, &options).expect_err("missing dir");
        assert_eq!(err.label(), "SparseDirMissing");
        assert!(err.to_string().contains(missing), "{err}");
    }
}

#[test]
fn unknown_commit_is_an_error() {
    let repo = new_repo("unknown-commit");
    repo.commit(&[("a", "x")], "one").expect("commit");
    let dir = tempfile::tempdir().expect("temp dir");
    let clone = clone_bare(&repo, dir.path(), "c");
    let err = archive(&clone, &"0".repeat(40), &options()).expect_err("unknown");
    assert_eq!(err.label(), "ResolveCommit");
    let err = archive(&clone, "main", &options()).expect_err("not a sha");
    assert_eq!(err.label(), "InvalidCommit");
}

#[test]
fn a_file_over_the_limit_streams_from_its_pack_and_a_corrupt_pack_names_the_file() {
    let repo = new_repo("archive-big-packed");
    let size: usize = 2 << 20;
    repo.commit(&[("small.txt", "small\n")], "small")
        .expect("commit");
    let head = repo
        .commit_zeros("big.bin", size as u64, "a big file")
        .expect("commit");
    let dir = tempfile::tempdir().expect("temp dir");
    // A clone receives one pack: every blob in it is stored whole or as a delta.
    let clone = clone_bare(&repo, dir.path(), "c");
    let limited = ArchiveOptions {
        max_file_size: Some(1 << 20),
        ..options()
    };
    let (bytes, _) = archive(&clone, &head, &limited).expect("streamed from the pack");
    let entries = read_entries(&bytes);
    let big = entries
        .iter()
        .find(|e| e.path == "big.bin")
        .expect("big.bin archived");
    assert_eq!(big.content.len(), size);
    assert!(big.content.iter().all(|b| *b == 0));
    assert_eq!(content(&entries, "small.txt"), "small\n");

    // Damage the middle of the blob's compressed stream in the pack.
    let blob = mooring_testkit::git::damage_object_in_pack(&clone, &format!("{head}:big.bin"));

    let err = archive(&clone, &head, &limited).expect_err("a corrupt pack");
    assert_eq!(err.label(), "ReadObject", "{err}");
    let message = err.to_string();
    assert!(message.contains("\"big.bin\""), "{message}");
    assert!(message.contains(&blob), "{message}");
}
