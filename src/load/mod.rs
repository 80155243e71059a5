//! The load driver: calls sent through the pool from the engine's worker
//! threads, closed loop (N calls in flight) or open loop (a target rate),
//! bounded by a request count or a duration, after an unrecorded warm-up.
//!
//! The request is encoded once per run; each worker thread runs its share
//! of the calls in flight as tasks on its own runtime and counts them into
//! its own [`ThreadTally`]; the tallies are merged and named at the end.

mod bounds;
mod call;
mod identify;
mod schedule;
mod usage;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::HeaderName;

pub use bounds::{
    MAX_CONCURRENCY, MAX_CONNECTIONS, MAX_PAYLOAD_BYTES, MAX_THREADS, check_connections,
};
pub use call::{CallKind, CallRequest, PrepareError, Prepared, Reply, ReplyCheck, exchange};
pub use identify::identify;
pub use schedule::{Schedule, Stop};
pub use usage::{Usage, raise_open_files_limit};

use crate::pool::{Member, Pool, identity_text};
use crate::record::{
    EndpointKey, ErrorCode, Live, NO_ENDPOINT, Recorder, RowKey, Rows, Sent, ThreadTally,
    initial_width_us,
};

/// How much load to send, and how.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// Calls in flight at most (closed loop: always).
    pub concurrency: usize,
    /// Worker threads sending the calls.
    pub threads: usize,
    pub stop: Stop,
    /// Open loop at this many calls per second; `None` = closed loop.
    pub rate: Option<f64>,
    /// Calls sent and not recorded before measuring.
    pub warmup: Duration,
    /// Deadline of each call.
    pub timeout: Duration,
    pub call: CallKind,
    /// Response header naming the server (`hostname` by default).
    pub identity_header: String,
    /// Metadata every call carries (`--metadata`).
    pub metadata: crate::metadata::CallMetadata,
}

/// How calls are credited to endpoints.
#[derive(Debug, Clone)]
pub enum Attribution {
    /// Each member is an endpoint: credit the member's address.
    PerEndpoint,
    /// Members are connections to one Service address: credit the address
    /// the answering pod is known by (from `known`, identity → address),
    /// else the Service address.
    PerConnection { known: HashMap<String, String> },
}

/// The outcome of a measured run.
#[derive(Debug)]
pub struct RunResult {
    pub record: Recorder,
    /// Wall-clock start of the measured part (the end of the warm-up).
    pub started_at: std::time::SystemTime,
    /// From the end of the warm-up to the last call's completion.
    pub elapsed: Duration,
    /// CPU time this process spent over the same span (every thread).
    pub cpu: Duration,
    /// Open loop with a duration: slots due before the end that were not
    /// sent because the client fell behind.
    pub unsent: u64,
    /// Calls in flight when the duration ended (they finished within
    /// their timeout and are counted).
    pub in_flight_at_end: u64,
    /// Worker threads that sent the calls.
    pub threads: usize,
}

/// A call refused by a connection that was going away is sent again
/// elsewhere this many times at most (gRPC's transparent retry).
const MAX_TRANSPARENT_RETRIES: u32 = 8;

/// How long a refused call waits, per retry so far, for the connection
/// that refused it to stop being picked.
const RETRY_PAUSE: Duration = Duration::from_millis(5);

/// Calls a worker finishes between updates of the live counters.
const LIVE_BATCH: u64 = 32;

/// What every worker of a run shares.
struct Run {
    pool: Arc<Pool>,
    call: Prepared,
    timeout: Duration,
    schedule: Schedule,
    warmup_end: Instant,
    /// The end of a run with a duration.
    end: Option<Instant>,
    rows: Arc<Rows>,
    live: Arc<Live>,
    in_flight_at_end: AtomicU64,
    /// The next request message when several are sent in turn.
    next_message: std::sync::atomic::AtomicUsize,
}

impl Run {
    /// An empty tally for one worker thread, placing calls in time from
    /// the end of the warm-up.
    fn tally(&self) -> ThreadTally {
        let duration = self.end.map(|end| end.duration_since(self.warmup_end));
        ThreadTally::new(
            Arc::clone(&self.rows),
            self.warmup_end,
            initial_width_us(duration),
        )
    }
}

