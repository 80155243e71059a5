//! The verdict: did the spread and the error count hold what was asked?
//! It decides the exit code and says in words what failed.

use std::str::FromStr;

use serde::Serialize;
use statrs::distribution::{ChiSquared, ContinuousCDF};

use crate::report::Report;

/// Tolerance used by `--assert-even` and for the `even` field when no
/// `--max-deviation` is given.
pub const DEFAULT_MAX_DEVIATION: f64 = 0.10;

/// The checks asked for on the command line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Assertions {
    /// Fail when any endpoint's share is further than this from 1/k.
    pub max_deviation: Option<f64>,
    /// Fail unless exactly this many endpoints were seen.
    pub expect_endpoints: Option<usize>,
    /// Fail when a known endpoint got no calls.
    pub all_endpoints_hit: bool,
    pub max_errors: Option<ErrorBudget>,
}

impl Assertions {
    /// True when any check was asked for.
    pub fn any(&self) -> bool {
        *self != Assertions::default()
    }
}

/// How many errors are tolerated: a count or a fraction of all calls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ErrorBudget {
    Count(u64),
    Fraction(f64),
}

impl FromStr for ErrorBudget {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Some(percent) = s.strip_suffix('%') {
            return match percent.trim().parse::<f64>() {
                Ok(p) if (0.0..=100.0).contains(&p) => Ok(ErrorBudget::Fraction(p / 100.0)),
                _ => Err(format!(
                    "{s:?} is not a percentage from 0% to 100% (e.g. 1%)"
                )),
            };
        }
        s.parse::<u64>()
            .map(ErrorBudget::Count)
            .map_err(|_| format!("{s:?} is neither a count (e.g. 0) nor a percentage (e.g. 1%)"))
    }
}

/// The judgement of one run; the JSON `verdict` object.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Verdict {
    /// Every endpoint's share within the tolerance of the fair share.
    pub even: bool,
    /// The largest |share − 1/k| over endpoints.
    pub max_deviation: f64,
    /// Coefficient of variation of per-endpoint request counts.
    pub cv: f64,
    /// Chi-square goodness-of-fit p-value against a uniform spread.
    pub chi2_p: f64,
    /// The checks applied, in words.
    pub checked: String,
    /// True when every check asked for held.
    pub passed: bool,
    /// One sentence per failed check.
    pub failures: Vec<String>,
}

