//! Descriptive statistics of how calls spread over endpoints, against the
//! expected shares (equal unless `--weights`).

use statrs::distribution::{ChiSquared, ContinuousCDF};

/// Spread statistics of per-endpoint counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// The largest |share − expected share| over endpoints.
    pub max_deviation: f64,
    /// Coefficient of variation of count ÷ expected count.
    pub cv: f64,
    /// Chi-square statistic against the expected shares.
    pub chi2: f64,
    /// Its p-value (k − 1 degrees of freedom).
    pub chi2_p: f64,
    /// Busiest ÷ idlest, each divided by its weight; `None` when an
    /// endpoint expected to get calls got none.
    pub max_ratio: Option<f64>,
}

impl Spread {
    /// Statistics of `counts` against `shares` (same order, summing to 1).
    /// `unit_scale` turns calls into independent units for the chi-square
    /// test: 1 per call, or connections ÷ calls when a pod is picked per
    /// connection.
    pub fn of(counts: &[u64], shares: &[f64], unit_scale: f64) -> Spread {
        let total: u64 = counts.iter().sum();
        let expected: Vec<(u64, f64)> = counts
            .iter()
            .zip(shares)
            .filter(|(_, p)| **p > 0.0)
            .map(|(n, p)| (*n, *p))
            .collect();
        let max_deviation = counts
            .iter()
            .zip(shares)
            .map(|(n, p)| {
                let share = if total == 0 {
                    0.0
                } else {
                    *n as f64 / total as f64
                };
                (share - p).abs()
            })
            .fold(0.0, f64::max);
        if total == 0 || expected.is_empty() {
            return Spread {
                max_deviation,
                cv: 0.0,
                chi2: 0.0,
                chi2_p: 1.0,
                max_ratio: None,
            };
        }
        // Each endpoint's count relative to what it should have got.
        let relative: Vec<f64> = expected
            .iter()
            .map(|(n, p)| *n as f64 / (total as f64 * p))
            .collect();
        let mean = relative.iter().sum::<f64>() / relative.len() as f64;
        let variance =
            relative.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / relative.len() as f64;
        let idlest = relative.iter().copied().fold(f64::INFINITY, f64::min);
        let busiest = relative.iter().copied().fold(0.0, f64::max);
        let unexpected: u64 = counts
            .iter()
            .zip(shares)
            .filter(|(_, p)| **p <= 0.0)
            .map(|(n, _)| *n)
            .sum();
        let units = total as f64 * unit_scale;
        let chi2: f64 = if unexpected > 0 {
            f64::INFINITY
        } else {
            expected
                .iter()
                .map(|(n, p)| {
                    let observed = *n as f64 * unit_scale;
                    let wanted = units * p;
                    (observed - wanted).powi(2) / wanted
                })
                .sum()
        };
        let chi2_p = if expected.len() < 2 {
            if unexpected > 0 { 0.0 } else { 1.0 }
        } else if chi2.is_infinite() {
            0.0
        } else {
            ChiSquared::new((expected.len() - 1) as f64)
                .map(|d| d.sf(chi2))
                .unwrap_or(1.0)
        };
        Spread {
            max_deviation,
            cv: if mean > 0.0 {
                variance.sqrt() / mean
            } else {
                0.0
            },
            chi2,
            chi2_p,
            max_ratio: (idlest > 0.0).then(|| busiest / idlest),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_counts_have_no_deviation_and_high_p() {
        let s = Spread::of(&[100, 100, 100], &[1.0 / 3.0; 3], 1.0);
        assert!(s.max_deviation < 1e-12);
        assert!(s.cv < 1e-12);
        assert!((s.chi2_p - 1.0).abs() < 1e-9);
        assert!((s.max_ratio.unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn one_pod_taking_everything_is_maximally_uneven() {
        let s = Spread::of(&[300, 0, 0], &[1.0 / 3.0; 3], 1.0);
        assert!((s.max_deviation - 2.0 / 3.0).abs() < 1e-9);
        assert!(s.chi2_p < 1e-9);
        assert_eq!(s.max_ratio, None);
    }

    #[test]
    fn weighted_counts_are_judged_against_their_weights() {
        let s = Spread::of(&[900, 100], &[0.9, 0.1], 1.0);
        assert!(s.max_deviation < 1e-12);
        assert!((s.max_ratio.unwrap() - 1.0).abs() < 1e-12);
        assert!(s.chi2_p > 0.99);
    }

    #[test]
    fn calls_to_an_endpoint_expected_to_get_none_reject_the_fit() {
        let s = Spread::of(&[500, 500, 10], &[0.5, 0.5, 0.0], 1.0);
        assert_eq!(s.chi2_p, 0.0);
    }
}
