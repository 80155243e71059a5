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

#[test]
fn open_loop_rate_is_held_and_latency_counts_from_intended_start() {
    let pods = backends("rate", 71, 2);
    let report = bench_report(&[&ipv4_target(&pods), "--rate", "200", "-z", "2s", "-c", "4"]);
    // 200/s for 2 s: exactly 400 slots are scheduled; each was sent, or
    // (on a machine too busy to keep up) counted as unsent at the end.
    let sent = report["requests"].as_u64().unwrap_or(0);
    let unsent = report["load"]["unsent"].as_u64().unwrap_or(0);
    assert_eq!(sent + unsent, 400, "{report}");
    assert_eq!(report["load"]["asked"]["rate"], 200.0);
}

#[test]
fn a_duration_ends_the_run_even_when_the_rate_cannot_be_met() {
    let pods = backends("bound", 75, 1);
    let started = std::time::Instant::now();
    let report = bench_report(&[
        &ipv4_target(&pods),
        "--rate",
        "100000",
        "-z",
        "2s",
        "-c",
        "4",
        "--warmup",
        "0s",
        "--timeout",
        "1s",
    ]);
    let took = started.elapsed();
    // The run ends at 2 s; calls in flight then finish within --timeout.
    assert!(
        took < Duration::from_secs(2 + 1 + 3),
        "the run took {took:?}"
    );
    assert!(
        report["elapsed_s"].as_f64().unwrap_or(99.0) < 3.0,
        "{report}"
    );
    let load = &report["load"];
    assert!(load["unsent"].as_u64().unwrap_or(0) > 0, "{load}");
    assert_eq!(report["client"]["may_be_the_limit"], true, "{report}");
    let why = report["client"]["why"].to_string();
    assert!(why.contains("of the 100000 calls/s asked"), "{why}");
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
fn serve_drains_on_sigterm() {
    let mut pod = Backend::start("127.0.0.91", "drain-1");
    pod.process.terminate();
    let status = pod
        .process
        .wait_for_exit(Duration::from_secs(10))
        .expect("serve exits after SIGTERM");
    assert!(status.success(), "{status:?}");
}
