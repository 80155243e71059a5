//! The live view: a progress line on stderr while a run goes on, shown
//! only on a terminal and not with `--quiet`.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;

use crate::load::Stop;
use crate::record::Live;

/// A running progress view; finish it with [`Progress::finish`].
pub struct Progress {
    bar: ProgressBar,
    ticker: JoinHandle<()>,
}

impl Progress {
    /// Starts the view, or returns `None` when stderr is not a terminal or
    /// `quiet`. Rates and times count from the end of the `warmup`.
    pub fn start(
        label: &str,
        stop: Stop,
        warmup: Duration,
        live: Arc<Live>,
        quiet: bool,
    ) -> Option<Progress> {
        if quiet || !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = match stop {
            Stop::Requests(n) => ProgressBar::new(n),
            Stop::Duration(d) => ProgressBar::new(d.as_millis() as u64),
        };
        bar.set_draw_target(ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{prefix} {bar:30} {msg}") {
            bar.set_style(style);
        }
        bar.set_prefix(label.to_string());
        let view = bar.clone();
        let measuring_from = Instant::now() + warmup;
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let now = Instant::now();
                if now < measuring_from {
                    view.set_message("warming up");
                    continue;
                }
                let measured = now.duration_since(measuring_from);
                let done = live.done.load(Ordering::Relaxed);
                let errors = live.errors.load(Ordering::Relaxed);
                let rate = done as f64 / measured.as_secs_f64().max(1e-3);
                let progress = match stop {
                    Stop::Requests(n) => {
                        view.set_position(done);
                        format!("{done}/{n} calls")
                    }
                    Stop::Duration(d) => {
                        view.set_position(measured.as_millis() as u64);
                        format!(
                            "{:.1}s/{:.1}s · {done} calls",
                            measured.as_secs_f64(),
                            d.as_secs_f64()
                        )
                    }
                };
                view.set_message(format!("{progress} · {rate:.0} req/s · {errors} errors"));
            }
        });
        Some(Progress { bar, ticker })
    }

    /// Stops the ticker and clears the line.
    pub fn finish(self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}