impl LoadPlan {
    /// The plan's call with its metadata, encoded once for the whole run
    /// (`tls`: the pool dials over TLS, so calls name the `https` scheme).
    pub fn prepare(&self, tls: bool) -> Result<Prepared, String> {
        let identity_header = HeaderName::from_bytes(self.identity_header.as_bytes())
            .map_err(|_| {
                format!(
                    "--identity-header {:?} is not a valid header name (lowercase letters, digits, '-')",
                    self.identity_header
                )
            })?;
        Prepared::new(&self.call.request(), self.timeout, identity_header)
            .map(|call| call.addressed(&self.metadata, tls))
            .map_err(|e| e.to_string())
    }
}

/// Runs the plan's load, sending `call`, against the pool (on the pool's
/// engine) and returns the merged record.
pub async fn drive(
    pool: Arc<Pool>,
    plan: &LoadPlan,
    call: Prepared,
    attribution: &Attribution,
    live: Arc<Live>,
) -> RunResult {
    let warmup_end = Instant::now() + plan.warmup;
    let started_at = std::time::SystemTime::now() + plan.warmup;
    let end = match plan.stop {
        Stop::Duration(d) => Some(warmup_end + d),
        Stop::Requests(_) => None,
    };
    let rows = Arc::new(Rows::default());
    let run = Arc::new(Run {
        pool: Arc::clone(&pool),
        call,
        timeout: plan.timeout,
        schedule: Schedule::new(plan.stop, plan.rate, warmup_end),
        warmup_end,
        end,
        rows: Arc::clone(&rows),
        live,
        in_flight_at_end: AtomicU64::new(0),
        next_message: std::sync::atomic::AtomicUsize::new(0),
    });
    let engine = Arc::clone(pool.engine());
    let threads = engine.threads();
    let mut finished = Vec::with_capacity(threads);
    for thread in 0..threads {
        // Spread the calls in flight evenly over the threads.
        let loops = plan.concurrency / threads + usize::from(thread < plan.concurrency % threads);
        let (done, result) = tokio::sync::oneshot::channel();
        finished.push(result);
        let run = Arc::clone(&run);
        engine.spawn_local(thread, move || async move {
            let _ = done.send(worker_thread(run, thread, loops).await);
        });
    }
    tokio::time::sleep_until(warmup_end.into()).await;
    let before = Usage::now();
    let mut tallies = Vec::with_capacity(threads);
    let mut last = warmup_end;
    for result in finished {
        // A worker thread only stops early by panicking: a bug worth seeing.
        let Ok((tally, thread_last)) = result.await else {
            panic!("a worker thread stopped before the run ended");
        };
        tallies.push(tally);
        last = last.max(thread_last);
    }
    let cpu = Usage::now().cpu_since(&before);
    let sent: u64 = tallies.iter().map(|t| t.calls).sum();
    let record = rows.finish(&tallies, |key| credit(&pool, attribution, key));
    RunResult {
        record,
        started_at,
        elapsed: last.saturating_duration_since(warmup_end),
        cpu,
        unsent: run.schedule.unsent(sent),
        in_flight_at_end: run.in_flight_at_end.load(Ordering::Relaxed),
        threads,
    }
}

/// One worker thread's share: `loops` call loops as local tasks counting
/// into one tally. Returns the tally and the last completion time.
async fn worker_thread(run: Arc<Run>, thread: usize, loops: usize) -> (ThreadTally, Instant) {
    let tally = Rc::new(RefCell::new(run.tally()));
    let handles: Vec<_> = (0..loops)
        .map(|i| {
            let run = Arc::clone(&run);
            let tally = Rc::clone(&tally);
            tokio::task::spawn_local(call_loop(run, tally, thread + i))
        })
        .collect();
    let mut last = run.warmup_end;
    for handle in handles {
        // A loop only ends by returning; a panic would be a bug worth seeing.
        match handle.await {
            Ok(loop_last) => last = last.max(loop_last),
            Err(join_error) => std::panic::resume_unwind(join_error.into_panic()),
        }
    }
    let tally = match Rc::try_unwrap(tally) {
        Ok(tally) => tally.into_inner(),
        Err(shared) => shared.replace(run.tally()),
    };
    (tally, last)
}

