//! Relative paths inside an artifact: parsing what users and archives give us, joining, and
//! telling whether one path lies under another.
//!
//! Paths are kept as bytes: git allows any non-NUL bytes in names, and an artifact must not
//! fail on a file name that is not UTF-8.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Why a path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathProblem {
    /// Starts with `/`.
    Absolute,
    /// Has a `..` component.
    ParentComponent,
    /// Contains a NUL byte or a backslash.
    ForbiddenByte,
}

impl PathProblem {
    /// A short description for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Absolute => "the path is absolute",
            Self::ParentComponent => "the path contains `..`",
            Self::ForbiddenByte => "the path contains a NUL byte or a backslash",
        }
    }
}

/// Normalises a relative path: drops a leading `./`, empty and `.` components and a trailing
/// slash; refuses absolute paths and `..`. The empty result stands for the root.
pub fn normalize_relative(path: &[u8]) -> Result<Vec<u8>, PathProblem> {
    if path.first() == Some(&b'/') {
        return Err(PathProblem::Absolute);
    }
    // A backslash is a separator on Windows consumers; NUL cannot be stored in tar names.
    if path.iter().any(|b| *b == 0 || *b == b'\\') {
        return Err(PathProblem::ForbiddenByte);
    }
    let mut out = Vec::with_capacity(path.len());
    for component in path.split(|b| *b == b'/') {
        match component {
            b"" | b"." => continue,
            b".." => return Err(PathProblem::ParentComponent),
            name => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(name);
            }
        }
    }
    Ok(out)
}

/// `dir/name`, or `name` when `dir` is the root.
pub fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        return name.to_vec();
    }
    let mut out = Vec::with_capacity(dir.len() + 1 + name.len());
    out.extend_from_slice(dir);
    out.push(b'/');
    out.extend_from_slice(name);
    out
}

/// Whether `path` is `dir` or lies below it. Every path is under the root (empty `dir`).
pub fn is_under(path: &[u8], dir: &[u8]) -> bool {
    dir.is_empty() || path == dir || strictly_under(path, dir)
}

/// Whether `path` lies below `dir` (and is not `dir` itself).
pub fn strictly_under(path: &[u8], dir: &[u8]) -> bool {
    if dir.is_empty() {
        return !path.is_empty();
    }
    path.len() > dir.len() && path.starts_with(dir) && path[dir.len()] == b'/'
}

/// The directories above `path`, outermost first (`a/b/c` gives `a`, `a/b`).
pub fn ancestors(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.iter()
        .enumerate()
        .filter(|(_, b)| **b == b'/')
        .map(move |(i, _)| &path[..i])
}

/// A byte path as a filesystem path (Unix only, like the controller).
pub fn as_path(path: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(path))
}

/// A byte path for messages.
pub fn display(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_strips_dot_slash_and_empty_components() {
        assert_eq!(
            normalize_relative(b"./apps//prod/").as_deref(),
            Ok(&b"apps/prod"[..])
        );
        assert_eq!(normalize_relative(b".").as_deref(), Ok(&b""[..]));
        assert_eq!(normalize_relative(b"").as_deref(), Ok(&b""[..]));
        assert_eq!(normalize_relative(b"a/./b").as_deref(), Ok(&b"a/b"[..]));
    }

    #[test]
    fn normalize_refuses_escapes() {
        assert_eq!(normalize_relative(b"/etc"), Err(PathProblem::Absolute));
        assert_eq!(
            normalize_relative(b"../x"),
            Err(PathProblem::ParentComponent)
        );
        assert_eq!(
            normalize_relative(b"a/../../x"),
            Err(PathProblem::ParentComponent)
        );
        assert_eq!(
            normalize_relative(b"a\\..\\x"),
            Err(PathProblem::ForbiddenByte)
        );
        assert_eq!(normalize_relative(b"a\0b"), Err(PathProblem::ForbiddenByte));
    }

    #[test]
    fn under_compares_whole_components() {
        assert!(is_under(b"apps/prod/x", b"apps/prod"));
        assert!(is_under(b"apps/prod", b"apps/prod"));
        assert!(!is_under(b"apps/production", b"apps/prod"));
        assert!(is_under(b"anything", b""));
        assert!(!strictly_under(b"apps", b"apps"));
    }

    #[test]
    fn ancestors_are_outermost_first() {
        let found: Vec<&[u8]> = ancestors(b"a/b/c").collect();
        assert_eq!(found, vec![&b"a"[..], &b"a/b"[..]]);
        assert_eq!(ancestors(b"top").count(), 0);
        assert_eq!(join(b"", b"x"), b"x");
        assert_eq!(join(b"a", b"x"), b"a/x");
    }
}
