//! Checkpoint ids and timestamps: time-ordered UUIDv6-style ids whose string order equals
//! creation order within a process, the ISO-8601 UTC `ts` string, and the small non-crypto
//! random source the ids and channel versions draw from.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// 100-ns intervals between the UUID epoch (1582-10-15) and the Unix epoch.
const UUID_EPOCH_OFFSET: u64 = 0x01B2_1DD2_1381_4000;

/// Hands out strictly increasing 100-ns timestamps even when the clock stalls or steps back:
/// a repeated or older reading is bumped to one past the last one issued.
pub struct IdGenerator {
    last: AtomicU64,
}

impl IdGenerator {
    pub const fn new() -> Self {
        IdGenerator {
            last: AtomicU64::new(0),
        }
    }

    /// The next timestamp, given the clock's reading in 100-ns intervals since the UUID epoch.
    pub fn next_timestamp(&self, now: u64) -> u64 {
        let prev = self
            .last
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |prev| {
                Some(now.max(prev + 1))
            })
            .unwrap_or_else(|prev| prev);
        now.max(prev + 1)
    }

    /// A new id from this generator's sequence of timestamps.
    pub fn next_id(&self, now: u64) -> String {
        let ts = self.next_timestamp(now);
        let r = random_u64();
        format_uuid6(ts, (r >> 48) as u16, r)
    }
}

impl Default for IdGenerator {
    fn default() -> Self {
        Self::new()
    }
}

static GLOBAL_IDS: IdGenerator = IdGenerator::new();

/// A new checkpoint id, e.g. `1f1e8d3a-16e4-6711-bfff-6f4219872623`: greater (as a string) than
/// every id this process made before.
pub fn checkpoint_id() -> String {
    GLOBAL_IDS.next_id(uuid_now())
}

/// The clock as 100-ns intervals since the UUID epoch.
pub fn uuid_now() -> u64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_nanos() / 100) as u64 + UUID_EPOCH_OFFSET
}

/// Lays out a 60-bit timestamp most significant bits first, as UUIDv6 does, so that fixed-width
/// lowercase hex compares like the timestamp. The clock sequence and node only break ties
/// between processes.
pub fn format_uuid6(timestamp: u64, clock_seq: u16, node: u64) -> String {
    let ts = timestamp & 0x0FFF_FFFF_FFFF_FFFF;
    let time_high = ts >> 28;
    let time_mid = (ts >> 12) & 0xFFFF;
    let time_low_and_version = 0x6000 | (ts & 0x0FFF);
    let clock_seq_and_variant = 0x8000 | u64::from(clock_seq & 0x3FFF);
    let mut out = String::with_capacity(36);
    push_hex(&mut out, time_high, 8);
    out.push('-');
    push_hex(&mut out, time_mid, 4);
    out.push('-');
    push_hex(&mut out, time_low_and_version, 4);
    out.push('-');
    push_hex(&mut out, clock_seq_and_variant, 4);
    out.push('-');
    push_hex(&mut out, node & 0xFFFF_FFFF_FFFF, 12);
    out
}

/// Appends the low `width` hex digits of `n`, lowercase, zero-padded (`format!` is several
/// times slower, and ids and versions are made at every step).
fn push_hex(out: &mut String, n: u64, width: usize) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..width).rev() {
        out.push(char::from(DIGITS[((n >> (shift * 4)) & 0xF) as usize]));
    }
}

/// Appends `n` in decimal, zero-padded to `width` digits (more when it needs more).
pub(crate) fn push_decimal(out: &mut String, n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut i = digits.len();
    let mut rest = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let len = digits.len() - i;
    for _ in len..width {
        out.push('0');
    }
    // ASCII digits only.
    out.push_str(std::str::from_utf8(&digits[i..]).unwrap_or_default());
}

/// The 100-ns timestamp (since the UUID epoch) inside a version-6 id, `None` for anything else.
pub fn id_timestamp(id: &str) -> Option<u64> {
    let b = id.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let hex: String = id.chars().filter(|&c| c != '-').collect();
    let n = u128::from_str_radix(&hex, 16).ok()?;
    if (n >> 76) & 0xF != 6 {
        return None;
    }
    let high_mid = ((n >> 80) & 0xFFFF_FFFF_FFFF) as u64;
    let low = ((n >> 64) & 0x0FFF) as u64;
    Some(high_mid << 12 | low)
}

/// The current time as ISO-8601 UTC with microseconds, in the shape Python's
/// `datetime.now(timezone.utc).isoformat()` gives: `2025-01-31T12:00:00.123456+00:00`.
pub fn now_iso8601() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format_iso8601(d.as_secs() as i64, d.subsec_micros())
}

