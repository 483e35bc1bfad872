//! Semver ranges in Flux's syntax (Masterminds/semver) evaluated with the `semver` crate, and
//! the choice of the newest matching tag.
//!
//! Translation: `||` separates alternatives; inside one, comparators are separated by spaces or
//! commas (`>=1.0.0 <2.0.0`, `>= 1.0, < 2.0`); `a - b` is `>=a, <=b`; a leading `v` is dropped;
//! a bare version means exactly that version (Masterminds), not `^version` (Cargo); `*`, `x`
//! wildcards, `~` and `^` mean the same in both. Prerelease tags match only a comparator with
//! a prerelease on the same `major.minor.patch` (the `semver` crate's rule; Masterminds admits
//! them for any comparator with a prerelease).

use semver::{Version, VersionReq};

/// A parsed range: any alternative may match.
#[derive(Debug, Clone)]
pub(crate) struct Range {
    alternatives: Vec<VersionReq>,
}

impl Range {
    /// Parses a Masterminds-style range; the error says why, without the range itself.
    pub(crate) fn parse(range: &str) -> Result<Range, String> {
        let alternatives = range
            .split("||")
            .map(|alt| {
                let translated = translate(alt)?;
                VersionReq::parse(&translated).map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Range { alternatives })
    }

    /// Whether `version` is in the range.
    pub(crate) fn matches(&self, version: &Version) -> bool {
        self.alternatives.iter().any(|req| req.matches(version))
    }
}

const OPERATORS: [&str; 7] = [">=", "<=", ">", "<", "=", "~", "^"];

/// One alternative (no `||`) in the `semver` crate's syntax.
fn translate(alternative: &str) -> Result<String, String> {
    let alternative = alternative.trim();
    if alternative.is_empty() {
        return Err("empty range".to_owned());
    }
    if let Some((low, high)) = alternative.split_once(" - ") {
        let (low, high) = (low.trim(), high.trim());
        return Ok(format!(">={}, <={}", strip_v(low), strip_v(high)));
    }
    let mut comparators = Vec::new();
    let mut pending_op: Option<&str> = None;
    for token in alternative
        .split([' ', ',', '\t'])
        .filter(|t| !t.is_empty())
    {
        if token.starts_with("!=") {
            return Err("'!=' is not supported".to_owned());
        }
        if OPERATORS.contains(&token) {
            if pending_op.replace(token).is_some() {
                return Err(format!("operator without a version before '{token}'"));
            }
            continue;
        }
        let own_op = OPERATORS.iter().find(|op| token.starts_with(**op)).copied();
        let (op, version) = match (pending_op.take(), own_op) {
            (Some(_), Some(_)) => return Err(format!("two operators before '{token}'")),
            (Some(pending), None) => (pending, token),
            (None, Some(op)) => (op, &token[op.len()..]),
            (None, None) => ("", token),
        };
        let version = strip_v(version);
        let is_wildcard = matches!(version, "*" | "x" | "X");
        // Masterminds reads a bare version as "exactly"; the semver crate as "^".
        let op = if op.is_empty() && !is_wildcard {
            "="
        } else {
            op
        };
        comparators.push(format!("{op}{version}"));
    }
    if pending_op.is_some() {
        return Err("operator without a version".to_owned());
    }
    Ok(comparators.join(", "))
}

fn strip_v(version: &str) -> &str {
    version.strip_prefix('v').unwrap_or(version)
}

/// The version a tag names, if any: a leading `v` is allowed, and missing minor or patch
/// numbers count as 0 (`v1.2` is 1.2.0), as Masterminds' lenient parser does.
pub(crate) fn tag_version(tag: &str) -> Option<Version> {
    let text = strip_v(tag);
    if let Ok(version) = Version::parse(text) {
        return Some(version);
    }
    let core_end = text.find(['-', '+']).unwrap_or(text.len());
    let (core, suffix) = text.split_at(core_end);
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty() || parts.len() > 2 || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let padded = match parts.len() {
        1 => format!("{core}.0.0{suffix}"),
        _ => format!("{core}.0{suffix}"),
    };
    Version::parse(&padded).ok()
}

/// The newest tag in `range`, by semver precedence; ties (`v1.0.0` and `1.0.0`, or versions
/// that differ only in build metadata) are broken by the `semver` crate's total order, which
/// compares build metadata, and then by the greater tag name, so the choice never depends on
/// the order the server lists tags in. (Flux breaks ties by the tagged commits' dates, which
/// would need the objects; resolution here lists refs only.)
pub(crate) fn newest_match<'a>(
    range: &Range,
    tags: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    tags.into_iter()
        .filter_map(|tag| tag_version(tag).map(|v| (v, tag)))
        .filter(|(v, _)| range.matches(v))
        .max_by(|(va, ta), (vb, tb)| va.cmp(vb).then_with(|| ta.cmp(tb)))
        .map(|(_, tag)| tag)
}

