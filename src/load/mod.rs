//! The load driver: workers that send calls through the pool, closed loop
//! (N concurrent workers) or open loop (a target rate), bounded by a request
//! count or a duration, after an unrecorded warm-up.

mod call;
mod identify;
mod raw_call;
mod schedule;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use call::{CallKind, CallOutcome, code_name, send};
pub use identify::identify;
pub use raw_call::RawCall;
pub use schedule::{Schedule, Stop};

use crate::pool::{Member, Pool};
use crate::record::{EndpointKey, Live, NO_ENDPOINT, Recorder};

/// How much load to send, and how.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// Concurrent workers (each has at most one call in flight).
    pub concurrency: usize,
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
    /// From the end of the warm-up to the last call's completion.
    pub elapsed: Duration,
}

struct Context {
    pool: Arc<Pool>,
    plan: LoadPlan,
    attribution: Attribution,
    live: Arc<Live>,
    warmup_end: Instant,
    schedule: Schedule,
}

/// Runs the plan against the pool and returns the merged record.
pub async fn drive(
    pool: Arc<Pool>,
    plan: LoadPlan,
    attribution: Attribution,
    live: Arc<Live>,
) -> RunResult {
    let warmup_end = Instant::now() + plan.warmup;
    let schedule = Schedule::new(plan.stop, plan.rate, warmup_end);
    let workers = plan.concurrency.max(1);
    let context = Arc::new(Context {
        pool,
        plan,
        attribution,
        live,
        warmup_end,
        schedule,
    });
    let handles: Vec<_> = (0..workers)
        .map(|_| tokio::spawn(worker(Arc::clone(&context))))
        .collect();
    let mut record = Recorder::default();
    let mut finished = warmup_end;
    for handle in handles {
        // A worker only ends by returning; a panic would be a bug worth seeing.
        match handle.await {
            Ok((worker_record, last)) => {
                record.merge(&worker_record);
                finished = finished.max(last);
            }
            Err(join_error) => std::panic::resume_unwind(join_error.into_panic()),
        }
    }
    RunResult {
        record,
        elapsed: finished.saturating_duration_since(warmup_end),
    }
}

/// One worker: warm up, then take scheduled slots until the plan is done.
async fn worker(context: Arc<Context>) -> (Recorder, Instant) {
    let mut record = Recorder::default();
    while Instant::now() < context.warmup_end {
        call_once(&context, None).await;
    }
    let mut last = Instant::now();
    while let Some(intended) = context.schedule.next_slot() {
        if let Some(at) = intended {
            tokio::time::sleep_until(at.into()).await;
        }
        call_once(&context, Some((&mut record, intended))).await;
        last = Instant::now();
    }
    (record, last)
}

/// Sends one call; records it when `record` is given. Latency runs from the
/// intended send time in open loop, so queueing behind slow calls shows.
async fn call_once(context: &Context, record: Option<(&mut Recorder, Option<Instant>)>) {
    let started = Instant::now();
    let Some(member) = wait_for_member(context).await else {
        if let Some((record, _)) = record {
            let key = EndpointKey {
                name: NO_ENDPOINT.to_string(),
                address: NO_ENDPOINT.to_string(),
            };
            record.error(key, "NO_ENDPOINT");
            context.live.count(false);
        }
        return;
    };
    let outcome = {
        let _in_flight = member.start_call();
        let plan = &context.plan;
        send(
            member.channel(),
            &plan.call,
            plan.timeout,
            &plan.identity_header,
            &plan.metadata,
        )
        .await
    };
    if outcome.unreachable {
        context.pool.eject(&member);
    }
    let Some((record, intended)) = record else {
        if let Some(identity) = &outcome.identity {
            member.saw_identity(identity);
        }
        return;
    };
    let key = credit(context, &member, outcome.identity.as_deref());
    context.live.count(outcome.result.is_ok());
    match outcome.result {
        Ok(()) => record.ok(key, intended.unwrap_or(started).elapsed()),
        Err(code) => record.failed(key, &code, outcome.message.as_deref()),
    }
}

/// A member to call, waiting up to the call timeout for the pool to fill.
async fn wait_for_member(context: &Context) -> Option<Arc<Member>> {
    let deadline = Instant::now() + context.plan.timeout;
    loop {
        if let Some(member) = context.pool.pick() {
            return Some(member);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The endpoint a call is credited to (design: "Who answered").
fn credit(context: &Context, member: &Member, identity: Option<&str>) -> EndpointKey {
    let name = match identity {
        Some(identity) => {
            member.saw_identity(identity);
            identity.to_string()
        }
        None => member.fallback_identity(),
    };
    let address = match &context.attribution {
        Attribution::PerEndpoint => member.endpoint().address.clone(),
        Attribution::PerConnection { known } => known
            .get(&name)
            .cloned()
            .unwrap_or_else(|| member.endpoint().address.clone()),
    };
    EndpointKey { name, address }
}
