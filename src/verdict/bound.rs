//! The range of calls a *fair* balancer gives each endpoint, by the way the
//! run balanced: exact up to concurrency effects (round_robin), or binomial
//! (independent random picks per call, or one pick per connection).

use statrs::distribution::{Binomial, DiscreteCDF};

use crate::pick::Policy;

/// Probability that a fair run fails the default spread check, over all
/// endpoints and both tails together (Bonferroni).
pub const FALSE_ALARM: f64 = 1e-4;

/// The default spread check must catch an endpoint that gets half its fair
/// share at least this often, or the run had too few calls to judge.
pub const DETECTION: f64 = 0.999;

/// How the run spread its calls: what a fair balancer would have done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balancing {
    /// The client picks an endpoint per call with this policy.
    PerCall { policy: Policy, concurrency: usize },
    /// The network picks an endpoint per connection (ClusterIP); calls go
    /// round robin over the connections.
    PerConnection {
        connections: usize,
        concurrency: usize,
    },
}

impl Balancing {
    /// Calls in flight at most: what one endpoint can lose when it dies.
    pub fn concurrency(&self) -> usize {
        match self {
            Balancing::PerCall { concurrency, .. }
            | Balancing::PerConnection { concurrency, .. } => *concurrency,
        }
    }
}

/// A range of calls, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub low: u64,
    pub high: u64,
}

impl Range {
    /// True when `n` lies inside.
    pub fn holds(&self, n: u64) -> bool {
        self.low <= n && n <= self.high
    }
}

/// The statistical model of a fair run of a given size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Model {
    balancing: Balancing,
    /// Calls that reached an endpoint.
    calls: u64,
    /// Spans of the run with one ready set each (1 when it never changed).
    epochs: u64,
}

impl Model {
    pub fn new(balancing: Balancing, calls: u64) -> Model {
        Model {
            balancing,
            calls,
            epochs: 1,
        }
    }

    /// The same model over a run whose ready set changed `epochs − 1`
    /// times: round robin restarts its turn at each change, so an
    /// endpoint's count may be off by one more call per span.
    pub fn over_epochs(self, epochs: u64) -> Model {
        Model {
            epochs: epochs.max(1),
            ..self
        }
    }

    /// The calls the model was built for.
    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// What one unit of randomness is: "calls" or "connections".
    pub fn unit(&self) -> &'static str {
        match self.balancing {
            Balancing::PerConnection { .. } => "connections",
            Balancing::PerCall { .. } => "calls",
        }
    }

    /// How many independent units the run had (calls, or connections that
    /// carried calls).
    pub fn units(&self) -> u64 {
        match self.balancing {
            Balancing::PerConnection { connections, .. } => (connections as u64).min(self.calls),
            Balancing::PerCall { .. } => self.calls,
        }
    }

    /// The same model with `units` calls (per call) or connections (per
    /// connection, each carrying as many calls as now, at least one).
    pub fn with_units(&self, units: u64) -> Model {
        match self.balancing {
            Balancing::PerCall { .. } => Model::new(self.balancing, units).over_epochs(self.epochs),
            Balancing::PerConnection {
                connections,
                concurrency,
            } => {
                let per_connection = (self.calls / (connections as u64).max(1)).max(1);
                Model::new(
                    Balancing::PerConnection {
                        connections: units as usize,
                        concurrency,
                    },
                    units.saturating_mul(per_connection),
                )
            }
        }
    }

    /// Words for the model, e.g. "binomial: independent random picks".
    pub fn describe(&self) -> String {
        match self.balancing {
            Balancing::PerCall {
                policy: Policy::RoundRobin,
                concurrency,
            } => format!(
                "exact: round_robin gives each endpoint its share ± {} calls (concurrency {concurrency})",
                self.slack()
            ),
            Balancing::PerCall { policy, .. } => format!(
                "binomial: {} as independent picks per call, false alarm ≤ {FALSE_ALARM:e} per run",
                policy.name()
            ),
            Balancing::PerConnection { .. } => format!(
                "binomial over {} connection{}: one endpoint per connection, false alarm ≤ {FALSE_ALARM:e} per run",
                self.units(),
                if self.units() == 1 { "" } else { "s" }
            ),
        }
    }

    /// True for round_robin, whose spread is exact up to concurrency.
    fn exact(&self) -> bool {
        matches!(
            self.balancing,
            Balancing::PerCall {
                policy: Policy::RoundRobin,
                ..
            }
        )
    }

    /// Calls an endpoint may be off by from calls in flight at the start
    /// and end of the measured window.
    fn slack(&self) -> u64 {
        let concurrency = match self.balancing {
            Balancing::PerCall { concurrency, .. }
            | Balancing::PerConnection { concurrency, .. } => concurrency,
        };
        concurrency as u64 + self.epochs
    }

    /// The range a fair balancer keeps an endpoint with this expected share
    /// in, except with probability `FALSE_ALARM / endpoints` (half per tail).
    pub fn range(&self, share: f64, endpoints: usize) -> Range {
        self.range_at(share, FALSE_ALARM / (2.0 * endpoints.max(1) as f64))
    }

    /// The most calls an endpoint that gets half its fair share receives,
    /// except with probability `1 − DETECTION`.
    pub fn starved_high(&self, share: f64) -> u64 {
        self.range_at(share / 2.0, 1.0 - DETECTION).high
    }

    /// The range of calls with probability at most `tail` beyond each end.
    fn range_at(&self, share: f64, tail: f64) -> Range {
        let calls = self.calls;
        if share <= 0.0 || calls == 0 {
            return Range { low: 0, high: 0 };
        }
        let expected = calls as f64 * share;
        if self.exact() {
            let slack = self.slack();
            return Range {
                low: (expected.floor() as u64).saturating_sub(slack),
                high: (expected.ceil() as u64 + slack).min(calls),
            };
        }
        let units = self.units();
        let (low, high) = binomial_range(units, share, tail);
        if units == calls {
            return Range { low, high };
        }
        // Per connection: each connection carries floor or ceil of
        // calls/units, round robin, give or take the calls in flight.
        let per_low = calls / units;
        let per_high = calls.div_ceil(units);
        Range {
            low: (low * per_low).saturating_sub(self.slack()),
            high: (high * per_high + self.slack()).min(calls),
        }
    }
}

