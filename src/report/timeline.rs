//! The run's time axis in the report: each endpoint's calls per bucket (and
//! its sparkline), the pool's epochs, how fast the client followed the
//! resolver (discovery and drain lag), and, behind a Service address, which
//! pod each connection landed on.

use serde::Serialize;

use crate::record::{Epoch, Timeline};

/// One endpoint's calls over the measured window, ok and failed, per
/// bucket of `bucket_s` seconds from its start.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TimelineReport {
    pub bucket_s: f64,
    pub ok: Vec<u64>,
    pub errors: Vec<u64>,
}

impl TimelineReport {
    /// The timeline widened to `width_us` and padded to `buckets`.
    pub fn of(timeline: &Timeline, width_us: u64, buckets: usize) -> TimelineReport {
        let mut timeline = timeline.clone();
        timeline.widen(width_us);
        let len = buckets.max(timeline.ok.len());
        timeline.ok.resize(len, 0);
        timeline.errors.resize(len, 0);
        TimelineReport {
            bucket_s: width_us as f64 / 1e6,
            ok: timeline.ok,
            errors: timeline.errors,
        }
    }

    /// Calls (ok and failed) per bucket.
    pub fn calls(&self) -> Vec<u64> {
        self.ok
            .iter()
            .zip(&self.errors)
            .map(|(o, e)| o + e)
            .collect()
    }
}

/// Eight heights of a sparkline; a bucket with no call is blank.
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// `calls` squeezed into `width` characters, each as tall as its calls
/// against `peak` (the busiest cell over every endpoint, so endpoints
/// compare): blank for none, `▁` for a few, `█` for the busiest.
pub fn sparkline(calls: &[u64], width: usize, peak: u64) -> String {
    squeeze(calls, width)
        .iter()
        .map(|&n| {
            if n == 0 || peak == 0 {
                ' '
            } else {
                let level = ((n as f64 / peak as f64) * 8.0).ceil() as usize;
                BARS[level.clamp(1, 8) - 1]
            }
        })
        .collect()
}

/// Adds neighbouring buckets so at most `width` remain.
pub fn squeeze(calls: &[u64], width: usize) -> Vec<u64> {
    if calls.len() <= width || width == 0 {
        return calls.to_vec();
    }
    let per = calls.len().div_ceil(width);
    calls.chunks(per).map(|c| c.iter().sum()).collect()
}

/// A span with one ready set, as the JSON shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EpochReport {
    pub from_s: f64,
    pub to_s: f64,
    pub calls: u64,
    pub ready: Vec<String>,
}

impl From<&Epoch> for EpochReport {
    fn from(epoch: &Epoch) -> EpochReport {
        EpochReport {
            from_s: epoch.from_s,
            to_s: epoch.to_s,
            calls: epoch.calls,
            ready: epoch.ready.clone(),
        }
    }
}

/// How fast the client followed the resolver, over the endpoints that
/// joined (discovery) or left (drain) during the run.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct LagReport {
    pub discovery: Option<LagSummary>,
    pub drain: Option<LagSummary>,
}

/// The median and the largest lag over some endpoints.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LagSummary {
    pub endpoints: usize,
    pub p50_s: f64,
    pub max_s: f64,
}

impl LagSummary {
    /// The summary of these lags; `None` when there are none.
    pub fn of(mut lags: Vec<f64>) -> Option<LagSummary> {
        if lags.is_empty() {
            return None;
        }
        lags.sort_by(f64::total_cmp);
        Some(LagSummary {
            endpoints: lags.len(),
            p50_s: lags[(lags.len() - 1) / 2],
            max_s: lags[lags.len() - 1],
        })
    }
}

impl LagReport {
    /// The line under the table: "discovery lag: p50 0.05s, max 0.05s over
    /// 1 endpoint; drain lag: …"; `None` when nothing joined or left.
    pub fn line(&self) -> Option<String> {
        let part = |what: &str, lag: &Option<LagSummary>| {
            lag.as_ref().map(|l| {
                format!(
                    "{what} lag: p50 {:.2}s, max {:.2}s over {} endpoint{}",
                    l.p50_s,
                    l.max_s,
                    l.endpoints,
                    if l.endpoints == 1 { "" } else { "s" }
                )
            })
        };
        let parts: Vec<String> = [
            part("discovery", &self.discovery),
            part("drain", &self.drain),
        ]
        .into_iter()
        .flatten()
        .collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// One connection to a Service address and the pods its (re)connections
/// landed on, in order.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConnectionGenerations {
    pub connection: String,
    pub generations: Vec<GenerationReport>,
}

/// One (re)connection: when it became ready and who answered on it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GenerationReport {
    pub at_s: f64,
    /// The answering pod's identity; null when no call answered on it.
    pub pod: Option<String>,
    /// The pod's address, when known from the pods' list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sparkline_is_blank_where_nothing_was_sent() {
        assert_eq!(sparkline(&[0, 0, 8, 8, 4, 1], 6, 8), "  ██▄▁");
        assert_eq!(sparkline(&[1, 1, 1, 1, 0, 0, 0, 0], 4, 4), "▄▄  ");
        assert_eq!(sparkline(&[], 10, 0), "");
    }

    #[test]
    fn lag_summaries_take_the_median_and_the_largest() {
        let lag = LagSummary::of(vec![0.3, 0.1, 0.2]).expect("some");
        assert_eq!((lag.endpoints, lag.p50_s, lag.max_s), (3, 0.2, 0.3));
        assert!(LagSummary::of(vec![]).is_none());
        let report = LagReport {
            discovery: Some(lag),
            drain: None,
        };
        assert_eq!(
            report.line().as_deref(),
            Some("discovery lag: p50 0.20s, max 0.30s over 3 endpoints")
        );
    }
}
