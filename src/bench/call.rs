//! The call a bench run sends, when `--call` names a method (or gives the
//! built-in calls JSON): described (reflection on the pods or the Service
//! address, or files) and encoded once, before any call; and, for
//! `--print-responses`, a few calls whose replies are kept to show.

use std::sync::Arc;
use std::time::Duration;

use crate::Failure;
use crate::load::{CallKind, Prepared, exchange};
use crate::method::ResponseSamples;
use crate::plan::{BenchPlan, RunMode};
use crate::pool::{Pool, identity_text};

/// The plan with its method prepared (`None`: the plan's own call is sent),
/// and the responses to keep for `--print-responses`.
pub async fn prepare(
    plan: &BenchPlan,
    pool: &Pool,
) -> Result<(Option<BenchPlan>, Option<Arc<ResponseSamples>>), Failure> {
    let Some(spec) = &plan.method else {
        return Ok((None, None));
    };
    let mut addresses: Vec<String> = pool
        .members()
        .iter()
        .map(|m| m.endpoint().address.clone())
        .collect();
    addresses.extend(plan.runs.iter().filter_map(|run| match run {
        RunMode::ClusterIp { address, .. } => Some(address.clone()),
        _ => None,
    }));
    let call = spec.prepare(&addresses).await?;
    let samples = (spec.print_responses > 0).then(|| {
        Arc::new(ResponseSamples::new(
            spec.print_responses,
            call.response.clone(),
        ))
    });
    if call.requests.is_empty() {
        return Err(Failure::Usage(format!(
            "{} has no request to send",
            call.name
        )));
    }
    let mut prepared = plan.clone();
    prepared.load.call = CallKind::Method {
        name: call.name.to_string(),
        path: call.path.clone(),
        requests: call.requests,
    };
    Ok((Some(prepared), samples))
}

/// Sends calls over the pool's ready members, in turn, until `samples` has
/// what it wants, keeping each reply (request messages in order, as the
/// run sends them). Bounded by one call timeout each.
pub async fn sample(pool: &Pool, call: &Prepared, samples: &ResponseSamples, timeout: Duration) {
    let keeping = call.keeping_body();
    let mut message = 0;
    while samples.wants_more() {
        let deadline = tokio::time::Instant::now() + timeout;
        let Some((member, _)) = pool.pick_or_wait(deadline).await else {
            return;
        };
        let Ok(reply) =
            tokio::time::timeout_at(deadline, exchange(&member, &keeping, message)).await
        else {
            return;
        };
        match reply.body {
            Some(body) if reply.result.is_ok() => {
                let from = reply.identity.as_ref().and_then(identity_text);
                samples.offer(from.as_deref(), &body);
            }
            _ => return,
        }
        message += 1;
    }
}
