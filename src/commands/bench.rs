//! `grpclb bench`: resolve, run each mode, report, judge.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cli::RunMode;
use crate::cli::{BenchPlan, Failure, Output};
use crate::load::{
    Attribution, LoadPlan, Prepared, RunResult, drive, identify, raise_open_files_limit,
};
use crate::pick::RoundRobin;
use crate::pool::{BackoffSettings, Engine, Pool};
use crate::progress::Progress;
use crate::record::{EndpointKey, Live};
use crate::report::{
    ChangeReport, Report, RunInfo, comparison_table, conclusion, load_and_client, render,
};
use crate::resolve::{self, Resolution, Update};
use crate::verdict::{Assertions, Balancing, NOT_JUDGED, Settle, judge};

/// Runs every mode of the plan and returns one report per mode.
pub async fn run(plan: &BenchPlan) -> Result<Vec<Report>, Failure> {
    raise_open_files_limit();
    let call = plan.load.prepare().map_err(Failure::Usage)?;
    let engine = Arc::new(Engine::start(plan.load.threads).map_err(|e| Failure::CannotRun(e.to_string()))?);
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
        plan.resolve.include_terminating,
        Arc::clone(&engine),
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
    let known = identify(&pool, &plan.load.call, &plan.load.identity_header).await;
    let judged_alone = plan.runs.len() == 1;
    let mut reports = Vec::new();
    for run in &plan.runs {
        let judged = judged_alone || matches!(run, RunMode::Headless);
        let report = match run {
            RunMode::ClusterIp {
                address,
                connections,
            } => {
                let dial = Dial { call: &call, engine: &engine, settings };
                run_clusterip(plan, address, *connections, &known, dial, judged).await?
            }
            RunMode::ServiceOfTarget { connections } => {
                let address = resolve::service_address(&plan.target, &plan.resolve).await?;
                let dial = Dial { call: &call, engine: &engine, settings };
                run_clusterip(plan, &address, *connections, &known, dial, judged).await?
            }
            RunMode::Headless => {
                let resolution = resolution.take().ok_or_else(|| {
                    Failure::CannotRun("internal: the headless run has no resolution".into())
                })?;
                run_headless(
                    plan,
                    resolution,
                    Arc::clone(&pool),
                    &call,
                    problems.clone(),
                    judged,
                )
                .await
            }
        };
        reports.push(report);
    }
    Ok(reports)
}

/// What a clusterip run dials with.
#[derive(Clone, Copy)]
struct Dial<'a> {
    call: &'a Prepared,
    engine: &'a Arc<Engine>,
    settings: BackoffSettings,
}

/// How a run balances, for the verdict's model of a fair run.
fn balancing(plan: &BenchPlan, run: &RunMode) -> Balancing {
    let concurrency = plan.load.concurrency;
    match run {
        RunMode::ClusterIp { connections, .. } | RunMode::ServiceOfTarget { connections } => {
            Balancing::PerConnection {
                connections: *connections,
                concurrency,
            }
        }
        RunMode::Headless => Balancing::PerCall {
            policy: plan.policy,
            concurrency,
        },
    }
}

/// Measures one window (warm-up only before the first) and judges it; with
/// `--settle`, keeps measuring windows until one passes or the deadline
/// is reached, and returns the last.
async fn judged_windows(
    plan: &BenchPlan,
    run: &RunMode,
    judged: bool,
    mut window: impl AsyncFnMut(LoadPlan) -> Report,
) -> Report {
    let started = Instant::now();
    let mut windows = 0u32;
    loop {
        let mut load = plan.load.clone();
        if windows > 0 {
            load.warmup = Duration::ZERO;
        }
        let window_start = started.elapsed();
        let report = with_verdict(window(load).await, plan, run, judged);
        windows += 1;
        let Some(deadline) = plan.settle.filter(|_| judged) else {
            return report;
        };
        let held = report.verdict.passed;
        // More windows of the same size cannot fix too few calls.
        let hopeless = report.verdict.too_few.is_some();
        if held || hopeless || started.elapsed() >= deadline {
            let mut report = report;
            report.verdict.settle = Some(Settle {
                deadline_s: deadline.as_secs_f64(),
                windows,
                settled: held,
                settled_after_s: held
                    .then(|| (window_start.as_secs_f64() * 1000.0).round() / 1000.0),
            });
            return report;
        }
    }
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
        Arc::clone(dial.engine),
    )
    .map_err(Failure::Usage)?;
    let by_name: HashMap<String, String> = known
        .iter()
        .map(|k| (k.name.clone(), k.address.clone()))
        .collect();
    let attribution = Attribution::PerConnection { known: by_name };
    let pool = Arc::new(pool);
    let run = RunMode::ClusterIp {
        address: address.to_string(),
        connections,
    };
    Ok(judged_windows(plan, &run, judged, async |load: LoadPlan| {
        let result = measured(
            Arc::clone(&pool),
            &load,
            dial.call,
            &attribution,
            "clusterip",
            plan.quiet,
        )
        .await;
        let info = RunInfo {
            mode: "clusterip".into(),
            policy: "per-connection".into(),
            target: address.to_string(),
            call: plan.load.call.method().into(),
            connections,
            elapsed_s: result.elapsed.as_secs_f64(),
        };
        let report = Report::build(info, &result.record, known, Vec::new(), Vec::new());
        with_client(report, &load, &result)
    })
    .await)
}

