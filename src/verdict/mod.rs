//! The verdict: did the spread and the error count hold what was asked?
//! It decides the exit code and says in words what failed, on which
//! endpoint, by how much, and against which bound.
//!
//! The bound is policy-aware ([`bound`]): a fair round_robin run is exact up
//! to calls in flight, a fair random / least_request run (and a ClusterIP
//! run, per connection) is binomial. A run too small for a check to mean
//! anything fails with the number of calls it would need ([`checks`]).

mod assertions;
mod bound;
mod checks;
mod epochs;
mod errors;
mod spread;
mod words;

use serde::Serialize;

pub use assertions::{Assertions, ErrorBudget, Weights};
pub use bound::{Balancing, DETECTION, FALSE_ALARM, Model, Range, binomial_range};
pub use checks::Judge;
pub use errors::EndpointBudget;
pub use spread::Spread;

use crate::record::Tallies;

/// The judgement of one run; the JSON `verdict` object.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Verdict {
    /// Every endpoint within the default fair bound, with enough calls to
    /// tell.
    pub even: bool,
    /// The largest |share − expected share| over endpoints.
    pub max_deviation: f64,
    /// Coefficient of variation of per-endpoint counts (each divided by its
    /// expected count).
    pub cv: f64,
    /// Chi-square goodness-of-fit p-value against the expected spread
    /// (uniform unless `--weights`).
    pub chi2_p: f64,
    /// Busiest ÷ idlest endpoint (after weights); null when one got nothing.
    pub max_ratio: Option<f64>,
    /// Set when the run is too small for the default bound to tell an even
    /// spread from an uneven one (`even` is then false and says nothing):
    /// the unit that was short, `calls` or `connections`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub too_few_to_tell: Option<String>,
    /// The checks applied, in words.
    pub checked: String,
    /// False for a run shown only for contrast (the clusterip run of
    /// `--mode both` and of the demo): no check was applied to it.
    pub judged: bool,
    /// Judged runs: true when every check asked for held. Null when not
    /// judged, so that "not judged" never reads as a pass.
    pub passed: Option<bool>,
    /// One sentence per failed check.
    pub failures: Vec<String>,
    /// Calls that reached an endpoint (what the spread is judged on).
    pub calls: u64,
    /// The model of a fair run behind the bound, in words.
    pub model: String,
    /// Probability that a fair run fails the default spread check.
    pub false_alarm: f64,
    /// Each endpoint's fair range of calls.
    pub bounds: Vec<EndpointBound>,
    /// The failed checks as fields (same order as `failures`).
    pub failed: Vec<Finding>,
    /// Set when the run was too small for an asked check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub too_few: Option<TooFew>,
    /// Set with `--settle`: how long the spread took to hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settle: Option<Settle>,
}

impl Verdict {
    /// False only when a judged run failed a check: what the exit code
    /// follows.
    pub fn holds(&self) -> bool {
        self.passed != Some(false)
    }

    /// The same verdict, marked as not judged: shown for contrast only.
    pub fn not_judged(self) -> Verdict {
        Verdict {
            judged: false,
            passed: None,
            checked: NOT_JUDGED.into(),
            failures: Vec::new(),
            failed: Vec::new(),
            ..self
        }
    }
}

/// One endpoint's fair range: a fair balancer stays within `low..=high`
/// except with probability `false_alarm` over all endpoints.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct EndpointBound {
    pub name: String,
    pub calls: u64,
    pub expected: f64,
    pub low: u64,
    pub high: u64,
}

/// One failed check, as fields.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Finding {
    /// `spread`, `max-deviation`, `max-ratio`, `chi2-p`,
    /// `all-endpoints-hit`, `expect-endpoints` or `max-errors`.
    pub check: String,
    /// The endpoints concerned (empty for whole-run checks).
    pub endpoints: Vec<String>,
    /// What was measured, in `unit`.
    pub observed: f64,
    /// The limit crossed (for too few calls: the number needed; null when
    /// none is enough).
    pub bound: Option<f64>,
    /// How far beyond the limit.
    pub by: Option<f64>,
    /// `calls`, `connections`, `share`, `ratio`, `p`, `endpoints`, `errors`.
    pub unit: String,
    pub message: String,
}

/// The run was too small for some asked checks.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct TooFew {
    pub checks: Vec<String>,
    /// `calls`, or `connections` in clusterip mode.
    pub unit: String,
    pub have: u64,
    /// The fewest that would let every one of them be judged; null when no
    /// number is enough.
    pub needed: Option<u64>,
}