/// Judges a report against the assertions.
pub fn judge(report: &Report, assertions: &Assertions) -> Verdict {
    let mut counts: Vec<(String, u64)> = report
        .endpoint_rows()
        .map(|e| (e.name.clone(), e.requests))
        .collect();
    // Endpoints the user says exist but that never answered count as idle.
    if let Some(expected) = assertions.expect_endpoints {
        for i in counts.len()..expected {
            counts.push((format!("(unseen endpoint {})", i + 1), 0));
        }
    }
    let spread = Spread::of(&counts);
    let tolerance = assertions.max_deviation.unwrap_or(DEFAULT_MAX_DEVIATION);
    let mut checked = Vec::new();
    let mut failures = Vec::new();
    let k = counts.len();
    let fair = if k == 0 { 0.0 } else { 1.0 / k as f64 };

    if let Some(limit) = assertions.max_deviation {
        checked.push(format!("max-deviation <= {limit:.2}"));
        for (name, n) in &counts {
            let share = spread.share(*n);
            if (share - fair).abs() > limit {
                failures.push(format!(
                    "{name} got {:.1}% of calls; fair share {:.1}% ± {:.0}%",
                    share * 100.0,
                    fair * 100.0,
                    limit * 100.0
                ));
            }
        }
    }
    if assertions.all_endpoints_hit {
        checked.push("every endpoint hit".to_string());
        for (name, n) in &counts {
            let already_named = failures
                .iter()
                .any(|f| f.starts_with(&format!("{name} got")));
            if *n == 0 && !already_named {
                failures.push(format!("{name} got no calls"));
            }
        }
    }
    if let Some(expected) = assertions.expect_endpoints {
        checked.push(format!("endpoints == {expected}"));
        let hit = counts.iter().filter(|(_, n)| *n > 0).count();
        if hit != expected {
            failures.push(format!(
                "{hit} endpoints answered calls; expected {expected}"
            ));
        }
    }
    if let Some(budget) = assertions.max_errors {
        let (allowed, shown) = match budget {
            ErrorBudget::Count(n) => (n, format!("{n}")),
            ErrorBudget::Fraction(f) => (
                (f * report.requests as f64).floor() as u64,
                format!("{:.2}%", f * 100.0),
            ),
        };
        checked.push(format!("errors <= {shown}"));
        if report.errors > allowed {
            failures.push(format!(
                "{} of {} calls failed; at most {shown} allowed{}",
                report.errors,
                report.requests,
                error_breakdown(report)
            ));
        }
    }
    Verdict {
        even: k > 0 && spread.max_deviation <= tolerance,
        max_deviation: round4(spread.max_deviation),
        cv: round4(spread.cv),
        chi2_p: round4(spread.chi2_p),
        checked: if checked.is_empty() {
            "nothing asked".to_string()
        } else {
            checked.join(", ")
        },
        passed: failures.is_empty(),
        failures,
    }
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

/// Spread statistics of per-endpoint counts.
struct Spread {
    total: u64,
    max_deviation: f64,
    cv: f64,
    chi2_p: f64,
}

impl Spread {
    fn of(counts: &[(String, u64)]) -> Spread {
        let k = counts.len();
        let total: u64 = counts.iter().map(|(_, n)| n).sum();
        if k == 0 || total == 0 {
            return Spread {
                total,
                max_deviation: if k == 0 { 0.0 } else { 1.0 / k as f64 },
                cv: 0.0,
                chi2_p: 1.0,
            };
        }
        let fair = 1.0 / k as f64;
        let mean = total as f64 / k as f64;
        let max_deviation = counts
            .iter()
            .map(|(_, n)| (*n as f64 / total as f64 - fair).abs())
            .fold(0.0, f64::max);
        let variance = counts
            .iter()
            .map(|(_, n)| (*n as f64 - mean).powi(2))
            .sum::<f64>()
            / k as f64;
        let chi2: f64 = counts
            .iter()
            .map(|(_, n)| (*n as f64 - mean).powi(2) / mean)
            .sum();
        let chi2_p = if k < 2 {
            1.0
        } else {
            ChiSquared::new((k - 1) as f64)
                .map(|d| d.sf(chi2))
                .unwrap_or(1.0)
        };
        Spread {
            total,
            max_deviation,
            cv: variance.sqrt() / mean,
            chi2_p,
        }
    }

    fn share(&self, n: u64) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            n as f64 / self.total as f64
        }
    }
}

fn round4(x: f64) -> f64 {
    (x * 10000.0).round() / 10000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(ns: &[u64]) -> Vec<(String, u64)> {
        ns.iter()
            .enumerate()
            .map(|(i, n)| (format!("pod-{i}"), *n))
            .collect()
    }

    #[test]
    fn even_counts_have_no_deviation_and_high_p() {
        let s = Spread::of(&counts(&[100, 100, 100]));
        assert_eq!(s.max_deviation, 0.0);
        assert_eq!(s.cv, 0.0);
        assert!((s.chi2_p - 1.0).abs() < 1e-9);
    }

    #[test]
    fn one_pod_taking_everything_is_maximally_uneven() {
        let s = Spread::of(&counts(&[300, 0, 0]));
        assert!((s.max_deviation - 2.0 / 3.0).abs() < 1e-9);
        assert!(s.chi2_p < 1e-9);
    }

    #[test]
    fn error_budget_parses_counts_and_percentages() {
        assert_eq!("0".parse(), Ok(ErrorBudget::Count(0)));
        assert_eq!("1%".parse(), Ok(ErrorBudget::Fraction(0.01)));
        assert!("lots".parse::<ErrorBudget>().is_err());
        assert!("150%".parse::<ErrorBudget>().is_err());
    }
}
