//! The call a bench run sends, when `--call` names a method (or gives the
//! built-in calls JSON): described (reflection on the pods or the Service
//! address, or files) and encoded once, before any call.

use std::sync::Arc;

use crate::Failure;
use crate::load::{CallKind, RawCall};
use crate::method::ResponseSamples;
use crate::plan::{BenchPlan, RunMode};
use crate::pool::Pool;

/// The plan with its method prepared (`None`: the plan's own call is sent),
/// and the responses kept for `--print-responses`.
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
    let raw = RawCall::new(call, samples.clone()).map_err(Failure::Usage)?;
    let mut prepared = plan.clone();
    prepared.load.call = CallKind::Method(Arc::new(raw));
    Ok((Some(prepared), samples))
}
