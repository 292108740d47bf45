//! Date handling: ISO-8601 basic format (`20150830T123600Z`, used by `X-Amz-Date` and the
//! string to sign) and the RFC 1123 `Date` header fallback, converted to and from Unix seconds
//! without any dependency.

/// Parses exactly `YYYYMMDDTHHMMSSZ` into Unix seconds (UTC). Rejects anything else,
/// including out-of-range fields.
pub(crate) fn parse_iso_basic(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b.get(8) != Some(&b'T') || b.get(15) != Some(&b'Z') {
        return None;
    }
    let year = digits(b.get(0..4)?)?;
    let month = digits(b.get(4..6)?)?;
    let day = digits(b.get(6..8)?)?;
    let hour = digits(b.get(9..11)?)?;
    let minute = digits(b.get(11..13)?)?;
    let second = digits(b.get(13..15)?)?;
    to_unix(year, month, day, hour, minute, second)
}

/// Parses an RFC 1123 HTTP date, `Sun, 30 Aug 2015 12:36:00 GMT`, into Unix seconds.
/// The weekday is required to be three letters but is not cross-checked.
pub(crate) fn parse_rfc1123(s: &str) -> Option<i64> {
    let b = s.trim().as_bytes();
    // "Sun, 30 Aug 2015 12:36:00 GMT" is exactly 29 bytes.
    if b.len() != 29 {
        return None;
    }
    let weekday = b.get(0..3)?;
    if !weekday.iter().all(u8::is_ascii_alphabetic)
        || b.get(3..5)? != b", "
        || b.get(7) != Some(&b' ')
        || b.get(11) != Some(&b' ')
        || b.get(16) != Some(&b' ')
        || b.get(19) != Some(&b':')
        || b.get(22) != Some(&b':')
        || b.get(25..29)? != b" GMT"
    {
        return None;
    }
    let day = digits(b.get(5..7)?)?;
    let month = month_number(b.get(8..11)?)?;
    let year = digits(b.get(12..16)?)?;
    let hour = digits(b.get(17..19)?)?;
    let minute = digits(b.get(20..22)?)?;
    let second = digits(b.get(23..25)?)?;
    to_unix(year, month, day, hour, minute, second)
}

/// Formats Unix seconds as `YYYYMMDDTHHMMSSZ`.
pub(crate) fn format_iso_basic(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

fn digits(b: &[u8]) -> Option<u32> {
    let mut n: u32 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u32::from(c - b'0');
    }
    Some(n)
}

fn month_number(b: &[u8]) -> Option<u32> {
    const MONTHS: [&[u8]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let pos = MONTHS.iter().position(|m| *m == b)?;
    u32::try_from(pos).ok().map(|p| p + 1)
}

fn days_in_month(y: u32, m: u32) -> i64 {
    let (y, m) = (i64::from(y), i64::from(m));
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    days_from_civil(ny, nm, 1) - days_from_civil(y, m, 1)
}

fn to_unix(year: u32, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> Option<i64> {
    if !(1..=12).contains(&month)
        || day == 0
        || i64::from(day) > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = days_from_civil(i64::from(year), i64::from(month), i64::from(day));
    Some(days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn iso_round_trip() {
        let t = parse_iso_basic("20150830T123600Z").unwrap();
        assert_eq!(t, 1_440_938_160);
        assert_eq!(format_iso_basic(t), "20150830T123600Z");
        assert_eq!(parse_iso_basic("19700101T000000Z"), Some(0));
        assert_eq!(parse_iso_basic("20000229T235959Z"), Some(951_868_799));
        assert_eq!(format_iso_basic(-1), "19691231T235959Z");
    }

    #[test]
    fn iso_rejects_malformed() {
        for bad in [
            "",
            "20150830T123600",
            "20150830 123600Z",
            "20150830T123600z",
            "2015083OT123600Z",
            "20151330T123600Z",
            "20150230T123600Z",
            "20190229T000000Z",
            "20150830T243600Z",
            "20150830T126000Z",
            "20150830T123660Z",
            "20150800T123600Z",
            "+0150830T123600Z",
            "20150830T123600Z ",
        ] {
            assert_eq!(parse_iso_basic(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rfc1123() {
        assert_eq!(
            parse_rfc1123("Sun, 30 Aug 2015 12:36:00 GMT"),
            parse_iso_basic("20150830T123600Z")
        );
        for bad in [
            "Sun, 30 Aug 2015 12:36:00 UTC",
            "Sun, 30 Foo 2015 12:36:00 GMT",
            "Sun 30 Aug 2015 12:36:00 GMT",
            "Sun, 31 Sep 2015 12:36:00 GMT",
            "Sunday, 30-Aug-15 12:36:00 GMT",
            "",
        ] {
            assert_eq!(parse_rfc1123(bad), None, "{bad:?}");
        }
    }
}