/// What `--settle` did.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Settle {
    /// The deadline asked for.
    pub deadline_s: f64,
    /// Measured windows run (the report shows the last).
    pub windows: u32,
    /// True when a window held before the deadline.
    pub settled: bool,
    /// Seconds from the start of the first window to the start of the
    /// first window that held.
    pub settled_after_s: Option<f64>,
}

/// `checked` when no assertion was asked for.
pub const NOTHING_ASKED: &str = "nothing asked";

/// `checked` of a run shown only for contrast (the clusterip run of `--mode both`).
pub const NOT_JUDGED: &str = "not judged (shown for contrast)";

/// Judges a run's tallies against the assertions, knowing how it balanced.
pub fn judge(tallies: &Tallies, assertions: &Assertions, balancing: Balancing) -> Verdict {
    let mut endpoints: Vec<(String, String)> = tallies
        .endpoints()
        .map(|(key, _)| (key.name.clone(), key.address.clone()))
        .collect();
    // Endpoints the user says exist but that never answered count as idle.
    if let Some(expected) = assertions.expect_endpoints {
        for i in endpoints.len()..expected {
            endpoints.push((format!("(unseen endpoint {})", i + 1), String::new()));
        }
    }
    let mut findings = Vec::new();
    let shares = match &assertions.weights {
        Some(weights) => match weights.shares(&mut endpoints) {
            Ok(shares) => shares,
            Err(message) => {
                findings.push(Finding {
                    check: "weights".into(),
                    observed: endpoints.len() as f64,
                    unit: "endpoints".into(),
                    message,
                    ..Finding::default()
                });
                equal_shares(endpoints.len())
            }
        },
        None => equal_shares(endpoints.len()),
    };
    let names: Vec<String> = endpoints.iter().map(|(n, _)| n.clone()).collect();
    // Endpoints added above (unseen, or named only by --weights) got nothing.
    let tally_of = |name: &str, address: &str| {
        tallies
            .endpoints()
            .find(|(key, _)| key.name == name && key.address == address)
            .map(|(_, tally)| tally)
    };
    let counts: Vec<u64> = endpoints
        .iter()
        .map(|(name, address)| tally_of(name, address).map_or(0, |t| t.requests()))
        .collect();
    let answered: Vec<u64> = endpoints
        .iter()
        .map(|(name, address)| tally_of(name, address).map_or(0, |t| t.ok))
        .collect();
    // An endpoint that could never be reached expects no calls: a fair
    // balancer spreads its part over the others, so they are judged
    // without it, and it fails by name below.
    let unreachable: Vec<Option<&String>> = endpoints
        .iter()
        .zip(&answered)
        .map(|((_, address), ok)| tallies.unreachable.get(address).filter(|_| *ok == 0))
        .collect();
    // When the ready set changed, shares follow the epochs each endpoint
    // could be picked in (an unreachable one was never ready: share 0).
    let (shares, spans, epochs) =
        match epochs::time_aware(&tallies.epochs, &endpoints, &shares, &counts) {
            Some((shares, spans)) => {
                let spans_with_calls = tallies.epochs.iter().filter(|e| e.calls > 0).count();
                (shares, spans, spans_with_calls as u64)
            }
            None => (
                without_unreachable(shares, &unreachable),
                vec![None; endpoints.len()],
                1,
            ),
        };
    let calls: u64 = counts.iter().sum();
    let judge = Judge::over_epochs(assertions, balancing, &shares, calls, epochs).with_spans(spans);
    let spread = judge.spread(&counts);
    if assertions.spread || assertions.all_endpoints_hit || assertions.expect_endpoints.is_some() {
        findings.extend(errors::unreachable(&endpoints, &unreachable));
    }
    let (spread_findings, too_few) = judge.findings(&names, &counts, &answered);
    findings.extend(spread_findings);
    let mut checked = judge.checked();
    if let Some(budget) = assertions.max_errors {
        let (finding, shown) = errors::run_check(tallies, budget);
        checked.push(format!("errors <= {shown}"));
        findings.extend(finding);
    }
    let endpoint_budget = assertions
        .endpoint_errors
        .map(EndpointBudget::Asked)
        .or_else(|| {
            assertions
                .spread
                .then(|| EndpointBudget::default_for(balancing))
        });
    if let Some(budget) = endpoint_budget {
        let (endpoint_findings, shown) = errors::endpoint_check(tallies, budget);
        checked.push(format!("errors per endpoint <= {shown}"));
        findings.extend(endpoint_findings);
    }
    Verdict {
        even: !endpoints.is_empty() && judge.even(&counts),
        max_deviation: round4(spread.max_deviation),
        cv: round4(spread.cv),
        chi2_p: round4(spread.chi2_p),
        max_ratio: spread.max_ratio.map(round4),
        too_few_to_tell: (!judge.powered()).then(|| judge.unit().to_string()),
        checked: if checked.is_empty() {
            NOTHING_ASKED.to_string()
        } else {
            checked.join(", ")
        },
        judged: true,
        passed: Some(findings.is_empty()),
        failures: findings.iter().map(|f| f.message.clone()).collect(),
        calls,
        model: judge.model(),
        false_alarm: FALSE_ALARM,
        bounds: judge.bounds(&names, &counts),
        failed: findings,
        too_few,
        settle: None,
    }
}

