//! The spread checks: each asked-for check against the fair-balancer bound,
//! with "too few calls to judge" when the run was too small for the check
//! to mean anything. The statistics only: [`super::words`] puts findings
//! in words.

use super::assertions::Assertions;
use super::bound::{Balancing, FALSE_ALARM, Model, Range, fewest_units};
use super::spread::Spread;
use super::{EndpointBound, Finding, TooFew};

/// Fewest expected units per endpoint for the chi-square approximation.
pub(super) const CHI2_MIN_EXPECTED: f64 = 5.0;

/// The spread checks of one run size, with every bound computed once, so
/// that many runs of that size can be judged cheaply.
#[derive(Debug, Clone)]
pub struct Judge {
    pub(super) assertions: Assertions,
    pub(super) model: Model,
    pub(super) shares: Vec<f64>,
    pub(super) ranges: Vec<Range>,
    /// Whether the default bound can catch a half-share endpoint.
    spread_power: Power,
    /// Per asked check that the run is too small for: (check, needed).
    too_few: Vec<(&'static str, Power)>,
    /// Per endpoint, when it could be picked if not for the whole run
    /// ("ready from +4.1s"), for the words of a failed check.
    pub(super) spans: Vec<Option<String>>,
}

/// Whether a check can be judged at the run's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Power {
    Enough,
    /// Needs this many units; `None`: no number is enough.
    TooFew(Option<u64>),
}

/// One check that did not hold, before it is put in words.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Violation {
    Spread { i: usize, n: u64 },
    Deviation { i: usize, share: f64 },
    Ratio { ratio: Option<f64> },
    Chi2 { p: f64 },
    Idle { i: usize },
    Endpoints { hit: usize },
}

impl Judge {
    /// Prepares the checks for `calls` calls spread over endpoints with
    /// these expected shares (summing to 1).
    pub fn new(assertions: &Assertions, balancing: Balancing, shares: &[f64], calls: u64) -> Judge {
        Judge::over_epochs(assertions, balancing, shares, calls, 1)
    }