/// Formats seconds since the Unix epoch plus microseconds as ISO-8601 UTC.
pub fn format_iso8601(unix_secs: i64, micros: u32) -> String {
    let days = unix_secs.div_euclid(86_400);
    let secs_of_day = unix_secs.rem_euclid(86_400) as u64;
    let (y, m, d) = civil_from_days(days);
    let mut out = String::with_capacity(32);
    if y < 0 {
        out.push('-');
    }
    push_decimal(&mut out, y.unsigned_abs(), 4);
    out.push('-');
    push_decimal(&mut out, u64::from(m), 2);
    out.push('-');
    push_decimal(&mut out, u64::from(d), 2);
    out.push('T');
    push_decimal(&mut out, secs_of_day / 3600, 2);
    out.push(':');
    push_decimal(&mut out, secs_of_day / 60 % 60, 2);
    out.push(':');
    push_decimal(&mut out, secs_of_day % 60, 2);
    out.push('.');
    push_decimal(&mut out, u64::from(micros), 6);
    out.push_str("+00:00");
    out
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

thread_local! {
    static RNG: Cell<u64> = Cell::new(seed());
}

/// Each `RandomState` is randomly keyed by std, which is enough entropy to make ids from two
/// processes unlikely to collide without pulling in an RNG crate.
fn seed() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(uuid_now());
    h.finish() | 1
}

/// splitmix64 over a per-thread state: fast and uniform, not for secrets.
pub(crate) fn random_u64() -> u64 {
    RNG.with(|s| {
        let x = s.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        s.set(x);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_lower_hex_uuid(id: &str) -> bool {
        id.len() == 36
            && id.char_indices().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => c == '-',
                _ => c.is_ascii_digit() || ('a'..='f').contains(&c),
            })
    }

    #[test]
    fn ids_in_a_tight_loop_strictly_increase() {
        let ids: Vec<String> = (0..20_000).map(|_| checkpoint_id()).collect();
        for w in ids.windows(2) {
            assert!(w[0] < w[1], "{} !< {}", w[0], w[1]);
        }
        let stamps: Vec<u64> = ids.iter().map(|id| id_timestamp(id).unwrap()).collect();
        assert!(stamps.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn id_has_uuid6_layout() {
        let id = checkpoint_id();
        assert!(is_lower_hex_uuid(&id), "{id}");
        assert_eq!(&id[14..15], "6", "version nibble in {id}");
        assert!("89ab".contains(&id[19..20]), "variant in {id}");
        let ts = id_timestamp(&id).unwrap();
        let now = uuid_now();
        // Within a minute of now: the timestamp really is the clock, not a counter.
        assert!(now.abs_diff(ts) < 600_000_000, "{ts} vs {now}");
    }

    #[test]
    fn format_matches_known_langgraph_id() {
        let id = "1f1e8d3a-16e4-6711-bfff-6f4219872623";
        let ts = id_timestamp(id).unwrap();
        assert_eq!(format_uuid6(ts, 0x3fff, 0x6f42_1987_2623), id);
        assert_eq!(id_timestamp("not-an-id"), None);
        assert_eq!(id_timestamp("1f1e8d3a-16e4-4711-bfff-6f4219872623"), None);
    }

    #[test]
    fn stalled_or_backward_clock_still_increases() {
        let g = IdGenerator::new();
        let a = g.next_timestamp(1_000);
        let b = g.next_timestamp(1_000);
        let c = g.next_timestamp(500);
        let d = g.next_timestamp(2_000);
        assert_eq!((a, b, c, d), (1_000, 1_001, 1_002, 2_000));
        let x = g.next_id(10);
        let y = g.next_id(5);
        assert!(x < y);
    }

    #[test]
    fn string_order_equals_time_order_across_digit_boundaries() {
        // Timestamps chosen so hex digits roll over in every field; the clock sequence and node
        // are adversarial (larger for the earlier id) to show they never decide the order.
        let stamps = [
            0x0000_0000_0000_0FFFu64,
            0x0000_0000_0000_1000,
            0x0000_0000_0FFF_FFFF,
            0x0000_0000_1000_0000,
            0x0FFF_FFFF_FFFF_FFFE,
            0x0FFF_FFFF_FFFF_FFFF,
        ];
        let ids: Vec<String> = stamps
            .iter()
            .enumerate()
            .map(|(i, &t)| format_uuid6(t, 0x3FFF - i as u16, u64::MAX - i as u64))
            .collect();
        for w in ids.windows(2) {
            assert!(w[0] < w[1], "{} !< {}", w[0], w[1]);
        }
        for (id, &t) in ids.iter().zip(&stamps) {
            assert_eq!(id_timestamp(id), Some(t));
        }
    }

    #[test]
    fn ids_from_many_threads_are_unique() {
        let handles: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| (0..2_000).map(|_| checkpoint_id()).collect::<Vec<_>>()))
            .collect();
        let mut all: Vec<String> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        let n = all.len();
        all.sort();
        all.dedup_by(|a, b| id_timestamp(a) == id_timestamp(b));
        assert_eq!(all.len(), n, "two ids shared a timestamp");
    }

    #[test]
    fn iso8601_formatting() {
        assert_eq!(format_iso8601(0, 0), "1970-01-01T00:00:00.000000+00:00");
        assert_eq!(
            format_iso8601(951_827_696, 42),
            "2000-02-29T12:34:56.000042+00:00"
        );
        assert_eq!(
            format_iso8601(1_735_689_599, 999_999),
            "2024-12-31T23:59:59.999999+00:00"
        );
        assert_eq!(format_iso8601(-1, 0), "1969-12-31T23:59:59.000000+00:00");
        let now = now_iso8601();
        assert_eq!(now.len(), 32, "{now}");
        assert!(
            now.ends_with("+00:00") && now.as_bytes()[10] == b'T',
            "{now}"
        );
    }
}
