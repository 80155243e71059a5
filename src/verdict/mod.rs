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
mod spread;

use serde::Serialize;

pub use assertions::{Assertions, ErrorBudget, Weights};
pub use bound::{Balancing, DETECTION, FALSE_ALARM, Model, Range, binomial_range};
pub use checks::Judge;
pub use spread::Spread;

use crate::report::Report;

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
    /// The checks applied, in words.
    pub checked: String,
    /// True when every check asked for held.
    pub passed: bool,
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

/// Judges a report against the assertions, knowing how it balanced.
pub fn judge(report: &Report, assertions: &Assertions, balancing: Balancing) -> Verdict {
    let mut endpoints: Vec<(String, String)> = report
        .endpoint_rows()
        .map(|e| (e.name.clone(), e.address.clone()))
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
    let counts: Vec<u64> = endpoints
        .iter()
        .map(|(name, address)| {
            report
                .endpoint_rows()
                .find(|e| &e.name == name && &e.address == address)
                .map_or(0, |e| e.requests)
        })
        .collect();
    let calls: u64 = counts.iter().sum();
    let judge = Judge::new(assertions, balancing, &shares, calls);
    let spread = judge.spread(&counts);
    let (spread_findings, too_few) = judge.findings(&names, &counts);
    findings.extend(spread_findings);
    let mut checked = judge.checked();
    if let Some(budget) = assertions.max_errors {
        let (finding, shown) = error_check(report, budget);
        checked.push(format!("errors <= {shown}"));
        findings.extend(finding);
    }
    Verdict {
        even: !endpoints.is_empty() && judge.even(&counts),
        max_deviation: round4(spread.max_deviation),
        cv: round4(spread.cv),
        chi2_p: round4(spread.chi2_p),
        max_ratio: spread.max_ratio.map(round4),
        checked: if checked.is_empty() {
            "nothing asked".to_string()
        } else {
            checked.join(", ")
        },
        passed: findings.is_empty(),
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

/// The error budget check: a finding when it failed, and the budget shown.
fn error_check(report: &Report, budget: ErrorBudget) -> (Option<Finding>, String) {
    let (allowed, shown) = match budget {
        ErrorBudget::Count(n) => (n, format!("{n}")),
        ErrorBudget::Fraction(f) => (
            (f * report.requests as f64).floor() as u64,
            format!("{:.2}%", f * 100.0),
        ),
    };
    let finding = (report.errors > allowed).then(|| Finding {
        check: "max-errors".into(),
        endpoints: report
            .endpoints
            .iter()
            .filter(|e| e.errors > 0)
            .map(|e| e.name.clone())
            .collect(),
        observed: report.errors as f64,
        bound: Some(allowed as f64),
        by: Some((report.errors - allowed) as f64),
        unit: "errors".into(),
        message: format!(
            "max-errors: {} of {} calls failed; at most {shown} allowed{}",
            report.errors,
            report.requests,
            error_breakdown(report)
        ),
    });
    (finding, shown)
}

/// Where errors happened, as " (pod-b: 12 UNAVAILABLE)".
fn error_breakdown(report: &Report) -> String {
    let parts: Vec<String> = report
        .endpoints
        .iter()
        .filter(|e| e.errors > 0)
        .map(|e| {
            let codes: Vec<String> = e
                .error_codes
                .iter()
                .map(|(c, n)| format!("{n} {c}"))
                .collect();
            format!("{}: {}", e.name, codes.join(", "))
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join("; "))
    }
}

fn round4(x: f64) -> f64 {
    (x * 10000.0).round() / 10000.0
}
