//! From the refs a server lists to the commit and revision to check out (pure).

use mooring_api::{GitCheckout, Revision};

use super::semver::{Range, newest_match, newest_version};
use super::{GitError, Resolved};

/// One ref as the server listed it (`ls-refs`), with annotated tags already peeled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoteRef {
    /// Full name: `HEAD`, `refs/heads/main`, `refs/tags/v1.0.0`.
    pub(crate) name: String,
    /// The commit it points to (through tags); `None` for an unborn HEAD.
    pub(crate) commit: Option<String>,
    /// For a symbolic ref such as HEAD, the ref it points to.
    pub(crate) symref_target: Option<String>,
}

impl RemoteRef {
    /// Converts gix's representation; the `object` of a peeled ref is the tagged commit.
    pub(crate) fn from_gix(r: &gix::protocol::handshake::Ref) -> RemoteRef {
        use gix::protocol::handshake::Ref;
        let (name, commit, target) = match r {
            Ref::Peeled {
                full_ref_name,
                object,
                ..
            }
            | Ref::Direct {
                full_ref_name,
                object,
            } => (full_ref_name, Some(object.to_hex().to_string()), None),
            Ref::Symbolic {
                full_ref_name,
                target,
                object,
                ..
            } => (
                full_ref_name,
                Some(object.to_hex().to_string()),
                Some(target.to_string()),
            ),
            Ref::Unborn {
                full_ref_name,
                target,
            } => (full_ref_name, None, Some(target.to_string())),
        };
        RemoteRef {
            name: name.to_string(),
            commit,
            symref_target: target,
        }
    }
}

/// The refspecs whose prefixes `ls-refs` is asked for: the wanted ref, and `HEAD` to tell an
/// empty repository apart and to name the default branch in a "not found" message.
pub(crate) fn listing_refspecs(checkout: &GitCheckout) -> Vec<String> {
    let wanted = match checkout {
        GitCheckout::Branch(branch)
        | GitCheckout::Commit {
            branch: Some(branch),
            ..
        } => {
            format!("refs/heads/{branch}")
        }
        GitCheckout::Tag(tag) => format!("refs/tags/{tag}"),
        GitCheckout::Semver(_) => "refs/tags/*:refs/tags/*".to_owned(),
        GitCheckout::Name(name) => name.clone(),
        GitCheckout::Commit { branch: None, .. } => "HEAD".to_owned(),
    };
    if wanted == "HEAD" {
        vec![wanted]
    } else {
        vec![wanted, "HEAD".to_owned()]
    }
}

/// The `ref-prefix` arguments of an `ls-refs` for `checkout`: [`listing_refspecs`] up to a
/// wildcard, as gix derives them; `None` for a `name`, whose short forms gix expands by its
/// own rules.
pub(crate) fn listing_prefixes(checkout: &GitCheckout) -> Option<Vec<String>> {
    if let GitCheckout::Name(_) = checkout {
        return None;
    }
    let prefix = |spec: String| match spec.split_once('*') {
        Some((prefix, _)) => prefix.to_owned(),
        None => spec,
    };
    Some(listing_refspecs(checkout).into_iter().map(prefix).collect())
}

/// A full lower-case SHA-1, or [`GitError::InvalidCommit`].
pub(crate) fn validate_commit(commit: &str) -> Result<String, GitError> {
    if commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(commit.to_ascii_lowercase())
    } else {
        Err(GitError::InvalidCommit {
            commit: commit.chars().take(80).collect(),
        })
    }
}

/// Flux's revision string: `<name>@sha1:<hex>`, or `sha1:<hex>` without a name.
pub(crate) fn revision(name: Option<&str>, commit: &str) -> Result<String, GitError> {
    Revision::new(name, commit)
        .map(|r| r.to_string())
        .map_err(|e| GitError::InvalidCommit {
            commit: e.to_string(),
        })
}

/// Picks the ref `checkout` asks for among `refs` and formats its revision. `url` is only for
/// messages (already redacted).
pub(crate) fn select(
    checkout: &GitCheckout,
    refs: &[RemoteRef],
    url: &str,
) -> Result<Resolved, GitError> {
    let find = |full: &str| {
        refs.iter()
            .find(|r| r.name == full)
            .and_then(|r| r.commit.clone())
    };
    let not_found = |kind, name: &str, hint: String| GitError::RefNotFound {
        kind,
        name: name.to_owned(),
        url: url.to_owned(),
        hint,
    };
    match checkout {
        GitCheckout::Branch(branch) => {
            let full = format!("refs/heads/{branch}");
            let commit = find(&full)
                .ok_or_else(|| not_found("branch", branch, default_branch_hint(refs)))?;
            resolved(branch, commit, Some(full))
        }
        GitCheckout::Tag(tag) => {
            let full = format!("refs/tags/{tag}");
            let commit = find(&full).ok_or_else(|| not_found("tag", tag, String::new()))?;
            resolved(tag, commit, Some(full))
        }
        GitCheckout::Name(name) => {
            let commit = find(name).ok_or_else(|| not_found("reference", name, String::new()))?;
            resolved(name, commit, Some(name.clone()))
        }
        GitCheckout::Semver(range_text) => {
            let range = Range::parse(range_text).map_err(|why| GitError::InvalidSemverRange {
                range: range_text.clone(),
                why,
            })?;
            let tags: Vec<&str> = refs
                .iter()
                .filter(|r| r.commit.is_some())
                .filter_map(|r| r.name.strip_prefix("refs/tags/"))
                .collect();
            let Some(tag) = newest_match(&range, tags.iter().copied()) else {
                let newest = newest_version(tags.iter().copied())
                    .map(|t| format!(", the newest version is {t}"))
                    .unwrap_or_default();
                return Err(GitError::NoSemverMatch {
                    range: range_text.clone(),
                    url: url.to_owned(),
                    tags_seen: tags.len(),
                    newest,
                });
            };
            let full = format!("refs/tags/{tag}");
            let commit = find(&full).ok_or_else(|| not_found("tag", tag, String::new()))?;
            resolved(tag, commit, Some(full))
        }
        GitCheckout::Commit { commit, branch } => {
            let commit = validate_commit(commit)?;
            if let Some(branch) = branch {
                let full = format!("refs/heads/{branch}");
                if find(&full).is_none() {
                    return Err(not_found("branch", branch, default_branch_hint(refs)));
                }
            }
            Ok(Resolved {
                revision: revision(branch.as_deref(), &commit)?,
                commit,
                ref_name: None,
            })
        }
    }
}

fn resolved(name: &str, commit: String, ref_name: Option<String>) -> Result<Resolved, GitError> {
    Ok(Resolved {
        revision: revision(Some(name), &commit)?,
        commit,
        ref_name,
    })
}

/// "; the default branch (HEAD) is 'main'", when the server said so.
fn default_branch_hint(refs: &[RemoteRef]) -> String {
    refs.iter()
        .find(|r| r.name == "HEAD" && r.commit.is_some())
        .and_then(|r| r.symref_target.as_deref())
        .and_then(|t| t.strip_prefix("refs/heads/"))
        .map(|b| format!("; the repository's default branch (HEAD) is '{b}'"))
        .unwrap_or_default()
}

/// Whether the listing shows at least one ref with a commit (an empty repository has none).
pub(crate) fn has_commits(refs: &[RemoteRef]) -> bool {
    refs.iter().any(|r| r.commit.is_some())
}

#[cfg(test)]
#[path = "refs_tests.rs"]
mod tests;
