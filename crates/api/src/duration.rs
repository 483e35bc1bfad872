//! Duration strings of the spec (`1m`, `1h30m`, `2.5s`, `500ms`), as the CRD schema admits them.

use std::fmt;
use std::time::Duration;

/// A duration string that does not match `^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`, or overflows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurationError {
    input: String,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid duration {:?}: expected numbers with units ms, s, m or h, such as 1m30s",
            self.input
        )
    }
}

impl std::error::Error for DurationError {}

/// Parses a duration such as `1h30m`, `90s`, `1.5m` or `250ms`.
///
/// The accepted grammar is the one the CRD schema enforces: one or more numbers, each with an
/// optional decimal fraction and a unit among `ms`, `s`, `m` and `h`. Signs, spaces, a bare `0`
/// and the empty string are rejected.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let error = || DurationError {
        input: input.to_owned(),
    };
    let mut rest = input;
    let mut total = Duration::ZERO;
    if rest.is_empty() {
        return Err(error());
    }
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        if int_len == 0 {
            return Err(error());
        }
        let mut number_len = int_len;
        if rest[int_len..].starts_with('.') {
            let frac_len = rest[int_len + 1..]
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
            if frac_len == 0 {
                return Err(error());
            }
            number_len += 1 + frac_len;
        }
        let (number, after) = rest.split_at(number_len);
        let (unit, unit_len) = if after.starts_with("ms") {
            (Duration::from_millis(1), 2)
        } else if after.starts_with('s') {
            (Duration::from_secs(1), 1)
        } else if after.starts_with('m') {
            (Duration::from_secs(60), 1)
        } else if after.starts_with('h') {
            (Duration::from_secs(3600), 1)
        } else {
            return Err(error());
        };
        let value: f64 = number.parse().map_err(|_| error())?;
        let part = Duration::try_from_secs_f64(value * unit.as_secs_f64()).map_err(|_| error())?;
        total = total.checked_add(part).ok_or_else(error)?;
        rest = &after[unit_len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> Duration {
        parse_duration(input).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn parses_single_units() {
        assert_eq!(ok("250ms"), Duration::from_millis(250));
        assert_eq!(ok("60s"), Duration::from_secs(60));
        assert_eq!(ok("5m"), Duration::from_secs(300));
        assert_eq!(ok("2h"), Duration::from_secs(7200));
    }

    #[test]
    fn parses_compound_and_fractional_values() {
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("1m30s500ms"), Duration::from_millis(90_500));
        assert_eq!(ok("1.5m"), Duration::from_secs(90));
        assert_eq!(ok("0.25s"), Duration::from_millis(250));
        assert_eq!(ok("0s"), Duration::ZERO);
    }

    #[test]
    fn rejects_what_the_schema_rejects() {
        for bad in [
            "", "0", "5", "m", "1.m", ".5s", "-1s", "+1s", "1 m", "1d", "1us", "1ns", "1s ",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn error_names_the_input() {
        let error = parse_duration("1d").expect_err("1d is not a duration");
        assert!(error.to_string().contains("\"1d\""));
    }
}
