//! `grpclb bench`: the whole run, top to bottom. Resolve the target, dial
//! the pool, ask each pod who it is, run each mode (with `--settle`
//! windows, following the resolver), and return one judged report per mode.
//! The binary prints them and exits with [`exit_code`].

mod call;
mod follow;
mod outcome;
mod preflight;
mod progress;
mod stop;
mod windows;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

pub use outcome::{Outcome, exit_code};

use crate::Failure;
use crate::load::{
    Attribution, LoadPlan, Prepared, RunResult, drive, identify, raise_open_files_limit,
};
use crate::method::ResponseSamples;
use crate::pick::RoundRobin;
use crate::plan::{BenchPlan, RunMode};
use crate::pool::{BackoffSettings, Engine, Pool};
use crate::record::{EndpointKey, Live, Tallies};
use crate::report::{
    ChangeReport, ClientIdentity, Report, RunInfo, StateReport, TransitionReport, load_and_client,
};
use crate::resolve::{self, Resolution};
use crate::verdict::{Assertions, Balancing, judge};
use follow::Follower;
use progress::Progress;
use stop::{Cut, Interrupt, Watch};

/// Longest wait for the pool's first connections before measuring.
const CONNECT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs every mode of the plan and returns one report per mode.
pub async fn run(plan: &BenchPlan) -> Result<Vec<Report>, Failure> {
    raise_open_files_limit();
    let interrupt = Interrupt::listen()
        .map_err(|e| Failure::CannotRun(format!("cannot install the SIGINT handler: {e}")))?;
    let engine = Engine::start(plan.load.threads).map_err(|e| Failure::CannotRun(e.to_string()))?;
    let engine = Arc::new(engine);
    let settings = BackoffSettings::default();
    let mut resolution = if plan.pods_known {
        Some(resolve::start(&plan.target, &plan.resolve).await?)
    } else {
        None
    };
    // The pods' pool is dialled once: asked who each pod is, then balanced
    // over by the headless run.
    let pool = Arc::new(Pool::new(
        plan.policy.picker(),
        settings,
        plan.tls.clone(),
        plan.resolve.include_terminating,
        Arc::clone(&engine),
    ));
    let dialled = Instant::now();
    let problems = match &resolution {
        Some(resolution) => pool.apply(&resolution.initial).1,
        None => Vec::new(),
    };
    if plan.pods_known && pool.members().is_empty() {
        let target = plan.target.to_string();
        return Err(preflight::nothing_to_balance(&target, resolution.as_mut(), &problems).await);
    }
    pool.settled(tokio::time::Instant::now() + CONNECT_WAIT)
        .await;
    let connect_s = (dialled.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    let (prepared, samples) = call::prepare(plan, &pool).await?;
    let plan = prepared.as_ref().unwrap_or(plan);
    let call = plan
        .load
        .prepare(plan.tls.is_some())
        .map_err(Failure::Usage)?;
    let (known, unreachable) = identify(&pool, &call).await;
    preflight::weights_name_known_pods(plan.assertions.weights.as_ref(), &known)?;
    let mut problems = problems;
    problems.extend(preflight::shared_identities(&known));
    if let Some(samples) = samples.as_deref()
        && !pool.members().is_empty()
    {
        call::sample(&pool, &call, samples, plan.load.timeout).await;
    }
    if let Some(at) = plan.start_at {
        start_together(at).await;
    }
    let dial = Dial {
        call: &call,
        engine: &engine,
        settings,
        samples: samples.as_deref(),
        interrupt: &interrupt,
    };
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
            } => run_clusterip(plan, address, *connections, &known, dial, judged).await?,
            RunMode::ServiceOfTarget { connections } => {
                let address = resolve::service_address(&plan.target, &plan.resolve).await?;
                run_clusterip(plan, &address, *connections, &known, dial, judged).await?
            }
            RunMode::Headless => {
                let resolution = resolution.take().ok_or_else(|| {
                    Failure::CannotRun("internal: the headless run has no resolution".into())
                })?;
                let mut notices = problems.clone();
                notices.extend(unreachable.iter().cloned());
                let headless =
                    run_headless(plan, resolution, Arc::clone(&pool), dial, notices, judged);
                let mut report = headless.await;
                if let Some(client) = &mut report.client {
                    client.connect_s = Some(connect_s);
                }
                report
            }
        };
        // A signal ends the bench: later modes are not run.
        let interrupted = report.interrupted;
        reports.push(report);
        if interrupted {
            break;
        }
    }
    // `--print-responses`: a first look at what the method returns, on stderr.
    if let Some(samples) = samples {
        eprintln!("{}", samples.render());
    }
    Ok(reports)
}

/// What a clusterip run dials with: the run's encoded call, the worker
/// threads and the reconnect backoff.
#[derive(Clone, Copy)]
struct Dial<'a> {
    call: &'a Prepared,
    engine: &'a Arc<Engine>,
    settings: BackoffSettings,
    /// `--print-responses` still wanting replies (no pods were known).
    samples: Option<&'a ResponseSamples>,
    /// Ctrl-C and SIGTERM cut a run short.
    interrupt: &'a Arc<Interrupt>,
}

