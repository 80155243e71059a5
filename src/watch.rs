//! `grpclb resolve`: the endpoints a target resolves to, once or followed
//! live. Works for every resolver source: it only reads the source's sets
//! and notices, and diffs consecutive sets with [`resolve::diff`]. What it
//! sees goes to a caller's sink as [`WatchEvent`]s; `report::endpoints`
//! renders them.

use std::time::{Duration, Instant};

use crate::Failure;
use crate::plan::ResolvePlan;
use crate::resolve::{self, Change, Endpoint, Notice, Resolution, Update};

/// How long notices that belong to the first set (why nothing is ready,
/// say) may trail it.
const FIRST_NOTICES_GRACE: Duration = Duration::from_millis(150);

/// What a resolution showed, in the order it happened.
#[derive(Debug)]
pub enum WatchEvent<'a> {
    /// The first set, and the notices that came with it.
    First {
        source: &'static str,
        endpoints: &'a [Endpoint],
        notices: &'a [Notice],
    },
    /// One endpoint changed (`before` is its previous version for `Changed`).
    Change {
        change: &'a Change,
        before: Option<&'a Endpoint>,
    },
    /// The source reported something that did not change the set.
    Notice(&'a Notice),
    /// Watching ended.
    Ended(&'a WatchSummary),
}

/// How a watch ended and what it saw.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchSummary {
    pub watched_s: f64,
    /// Why it ended, in words.
    pub ended: &'static str,
    pub added: usize,
    pub removed: usize,
    pub changed: usize,
    /// Endpoints in the last set, and how many of them are ready.
    pub endpoints: usize,
    pub ready: usize,
}

/// Resolves the plan's target and hands the first set to `sink`; with
/// `--watch`, then every change until Ctrl-C, `--duration` or the source
/// ends, and a summary. Resolving to nothing is not a failure.
pub async fn run(
    plan: &ResolvePlan,
    sink: &mut dyn FnMut(WatchEvent) -> Result<(), Failure>,
) -> Result<(), Failure> {
    // --duration bounds the whole watch, the first resolution included.
    let stop_at = plan.duration.map(|d| tokio::time::Instant::now() + d);
    let first = resolve::start(&plan.target, &plan.resolve);
    let mut resolution = match plan.duration.filter(|_| plan.watch) {
        Some(limit) => tokio::time::timeout(limit, first).await.map_err(|_| {
            Failure::CannotRun(format!(
                "--duration {} ended before {} resolved to a first set",
                humantime::format_duration(limit),
                plan.target
            ))
        })??,
        None => first.await?,
    };
    if !plan.watch {
        let (endpoints, notices) = first_set(&mut resolution).await;
        return sink(WatchEvent::First {
            source: resolution.source,
            endpoints: &endpoints,
            notices: &notices,
        });
    }
    let started = Instant::now();
    let mut current = resolution.initial.clone();
    sink(WatchEvent::First {
        source: resolution.source,
        endpoints: &current,
        notices: &[],
    })?;
    let mut summary = WatchSummary {
        watched_s: 0.0,
        ended: "",
        added: 0,
        removed: 0,
        changed: 0,
        endpoints: 0,
        ready: 0,
    };
    let deadline = async move {
        match stop_at {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    summary.ended = loop {
        tokio::select! {
            _ = &mut ctrl_c => break "interrupted",
            _ = &mut deadline => break "--duration reached",
            update = resolution.updates.recv() => match update {
                None => break "the source sends no more changes",
                Some(Update::Notice(notice)) => sink(WatchEvent::Notice(&notice))?,
                Some(Update::Reset(set)) => {
                    for change in resolve::diff(&current, &set) {
                        let before = match &change {
                            Change::Changed(e) => current.iter().find(|c| c.address == e.address),
                            _ => None,
                        };
                        match change {
                            Change::Added(_) => summary.added += 1,
                            Change::Removed(_) => summary.removed += 1,
                            Change::Changed(_) => summary.changed += 1,
                        }
                        sink(WatchEvent::Change { change: &change, before })?;
                    }
                    current = set;
                }
            },
        }
    };
    summary.watched_s = started.elapsed().as_secs_f64();
    summary.endpoints = current.len();
    summary.ready = current.iter().filter(|e| e.ready).count();
    sink(WatchEvent::Ended(&summary))
}

/// The first set and the notices that came with it; a newer set arriving
/// within the grace period replaces the first.
async fn first_set(resolution: &mut Resolution) -> (Vec<Endpoint>, Vec<Notice>) {
    let mut endpoints = resolution.initial.clone();
    let mut notices = Vec::new();
    let deadline = tokio::time::Instant::now() + FIRST_NOTICES_GRACE;
    while let Ok(Some(update)) = tokio::time::timeout_at(deadline, resolution.updates.recv()).await
    {
        match update {
            Update::Notice(notice) => notices.push(notice),
            Update::Reset(set) => endpoints = set,
        }
    }
    (endpoints, notices)
}
