//! `grpclb bench` against real `grpclb serve` processes on loopback.

mod support;

use std::time::Duration;

use support::{
    Backend, assert_accounted, backends, bench_report, code, ipv4_target, json, requests_by_name,
    run_grpclb,
};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn headless_round_robin_splits_exactly() {
    let pods = backends("rr", 21, 3);
    let target = ipv4_target(&pods);
    let concurrency = 4;
    let report = bench_report(&[&target, "--lb", "round_robin", "-n", "3000", "-c", "4"]);
    assert_eq!(report["requests"], 3000);
    assert_eq!(report["errors"], 0);
    let counts = requests_by_name(&report);
    assert_eq!(counts.len(), 3, "{counts:?}");
    for (name, n) in &counts {
        assert!(
            name.starts_with("rr-"),
            "attributed by the hostname header: {name}"
        );
        assert!(
            n.abs_diff(1000) <= concurrency,
            "{name} got {n}, expected 1000 ± {concurrency}"
        );
    }
}

#[test]
fn every_policy_reaches_every_endpoint_and_accounts_for_every_call() {
    let pods = backends("pol", 31, 3);
    let target = ipv4_target(&pods);
    for policy in ["round_robin", "random", "least_request"] {
        let report = bench_report(&[&target, "--lb", policy, "-n", "1500", "-c", "6"]);
        assert_eq!(report["policy"], policy);
        for (name, n) in requests_by_name(&report) {
            assert!(n > 200, "{policy}: {name} got only {n} of 1500");
        }
    }
    let report = bench_report(&[&target, "--lb", "pick_first", "-n", "500"]);
    let served: Vec<_> = requests_by_name(&report)
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(served.len(), 1, "pick_first uses one endpoint: {served:?}");
}