/// Dials the Service address over `connections` connections and lets the
/// network pick a pod per connection.
async fn run_clusterip(
    plan: &BenchPlan,
    address: &str,
    connections: usize,
    known: &[EndpointKey],
    dial: Dial<'_>,
    judged: bool,
) -> Result<Report, Failure> {
    let pool = Pool::fixed_connections(
        address,
        connections,
        Box::new(RoundRobin::starting_at(0)),
        dial.settings,
        plan.tls.clone(),
        Arc::clone(dial.engine),
    )
    .map_err(Failure::Usage)?;
    let by_name: HashMap<String, String> = known
        .iter()
        .map(|k| (k.name.clone(), k.address.clone()))
        .collect();
    let attribution = Attribution::PerConnection { known: by_name };
    let pool = Arc::new(pool);
    if let Some(samples) = dial.samples.filter(|s| s.wants_more()) {
        call::sample(&pool, dial.call, samples, plan.load.timeout).await;
    }
    let balancing = Balancing::PerConnection {
        connections,
        concurrency: plan.load.concurrency,
    };
    Ok(
        windows::until_settled(plan, judged, async |load: LoadPlan| {
            let (result, cut, _) =
                measured(&pool, &load, dial, &attribution, "clusterip", plan.quiet).await;
            let info = RunInfo {
                mode: "clusterip".into(),
                policy: "per-connection".into(),
                target: address.to_string(),
                call: plan.load.call.method().into(),
                connections,
                open_loop_rate: plan.load.rate,
                elapsed_s: result.elapsed.as_secs_f64(),
                started_at: result.started_at,
                balancing,
                measured_by: Some(ClientIdentity::from_env()),
            };
            let tallies = Tallies::new(&result.record, known);
            let report = judged_report(
                info,
                &tallies,
                Vec::new(),
                Vec::new(),
                plan,
                balancing,
                judged,
            );
            with_cut(with_client(report, &load, &result), cut)
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
    dial: Dial<'_>,
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
        let (result, cut, measure_start) = measured(
            &pool,
            &load,
            dial,
            &Attribution::PerEndpoint,
            "headless",
            plan.quiet,
        )
        .await;
        let measure_end = Instant::now();
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
            open_loop_rate: plan.load.rate,
            elapsed_s: result.elapsed.as_secs_f64(),
            started_at: result.started_at,
            balancing,
            measured_by: Some(ClientIdentity::from_env()),
        };
        let mut tallies = Tallies::new(&result.record, &expected);
        tallies.unreachable = never_ready(&pool);
        let report = judged_report(
            info,
            &tallies,
            followed.changes,
            notices,
            plan,
            balancing,
            judged,
        );
        let mut report = with_cut(with_client(report, &load, &result), cut);
        let mut states = states(&pool, measure_start, measure_end);
        for endpoint in &mut report.endpoints {
            endpoint.state = states.remove(&endpoint.address);
        }
        report
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

/// Drives the load with a live progress view, until done or cut short (a
/// signal, or no endpoint reachable for longer than the call timeout).
async fn measured(
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

/// Marks a run that was cut short: interrupted (not judged: a partial run
/// says nothing about fairness), or ended when nothing was reachable.
fn with_cut(mut report: Report, cut: Option<Cut>) -> Report {
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

/// Each member's connection states over the run, by address; `start` is
/// the end of the warm-up and `end` the end of the run.
fn states(
    pool: &Pool,
    start: Instant,
    end: Instant,
) -> std::collections::BTreeMap<String, StateReport> {
    let seconds = |at: Instant| {
        let s = if at >= start {
            at.duration_since(start).as_secs_f64()
        } else {
            -start.duration_since(at).as_secs_f64()
        };
        (s * 1000.0).round() / 1000.0
    };
    pool.members()
        .iter()
        .map(|member| {
            let timeline = member.timeline();
            let transitions = timeline.transitions();
            // Time not ready within [start, end]: each state lasts until the next.
            let mut unavailable = 0.0;
            for (i, t) in transitions.iter().enumerate() {
                let until = transitions.get(i + 1).map_or(end, |next| next.at);
                let (from, until) = (t.at.max(start), until.min(end));
                if t.state != crate::pool::State::Ready && until > from {
                    unavailable += until.duration_since(from).as_secs_f64();
                }
            }
            let report = StateReport {
                now: timeline.state().name().to_string(),
                unavailable_s: (unavailable * 1000.0).round() / 1000.0,
                transitions: transitions
                    .iter()
                    .map(|t| TransitionReport {
                        at_s: seconds(t.at),
                        state: t.state.name().to_string(),
                        reason: t.reason.as_ref().map(|r| r.to_string()),
                    })
                    .collect(),
            };
            (member.endpoint().address.clone(), report)
        })
        .collect()
}

/// Members that were never ready during the run, with the last reason they
/// failed: they fail the verdict by name.
fn never_ready(pool: &Pool) -> std::collections::BTreeMap<String, String> {
    pool.members()
        .iter()
        .filter_map(|member| {
            let timeline = member.timeline();
            let transitions = timeline.transitions();
            if transitions
                .iter()
                .any(|t| t.state == crate::pool::State::Ready)
            {
                return None;
            }
            let why = transitions
                .iter()
                .rev()
                .find_map(|t| t.reason.as_ref())
                .map_or("never connected".to_string(), |r| r.to_string());
            Some((member.endpoint().address.clone(), why))
        })
        .collect()
}

/// Adds the asked-versus-achieved load and the client's own cost.
fn with_client(mut report: Report, load: &LoadPlan, result: &RunResult) -> Report {
    let (load, client) = load_and_client(load, result);
    report.load = Some(load);
    report.client = Some(client);
    report
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
        judge(tallies, &Assertions::default(), balancing).not_judged()
    };
    let mut report = Report::build(info, tallies, changes, notices, verdict);
    report.tls = plan.tls.as_ref().map(|tls| tls.summary().clone());
    report.metadata = plan.load.metadata.shown();
    report
}
