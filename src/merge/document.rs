//! One client's report, read from its JSON document and checked: the
//! schema version, the fields a merge needs, the accounting
//! (`requests == ok + errors`, per endpoint and in total) and the
//! histograms. What passes is a [`ClientReport`] ready to add.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::Deserialize;
use serde_json::Value;

use super::MergeError;
use super::read::Document;
use crate::record::{EndpointKey, Tallies, Tally};
use crate::report::{BalancingReport, ClientIdentity, SCHEMA, histogram, parse_rfc3339};
use crate::verdict::Balancing;

/// One client's document: one run, or several with `--mode both`.
#[derive(Debug, Clone)]
pub struct ClientReport {
    /// Where it was read from (file, document number).
    pub source: String,
    pub runs: Vec<ClientRun>,
}

/// One mode's run as one client measured it.
#[derive(Debug, Clone)]
pub struct ClientRun {
    pub mode: String,
    pub policy: String,
    pub target: String,
    pub call: String,
    pub connections: usize,
    pub started_at: SystemTime,
    pub elapsed_s: f64,
    pub measured_by: Option<ClientIdentity>,
    pub balancing: Balancing,
    /// The rows in the client's report order.
    pub tallies: Tallies,
    /// Seconds since this client's start, added and removed addresses.
    pub changes: Vec<(f64, Vec<String>, Vec<String>)>,
    pub notices: Vec<String>,
}

impl ClientRun {
    /// The client's name (its pod, else host), or where it was read from.
    pub fn label<'a>(&'a self, source: &'a str) -> &'a str {
        self.measured_by.as_ref().map_or(source, |c| &c.name)
    }
}

/// The fields read; others (added by later versions of the same schema)
/// are ignored.
#[derive(Deserialize)]
struct RunDoc {
    mode: String,
    policy: String,
    target: String,
    call: String,
    connections: usize,
    requests: u64,
    ok: u64,
    errors: u64,
    elapsed_s: f64,
    endpoints: Vec<EndpointDoc>,
    #[serde(default)]
    changes: Vec<ChangeDoc>,
    #[serde(default)]
    notices: Vec<String>,
    started_at: String,
    ended_at: String,
    #[serde(default)]
    measured_by: Option<ClientIdentity>,
    balancing: BalancingReport,
    latency_histogram: String,
    // Hook for issue 10: when reports carry a per-endpoint `timeline`
    // (calls and errors per time bucket), read it here with each bucket's
    // wall-clock start (`started_at` + offset), and add the buckets of
    // every client that fall in the same wall-clock bucket in
    // `combine.rs`. Until then there is no timeline to read.
}

#[derive(Deserialize)]
struct EndpointDoc {
    name: String,
    address: String,
    requests: u64,
    ok: u64,
    errors: u64,
    #[serde(default)]
    error_codes: BTreeMap<String, u64>,
    #[serde(default)]
    error_messages: BTreeMap<String, Vec<String>>,
    latency_histogram: String,
}

#[derive(Deserialize)]
struct ChangeDoc {
    at_s: f64,
    #[serde(default)]
    added: Vec<String>,
    #[serde(default)]
    removed: Vec<String>,
}

