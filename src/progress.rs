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
    /// Starts the view, or returns `None` when stderr is not a terminal or `quiet`.
    pub fn start(label: &str, stop: Stop, live: Arc<Live>, quiet: bool) -> Option<Progress> {
        if quiet || !std::io::stderr().is_terminal() {
            return None;
        }
        let (bar, template) = match stop {
            Stop::Requests(n) => (
                ProgressBar::new(n),
                "{prefix} {bar:30} {pos}/{len} calls · {msg}",
            ),
            Stop::Duration(d) => (
                ProgressBar::new(d.as_millis() as u64),
                "{prefix} {bar:30} {elapsed}/{duration} · {msg}",
            ),
        };
        bar.set_draw_target(ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        bar.set_prefix(label.to_string());
        let view = bar.clone();
        let ticker = tokio::spawn(async move {
            let started = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let done = live.done.load(Ordering::Relaxed);
                let errors = live.errors.load(Ordering::Relaxed);
                let secs = started.elapsed().as_secs_f64().max(1e-3);
                match stop {
                    Stop::Requests(_) => view.set_position(done),
                    Stop::Duration(_) => view.set_position(started.elapsed().as_millis() as u64),
                }
                view.set_message(format!(
                    "{done} calls · {:.0} req/s · {errors} errors",
                    done as f64 / secs
                ));
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
