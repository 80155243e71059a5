//! The verdict's words: each failed check, and each check a run was too
//! small to judge, as a sentence with its numbers and what to do.

use super::Finding;
use super::checks::{CHI2_MIN_EXPECTED, Judge, Violation, round4, worst_deviation, worst_ratio};
use super::spread::Spread;

impl Judge {
    /// A violation in words, with its numbers.
    pub(super) fn describe(
        &self,
        v: Violation,
        names: &[String],
        counts: &[u64],
        spread: &Spread,
    ) -> Finding {
        let total: u64 = counts.iter().sum();
        let pct = |x: f64| x * 100.0;
        let finding = |check: &str,
                       endpoints: Vec<String>,
                       observed: f64,
                       bound: f64,
                       unit: &str,
                       message: String| Finding {
            check: check.into(),
            endpoints,
            observed,
            bound: Some(bound),
            by: Some(round4((observed - bound).abs())),
            unit: unit.into(),
            message,
        };
        match v {
            Violation::Spread { i, n } => {
                let range = self.ranges[i];
                let (bound, side) = if n < range.low {
                    (range.low, "short by")
                } else {
                    (range.high, "over by")
                };
                let idle = if n == 0 { " (idle)" } else { "" };
                let message = format!(
                    "spread: {} got {n} of {total} calls ({:.1}%){idle}; a fair balancer gives it {}..{} \
                     (expected {:.0}, {:.1}%); {side} {}",
                    names[i],
                    pct(n as f64 / total.max(1) as f64),
                    range.low,
                    range.high,
                    total as f64 * self.shares[i],
                    pct(self.shares[i]),
                    n.abs_diff(bound),
                );
                finding(
                    "spread",
                    vec![names[i].clone()],
                    n as f64,
                    bound as f64,
                    "calls",
                    message,
                )
            }
            Violation::Deviation { i, share } => {
                let limit = self.assertions.max_deviation.unwrap_or_default();
                let expected = self.shares[i];
                let bound = if share > expected {
                    expected + limit
                } else {
                    expected - limit
                };
                let message = format!(
                    "max-deviation: {} got {:.1}% of calls; expected {:.1}% ± {:.1} points; off by {:.1} points beyond",
                    names[i],
                    pct(share),
                    pct(expected),
                    pct(limit),
                    pct((share - bound).abs())
                );
                finding(
                    "max-deviation",
                    vec![names[i].clone()],
                    round4(share),
                    round4(bound),
                    "share",
                    message,
                )
            }
            Violation::Ratio { ratio } => {
                let limit = self.assertions.max_ratio.unwrap_or_default();
                let relative = |i: usize| counts[i] as f64 / self.shares[i];
                let weighted: Vec<usize> = (0..counts.len())
                    .filter(|i| self.shares[*i] > 0.0)
                    .collect();
                let busiest = weighted
                    .iter()
                    .copied()
                    .max_by(|a, b| relative(*a).total_cmp(&relative(*b)));
                let idlest = weighted
                    .iter()
                    .copied()
                    .min_by(|a, b| relative(*a).total_cmp(&relative(*b)));
                let (Some(b), Some(l)) = (busiest, idlest) else {
                    return finding(
                        "max-ratio",
                        vec![],
                        0.0,
                        limit,
                        "ratio",
                        "max-ratio: no endpoint got calls".into(),
                    );
                };
                let shown = ratio.map_or("unbounded".to_string(), |r| format!("{r:.2}"));
                let message = format!(
                    "max-ratio: busiest {} ({} calls) / idlest {} ({} calls) = {shown}{}; at most {limit:.2} allowed",
                    names[b],
                    counts[b],
                    names[l],
                    counts[l],
                    if self.assertions.weights.is_some() {
                        " after weights"
                    } else {
                        ""
                    },
                );
                let mut f = finding(
                    "max-ratio",
                    vec![names[b].clone(), names[l].clone()],
                    ratio.unwrap_or(f64::INFINITY),
                    limit,
                    "ratio",
                    message,
                );
                if ratio.is_none() {
                    f.by = None;
                }
                f
            }
            Violation::Chi2 { p } => {
                let limit = self.assertions.chi2_p.unwrap_or_default();
                let message = format!(
                    "chi2-p: the spread fits the expected one with p = {p:.2e} (chi² {:.1}, {} degrees of freedom); at least {limit} required",
                    spread.chi2,
                    self.shares
                        .iter()
                        .filter(|p| **p > 0.0)
                        .count()
                        .saturating_sub(1)
                );
                finding("chi2-p", vec![], p, limit, "p", message)
            }
            Violation::Idle { i } => finding(
                "all-endpoints-hit",
                vec![names[i].clone()],
                0.0,
                1.0,
                "calls",
                format!("all-endpoints-hit: {} answered no call", names[i]),
            ),
            Violation::Endpoints { hit } => {
                let expected = self.assertions.expect_endpoints.unwrap_or_default();
                finding(
                    "expect-endpoints",
                    vec![],
                    hit as f64,
                    expected as f64,
                    "endpoints",
                    format!(
                        "expect-endpoints: {hit} endpoints answered calls; expected {expected}"
                    ),
                )
            }
        }
    }

