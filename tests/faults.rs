//! Faults survived and reported, against real `grpclb serve` processes
//! that the tests kill, drain and restart: a dead pod's share spreads over
//! the ready ones, a graceful drain costs no call, a SIGKILL costs at most
//! the calls in flight, a restarted pod gets calls again, dead and failing
//! pods fail the gate by name, Ctrl-C prints what was measured, and a run
//! whose every endpoint is gone ends promptly with exit 3.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Backend, assert_accounted, code, grpclb_bin, json};

/// A loopback address nothing listens on: connecting is refused.
fn refused_address(ip: &str) -> SocketAddr {
    let listener = TcpListener::bind(format!("{ip}:0")).expect("bind a loopback port");
    listener.local_addr().expect("bound address")
}

fn target(addresses: &[SocketAddr]) -> String {
    let list: Vec<String> = addresses.iter().map(|a| a.to_string()).collect();
    format!("ipv4:{}", list.join(","))
}

/// A bench running in the background while the test injects faults.
struct BenchRun {
    child: Option<Child>,
    started: Instant,
}

impl BenchRun {
    fn start(args: &[&str]) -> BenchRun {
        let child = Command::new(grpclb_bin())
            .arg("bench")
            .args(args)
            .args(["-o", "json", "-q"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn grpclb bench");
        BenchRun {
            child: Some(child),
            started: Instant::now(),
        }
    }

    fn signal(&self, name: &str) {
        if let Some(child) = &self.child {
            support::signal(child, name);
        }
    }

    /// Waits for the bench to end (killed after `limit`).
    fn finish(mut self, limit: Duration) -> (Output, Duration) {
        let child = self.child.take().expect("running");
        let id = child.id();
        let watchdog = thread::spawn(move || {
            thread::sleep(limit);
            let _ = Command::new("kill")
                .args(["-KILL", &id.to_string()])
                .status();
        });
        let output = child.wait_with_output().expect("wait for grpclb bench");
        drop(watchdog);
        (output, self.started.elapsed())
    }
}

impl Drop for BenchRun {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn row<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["endpoints"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == name))
        .unwrap_or_else(|| panic!("no row {name} in {report}"))
}

fn n(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn dead_pod_share_spreads_evenly_over_the_ready_ones() {
    let pods = [
        Backend::start_on("127.0.7.11:0", "spread-a", &[]),
        Backend::start_on("127.0.7.12:0", "spread-b", &[]),
        Backend::start_on("127.0.7.13:0", "spread-c", &[]),
    ];
    let dead = refused_address("127.0.7.10");
    let mut addresses = vec![dead];
    addresses.extend(pods.iter().map(|p| p.address));
    let target = target(&addresses);
    let concurrency = 4;
    let run = BenchRun::start(&[&target, "-n", "6000", "-c", "4", "--lb", "round_robin"]);
    let (output, _) = run.finish(Duration::from_secs(60));
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report = json(&output);
    assert_accounted(&report);
    let counts: Vec<u64> = pods
        .iter()
        .map(|p| n(row(&report, &p.name), "requests"))
        .collect();
    // round_robin over the three ready pods: exact up to the calls in flight.
    let (low, high) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
    assert!(
        high - low <= 2 * (concurrency + 1),
        "uneven over the ready pods: {counts:?}"
    );
    let dead_row = report["endpoints"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["address"] == dead.to_string()))
        .expect("the dead endpoint has a row");
    assert_eq!(
        n(dead_row, "requests"),
        0,
        "probing is not calling: {dead_row}"
    );
}

#[test]
fn dead_pod_fails_assert_even_even_in_a_short_run() {
    let pods = [
        Backend::start_on("127.0.7.21:0", "short-a", &[]),
        Backend::start_on("127.0.7.22:0", "short-b", &[]),
    ];
    let dead = refused_address("127.0.7.20");
    let target = target(&[pods[0].address, pods[1].address, dead]);
    let run = BenchRun::start(&[&target, "-n", "300", "--assert-even"]);
    let (output, _) = run.finish(Duration::from_secs(60));
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    let report = json(&output);
    assert_accounted(&report);
    let failures = report["verdict"]["failures"].to_string();
    assert!(
        failures.contains(&dead.to_string())
            && failures.contains("unreachable for the whole run")
            && failures.contains("connection refused"),
        "names the dead pod and why: {failures}"
    );
    assert!(
        !failures.contains("short-a") && !failures.contains("short-b"),
        "healthy pods are not blamed: {failures}"
    );
}

#[test]
fn failing_pod_fails_assert_even_with_its_codes() {
    let pods = [
        Backend::start_on("127.0.7.31:0", "fail-a", &[]),
        Backend::start_on("127.0.7.32:0", "fail-b", &[]),
        Backend::start_on("127.0.7.33:0", "fail-c", &["--fail-with", "UNAVAILABLE"]),
    ];
    let addresses: Vec<SocketAddr> = pods.iter().map(|p| p.address).collect();
    let run = BenchRun::start(&[&target(&addresses), "-n", "3000", "--assert-even"]);
    let (output, _) = run.finish(Duration::from_secs(60));
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    let report = json(&output);
    assert_accounted(&report);
    let failing = row(&report, "fail-c");
    assert_eq!(n(failing, "ok"), 0, "{failing}");
    assert!(
        failing["error_codes"]["UNAVAILABLE"].as_u64().unwrap_or(0) > 0,
        "{failing}"
    );
    let failures = report["verdict"]["failures"].to_string();
    assert!(
        failures.contains("fail-c") && failures.contains("UNAVAILABLE"),
        "names the failing pod with its codes: {failures}"
    );
}

#[test]
fn sigkill_costs_only_calls_in_flight() {
    let mut pods = [
        Backend::start_on("127.0.7.41:0", "kill-a", &[]),
        Backend::start_on("127.0.7.42:0", "kill-b", &[]),
        Backend::start_on("127.0.7.43:0", "kill-c", &[]),
    ];
    let addresses: Vec<SocketAddr> = pods.iter().map(|p| p.address).collect();
    let run = BenchRun::start(&[&target(&addresses), "-z", "4s", "-c", "8"]);
    thread::sleep(Duration::from_millis(1500));
    pods[2].process.kill();
    let (output, took) = run.finish(Duration::from_secs(60));
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        took < Duration::from_secs(20),
        "the run completes: {took:?}"
    );
    let report = json(&output);
    assert_accounted(&report);
    let killed = row(&report, "kill-c");
    assert!(
        n(killed, "errors") <= 8,
        "at most the calls in flight fail: {killed}"
    );
    for name in ["kill-a", "kill-b"] {
        assert_eq!(n(row(&report, name), "errors"), 0, "{report}");
    }
    assert_eq!(
        n(&report, "errors"),
        n(killed, "errors"),
        "errors only on the killed pod: {report}"
    );
}

