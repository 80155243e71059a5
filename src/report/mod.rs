//! The report: what a run did, per endpoint and in total, as a stable JSON
//! document (`--output json`) or human tables.

mod client;
mod compare;
pub mod endpoints;
pub mod histogram;
mod provenance;
mod style;
mod table;
mod timeline;

use serde::Serialize;

pub use client::{AskedLoad, ClientReport, LoadReport, client_line, load_and_client};
pub use compare::{comparison_table, conclusion};
pub use provenance::{BalancingReport, ClientIdentity, SCHEMA, after, parse_rfc3339, rfc3339};
pub use style::{Style, wrap};
pub use table::render;
pub use timeline::{
    ConnectionGenerations, EpochReport, GenerationReport, LagReport, LagSummary, TimelineReport,
    sparkline,
};

use std::time::SystemTime;

use crate::record::{NO_ENDPOINT, Tallies, Tally};
use crate::verdict::{Balancing, Verdict};

/// The reports as one JSON document: the report itself for one run,
/// `{"runs": [...]}` for several.
pub fn json(reports: &[Report]) -> Result<String, serde_json::Error> {
    if let [report] = reports {
        serde_json::to_string_pretty(report)
    } else {
        serde_json::to_string_pretty(&serde_json::json!({ "runs": reports }))
    }
}

/// The reports as human tables laid out for `style`; several runs add the
/// side-by-side comparison and its conclusion.
pub fn tables(reports: &[Report], style: &Style) -> String {
    let mut text: Vec<String> = reports.iter().map(|r| render(r, style)).collect();
    if reports.len() > 1 {
        text.push(comparison_table(reports, style));
        text.push(style::wrap(&conclusion(reports), style, 2));
    }
    text.join("\n")
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    fn of(tally: &Tally) -> Latency {
        let h = &tally.latency_us;
        if h.is_empty() {
            return Latency::default();
        }
        let ms = |us: u64| round3(us as f64 / 1000.0);
        Latency {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        }
    }
}

/// One endpoint's row.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointReport {
    pub name: String,
    pub address: String,
    pub requests: u64,
    pub ok: u64,
    pub errors: u64,
    /// This endpoint's fraction of all calls (0..1).
    pub share: f64,
    pub latency_ms: Latency,
    /// Errors by status code name; empty when there were none.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub error_codes: std::collections::BTreeMap<String, u64>,
    /// The first few distinct `grpc-message`s per status code; empty when none came.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub error_messages: std::collections::BTreeMap<String, Vec<String>>,

    // -- For `grpclb merge` (issue 13). --
    /// Every successful call's latency in µs (HdrHistogram V2 + DEFLATE,
    /// base64), so that merged percentiles are exact.
    pub latency_histogram: String,

    // -- Faults (issue 9). --
    /// The connection's states during the run (headless runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<StateReport>,

    // -- Pods that come and go (issue 10). Seconds count from the start
    // of the measured window (negative: before it).
    /// Calls per bucket of the window, ok and failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeline: Option<TimelineReport>,
    /// When the pool learned of the endpoint (headless runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub joined_s: Option<f64>,
    /// When the resolver removed it; absent while it stayed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left_s: Option<f64>,
    /// When its first and last recorded call were sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_call_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_call_s: Option<f64>,
    /// Joined during the run: from joining to its first call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovery_lag_s: Option<f64>,
    /// Left during the run: from its removal to its last call (0 when no
    /// call went to it after).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain_lag_s: Option<f64>,
}

/// One endpoint's connection states, as gRPC models them: `connecting`,
/// `ready`, `transient_failure`, `draining`, `shutdown`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StateReport {
    /// The state when the run ended.
    pub now: String,
    /// Seconds of the measured run the endpoint was not ready.
    pub unavailable_s: f64,
    /// Every change, oldest first; `at_s` counts from the end of the
    /// warm-up (negative: before it).
    pub transitions: Vec<TransitionReport>,
}

