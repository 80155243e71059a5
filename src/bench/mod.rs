//! `grpclb bench`: the whole run, top to bottom. Resolve the target, dial
//! the pool, ask each pod who it is, run each mode (with `--settle`
//! windows, following the resolver), and return one judged report per mode.
//! The binary prints them and exits with [`exit_code`].

mod call;
mod follow;
mod outcome;
mod progress;
mod windows;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

pub use outcome::{Outcome, exit_code};

use crate::Failure;
use crate::load::{Attribution, LoadPlan, drive, identify};
use crate::pick::RoundRobin;
use crate::plan::{BenchPlan, RunMode};
use crate::pool::{ChannelSettings, Pool};
use crate::record::{EndpointKey, Live, Recorder, Tallies};
use crate::report::{ChangeReport, ClientIdentity, Report, RunInfo};
use crate::resolve::{self, Resolution};
use crate::verdict::{Assertions, Balancing, NOT_JUDGED, judge};
use follow::Follower;
use progress::Progress;

/// Runs every mode of the plan and returns one report per mode.
pub async fn run(plan: &BenchPlan) -> Result<Vec<Report>, Failure> {
    let settings = ChannelSettings {
        tls: plan.tls.clone(),
        authority: plan.load.metadata.authority().cloned(),
        ..ChannelSettings::default()
    };
    let mut resolution = if plan.pods_known {
        Some(resolve::start(&plan.target, &plan.resolve).await?)
    } else {
        None
    };
    // The pods' pool is dialled once: asked who each pod is, then balanced
    // over by the headless run.
    let pool = Arc::new(Pool::new(
        plan.policy.picker(),
        settings.clone(),
        plan.resolve.include_terminating,
    ));
    let problems = match &resolution {
        Some(resolution) => pool.apply(&resolution.initial).1,
        None => Vec::new(),
    };
    if plan.pods_known && pool.members().is_empty() {
        let why = if problems.is_empty() {
            String::new()
        } else {
            format!(" ({})", problems.join("; "))
        };
        return Err(Failure::CannotRun(format!(
            "{} resolved to no ready endpoints{why}; check that the pods are running and ready \
             (grpclb resolve {} shows what was found)",
            plan.target, plan.target
        )));
    }
    let (prepared, samples) = call::prepare(plan, &pool).await?;
    let plan = prepared.as_ref().unwrap_or(plan);
    let (known, unreachable) = identify(
        &pool.members(),
        &plan.load.call,
        &plan.load.identity_header,
        &plan.load.metadata,
    )
    .await;
    if let Some(at) = plan.start_at {
        start_together(at).await;
    }
    // With several modes, only the headless run is judged; the others are
    // shown for contrast.
    let judged_alone = plan.runs.len() == 1;
    let mut reports = Vec::new();
    for run in &plan.runs {
        let judged = judged_alone || matches!(run, RunMode::Headless);
        let report = match run {
            RunMode::ClusterIp {
                address,
                connections,
            } => run_clusterip(plan, address, *connections, &known, &settings, judged).await?,
            RunMode::ServiceOfTarget { connections } => {
                let address = resolve::service_address(&plan.target, &plan.resolve).await?;
                run_clusterip(plan, &address, *connections, &known, &settings, judged).await?
            }
            RunMode::Headless => {
                let resolution = resolution.take().ok_or_else(|| {
                    Failure::CannotRun("internal: the headless run has no resolution".into())
                })?;
                let mut notices = problems.clone();
                notices.extend(unreachable.iter().cloned());
                run_headless(plan, resolution, Arc::clone(&pool), notices, judged).await
            }
        };
        reports.push(report);
    }
    // `--print-responses`: a first look at what the method returns, on stderr.
    if let Some(samples) = samples {
        eprintln!("{}", samples.render());
    }
    Ok(reports)
}