/// One call in flight at a time: warm up, then take scheduled slots until
/// the plan is done. Returns when its last call completed.
async fn call_loop(
    run: Arc<Run>,
    tally: Rc<RefCell<ThreadTally>>,
    first_message: usize,
) -> Instant {
    let mut message = first_message;
    // Several request messages (`--data-lines`) are sent in turn over the
    // whole run, through one shared counter; a single message needs none.
    let cycling = run.call.messages() > 1;
    let next = |message: &mut usize| {
        *message = if cycling {
            run.next_message.fetch_add(1, Ordering::Relaxed)
        } else {
            message.wrapping_add(1)
        };
    };
    if cycling {
        next(&mut message);
    }
    while Instant::now() < run.warmup_end && !run.live.stopped() {
        call_once(&run, message, None).await;
        next(&mut message);
    }
    let mut last = Instant::now();
    let (mut done, mut errors) = (0u64, 0u64);
    while let Some(intended) = run.schedule.next_slot() {
        if let Some(at) = intended {
            tokio::time::sleep_until(at.into()).await;
        }
        if run.live.stopped() {
            break;
        }
        let ok = call_once(&run, message, Some((&tally, intended))).await;
        next(&mut message);
        last = Instant::now();
        if let Some(end) = run.end
            && last > end
        {
            run.in_flight_at_end.fetch_add(1, Ordering::Relaxed);
        }
        done += 1;
        errors += u64::from(!ok);
        if done == LIVE_BATCH {
            run.live.add(done, errors);
            (done, errors) = (0, 0);
        }
    }
    run.live.add(done, errors);
    last
}

/// Sends one call; records it when `record` is given and returns whether
/// it succeeded. Latency runs from the intended send time in open loop,
/// so queueing behind slow calls shows.
async fn call_once(
    run: &Run,
    message: usize,
    record: Option<(&RefCell<ThreadTally>, Option<Instant>)>,
) -> bool {
    let started = Instant::now();
    let deadline = tokio::time::Instant::from_std(started + run.timeout);
    let mut retries = 0;
    let (member, epoch, outcome) = loop {
        let (member, epoch) = match run.pool.pick() {
            Some(picked) => picked,
            None => match run.pool.pick_or_wait(deadline).await {
                Some(picked) => picked,
                None => {
                    if let Some((tally, _)) = record {
                        tally.borrow_mut().no_endpoint(started);
                    }
                    return false;
                }
            },
        };
        let reply = {
            let _in_flight = member.start_call();
            tokio::time::timeout_at(deadline, exchange(&member, &run.call, message)).await
        };
        match reply {
            Ok(reply) if reply.refused && retries < MAX_TRANSPARENT_RETRIES => {
                retries += 1;
                // Let the refusing connection leave the ready list (it got
                // GOAWAY, or closed) before picking again, not spin on it.
                let pause = RETRY_PAUSE * retries;
                let until = deadline.min(tokio::time::Instant::now() + pause);
                run.pool.until_unready(&member, until).await;
            }
            Ok(reply) => break (member, epoch, Ok(reply)),
            Err(_elapsed) => break (member, epoch, Err(ErrorCode::DEADLINE_EXCEEDED)),
        }
    };
    let (result, identity, message) = match outcome {
        Ok(reply) => (reply.result, reply.identity, reply.message),
        Err(code) => (Err(code), None, None),
    };
    if let Some((tally, intended)) = record {
        let mut tally = tally.borrow_mut();
        let sent = Sent {
            slot: member.slot(),
            epoch,
            at: started,
        };
        match result {
            Ok(()) => tally.ok(
                sent,
                identity.as_ref(),
                intended.unwrap_or(started).elapsed(),
            ),
            Err(code) => tally.error(sent, identity.as_ref(), code, message.as_deref()),
        }
    }
    result.is_ok()
}

/// The endpoint a row is credited to (design: "Who answered").
fn credit(pool: &Pool, attribution: &Attribution, key: &RowKey) -> EndpointKey {
    let Some(member) = key.slot.and_then(|slot| pool.member(slot)) else {
        return EndpointKey {
            name: NO_ENDPOINT.to_string(),
            address: NO_ENDPOINT.to_string(),
        };
    };
    let name = key
        .identity
        .as_ref()
        .and_then(identity_text)
        .unwrap_or_else(|| member.fallback_identity());
    EndpointKey {
        address: address_of(&member, attribution, &name),
        name,
    }
}

fn address_of(member: &Member, attribution: &Attribution, name: &str) -> String {
    match attribution {
        Attribution::PerEndpoint => member.endpoint().address.clone(),
        Attribution::PerConnection { known } => known
            .get(name)
            .cloned()
            .unwrap_or_else(|| member.endpoint().address.clone()),
    }
}