/// One state change.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TransitionReport {
    pub at_s: f64,
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A change of the endpoint set during the run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChangeReport {
    /// Seconds since the measured run started (negative: during warm-up).
    pub at_s: f64,
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

/// A whole run, in the form of the design's JSON document.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `clusterip` or `headless`.
    pub mode: String,
    /// The per-call policy; `per-connection` in clusterip mode.
    pub policy: String,
    pub target: String,
    /// The RPC sent.
    pub call: String,
    /// HTTP/2 connections held (clusterip) or endpoints in the pool at the start (headless).
    pub connections: usize,
    /// Calls per second asked with `--rate` (open loop); absent in closed loop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_loop_rate: Option<f64>,
    pub requests: u64,
    pub ok: u64,
    pub errors: u64,
    pub elapsed_s: f64,
    pub rps: f64,
    pub latency_ms: Latency,
    pub endpoints: Vec<EndpointReport>,
    /// The first few distinct `grpc-message`s per status code over all
    /// endpoints; empty when no error carried one.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub error_messages: std::collections::BTreeMap<String, Vec<String>>,
    pub changes: Vec<ChangeReport>,
    /// Events from the resolver that did not change the set (reconnects, relists).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<String>,
    pub verdict: Verdict,

    // -- For `grpclb merge` (issue 13): what adding reports from many
    // clients exactly needs. The fields above keep their names and meaning.
    /// The form of this document ([`SCHEMA`]).
    pub schema: u32,
    /// Wall-clock start of the measured run (after warm-up), RFC 3339 UTC.
    pub started_at: String,
    /// Wall-clock end of the measured run, RFC 3339 UTC.
    pub ended_at: String,
    /// The client that measured (absent in a merged report).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measured_by: Option<ClientIdentity>,
    /// How calls were balanced: what the fair bound of a merge is built on.
    pub balancing: BalancingReport,
    /// Every successful call's latency in µs (HdrHistogram V2 + DEFLATE, base64).
    pub latency_histogram: String,

    // -- The load engine (issue 16): the asked load and the client's cost.
    /// The load asked beside the load achieved (measured runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadReport>,
    /// What the client itself cost, and whether it may have been the limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientReport>,

    // -- Faults (issue 9): a run cut short still reports what it measured.
    /// True when a termination signal (Ctrl-C, SIGTERM) ended the run early.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
    /// The signal that did: `SIGINT` or `SIGTERM`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// Seconds into the measured run from which no endpoint was reachable;
    /// the run ended one call timeout later.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreachable_since_s: Option<f64>,
    /// How the run dialled over TLS (absent: plaintext).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<crate::tls::TlsSummary>,
    /// The metadata every call carried, credentials as `<redacted>`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metadata: Vec<String>,

    // -- Pods that come and go (issue 10).
    /// Discovery and drain lag over the endpoints that joined or left
    /// during the run (headless runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag: Option<LagReport>,
    /// The spans with one ready set and the calls each carried, when the
    /// ready set changed during the run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub epochs: Vec<EpochReport>,
    /// Clusterip runs: which pod each (re)connection landed on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub generations: Vec<ConnectionGenerations>,
}

/// What describes a run besides its record.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub mode: String,
    pub policy: String,
    pub target: String,
    pub call: String,
    pub connections: usize,
    /// `--rate`, when the run was open loop.
    pub open_loop_rate: Option<f64>,
    pub elapsed_s: f64,
    /// When the measured run started (wall clock).
    pub started_at: SystemTime,
    pub balancing: Balancing,
    /// The client that measured; `None` for a merge of several.
    pub measured_by: Option<ClientIdentity>,
}

