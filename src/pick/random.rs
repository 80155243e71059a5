//! `random`: a uniformly random member per call.

use rand::Rng;

use super::Picker;

/// Uniform choice per call.
pub struct Random;

impl Picker for Random {
    fn pick(&self, len: usize, _load: &dyn Fn(usize) -> usize) -> usize {
        rand::rng().random_range(0..len)
    }
}
