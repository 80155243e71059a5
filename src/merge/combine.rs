//! Merging: the runs of one mode from every client added into one run.
//! Counts add, histograms add exactly, endpoints are matched by name and
//! address, times align on the wall clock, and the fair-bound model is the
//! one of all clients together.

use std::collections::{BTreeSet, HashMap};
use std::time::SystemTime;

use hdrhistogram::Histogram;

use super::MergeError;
use super::document::ClientRun;
use crate::record::{EndpointKey, Tallies, Tally};
use crate::report::{ChangeReport, RunInfo};
use crate::verdict::Balancing;

/// Changes of the endpoint set that clients saw this close together (and
/// alike) are one change.
const SAME_CHANGE_S: f64 = 2.0;

/// Below this share of the shortest window, overlapping windows are said
/// to overlap only partly.
const GOOD_OVERLAP: f64 = 0.9;

/// The runs of one mode from every client, merged.
#[derive(Debug)]
pub struct Combined {
    pub info: RunInfo,
    pub tallies: Tallies,
    pub changes: Vec<ChangeReport>,
    pub notices: Vec<String>,
}

/// Adds `runs` (one per client, the same mode, each with its source).
/// Errors when they measured different things or cannot be added.
pub fn combine(runs: &[(&str, &ClientRun)]) -> Result<Combined, MergeError> {
    let Some(&(first_source, first)) = runs.first() else {
        return Err(MergeError::Empty {
            input: "the input".into(),
        });
    };
    for &(source, run) in &runs[1..] {
        let differs = |what: &str, a: &str, b: &str| MergeError::Mismatch {
            detail: format!(
                "{first_source} {what} {a} but {source} {what} {b}; merge reports of the same \
                 bench (same target, call, mode and --lb) only"
            ),
        };
        if run.call != first.call {
            return Err(differs("measured", &first.call, &run.call));
        }
        if run.target != first.target {
            return Err(differs("targets", &first.target, &run.target));
        }
        if run.mode != first.mode {
            return Err(differs("ran mode", &first.mode, &run.mode));
        }
        if run.policy != first.policy {
            return Err(differs("balanced with", &first.policy, &run.policy));
        }
    }
    let start = runs
        .iter()
        .map(|(_, r)| r.started_at)
        .min()
        .unwrap_or(first.started_at);
    let end = runs.iter().map(|(_, r)| end_of(r)).max().unwrap_or(start);
    let elapsed_s = seconds_between(start, end);
    let mut notices = overlap_notice(runs, start);
    for &(source, run) in runs {
        for notice in &run.notices {
            let line = format!("{}: {notice}", run.label(source));
            if !notices.contains(&line) {
                notices.push(line);
            }
        }
    }
    let info = RunInfo {
        mode: first.mode.clone(),
        policy: first.policy.clone(),
        target: first.target.clone(),
        call: first.call.clone(),
        connections: connections(runs),
        elapsed_s,
        started_at: start,
        balancing: balancing(runs)?,
        measured_by: None,
    };
    // Hook for issue 10: per-endpoint timelines add here, bucket by
    // wall-clock bucket, once `document.rs` reads them.
    Ok(Combined {
        info,
        tallies: add_rows(runs)?,
        changes: changes(runs, start),
        notices,
    })
}

fn end_of(run: &ClientRun) -> SystemTime {
    crate::report::after(run.started_at, run.elapsed_s)
}