/// Holds a channel to every resolved endpoint and picks one per call,
/// following the resolver's changes during the run.
async fn run_headless(
    plan: &BenchPlan,
    mut resolution: Resolution,
    pool: Arc<Pool>,
    call: &Prepared,
    notices: Vec<String>,
    judged: bool,
) -> Report {
    let followed: Arc<Mutex<Followed>> = Arc::default();
    let measure_start = Instant::now() + plan.load.warmup;
    let follower = {
        let pool = Arc::clone(&pool);
        let followed = Arc::clone(&followed);
        tokio::spawn(async move {
            while let Some(update) = resolution.updates.recv().await {
                let at_s = signed_seconds_since(measure_start);
                let Ok(mut followed) = followed.lock() else {
                    return;
                };
                match update {
                    Update::Reset(set) => {
                        let (change, problems) = pool.apply(&set);
                        if !change.is_empty() {
                            followed.changes.push(ChangeReport {
                                at_s: (at_s * 1000.0).round() / 1000.0,
                                added: change.added,
                                removed: change.removed,
                            });
                        }
                        followed.notices.extend(problems);
                    }
                    Update::Notice(notice) => followed.notices.push(notice),
                }
            }
        })
    };
    let connections = pool.members().len();
    let report = judged_windows(plan, &RunMode::Headless, judged, async |load: LoadPlan| {
        let result = measured(
            Arc::clone(&pool),
            &load,
            call,
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
        let followed = followed.lock().map(|f| f.clone()).unwrap_or_default();
        let changes = followed.changes;
        let mut notices = notices.clone();
        notices.extend(followed.notices);
        let info = RunInfo {
            mode: "headless".into(),
            policy: plan.policy.name().into(),
            target: plan.target.to_string(),
            call: plan.load.call.method().into(),
            connections,
            elapsed_s: result.elapsed.as_secs_f64(),
        };
        let report = Report::build(info, &result.record, &expected, changes, notices);
        with_client(report, &load, &result)
    })
    .await;
    follower.abort();
    report
}

/// What the headless run saw from the resolver while it ran.
#[derive(Debug, Clone, Default)]
struct Followed {
    changes: Vec<ChangeReport>,
    /// Resolver notices and endpoints that could not be dialled.
    notices: Vec<String>,
}

/// Drives the load with a live progress view.
async fn measured(
    pool: Arc<Pool>,
    load: &LoadPlan,
    call: &Prepared,
    attribution: &Attribution,
    label: &str,
    quiet: bool,
) -> RunResult {
    let live = Arc::new(Live::default());
    let progress = Progress::start(label, load.stop, load.warmup, Arc::clone(&live), quiet);
    let result = drive(pool, load, call.clone(), attribution, live).await;
    if let Some(progress) = progress {
        progress.finish();
    }
    result
}

/// Adds the asked-versus-achieved load and the client's own cost.
fn with_client(mut report: Report, load: &LoadPlan, result: &RunResult) -> Report {
    let (load, client) = load_and_client(load, result);
    report.load = Some(load);
    report.client = Some(client);
    report
}

fn signed_seconds_since(start: Instant) -> f64 {
    let now = Instant::now();
    if now >= start {
        now.duration_since(start).as_secs_f64()
    } else {
        -start.duration_since(now).as_secs_f64()
    }
}

/// Attaches the verdict; a run shown only for contrast is not judged.
fn with_verdict(mut report: Report, plan: &BenchPlan, run: &RunMode, judged: bool) -> Report {
    let balancing = balancing(plan, run);
    if judged {
        report.verdict = judge(&report, &plan.assertions, balancing);
    } else {
        report.verdict = judge(&report, &Assertions::default(), balancing);
        report.verdict.checked = NOT_JUDGED.into();
    }
    report
}

/// Prints the reports as tables or one JSON document. A closed stdout
/// (`grpclb bench … | head`) ends printing quietly.
pub fn print(reports: &[Report], output: Output) -> Result<(), Failure> {
    let text = match output {
        Output::Json => {
            let json = if let [report] = reports {
                serde_json::to_string_pretty(report)
            } else {
                serde_json::to_string_pretty(&serde_json::json!({ "runs": reports }))
            };
            json.map_err(|e| Failure::CannotRun(format!("cannot encode the report: {e}")))?
        }
        Output::Table => {
            let mut text: Vec<String> = reports.iter().map(render).collect();
            if reports.len() > 1 {
                text.push(comparison_table(reports));
                text.push(conclusion(reports));
            }
            text.join("\n")
        }
    };
    write_stdout(&text)
}

/// Writes a block to stdout; a reader that went away is not an error.
pub fn write_stdout(text: &str) -> Result<(), Failure> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure::CannotRun(format!("cannot write the report: {e}")))
        }
        _ => Ok(()),
    }
}

/// The exit code of finished runs: 3 when no call succeeded at all,
/// 1 when a verdict failed, else 0.
pub fn exit_code(reports: &[Report]) -> (u8, Option<String>) {
    if let Some(dead) = reports.iter().find(|r| r.requests > 0 && r.ok == 0) {
        let codes: std::collections::BTreeSet<String> = dead
            .endpoints
            .iter()
            .flat_map(|e| e.error_codes.keys().cloned())
            .collect();
        let codes: Vec<String> = codes.into_iter().collect();
        return (
            3,
            Some(format!(
                "no call succeeded in {} mode against {} ({}); check that the servers run and the address is right",
                dead.mode,
                dead.target,
                codes.join(", ")
            )),
        );
    }
    if reports.iter().any(|r| !r.verdict.passed) {
        return (1, None);
    }
    (0, None)
}
