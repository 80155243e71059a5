//! `grpclb bench`: the whole run, top to bottom. Resolve the target, dial
//! the pool, ask each pod who it is, run each mode (with `--settle`
//! windows, following the resolver), and return one judged report per mode.
//! The binary prints them and exits with [`exit_code`].

mod call;
mod follow;
mod measure;
mod outcome;
mod preflight;
mod presence;
mod progress;
mod states;
mod stop;
mod windows;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

pub use outcome::{Outcome, exit_code};

use crate::Failure;
use crate::load::{Attribution, LoadPlan, identify, raise_open_files_limit};
use crate::pick::RoundRobin;
use crate::plan::{BenchPlan, RunMode};
use crate::pool::{BackoffSettings, Engine, Pool};
use crate::record::{EndpointKey, Tallies};
use crate::report::{ClientIdentity, Report, RunInfo};
use crate::resolve;
use crate::verdict::Balancing;
use follow::Follower;
use measure::{Dial, judged_report, measured, start_together, with_client, with_cut};
use states::{never_ready, states};
use stop::Interrupt;

/// Longest wait for the pool's first connections before measuring.
const CONNECT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs every mode of the plan and returns one report per mode.
pub async fn run(plan: &BenchPlan) -> Result<Vec<Report>, Failure> {
    run_resolved(plan, None).await
}

/// [`run`] over `given`, when some, a resolution the caller drives instead
/// of the plan's target (the demo's scenarios add and remove pods mid-run).
pub async fn run_resolved(
    plan: &BenchPlan,
    given: Option<resolve::Resolution>,
) -> Result<Vec<Report>, Failure> {
    raise_open_files_limit();
    let interrupt = Interrupt::listen()
        .map_err(|e| Failure::CannotRun(format!("cannot install the SIGINT handler: {e}")))?;
    let engine = Engine::start(plan.load.threads).map_err(|e| Failure::CannotRun(e.to_string()))?;
    let engine = Arc::new(engine);
    let settings = BackoffSettings::default();
    let mut resolution = match given {
        None if plan.pods_known => Some(resolve::start(&plan.target, &plan.resolve).await?),
        given => given,
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
    // The pods' pool follows the resolver from here through every run.
    let follower = resolution
        .take()
        .map(|resolution| Follower::start(resolution, Arc::clone(&pool)));
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
            } => run_clusterip(plan, address, *connections, &known, dial, judged, &pool).await?,
            RunMode::ServiceOfTarget { connections } => {
                let address = resolve::service_address(&plan.target, &plan.resolve).await?;
                run_clusterip(plan, &address, *connections, &known, dial, judged, &pool).await?
            }
            RunMode::Headless => {
                let follower = follower.as_ref().ok_or_else(|| {
                    Failure::CannotRun("internal: the headless run has no resolution".into())
                })?;
                let mut notices = problems.clone();
                notices.extend(unreachable.iter().cloned());
                let headless =
                    run_headless(plan, follower, Arc::clone(&pool), dial, notices, judged);
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

/// Dials the Service address over `connections` connections and lets the
/// network pick a pod per connection. Pods the resolver added since they
/// were identified (`pods` follows it) get a row too, idle or not.
async fn run_clusterip(
    plan: &BenchPlan,
    address: &str,
    connections: usize,
    known: &[EndpointKey],
    dial: Dial<'_>,
    judged: bool,
    pods: &Pool,
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
    let attribution = Attribution::PerConnection {
        known: by_name.clone(),
    };
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
            let (result, cut, measure_start) =
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
            let newcomers: Vec<EndpointKey> = presence::in_pool(pods)
                .into_iter()
                .filter(|pod| !known.iter().any(|k| k.address == pod.address))
                .collect();
            let record = presence::placed(result.record.clone(), address, &newcomers);
            let expected = [known, &newcomers].concat();
            let tallies = Tallies::new(&record, &expected);
            let report = judged_report(
                info,
                &tallies,
                Vec::new(),
                Vec::new(),
                plan,
                balancing,
                judged,
            );
            let mut report = with_cut(with_client(report, &load, &result), cut);
            report.generations = presence::generations(&pool, measure_start, &by_name);
            report
        })
        .await,
    )
}

/// Holds a channel to every resolved endpoint and picks one per call,
/// following the resolver's changes during the run.
async fn run_headless(
    plan: &BenchPlan,
    follower: &Follower,
    pool: Arc<Pool>,
    dial: Dial<'_>,
    notices: Vec<String>,
    judged: bool,
) -> Report {
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
        let expected = presence::in_pool(&pool);
        let followed = follower.seen(measure_start - load.warmup, measure_start);
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
        tallies.epochs = presence::epochs(
            &pool,
            &result.record.epoch_calls,
            measure_start,
            measure_end,
        );
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
        presence::with_presence(&mut report, &pool, measure_start);
        report
    })
    .await
}
