//! Which paths stay out of the artifact.
//!
//! Three sources of gitignore-syntax rules, from lowest to highest precedence (the last rule
//! that matches decides, as in a single `.gitignore`):
//! 1. the base: the VCS files, plus Flux's default exclusions unless `spec.ignore` is set;
//! 2. every `.sourceignore` file, scoped to its own directory; deeper files win;
//! 3. `spec.ignore`, scoped to the root.
//!
//! Unlike Flux, the default exclusions are kept when a `.sourceignore` exists: Flux silently
//! drops them then, which surprises users (a `.sourceignore` can still re-include with `!`).
//! As in git, a file inside an excluded directory cannot be re-included: the walk never
//! enters excluded directories.

use std::sync::{Arc, OnceLock};

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

use super::ArchiveError;
use super::paths::{as_path, display};

/// The ignore file read from every directory of the tree.
pub const SOURCE_IGNORE_FILE: &str = ".sourceignore";

/// Always excluded (unless a rule re-includes them): version-control metadata.
pub const VCS_PATTERNS: &[&str] = &[".git/", ".gitignore", ".gitmodules", ".gitattributes"];

/// Flux's default exclusions besides the VCS ones: binary media and archives, CI
/// configuration, and release/secret tool files. Replaced as a whole by `spec.ignore`.
pub const DEFAULT_PATTERNS: &[&str] = &[
    "*.jpg",
    "*.jpeg",
    "*.gif",
    "*.png",
    "*.wmv",
    "*.flv",
    "*.tar.gz",
    "*.zip",
    ".github/",
    ".circleci/",
    ".travis.yml",
    ".gitlab-ci.yml",
    "appveyor.yml",
    ".drone.yml",
    "cloudbuild.yaml",
    "codeship-services.yml",
    "codeship-steps.yml",
    "**/.goreleaser.yml",
    "**/.sops.yaml",
    "**/.flux.yaml",
];

/// The rules in force while walking one directory of the tree.
pub struct IgnoreRules {
    base: Arc<Gitignore>,
    spec: Option<Gitignore>,
    /// `.sourceignore` files of the directories on the current walk path, outermost first.
    scoped: Vec<Scoped>,
}

struct Scoped {
    /// The directory holding the file (empty for the root).
    dir: Vec<u8>,
    rules: Gitignore,
}

impl IgnoreRules {
    /// The base rules and, when given, `spec.ignore` (which replaces the default exclusions).
    pub fn new(spec_ignore: Option<&str>) -> Result<Self, ArchiveError> {
        let base = base_rules(spec_ignore.is_none())?;
        let spec = spec_ignore
            .map(|text| compile("spec.ignore", text.lines()))
            .transpose()?;
        Ok(Self {
            base,
            spec,
            scoped: Vec::new(),
        })
    }

    /// Adds the rules of the `.sourceignore` file found in `dir`, in force until [`Self::leave`].
    pub fn enter(&mut self, dir: &[u8], content: &[u8]) -> Result<(), ArchiveError> {
        let origin = display(&super::paths::join(dir, SOURCE_IGNORE_FILE.as_bytes()));
        let text = String::from_utf8_lossy(content);
        let rules = compile(&origin, text.lines())?;
        self.scoped.push(Scoped {
            dir: dir.to_vec(),
            rules,
        });
        Ok(())
    }

    /// Drops the rules added by the last [`Self::enter`].
    pub fn leave(&mut self) {
        self.scoped.pop();
    }

    /// Whether `path` (relative to the root) is excluded, judged on the path itself; the
    /// caller does not descend into excluded directories.
    pub fn is_ignored(&self, path: &[u8], is_dir: bool) -> bool {
        if let Some(spec) = &self.spec
            && let Some(ignored) = decide(spec.matched(as_path(path), is_dir))
        {
            return ignored;
        }
        for scoped in self.scoped.iter().rev() {
            let Some(relative) = relative_to(path, &scoped.dir) else {
                continue;
            };
            if let Some(ignored) = decide(scoped.rules.matched(as_path(relative), is_dir)) {
                return ignored;
            }
        }
        decide(self.base.matched(as_path(path), is_dir)).unwrap_or(false)
    }
}

/// `Some(true)` for an exclusion, `Some(false)` for a re-inclusion, `None` when no rule matched.
fn decide<T>(found: Match<T>) -> Option<bool> {
    match found {
        Match::None => None,
        Match::Ignore(_) => Some(true),
        Match::Whitelist(_) => Some(false),
    }
}

/// `path` relative to `dir`, when it lies below it.
fn relative_to<'a>(path: &'a [u8], dir: &[u8]) -> Option<&'a [u8]> {
    if dir.is_empty() {
        return Some(path);
    }
    if super::paths::strictly_under(path, dir) {
        Some(&path[dir.len() + 1..])
    } else {
        None
    }
}

