//! One measured window: drive the load with a live progress view until
//! done or cut short, then judge the tallies and build the report; and
//! what every window dials with ([`Dial`]).

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::progress::Progress;
use super::stop::Interrupt;
use super::stop::{Cut, Watch};
use crate::load::{Attribution, LoadPlan, Prepared, RunResult, drive};
use crate::method::ResponseSamples;
use crate::plan::BenchPlan;
use crate::pool::{BackoffSettings, Engine, Pool};
use crate::record::{Live, Tallies};
use crate::report::{ChangeReport, Report, RunInfo, load_and_client};
use crate::verdict::{Assertions, Balancing, judge};

/// What a clusterip run dials with: the run's encoded call, the worker
/// threads and the reconnect backoff.
#[derive(Clone, Copy)]
pub(super) struct Dial<'a> {
    pub call: &'a Prepared,
    pub engine: &'a Arc<Engine>,
    pub settings: BackoffSettings,
    /// `--print-responses` still wanting replies (no pods were known).
    pub samples: Option<&'a ResponseSamples>,
    /// Ctrl-C and SIGTERM cut a run short.
    pub interrupt: &'a Arc<Interrupt>,
}

/// Drives the load with a live progress view, until done or cut short (a
/// signal, or no endpoint reachable for longer than the call timeout).
pub(super) async fn measured(
    pool: &Arc<Pool>,
    load: &LoadPlan,
    dial: Dial<'_>,
    attribution: &Attribution,
    label: &str,
    quiet: bool,
) -> (RunResult, Option<Cut>, Instant) {
    let live = Arc::new(Live::default());
    let measure_start = Instant::now() + load.warmup;
    let progress = Progress::start(label, load.stop, load.warmup, Arc::clone(&live), quiet);
    let watch = Watch::start(
        Arc::clone(dial.interrupt),
        Arc::clone(pool),
        Arc::clone(&live),
        load.timeout,
        measure_start,
    );
    let result = drive(Arc::clone(pool), load, dial.call.clone(), attribution, live).await;
    let cut = watch.cut().await;
    if let Some(progress) = progress {
        progress.finish();
    }
    (result, cut, measure_start)
}

/// Adds the asked-versus-achieved load and the client's own cost.
pub(super) fn with_client(mut report: Report, load: &LoadPlan, result: &RunResult) -> Report {
    let (load, client) = load_and_client(load, result);
    report.load = Some(load);
    report.client = Some(client);
    report
}

/// Judges the tallies and builds the report; a run shown only for contrast
/// is measured against no assertion and says it was not judged.
pub(super) fn judged_report(
    info: RunInfo,
    tallies: &Tallies,
    changes: Vec<ChangeReport>,
    notices: Vec<String>,
    plan: &BenchPlan,
    balancing: Balancing,
    judged: bool,
) -> Report {
    let verdict = if judged {
        judge(tallies, &plan.assertions, balancing)
    } else {
        judge(tallies, &Assertions::default(), balancing).not_judged()
    };
    let mut report = Report::build(info, tallies, changes, notices, verdict);
    report.tls = plan.tls.as_ref().map(|tls| tls.summary().clone());
    report.metadata = plan.load.metadata.shown();
    report
}

/// Marks a run that was cut short: interrupted (not judged: a partial run
/// says nothing about fairness), or ended when nothing was reachable.
pub(super) fn with_cut(mut report: Report, cut: Option<Cut>) -> Report {
    match cut {
        None => {}
        Some(Cut::Signal(signal)) => {
            report.interrupted = true;
            report.signal = Some(signal.to_string());
            report.verdict = report.verdict.not_judged();
            report.verdict.checked = format!("not judged: interrupted by {signal}");
        }
        Some(Cut::NothingReachable { since_s }) => {
            report.unreachable_since_s = Some(since_s);
            report.notices.push(format!(
                "no endpoint was reachable from {since_s:+.2}s on; the run ended one call timeout later"
            ));
        }
    }
    report
}

/// Waits until `--start-at`, so that clients started apart (an Indexed
/// Job's pods) warm up and measure over the same window. A start already
/// past is said on stderr: the windows will not fully overlap.
pub(super) async fn start_together(at: SystemTime) {
    match at.duration_since(SystemTime::now()) {
        Ok(wait) => tokio::time::sleep(wait).await,
        Err(late) => eprintln!(
            "grpclb: --start-at was {:.1}s ago; starting now (this client's window starts late)",
            late.duration().as_secs_f64()
        ),
    }
}
