//! Retry with exponential backoff, with LangGraph's `RetryPolicy` defaults.

use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Seconds before the first retry.
    pub initial_interval: f64,
    pub backoff_factor: f64,
    /// Upper bound of the interval, in seconds, before jitter.
    pub max_interval: f64,
    /// Attempts in all, the first one included.
    pub max_attempts: u32,
    /// Add up to one second, uniformly drawn, to each interval.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_interval: 0.5,
            backoff_factor: 2.0,
            max_interval: 128.0,
            max_attempts: 3,
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// How long to wait after failed attempt number `attempt` (1-based), or `None` when no
    /// attempt is left. `unit_random` is a sample in [0, 1) used for jitter.
    pub fn delay_after(&self, attempt: u32, unit_random: f64) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let base = (self.initial_interval * self.backoff_factor.powi(exponent)).min(self.max_interval);
        let jitter = if self.jitter { unit_random.clamp(0.0, 1.0) } else { 0.0 };
        Some(Duration::from_secs_f64((base + jitter).max(0.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_exponentially_up_to_the_cap() {
        let p = RetryPolicy { max_attempts: 10, jitter: false, max_interval: 3.0, ..Default::default() };
        let delays: Vec<f64> = (1..10).map(|a| p.delay_after(a, 0.0).unwrap().as_secs_f64()).collect();
        assert_eq!(delays[..4], [0.5, 1.0, 2.0, 3.0]);
        assert!(delays.iter().all(|d| *d <= 3.0));
        assert_eq!(p.delay_after(10, 0.0), None);
    }

    #[test]
    fn jitter_adds_the_sample() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay_after(1, 0.25), Some(Duration::from_secs_f64(0.75)));
        assert_eq!(p.delay_after(3, 0.25), None, "three attempts in all");
    }
}
