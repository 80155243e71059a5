//! `round_robin`: each member in turn, from a random start (as grpc-go does,
//! so that many clients do not all hit the first member first).

use std::sync::atomic::{AtomicUsize, Ordering};

use super::Picker;

/// Cycles through members in order.
pub struct RoundRobin {
    next: AtomicUsize,
}

impl RoundRobin {
    /// Starts at a random position.
    pub fn new() -> RoundRobin {
        RoundRobin::starting_at(rand::random::<u32>() as usize)
    }

    /// Starts at a given position (for tests).
    pub fn starting_at(position: usize) -> RoundRobin {
        RoundRobin {
            next: AtomicUsize::new(position),
        }
    }
}

impl Default for RoundRobin {
    fn default() -> Self {
        RoundRobin::new()
    }
}

impl Picker for RoundRobin {
    fn pick(&self, len: usize, _load: &dyn Fn(usize) -> usize) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed) % len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_splits_exactly() {
        let picker = RoundRobin::new();
        let mut counts = [0usize; 7];
        for _ in 0..7 * 1000 {
            counts[picker.pick(7, &|_| 0)] += 1;
        }
        assert!(counts.iter().all(|&c| c == 1000), "{counts:?}");
    }
}
