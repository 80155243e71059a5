//! The default verdict (`--assert-even`) against real `grpclb serve`
//! backends on loopback: a fair random balancer passes run after run, and
//! pick_first fails every time, naming the idle endpoints.

mod support;

use std::time::{Duration, Instant};

use support::{backends, code, ipv4_target, json, run_grpclb};

/// One bench run's time limit.
const LIMIT: Duration = Duration::from_secs(120);
/// The whole loop's time limit.
const BUDGET: Duration = Duration::from_secs(900);
const RUNS: usize = 20;
/// Calls per run: enough for the default bound over 5 endpoints to catch
/// a half-share endpoint (the verdict says "too few calls" otherwise).
const CALLS: &str = "1000";

fn bench(target: &str, policy: &str, calls: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "bench",
        target,
        "--lb",
        policy,
        "-n",
        calls,
        "-c",
        "16",
        "--assert-even",
        "-o",
        "json",
        "-q",
    ];
    args.extend_from_slice(extra);
    let out = run_grpclb(&args, LIMIT);
    let report = json(&out);
    let expected = if policy == "pick_first" { 1 } else { 0 };
    assert_eq!(
        code(&out),
        expected,
        "{policy}: {}",
        serde_json::to_string_pretty(&report["verdict"]).unwrap_or_default()
    );
    report
}

#[test]
fn random_passes_run_after_run_and_pick_first_fails_naming_idle_endpoints() {
    let pods = backends("fair", 161, 5);
    let target = ipv4_target(&pods);
    let started = Instant::now();
    for run in 1..=RUNS {
        assert!(
            started.elapsed() < BUDGET,
            "only {run} of {RUNS} runs within {BUDGET:?}"
        );
        let report = bench(&target, "random", CALLS, &[]);
        let verdict = &report["verdict"];
        assert_eq!(verdict["passed"], true, "run {run}: {verdict}");
        assert_eq!(verdict["even"], true, "run {run}: {verdict}");

        let report = bench(&target, "pick_first", CALLS, &[]);
        let verdict = &report["verdict"];
        assert_eq!(verdict["passed"], false, "run {run}: {verdict}");
        let served: Vec<&str> = report["endpoints"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["requests"].as_u64() > Some(0))
            .filter_map(|e| e["name"].as_str())
            .collect();
        assert_eq!(served.len(), 1, "pick_first uses one endpoint: {served:?}");
        let idle: Vec<&str> = pods
            .iter()
            .map(|p| p.name.as_str())
            .filter(|n| !served.contains(n))
            .collect();
        let text = verdict["failures"].to_string();
        for name in &idle {
            assert!(
                text.contains(name),
                "run {run}: {name} is not named: {text}"
            );
        }
        let hit = verdict["failed"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["check"] == "all-endpoints-hit")
            .unwrap_or_else(|| panic!("no all-endpoints-hit finding: {verdict}"));
        assert_eq!(hit["endpoints"].as_array().map(Vec::len), Some(idle.len()));
    }
}

#[test]
fn settle_reports_the_first_window_that_held() {
    let pods = backends("settle", 171, 3);
    let report = bench(
        &ipv4_target(&pods),
        "round_robin",
        "300",
        &["--settle", "30s"],
    );
    let settle = &report["verdict"]["settle"];
    assert_eq!(settle["settled"], true, "{settle}");
    assert_eq!(settle["windows"], 1, "{settle}");
    assert_eq!(settle["settled_after_s"], 0.0, "{settle}");
}

#[test]
fn too_few_calls_fail_with_the_number_needed() {
    let pods = backends("few", 181, 5);
    let out = run_grpclb(
        &[
            "bench",
            &ipv4_target(&pods),
            "--lb",
            "random",
            "-n",
            "50",
            "--assert-even",
            "-q",
        ],
        LIMIT,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(code(&out), 1, "{text}");
    assert!(text.contains("too few calls to judge the spread"), "{text}");
    let needed: u64 = text
        .split("judging needs at least ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.replace(',', "").parse().ok())
        .unwrap_or_else(|| panic!("no number of calls needed: {text}"));
    assert!(
        needed > 50,
        "50 calls were too few, so more are needed: {text}"
    );
    assert!(text.contains("bound: "), "the bound is printed: {text}");
}

#[test]
fn a_spread_that_never_holds_does_not_settle_and_says_so() {
    let pods = backends("unsettled", 191, 3);
    let report = bench(
        &ipv4_target(&pods),
        "pick_first",
        "700",
        &["--settle", "5s"],
    );
    let verdict = &report["verdict"];
    assert!(
        verdict.get("too_few").is_none(),
        "700 calls are enough: {verdict}"
    );
    let settle = &verdict["settle"];
    assert_eq!(settle["settled"], false, "{settle}");
    assert!(
        settle["windows"].as_u64() >= Some(2),
        "kept trying: {settle}"
    );
    assert_eq!(settle["settled_after_s"], serde_json::Value::Null);
}

#[test]
fn bad_verdict_flags_are_usage_errors() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--max-ratio", "0.5"],
            "--max-ratio 0.5 must be at least 1",
        ),
        (&["--chi2-p", "2"], "--chi2-p 2 must be a p-value"),
        (
            &["--weights", "a=1,2"],
            "mixes name=weight and bare weights",
        ),
        (&["--weights", "0,0"], "at least one weight"),
        (&["--settle", "0s"], "--settle must be longer than 0"),
        (
            &["--weights", "1,2,3", "--expect-endpoints", "2"],
            "--weights lists 3 weights",
        ),
    ];
    for (flags, fragment) in cases {
        let mut args = vec!["bench", "ipv4:127.0.0.1:1"];
        args.extend_from_slice(flags);
        let out = run_grpclb(&args, Duration::from_secs(20));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), 2, "{flags:?}: {stderr}");
        assert!(stderr.contains(fragment), "{flags:?}: {stderr}");
    }
}
