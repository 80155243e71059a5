//! The verdict's flags, shared by `bench` (judging one run) and `merge`
//! (judging the sum of many), and their conversion into [`Assertions`].

use clap::Args;

use grpclb::Failure;
use grpclb::verdict::{Assertions, ErrorBudget, Weights};

/// What the verdict checks; any failed check exits 1.
#[derive(Debug, Clone, Args)]
pub struct AssertArgs {
    /// Fail (exit 1) unless every endpoint got calls and its count lies within the bound of a fair
    /// balancer for the policy: exact ± calls in flight for round_robin, binomial (false alarm ≤ 1e-4
    /// per run) for random, least_request, pick_first and clusterip.
    #[arg(long)]
    pub assert_even: bool,
    /// Fail when an endpoint's share differs from its expected share by more than this (0..1).
    #[arg(long)]
    pub max_deviation: Option<f64>,
    /// Fail when the busiest endpoint got more than R times the calls of the idlest (after --weights).
    #[arg(long, value_name = "R")]
    pub max_ratio: Option<f64>,
    /// Fail when the chi-square goodness-of-fit p-value against the expected spread is below P.
    #[arg(long = "chi2-p", value_name = "P")]
    pub chi2_p: Option<f64>,
    /// Fail unless exactly this many endpoints answered calls.
    #[arg(long)]
    pub expect_endpoints: Option<usize>,
    /// Fail when an endpoint (expected to get calls) got none.
    #[arg(long)]
    pub all_endpoints_hit: bool,
    /// Fail when more calls failed than this: a count (0) or a percentage (1%).
    #[arg(long, value_parser = parse_error_budget)]
    pub max_errors: Option<ErrorBudget>,
    /// Fail when one endpoint's calls fail beyond this: a count (0) or a percentage of its calls
    /// (5%). With --assert-even the default is 1% of its calls or the calls in flight, whichever
    /// is more (what a pod that dies mid-run loses).
    #[arg(long, value_parser = parse_error_budget, value_name = "BUDGET")]
    pub max_endpoint_errors: Option<ErrorBudget>,
    /// Expect an unequal spread: by name (pod-a=9,pod-b=1; a name or address; unlisted endpoints
    /// expect nothing) or one weight per endpoint in target order (9,1).
    #[arg(long, value_parser = parse_weights)]
    pub weights: Option<Weights>,
}

fn parse_error_budget(s: &str) -> Result<ErrorBudget, String> {
    s.parse()
}

fn parse_weights(s: &str) -> Result<Weights, String> {
    s.parse()
}

impl AssertArgs {
    /// Validates the checks asked for; errors are usage errors (exit 2).
    pub fn assertions(&self) -> Result<Assertions, Failure> {
        if let Some(d) = self.max_deviation
            && !(0.0..=1.0).contains(&d)
        {
            return Err(Failure::Usage(format!(
                "--max-deviation {d} must be a share between 0 and 1 (0.10 = ±10 percentage points)"
            )));
        }
        if self.expect_endpoints == Some(0) {
            return Err(Failure::Usage(
                "--expect-endpoints must be at least 1".into(),
            ));
        }
        if let Some(r) = self.max_ratio
            && !(r.is_finite() && r >= 1.0)
        {
            return Err(Failure::Usage(format!(
                "--max-ratio {r} must be at least 1 (busiest ÷ idlest; 1.5 = the busiest may get 50% more)"
            )));
        }
        if let Some(p) = self.chi2_p
            && !(0.0..1.0).contains(&p)
        {
            return Err(Failure::Usage(format!(
                "--chi2-p {p} must be a p-value from 0 to below 1 (e.g. 0.001)"
            )));
        }
        if let Some(Weights::InOrder(weights)) = &self.weights
            && let Some(expected) = self.expect_endpoints
            && weights.len() != expected
        {
            return Err(Failure::Usage(format!(
                "--weights lists {} weights but --expect-endpoints is {expected}; give one weight per endpoint",
                weights.len()
            )));
        }
        Ok(Assertions {
            spread: self.assert_even,
            max_deviation: self.max_deviation,
            max_ratio: self.max_ratio,
            chi2_p: self.chi2_p,
            expect_endpoints: self.expect_endpoints,
            all_endpoints_hit: self.all_endpoints_hit || self.assert_even,
            max_errors: self.max_errors,
            endpoint_errors: self.max_endpoint_errors,
            weights: self.weights.clone(),
        })
    }
}