/// Compiles gitignore lines; a pattern that does not compile is an error naming its origin,
/// rather than a rule silently missing from the artifact's filter.
/// The base rules, compiled once per process (each archive used to compile them again: 1.5 %
/// of the source-controller's CPU at cold start). `with_defaults`: Flux's default exclusions
/// too, i.e. no `spec.ignore`.
fn base_rules(with_defaults: bool) -> Result<Arc<Gitignore>, ArchiveError> {
    static VCS_ONLY: OnceLock<Arc<Gitignore>> = OnceLock::new();
    static WITH_DEFAULTS: OnceLock<Arc<Gitignore>> = OnceLock::new();
    let (cell, lines): (_, &[&[&str]]) = if with_defaults {
        (&WITH_DEFAULTS, &[VCS_PATTERNS, DEFAULT_PATTERNS])
    } else {
        (&VCS_ONLY, &[VCS_PATTERNS])
    };
    if let Some(rules) = cell.get() {
        return Ok(Arc::clone(rules));
    }
    let rules = compile(
        "the default exclusions",
        lines.iter().flat_map(|part| part.iter().copied()),
    )?;
    Ok(Arc::clone(cell.get_or_init(|| Arc::new(rules))))
}

fn compile<'a>(
    origin: &str,
    lines: impl Iterator<Item = &'a str>,
) -> Result<Gitignore, ArchiveError> {
    // Root "." keeps the matcher from stripping prefixes: callers pass paths relative to the
    // rules' own directory.
    let mut builder = GitignoreBuilder::new(".");
    for (index, line) in lines.enumerate() {
        builder
            .add_line(None, line)
            .map_err(|e| ArchiveError::InvalidIgnorePattern {
                origin: origin.to_string(),
                line: index + 1,
                message: e.to_string(),
            })?;
    }
    builder
        .build()
        .map_err(|e| ArchiveError::InvalidIgnorePattern {
            origin: origin.to_string(),
            line: 0,
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(spec: Option<&str>) -> IgnoreRules {
        IgnoreRules::new(spec).expect("rules compile")
    }

    #[test]
    fn defaults_exclude_flux_list_at_any_depth() {
        let r = rules(None);
        for path in [
            "logo.png",
            "docs/img/a.JPG.jpg",
            "pkg.tar.gz",
            ".travis.yml",
            "sub/.sops.yaml",
            "deep/er/.flux.yaml",
            ".gitignore",
            "sub/.gitattributes",
        ] {
            assert!(
                r.is_ignored(path.as_bytes(), false),
                "{path} should be ignored"
            );
        }
        assert!(r.is_ignored(b".github", true));
        assert!(r.is_ignored(b"x/.circleci", true));
        for path in ["deploy.yaml", "README.md", "sops.yaml", "image.pngx"] {
            assert!(
                !r.is_ignored(path.as_bytes(), false),
                "{path} should be kept"
            );
        }
        // `.github/` only matches directories.
        assert!(!r.is_ignored(b".github", false));
    }

    #[test]
    fn spec_ignore_replaces_defaults_but_keeps_vcs() {
        let r = rules(Some("/*\n!/deploy\n"));
        assert!(r.is_ignored(b"README.md", false));
        assert!(r.is_ignored(b"apps", true));
        assert!(!r.is_ignored(b"deploy", true));
        // Anchored rules do not reach into kept directories.
        assert!(!r.is_ignored(b"deploy/logo.png", false));
        assert!(r.is_ignored(b"deploy/.gitignore", false));
    }

    #[test]
    fn spec_ignore_can_reinclude_vcs_files() {
        let r = rules(Some("!.gitignore"));
        assert!(!r.is_ignored(b".gitignore", false));
    }

    #[test]
    fn sourceignore_is_scoped_to_its_directory() {
        let mut r = rules(None);
        r.enter(b"apps", b"# comment\nsecret.yaml\n/local.yaml\n")
            .expect("compiles");
        assert!(r.is_ignored(b"apps/secret.yaml", false));
        assert!(r.is_ignored(b"apps/x/secret.yaml", false));
        assert!(r.is_ignored(b"apps/local.yaml", false));
        assert!(!r.is_ignored(b"apps/x/local.yaml", false));
        assert!(!r.is_ignored(b"other/secret.yaml", false));
        assert!(!r.is_ignored(b"secret.yaml", false));
        // A sibling directory sharing the prefix is not in scope.
        assert!(!r.is_ignored(b"apps2/secret.yaml", false));
        r.leave();
        assert!(!r.is_ignored(b"apps/secret.yaml", false));
    }

    #[test]
    fn deeper_sourceignore_and_spec_ignore_win() {
        let mut r = rules(Some("!keep-by-spec.txt"));
        r.enter(b"", b"*.txt\n").expect("compiles");
        r.enter(b"a", b"!keep.txt\n").expect("compiles");
        assert!(r.is_ignored(b"a/other.txt", false));
        assert!(!r.is_ignored(b"a/keep.txt", false));
        assert!(r.is_ignored(b"keep.txt", false));
        assert!(!r.is_ignored(b"b/keep-by-spec.txt", false));
    }

    #[test]
    fn sourceignore_can_reinclude_a_default() {
        let mut r = rules(None);
        r.enter(b"", b"!diagram.png\n").expect("compiles");
        assert!(!r.is_ignored(b"docs/diagram.png", false));
        assert!(r.is_ignored(b"docs/other.png", false));
    }

    #[test]
    fn invalid_pattern_names_its_origin() {
        let Err(err) = IgnoreRules::new(Some("ok\n{a,b")) else {
            panic!("an unclosed alternation should not compile");
        };
        let text = err.to_string();
        assert!(
            text.contains("spec.ignore") && text.contains("line 2"),
            "{text}"
        );
    }
}
