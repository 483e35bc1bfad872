use mooring_api::GitCheckout;

use super::*;

const URL: &str = "https://git.example.com/app.git";
const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const C: &str = "cccccccccccccccccccccccccccccccccccccccc";

fn r(name: &str, commit: &str) -> RemoteRef {
    RemoteRef {
        name: name.into(),
        commit: Some(commit.into()),
        symref_target: None,
    }
}

fn head(target: &str, commit: &str) -> RemoteRef {
    RemoteRef {
        name: "HEAD".into(),
        commit: Some(commit.into()),
        symref_target: Some(target.into()),
    }
}

fn listing() -> Vec<RemoteRef> {
    vec![
        head("refs/heads/main", A),
        r("refs/heads/main", A),
        r("refs/heads/dev", B),
        r("refs/tags/v1.0.0", A),
        // An annotated tag, already peeled to its commit.
        r("refs/tags/v1.1.0", B),
        r("refs/tags/v2.0.0-rc.1", C),
        r("refs/tags/not-a-version", C),
        r("refs/pull/7/head", C),
    ]
}

fn pick(checkout: GitCheckout) -> Result<Resolved, GitError> {
    select(&checkout, &listing(), URL)
}

#[test]
fn branch_revision_names_the_branch() {
    let got = pick(GitCheckout::Branch("dev".into())).expect("dev");
    assert_eq!(got.commit, B);
    assert_eq!(got.revision, format!("dev@sha1:{B}"));
    assert_eq!(got.ref_name.as_deref(), Some("refs/heads/dev"));
}

#[test]
fn tag_revision_names_the_tag_and_uses_the_peeled_commit() {
    let got = pick(GitCheckout::Tag("v1.1.0".into())).expect("tag");
    assert_eq!(got.revision, format!("v1.1.0@sha1:{B}"));
    assert_eq!(got.ref_name.as_deref(), Some("refs/tags/v1.1.0"));
}

#[test]
fn semver_picks_the_newest_match() {
    let got = pick(GitCheckout::Semver(">=1.0.0 <2.0.0".into())).expect("semver");
    assert_eq!(got.revision, format!("v1.1.0@sha1:{B}"));
    assert_eq!(got.ref_name.as_deref(), Some("refs/tags/v1.1.0"));
    let got = pick(GitCheckout::Semver(">=2.0.0-rc.0".into())).expect("prerelease");
    assert_eq!(got.revision, format!("v2.0.0-rc.1@sha1:{C}"));
}

#[test]
fn no_semver_match_names_the_range_and_counts_tags() {
    let err = pick(GitCheckout::Semver(">=3.0.0".into())).expect_err("none");
    assert_eq!(
        err.to_string(),
        format!(
            "no tag in {URL} matches semver range '>=3.0.0' (4 tags seen, the newest version is v2.0.0-rc.1)"
        )
    );
    let err = select(
        &GitCheckout::Semver("1.x".into()),
        &[head("refs/heads/main", A)],
        URL,
    )
    .expect_err("no tags");
    assert!(err.to_string().contains("(0 tags seen)"), "{err}");
    let err = pick(GitCheckout::Semver("not a range".into())).expect_err("invalid");
    assert!(matches!(err, GitError::InvalidSemverRange { .. }), "{err}");
    assert!(err.is_permanent());
}

#[test]
fn name_revision_is_the_full_ref() {
    let got = pick(GitCheckout::Name("refs/heads/main".into())).expect("name");
    assert_eq!(got.revision, format!("refs/heads/main@sha1:{A}"));
    let got = pick(GitCheckout::Name("refs/pull/7/head".into())).expect("pull");
    assert_eq!(got.revision, format!("refs/pull/7/head@sha1:{C}"));
    assert_eq!(got.ref_name.as_deref(), Some("refs/pull/7/head"));
}

#[test]
fn commit_revision_with_and_without_branch() {
    let upper = C.to_ascii_uppercase();
    let got = pick(GitCheckout::Commit {
        commit: upper,
        branch: None,
    })
    .expect("commit");
    assert_eq!(got.revision, format!("sha1:{C}"));
    assert_eq!(got.commit, C);
    assert_eq!(got.ref_name, None);
    let got = pick(GitCheckout::Commit {
        commit: C.into(),
        branch: Some("dev".into()),
    })
    .expect("commit on dev");
    assert_eq!(got.revision, format!("dev@sha1:{C}"));
    let err = pick(GitCheckout::Commit {
        commit: "abc123".into(),
        branch: None,
    })
    .expect_err("short sha");
    assert!(matches!(err, GitError::InvalidCommit { .. }));
    let err = pick(GitCheckout::Commit {
        commit: C.into(),
        branch: Some("gone".into()),
    })
    .expect_err("missing branch");
    assert!(
        err.to_string().starts_with("branch 'gone' not found"),
        "{err}"
    );
}

#[test]
fn missing_refs_are_named_with_the_default_branch_hint() {
    let err = pick(GitCheckout::Branch("master".into())).expect_err("no master");
    assert_eq!(
        err.to_string(),
        format!(
            "branch 'master' not found in {URL}; the repository's default branch (HEAD) is 'main'"
        )
    );
    let err = pick(GitCheckout::Tag("v9".into())).expect_err("no tag");
    assert_eq!(err.to_string(), format!("tag 'v9' not found in {URL}"));
    let err = pick(GitCheckout::Name("refs/heads/x".into())).expect_err("no ref");
    assert_eq!(
        err.to_string(),
        format!("reference 'refs/heads/x' not found in {URL}")
    );
    assert_eq!(err.reason(), "GitOperationFailed");
}

#[test]
fn listing_asks_for_the_wanted_ref_and_head() {
    assert_eq!(
        listing_refspecs(&GitCheckout::Branch("main".into())),
        ["refs/heads/main", "HEAD"]
    );
    assert_eq!(
        listing_refspecs(&GitCheckout::Semver("*".into())),
        ["refs/tags/*:refs/tags/*", "HEAD"]
    );
    assert_eq!(
        listing_refspecs(&GitCheckout::Commit {
            commit: A.into(),
            branch: Some("b".into())
        }),
        ["refs/heads/b", "HEAD"]
    );
}

#[test]
fn empty_listing_has_no_commits() {
    let unborn = RemoteRef {
        name: "HEAD".into(),
        commit: None,
        symref_target: Some("refs/heads/main".into()),
    };
    assert!(!has_commits(&[unborn]));
    assert!(has_commits(&listing()));
}

#[test]
fn listing_prefixes_are_the_refspecs_up_to_a_wildcard() {
    let prefixes = |c: GitCheckout| listing_prefixes(&c);
    assert_eq!(
        prefixes(GitCheckout::Branch("main".into())),
        Some(vec!["refs/heads/main".to_owned(), "HEAD".to_owned()])
    );
    assert_eq!(
        prefixes(GitCheckout::Tag("v1".into())),
        Some(vec!["refs/tags/v1".to_owned(), "HEAD".to_owned()])
    );
    assert_eq!(
        prefixes(GitCheckout::Semver(">=1".into())),
        Some(vec!["refs/tags/".to_owned(), "HEAD".to_owned()])
    );
    assert_eq!(prefixes(GitCheckout::Name("refs/pull/1/head".into())), None);
}
