//! Printing: aligned tables for people, JSON or YAML for scripts, and ages as kubectl shows them.

use std::io::Write;

use jiff::Timestamp;
use serde::Serialize;

use crate::args::Format;
use crate::error::Error;

/// Prints `value` as JSON or YAML on stdout.
pub fn print_structured<T: Serialize>(format: Format, value: &T) -> Result<(), Error> {
    let text = match format {
        Format::Json => {
            serde_json::to_string_pretty(value).map_err(|e| Error::Output(e.to_string()))? + "\n"
        }
        Format::Yaml => serde_saphyr::to_string(value).map_err(|e| Error::Output(e.to_string()))?,
    };
    write_stdout(&text)
}

/// Writes `text` to stdout and flushes it (a closed pipe is an error, not a panic).
pub fn write_stdout(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Error::Output(e.to_string()))
}

/// A table with a header and left-aligned columns separated by three spaces, like kubectl's.
#[derive(Debug, Clone)]
pub struct Table {
    header: Vec<String>,
    widths: Vec<usize>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| h.to_string()).collect(),
            widths: header.iter().map(|h| h.chars().count()).collect(),
        }
    }

    /// Widens the columns to fit `rows`.
    pub fn fit(&mut self, rows: &[Vec<String>]) {
        for row in rows {
            for (width, cell) in self.widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }

    /// The header line.
    pub fn header_line(&self) -> String {
        self.line(&self.header)
    }

    /// One row as a line; the last column is never padded.
    pub fn line(&self, row: &[String]) -> String {
        let last = row.len().saturating_sub(1);
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i < last {
                let width = self.widths.get(i).copied().unwrap_or(0);
                let pad = width.saturating_sub(cell.chars().count()) + 3;
                line.push_str(&" ".repeat(pad));
            }
        }
        line.truncate(line.trim_end().len());
        line.push('\n');
        line
    }

    /// The header and the rows, fitted.
    pub fn render(mut self, rows: &[Vec<String>]) -> String {
        self.fit(rows);
        let mut text = self.header_line();
        for row in rows {
            text.push_str(&self.line(row));
        }
        text
    }
}

/// How long ago `then` was, the way kubectl prints an AGE: `45s`, `5m3s`, `3h`, `2d4h`, `40d`.
pub fn age(then: Timestamp, now: Timestamp) -> String {
    let secs = now.duration_since(then).as_secs().max(0);
    let (m, h, d) = (60, 3600, 86_400);
    match secs {
        s if s < 2 * m => format!("{s}s"),
        s if s < 10 * m && s % m != 0 => format!("{}m{}s", s / m, s % m),
        s if s < 3 * h => format!("{}m", s / m),
        s if s < 8 * h && s % h / m != 0 => format!("{}h{}m", s / h, s % h / m),
        s if s < 2 * d => format!("{}h", s / h),
        s if s < 8 * d && s % d / h != 0 => format!("{}d{}h", s / d, s % d / h),
        s => format!("{}d", s / d),
    }
}

/// A timestamp as RFC 3339 in UTC, to the second.
pub fn time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ago(secs: i64) -> String {
        let now = Timestamp::from_second(10_000_000).expect("time");
        let then = Timestamp::from_second(10_000_000 - secs).expect("time");
        age(then, now)
    }

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(ago(0), "0s");
        assert_eq!(ago(119), "119s");
        assert_eq!(ago(150), "2m30s");
        assert_eq!(ago(600), "10m");
        assert_eq!(ago(2 * 3600 + 59), "120m");
        assert_eq!(ago(4 * 3600 + 30 * 60), "4h30m");
        assert_eq!(ago(30 * 3600), "30h");
        assert_eq!(ago(3 * 86_400 + 5 * 3600), "3d5h");
        assert_eq!(ago(40 * 86_400), "40d");
    }

    #[test]
    fn tables_align_columns_and_leave_the_last_unpadded() {
        let rows = vec![
            vec!["a".to_string(), "True".to_string(), "ok".to_string()],
            vec!["longer".to_string(), "False".to_string(), "".to_string()],
        ];
        let text = Table::new(&["NAME", "READY", "MESSAGE"]).render(&rows);
        assert_eq!(
            text,
            "NAME     READY   MESSAGE\na        True    ok\nlonger   False\n"
        );
    }
}
