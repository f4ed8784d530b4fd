//! Signed timestamps and the replay window: parsing the units providers use (seconds,
//! milliseconds, RFC 3339) and deciding whether a timestamp is too old or too far ahead.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::outcome::Age;
use super::provider::Window;

const NANOS_PER_SEC: i128 = 1_000_000_000;

/// A signed timestamp, in nanoseconds since the Unix epoch (negative before it). `i128` holds
/// any `i64` count of seconds in nanoseconds, so no arithmetic here can overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Timestamp(i128);

impl Timestamp {
    /// `secs` seconds after the epoch.
    pub(crate) fn from_secs(secs: i64) -> Self {
        Self(i128::from(secs) * NANOS_PER_SEC)
    }

    /// `millis` milliseconds after the epoch.
    pub(crate) fn from_millis(millis: i64) -> Self {
        Self(i128::from(millis) * 1_000_000)
    }

    /// A point in time as a timestamp.
    pub(crate) fn from_system_time(time: SystemTime) -> Self {
        match time.duration_since(UNIX_EPOCH) {
            Ok(after) => Self(i128::try_from(after.as_nanos()).unwrap_or(i128::MAX)),
            Err(before) => Self(-i128::try_from(before.duration().as_nanos()).unwrap_or(i128::MAX)),
        }
    }

    /// Whole seconds since the epoch, rounded down.
    pub(crate) fn unix_secs(self) -> i64 {
        let secs = self.0.div_euclid(NANOS_PER_SEC);
        i64::try_from(secs).unwrap_or(if secs < 0 { i64::MIN } else { i64::MAX })
    }

    /// Whole milliseconds since the epoch, rounded down.
    pub(crate) fn unix_millis(self) -> i64 {
        let millis = self.0.div_euclid(1_000_000);
        i64::try_from(millis).unwrap_or(if millis < 0 { i64::MIN } else { i64::MAX })
    }

    /// The sub-second part, in nanoseconds.
    pub(crate) fn subsec_nanos(self) -> u32 {
        u32::try_from(self.0.rem_euclid(NANOS_PER_SEC)).unwrap_or(0)
    }

    /// Parses decimal seconds (`1614265330`), as most headers carry them.
    pub(crate) fn parse_secs(text: &str) -> Result<Self, String> {
        parse_integer(text)
            .map(Self::from_secs)
            .ok_or_else(|| format!("timestamp {text:?} is not a number of seconds"))
    }

    /// Parses decimal milliseconds (`1735689595000`), as HubSpot and Linear send them.
    pub(crate) fn parse_millis(text: &str) -> Result<Self, String> {
        parse_integer(text)
            .map(Self::from_millis)
            .ok_or_else(|| format!("timestamp {text:?} is not a number of milliseconds"))
    }

    /// Parses an RFC 3339 date-time such as Twitch's `2024-12-31T23:59:30.123456789Z`.
    /// Digits past nanoseconds are ignored.
    pub(crate) fn parse_rfc3339(text: &str) -> Result<Self, String> {
        rfc3339(text.as_bytes())
            .ok_or_else(|| format!("timestamp {text:?} is not an RFC 3339 date-time"))
    }
}