    /// The same over a run whose ready set changed: `epochs` spans, each
    /// balanced on its own (round_robin's exact bound widens by one call
    /// per span).
    pub fn over_epochs(
        assertions: &Assertions,
        balancing: Balancing,
        shares: &[f64],
        calls: u64,
        epochs: u64,
    ) -> Judge {
        let model = Model::new(balancing, calls).over_epochs(epochs);
        let fair = ranges(&model, shares);
        // Only an asked check pays for the search of how many calls it needs.
        let spread_power = if spread_powered(&model, shares) {
            Power::Enough
        } else if assertions.spread {
            power(&model, |m| spread_powered(m, shares))
        } else {
            Power::TooFew(None)
        };
        let mut too_few = Vec::new();
        let mut asked = |check: &'static str, p: Power| {
            if p != Power::Enough {
                too_few.push((check, p));
            }
        };
        if assertions.spread {
            asked("spread", spread_power);
        }
        if let Some(limit) = assertions.max_deviation {
            asked(
                "max-deviation",
                power(&model, |m| worst_deviation(m, shares) <= limit),
            );
        }
        if let Some(limit) = assertions.max_ratio {
            asked(
                "max-ratio",
                power(&model, |m| {
                    worst_ratio(m, shares).is_some_and(|r| r <= limit)
                }),
            );
        }
        if assertions.chi2_p.is_some() {
            asked(
                "chi2-p",
                power(&model, |m| {
                    let least = shares.iter().copied().filter(|p| *p > 0.0);
                    least.fold(f64::INFINITY, f64::min) * m.units() as f64 >= CHI2_MIN_EXPECTED
                }),
            );
        }
        if assertions.all_endpoints_hit {
            asked(
                "all-endpoints-hit",
                power(&model, |m| {
                    ranges(m, shares)
                        .iter()
                        .zip(shares)
                        .all(|(r, p)| *p <= 0.0 || r.low >= 1)
                }),
            );
        }
        Judge {
            assertions: assertions.clone(),
            model,
            shares: shares.to_vec(),
            ranges: fair,
            spread_power,
            too_few,
            spans: vec![None; shares.len()],
        }
    }

    /// Says when each endpoint could be picked, in failures about it.
    pub fn with_spans(mut self, spans: Vec<Option<String>>) -> Judge {
        if spans.len() == self.shares.len() {
            self.spans = spans;
        }
        self
    }

    /// True when every asked check holds for these counts (same order as
    /// the shares): the verdict would pass.
    pub fn holds(&self, counts: &[u64]) -> bool {
        if !self.too_few.is_empty() {
            return false;
        }
        let mut held = true;
        self.violations(counts, counts, None, &mut |_| held = false);
        held
    }

    /// True when the counts lie within the default bound and the run was
    /// big enough to tell.
    /// True when the run is large enough for the default bound to tell a
    /// fair spread from one that starves an endpoint.
    pub fn powered(&self) -> bool {
        self.spread_power == Power::Enough
    }

    /// `calls`, or `connections` when the network picked per connection.
    pub fn unit(&self) -> &'static str {
        self.model.unit()
    }

    pub fn even(&self, counts: &[u64]) -> bool {
        self.spread_power == Power::Enough
            && counts
                .iter()
                .zip(&self.ranges)
                .all(|(n, range)| range.holds(*n))
    }

    /// Words for the model behind the bound.
    pub fn model(&self) -> String {
        self.model.describe()
    }

    /// Each endpoint's expected calls and fair range.
    pub fn bounds(&self, names: &[String], counts: &[u64]) -> Vec<EndpointBound> {
        let calls = self.model.calls() as f64;
        names
            .iter()
            .zip(counts)
            .zip(self.shares.iter().zip(&self.ranges))
            .map(|((name, n), (p, range))| EndpointBound {
                name: name.clone(),
                calls: *n,
                expected: round1(calls * p),
                low: range.low,
                high: range.high,
            })
            .collect()
    }

    /// The checks applied, in words.
    pub fn checked(&self) -> Vec<String> {
        let a = &self.assertions;
        let mut checked = Vec::new();
        if a.spread {
            checked.push(format!(
                "spread within the fair bound (false alarm ≤ {FALSE_ALARM:e})"
            ));
        }
        if let Some(limit) = a.max_deviation {
            checked.push(format!("max-deviation <= {limit:.2}"));
        }
        if let Some(limit) = a.max_ratio {
            checked.push(format!("max-ratio <= {limit:.2}"));
        }
        if let Some(limit) = a.chi2_p {
            checked.push(format!("chi2-p >= {limit}"));
        }
        if a.all_endpoints_hit {
            checked.push("every endpoint hit".to_string());
        }
        if let Some(expected) = a.expect_endpoints {
            checked.push(format!("endpoints == {expected}"));
        }
        checked
    }

    /// Every failed check as a finding, and the too-few summary if any.
    /// `counts` are the calls each endpoint got, `answered` its successful
    /// ones: an endpoint counts as hit only when it answered.
    pub fn findings(
        &self,
        names: &[String],
        counts: &[u64],
        answered: &[u64],
    ) -> (Vec<Finding>, Option<TooFew>) {
        let spread = self.spread(counts);
        let mut findings = Vec::new();
        let mut idle = Vec::new();
        let mut found = Vec::new();
        self.violations(counts, answered, Some(&spread), &mut |v| match v {
            Violation::Idle { i } => idle.push(i),
            v => found.push(v),
        });
        // An idle endpoint is said once, under all-endpoints-hit, not again
        // as a spread shortfall.
        findings.extend(
            found
                .into_iter()
                .filter(|v| !matches!(v, Violation::Spread { i, n: 0 } if idle.contains(i)))
                .map(|v| self.describe(v, names, counts, &spread)),
        );
        if !idle.is_empty() {
            let said: Vec<String> = idle
                .iter()
                .map(|&i| {
                    let span = self.spans[i]
                        .as_ref()
                        .map_or(String::new(), |s| format!(", {s}"));
                    match counts[i] {
                        0 => format!("{} got no calls (idle{span})", names[i]),
                        n => format!("{} answered none of its {n} calls{span}", names[i]),
                    }
                })
                .collect();
            let message = format!("all-endpoints-hit: {}", said.join("; "));
            findings.insert(
                0,
                Finding {
                    check: "all-endpoints-hit".into(),
                    endpoints: idle.iter().map(|&i| names[i].clone()).collect(),
                    observed: 0.0,
                    bound: Some(1.0),
                    by: Some(1.0),
                    unit: "calls".into(),
                    message,
                },
            );
        }
        let unit = self.model.unit();
        let have = self.model.units();
        let unserved: Vec<String> = names
            .iter()
            .zip(counts.iter().zip(&self.shares))
            .filter(|(_, (n, p))| **n == 0 && **p > 0.0)
            .map(|(name, _)| name.clone())
            .collect();
        for (check, p) in &self.too_few {
            let Power::TooFew(needed) = p else { continue };
            findings.push(Finding {
                check: (*check).into(),
                endpoints: Vec::new(),
                observed: have as f64,
                bound: needed.map(|n| n as f64),
                by: needed.map(|n| n.saturating_sub(have) as f64),
                unit: unit.into(),
                message: self.too_few_message(check, *needed, &unserved),
            });
        }
        let too_few = (!self.too_few.is_empty()).then(|| TooFew {
            checks: self.too_few.iter().map(|(c, _)| (*c).to_string()).collect(),
            unit: unit.into(),
            have,
            needed: self
                .too_few
                .iter()
                .map(|(_, p)| match p {
                    Power::TooFew(n) => *n,
                    Power::Enough => Some(0),
                })
                .try_fold(0, |most, n| n.map(|n| most.max(n))),
        });
        (findings, too_few)
    }

    /// Descriptive statistics of the counts against the expected shares.
    pub fn spread(&self, counts: &[u64]) -> Spread {
        let calls = self.model.calls().max(1) as f64;
        Spread::of(counts, &self.shares, self.model.units() as f64 / calls)
    }

    /// Calls `found` for every check that does not hold (judgeable checks
    /// only). `spread` is computed on demand when a check needs it.
    fn violations(
        &self,
        counts: &[u64],
        answered: &[u64],
        spread: Option<&Spread>,
        found: &mut dyn FnMut(Violation),
    ) {
        let a = &self.assertions;
        let total: u64 = counts.iter().sum();
        let judged = |check: &str| !self.too_few.iter().any(|(c, _)| *c == check);
        if a.spread {
            for (i, (n, range)) in counts.iter().zip(&self.ranges).enumerate() {
                if !range.holds(*n) {
                    found(Violation::Spread { i, n: *n });
                }
            }
        }
        if let Some(limit) = a.max_deviation
            && judged("max-deviation")
        {
            for (i, (n, p)) in counts.iter().zip(&self.shares).enumerate() {
                let share = *n as f64 / total.max(1) as f64;
                if (share - p).abs() > limit {
                    found(Violation::Deviation { i, share });
                }
            }
        }
        let computed;
        let spread = match spread {
            Some(s) => Some(s),
            None if (a.max_ratio.is_some() || a.chi2_p.is_some()) => {
                computed = self.spread(counts);
                Some(&computed)
            }
            None => None,
        };
        if let (Some(limit), Some(s)) = (a.max_ratio, spread)
            && judged("max-ratio")
            && s.max_ratio.is_none_or(|r| r > limit)
        {
            found(Violation::Ratio { ratio: s.max_ratio });
        }
        if let (Some(limit), Some(s)) = (a.chi2_p, spread)
            && judged("chi2-p")
            && s.chi2_p < limit
        {
            found(Violation::Chi2 { p: s.chi2_p });
        }
        if a.all_endpoints_hit && judged("all-endpoints-hit") {
            for (i, (n, p)) in answered.iter().zip(&self.shares).enumerate() {
                if *n == 0 && *p > 0.0 {
                    found(Violation::Idle { i });
                }
            }
        }
        if let Some(expected) = a.expect_endpoints {
            let hit = answered.iter().filter(|n| **n > 0).count();
            if hit != expected {
                found(Violation::Endpoints { hit });
            }
        }
    }
}