fn equal_shares(k: usize) -> Vec<f64> {
    vec![1.0 / k.max(1) as f64; k]
}

/// The shares with unreachable endpoints' parts spread over the rest, in
/// proportion; unchanged when nothing would be left.
fn without_unreachable(shares: Vec<f64>, unreachable: &[Option<&String>]) -> Vec<f64> {
    let left: f64 = shares
        .iter()
        .zip(unreachable)
        .filter(|(_, dead)| dead.is_none())
        .map(|(p, _)| p)
        .sum();
    if left <= 0.0 || unreachable.iter().all(Option::is_none) {
        return shares;
    }
    shares
        .iter()
        .zip(unreachable)
        .map(|(p, dead)| if dead.is_some() { 0.0 } else { p / left })
        .collect()
}

fn round4(x: f64) -> f64 {
    (x * 10000.0).round() / 10000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pick::Policy;
    use crate::record::{EndpointKey, Tally};

    fn report(counts: &[(&str, u64)]) -> Tallies {
        let rows = counts
            .iter()
            .map(|(name, n)| {
                let key = EndpointKey {
                    name: name.to_string(),
                    address: format!("{name}:80"),
                };
                let tally = Tally {
                    ok: *n,
                    ..Tally::default()
                };
                (key, tally)
            })
            .collect();
        Tallies {
            rows,
            ..Tallies::default()
        }
    }

    fn per_call(policy: Policy) -> Balancing {
        Balancing::PerCall {
            policy,
            concurrency: 8,
        }
    }

    fn even() -> Assertions {
        Assertions {
            spread: true,
            all_endpoints_hit: true,
            ..Assertions::default()
        }
    }

    #[test]
    fn a_fair_random_spread_passes_and_shows_its_bound() {
        let r = report(&[("a", 2510), ("b", 2470), ("c", 2530), ("d", 2490)]);
        let v = judge(&r, &even(), per_call(Policy::Random));
        assert!(v.holds() && v.even, "{v:?}");
        assert_eq!(v.calls, 10_000);
        assert!(v.model.starts_with("binomial"));
        assert!(v.bounds.iter().all(|b| b.low < 2500 && b.high > 2500));
    }

    #[test]
    fn the_same_spread_is_too_loose_for_round_robin() {
        let r = report(&[("a", 2510), ("b", 2470), ("c", 2530), ("d", 2490)]);
        let v = judge(&r, &even(), per_call(Policy::RoundRobin));
        assert!(!v.holds());
        let f = v
            .failed
            .iter()
            .find(|f| f.endpoints == ["b"])
            .expect("b is named");
        assert_eq!(f.check, "spread");
        assert_eq!(f.bound, Some(2491.0));
        assert_eq!(f.by, Some(21.0));
        assert!(f.message.contains("short by 21"), "{}", f.message);
    }

    #[test]
    fn a_starved_endpoint_is_named_with_how_far_it_fell_short() {
        let r = report(&[("a", 3400), ("b", 3350), ("c", 3250)]);
        let mut counts = r.clone();
        counts.rows[2].1.ok = 1650;
        counts.rows[0].1.ok = 4200;
        counts.rows[1].1.ok = 4150;
        let v = judge(&counts, &even(), per_call(Policy::LeastRequest));
        assert!(!v.holds());
        assert!(v.failures.iter().any(|f| f.contains("c got 1650")), "{v:?}");
    }

    #[test]
    fn too_few_calls_fail_with_the_number_needed() {
        let r = report(&[("a", 10), ("b", 12), ("c", 8), ("d", 10), ("e", 10)]);
        let v = judge(&r, &even(), per_call(Policy::Random));
        assert!(!v.holds() && !v.even);
        let too_few = v.too_few.clone().expect("too few");
        assert_eq!(too_few.have, 50);
        let needed = too_few.needed.expect("some number is enough");
        assert!((200..5000).contains(&needed), "{needed}");
        assert!(v.failures.iter().any(|f| f.contains("--requests")), "{v:?}");
        // With that many calls, a fair spread is judged and passes.
        let n = needed.div_ceil(5);
        let r = report(&[("a", n), ("b", n), ("c", n), ("d", n), ("e", n)]);
        assert!(judge(&r, &even(), per_call(Policy::Random)).holds());
    }

    #[test]
    fn a_tolerance_tighter_than_chance_is_not_judged_on_noise() {
        let asked = Assertions {
            max_deviation: Some(0.005),
            ..Assertions::default()
        };
        let r = report(&[("a", 520), ("b", 480)]);
        let v = judge(&r, &asked, per_call(Policy::Random));
        assert!(!v.holds());
        assert_eq!(v.failed.len(), 1, "{v:?}");
        assert!(v.failures[0].starts_with("too few calls to judge --max-deviation 0.005"));
        // Exactly even counts would not pass either: the check was not judged.
        let r = report(&[("a", 500), ("b", 500)]);
        assert!(!judge(&r, &asked, per_call(Policy::Random)).holds());
    }

    #[test]
    fn weights_set_the_expectation_for_a_canary() {
        let asked = Assertions {
            spread: true,
            max_ratio: Some(1.3),
            weights: Some("stable=9,canary=1".parse().unwrap()),
            ..Assertions::default()
        };
        let r = report(&[("stable", 9010), ("canary", 990)]);
        let v = judge(&r, &asked, per_call(Policy::Random));
        assert!(v.holds(), "{v:?}");
        assert!(v.chi2_p > 0.1);
        let r = report(&[("stable", 5000), ("canary", 5000)]);
        let v = judge(&r, &asked, per_call(Policy::Random));
        assert!(!v.holds());
        assert!(
            v.failures
                .iter()
                .any(|f| f.starts_with("max-ratio: busiest canary")),
            "{v:?}"
        );
    }

    #[test]
    fn chi2_check_fails_below_the_asked_p_value() {
        let asked = Assertions {
            chi2_p: Some(0.01),
            ..Assertions::default()
        };
        let r = report(&[("a", 1100), ("b", 900)]);
        let v = judge(&r, &asked, per_call(Policy::Random));
        assert!(!v.holds());
        assert_eq!(v.failed[0].check, "chi2-p");
        let r = report(&[("a", 1010), ("b", 990)]);
        assert!(judge(&r, &asked, per_call(Policy::Random)).holds());
    }

    #[test]
    fn one_connection_is_uneven_by_construction_and_names_the_idle_pods() {
        let asked = Assertions {
            expect_endpoints: Some(3),
            ..even()
        };
        let r = report(&[("a", 300), ("b", 0), ("c", 0)]);
        let balancing = Balancing::PerConnection {
            connections: 1,
            concurrency: 8,
        };
        let v = judge(&r, &asked, balancing);
        assert!(!v.holds() && !v.even);
        let text = v.failures.join("\n");
        assert!(text.contains("uneven by construction"), "{text}");
        assert!(text.contains("b, c got no calls"), "{text}");
        assert!(text.contains("--connections"), "{text}");
    }

    #[test]
    fn errors_over_budget_name_where_they_happened() {
        let mut r = report(&[("a", 100), ("b", 100)]);
        let b = &mut r.rows[1].1;
        b.ok -= 5;
        b.errors = 5;
        b.error_codes.insert("UNAVAILABLE".into(), 5);
        let asked = Assertions {
            max_errors: Some(ErrorBudget::Count(0)),
            ..Assertions::default()
        };
        let v = judge(&r, &asked, per_call(Policy::RoundRobin));
        assert!(!v.holds());
        assert_eq!(v.failed[0].check, "max-errors");
        assert!(v.failures[0].contains("b: 5 UNAVAILABLE"));
    }

    #[test]
    fn a_pod_that_fails_every_call_fails_the_even_check_with_its_codes() {
        let mut r = report(&[("a", 3334), ("b", 3333), ("c", 3333)]);
        let c = &mut r.rows[2].1;
        c.ok = 0;
        c.errors = 3333;
        c.error_codes.insert("UNAVAILABLE".into(), 3333);
        let v = judge(&r, &even(), per_call(Policy::RoundRobin));
        assert!(!v.holds());
        let checks: Vec<&str> = v.failed.iter().map(|f| f.check.as_str()).collect();
        assert!(checks.contains(&"endpoint-errors"), "{checks:?}");
        assert!(checks.contains(&"all-endpoints-hit"), "{checks:?}");
        assert!(
            v.failures
                .iter()
                .any(|f| f.contains("c failed 3333 of its 3333 calls (3333 UNAVAILABLE)")),
            "{:?}",
            v.failures
        );
        assert!(
            v.failures
                .iter()
                .any(|f| f.contains("c answered none of its 3333 calls")),
            "{:?}",
            v.failures
        );
    }

    #[test]
    fn errors_within_the_calls_in_flight_pass_by_default() {
        let mut r = report(&[("a", 5000), ("b", 5000)]);
        let b = &mut r.rows[1].1;
        b.ok -= 8;
        b.errors = 8;
        b.error_codes.insert("UNAVAILABLE".into(), 8);
        assert!(judge(&r, &even(), per_call(Policy::RoundRobin)).holds());
        let strict = Assertions {
            endpoint_errors: Some(ErrorBudget::Count(0)),
            ..even()
        };
        assert!(!judge(&r, &strict, per_call(Policy::RoundRobin)).holds());
    }

    #[test]
    fn an_unreachable_pod_fails_by_name_and_the_others_share_its_part() {
        let mut r = report(&[("a", 3333), ("b", 3334), ("c", 3333), ("dead", 0)]);
        r.unreachable
            .insert("dead:80".into(), "connection refused".into());
        let v = judge(&r, &even(), per_call(Policy::RoundRobin));
        assert!(!v.holds());
        assert_eq!(
            v.failed.len(),
            1,
            "only the dead pod is blamed: {:?}",
            v.failures
        );
        assert_eq!(
            v.failures[0],
            "reachable: dead (dead:80) unreachable for the whole run: connection refused"
        );
        let dead = v.bounds.iter().find(|b| b.name == "dead").expect("a bound");
        assert_eq!((dead.low, dead.high), (0, 0));
    }

    /// 4000 calls over a and b, then 6000 over a, b and a newcomer c.
    fn scale_up(c_got: u64) -> Tallies {
        let rest = (10_000 - c_got) / 2;
        let mut r = report(&[("a", rest), ("b", 10_000 - c_got - rest), ("c", c_got)]);
        let epoch = |from_s, to_s, calls, ready: &[&str]| crate::record::Epoch {
            from_s,
            to_s,
            calls,
            ready: ready.iter().map(|n| format!("{n}:80")).collect(),
        };
        r.epochs = vec![
            epoch(0.0, 4.0, 4000, &["a", "b"]),
            epoch(4.0, 10.0, 6000, &["a", "b", "c"]),
        ];
        r
    }

    #[test]
    fn a_fair_scale_up_passes_on_time_aware_shares() {
        let v = judge(&scale_up(2000), &even(), per_call(Policy::RoundRobin));
        assert!(v.holds(), "{:?}", v.failures);
        let c = v.bounds.iter().find(|b| b.name == "c").expect("c");
        assert_eq!(c.expected, 2000.0);
        // Judged on whole-run shares, the same run would fail.
        let mut flat = scale_up(2000);
        flat.epochs.clear();
        assert!(!judge(&flat, &even(), per_call(Policy::RoundRobin)).holds());
    }

    #[test]
    fn a_starved_newcomer_fails_by_name_with_when_it_joined() {
        let v = judge(&scale_up(0), &even(), per_call(Policy::Random));
        assert!(!v.holds());
        assert!(
            v.failures
                .iter()
                .any(|f| f.contains("c got no calls (idle, ready from +4.0s)")),
            "{:?}",
            v.failures
        );
        let v = judge(&scale_up(300), &even(), per_call(Policy::Random));
        assert!(
            v.failures
                .iter()
                .any(|f| f.starts_with("spread: c got 300") && f.contains("ready from +4.0s")),
            "{:?}",
            v.failures
        );
    }
}
