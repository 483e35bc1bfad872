//! A line diff of two texts (longest common subsequence), printed as hunks with context.

/// One line of a diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line<'a> {
    /// In both.
    Same(&'a str),
    /// Only in the old text.
    Removed(&'a str),
    /// Only in the new text.
    Added(&'a str),
}

/// The lines of `old` and `new` aligned on their longest common subsequence.
pub fn diff<'a>(old: &'a str, new: &'a str) -> Vec<Line<'a>> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // lcs[i][j]: length of the LCS of a[i..] and b[j..]. Manifests are small enough for this.
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut lines = Vec::with_capacity(a.len().max(b.len()));
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            lines.push(Line::Same(a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            lines.push(Line::Removed(a[i]));
            i += 1;
        } else {
            lines.push(Line::Added(b[j]));
            j += 1;
        }
    }
    lines
}

/// The changed lines with `context` unchanged lines around them (`-`, `+`, and two spaces),
/// `...` between hunks; red and green when `colour`.
pub fn render(lines: &[Line<'_>], context: usize, colour: bool) -> String {
    let changed: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| !matches!(l, Line::Same(_)))
        .map(|(i, _)| i)
        .collect();
    let near = |i: usize| changed.iter().any(|&c| c.abs_diff(i) <= context);
    let mut text = String::new();
    let mut skipped = false;
    for (i, line) in lines.iter().enumerate() {
        if !near(i) {
            skipped = true;
            continue;
        }
        if skipped && !text.is_empty() {
            text.push_str("  ...\n");
        }
        skipped = false;
        let (mark, body, paint) = match line {
            Line::Same(l) => ("  ", l, ""),
            Line::Removed(l) => ("- ", l, "\x1b[31m"),
            Line::Added(l) => ("+ ", l, "\x1b[32m"),
        };
        if colour && !paint.is_empty() {
            text.push_str(&format!("{paint}{mark}{body}\x1b[0m\n"));
        } else {
            text.push_str(&format!("{mark}{body}\n"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_line_is_removed_then_added_with_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\n";
        let new = "a\nb\nc\nD\ne\nf\ng\nh\n";
        let lines = diff(old, new);
        assert_eq!(
            render(&lines, 1, false),
            "  c\n- d\n+ D\n  e\n  ...\n  g\n+ h\n"
        );
    }

    #[test]
    fn equal_texts_have_no_changes() {
        let lines = diff("x\ny\n", "x\ny\n");
        assert_eq!(render(&lines, 3, false), "");
    }
}
