//! `refreshInterval`: Go-style durations, parsed with checked arithmetic and bounded.
//!
//! The value comes from whoever may create a SecretSync, so nothing here may panic or overflow: an interval that
//! cannot be represented, or lies outside the bounds, is an error the controller reports on that object alone.
//! The CRD rejects the same values at `kubectl apply` (see [`REFRESH_RULE`]); this parser is the second line for
//! objects written before the CRD tightened.

use std::time::Duration;

/// The shortest periodic refresh: below it, refreshes of many objects would hammer the stores.
pub const MIN_REFRESH: Duration = Duration::from_secs(10);
/// The longest periodic refresh (30 days).
pub const MAX_REFRESH: Duration = Duration::from_secs(30 * 24 * 3600);
/// Longest text the CRD accepts for a duration; anything longer is not a sensible interval.
pub const MAX_LEN: usize = 32;

/// The CEL rule the CRD applies to `refreshInterval`, mirroring [`parse_refresh`]. The leading match bounds each
/// number so that `duration()` cannot fail: a rule that errors (rather than evaluating to false) is not ratcheted,
/// and the API server would then refuse every status write to an object that carries such a value already.
pub const REFRESH_RULE: &str = "self.matches('^([0-9]{1,7}(\\\\.[0-9]{1,9})?(ms|s|m|h))+$') && (duration(self) == duration('0s') || (duration(self) >= duration('10s') && duration(self) <= duration('720h')))";
/// The message shown when [`REFRESH_RULE`] rejects a value.
pub const REFRESH_RULE_MESSAGE: &str =
    "refreshInterval must be 0s (re-read only on change) or between 10s and 720h (30 days)";

/// When a SecretSync re-reads its remote secret besides reacting to changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refresh {
    /// `0s`: only a change of the SecretSync or its Secrets triggers a reconcile.
    OnChangeOnly,
    /// Every interval, plus jitter.
    Every(Duration),
}

/// Why a duration text is not usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("is not a duration such as \"30s\", \"10m\" or \"1h30m\"")]
    Malformed,
    #[error("is too large to represent")]
    Overflow,
    #[error("is shorter than the minimum of 10s (use 0s to re-read only on change)")]
    TooShort,
    #[error("is longer than the maximum of 720h (30 days)")]
    TooLong,
}

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Parses the Go-style durations the API accepts ("1h", "10m", "1h30m", "1.5s", "500ms") without bounds.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    if text.is_empty() || text.len() > MAX_LEN {
        return Err(DurationError::Malformed);
    }
    let mut total: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or(DurationError::Malformed)?;
        let (number, after) = rest.split_at(end);
        let (unit_nanos, unit_len) = if after.starts_with("ms") {
            (1_000_000u128, 2)
        } else if after.starts_with('s') {
            (NANOS_PER_SEC, 1)
        } else if after.starts_with('m') {
            (60 * NANOS_PER_SEC, 1)
        } else if after.starts_with('h') {
            (3600 * NANOS_PER_SEC, 1)
        } else {
            return Err(DurationError::Malformed);
        };
        total = total
            .checked_add(segment_nanos(number, unit_nanos)?)
            .ok_or(DurationError::Overflow)?;
        rest = &after[unit_len..];
    }
    let secs = u64::try_from(total / NANOS_PER_SEC).map_err(|_| DurationError::Overflow)?;
    // The remainder of a division by 10^9 always fits.
    let nanos = (total % NANOS_PER_SEC) as u32;
    Ok(Duration::new(secs, nanos))
}

/// `digits[.digits]` times a unit, in nanoseconds.
fn segment_nanos(number: &str, unit_nanos: u128) -> Result<u128, DurationError> {
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || number.ends_with('.') {
        return Err(DurationError::Malformed);
    }
    let whole: u128 = whole.parse().map_err(|_| DurationError::Overflow)?;
    let mut nanos = whole
        .checked_mul(unit_nanos)
        .ok_or(DurationError::Overflow)?;
    // Below a nanosecond nothing counts, so at most 18 fractional digits matter (10^18 fits easily).
    let fraction = &fraction[..fraction.len().min(18)];
    if !fraction.is_empty() {
        let scale = 10u128.pow(fraction.len() as u32);
        let numerator: u128 = fraction.parse().map_err(|_| DurationError::Malformed)?;
        nanos = nanos
            .checked_add(numerator * unit_nanos / scale)
            .ok_or(DurationError::Overflow)?;
    }
    Ok(nanos)
}

/// Parses and bounds a `refreshInterval`.
pub fn parse_refresh(text: &str) -> Result<Refresh, DurationError> {
    let d = parse_duration(text)?;
    if d.is_zero() {
        Ok(Refresh::OnChangeOnly)
    } else if d < MIN_REFRESH {
        Err(DurationError::TooShort)
    } else if d > MAX_REFRESH {
        Err(DurationError::TooLong)
    } else {
        Ok(Refresh::Every(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style_durations_parse() {
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0.5h"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("1m1s1ms"), Ok(Duration::from_millis(61_001)));
        assert_eq!(
            parse_duration("0.000000001s"),
            Ok(Duration::from_nanos(1)),
            "nanosecond precision"
        );
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn malformed_texts_are_errors() {
        for text in [
            "", "10", "h", "5d", "1.s", ".5s", "1..5s", "-1s", "1h ", " 1h", "1hh", "1.2.3s", "ms",
        ] {
            assert_eq!(
                parse_duration(text),
                Err(DurationError::Malformed),
                "{text:?}"
            );
        }
        assert_eq!(
            parse_duration(&"1s".repeat(20)),
            Err(DurationError::Malformed),
            "longer than the CRD's maxLength"
        );
    }

    #[test]
    fn huge_values_overflow_instead_of_panicking() {
        // The value that used to crash the controller.
        assert_eq!(
            parse_duration("99999999999999999999h"),
            Err(DurationError::Overflow)
        );
        assert_eq!(
            parse_duration("9999999999999999999999999999999999999s"),
            Err(DurationError::Malformed),
            "past the length limit before any arithmetic"
        );
        assert_eq!(
            parse_duration("999999999999999999999999999999s"),
            Err(DurationError::Overflow)
        );
        assert_eq!(
            parse_duration("5124095576030432h"),
            Err(DurationError::Overflow),
            "just past u64::MAX seconds"
        );
        assert_eq!(
            parse_refresh("99999999999999999999h"),
            Err(DurationError::Overflow)
        );
        // Large but representable: out of range, not an overflow.
        assert_eq!(parse_refresh("1000000h"), Err(DurationError::TooLong));
    }

    #[test]
    fn refresh_is_bounded_and_zero_means_on_change_only() {
        assert_eq!(parse_refresh("0s"), Ok(Refresh::OnChangeOnly));
        assert_eq!(parse_refresh("0h0m"), Ok(Refresh::OnChangeOnly));
        assert_eq!(parse_refresh("9s"), Err(DurationError::TooShort));
        assert_eq!(parse_refresh("9999ms"), Err(DurationError::TooShort));
        assert_eq!(parse_refresh("10s"), Ok(Refresh::Every(MIN_REFRESH)));
        assert_eq!(parse_refresh("720h"), Ok(Refresh::Every(MAX_REFRESH)));
        assert_eq!(parse_refresh("720h1s"), Err(DurationError::TooLong));
        assert_eq!(
            parse_refresh("1h"),
            Ok(Refresh::Every(Duration::from_secs(3600)))
        );
    }
}