/// The fair range of each endpoint, computed once per distinct share.
fn ranges(model: &Model, shares: &[f64]) -> Vec<Range> {
    let k = shares.iter().filter(|p| **p > 0.0).count();
    let mut known: Vec<(f64, Range)> = Vec::new();
    shares
        .iter()
        .map(|p| match known.iter().find(|(q, _)| q == p) {
            Some((_, r)) => *r,
            None => {
                let r = model.range(*p, k);
                known.push((*p, r));
                r
            }
        })
        .collect()
}

/// Can the default bound catch an endpoint at half its share?
fn spread_powered(model: &Model, shares: &[f64]) -> bool {
    let ranges = ranges(model, shares);
    model.calls() > 0
        && shares
            .iter()
            .zip(&ranges)
            // A sole endpoint (share 1) gets every call whatever happens:
            // there is no uneven spread to catch.
            .all(|(p, r)| *p <= 0.0 || *p >= 1.0 || model.starved_high(*p) < r.low)
}

/// The largest share deviation a fair balancer reaches within its bound.
pub(super) fn worst_deviation(model: &Model, shares: &[f64]) -> f64 {
    let calls = model.calls().max(1) as f64;
    ranges(model, shares)
        .iter()
        .zip(shares)
        .map(|(r, p)| {
            let expected = calls * p;
            (r.high as f64 - expected).max(expected - r.low as f64) / calls
        })
        .fold(0.0, f64::max)
}

/// The largest weighted busiest/idlest ratio a fair balancer reaches
/// within its bound; `None` when an endpoint may get nothing.
pub(super) fn worst_ratio(model: &Model, shares: &[f64]) -> Option<f64> {
    let ranges = ranges(model, shares);
    let mut busiest: f64 = 0.0;
    let mut idlest = f64::INFINITY;
    for (r, p) in ranges.iter().zip(shares).filter(|(_, p)| **p > 0.0) {
        busiest = busiest.max(r.high as f64 / p);
        idlest = idlest.min(r.low as f64 / p);
    }
    (idlest > 0.0 && idlest.is_finite()).then(|| busiest / idlest)
}

/// Enough when `enough` holds at the model's size; else the fewest units
/// that would do.
fn power(model: &Model, enough: impl Fn(&Model) -> bool) -> Power {
    if enough(model) {
        return Power::Enough;
    }
    Power::TooFew(fewest_units(model.units(), |units| {
        enough(&model.with_units(units))
    }))
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

pub(super) fn round4(x: f64) -> f64 {
    (x * 10000.0).round() / 10000.0
}
