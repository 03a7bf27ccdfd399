//! Deterministic task ids: the same seed (a checkpoint id), step and task path always give the
//! same id, which is how a resumed run recognises the tasks whose writes were already saved.

/// FNV-1a over `parts`, run twice with different offsets to fill 128 bits.
fn hash128(parts: &[&[u8]]) -> u128 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut lo: u64 = 0xcbf2_9ce4_8422_2325;
    let mut hi: u64 = 0x6c62_272e_07bb_0142;
    for part in parts {
        for &b in part.iter().chain(std::iter::once(&0xffu8)) {
            lo = (lo ^ u64::from(b)).wrapping_mul(PRIME);
            hi = (hi ^ u64::from(b.rotate_left(3))).wrapping_mul(PRIME).rotate_left(5);
        }
    }
    (u128::from(hi) << 64) | u128::from(lo)
}

/// A UUID-shaped id for the task at `path` of `step`, derived from `seed`.
pub fn task_id(seed: &str, step: i64, path: &str) -> String {
    let h = hash128(&[seed.as_bytes(), &step.to_le_bytes(), path.as_bytes()]);
    let hex = format!("{h:032x}");
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = task_id("seed", 1, "pull:a");
        assert_eq!(a, task_id("seed", 1, "pull:a"));
        assert_eq!(a.len(), 36);
        assert_ne!(a, task_id("seed", 2, "pull:a"));
        assert_ne!(a, task_id("seed", 1, "pull:b"));
        assert_ne!(a, task_id("other", 1, "pull:a"));
        assert_ne!(task_id("ab", 1, "c"), task_id("a", 1, "bc"), "parts are delimited");
    }
}
