//! Durations given on the command line in seconds, refused when they are not a sensible
//! number of seconds (NaN, infinite, negative, more than a week).

use std::time::Duration;

/// The longest duration any flag takes: a week.
const MAX_SECONDS: f64 = 7.0 * 24.0 * 3600.0;

/// Parses `text` as a number of seconds (`5`, `0.25`); clap's `value_parser` for every
/// duration flag.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !seconds.is_finite() {
        return Err(format!("`{text}` is not a number of seconds"));
    }
    if seconds < 0.0 {
        return Err(format!("`{text}`: a duration cannot be negative"));
    }
    if seconds > MAX_SECONDS {
        return Err(format!(
            "`{text}` seconds is more than a week ({MAX_SECONDS} s), the longest this takes"
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Parses an events-per-second rate: finite and more than 0.
pub(crate) fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of events per second"))?;
    if !rate.is_finite() || rate <= 0.0 || rate > 10_000_000.0 {
        return Err(format!(
            "`{text}`: a rate is more than 0 and at most 10,000,000 events per second"
        ));
    }
    Ok(rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sensible_numbers_of_seconds_are_taken() {
        assert_eq!(parse("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        for bad in ["nan", "NaN", "inf", "-1", "1e30", "", "five", "604801"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse_rate("100").is_ok());
        for bad in ["0", "-5", "nan", "inf", "1e9"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }
}