#[test]
fn assert_even_fails_pick_first_naming_the_idle_pods_and_passes_round_robin() {
    let pods = backends("even", 41, 3);
    let target = ipv4_target(&pods);
    let out = run_grpclb(
        &[
            "bench",
            &target,
            "--lb",
            "pick_first",
            "-n",
            "600",
            "--assert-even",
            "-q",
        ],
        LIMIT,
    );
    assert_eq!(code(&out), 1, "{}", String::from_utf8_lossy(&out.stdout));
    let text = String::from_utf8_lossy(&out.stdout);
    let idle_line = text
        .lines()
        .find(|l| l.contains("got no calls (idle)"))
        .unwrap_or_else(|| panic!("no idle endpoints named: {text}"));
    let named = ["even-1", "even-2", "even-3"]
        .iter()
        .filter(|n| idle_line.contains(*n))
        .count();
    assert_eq!(named, 2, "the two idle pods are named: {idle_line}");
    let out = run_grpclb(
        &["bench", &target, "-n", "600", "--assert-even", "-q"],
        LIMIT,
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn echo_call_with_payload_is_attributed_and_timed() {
    let pods = backends("echo", 51, 2);
    let target = ipv4_target(&pods);
    let report = bench_report(&[
        &target,
        "--call",
        "echo",
        "--payload-bytes",
        "512",
        "-n",
        "400",
    ]);
    assert_eq!(report["call"], "grpclb.v1.Echo/Echo");
    let names: Vec<String> = requests_by_name(&report)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
        ["echo-1", "echo-2"],
        "attributed by the hostname header"
    );
    for row in report["endpoints"].as_array().expect("rows") {
        assert_eq!(row["requests"], 200, "{row}");
        assert!(
            row["latency_ms"]["p50"].as_f64().unwrap_or(0.0) > 0.0,
            "{row}"
        );
    }
}

#[test]
fn killed_backend_yields_errors_on_that_endpoint_only() {
    let mut pods = backends("kill", 61, 3);
    let target = ipv4_target(&pods);
    let victim = pods[1].name.clone();
    let run = std::thread::spawn(move || {
        run_grpclb(
            &[
                "bench",
                &target,
                "-z",
                "3s",
                "-c",
                "4",
                "--timeout",
                "1s",
                "-o",
                "json",
                "-q",
                "--max-errors",
                "0",
            ],
            LIMIT,
        )
    });
    std::thread::sleep(Duration::from_millis(1200));
    pods[1].process.kill();
    let out = run.join().expect("bench thread");
    assert_eq!(
        code(&out),
        1,
        "--max-errors 0 fails the run: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report = json(&out);
    assert_accounted(&report);
    let rows = report["endpoints"].as_array().expect("rows");
    for row in rows {
        let errors = row["errors"].as_u64().unwrap_or(0);
        if row["name"] == victim.as_str() {
            assert!(errors > 0, "the killed pod's calls failed: {row}");
            assert!(
                row["ok"].as_u64().unwrap_or(0) > 0,
                "it served before it died: {row}"
            );
        } else {
            assert_eq!(errors, 0, "only the killed pod has errors: {row}");
        }
    }
    let failures = report["verdict"]["failures"].to_string();
    assert!(
        failures.contains(&victim),
        "the verdict names where errors happened: {failures}"
    );
}

/// Runs `grpclb bench ARGS… -o json -q` in a thread (the report comes
/// back on join), so that the test can act on the servers meanwhile.
fn bench_in_background(args: Vec<String>) -> std::thread::JoinHandle<serde_json::Value> {
    std::thread::spawn(move || {
        let mut full: Vec<&str> = vec!["bench"];
        full.extend(args.iter().map(String::as_str));
        full.extend(["-o", "json", "-q"]);
        let out = run_grpclb(&full, LIMIT);
        assert_eq!(
            code(&out),
            0,
            "{full:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report = json(&out);
        assert_accounted(&report);
        report
    })
}

fn latency(report: &serde_json::Value, at: &str) -> f64 {
    report["latency_ms"][at]
        .as_f64()
        .unwrap_or_else(|| panic!("latency_ms.{at} missing: {report}"))
}

#[test]
fn open_loop_shows_a_stall_as_queueing_that_closed_loop_hides() {
    let pods = backends("stall", 71, 1);
    let target = ipv4_target(&pods);
    let args = |extra: &[&str]| {
        let mut args = vec![target.clone(), "-z".into(), "6s".into()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    // Both runs over the same server and the same stretch: it stops
    // answering (SIGSTOP) for one second in the middle of the runs. The
    // open loop has enough calls in flight that the stall's backlog drains
    // at once after it, even on a loaded machine.
    let open = bench_in_background(args(&["--rate", "200", "-c", "64"]));
    let closed = bench_in_background(args(&["-c", "8"]));
    std::thread::sleep(Duration::from_millis(2_500));
    support::signal(&pods[0].process.child, "STOP");
    std::thread::sleep(Duration::from_secs(1));
    support::signal(&pods[0].process.child, "CONT");
    let (open, closed) = (
        open.join().expect("open loop"),
        closed.join().expect("closed loop"),
    );
    eprintln!(
        "open loop: {} calls/s, latency {}; closed loop: latency {}",
        open["rps"], open["latency_ms"], closed["latency_ms"]
    );

    // Open loop: 200 calls/s for 6 s is 1200 calls, sent on schedule.
    assert_eq!(open["requests"], 1200, "{open}");
    assert_eq!(open["errors"], 0, "{open}");
    let achieved = open["rps"].as_f64().unwrap_or(0.0);
    assert!(
        (achieved - 200.0).abs() <= 10.0,
        "asked for 200 calls/s, achieved {achieved:.1} (tolerance ±5%)"
    );
    // The 200 calls due during the stall wait for it, each from its intended
    // send time: their latencies spread over 0..1 s, so the slowest 1/6 of
    // the run queued 0..1 s, p90 waited ~0.4 s and p99 ~0.93 s.
    assert!(
        latency(&open, "p90") >= 250.0,
        "open loop hides the queueing: {open}"
    );
    assert!(
        latency(&open, "p99") >= 700.0,
        "open loop hides the queueing: {open}"
    );
    // Closed loop over the same stretch: only the 8 calls in flight saw the
    // stall (max), then the workers waited instead of sending.
    assert!(
        latency(&closed, "max") >= 900.0,
        "the stall reached the closed loop: {closed}"
    );
    assert!(
        latency(&closed, "p99") < 250.0,
        "closed loop counts only the calls in flight at the stall: {closed}"
    );
}

#[test]
fn unreachable_target_is_exit_3() {
    // Nothing listens on this port: every call fails, the run could not do its job.
    let silent = std::net::TcpListener::bind("127.0.0.81:0").expect("bind");
    let address = silent.local_addr().expect("address");
    drop(silent);
    let out = run_grpclb(
        &[
            "bench",
            &format!("ipv4:{address}"),
            "-n",
            "20",
            "--timeout",
            "500ms",
            "-q",
        ],
        LIMIT,
    );
    assert_eq!(code(&out), 3, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no call succeeded"));
}

#[test]
fn least_request_sends_a_slow_pod_fewer_calls_than_random_and_cuts_p99() {
    let mut pods = backends("p2c", 24, 2);
    pods.push(Backend::start_with(
        "127.0.0.26",
        "p2c-slow",
        &["--delay", "2s"],
    ));
    let target = ipv4_target(&pods);
    let run = |policy: &str| {
        let report = bench_report(&[&target, "--lb", policy, "-z", "4s", "-c", "8"]);
        assert_eq!(report["errors"], 0, "{report}");
        let slow = requests_by_name(&report)
            .into_iter()
            .find(|(name, _)| name == "p2c-slow")
            .map_or(0, |(_, n)| n);
        let share = slow as f64 / report["requests"].as_f64().unwrap_or(1.0);
        (share, latency(&report, "p99"), report)
    };
    let (random_share, random_p99, random) = run("random");
    let (least_share, least_p99, least) = run("least_request");
    eprintln!(
        "slow pod's share and p99: random {random_share:.4}, {random_p99} ms; least_request {least_share:.4}, {least_p99} ms"
    );
    // random: a third of the calls (~50 in 4 s) wait 2 s. least_request: the
    // slow pod keeps its calls in flight longer than the fast ones and loses
    // the comparisons; it gets about (fast latency) / (2 × 2 s) of the calls,
    // well under 1% even on a loaded 2-core machine, so its p99 is a fast call.
    assert!(
        random_share > 0.1,
        "random gives each of 3 pods ~1/3: the slow one got {random_share:.3}: {random}"
    );
    assert!(
        least_share < random_share / 5.0,
        "least_request gave the slow pod {least_share:.4} of the calls, random {random_share:.4}: {least}"
    );
    assert!(
        random_p99 >= 2_000.0,
        "random's p99 is a slow call: {random}"
    );
    assert!(
        least_p99 < random_p99 / 4.0,
        "least_request's p99 {least_p99} ms is not clearly below random's {random_p99} ms: {least}"
    );
}

/// The client side of a drain. `grpclb serve` finishes every call it
/// accepted (`serve_faults::sigterm_stops_accepting_and_finishes_every_call_in_flight`)
/// and C-core loses nothing to it (`serve_faults::c_core_client_loses_no_call_when_a_pod_drains`);
/// today's client still fails the calls a GOAWAY refused and keeps picking
/// the gone pod (measured: 6–10 failed calls of ~2000).
#[test]
#[ignore = "needs the engine's connection states and transparent retry (issue 9); run with --ignored"]
fn graceful_drain_costs_no_call() {
    let mut pods = support::backends_with("drain", "127.0.4", 1, 3, &["--delay", "20ms"]);
    let run = bench_in_background(vec![
        ipv4_target(&pods),
        "-z".into(),
        "4s".into(),
        "-c".into(),
        "16".into(),
    ]);
    // 16 calls of 20 ms in flight over 3 pods: ~5 on the drained one.
    std::thread::sleep(Duration::from_millis(1_500));
    pods[1].process.terminate();
    let report = run.join().expect("bench");
    assert!(
        pods[1]
            .process
            .wait_for_exit(Duration::from_secs(10))
            .is_some(),
        "the drained pod exited"
    );
    assert_eq!(report["errors"], 0, "a graceful drain cost calls: {report}");
}
