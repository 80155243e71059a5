//! What the user asked the verdict to check, and the expected spread.

use std::str::FromStr;

/// The checks asked for on the command line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Assertions {
    /// Every endpoint's count within the policy-aware bound of a fair
    /// balancer (`--assert-even`).
    pub spread: bool,
    /// Fail when any endpoint's share is further than this from its
    /// expected share (absolute, 0..1).
    pub max_deviation: Option<f64>,
    /// Fail when the busiest endpoint got more than this many times the
    /// calls of the idlest (after dividing by their weights).
    pub max_ratio: Option<f64>,
    /// Fail when the chi-square goodness-of-fit p-value against the
    /// expected spread is below this.
    pub chi2_p: Option<f64>,
    /// Fail unless exactly this many endpoints answered calls.
    pub expect_endpoints: Option<usize>,
    /// Fail when an endpoint expected to get calls got none.
    pub all_endpoints_hit: bool,
    pub max_errors: Option<ErrorBudget>,
    /// Fail when one endpoint's calls fail beyond this (`--max-endpoint-errors`);
    /// with `--assert-even` and no budget given, the larger of 1% of its
    /// calls and the calls in flight (what a pod that dies can lose).
    pub endpoint_errors: Option<ErrorBudget>,
    /// A deliberately unequal expectation; `None` = every endpoint equal.
    pub weights: Option<Weights>,
}

impl Assertions {
    /// True when any check was asked for (weights alone are no check).
    pub fn any(&self) -> bool {
        self.spread
            || self.max_deviation.is_some()
            || self.max_ratio.is_some()
            || self.chi2_p.is_some()
            || self.expect_endpoints.is_some()
            || self.all_endpoints_hit
            || self.max_errors.is_some()
            || self.endpoint_errors.is_some()
    }

    /// True when a check about how calls spread over endpoints was asked
    /// for (those need to know how many endpoints there are).
    pub fn judges_spread(&self) -> bool {
        self.spread
            || self.max_deviation.is_some()
            || self.max_ratio.is_some()
            || self.chi2_p.is_some()
            || self.all_endpoints_hit
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

/// The expected relative weight of each endpoint (`--weights`).
///
/// Either by name (`pod-a=9,pod-b=1`: an endpoint's name or address; an
/// endpoint not listed is expected to get no calls) or by position
/// (`9,1`: one weight per endpoint in the report's order, which is the
/// order the target lists them).
#[derive(Debug, Clone, PartialEq)]
pub enum Weights {
    ByName(Vec<(String, f64)>),
    InOrder(Vec<f64>),
}

impl FromStr for Weights {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let example = "e.g. --weights pod-a=9,pod-b=1 or --weights 9,1";
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(format!("--weights {s:?} has an empty entry; {example}"));
        }
        let weight = |text: &str| -> Result<f64, String> {
            match text.trim().parse::<f64>() {
                Ok(w) if w.is_finite() && w >= 0.0 => Ok(w),
                _ => Err(format!(
                    "--weights: {text:?} is not a weight (a number ≥ 0); {example}"
                )),
            }
        };
        let named = parts.iter().filter(|p| p.contains('=')).count();
        let weights = if named == parts.len() {
            let mut pairs: Vec<(String, f64)> = Vec::new();
            for part in &parts {
                let (name, w) = part.split_once('=').unwrap_or((part, ""));
                let name = name.trim();
                if name.is_empty() {
                    return Err(format!("--weights: {part:?} names no endpoint; {example}"));
                }
                if pairs.iter().any(|(n, _)| n == name) {
                    return Err(format!("--weights names {name:?} twice; {example}"));
                }
                pairs.push((name.to_string(), weight(w)?));
            }
            Weights::ByName(pairs)
        } else if named == 0 {
            Weights::InOrder(parts.iter().map(|p| weight(p)).collect::<Result<_, _>>()?)
        } else {
            return Err(format!(
                "--weights {s:?} mixes name=weight and bare weights; use one form, {example}"
            ));
        };
        if !weights.values().iter().sum::<f64>().is_finite() {
            return Err(format!(
                "--weights {s:?}: the weights are too large to add up; use smaller numbers (9,1)"
            ));
        }
        if weights.values().iter().all(|w| *w == 0.0) {
            return Err(format!(
                "--weights {s:?}: at least one weight must be above 0"
            ));
        }
        Ok(weights)
    }
}

impl Weights {
    fn values(&self) -> Vec<f64> {
        match self {
            Weights::ByName(pairs) => pairs.iter().map(|(_, w)| *w).collect(),
            Weights::InOrder(ws) => ws.clone(),
        }
    }

