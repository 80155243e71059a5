//! When each measured call may start: a request budget, a deadline, or an
//! open-loop timetable.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// When a run ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    /// After exactly this many recorded calls.
    Requests(u64),
    /// After this long (no call starts after the deadline).
    Duration(Duration),
}

/// Hands out slots to workers; shared by all of them.
#[derive(Debug)]
pub struct Schedule {
    stop: Stop,
    rate: Option<f64>,
    start: Instant,
    issued: AtomicU64,
}

impl Schedule {
    pub fn new(stop: Stop, rate: Option<f64>, start: Instant) -> Schedule {
        Schedule {
            stop,
            rate: rate.filter(|r| *r > 0.0),
            start,
            issued: AtomicU64::new(0),
        }
    }

    /// The next slot: `None` when the run is over, `Some(None)` for "now"
    /// (closed loop), `Some(Some(t))` for "at t" (open loop). A run with a
    /// duration is over at its end, even when an open loop fell behind its
    /// timetable: the slots it did not reach are [`Schedule::unsent`].
    pub fn next_slot(&self) -> Option<Option<Instant>> {
        if let Stop::Duration(duration) = self.stop
            && Instant::now() >= self.start + duration
        {
            return None;
        }
        let index = self.issued.fetch_add(1, Ordering::Relaxed);
        if let Stop::Requests(n) = self.stop
            && index >= n
        {
            return None;
        }
        let at = self
            .rate
            .map(|rate| self.start + Duration::from_secs_f64(index as f64 / rate));
        if let Stop::Duration(duration) = self.stop {
            let when = at.unwrap_or_else(Instant::now);
            if when >= self.start + duration {
                return None;
            }
        }
        Some(at)
    }

    /// Open loop with a duration: the slots due before the end that no
    /// worker took (the client fell behind the rate asked).
    pub fn unsent(&self, sent: u64) -> u64 {
        match (self.stop, self.rate) {
            (Stop::Duration(duration), Some(rate)) => {
                // Slot i is due at i / rate; those due before the end.
                let due = (duration.as_secs_f64() * rate).ceil() as u64;
                due.saturating_sub(sent)
            }
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_budget_is_exact() {
        let schedule = Schedule::new(Stop::Requests(5), None, Instant::now());
        let slots = std::iter::from_fn(|| schedule.next_slot())
            .take(100)
            .count();
        assert_eq!(slots, 5);
    }

    #[test]
    fn a_duration_ends_the_timetable_even_when_behind() {
        let start = Instant::now() - Duration::from_secs(5);
        let schedule = Schedule::new(
            Stop::Duration(Duration::from_secs(3)),
            Some(100_000.0),
            start,
        );
        assert_eq!(schedule.next_slot(), None);
        assert_eq!(schedule.unsent(1000), 299_000);
    }

    #[test]
    fn open_loop_slots_are_evenly_spaced() {
        let start = Instant::now();
        let schedule = Schedule::new(Stop::Duration(Duration::from_secs(1)), Some(10.0), start);
        let slots: Vec<_> = std::iter::from_fn(|| schedule.next_slot())
            .take(100)
            .collect();
        assert_eq!(slots.len(), 10);
        for (i, slot) in slots.iter().enumerate() {
            let at = slot.expect("open loop slots have a time");
            assert_eq!(
                at.duration_since(start),
                Duration::from_millis(100 * i as u64)
            );
        }
    }
}