/// Seconds from `a` to `b`, negative when `b` is earlier.
fn seconds_between(a: SystemTime, b: SystemTime) -> f64 {
    match b.duration_since(a) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// Every row of every client, matched by name and address, in the order
/// first seen (each client's report order, client by client).
fn add_rows(runs: &[(&str, &ClientRun)]) -> Result<Tallies, MergeError> {
    let mut rows: Vec<(EndpointKey, Tally)> = Vec::new();
    let mut index: HashMap<EndpointKey, usize> = HashMap::new();
    for &(source, run) in runs {
        let too_large = |key: &EndpointKey| MergeError::Corrupt {
            input: source.to_string(),
            detail: format!(
                "endpoint {} ({}): its counts cannot be added (too large)",
                key.name, key.address
            ),
        };
        for (key, tally) in &run.tallies.rows {
            let i = *index.entry(key.clone()).or_insert_with(|| {
                rows.push((key.clone(), empty_tally()));
                rows.len() - 1
            });
            let sum = &mut rows[i].1;
            sum.ok = sum.ok.checked_add(tally.ok).ok_or_else(|| too_large(key))?;
            sum.errors = sum
                .errors
                .checked_add(tally.errors)
                .ok_or_else(|| too_large(key))?;
            for (code, n) in &tally.error_codes {
                let count = sum.error_codes.entry(code.clone()).or_default();
                *count = count.checked_add(*n).ok_or_else(|| too_large(key))?;
            }
            sum.latency_us
                .add(&tally.latency_us)
                .map_err(|_| too_large(key))?;
            // The first few distinct messages per code, as one run keeps them.
            sum.merge(&Tally {
                error_messages: tally.error_messages.clone(),
                ..Tally::default()
            });
        }
    }
    let total = rows.iter().try_fold(0u64, |sum, (_, t)| {
        t.ok.checked_add(t.errors).and_then(|n| sum.checked_add(n))
    });
    if total.is_none() {
        return Err(MergeError::Mismatch {
            detail: "the reports together hold more calls than a count can hold".into(),
        });
    }
    // Reports do not say which endpoints a client could not reach: one no
    // client got calls from is judged as idle.
    Ok(Tallies {
        rows,
        ..Tallies::default()
    })
}

/// A tally whose histogram grows to hold whatever clients recorded, so
/// adding never drops a value.
fn empty_tally() -> Tally {
    let mut latency_us = Histogram::new(3).expect("3 significant digits is a valid precision");
    latency_us.auto(true);
    Tally {
        latency_us,
        ..Tally::default()
    }
}

/// The fair-bound model of all clients together: each client balances on
/// its own, so calls in flight (round_robin's slack) and connections
/// (ClusterIP's independent picks) add up.
fn balancing(runs: &[(&str, &ClientRun)]) -> Result<Balancing, MergeError> {
    let mut sum = runs[0].1.balancing;
    for &(source, run) in &runs[1..] {
        sum = match (sum, run.balancing) {
            (
                Balancing::PerCall {
                    policy,
                    concurrency,
                },
                Balancing::PerCall {
                    policy: other,
                    concurrency: more,
                },
            ) if policy == other => Balancing::PerCall {
                policy,
                concurrency: concurrency.saturating_add(more),
            },
            (
                Balancing::PerConnection {
                    connections,
                    concurrency,
                },
                Balancing::PerConnection {
                    connections: c,
                    concurrency: more,
                },
            ) => Balancing::PerConnection {
                connections: connections.saturating_add(c),
                concurrency: concurrency.saturating_add(more),
            },
            _ => {
                return Err(MergeError::Mismatch {
                    detail: format!(
                        "{source} balanced its calls differently from the reports before it \
                         ({:?} vs {:?}); merge reports of the same bench only",
                        run.balancing, sum
                    ),
                });
            }
        };
    }
    Ok(sum)
}

/// Connections held by all clients (clusterip), or the most endpoints any
/// client's pool started with (headless).
fn connections(runs: &[(&str, &ClientRun)]) -> usize {
    let each = runs.iter().map(|(_, r)| r.connections);
    if runs[0].1.mode == "clusterip" {
        each.fold(0, usize::saturating_add)
    } else {
        each.max().unwrap_or(0)
    }
}

/// Every client's changes on the merged clock, the same change seen by
/// several clients shown once (when the first saw it).
fn changes(runs: &[(&str, &ClientRun)], start: SystemTime) -> Vec<ChangeReport> {
    let mut all: Vec<ChangeReport> = runs
        .iter()
        .flat_map(|(_, run)| {
            let offset = seconds_between(start, run.started_at);
            run.changes
                .iter()
                .map(move |(at_s, added, removed)| ChangeReport {
                    at_s: round3(at_s + offset),
                    added: added.clone(),
                    removed: removed.clone(),
                })
        })
        .collect();
    all.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    let mut kept: Vec<ChangeReport> = Vec::new();
    for change in all {
        let seen = kept.iter().any(|k| {
            k.added == change.added
                && k.removed == change.removed
                && change.at_s - k.at_s <= SAME_CHANGE_S
        });
        if !seen {
            kept.push(change);
        }
    }
    kept
}

/// A notice when the clients' windows did not all overlap: the merged load
/// was then never applied at once.
fn overlap_notice(runs: &[(&str, &ClientRun)], start: SystemTime) -> Vec<String> {
    if runs.len() < 2 {
        return Vec::new();
    }
    let latest_start = runs
        .iter()
        .map(|(_, r)| r.started_at)
        .max()
        .unwrap_or(start);
    let earliest_end = runs.iter().map(|(_, r)| end_of(r)).min().unwrap_or(start);
    let shortest = runs
        .iter()
        .map(|(_, r)| r.elapsed_s)
        .fold(f64::INFINITY, f64::min);
    let overlap = seconds_between(latest_start, earliest_end);
    let late: BTreeSet<&str> = runs
        .iter()
        .filter(|(_, r)| r.started_at == latest_start)
        .map(|(source, r)| r.label(source))
        .collect();
    let late: Vec<&str> = late.into_iter().collect();
    if overlap <= 0.0 {
        vec![format!(
            "the clients' measured windows do not overlap ({} started after another had \
             finished): their load never ran at once; start them together with --start-at",
            late.join(", ")
        )]
    } else if overlap < GOOD_OVERLAP * shortest {
        vec![format!(
            "the clients' measured windows overlap for only {overlap:.1}s of the shortest \
             {shortest:.1}s ({} started last); start them together with --start-at",
            late.join(", ")
        )]
    } else {
        Vec::new()
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