/// Smallest `low` and `high` with P(X < low) ≤ tail and P(X > high) ≤ tail
/// for X ~ Binomial(n, p).
pub fn binomial_range(n: u64, p: f64, tail: f64) -> (u64, u64) {
    if n == 0 || p <= 0.0 {
        return (0, 0);
    }
    if p >= 1.0 {
        return (n, n);
    }
    let Ok(binomial) = Binomial::new(p, n) else {
        return (0, n);
    };
    // P(X < x) = cdf(x − 1) rises with x: the last x with it ≤ tail.
    let low = first(0, n, |x| x > 0 && binomial.cdf(x - 1) > tail).map_or(n, |x| x - 1);
    // P(X > x) = sf(x) falls with x: the first x with it ≤ tail.
    let high = first(0, n, |x| binomial.sf(x) <= tail).unwrap_or(n);
    (low, high)
}

/// The first x in `from..=to` where a monotone predicate turns true.
fn first(from: u64, to: u64, holds: impl Fn(u64) -> bool) -> Option<u64> {
    if !holds(to) {
        return None;
    }
    let (mut lo, mut hi) = (from, to);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if holds(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Some(lo)
}

/// The fewest units (from `have` up) at which `enough` holds, when some
/// number up to a billion does; `enough` should grow true with more units.
/// Discreteness can make it flicker just above the threshold, so the answer
/// is one that also holds at points over the next tenth above it.
pub fn fewest_units(have: u64, enough: impl Fn(u64) -> bool) -> Option<u64> {
    let mut n = threshold(have, &enough)?;
    for _ in 0..32 {
        let step = (n / 160).max(1);
        match (1..=16).map(|i| n + i * step).find(|m| !enough(*m)) {
            Some(flicker) => n = threshold(flicker, &enough)?,
            None => return Some(n),
        }
    }
    Some(n)
}

/// The first number above `have` where `enough` holds, by doubling then
/// bisection.
fn threshold(have: u64, enough: &impl Fn(u64) -> bool) -> Option<u64> {
    const CAP: u64 = 1_000_000_000;
    let mut low = have.max(1);
    let mut high = low.saturating_mul(2).max(2);
    while !enough(high) {
        if high >= CAP {
            return None;
        }
        low = high;
        high = high.saturating_mul(2).min(CAP);
    }
    first(low, high, enough)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(calls: u64) -> Model {
        Model::new(
            Balancing::PerCall {
                policy: Policy::Random,
                concurrency: 8,
            },
            calls,
        )
    }

    #[test]
    fn binomial_range_leaves_at_most_the_tail_outside() {
        let (n, p, tail) = (10_000, 0.2, 1e-5);
        let (low, high) = binomial_range(n, p, tail);
        let b = Binomial::new(p, n).unwrap();
        assert!(b.cdf(low - 1) <= tail && b.cdf(low) > tail);
        assert!(b.sf(high) <= tail && b.sf(high - 1) > tail);
        assert!(low < 2000 && high > 2000);
    }

    #[test]
    fn round_robin_bound_is_tight() {
        let model = Model::new(
            Balancing::PerCall {
                policy: Policy::RoundRobin,
                concurrency: 8,
            },
            10_000,
        );
        assert_eq!(
            model.range(0.2, 5),
            Range {
                low: 1991,
                high: 2009
            }
        );
    }

    #[test]
    fn random_bound_widens_with_endpoints() {
        let few = random(10_000).range(0.5, 2);
        let many = random(10_000).range(0.02, 50);
        assert!(few.low < 5000 && few.high > 5000);
        assert!(many.low > 100 && many.high < 300);
        // A half-share endpoint at 50 endpoints is still caught.
        assert!(random(10_000).starved_high(0.02) < many.low);
    }

    #[test]
    fn one_connection_cannot_tell_anything() {
        let model = Model::new(
            Balancing::PerConnection {
                connections: 1,
                concurrency: 8,
            },
            10_000,
        );
        assert_eq!(
            model.range(0.2, 5),
            Range {
                low: 0,
                high: 10_000
            }
        );
    }

    #[test]
    fn fewest_units_finds_the_threshold() {
        assert_eq!(fewest_units(10, |n| n >= 1234), Some(1234));
        assert_eq!(fewest_units(5000, |n| n >= 1234), Some(5000));
        assert_eq!(fewest_units(10, |_| false), None);
    }
}