#[test]
fn graceful_drain_costs_no_call() {
    let mut pods = [
        Backend::start_on("127.0.7.51:0", "drain-a", &["--delay", "5ms"]),
        Backend::start_on("127.0.7.52:0", "drain-b", &["--delay", "5ms"]),
        Backend::start_on("127.0.7.53:0", "drain-c", &["--delay", "5ms"]),
    ];
    let addresses: Vec<SocketAddr> = pods.iter().map(|p| p.address).collect();
    let run = BenchRun::start(&[&target(&addresses), "-z", "4s", "-c", "16"]);
    // Calls are in flight on every pod (16 in flight, 5 ms each) when the
    // drain starts.
    thread::sleep(Duration::from_millis(1500));
    pods[1].process.terminate();
    let drained = pods[1].process.wait_for_exit(Duration::from_secs(15));
    assert!(
        drained.is_some_and(|s| s.success()),
        "the pod drains and exits: {drained:?}"
    );
    let (output, _) = run.finish(Duration::from_secs(60));
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report = json(&output);
    assert_accounted(&report);
    assert!(n(row(&report, "drain-b"), "ok") > 0, "{report}");
    assert_eq!(
        n(&report, "errors"),
        0,
        "a graceful drain costs no call: {report}"
    );
}

#[test]
fn restarted_pod_gets_calls_again() {
    let steady = Backend::start_on("127.0.7.61:0", "restart-a", &[]);
    let mut flaky = Backend::start_on("127.0.7.62:0", "restart-b", &[]);
    let flaky_address = flaky.address.to_string();
    let run = BenchRun::start(&[
        &target(&[steady.address, flaky.address]),
        "-z",
        "8s",
        "-c",
        "4",
    ]);
    thread::sleep(Duration::from_millis(1000));
    flaky.process.kill();
    thread::sleep(Duration::from_millis(500));
    let _restarted = Backend::start_on(&flaky_address, "restart-b", &[]);
    let (output, _) = run.finish(Duration::from_secs(60));
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report = json(&output);
    assert_accounted(&report);
    let ok = n(row(&report, "restart-b"), "ok") as f64;
    let total = n(&report, "ok") as f64;
    // Alive for about 1 s, then again from its reconnect (gRPC backoff:
    // about 1 s after the loss) to the end at 8 s.
    assert!(
        ok / total > 0.3,
        "the restarted pod is reconnected and called: {ok} of {total}"
    );
}

#[test]
fn ctrl_c_prints_the_partial_report() {
    let pods = [
        Backend::start_on("127.0.7.71:0", "cancel-a", &[]),
        Backend::start_on("127.0.7.72:0", "cancel-b", &[]),
    ];
    let target = target(&[pods[0].address, pods[1].address]);
    for (signal, expected) in [("INT", 130), ("TERM", 143)] {
        let run = BenchRun::start(&[&target, "-z", "60s", "--assert-even"]);
        thread::sleep(Duration::from_millis(2000));
        run.signal(signal);
        let (output, took) = run.finish(Duration::from_secs(30));
        assert_eq!(code(&output), expected, "SIG{signal}: {}", stderr(&output));
        assert!(
            took < Duration::from_secs(15),
            "SIG{signal} stops the run: {took:?}"
        );
        let report = json(&output);
        assert_accounted(&report);
        assert!(n(&report, "requests") > 0, "{report}");
        assert_eq!(report["interrupted"], true, "{report}");
        assert!(
            report["verdict"]["checked"]
                .as_str()
                .is_some_and(|c| c.contains("interrupted")),
            "{report}"
        );
    }
}

#[test]
fn every_endpoint_gone_exits_3_promptly() {
    let mut pods = [
        Backend::start_on("127.0.7.81:0", "gone-a", &[]),
        Backend::start_on("127.0.7.82:0", "gone-b", &[]),
    ];
    let target = target(&[pods[0].address, pods[1].address]);
    let run = BenchRun::start(&[&target, "-z", "60s", "--timeout", "2s"]);
    thread::sleep(Duration::from_millis(1500));
    for pod in &mut pods {
        pod.process.kill();
    }
    let (output, took) = run.finish(Duration::from_secs(60));
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    assert!(
        took < Duration::from_secs(15),
        "ends promptly, not at 60 s: {took:?}"
    );
    let report = json(&output);
    assert_accounted(&report);
    assert!(
        stderr(&output).contains("reachable since"),
        "says since when nothing was reachable: {}",
        stderr(&output)
    );
}
