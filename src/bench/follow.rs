//! Following the resolver from the first run to the last: every update is
//! applied to the pool as it arrives (so in `--mode both` the pods' pool
//! stays current through the clusterip run too), and what changed is kept
//! for the reports.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::task::JoinHandle;

use super::states::seconds_from;
use crate::pool::{Pool, PoolChange};
use crate::report::ChangeReport;
use crate::resolve::{Resolution, Update};

/// What the resolver did, kept as it happened.
#[derive(Debug, Default)]
struct Seen {
    changes: Vec<(Instant, PoolChange)>,
    /// Resolver notices and endpoints that could not be dialled.
    notices: Vec<String>,
}

/// What a run saw from the resolver.
#[derive(Debug, Clone, Default)]
pub(super) struct Followed {
    pub changes: Vec<ChangeReport>,
    pub notices: Vec<String>,
}

/// A background task that applies the resolver's updates to the pool;
/// stops when dropped.
pub(super) struct Follower {
    seen: Arc<Mutex<Seen>>,
    task: JoinHandle<()>,
}

impl Follower {
    /// Starts following.
    pub fn start(mut resolution: Resolution, pool: Arc<Pool>) -> Follower {
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let task = {
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                while let Some(update) = resolution.updates.recv().await {
                    let at = Instant::now();
                    let Ok(mut seen) = seen.lock() else {
                        return;
                    };
                    match update {
                        Update::Reset(set) => {
                            let (change, problems) = pool.apply(&set);
                            if !change.is_empty() {
                                seen.changes.push((at, change));
                            }
                            seen.notices.extend(problems);
                        }
                        Update::Notice(notice) => seen.notices.push(notice.to_string()),
                    }
                }
            })
        };
        Follower { seen, task }
    }

    /// What was seen from `since` on (a run's start, warm-up included),
    /// with times counted from `start` (the end of its warm-up).
    pub fn seen(&self, since: Instant, start: Instant) -> Followed {
        let Ok(seen) = self.seen.lock() else {
            return Followed::default();
        };
        Followed {
            changes: seen
                .changes
                .iter()
                .filter(|(at, _)| *at >= since)
                .map(|(at, change)| ChangeReport {
                    at_s: seconds_from(start, *at),
                    added: change.added.clone(),
                    removed: change.removed.clone(),
                })
                .collect(),
            notices: seen.notices.clone(),
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.task.abort();
    }
}
