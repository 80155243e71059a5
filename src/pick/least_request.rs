//! `least_request`: power of two choices on in-flight calls.

use rand::Rng;

use super::Picker;

/// Picks two distinct random members and sends to the one with fewer calls
/// in flight.
pub struct LeastRequest;

impl Picker for LeastRequest {
    fn pick(&self, len: usize, load: &dyn Fn(usize) -> usize) -> usize {
        if len == 1 {
            return 0;
        }
        let mut rng = rand::rng();
        let a = rng.random_range(0..len);
        // A second index distinct from the first, still uniform.
        let b = (a + rng.random_range(1..len)) % len;
        choose_less_loaded(a, b, load)
    }
}

/// Of two candidates, the one with fewer calls in flight (`a` on a tie).
pub fn choose_less_loaded(a: usize, b: usize, load: &dyn Fn(usize) -> usize) -> usize {
    if load(b) < load(a) { b } else { a }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn never_picks_the_more_loaded(loads in proptest::collection::vec(0usize..100, 2..40), a in 0usize..40, b in 0usize..40) {
            let a = a % loads.len();
            let b = b % loads.len();
            let chosen = choose_less_loaded(a, b, &|i| loads[i]);
            prop_assert!(chosen == a || chosen == b);
            prop_assert!(loads[chosen] <= loads[a].min(loads[b]));
        }

        #[test]
        fn picks_are_in_range(len in 1usize..64) {
            let chosen = LeastRequest.pick(len, &|_| 0);
            prop_assert!(chosen < len);
        }
    }

    #[test]
    fn the_busiest_member_is_never_chosen() {
        // With three members, the busiest loses every comparison it is in.
        let loads = [5usize, 0, 1];
        for _ in 0..1000 {
            assert_ne!(LeastRequest.pick(3, &|i| loads[i]), 0);
        }
    }
}
