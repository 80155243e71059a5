//! Why a measured run stops before its plan is done: a termination signal
//! (Ctrl-C, or SIGTERM from a CI runner's cancel), or every endpoint gone.
//! Either way the calls measured so far are reported.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::pool::Pool;
use crate::record::Live;

/// How often the pool is looked at for a ready member.
const POLL: Duration = Duration::from_millis(100);

/// The termination signal that interrupted the bench, if any; a second
/// signal exits at once.
#[derive(Default)]
pub(super) struct Interrupt {
    /// 0: none; else the signal number (2 = SIGINT, 15 = SIGTERM).
    signal: AtomicU8,
    arrived: Notify,
}

impl Interrupt {
    /// Starts listening for SIGINT and SIGTERM for the rest of the process.
    pub fn listen() -> std::io::Result<Arc<Interrupt>> {
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let interrupt = Arc::new(Interrupt::default());
        let shared = Arc::clone(&interrupt);
        tokio::spawn(async move {
            loop {
                let number = tokio::select! {
                    _ = int.recv() => 2,
                    _ = term.recv() => 15,
                };
                if shared.signal.load(Ordering::Relaxed) != 0 {
                    // The second signal: do not wait for the report.
                    std::process::exit(128 + i32::from(number));
                }
                shared.signal.store(number, Ordering::Relaxed);
                shared.arrived.notify_waiters();
            }
        });
        Ok(interrupt)
    }

    /// `SIGINT` or `SIGTERM` once one arrived.
    pub fn signal(&self) -> Option<&'static str> {
        match self.signal.load(Ordering::Relaxed) {
            2 => Some("SIGINT"),
            15 => Some("SIGTERM"),
            _ => None,
        }
    }
}

/// Why a run was cut short.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Cut {
    /// A termination signal arrived.
    Signal(&'static str),
    /// No member was ready for longer than the call timeout, since this
    /// many seconds into the measured run.
    NothingReachable { since_s: f64 },
}

/// Stops `live`'s run when a signal arrives or nothing is reachable for
/// longer than `grace`; read what happened with [`Watch::cut`].
pub(super) struct Watch {
    task: JoinHandle<Option<Cut>>,
}

impl Watch {
    pub fn start(
        interrupt: Arc<Interrupt>,
        pool: Arc<Pool>,
        live: Arc<Live>,
        grace: Duration,
        measure_start: Instant,
    ) -> Watch {
        let task = tokio::spawn(async move {
            let mut empty_since: Option<Instant> = None;
            loop {
                let signalled = interrupt.arrived.notified();
                tokio::pin!(signalled);
                if let Some(name) = interrupt.signal() {
                    live.stop();
                    return Some(Cut::Signal(name));
                }
                tokio::select! {
                    () = &mut signalled => {}
                    () = tokio::time::sleep(POLL) => {}
                }
                if let Some(name) = interrupt.signal() {
                    live.stop();
                    return Some(Cut::Signal(name));
                }
                if pool.ready_members().is_empty() {
                    let since = *empty_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > grace {
                        live.stop();
                        return Some(Cut::NothingReachable {
                            since_s: signed_seconds(since, measure_start),
                        });
                    }
                } else {
                    empty_since = None;
                }
            }
        });
        Watch { task }
    }

    /// Stops watching; what cut the run short, if anything did.
    pub async fn cut(self) -> Option<Cut> {
        if self.task.is_finished() {
            return self.task.await.ok().flatten();
        }
        self.task.abort();
        None
    }
}

/// Seconds from `start` to `at`, negative when `at` came first.
fn signed_seconds(at: Instant, start: Instant) -> f64 {
    let s = if at >= start {
        at.duration_since(start).as_secs_f64()
    } else {
        -start.duration_since(at).as_secs_f64()
    };
    (s * 1000.0).round() / 1000.0
}
