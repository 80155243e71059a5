//! `pick_first`: every call to the first member, which is what a client with
//! a single connection does.

use super::Picker;

/// Always the first member.
pub struct PickFirst;

impl Picker for PickFirst {
    fn pick(&self, _len: usize, _load: &dyn Fn(usize) -> usize) -> usize {
        0
    }
}
