//! The load asked beside the load achieved, and what the client itself
//! cost: so a reader knows when the client, not the server, was the limit.

use serde::Serialize;

use crate::load::{LoadPlan, RunResult, Stop, Usage};

/// Below this fraction of the asked rate, an open loop fell behind.
const RATE_HELD: f64 = 0.95;
/// Above this fraction of its worker threads' time, the client was busy
/// to the full.
const CORES_FULL: f64 = 0.9;

/// The load shape asked for.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AskedLoad {
    pub concurrency: usize,
    /// Calls per second in open loop; absent in closed loop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    pub warmup_s: f64,
    pub timeout_s: f64,
}

/// What was asked and what was achieved.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LoadReport {
    pub asked: AskedLoad,
    /// Calls per second measured (the same as the report's `rps`).
    pub achieved_rps: f64,
    /// Open loop with a duration: calls due before the end that the client
    /// never sent because it fell behind.
    pub unsent: u64,
    /// Calls in flight when the duration ended; they finished (within
    /// their timeout) and are counted.
    pub in_flight_at_end: u64,
}

/// The client's own cost.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClientReport {
    /// Worker threads that sent the calls.
    pub threads: usize,
    /// CPU time of the whole process over the measured run.
    pub cpu_s: f64,
    /// CPU time per call, in microseconds.
    pub cpu_us_per_call: f64,
    /// CPU time ÷ wall time: 1.0 = one core busy throughout.
    pub cores_used: f64,
    /// Peak resident memory of the process so far.
    pub max_rss_mb: f64,
    /// Seconds from dialling the pods to every connection settled (ready
    /// or failed); headless runs, bounded by a 2 s wait.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_s: Option<f64>,
    /// True when the run suggests the client, not the server, was the limit.
    pub may_be_the_limit: bool,
    /// Why, in words (empty when not).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub why: Vec<String>,
}

/// The load and client reports of a measured run.
pub fn load_and_client(plan: &LoadPlan, result: &RunResult) -> (LoadReport, ClientReport) {
    let calls = result.record.total().requests();
    let elapsed = result.elapsed.as_secs_f64();
    let achieved = if elapsed > 0.0 {
        calls as f64 / elapsed
    } else {
        0.0
    };
    let asked = AskedLoad {
        concurrency: plan.concurrency,
        rate: plan.rate,
        requests: match plan.stop {
            Stop::Requests(n) => Some(n),
            Stop::Duration(_) => None,
        },
        duration_s: match plan.stop {
            Stop::Duration(d) => Some(d.as_secs_f64()),
            Stop::Requests(_) => None,
        },
        warmup_s: plan.warmup.as_secs_f64(),
        timeout_s: plan.timeout.as_secs_f64(),
    };
    let cpu_s = result.cpu.as_secs_f64();
    let cores_used = if elapsed > 0.0 { cpu_s / elapsed } else { 0.0 };
    let mut why = Vec::new();
    if let Some(rate) = plan.rate
        && achieved < RATE_HELD * rate
    {
        why.push(format!(
            "open loop reached {achieved:.0} of the {rate:.0} calls/s asked ({:.0}%)",
            100.0 * achieved / rate
        ));
    }
    if result.threads > 0 && cores_used >= CORES_FULL * result.threads as f64 {
        why.push(format!(
            "the client kept its {} worker thread{} busy ({:.0}% of a core each)",
            result.threads,
            if result.threads == 1 { "" } else { "s" },
            100.0 * cores_used / result.threads as f64
        ));
    }
    let load = LoadReport {
        asked,
        achieved_rps: round1(achieved),
        unsent: result.unsent,
        in_flight_at_end: result.in_flight_at_end,
    };
    let client = ClientReport {
        threads: result.threads,
        cpu_s: round3(cpu_s),
        cpu_us_per_call: if calls > 0 {
            round2(cpu_s * 1e6 / calls as f64)
        } else {
            0.0
        },
        cores_used: round2(cores_used),
        max_rss_mb: round1(Usage::now().max_rss_bytes as f64 / 1e6),
        connect_s: None,
        may_be_the_limit: !why.is_empty(),
        why,
    };
    (load, client)
}

/// The summary line about the client, for the table.
pub fn client_line(load: &LoadReport, client: &ClientReport) -> String {
    let mut line = format!(
        "client: {:.1} µs CPU per call, {:.2} cores used, {} thread{}, peak RSS {:.0} MB",
        client.cpu_us_per_call,
        client.cores_used,
        client.threads,
        if client.threads == 1 { "" } else { "s" },
        client.max_rss_mb
    );
    if let Some(rate) = load.asked.rate {
        line.push_str(&format!(
            "; open loop {:.0} of {rate:.0} calls/s asked",
            load.achieved_rps
        ));
    }
    if load.unsent > 0 {
        line.push_str(&format!(
            "; {} calls due before the end not sent",
            load.unsent
        ));
    }
    if load.in_flight_at_end > 0 {
        line.push_str(&format!(
            "; {} calls in flight at the end finished after it",
            load.in_flight_at_end
        ));
    }
    line.push('\n');
    if client.may_be_the_limit {
        line.push_str(&format!(
            "client may be the limit, not the server: {}\n",
            client.why.join("; ")
        ));
    }
    line
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
