//! Channel versions in the format LangGraph's bundled savers use,
//! `{counter:032}.{random:016}` with Python's `random.random()` as the fraction, which reads
//! `{counter:032}.0.{digits:016}`: fixed width, so string order is counter order, and the
//! fraction keeps two branches forked from one checkpoint from reusing each other's blob keys.
//! [`format_version`] is the one place that spells a version; the engine, the native memory
//! saver and the Python savers' `get_next_version` all go through it.

use crate::id::{push_decimal, random_u64};
use crate::saver::SaverError;

const FRACTION_MODULUS: u64 = 10_000_000_000_000_000;

/// The counter of a version: the part before the first dot, or the whole string when there is
/// no dot (LangGraph's integer versions, seen through a string).
pub fn version_counter(version: &str) -> Option<u64> {
    let head = version.split('.').next().unwrap_or(version);
    if head.is_empty() || !head.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    head.parse().ok()
}

/// The version after `current` (`None` for a channel never written).
pub fn next_version(current: Option<&str>) -> Result<String, SaverError> {
    let n = match current {
        None => 0,
        Some(v) => version_counter(v).ok_or_else(|| SaverError::InvalidVersion(v.to_owned()))?,
    };
    let next = n
        .checked_add(1)
        .ok_or_else(|| SaverError::InvalidVersion(format!("{} has no successor", n)))?;
    Ok(format_version(next, random_u64()))
}

/// The spelling of version `counter`; the fraction's digits come from `fraction` (a random or
/// well-mixed number: only its value modulo 10^16 is used).
pub fn format_version(counter: u64, fraction: u64) -> String {
    let mut out = String::with_capacity(51);
    push_decimal(&mut out, counter, 32);
    out.push_str(".0.");
    push_decimal(&mut out, fraction % FRACTION_MODULUS, 16);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_is_langgraphs_32_digits_dot_a_fraction() {
        let v = next_version(None).unwrap();
        assert_eq!(v.len(), 51, "{v}");
        let (head, tail) = v.split_once('.').unwrap();
        assert_eq!(head, format!("{:032}", 1));
        let digits = tail.strip_prefix("0.").unwrap();
        assert_eq!(digits.len(), 16);
        assert!(digits.bytes().all(|b| b.is_ascii_digit()), "{v}");
        for (counter, fraction) in [(7, 12), (0, 0), (u64::MAX, u64::MAX), (10_u64.pow(19), 10_u64.pow(16) - 1)] {
            let expected = format!("{counter:032}.0.{:016}", fraction % FRACTION_MODULUS);
            assert_eq!(format_version(counter, fraction), expected);
        }
    }

    #[test]
    fn versions_increase_as_strings_and_counters() {
        let mut v = next_version(None).unwrap();
        for expected in 2..=120u64 {
            let n = next_version(Some(&v)).unwrap();
            assert!(n > v, "{n} !> {v}");
            assert_eq!(version_counter(&n), Some(expected));
            v = n;
        }
    }

    #[test]
    fn reads_langgraph_and_integer_versions() {
        // LangGraph formats random.random() with `:016`, which yields "0.<digits>".
        let lg = "00000000000000000000000000000007.0.6487516251786376";
        assert_eq!(version_counter(lg), Some(7));
        assert_eq!(version_counter("12"), Some(12));
        assert_eq!(
            version_counter(&next_version(Some("12")).unwrap()),
            Some(13)
        );
    }

    #[test]
    fn rejects_versions_without_a_counter() {
        assert_eq!(version_counter(""), None);
        assert_eq!(version_counter("abc.1"), None);
        assert_eq!(version_counter("-3"), None);
        assert!(matches!(
            next_version(Some("x.5")),
            Err(SaverError::InvalidVersion(v)) if v == "x.5"
        ));
        assert!(next_version(Some(&u64::MAX.to_string())).is_err());
    }

    #[test]
    fn random_tails_differ() {
        let a = next_version(Some("1")).unwrap();
        let b = next_version(Some("1")).unwrap();
        assert_ne!(a, b);
    }
}
