//! The typed values of conditions, parsed from policy and request text: booleans, numbers,
//! dates (ISO 8601 and epoch), base64 and IP addresses and CIDR blocks.

use std::net::IpAddr;

/// `true`/`false`, ASCII case-insensitive.
pub(super) fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// A decimal number: `[+-]digits[.digits][e[+-]digits]` (integers and floats; no `inf`/`NaN`).
pub(super) fn parse_number(s: &str) -> Option<f64> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match body.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (body, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    if !(mantissa_ok && exponent_ok) {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// A date: epoch seconds (`1700000000`, `1700000000.5`) or ISO 8601 (`2024-01-31`,
/// `2024-01-31T12:00Z`, `2024-01-31T12:00:00.123+02:00`, `20240131T120000Z`). Returns
/// epoch milliseconds. A time without a zone is UTC. An 8-digit string is epoch seconds.
pub(super) fn parse_date(s: &str) -> Option<i64> {
    parse_epoch(s).or_else(|| parse_iso8601(s))
}

fn parse_epoch(s: &str) -> Option<i64> {
    let (negative, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty()
        || int.len() > 15
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let secs: i64 = int.parse().ok()?;
    let millis = frac_millis(frac)?;
    let total = secs.checked_mul(1000)?.checked_add(millis)?;
    Some(if negative { -total } else { total })
}

/// The first three digits of a fraction as milliseconds.
fn frac_millis(frac: &str) -> Option<i64> {
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut ms = 0i64;
    let mut digits = frac.bytes();
    for _ in 0..3 {
        ms = ms * 10 + i64::from(digits.next().map_or(0, |b| b - b'0'));
    }
    Some(ms)
}

struct Cursor<'a> {
    rest: &'a [u8],
}

impl Cursor<'_> {
    fn digits(&mut self, n: usize) -> Option<i64> {
        let (head, tail) = self.rest.split_at_checked(n)?;
        if !head.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.rest = tail;
        Some(
            head.iter()
                .fold(0i64, |acc, b| acc * 10 + i64::from(b - b'0')),
        )
    }

    fn eat(&mut self, c: u8) -> bool {
        match self.rest.split_first() {
            Some((&first, tail)) if first == c => {
                self.rest = tail;
                true
            }
            _ => false,
        }
    }

    fn eat_any(&mut self, cs: &[u8]) -> Option<u8> {
        let (&first, tail) = self.rest.split_first()?;
        if cs.contains(&first) {
            self.rest = tail;
            Some(first)
        } else {
            None
        }
    }
}

fn parse_iso8601(s: &str) -> Option<i64> {
    let mut c = Cursor { rest: s.as_bytes() };
    let year = c.digits(4)?;
    let extended = c.eat(b'-');
    let month = c.digits(2)?;
    if extended && !c.eat(b'-') {
        return None;
    }
    let day = c.digits(2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut seconds = 0i64;
    let mut millis = 0i64;
    if c.eat_any(b"Tt").is_some() {
        let hour = c.digits(2)?;
        let colon = c.eat(b':');
        let minute = c.digits(2)?;
        let mut second = 0;
        let more = if colon {
            c.eat(b':')
        } else {
            c.rest.first().is_some_and(u8::is_ascii_digit)
        };
        if more {
            second = c.digits(2)?;
            if c.eat_any(b".,").is_some() {
                let len = c.rest.iter().take_while(|b| b.is_ascii_digit()).count();
                let (frac, tail) = c.rest.split_at_checked(len)?;
                if frac.is_empty() {
                    return None;
                }
                millis = frac_millis(std::str::from_utf8(frac).ok()?)?;
                c.rest = tail;
            }
        }
        if hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        seconds = hour * 3600 + minute * 60 + second;
        match c.eat_any(b"Zz+-") {
            None | Some(b'Z' | b'z') => {}
            Some(sign) => {
                let oh = c.digits(2)?;
                let om = if c.rest.is_empty() {
                    0
                } else {
                    c.eat(b':');
                    c.digits(2)?
                };
                if oh > 23 || om > 59 {
                    return None;
                }
                let offset = oh * 3600 + om * 60;
                seconds += if sign == b'+' { -offset } else { offset };
            }
        }
    } else if !extended {
        // A bare basic-format date (YYYYMMDD) is read as epoch seconds by parse_epoch.
        return None;
    }
    if !c.rest.is_empty() {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + seconds) * 1000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Standard base64 (RFC 4648 alphabet; `=` padding optional; canonical encodings only).
pub(super) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let body = s
        .strip_suffix("==")
        .or_else(|| s.strip_suffix('='))
        .unwrap_or(s);
    if body.len() != s.len() && s.len() & 3 != 0 {
        return None;
    }
    if body.len() & 3 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0u32;
    for b in body.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    // Canonical encodings only: the unused low bits of the last character must be zero.
    if acc & ((1 << bits) - 1) != 0 {
        return None;
    }
    Some(out)
}

/// An IPv4 or IPv6 network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `a.b.c.d`, `a.b.c.d/n`, `x::y`, `x::y/n`. Host bits are cleared.
    pub(super) fn parse(s: &str) -> Option<Cidr> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => {
                if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                (a, Some(p.parse::<u8>().ok()?))
            }
            None => (s, None),
        };
        let ip: IpAddr = addr.parse().ok()?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return None;
        }
        let network = match ip {
            IpAddr::V4(v4) => IpAddr::V4((u32::from(v4) & mask32(prefix)).into()),
            IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & mask128(prefix)).into()),
        };
        Some(Cidr { network, prefix })
    }

    pub(super) fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(ip) & mask32(self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(ip) & mask128(self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(prefix.min(128)))
        .unwrap_or(0)
}

/// A request IP; IPv4-mapped IPv6 addresses are treated as IPv4.
pub(super) fn request_ip(s: &str) -> Option<IpAddr> {
    match s.parse::<IpAddr>().ok()? {
        IpAddr::V6(v6) => Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)),
        v4 => Some(v4),
    }
}
