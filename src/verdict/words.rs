//! The verdict's words: each failed check, and each check a run was too
//! small to judge, as a sentence with its numbers and what to do.

use super::checks::{CHI2_MIN_EXPECTED, Judge, Violation, round4, worst_deviation, worst_ratio};
use super::spread::Spread;
use super::{Finding, NOT_JUDGED, NOTHING_ASKED, Verdict};

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
                let idle = match (n, &self.spans[i]) {
                    (0, Some(span)) => format!(" (idle, {span})"),
                    (0, None) => " (idle)".to_string(),
                    (_, Some(span)) => format!(" ({span})"),
                    (_, None) => String::new(),
                };
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

impl Verdict {
    /// The verdict's headline: what was checked and what happened, in that
    /// order, so that it reads the right way round. `PASS: <the checks that
    /// held>`, `FAIL: <what failed, for whom>`, or why nothing was judged.
    pub fn headline(&self) -> String {
        if !self.judged {
            return NOT_JUDGED.to_string();
        }
        if self.checked == NOTHING_ASKED {
            return NOTHING_ASKED.to_string();
        }
        if self.holds() {
            return format!("PASS: {}", self.checked);
        }
        let too_few: &[String] = self.too_few.as_ref().map_or(&[], |t| &t.checks);
        let mut parts: Vec<String> = Vec::new();
        let mut said_too_few = false;
        let mut seen: Vec<&str> = Vec::new();
        for finding in &self.failed {
            let check = finding.check.as_str();
            if finding.endpoints.is_empty() && too_few.iter().any(|c| c == check) {
                if !said_too_few {
                    said_too_few = true;
                    let t = self.too_few.as_ref();
                    parts.push(format!(
                        "too few {} to judge {}",
                        t.map_or("calls", |t| t.unit.as_str()),
                        too_few.join(", ")
                    ));
                }
                continue;
            }
            if seen.contains(&check) {
                continue;
            }
            seen.push(check);
            // Every endpoint any finding of this check names, once.
            let mut names: Vec<&str> = Vec::new();
            for f in self.failed.iter().filter(|f| f.check == check) {
                for name in &f.endpoints {
                    if !names.contains(&name.as_str()) {
                        names.push(name);
                    }
                }
            }
            let names = names.join(", ");
            let limit = finding.bound.map_or(String::new(), |b| format!("{b}"));
            parts.push(match check {
                "spread" => format!("spread outside the fair bound for {names}"),
                "all-endpoints-hit" => format!("{names} answered no call"),
                "reachable" => format!("{names} unreachable"),
                "max-deviation" => format!("share off by more than --max-deviation for {names}"),
                "max-ratio" => format!("busiest/idlest above {limit}"),
                "chi2-p" => format!("chi² p below {limit}"),
                "expect-endpoints" => {
                    format!("{} endpoints answered, {limit} expected", finding.observed)
                }
                "max-errors" => {
                    format!("{} calls failed, at most {limit} allowed", finding.observed)
                }
                "endpoint-errors" => format!("too many errors on {names}"),
                "weights" => "--weights do not fit the endpoints".to_string(),
                other => format!("{other} failed"),
            });
        }
        format!("FAIL: {}", parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use crate::pick::Policy;
    use crate::record::{EndpointKey, Tallies, Tally};
    use crate::verdict::{Assertions, Balancing, judge};

    fn tallies(counts: &[(&str, u64)]) -> Tallies {
        let rows = counts
            .iter()
            .map(|(name, n)| {
                let key = EndpointKey {
                    name: name.to_string(),
                    address: format!("{name}:80"),
                };
                (
                    key,
                    Tally {
                        ok: *n,
                        ..Tally::default()
                    },
                )
            })
            .collect();
        Tallies {
            rows,
            ..Tallies::default()
        }
    }

    fn even() -> Assertions {
        Assertions {
            spread: true,
            all_endpoints_hit: true,
            ..Assertions::default()
        }
    }

    const ROUND_ROBIN: Balancing = Balancing::PerCall {
        policy: Policy::RoundRobin,
        concurrency: 8,
    };

    #[test]
    fn a_failed_headline_says_what_failed_for_whom() {
        let v = judge(
            &tallies(&[("pod-1", 3000), ("pod-2", 1000), ("pod-3", 2000)]),
            &even(),
            ROUND_ROBIN,
        );
        let headline = v.headline();
        assert!(
            headline.starts_with("FAIL: spread outside the fair bound for pod-1, pod-2"),
            "{headline}"
        );
        assert!(!headline.contains("within"), "{headline}");
    }

    #[test]
    fn a_passed_headline_names_the_checks_that_held() {
        let v = judge(
            &tallies(&[("pod-1", 2000), ("pod-2", 2000), ("pod-3", 2000)]),
            &even(),
            ROUND_ROBIN,
        );
        assert!(
            v.headline()
                .starts_with("PASS: spread within the fair bound")
        );
        assert_eq!(v.passed, Some(true));
        assert!(v.judged);
    }

    #[test]
    fn an_idle_pod_is_named_once() {
        let v = judge(
            &tallies(&[("pod-1", 3000), ("pod-2", 3000), ("pod-3", 0)]),
            &even(),
            ROUND_ROBIN,
        );
        let about_idle = v.failures.iter().filter(|f| f.contains("pod-3")).count();
        assert_eq!(about_idle, 1, "{:#?}", v.failures);
        assert!(
            v.headline().contains("pod-3 answered no call"),
            "{}",
            v.headline()
        );
    }

    #[test]
    fn not_judged_is_neither_pass_nor_fail_in_json() {
        let v = judge(&tallies(&[("a", 10), ("b", 0)]), &even(), ROUND_ROBIN).not_judged();
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["judged"], false);
        assert!(json["passed"].is_null(), "{json}");
        assert!(
            v.holds(),
            "a run shown for contrast does not fail the exit code"
        );
        assert_eq!(v.headline(), crate::verdict::NOT_JUDGED);
    }

    #[test]
    fn a_run_too_small_to_tell_is_not_called_uneven() {
        // Three calls over three endpoints: perfect statistics, nothing to tell.
        let v = judge(
            &tallies(&[("a", 1), ("b", 1), ("c", 1)]),
            &Assertions::default(),
            Balancing::PerCall {
                policy: Policy::Random,
                concurrency: 1,
            },
        );
        assert_eq!(v.too_few_to_tell.as_deref(), Some("calls"));
        // One pod cannot be uneven, however the network picked.
        let one = judge(
            &tallies(&[("pod-1", 500)]),
            &Assertions::default(),
            Balancing::PerConnection {
                connections: 1,
                concurrency: 8,
            },
        );
        assert!(one.even && one.too_few_to_tell.is_none(), "{one:?}");
    }
}
