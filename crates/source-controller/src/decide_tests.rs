use super::*;
use mooring_api::conditions::{find_condition, is_ready};

fn spec() -> GitRepositorySpec {
    serde_json::from_value(
        serde_json::json!({"url": "https://example.com/r.git", "interval": "1m"}),
    )
    .expect("spec")
}

fn time(secs: i64) -> Time {
    Time(jiff::Timestamp::from_second(secs).expect("timestamp"))
}

fn artifact(revision: &str, digest: &str) -> Artifact {
    Artifact {
        path: "gitrepository/ns/r/abc.tar.gz".into(),
        url: "http://storage/gitrepository/ns/r/abc.tar.gz".into(),
        revision: revision.into(),
        digest: Some(digest.into()),
        last_update_time: time(100),
        size: Some(10),
        metadata: None,
    }
}

fn ready(spec: &GitRepositorySpec, revision: &str) -> GitRepositoryStatus {
    let outcome = Outcome::Ready {
        artifact: artifact(revision, "sha256:aa"),
        included: vec![],
        verified: None,
    };
    next_status(
        &GitRepositoryStatus::default(),
        spec,
        1,
        &outcome,
        None,
        &time(100),
    )
}

#[test]
fn a_current_artifact_needs_no_rebuild() {
    let spec = spec();
    let status = ready(&spec, "main@sha1:1111");
    assert_eq!(
        rebuild_reason(&spec, &status, "main@sha1:1111", true, &[]),
        None
    );
}

#[test]
fn each_change_asks_for_a_rebuild_with_its_reason() {
    let spec = spec();
    let status = ready(&spec, "main@sha1:1111");
    let reason = |s: &GitRepositorySpec, rev: &str, stored: bool, inc: &[Artifact]| {
        rebuild_reason(s, &status, rev, stored, inc).unwrap_or_default()
    };
    assert!(reason(&spec, "main@sha1:2222", true, &[]).contains("new upstream revision"));
    assert!(reason(&spec, "main@sha1:1111", false, &[]).contains("disappeared from storage"));
    let mut ignored = spec.clone();
    ignored.ignore = Some("*.md".into());
    assert!(reason(&ignored, "main@sha1:1111", true, &[]).contains("content configuration"));
    let mut sparse = spec.clone();
    sparse.sparse_checkout = vec!["deploy".into()];
    assert!(reason(&sparse, "main@sha1:1111", true, &[]).contains("content configuration"));
    let included = [artifact("main@sha1:9", "sha256:bb")];
    assert!(reason(&spec, "main@sha1:1111", true, &included).contains("included artifact"));
    let empty = GitRepositoryStatus::default();
    assert!(rebuild_reason(&spec, &empty, "x", true, &[]).is_some());
}

#[test]
fn success_sets_ready_and_records_what_was_built() {
    let spec = spec();
    let status = ready(&spec, "main@sha1:1111");
    assert!(is_ready(&status.conditions));
    let ready = find_condition(&status.conditions, types::READY).expect("Ready");
    assert_eq!(
        ready.message,
        "stored artifact for revision 'main@sha1:1111'"
    );
    assert!(find_condition(&status.conditions, types::ARTIFACT_IN_STORAGE).is_some());
    assert_eq!(status.observed_generation, Some(1));
}

#[test]
fn the_same_pass_twice_gives_an_identical_status() {
    let spec = spec();
    let first = ready(&spec, "main@sha1:1111");
    let outcome = Outcome::Ready {
        artifact: artifact("main@sha1:1111", "sha256:aa"),
        included: vec![],
        verified: None,
    };
    let second = next_status(&first, &spec, 1, &outcome, None, &time(999));
    assert_eq!(first, second);
}

#[test]
fn failure_keeps_the_last_artifact_and_says_why() {
    let spec = spec();
    let good = ready(&spec, "main@sha1:1111");
    let outcome = Outcome::Failed {
        condition: types::FETCH_FAILED,
        reason: reasons::AUTHENTICATION_FAILED.into(),
        message: "authentication failed for https://example.com/r.git".into(),
    };
    let failed = next_status(&good, &spec, 2, &outcome, None, &time(200));
    assert_eq!(failed.artifact, good.artifact);
    let ready = find_condition(&failed.conditions, types::READY).expect("Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "AuthenticationFailed")
    );
    assert_eq!(ready.last_transition_time, time(200));
    assert!(find_condition(&failed.conditions, types::FETCH_FAILED).is_some());
    assert_eq!(
        failed.observed_generation,
        Some(1),
        "a failed generation is not observed"
    );
    let recovered = next_status(
        &failed,
        &spec,
        2,
        &Outcome::Ready {
            artifact: artifact("main@sha1:1111", "sha256:aa"),
            included: vec![],
            verified: None,
        },
        None,
        &time(300),
    );
    assert!(find_condition(&recovered.conditions, types::FETCH_FAILED).is_none());
    assert!(find_condition(&recovered.conditions, types::RECONCILING).is_none());
}

