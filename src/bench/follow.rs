//! Following the resolver during a headless run: every update is applied
//! to the pool as it arrives, and what changed is kept for the report.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::pool::Pool;
use crate::report::ChangeReport;
use crate::resolve::{Resolution, Update};

/// What the run saw from the resolver while it ran.
#[derive(Debug, Clone, Default)]
pub(super) struct Followed {
    pub changes: Vec<ChangeReport>,
    /// Resolver notices and endpoints that could not be dialled.
    pub notices: Vec<String>,
}

/// A background task that applies the resolver's updates to the pool;
/// stops when dropped.
pub(super) struct Follower {
    followed: Arc<Mutex<Followed>>,
    task: JoinHandle<()>,
}

impl Follower {
    /// Starts following. Change times count from the end of `warmup`
    /// (negative: during warm-up).
    pub fn start(mut resolution: Resolution, pool: Arc<Pool>, warmup: Duration) -> Follower {
        let followed: Arc<Mutex<Followed>> = Arc::default();
        let measure_start = Instant::now() + warmup;
        let task = {
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
                        Update::Notice(notice) => followed.notices.push(notice.to_string()),
                    }
                }
            })
        };
        Follower { followed, task }
    }

    /// What was seen so far.
    pub fn seen(&self) -> Followed {
        self.followed.lock().map(|f| f.clone()).unwrap_or_default()
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn signed_seconds_since(start: Instant) -> f64 {
    let now = Instant::now();
    if now >= start {
        now.duration_since(start).as_secs_f64()
    } else {
        -start.duration_since(now).as_secs_f64()
    }
}