/// Reads and checks one document.
pub fn parse(document: Document) -> Result<ClientReport, MergeError> {
    let source = document.source;
    let not_a_report = |detail: String| MergeError::NotAReport {
        input: source.clone(),
        detail,
    };
    let runs: Vec<Value> = match document.value {
        Value::Object(mut object)
            if object.contains_key("runs") && !object.contains_key("mode") =>
        {
            match object.remove("runs") {
                Some(Value::Array(runs)) if !runs.is_empty() => runs,
                _ => return Err(not_a_report("`runs` is not a list of reports".into())),
            }
        }
        value @ Value::Object(_) => vec![value],
        other => {
            return Err(not_a_report(format!(
                "it is {}, not an object",
                kind_of(&other)
            )));
        }
    };
    let runs = runs
        .into_iter()
        .map(|run| parse_run(&source, run))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ClientReport { source, runs })
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn parse_run(source: &str, run: Value) -> Result<ClientRun, MergeError> {
    match run.get("schema") {
        Some(v) if v.as_u64() == Some(u64::from(SCHEMA)) => {}
        Some(v) => {
            return Err(MergeError::Schema {
                input: source.to_string(),
                detail: format!(
                    "it is schema {v}, this grpclb reads schema {SCHEMA}; merge with the grpclb \
                     version that wrote it"
                ),
            });
        }
        None if run.get("mode").is_some() && run.get("endpoints").is_some() => {
            return Err(MergeError::Schema {
                input: source.to_string(),
                detail: format!(
                    "it has no schema version: a grpclb older than `merge` wrote it (no \
                     histograms to merge); rerun the bench with this grpclb (schema {SCHEMA})"
                ),
            });
        }
        None => {
            return Err(MergeError::NotAReport {
                input: source.to_string(),
                detail: "no `schema`, `mode` or `endpoints` field; give the output of \
                         `grpclb bench -o json`"
                    .into(),
            });
        }
    }
    let doc: RunDoc = serde_json::from_value(run).map_err(|e| MergeError::NotAReport {
        input: source.to_string(),
        detail: e.to_string(),
    })?;
    let corrupt = |detail: String| MergeError::Corrupt {
        input: source.to_string(),
        detail,
    };
    if doc.requests != doc.ok.wrapping_add(doc.errors) || doc.ok.checked_add(doc.errors).is_none() {
        return Err(corrupt(format!(
            "requests {} != ok {} + errors {}",
            doc.requests, doc.ok, doc.errors
        )));
    }
    let mut rows = Vec::with_capacity(doc.endpoints.len());
    let mut sums = (0u64, 0u64);
    for e in doc.endpoints {
        let who = format!("endpoint {} ({})", e.name, e.address);
        if e.ok.checked_add(e.errors) != Some(e.requests) {
            return Err(corrupt(format!(
                "{who}: requests {} != ok {} + errors {}",
                e.requests, e.ok, e.errors
            )));
        }
        let coded = e
            .error_codes
            .values()
            .try_fold(0u64, |sum, n| sum.checked_add(*n));
        if !e.error_codes.is_empty() && coded != Some(e.errors) {
            return Err(corrupt(format!(
                "{who}: its error_codes add up to {} but errors is {}",
                coded.map_or("more than a count can hold".into(), |n| n.to_string()),
                e.errors
            )));
        }
        let latency_us = histogram_of(&who, &e.latency_histogram, e.ok).map_err(corrupt)?;
        sums.0 = sums.0.saturating_add(e.ok);
        sums.1 = sums.1.saturating_add(e.errors);
        rows.push((
            EndpointKey {
                name: e.name,
                address: e.address,
            },
            Tally {
                ok: e.ok,
                errors: e.errors,
                error_codes: e.error_codes,
                error_messages: e.error_messages,
                latency_us,
                // Clients' windows differ: a merge keeps totals, not timelines.
                ..Tally::default()
            },
        ));
    }
    if sums != (doc.ok, doc.errors) {
        return Err(corrupt(format!(
            "its endpoints add up to ok {} + errors {} but the totals say ok {} + errors {}",
            sums.0, sums.1, doc.ok, doc.errors
        )));
    }
    histogram_of("the run", &doc.latency_histogram, doc.ok).map_err(corrupt)?;
    let started_at =
        parse_rfc3339(&doc.started_at).map_err(|e| corrupt(format!("started_at: {e}")))?;
    let ended_at = parse_rfc3339(&doc.ended_at).map_err(|e| corrupt(format!("ended_at: {e}")))?;
    let elapsed_s = match ended_at.duration_since(started_at) {
        Ok(span) if doc.elapsed_s.is_finite() && doc.elapsed_s >= 0.0 => span.as_secs_f64(),
        _ => {
            return Err(corrupt(format!(
                "it ends ({}) before it starts ({}), or elapsed_s {} is not a duration",
                doc.ended_at, doc.started_at, doc.elapsed_s
            )));
        }
    };
    let balancing = doc
        .balancing
        .balancing()
        .map_err(|e| corrupt(format!("balancing: {e}")))?;
    if !matches!(doc.mode.as_str(), "clusterip" | "headless") {
        return Err(corrupt(format!(
            "mode {:?} is neither clusterip nor headless",
            doc.mode
        )));
    }
    Ok(ClientRun {
        mode: doc.mode,
        policy: doc.policy,
        target: doc.target,
        call: doc.call,
        connections: doc.connections,
        started_at,
        elapsed_s,
        measured_by: doc.measured_by,
        balancing,
        tallies: Tallies {
            rows,
            ..Tallies::default()
        },
        changes: doc
            .changes
            .into_iter()
            .map(|c| (c.at_s, c.added, c.removed))
            .collect(),
        notices: doc.notices,
    })
}

/// Decodes a histogram that must hold exactly `ok` calls.
fn histogram_of(who: &str, text: &str, ok: u64) -> Result<hdrhistogram::Histogram<u64>, String> {
    let latency =
        histogram::decode(text).map_err(|e| format!("{who}: latency_histogram is {e}"))?;
    if latency.len() != ok {
        return Err(format!(
            "{who}: latency_histogram holds {} calls but ok is {ok}",
            latency.len()
        ));
    }
    Ok(latency)
}
