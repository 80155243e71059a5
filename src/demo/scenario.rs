//! `grpclb demo --scenario`: pods that come and go while each mode runs.
//! Each mode starts from the same cluster and replays the same script:
//! the clusterip run first, then the headless run.

use std::time::{Duration, Instant, SystemTime};

use super::cluster::Cluster;
use super::story::{Event, Happened};
use crate::Failure;
use crate::load::Stop;
use crate::plan::{BenchPlan, DemoPlan, RunMode, SCENARIO_DURATION, Scenario};
use crate::report::Report;
use crate::serve::{ConnectionAge, ServeSettings};

/// What a rollout waits between starting a pod and removing an old one,
/// and between removing it and stopping it (a preStop pause).
const ROLLOUT_PAUSE: Duration = Duration::from_millis(300);

/// `max-connection-age`: each connection gets GOAWAY after about this
/// long (±10%), then has this grace to finish its calls. Short, so that a
/// run of a few seconds sees a dozen reconnects (production ages are
/// minutes; the story is the same).
pub(super) const CONNECTION_AGE: ConnectionAge = ConnectionAge {
    age: Duration::from_millis(500),
    grace: Some(Duration::from_secs(2)),
};

/// One thing a script does to the cluster.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Start this many new pods and list them.
    Join(usize),
    /// Start a new pod, list it, then unlist and drain the oldest one.
    Replace,
    /// Kill the pod the Service's connection went to (in the headless
    /// run: the pod killed in the clusterip run).
    KillPinned,
}

/// A scenario's starting cluster and its steps, each at a fraction of the
/// measured window.
#[derive(Debug, Clone)]
pub(super) struct Script {
    pub pods: usize,
    settings: ServeSettings,
    steps: Vec<(f64, Step)>,
}

impl Script {
    pub fn of(scenario: Scenario) -> Script {
        let well_behaved = ServeSettings::default();
        match scenario {
            Scenario::ScaleUp => Script {
                pods: 2,
                settings: well_behaved,
                steps: vec![(1.0 / 3.0, Step::Join(2))],
            },
            Scenario::Rollout => Script {
                pods: 3,
                settings: well_behaved,
                steps: vec![
                    (0.2, Step::Replace),
                    (0.45, Step::Replace),
                    (0.7, Step::Replace),
                ],
            },
            Scenario::MaxConnectionAge => Script {
                pods: 3,
                settings: ServeSettings {
                    connection_age: Some(CONNECTION_AGE),
                    ..well_behaved
                },
                steps: Vec::new(),
            },
            Scenario::Kill => Script {
                pods: 3,
                settings: well_behaved,
                steps: vec![(0.4, Step::KillPinned)],
            },
        }
    }

    /// One sentence on what will happen, `window` being each mode's
    /// measured time.
    fn describe(&self, scenario: Scenario, window: Duration) -> String {
        let at = |fraction: f64| format!("+{:.1}s", window.as_secs_f64() * fraction);
        let when: Vec<String> = self.steps.iter().map(|(f, _)| at(*f)).collect();
        match scenario {
            Scenario::ScaleUp => format!(
                "{} more pods join at {}",
                self.steps
                    .iter()
                    .map(|(_, s)| match s {
                        Step::Join(n) => *n,
                        _ => 0,
                    })
                    .sum::<usize>(),
                when.join(", ")
            ),
            Scenario::Rollout => format!(
                "a rollout replaces them one by one at {} (new pod listed, then the old one unlisted and drained)",
                when.join(", ")
            ),
            Scenario::MaxConnectionAge => format!(
                "each pod sends GOAWAY on every connection after {:?} ±10% ({:?} grace), as MaxConnectionAge does",
                CONNECTION_AGE.age,
                CONNECTION_AGE.grace.unwrap_or_default()
            ),
            Scenario::Kill => format!(
                "at {} the pod behind the Service's connection is killed (no GOAWAY)",
                when.join(", ")
            ),
        }
    }
}