/// Dials the Service address over `connections` connections and lets the
/// network pick a pod per connection.
async fn run_clusterip(
    plan: &BenchPlan,
    address: &str,
    connections: usize,
    known: &[EndpointKey],
    settings: &ChannelSettings,
    judged: bool,
) -> Result<Report, Failure> {
    let pool = Pool::fixed_connections(
        address,
        connections,
        Box::new(RoundRobin::starting_at(0)),
        settings.clone(),
    )
    .map_err(Failure::Usage)?;
    let by_name: HashMap<String, String> = known
        .iter()
        .map(|k| (k.name.clone(), k.address.clone()))
        .collect();
    let attribution = Attribution::PerConnection { known: by_name };
    let pool = Arc::new(pool);
    let balancing = Balancing::PerConnection {
        connections,
        concurrency: plan.load.concurrency,
    };
    Ok(
        windows::until_settled(plan, judged, async |load: LoadPlan| {
            let (record, started_at, elapsed_s) =
                measured(&pool, &load, &attribution, "clusterip", plan.quiet).await;
            let info = RunInfo {
                mode: "clusterip".into(),
                policy: "per-connection".into(),
                target: address.to_string(),
                call: plan.load.call.method().into(),
                connections,
                elapsed_s,
                started_at,
                balancing,
                measured_by: Some(ClientIdentity::from_env()),
            };
            let tallies = Tallies::new(&record, known);
            judged_report(
                info,
                &tallies,
                Vec::new(),
                Vec::new(),
                plan,
                balancing,
                judged,
            )
        })
        .await,
    )
}

/// Holds a channel to every resolved endpoint and picks one per call,
/// following the resolver's changes during the run.
async fn run_headless(
    plan: &BenchPlan,
    resolution: Resolution,
    pool: Arc<Pool>,
    notices: Vec<String>,
    judged: bool,
) -> Report {
    let follower = Follower::start(resolution, Arc::clone(&pool), plan.load.warmup);
    let connections = pool.members().len();
    let balancing = Balancing::PerCall {
        policy: plan.policy,
        concurrency: plan.load.concurrency,
    };
    windows::until_settled(plan, judged, async |load: LoadPlan| {
        let (record, started_at, elapsed_s) = measured(
            &pool,
            &load,
            &Attribution::PerEndpoint,
            "headless",
            plan.quiet,
        )
        .await;
        let expected: Vec<EndpointKey> = pool
            .members()
            .iter()
            .map(|m| EndpointKey {
                name: m.fallback_identity(),
                address: m.endpoint().address.clone(),
            })
            .collect();
        let followed = follower.seen();
        let mut notices = notices.clone();
        notices.extend(followed.notices);
        let info = RunInfo {
            mode: "headless".into(),
            policy: plan.policy.name().into(),
            target: plan.target.to_string(),
            call: plan.load.call.method().into(),
            connections,
            elapsed_s,
            started_at,
            balancing,
            measured_by: Some(ClientIdentity::from_env()),
        };
        let tallies = Tallies::new(&record, &expected);
        judged_report(
            info,
            &tallies,
            followed.changes,
            notices,
            plan,
            balancing,
            judged,
        )
    })
    .await
}

/// Waits until `--start-at`, so that clients started apart (an Indexed
/// Job's pods) warm up and measure over the same window. A start already
/// past is said on stderr: the windows will not fully overlap.
async fn start_together(at: SystemTime) {
    match at.duration_since(SystemTime::now()) {
        Ok(wait) => tokio::time::sleep(wait).await,
        Err(late) => eprintln!(
            "grpclb: --start-at was {:.1}s ago; starting now (this client's window starts late)",
            late.duration().as_secs_f64()
        ),
    }
}

/// Drives the load with a live progress view; returns the record, the
/// wall-clock start of the measured part and its seconds.
async fn measured(
    pool: &Arc<Pool>,
    load: &LoadPlan,
    attribution: &Attribution,
    label: &str,
    quiet: bool,
) -> (Recorder, SystemTime, f64) {
    let live = Arc::new(Live::default());
    let progress = Progress::start(label, load.stop, load.warmup, Arc::clone(&live), quiet);
    let result = drive(Arc::clone(pool), load.clone(), attribution.clone(), live).await;
    if let Some(progress) = progress {
        progress.finish();
    }
    // The measured part ended just now; its start is that long before.
    let started = SystemTime::now()
        .checked_sub(result.elapsed)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    (result.record, started, result.elapsed.as_secs_f64())
}

/// Judges the tallies and builds the report; a run shown only for contrast
/// is measured against no assertion and says it was not judged.
fn judged_report(
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
        let mut verdict = judge(tallies, &Assertions::default(), balancing);
        verdict.checked = NOT_JUDGED.into();
        verdict
    };
    let mut report = Report::build(info, tallies, changes, notices, verdict);
    report.tls = plan.tls.as_ref().map(|tls| tls.summary().clone());
    report.metadata = plan.load.metadata.shown();
    report
}