/// The newest tag that is a version at all, for the "no match" message.
pub(crate) fn newest_version<'a>(tags: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    tags.into_iter()
        .filter_map(|tag| tag_version(tag).map(|v| (v, tag)))
        .max_by(|(va, ta), (vb, tb)| va.cmp(vb).then_with(|| ta.cmp(tb)))
        .map(|(_, tag)| tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick<'a>(range: &str, tags: &[&'a str]) -> Option<&'a str> {
        let range = Range::parse(range).expect("valid range");
        newest_match(&range, tags.iter().copied())
    }

    const TAGS: &[&str] = &[
        "v0.9.0",
        "v1.0.0",
        "v1.2.3",
        "v1.2.10",
        "v1.3.0-rc.1",
        "v2.0.0",
        "latest",
        "release-7",
        "v1.10.0",
    ];

    #[test]
    fn newest_matching_tag_wins() {
        assert_eq!(pick(">=1.0.0 <2.0.0", TAGS), Some("v1.10.0"));
        assert_eq!(pick(">= 1.0.0, < 2.0.0", TAGS), Some("v1.10.0"));
        assert_eq!(pick("~1.2", TAGS), Some("v1.2.10"));
        assert_eq!(pick("^1.2.3", TAGS), Some("v1.10.0"));
        assert_eq!(pick("*", TAGS), Some("v2.0.0"));
        assert_eq!(pick("1.2.x", TAGS), Some("v1.2.10"));
        assert_eq!(pick("1.0 - 1.2", TAGS), Some("v1.2.10"));
        assert_eq!(pick("<1.0.0 || >=2.0.0", TAGS), Some("v2.0.0"));
        assert_eq!(pick("<1.0.0 || =1.2.3", TAGS), Some("v1.2.3"));
        assert_eq!(pick(">=3.0.0", TAGS), None);
    }

    #[test]
    fn a_bare_version_is_exact_and_v_prefixes_are_accepted() {
        assert_eq!(pick("1.2.3", TAGS), Some("v1.2.3"));
        assert_eq!(pick("v1.2.3", TAGS), Some("v1.2.3"));
        assert_eq!(pick(">=v1.2.3 <v1.3.0", TAGS), Some("v1.2.10"));
        assert_eq!(pick("1.0.0", &["1.0.0", "1.0.1"]), Some("1.0.0"));
    }

    #[test]
    fn prereleases_match_only_when_asked_for() {
        assert_eq!(pick(">=1.3.0-rc.0 <1.4.0", TAGS), Some("v1.3.0-rc.1"));
        assert_eq!(pick(">=1.2.11 <1.4.0", TAGS), None);
    }

    #[test]
    fn ties_are_broken_deterministically() {
        let tags = ["1.0.0", "v1.0.0"];
        assert_eq!(pick("1.0.0", &tags), Some("v1.0.0"));
        let reversed = ["v1.0.0", "1.0.0"];
        assert_eq!(pick("1.0.0", &reversed), Some("v1.0.0"));
        let builds = ["v1.0.0+build.2", "v1.0.0+build.10", "v1.0.0+build.1"];
        // Build metadata identifiers compare numerically when numeric.
        assert_eq!(pick(">=1.0.0", &builds), Some("v1.0.0+build.10"));
    }

    #[test]
    fn lenient_tag_versions() {
        assert_eq!(tag_version("v1.2"), Some(Version::new(1, 2, 0)));
        assert_eq!(tag_version("3"), Some(Version::new(3, 0, 0)));
        assert_eq!(
            tag_version("v1.2-rc.1").map(|v| v.to_string()),
            Some("1.2.0-rc.1".into())
        );
        assert_eq!(tag_version("release-1"), None);
        assert_eq!(tag_version("1..2"), None);
        assert_eq!(newest_version(TAGS.iter().copied()), Some("v2.0.0"));
    }

    #[test]
    fn invalid_ranges_are_rejected() {
        for range in ["", "foo", ">=", "!=1.0.0", ">= >= 1.0", "1.0.0 ||"] {
            assert!(Range::parse(range).is_err(), "{range:?} should be invalid");
        }
    }
}
