//! `--settle`: measure in windows until the checks hold for a whole window,
//! up to a deadline.

use std::time::{Duration, Instant};

use crate::load::LoadPlan;
use crate::plan::BenchPlan;
use crate::report::Report;
use crate::verdict::Settle;

/// Measures one window (warm-up only before the first) and returns its
/// judged report; with `--settle` on a judged run, keeps measuring windows
/// until one passes or the deadline is reached, and returns the last.
pub(super) async fn until_settled(
    plan: &BenchPlan,
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
        let mut report = window(load).await;
        windows += 1;
        let cut_short = report.interrupted || report.unreachable_since_s.is_some();
        let Some(deadline) = plan.settle.filter(|_| judged && !cut_short) else {
            return report;
        };
        let held = report.verdict.passed == Some(true);
        // More windows of the same size cannot fix too few calls.
        let hopeless = report.verdict.too_few.is_some();
        if held || hopeless || started.elapsed() >= deadline {
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