    /// Why a check cannot be judged at this run's size, and what would do.
    pub(super) fn too_few_message(
        &self,
        check: &str,
        needed: Option<u64>,
        unserved: &[String],
    ) -> String {
        let unit = self.model.unit();
        let have = self.model.units();
        let k = self.shares.iter().filter(|p| **p > 0.0).count();
        let (what, why) = match check {
            "spread" => (
                "the spread".to_string(),
                "the bound cannot tell a fair endpoint from one that gets half its share"
                    .to_string(),
            ),
            "max-deviation" => (
                format!(
                    "--max-deviation {}",
                    self.assertions.max_deviation.unwrap_or_default()
                ),
                format!(
                    "a fair balancer deviates by up to {:.1} points by chance",
                    worst_deviation(&self.model, &self.shares) * 100.0
                ),
            ),
            "max-ratio" => (
                format!(
                    "--max-ratio {}",
                    self.assertions.max_ratio.unwrap_or_default()
                ),
                match worst_ratio(&self.model, &self.shares) {
                    Some(r) => format!("a fair balancer's busiest/idlest reaches {r:.2} by chance"),
                    None => {
                        "a fair balancer may leave an endpoint without calls by chance".to_string()
                    }
                },
            ),
            "chi2-p" => (
                "--chi2-p".to_string(),
                format!(
                    "the chi-square test needs {CHI2_MIN_EXPECTED} expected {unit} per endpoint"
                ),
            ),
            _ => (
                "--all-endpoints-hit".to_string(),
                "a fair balancer may leave an endpoint without calls by chance".to_string(),
            ),
        };
        let flag = if unit == "connections" {
            "--connections"
        } else {
            "--requests"
        };
        let pinned = if unit == "connections" && (have as usize) < k {
            let unserved = if unserved.is_empty() {
                String::new()
            } else {
                format!(" ({} got no calls)", unserved.join(", "))
            };
            format!(
                "; uneven by construction: clusterip pins each connection to one endpoint, so {have} {unit} \
                 reach at most {have} of {k} endpoints{unserved}; balance per call with --mode headless"
            )
        } else {
            String::new()
        };
        match needed {
            Some(needed) => format!(
                "too few {unit} to judge {what}: with {have} {unit} over {k} endpoints, {why}; \
                 judging needs at least {needed} {unit} ({flag} {needed}){pinned}"
            ),
            None => format!(
                "{what} cannot be judged at any number of {unit}: a fair balancer over {k} endpoints \
                 does not meet it ({}); loosen it{pinned}",
                self.model.describe()
            ),
        }
    }
}