/// Both modes of `scenario`: the reports (clusterip, then headless) and
/// what happened to the pods during each.
pub(super) async fn run(
    plan: &DemoPlan,
    scenario: Scenario,
    announce: impl FnOnce(String) -> Result<(), Failure>,
) -> Result<(Vec<Report>, Vec<Vec<Happened>>), Failure> {
    let script = Script::of(scenario);
    let window = match plan.load.stop {
        Stop::Duration(d) => d,
        Stop::Requests(_) => SCENARIO_DURATION,
    };
    let mut announce = Some(announce);
    let mut reports = Vec::new();
    let mut happenings = Vec::new();
    let mut victim = None;
    for clusterip in [true, false] {
        let (mut cluster, resolution) =
            Cluster::start(script.pods, script.settings.clone()).await?;
        if let Some(announce) = announce.take() {
            announce(format!(
                "grpclb demo --scenario {}: {} pods on {}, a ClusterIP stand-in on {} (one random pod per TCP connection); \
                 {}. Each mode runs {:.1}s from the same {} pods: clusterip, then headless.\n",
                scenario.name(),
                script.pods,
                cluster.addresses().join(", "),
                cluster.service_address(),
                script.describe(scenario, window),
                window.as_secs_f64(),
                script.pods,
            ))?;
        }
        let bench = bench_plan(plan, &cluster, clusterip);
        let start = Instant::now() + plan.load.warmup;
        let mut happened = Vec::new();
        let bench_run = crate::bench::run_resolved(&bench, Some(resolution));
        tokio::pin!(bench_run);
        // The script stops where the run stops (a signal, an early end).
        let mut early = None;
        tokio::select! {
            result = &mut bench_run => early = Some(result),
            () = play(&mut cluster, &script, start, window, victim.clone(), &mut happened) => {}
        }
        let result = match early {
            Some(result) => result,
            None => bench_run.await,
        };
        cluster.stop().await;
        let mut report = result?
            .pop()
            .ok_or_else(|| Failure::CannotRun("internal: the demo's run made no report".into()))?;
        if clusterip {
            // Shown for contrast, as in the plain demo.
            report.verdict = report.verdict.not_judged();
            victim = happened.iter().find_map(|h| match &h.event {
                Event::Killed(name) => Some(name.clone()),
                _ => None,
            });
        }
        let interrupted = report.interrupted;
        reports.push(report);
        happenings.push(happened);
        if interrupted {
            break;
        }
    }
    Ok((reports, happenings))
}

/// One mode's bench plan over the cluster: the Service's address, or
/// per-call balancing over what the resolver lists.
fn bench_plan(plan: &DemoPlan, cluster: &Cluster, clusterip: bool) -> BenchPlan {
    let run = if clusterip {
        RunMode::ClusterIp {
            address: cluster.service_address().to_string(),
            connections: 1,
        }
    } else {
        RunMode::Headless
    };
    super::run::bench_over(plan, cluster.addresses(), vec![run])
}

/// Plays the script's steps, each at its time after `start` (the end of
/// the warm-up), and notes what happened when.
async fn play(
    cluster: &mut Cluster,
    script: &Script,
    start: Instant,
    window: Duration,
    victim: Option<String>,
    happened: &mut Vec<Happened>,
) {
    let mut note = |event: Event| {
        happened.push(Happened {
            at: SystemTime::now(),
            event,
        })
    };
    for (fraction, step) in &script.steps {
        tokio::time::sleep_until((start + window.mul_f64(*fraction)).into()).await;
        match *step {
            Step::Join(count) => {
                let (names, failure) = cluster.add(count).await;
                names.into_iter().for_each(|name| note(Event::Joined(name)));
                if let Some(failure) = failure {
                    eprintln!("grpclb demo: {failure}");
                }
            }
            Step::Replace => {
                let oldest = cluster.running().into_iter().next();
                let (names, failure) = cluster.add(1).await;
                names.into_iter().for_each(|name| note(Event::Joined(name)));
                if let Some(failure) = failure {
                    eprintln!("grpclb demo: {failure}");
                }
                tokio::time::sleep(ROLLOUT_PAUSE).await;
                if let Some(old) = oldest
                    && cluster.remove(&old, ROLLOUT_PAUSE)
                {
                    note(Event::Removed(old));
                }
            }
            Step::KillPinned => {
                let target = victim
                    .clone()
                    .or_else(|| cluster.pinned())
                    .or_else(|| cluster.running().into_iter().next());
                if let Some(name) = target
                    && cluster.kill(&name)
                {
                    note(Event::Killed(name));
                }
            }
        }
    }
}