    /// Each endpoint's expected share, in the order of `endpoints` (name,
    /// address); endpoints named in the weights but absent are appended to
    /// `endpoints` (they got no calls). Errors when positional weights do
    /// not match the number of endpoints.
    pub fn shares(&self, endpoints: &mut Vec<(String, String)>) -> Result<Vec<f64>, String> {
        let raw: Vec<f64> = match self {
            Weights::InOrder(ws) => {
                if ws.len() != endpoints.len() {
                    return Err(format!(
                        "--weights lists {} weights but the run saw {} endpoints ({}); \
                         give one weight per endpoint or name them (pod-a=9,pod-b=1)",
                        ws.len(),
                        endpoints.len(),
                        endpoints
                            .iter()
                            .map(|(n, _)| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                ws.clone()
            }
            Weights::ByName(pairs) => {
                for (name, _) in pairs {
                    if !endpoints.iter().any(|(n, a)| n == name || a == name) {
                        endpoints.push((name.clone(), String::new()));
                    }
                }
                endpoints
                    .iter()
                    .map(|(n, a)| {
                        pairs
                            .iter()
                            .find(|(name, _)| name == n || name == a)
                            .map_or(0.0, |(_, w)| *w)
                    })
                    .collect()
            }
        };
        let total: f64 = raw.iter().sum();
        Ok(raw.iter().map(|w| w / total).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_budget_parses_counts_and_percentages() {
        assert_eq!("0".parse(), Ok(ErrorBudget::Count(0)));
        assert_eq!("1%".parse(), Ok(ErrorBudget::Fraction(0.01)));
        assert!("lots".parse::<ErrorBudget>().is_err());
        assert!("150%".parse::<ErrorBudget>().is_err());
    }

    #[test]
    fn weights_parse_by_name_or_in_order() {
        assert_eq!(
            "pod-a=9, pod-b=1".parse(),
            Ok(Weights::ByName(vec![
                ("pod-a".into(), 9.0),
                ("pod-b".into(), 1.0)
            ]))
        );
        assert_eq!("9,1".parse(), Ok(Weights::InOrder(vec![9.0, 1.0])));
        assert!("pod-a=9,1".parse::<Weights>().is_err());
        assert!("0,0".parse::<Weights>().is_err());
        assert!("a=1,a=2".parse::<Weights>().is_err());
        assert!("-1,2".parse::<Weights>().is_err());
    }

    #[test]
    fn named_weights_cover_unseen_endpoints_and_unlisted_get_nothing() {
        let weights: Weights = "pod-a=9,pod-c=1".parse().unwrap();
        let mut endpoints = vec![
            ("pod-a".to_string(), "10.0.0.1:80".to_string()),
            ("pod-b".to_string(), "10.0.0.2:80".to_string()),
        ];
        let shares = weights.shares(&mut endpoints).unwrap();
        assert_eq!(endpoints.len(), 3);
        assert_eq!(shares, vec![0.9, 0.0, 0.1]);
    }

    #[test]
    fn positional_weights_must_match_the_endpoint_count() {
        let weights: Weights = "9,1".parse().unwrap();
        let mut endpoints = vec![("a".to_string(), String::new())];
        assert!(weights.shares(&mut endpoints).is_err());
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_error_budget_parses_or_names_itself(text in "[ -~]{0,20}") {
                match text.parse::<ErrorBudget>() {
                    Ok(ErrorBudget::Fraction(f)) => prop_assert!((0.0..=1.0).contains(&f)),
                    Ok(ErrorBudget::Count(_)) => {}
                    Err(message) => {
                        prop_assert!(message.contains(&format!("{:?}", text.trim())), "{}", message);
                    }
                }
            }

            #[test]
            fn any_weights_parse_to_usable_shares_or_name_the_flag(
                text in "[a-z0-9=,. e+-]{0,30}|[0-9e.]{1,12}(,[0-9e.]{1,12}){0,3}",
            ) {
                match text.parse::<Weights>() {
                    Ok(weights) => {
                        let values = weights.values();
                        let total: f64 = values.iter().sum();
                        prop_assert!(total.is_finite() && total > 0.0);
                        prop_assert!(values.iter().all(|w| w.is_finite() && *w >= 0.0));
                        let mut endpoints: Vec<(String, String)> = match &weights {
                            Weights::InOrder(ws) => (0..ws.len()).map(|i| (format!("e{i}"), String::new())).collect(),
                            Weights::ByName(_) => Vec::new(),
                        };
                        let shares = weights.shares(&mut endpoints).expect("shares");
                        prop_assert!(shares.iter().all(|s| s.is_finite()));
                    }
                    Err(message) => prop_assert!(message.starts_with("--weights"), "{}", message),
                }
            }
        }
    }
}
