//! FILETIME and duration formatting (no calendar crate needed for UTC).

/// 100 ns ticks between 1601-01-01 and 1970-01-01.
const EPOCH_DIFF: u64 = 116_444_736_000_000_000;

/// Formats a FILETIME as `YYYY-MM-DD HH:MM:SS UTC`; `None` before 1970 or if absurd.
pub fn filetime_utc(ft: u64) -> Option<String> {
    let secs = ft.checked_sub(EPOCH_DIFF)? / 10_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    if y > 9999 {
        return None;
    }
    Some(format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    ))
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Formats seconds as `500 d 06:59:57`.
pub fn duration(secs: u64) -> String {
    format!(
        "{} d {:02}:{:02}:{:02}",
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// A short human age: `45 s`, `12 min`, `3.5 h`, `2.1 d`.
pub fn age(secs: u64) -> String {
    match secs {
        0..=119 => format!("{secs} s"),
        120..=7199 => format!("{} min", secs / 60),
        7200..=172_799 => format!("{:.1} h", secs as f64 / 3600.0),
        _ => format!("{:.1} d", secs as f64 / 86_400.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(filetime_utc(EPOCH_DIFF).unwrap(), "1970-01-01 00:00:00 UTC");
        // 2020-02-29 12:34:56 UTC = 1582979696 s since the Unix epoch.
        assert_eq!(
            filetime_utc(EPOCH_DIFF + 1_582_979_696 * 10_000_000).unwrap(),
            "2020-02-29 12:34:56 UTC"
        );
        assert_eq!(filetime_utc(0), None);
    }

    #[test]
    fn durations() {
        assert_eq!(duration(43_225_197), "500 d 06:59:57");
        assert_eq!(age(30), "30 s");
        assert_eq!(age(600), "10 min");
        assert_eq!(age(86_400 * 3), "3.0 d");
    }
}
