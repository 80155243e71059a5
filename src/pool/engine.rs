//! The client's worker threads: each runs its own current-thread tokio
//! runtime, hosting some members' connections and the calls sent from it.
//!
//! Why not one multi-thread runtime: on the load path every wake-up that
//! crosses threads costs a futex round trip, and measured on two shared
//! cores a work-stealing runtime was slower than one thread. Here a task
//! stays on the thread it was spawned on.

use std::future::Future;
use std::pin::Pin;
use std::thread;

use tokio::sync::mpsc;

/// A task built on its worker thread: it may hold `Rc`/`RefCell` state.
type LocalJob = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// One worker thread.
struct Lane {
    handle: tokio::runtime::Handle,
    jobs: mpsc::UnboundedSender<LocalJob>,
}

/// The worker threads; dropping the engine stops them (their tasks are
/// cancelled).
pub struct Engine {
    lanes: Vec<Lane>,
}

/// Why the worker threads could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the client's worker threads: {0}")]
pub struct EngineError(#[from] std::io::Error);

impl Engine {
    /// Starts `threads` worker threads (at least one).
    pub fn start(threads: usize) -> Result<Engine, EngineError> {
        let mut lanes = Vec::with_capacity(threads.max(1));
        for index in 0..threads.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let handle = runtime.handle().clone();
            let (jobs, mut incoming) = mpsc::unbounded_channel::<LocalJob>();
            thread::Builder::new()
                .name(format!("grpclb-worker-{index}"))
                .spawn(move || {
                    let local = tokio::task::LocalSet::new();
                    local.block_on(&runtime, async move {
                        while let Some(job) = incoming.recv().await {
                            tokio::task::spawn_local(job());
                        }
                    });
                })?;
            lanes.push(Lane { handle, jobs });
        }
        Ok(Engine { lanes })
    }

    /// How many worker threads run.
    pub fn threads(&self) -> usize {
        self.lanes.len()
    }

    /// Runs `task` on worker thread `lane` (modulo the thread count).
    pub fn spawn<F>(&self, lane: usize, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let lane = &self.lanes[lane % self.lanes.len()];
        drop(lane.handle.spawn(task));
    }

    /// Runs the future that `build` makes, built on worker thread `lane`,
    /// so that it may hold thread-local state (`Rc`, `RefCell`).
    pub fn spawn_local<B, F>(&self, lane: usize, build: B)
    where
        B: FnOnce() -> F + Send + 'static,
        F: Future<Output = ()> + 'static,
    {
        let lane = &self.lanes[lane % self.lanes.len()];
        let job: LocalJob = Box::new(move || Box::pin(build()));
        // The thread only stops when the engine is dropped.
        let _ = lane.jobs.send(job);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    #[tokio::test]
    async fn local_tasks_run_on_their_own_thread() {
        let engine = Engine::start(2).expect("engine");
        let (tx, rx) = tokio::sync::oneshot::channel();
        engine.spawn_local(1, move || async move {
            let shared = Rc::new(Cell::new(0));
            shared.set(shared.get() + 1);
            let name = thread::current().name().map(str::to_string);
            let _ = tx.send((shared.get(), name));
        });
        let (count, name) = rx.await.expect("ran");
        assert_eq!(count, 1);
        assert_eq!(name.as_deref(), Some("grpclb-worker-1"));
    }
}
