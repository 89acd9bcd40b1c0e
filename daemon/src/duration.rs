//! Durations as people type them: `90s`, `30m`, `12h`, `7d`, `2w`, or bare seconds.

use std::time::Duration;

/// The longest duration accepted: beyond it, a timestamp is no longer a
/// meaningful expiry.
const MAX_SECS: u64 = 100 * 365 * 86_400;

/// Parses `N[s|m|h|d|w]`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().map_err(|_| {
        format!(
            "duration {text:?} must be a number with an optional unit s, m, h, d or w (e.g. 7d)"
        )
    })?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        other => {
            return Err(format!(
                "duration {text:?} has unknown unit {other:?}; use s, m, h, d or w"
            ));
        }
    };
    n.checked_mul(scale)
        .filter(|&s| s > 0 && s <= MAX_SECS)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("duration {text:?} must be more than 0 and at most 100 years"))
}

/// The longest wait a `--timeout` accepts (a day, as joins allow).
pub const MAX_TIMEOUT_SECS: f64 = 86_400.0;

/// A `--timeout`: seconds (`30`, `2.5`) or a duration (`90s`, `5m`, `1h`),
/// from 0 to a day.
pub fn parse_timeout(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let secs = match t.parse::<f64>() {
        Ok(n) => n,
        Err(_) => parse_duration(t).map(|d| d.as_secs_f64()).map_err(|_| {
            format!(
                "{text:?} is not a number of seconds (e.g. 30, 2.5) or a duration (90s, 5m, 1h)"
            )
        })?,
    };
    if !(0.0..=MAX_TIMEOUT_SECS).contains(&secs) {
        return Err(format!(
            "{text:?} is out of range: give 0 to {MAX_TIMEOUT_SECS} seconds (a day)"
        ));
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_take_seconds_or_durations_up_to_a_day() {
        assert_eq!(parse_timeout("30"), Ok(30.0));
        assert_eq!(parse_timeout("2.5"), Ok(2.5));
        assert_eq!(parse_timeout("0"), Ok(0.0));
        assert_eq!(parse_timeout("2m"), Ok(120.0));
        assert_eq!(parse_timeout("1d"), Ok(86_400.0));
        for bad in ["-1", "NaN", "inf", "86401", "2d", "soon", "", "1e400"] {
            let err = parse_timeout(bad).unwrap_err();
            assert!(err.contains("seconds"), "{bad}: {err}");
        }
    }

    #[test]
    fn units() {
        assert_eq!(parse_duration("90").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("90s").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("30m").unwrap().as_secs(), 1800);
        assert_eq!(parse_duration("12h").unwrap().as_secs(), 43_200);
        assert_eq!(parse_duration("7d").unwrap().as_secs(), 604_800);
        assert_eq!(parse_duration("2w").unwrap().as_secs(), 1_209_600);
        assert_eq!(parse_duration("36500d").unwrap().as_secs(), MAX_SECS);
    }

    #[test]
    fn nonsense_is_refused_with_a_hint() {
        for bad in [
            "",
            "d",
            "7y",
            "-3s",
            "0",
            "1.5h",
            "99999999999999999999d",
            "9223372036854775807",
            "5300w",
        ] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains("duration"), "{bad}: {err}");
        }
    }
}