#[test]
fn stalled_observes_the_generation_and_records_the_request() {
    let spec = spec();
    let outcome = Outcome::Stalled {
        reason: reasons::URL_INVALID.into(),
        message: "spec.url: bad".into(),
    };
    let status = next_status(
        &GitRepositoryStatus::default(),
        &spec,
        3,
        &outcome,
        Some("now-1"),
        &time(1),
    );
    assert_eq!(status.observed_generation, Some(3));
    assert_eq!(status.last_handled_reconcile_at.as_deref(), Some("now-1"));
    assert!(mooring_api::conditions::is_stalled(&status.conditions));
}

#[test]
fn an_unverified_revision_keeps_or_withdraws_the_served_artifact() {
    let spec = spec();
    let verified = next_status(
        &GitRepositoryStatus::default(),
        &spec,
        1,
        &Outcome::Ready {
            artifact: artifact("main@sha1:1111", "sha256:aa"),
            included: vec![],
            verified: Some(Verified {
                mode: GitVerificationMode::Head,
                message: "verified commit 1111 signed by SSH key SHA256:x (dev)".into(),
            }),
        },
        None,
        &time(100),
    );
    let condition = find_condition(&verified.conditions, types::SOURCE_VERIFIED).expect("set");
    assert_eq!(
        (condition.status.as_str(), condition.message.as_str()),
        (
            "True",
            "verified commit 1111 signed by SSH key SHA256:x (dev)"
        )
    );
    assert_eq!(
        verified.source_verification_mode,
        Some(GitVerificationMode::Head)
    );

    let unverified = |withdraw| Outcome::Unverified {
        reason: reasons::INVALID_COMMIT_SIGNATURE.into(),
        message: "commit 2222 is not signed".into(),
        withdraw,
    };
    let kept = next_status(&verified, &spec, 1, &unverified(false), None, &time(200));
    assert_eq!(
        kept.artifact, verified.artifact,
        "the last verified artifact stays"
    );
    let condition = find_condition(&kept.conditions, types::SOURCE_VERIFIED).expect("set");
    assert_eq!(
        (condition.status.as_str(), condition.reason.as_str()),
        ("False", "InvalidCommitSignature")
    );
    assert!(!is_ready(&kept.conditions));

    let withdrawn = next_status(&verified, &spec, 1, &unverified(true), None, &time(200));
    assert_eq!(withdrawn.artifact, None);
    assert_eq!(withdrawn.source_verification_mode, None);
    assert!(find_condition(&withdrawn.conditions, types::ARTIFACT_IN_STORAGE).is_none());
}

#[test]
fn provenance_is_read_from_the_artifact_metadata() {
    let mut served = artifact("v1@sha1:1111", "sha256:aa");
    served.metadata = Some(
        [
            ("git.author", "Ada Lovelace <ada@example.invalid>"),
            ("git.authorTime", "2023-11-14T22:15:20Z"),
            ("git.committer", "CI <ci@example.invalid>"),
            ("git.commitTime", "2023-11-14T22:16:20Z"),
            ("git.tagger", "Rel <rel@example.invalid>"),
            ("git.tagTime", "2023-11-14T22:17:20Z"),
            ("verify.signer.type", "ssh"),
            ("verify.signer.fingerprint", "SHA256:abc"),
            ("verify.signer.identity", "ada@example.invalid"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    );
    let person = |name: &str, email: &str, time: &str| {
        Some(GitPerson {
            name: name.into(),
            email: email.into(),
            time: time.into(),
        })
    };
    assert_eq!(
        provenance(&served),
        GitProvenance {
            revision: "v1@sha1:1111".into(),
            author: person(
                "Ada Lovelace",
                "ada@example.invalid",
                "2023-11-14T22:15:20Z"
            ),
            committer: person("CI", "ci@example.invalid", "2023-11-14T22:16:20Z"),
            tagger: person("Rel", "rel@example.invalid", "2023-11-14T22:17:20Z"),
            signer: Some(GitSigner {
                type_: "ssh".into(),
                fingerprint: "SHA256:abc".into(),
                identity: "ada@example.invalid".into(),
            }),
        }
    );
}

#[test]
fn only_idle_and_first_passes_share_listings() {
    let hour = std::time::Duration::from_secs(3600);
    let half = Some(hour / 2);
    let spec = spec();
    let mut status = ready(&spec, "main@sha1:1111111111111111111111111111111111111111");
    status.observed_generation = Some(1);
    status.last_handled_reconcile_at = Some("a".into());
    assert_eq!(listing_max_age(None, Some(1), None, hour), half);
    assert_eq!(
        listing_max_age(Some(&status), Some(1), Some("a"), hour),
        half
    );
    assert_eq!(
        listing_max_age(Some(&status), Some(1), Some("b"), hour),
        None
    );
    assert_eq!(
        listing_max_age(Some(&status), Some(2), Some("a"), hour),
        None
    );
    let mut failed = status.clone();
    failed
        .conditions
        .iter_mut()
        .for_each(|c| c.status = "False".into());
    assert_eq!(
        listing_max_age(Some(&failed), Some(1), Some("a"), hour),
        None
    );
}
