//! Pure-Rust text helpers of the codec: base64 and ISO-8601 pieces.

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648 §4).
pub fn b64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(B64[(n >> 18) as usize & 63] as char);
        out.push(B64[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 { B64[(n >> 6) as usize & 63] as char } else { '=' });
        out.push(if chunk.len() > 2 { B64[n as usize & 63] as char } else { '=' });
    }
    out
}

fn b64_val(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    } as u32)
}

/// Strict inverse of [`b64_encode`]: padding required, no whitespace.
pub fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    if s.len() & 3 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let quads = s.len() / 4;
    for (i, q) in s.chunks(4).enumerate() {
        let last = i + 1 == quads;
        let pad = q.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &q[..4 - pad] {
            n = (n << 6) | b64_val(c)?;
        }
        n <<= 6 * pad as u32;
        out.push((n >> 16) as u8);
        if pad < 2 {
            out.push((n >> 8) as u8);
        }
        if pad < 1 {
            out.push(n as u8);
        }
    }
    Some(out)
}

pub fn push_2(out: &mut String, n: u32) {
    out.push(char::from(b'0' + (n / 10 % 10) as u8));
    out.push(char::from(b'0' + (n % 10) as u8));
}

pub fn fmt_date(out: &mut String, y: i32, m: u8, d: u8) {
    use std::fmt::Write;
    let _ = write!(out, "{y:04}-{m:02}-{d:02}");
}

/// `HH:MM:SS[.ffffff]`, as Python's `isoformat()` writes it.
pub fn fmt_time(out: &mut String, h: u8, mi: u8, s: u8, us: u32) {
    push_2(out, h.into());
    out.push(':');
    push_2(out, mi.into());
    out.push(':');
    push_2(out, s.into());
    if us != 0 {
        use std::fmt::Write;
        let _ = write!(out, ".{us:06}");
    }
}

/// A UTC offset in microseconds as `+HH:MM[:SS[.ffffff]]`.
pub fn fmt_offset(out: &mut String, offset_us: i64) {
    out.push(if offset_us < 0 { '-' } else { '+' });
    let a = offset_us.unsigned_abs();
    let (us, secs) = ((a % 1_000_000) as u32, a / 1_000_000);
    push_2(out, (secs / 3600) as u32);
    out.push(':');
    push_2(out, (secs / 60 % 60) as u32);
    if secs % 60 != 0 || us != 0 {
        out.push(':');
        push_2(out, (secs % 60) as u32);
        if us != 0 {
            use std::fmt::Write;
            let _ = write!(out, ".{us:06}");
        }
    }
}

fn digits(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u32, |n, &c| n.checked_mul(10)?.checked_add(u32::from(c - b'0')))
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct Date {
    pub year: i32,
    pub month: u8,
    pub day: u8,
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct Clock {
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub micro: u32,
    /// UTC offset in microseconds, when the text carries one.
    pub offset_us: Option<i64>,
}

pub fn parse_date(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    Some(Date {
        year: digits(&b[0..4])? as i32,
        month: u8::try_from(digits(&b[5..7])?).ok()?,
        day: u8::try_from(digits(&b[8..10])?).ok()?,
    })
}

/// `HH:MM:SS` then an optional `.ffffff`; returns the parsed prefix and its length.
fn parse_hms(b: &[u8]) -> Option<(u8, u8, u8, u32, usize)> {
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let h = digits(&b[0..2])? as u8;
    let m = digits(&b[3..5])? as u8;
    let s = digits(&b[6..8])? as u8;
    if b.len() > 8 && b[8] == b'.' {
        if b.len() < 15 {
            return None;
        }
        return Some((h, m, s, digits(&b[9..15])?, 15));
    }
    Some((h, m, s, 0, 8))
}

pub fn parse_time(s: &str) -> Option<Clock> {
    let b = s.as_bytes();
    let (hour, minute, second, micro, used) = parse_hms(b)?;
    let rest = &b[used..];
    let offset_us = if rest.is_empty() {
        None
    } else {
        let sign: i64 = match rest[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let body = &rest[1..];
        let (h, m, secs, us) = if body.len() == 5 {
            if body[2] != b':' {
                return None;
            }
            (digits(&body[0..2])?, digits(&body[3..5])?, 0, 0)
        } else {
            let (h, m, s, us, used) = parse_hms(body)?;
            if used != body.len() {
                return None;
            }
            (u32::from(h), u32::from(m), u32::from(s), us)
        };
        let total = (i64::from(h) * 3600 + i64::from(m) * 60 + i64::from(secs)) * 1_000_000 + i64::from(us);
        Some(sign * total)
    };
    Some(Clock { hour, minute, second, micro, offset_us })
}

/// `YYYY-MM-DDTHH:MM:SS[.ffffff][±HH:MM[:SS[.ffffff]]]`.
pub fn parse_datetime(s: &str) -> Option<(Date, Clock)> {
    if s.len() < 11 || s.as_bytes()[10] != b'T' {
        return None;
    }
    Some((parse_date(s.get(..10)?)?, parse_time(s.get(11..)?)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_rejects_garbage() {
        for n in 0..40u8 {
            let data: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            let s = b64_encode(&data);
            assert_eq!(b64_decode(&s).as_deref(), Some(&data[..]));
        }
        assert_eq!(b64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(b64_encode(b"fo"), "Zm8=");
        assert_eq!(b64_decode("Zm9=v"), None);
        assert_eq!(b64_decode("Zm=v"), None);
        assert_eq!(b64_decode("Z==="), None);
        assert_eq!(b64_decode("Zm9*"), None);
    }

    #[test]
    fn datetimes_format_and_parse() {
        let mut s = String::new();
        fmt_date(&mut s, 2024, 2, 9);
        s.push('T');
        fmt_time(&mut s, 3, 4, 5, 60);
        fmt_offset(&mut s, -(5 * 3600 + 30 * 60) * 1_000_000 - 7);
        assert_eq!(s, "2024-02-09T03:04:05.000060-05:30:00.000007");
        let (d, c) = parse_datetime(&s).unwrap();
        assert_eq!(d, Date { year: 2024, month: 2, day: 9 });
        assert_eq!(c.micro, 60);
        assert_eq!(c.offset_us, Some(-(5 * 3600 + 30 * 60) * 1_000_000 - 7));
        assert_eq!(parse_time("23:59:00+01:00").unwrap().offset_us, Some(3_600_000_000));
        assert_eq!(parse_time("23:59:00").unwrap().offset_us, None);
        assert!(parse_time("23:59").is_none());
        assert!(parse_time("23:59:00Z").is_none());
        assert!(parse_datetime("2024-02-09 03:04:05").is_none());
    }
}