/// An optional sign and ASCII digits, nothing else (no spaces, no `+`-less garbage).
fn parse_integer(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// How far `stamp` is from `now`.
pub(crate) fn age(stamp: Timestamp, now: SystemTime) -> Age {
    let diff = Timestamp::from_system_time(now).0 - stamp.0;
    let duration = duration_from_nanos(diff.unsigned_abs());
    if diff >= 0 {
        Age::Past(duration)
    } else {
        Age::Future(duration)
    }
}

/// The age of `stamp` when it falls outside `window`, `None` when it is acceptable.
pub(crate) fn outside(stamp: Timestamp, now: SystemTime, window: Window) -> Option<Age> {
    let age = age(stamp, now);
    let rejected = match age {
        Age::Past(d) if window.strict => d >= window.tolerance,
        Age::Past(d) => d > window.tolerance,
        Age::Future(d) => window.future && d > window.tolerance,
    };
    rejected.then_some(age)
}

fn duration_from_nanos(nanos: u128) -> Duration {
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    let sub = u32::try_from(nanos % 1_000_000_000).unwrap_or(0);
    Duration::new(secs, sub)
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, strictly.
fn rfc3339(s: &[u8]) -> Option<Timestamp> {
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(range)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(part.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let sep = |i: usize, allowed: &[u8]| s.get(i).is_some_and(|c| allowed.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut nanos: i128 = 0;
    if s.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while s.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 9 {
                nanos = nanos * 10 + i128::from(s[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        let kept = (i - start).min(9);
        nanos *= 10_i128.pow(u32::try_from(9 - kept).unwrap_or(0));
    }
    let offset_secs = match s.get(i..)? {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), rest @ ..] if rest.len() == 5 && rest[2] == b':' => {
            let (h, m) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            let offset = h * 3600 + m * 60;
            if *sign == b'+' {
                offset
            } else {
                -offset
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    Some(Timestamp(i128::from(secs) * NANOS_PER_SEC + nanos))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn rfc3339_with_nanoseconds_and_offsets() {
        let t = Timestamp::parse_rfc3339("2024-12-31T23:59:30.123456789Z").unwrap();
        assert_eq!(t.unix_secs(), 1_735_689_570);
        assert_eq!(t.subsec_nanos(), 123_456_789);
        let t = Timestamp::parse_rfc3339("2025-01-01T01:00:00+01:00").unwrap();
        assert_eq!(t.unix_secs(), 1_735_689_600);
        let t = Timestamp::parse_rfc3339("1970-01-01T00:00:00.5123456789123Z").unwrap();
        assert_eq!((t.unix_secs(), t.subsec_nanos()), (0, 512_345_678));
        let t = Timestamp::parse_rfc3339("2000-02-29T00:00:00Z").unwrap();
        assert_eq!(t.unix_secs(), 951_782_400);
    }

    #[test]
    fn rfc3339_rejects_near_misses() {
        for bad in [
            "",
            "2024-12-31",
            "2024-12-31T23:59:30",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-12-31T24:00:00Z",
            "2024-12-31T23:59:30.Z",
            "2024-12-31T23:59:30+0100",
            "2024-12-31T23:59:30Zjunk",
            "２024-12-31T23:59:30Z",
        ] {
            assert!(Timestamp::parse_rfc3339(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn integers_are_strict() {
        assert_eq!(
            Timestamp::parse_secs("1600112502").unwrap().unix_secs(),
            1_600_112_502
        );
        assert_eq!(
            Timestamp::parse_millis("15000999").unwrap().unix_secs(),
            15_000
        );
        for bad in [
            "",
            " 1",
            "1 ",
            "+1",
            "1e3",
            "timestamp",
            "99999999999999999999",
        ] {
            assert!(Timestamp::parse_secs(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn past_only_windows_accept_the_future_and_the_edge() {
        let window = Window {
            tolerance: Duration::from_secs(300),
            future: false,
            strict: false,
        };
        let stamp = Timestamp::from_secs(1000);
        assert_eq!(outside(stamp, at(1300), window), None);
        assert_eq!(
            outside(stamp, at(1301), window),
            Some(Age::Past(Duration::from_secs(301)))
        );
        assert_eq!(outside(stamp, at(1), window), None);
    }

    #[test]
    fn symmetric_and_strict_windows() {
        let both = Window {
            tolerance: Duration::from_secs(300),
            future: true,
            strict: false,
        };
        let stamp = Timestamp::from_secs(1000);
        assert_eq!(outside(stamp, at(700), both), None);
        assert_eq!(
            outside(stamp, at(699), both),
            Some(Age::Future(Duration::from_secs(301)))
        );
        let strict = Window {
            strict: true,
            ..both
        };
        assert_eq!(
            outside(stamp, at(1300), strict),
            Some(Age::Past(Duration::from_secs(300)))
        );
        assert_eq!(outside(stamp, at(1299), strict), None);
    }

    #[test]
    fn extreme_timestamps_do_not_overflow() {
        let now = at(1_735_689_600);
        for stamp in [
            Timestamp::from_secs(i64::MAX),
            Timestamp::from_secs(i64::MIN),
            Timestamp::from_millis(i64::MIN),
        ] {
            let _ = age(stamp, now);
        }
    }
}