impl Report {
    /// Builds the report of a run from its tallies (in report order, see
    /// [`Tallies`]) and the verdict judged on them.
    pub fn build(
        info: RunInfo,
        tallies: &Tallies,
        changes: Vec<ChangeReport>,
        notices: Vec<String>,
        verdict: Verdict,
    ) -> Report {
        let total = tallies.total();
        let requests = total.requests();
        let share = |n: u64| {
            if requests == 0 {
                0.0
            } else {
                n as f64 / requests as f64
            }
        };
        // One bucket width for every row, so timelines line up; enough
        // buckets to cover the window.
        let width_us = tallies
            .rows
            .iter()
            .map(|(_, t)| t.timeline.width_us)
            .max()
            .unwrap_or(0);
        let buckets = if width_us == 0 {
            0
        } else {
            ((info.elapsed_s * 1e6) as u64).div_ceil(width_us) as usize
        };
        let seconds = |us: Option<u64>| us.map(|us| round3(us as f64 / 1e6));
        let mut endpoints: Vec<EndpointReport> = tallies
            .rows
            .iter()
            .map(|(key, tally)| EndpointReport {
                name: key.name.clone(),
                address: key.address.clone(),
                requests: tally.requests(),
                ok: tally.ok,
                errors: tally.errors,
                share: round4(share(tally.requests())),
                latency_ms: Latency::of(tally),
                error_codes: tally.error_codes.clone(),
                error_messages: tally.error_messages.clone(),
                latency_histogram: histogram::encode(&tally.latency_us),
                state: None,
                timeline: (width_us > 0)
                    .then(|| TimelineReport::of(&tally.timeline, width_us, buckets)),
                joined_s: None,
                left_s: None,
                first_call_s: seconds(tally.first_call_us),
                last_call_s: seconds(tally.last_call_us),
                discovery_lag_s: None,
                drain_lag_s: None,
            })
            .collect();
        // A row padded to the longest, so every sparkline spans the run.
        let longest = endpoints
            .iter()
            .filter_map(|e| e.timeline.as_ref().map(|t| t.ok.len()))
            .max()
            .unwrap_or(0);
        for timeline in endpoints.iter_mut().filter_map(|e| e.timeline.as_mut()) {
            timeline.ok.resize(longest, 0);
            timeline.errors.resize(longest, 0);
        }
        let rps = if info.elapsed_s > 0.0 {
            requests as f64 / info.elapsed_s
        } else {
            0.0
        };
        Report {
            mode: info.mode,
            policy: info.policy,
            target: info.target,
            call: info.call,
            connections: info.connections,
            open_loop_rate: info.open_loop_rate,
            requests,
            ok: total.ok,
            errors: total.errors,
            elapsed_s: round3(info.elapsed_s),
            rps: round1(rps),
            latency_ms: Latency::of(&total),
            endpoints,
            error_messages: total.error_messages.clone(),
            changes,
            notices,
            verdict,
            schema: SCHEMA,
            started_at: rfc3339(info.started_at),
            ended_at: rfc3339(after(info.started_at, info.elapsed_s)),
            measured_by: info.measured_by,
            balancing: info.balancing.into(),
            latency_histogram: histogram::encode(&total.latency_us),
            load: None,
            client: None,
            interrupted: false,
            signal: None,
            unreachable_since_s: None,
            tls: None,
            metadata: Vec::new(),
            lag: None,
            epochs: tallies.epochs.iter().map(EpochReport::from).collect(),
            generations: Vec::new(),
        }
    }

    /// Rows of real endpoints (without the "no endpoint" pseudo-row).
    pub fn endpoint_rows(&self) -> impl Iterator<Item = &EndpointReport> {
        self.endpoints.iter().filter(|e| e.name != NO_ENDPOINT)
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn round4(x: f64) -> f64 {
    (x * 10000.0).round() / 10000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{EndpointKey, Recorder};
    use std::time::Duration;

    fn key(name: &str) -> EndpointKey {
        EndpointKey {
            name: name.into(),
            address: format!("{name}:80"),
        }
    }

    #[test]
    fn totals_equal_the_sum_of_rows_and_idle_endpoints_show() {
        let mut record = Recorder::default();
        for _ in 0..3 {
            record.ok(key("a"), Duration::from_micros(500));
        }
        record.error(key("a"), "UNAVAILABLE");
        let info = RunInfo {
            mode: "clusterip".into(),
            policy: "per-connection".into(),
            target: "127.0.0.10:50051".into(),
            call: "grpc.health.v1.Health/Check".into(),
            connections: 1,
            open_loop_rate: None,
            elapsed_s: 2.0,
            started_at: SystemTime::UNIX_EPOCH,
            balancing: Balancing::PerConnection {
                connections: 1,
                concurrency: 1,
            },
            measured_by: None,
        };
        let tallies = Tallies::new(&record, &[key("a"), key("b")]);
        let report = Report::build(info, &tallies, vec![], vec![], Verdict::default());
        assert_eq!((report.requests, report.ok, report.errors), (4, 3, 1));
        assert_eq!(report.endpoints.len(), 2);
        assert_eq!(report.endpoints[1].requests, 0);
        let sum: u64 = report.endpoints.iter().map(|e| e.requests).sum();
        assert_eq!(sum, report.requests);
        assert_eq!(report.endpoints[0].share, 1.0);
        assert_eq!(report.rps, 2.0);
    }
}
