//! Durations on the command line, as Go's `time.ParseDuration` writes them (the upstream
//! webhook's and agent's flags are Go durations).

use std::time::Duration;

/// A Go-style duration: decimal numbers each followed by a unit (`h`, `m`, `s`, `ms`), in
/// sequence (`1h30m`, `1.5s`, `100ms`), or a bare `0`.
pub fn parse_go(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let bad = |why: &str| format!("{s:?} is not a duration ({why}; e.g. 100ms, 1.5s, 1h30m)");
    if s.is_empty() {
        return Err(bad("empty"));
    }
    let mut total = 0.0_f64;
    let mut rest = s;
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(n_end);
        let n: f64 = num
            .parse()
            .map_err(|_| bad("a number is missing or malformed"))?;
        let u_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(u_end);
        let secs = match unit {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "" => return Err(bad("a unit is missing")),
            _ => return Err(bad("the unit must be h, m, s or ms")),
        };
        total += n * secs;
        rest = tail;
    }
    Duration::try_from_secs_f64(total).map_err(|e| bad(&e.to_string()))
}

/// Whole seconds (`10800`), or a Go-style duration ([`parse_go`]).
pub fn parse_secs_or_go(s: &str) -> Result<Duration, String> {
    match s.trim().parse::<u64>() {
        Ok(secs) => Ok(Duration::from_secs(secs)),
        Err(_) => parse_go(s),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_go("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse_go("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_go("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_go("3h").unwrap(), Duration::from_secs(10800));
        assert_eq!(parse_go("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_go("1m30s").unwrap(), Duration::from_secs(90));
        for bad in [
            "", "ms", "10", "-1s", "1..2s", "abc", "3x", "3h5", "1hm", "1 s",
        ] {
            assert!(parse_go(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn seconds_or_go_durations() {
        assert_eq!(
            parse_secs_or_go("10800").unwrap(),
            Duration::from_secs(10800)
        );
        assert_eq!(parse_secs_or_go("3h").unwrap(), Duration::from_secs(10800));
        assert_eq!(
            parse_secs_or_go("1h30m").unwrap(),
            Duration::from_secs(5400)
        );
        assert!(parse_secs_or_go("3x").is_err());
        assert!(parse_secs_or_go("3h5").is_err());
    }
}
