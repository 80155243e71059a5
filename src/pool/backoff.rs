//! gRPC's connection backoff: when to try connecting again after a failed
//! attempt, and how long one attempt may take.
//!
//! The four numbers and the algorithm are those of gRPC's
//! connection-backoff spec (doc/connection-backoff.md in grpc/grpc), so a
//! dead pod is probed as a real gRPC client would probe it.

use std::time::Duration;

use tokio::time::Instant;

/// The spec's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffSettings {
    pub initial: Duration,
    pub multiplier: f64,
    /// Each delay is spread by up to ± this fraction of itself.
    pub jitter: f64,
    pub max: Duration,
    /// An attempt is never cut shorter than this.
    pub min_connect_timeout: Duration,
}

impl Default for BackoffSettings {
    /// gRPC's defaults: 1 s initial, ×1.6, jitter 0.2, 120 s max, 20 s
    /// minimum connect timeout.
    fn default() -> Self {
        BackoffSettings {
            initial: Duration::from_secs(1),
            multiplier: 1.6,
            jitter: 0.2,
            max: Duration::from_secs(120),
            min_connect_timeout: Duration::from_secs(20),
        }
    }
}

/// Where one member stands in the backoff sequence.
#[derive(Debug, Clone)]
pub struct Backoff {
    settings: BackoffSettings,
    current: Duration,
    /// Earliest time of the next attempt (the spec's `current_deadline`).
    next_attempt: Instant,
}

impl Backoff {
    /// A fresh sequence whose first attempt starts `now`.
    pub fn new(settings: BackoffSettings, now: Instant) -> Backoff {
        Backoff {
            settings,
            current: settings.initial,
            next_attempt: now + settings.initial,
        }
    }

    /// The deadline of an attempt that starts `now`: the backoff deadline,
    /// but never less than the minimum connect timeout.
    pub fn attempt_deadline(&self, now: Instant) -> Instant {
        self.next_attempt
            .max(now + self.settings.min_connect_timeout)
    }

    /// After a failed attempt: returns when to try again, and advances the
    /// sequence (delay × multiplier, capped, with random jitter).
    pub fn failed(&mut self) -> Instant {
        self.failed_with_jitter(rand::random_range(-1.0..=1.0))
    }

    /// [`Backoff::failed`] with the jitter given as a fraction in −1..=1 of
    /// the configured spread (for tests).
    pub fn failed_with_jitter(&mut self, unit: f64) -> Instant {
        let retry_at = self.next_attempt;
        let grown = self.current.as_secs_f64() * self.settings.multiplier;
        self.current = Duration::from_secs_f64(grown.min(self.settings.max.as_secs_f64()));
        let spread = self.settings.jitter * unit.clamp(-1.0, 1.0);
        let delay = self.current.as_secs_f64() * (1.0 + spread);
        self.next_attempt = retry_at + Duration::from_secs_f64(delay.max(0.0));
        retry_at
    }

    /// After a successful connection: the next failure starts the sequence
    /// from the initial delay again.
    pub fn reset(&mut self, now: Instant) {
        *self = Backoff::new(self.settings, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(d: Duration) -> f64 {
        (d.as_secs_f64() * 1000.0).round() / 1000.0
    }

    #[tokio::test(start_paused = true)]
    async fn delays_follow_grpc_spec_without_jitter() {
        let start = Instant::now();
        let mut backoff = Backoff::new(BackoffSettings::default(), start);
        let mut attempts = vec![];
        for _ in 0..14 {
            let retry_at = backoff.failed_with_jitter(0.0);
            tokio::time::sleep_until(retry_at).await;
            attempts.push(secs(Instant::now() - start));
        }
        let gaps: Vec<f64> = std::iter::once(attempts[0])
            .chain(
                attempts
                    .windows(2)
                    .map(|w| ((w[1] - w[0]) * 1000.0).round() / 1000.0),
            )
            .collect();
        assert_eq!(&gaps[..5], &[1.0, 1.6, 2.56, 4.096, 6.554]);
        // Capped at 120 s.
        assert_eq!(gaps[12], 120.0);
        assert_eq!(gaps[13], 120.0);
    }

    #[tokio::test(start_paused = true)]
    async fn jitter_stays_within_a_fifth() {
        let start = Instant::now();
        let mut backoff = Backoff::new(BackoffSettings::default(), start);
        let mut previous = backoff.failed();
        let mut expected = 1.6;
        for _ in 0..20 {
            let next = backoff.failed();
            let gap = (next - previous).as_secs_f64();
            assert!(
                gap >= expected * 0.8 - 1e-6 && gap <= expected * 1.2 + 1e-6,
                "{gap} vs {expected}"
            );
            previous = next;
            expected = (expected * 1.6_f64).min(120.0);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_gets_at_least_the_minimum_connect_timeout() {
        let now = Instant::now();
        let backoff = Backoff::new(BackoffSettings::default(), now);
        assert_eq!(backoff.attempt_deadline(now) - now, Duration::from_secs(20));
    }

    #[tokio::test(start_paused = true)]
    async fn success_resets_the_sequence() {
        let start = Instant::now();
        let mut backoff = Backoff::new(BackoffSettings::default(), start);
        for _ in 0..5 {
            let at = backoff.failed_with_jitter(0.0);
            tokio::time::sleep_until(at).await;
        }
        let now = Instant::now();
        backoff.reset(now);
        assert_eq!(
            backoff.failed_with_jitter(0.0) - now,
            Duration::from_secs(1)
        );
    }
}
