//! The error checks: the run's error budget (`--max-errors`), each
//! endpoint's (`--max-endpoint-errors`, on by default with `--assert-even`),
//! and endpoints that could not be reached at all.

use super::bound::Balancing;
use super::{ErrorBudget, Finding};
use crate::record::{Tallies, codes_text};

/// One endpoint's error allowance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EndpointBudget {
    /// As asked with `--max-endpoint-errors`.
    Asked(ErrorBudget),
    /// The default of `--assert-even`: 1% of the endpoint's calls, or the
    /// calls in flight if more (what a pod that dies mid-run loses).
    Default { in_flight: u64 },
}

impl EndpointBudget {
    /// The default of `--assert-even` for a run that balances this way.
    pub fn default_for(balancing: Balancing) -> EndpointBudget {
        EndpointBudget::Default {
            in_flight: balancing.concurrency() as u64,
        }
    }

    /// Errors allowed out of `requests` calls.
    fn allowed(self, requests: u64) -> u64 {
        match self {
            EndpointBudget::Asked(budget) => budget.allowed(requests),
            EndpointBudget::Default { in_flight } => {
                ErrorBudget::Fraction(0.01).allowed(requests).max(in_flight)
            }
        }
    }

    fn shown(self) -> String {
        match self {
            EndpointBudget::Asked(budget) => budget.shown(),
            EndpointBudget::Default { in_flight } => {
                format!("1% or {in_flight} (calls in flight)")
            }
        }
    }
}

impl ErrorBudget {
    /// Errors allowed out of `requests` calls.
    pub fn allowed(self, requests: u64) -> u64 {
        match self {
            ErrorBudget::Count(n) => n,
            ErrorBudget::Fraction(f) => (f * requests as f64).floor() as u64,
        }
    }

    /// The budget as written: `0` or `1.00%`.
    pub fn shown(self) -> String {
        match self {
            ErrorBudget::Count(n) => format!("{n}"),
            ErrorBudget::Fraction(f) => format!("{:.2}%", f * 100.0),
        }
    }
}

/// One finding per endpoint that was never reached and answered nothing.
pub(super) fn unreachable(
    endpoints: &[(String, String)],
    unreachable: &[Option<&String>],
) -> Vec<Finding> {
    endpoints
        .iter()
        .zip(unreachable)
        .filter_map(|((name, address), why)| {
            let why = (*why)?;
            let who = if name == address {
                name.clone()
            } else {
                format!("{name} ({address})")
            };
            Some(Finding {
                check: "reachable".into(),
                endpoints: vec![name.clone()],
                observed: 0.0,
                bound: Some(1.0),
                by: Some(1.0),
                unit: "calls".into(),
                message: format!("reachable: {who} unreachable for the whole run: {why}"),
            })
        })
        .collect()
}

/// The run's error budget: a finding when it failed, and the budget shown.
pub(super) fn run_check(tallies: &Tallies, budget: ErrorBudget) -> (Option<Finding>, String) {
    let total = tallies.total();
    let allowed = budget.allowed(total.requests());
    let shown = budget.shown();
    let finding = (total.errors > allowed).then(|| Finding {
        check: "max-errors".into(),
        endpoints: tallies
            .rows
            .iter()
            .filter(|(_, t)| t.errors > 0)
            .map(|(key, _)| key.name.clone())
            .collect(),
        observed: total.errors as f64,
        bound: Some(allowed as f64),
        by: Some((total.errors - allowed) as f64),
        unit: "errors".into(),
        message: format!(
            "max-errors: {} of {} calls failed; at most {shown} allowed{}",
            total.errors,
            total.requests(),
            breakdown(tallies)
        ),
    });
    (finding, shown)
}

/// Each endpoint's error allowance: one finding per endpoint beyond it,
/// with its status codes, and the allowance shown.
pub(super) fn endpoint_check(tallies: &Tallies, budget: EndpointBudget) -> (Vec<Finding>, String) {
    let findings = tallies
        .endpoints()
        .filter_map(|(key, tally)| {
            let allowed = budget.allowed(tally.requests());
            (tally.errors > allowed).then(|| Finding {
                check: "endpoint-errors".into(),
                endpoints: vec![key.name.clone()],
                observed: tally.errors as f64,
                bound: Some(allowed as f64),
                by: Some((tally.errors - allowed) as f64),
                unit: "errors".into(),
                message: format!(
                    "endpoint-errors: {} failed {} of its {} calls ({}); at most {} allowed per endpoint",
                    key.name,
                    tally.errors,
                    tally.requests(),
                    codes_text(&tally.error_codes),
                    budget.shown()
                ),
            })
        })
        .collect();
    (findings, budget.shown())
}

/// Where errors happened, as " (pod-b: 12 UNAVAILABLE)".
fn breakdown(tallies: &Tallies) -> String {
    let parts: Vec<String> = tallies
        .rows
        .iter()
        .filter(|(_, t)| t.errors > 0)
        .map(|(key, t)| format!("{}: {}", key.name, codes_text(&t.error_codes)))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join("; "))
    }
}
