//! Calls over time: how many calls were sent in each bucket of the measured
//! window, ok and failed, so a report can show a pod that joined late, was
//! drained or died, and a check can add them up bucket by bucket.
//!
//! Buckets start at a width fit for the run and double (merging pairs)
//! whenever a call lands beyond [`MAX_BUCKETS`], so a run of any length
//! keeps between half and all of them.

/// The most buckets a timeline holds.
pub const MAX_BUCKETS: usize = 60;

/// The width a run's timelines start at: a round width that fits a run of
/// `duration` in [`MAX_BUCKETS`], or 50 ms when the length is not known
/// (a request count), doubling as the run goes on.
pub fn initial_width_us(duration: Option<std::time::Duration>) -> u64 {
    let Some(duration) = duration else {
        return 50_000;
    };
    let needed = (duration.as_micros() as u64).div_ceil(MAX_BUCKETS as u64);
    // 1, 2 or 5 times a power of ten, at least 10 ms.
    let mut decade = 10_000u64;
    loop {
        for step in [1, 2, 5] {
            let width = decade.saturating_mul(step);
            if width >= needed {
                return width;
            }
        }
        if decade > u64::MAX / 100 {
            return u64::MAX / 10;
        }
        decade *= 10;
    }
}

/// Ok and failed calls per bucket; bucket `i` holds calls sent in
/// `[i × width, (i + 1) × width)` µs after the window's start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline {
    /// Width of a bucket in µs; 0 for a timeline that never counted.
    pub width_us: u64,
    pub ok: Vec<u64>,
    pub errors: Vec<u64>,
}

impl Timeline {
    /// An empty timeline whose buckets start `width_us` wide.
    pub fn new(width_us: u64) -> Timeline {
        Timeline {
            width_us: width_us.max(1),
            ok: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Counts one call sent `offset_us` after the window's start.
    pub fn count(&mut self, offset_us: u64, ok: bool) {
        if self.width_us == 0 {
            self.width_us = initial_width_us(None);
        }
        let mut i = (offset_us / self.width_us) as usize;
        while i >= MAX_BUCKETS {
            self.widen(self.width_us.saturating_mul(2));
            i = (offset_us / self.width_us) as usize;
        }
        if i >= self.ok.len() {
            self.ok.resize(i + 1, 0);
            self.errors.resize(i + 1, 0);
        }
        if ok {
            self.ok[i] += 1;
        } else {
            self.errors[i] += 1;
        }
    }

    /// Re-buckets into buckets `width_us` wide (not narrower than now):
    /// each old bucket goes whole into the new bucket holding its start.
    pub fn widen(&mut self, width_us: u64) {
        if width_us <= self.width_us || self.width_us == 0 {
            if self.width_us == 0 {
                self.width_us = width_us;
            }
            return;
        }
        let mut ok = Vec::new();
        let mut errors = Vec::new();
        for (i, (o, e)) in self.ok.iter().zip(&self.errors).enumerate() {
            let j = ((i as u64 * self.width_us) / width_us) as usize;
            if j >= ok.len() {
                ok.resize(j + 1, 0);
                errors.resize(j + 1, 0);
            }
            ok[j] += o;
            errors[j] += e;
        }
        *self = Timeline {
            width_us,
            ok,
            errors,
        };
    }

    /// Adds another timeline of the same window into this one, at the
    /// wider of the two widths.
    pub fn merge(&mut self, other: &Timeline) {
        if other.width_us == 0 {
            return;
        }
        let mut other = other.clone();
        let width = self.width_us.max(other.width_us);
        self.widen(width);
        other.widen(width);
        if other.ok.len() > self.ok.len() {
            self.ok.resize(other.ok.len(), 0);
            self.errors.resize(other.ok.len(), 0);
        }
        for (i, (o, e)) in other.ok.iter().zip(&other.errors).enumerate() {
            self.ok[i] += o;
            self.errors[i] += e;
        }
    }

    /// Calls in every bucket (ok and failed).
    pub fn calls(&self) -> impl Iterator<Item = u64> + '_ {
        self.ok.iter().zip(&self.errors).map(|(o, e)| o + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_fit_the_run_in_sixty_round_buckets() {
        use std::time::Duration;
        assert_eq!(initial_width_us(Some(Duration::from_secs(10))), 200_000);
        assert_eq!(initial_width_us(Some(Duration::from_secs(3))), 50_000);
        assert_eq!(initial_width_us(Some(Duration::from_secs(60))), 1_000_000);
        assert_eq!(initial_width_us(Some(Duration::from_millis(100))), 10_000);
        assert_eq!(initial_width_us(None), 50_000);
    }

    #[test]
    fn a_long_run_doubles_its_buckets_and_keeps_every_call() {
        let mut t = Timeline::new(50_000);
        for s in 0..100u64 {
            t.count(s * 1_000_000, s % 10 != 0);
        }
        assert!(t.ok.len() <= MAX_BUCKETS && t.ok.len() > MAX_BUCKETS / 2);
        assert_eq!(t.width_us, 3_200_000);
        assert_eq!(t.ok.iter().sum::<u64>(), 90);
        assert_eq!(t.errors.iter().sum::<u64>(), 10);
    }

    #[test]
    fn merging_aligns_widths_and_adds_bucket_by_bucket() {
        let mut a = Timeline::new(100);
        let mut b = Timeline::new(200);
        a.count(50, true);
        a.count(150, true);
        a.count(250, false);
        b.count(10, true);
        b.count(390, true);
        a.merge(&b);
        assert_eq!(a.width_us, 200);
        assert_eq!(a.ok, vec![3, 1]);
        assert_eq!(a.errors, vec![0, 1]);
        a.merge(&Timeline::default());
        assert_eq!(a.calls().sum::<u64>(), 5);
    }
}
