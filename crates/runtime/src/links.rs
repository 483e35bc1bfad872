//! Where a symbolic link of an artifact leads: the source-controller drops links that leave
//! the tree it archives, and the kustomize-controller refuses them when it extracts one.

/// How many links one target may go through before it is treated as a loop (Linux's limit).
pub const MAX_LINK_HOPS: usize = 40;

/// Whether following the link at `link` (a `/`-separated path relative to the root) to
/// `target` ends inside the tree.
///
/// Every component that is itself a link is expanded, as the kernel would after extraction:
/// `read_link` gives the target of the link at a root-relative path, `None` when the path is
/// not a link. So `b -> a/..` leaves the tree when `a -> .`, although it looks inside.
/// Absolute targets, loops, and `..` above the root (also through components that do not
/// exist) all count as leaving.
pub fn link_stays_inside(
    link: &[u8],
    target: &[u8],
    read_link: impl Fn(&[u8]) -> Option<Vec<u8>>,
) -> bool {
    let mut current: Vec<Vec<u8>> = match link.iter().rposition(|b| *b == b'/') {
        Some(end) => link[..end]
            .split(|b| *b == b'/')
            .filter(|c| !c.is_empty())
            .map(<[u8]>::to_vec)
            .collect(),
        None => Vec::new(),
    };
    // The components still to walk, the next one last.
    let mut pending: Vec<Vec<u8>> = Vec::new();
    if !push_target(&mut pending, target) {
        return false;
    }
    let mut hops = 0;
    while let Some(component) = pending.pop() {
        match component.as_slice() {
            b"" | b"." => {}
            b".." => {
                if current.pop().is_none() {
                    return false;
                }
            }
            _ => {
                current.push(component);
                if let Some(next) = read_link(&current.join(&b'/')) {
                    hops += 1;
                    current.pop();
                    if hops > MAX_LINK_HOPS || !push_target(&mut pending, &next) {
                        return false;
                    }
                }
            }
        }
    }
    true
}

/// Queues the components of a relative link target; `false` for an absolute or empty one.
fn push_target(pending: &mut Vec<Vec<u8>>, target: &[u8]) -> bool {
    if target.is_empty() || target[0] == b'/' {
        return false;
    }
    pending.extend(target.rsplit(|b| *b == b'/').map(<[u8]>::to_vec));
    true
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn inside(links: &[(&str, &str)], link: &str, target: &str) -> bool {
        let map: BTreeMap<Vec<u8>, Vec<u8>> = links
            .iter()
            .map(|(l, t)| (l.as_bytes().to_vec(), t.as_bytes().to_vec()))
            .collect();
        link_stays_inside(link.as_bytes(), target.as_bytes(), |p| map.get(p).cloned())
    }

    #[test]
    fn links_are_followed_through_other_links() {
        assert!(inside(&[], "a/l", "../b"));
        assert!(!inside(&[], "a/l", "../../b"));
        assert!(!inside(&[], "l", "/etc"));
        assert!(!inside(&[], "l", ""));
        assert!(!inside(&[("a", ".")], "b", "a/.."));
        assert!(inside(&[("d/a", "..")], "b", "d/a/d"));
        assert!(!inside(&[("l", "l")], "x", "l"));
        assert!(inside(&[], "x", "missing/../y"));
    }
}
