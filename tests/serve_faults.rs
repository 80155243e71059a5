//! `grpclb serve`'s fault and lifecycle knobs, each against a real `grpclb
//! serve` process: a slow pod (`--delay`, `--jitter`), a flaky one
//! (`--error-rate`, `--error-code`), a failing one (`--fail-with`), one
//! that breaks mid-run (`--fail-after`), connection recycling
//! (`--max-connection-age`, `--max-connection-age-grace`) and the drain on
//! SIGTERM.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use grpclb::proto::EchoRequest;
use grpclb::proto::echo_client::EchoClient;
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::{Backend, PYTHON, code, json, peer, run_bounded, run_grpclb};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

async fn channel(pod: &Backend) -> Channel {
    Endpoint::from_shared(format!("http://{}", pod.address))
        .expect("uri")
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("connect")
}

fn echo() -> EchoRequest {
    EchoRequest {
        payload: b"ping".to_vec(),
    }
}

/// Times `calls` sequential Health/Check calls.
async fn timed_health_checks(channel: &Channel, calls: usize) -> Vec<Duration> {
    let mut client = HealthClient::new(channel.clone());
    let mut times = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        client
            .check(HealthCheckRequest::default())
            .await
            .expect("Health/Check");
        times.push(started.elapsed());
    }
    times
}

#[tokio::test]
async fn delay_holds_every_echo_and_health_call_at_least_that_long() {
    let pod = Backend::start_with("127.0.3.1", "slow-1", &["--delay", "5ms"]);
    let channel = channel(&pod).await;
    let health = timed_health_checks(&channel, 40).await;
    let mut echo_client = EchoClient::new(channel);
    let mut echo_times = Vec::new();
    for _ in 0..40 {
        let started = Instant::now();
        echo_client.echo(echo()).await.expect("Echo");
        echo_times.push(started.elapsed());
    }
    let fastest = health.iter().chain(&echo_times).min().copied();
    assert!(
        fastest >= Some(Duration::from_millis(5)),
        "a call came back in {fastest:?}, under --delay 5ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jitter_spreads_the_delays_on_both_sides_of_the_delay() {
    // Wide enough that the jitter, not a loaded machine's few milliseconds of
    // overhead, shapes the times; 100 calls at once so the test takes 0.3 s.
    let pod = Backend::start_with(
        "127.0.3.2",
        "jittery-1",
        &["--delay", "200ms", "--jitter", "100ms"],
    );
    let channel = channel(&pod).await;
    let calls: Vec<_> = (0..100)
        .map(|_| {
            let mut client = HealthClient::new(channel.clone());
            tokio::spawn(async move {
                let started = Instant::now();
                client
                    .check(HealthCheckRequest::default())
                    .await
                    .map(|_| started.elapsed())
            })
        })
        .collect();
    let mut times = Vec::new();
    for call in calls {
        times.push(call.await.expect("task").expect("Health/Check"));
    }
    times.sort();
    assert!(
        times[0] >= Duration::from_millis(100),
        "a call came back in {:?}, under --delay - --jitter (100ms)",
        times[0]
    );
    // Delays are uniform over 100..300 ms, so the 10th and 90th percentile
    // calls are ~160 ms apart. Without jitter, 100 calls sent at once come
    // back within the few tens of ms the server takes to start them all.
    let spread = times[89] - times[9];
    assert!(
        spread >= Duration::from_millis(100),
        "p10..p90 of the times is only {spread:?}: the delays do not spread ±100ms ({times:?})"
    );
}

#[test]
fn error_rate_fails_that_fraction_of_calls_with_the_chosen_code() {
    let pod = Backend::start_with(
        "127.0.3.3",
        "flaky-1",
        &["--error-rate", "0.05", "--error-code", "RESOURCE_EXHAUSTED"],
    );
    let out = run_grpclb(
        &[
            "bench",
            &format!("ipv4:{}", pod.address),
            "-n",
            "4000",
            "-c",
            "8",
            "-o",
            "json",
            "-q",
        ],
        Duration::from_secs(90),
    );
    let report = json(&out);
    support::assert_accounted(&report);
    let errors = report["errors"].as_u64().unwrap_or(0);
    // Binomial(4000, 0.05): 200 ± 14 (one sd); 120..280 is beyond 5 sd.
    assert!(
        (120..=280).contains(&errors),
        "{errors} of 4000 calls failed at --error-rate 0.05"
    );
    let codes = &report["endpoints"][0]["error_codes"];
    assert_eq!(
        codes,
        &serde_json::json!({ "RESOURCE_EXHAUSTED": errors }),
        "{report}"
    );
}

#[tokio::test]
async fn fail_with_fails_every_call_with_its_code_and_still_names_the_pod() {
    let pod = Backend::start_with(
        "127.0.3.4",
        "failing-1",
        &["--fail-with", "permission_denied"],
    );
    let channel = channel(&pod).await;
    let status = EchoClient::new(channel.clone())
        .echo(echo())
        .await
        .expect_err("--fail-with fails Echo");
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("--fail-with"), "{status:?}");
    assert_eq!(
        status
            .metadata()
            .get("hostname")
            .and_then(|v| v.to_str().ok()),
        Some("failing-1"),
        "a failing reply still names its server"
    );
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .expect_err("--fail-with fails Health/Check");
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");

    let out = run_grpclb(
        &[
            "bench",
            &format!("ipv4:{}", pod.address),
            "-n",
            "200",
            "-o",
            "json",
            "-q",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(
        code(&out),
        3,
        "no call succeeded: the run could not do its job"
    );
    let report = json(&out);
    let row = &report["endpoints"][0];
    assert_eq!(row["name"], "failing-1", "{row}");
    assert_eq!(
        row["error_codes"],
        serde_json::json!({ "PERMISSION_DENIED": 200 }),
        "{row}"
    );
}

#[tokio::test]
async fn fail_after_serves_exactly_n_calls_then_fails_every_one() {
    let pod = Backend::start_with(
        "127.0.3.5",
        "breaking-1",
        &["--fail-after", "20", "--error-code", "INTERNAL"],
    );
    let mut client = EchoClient::new(channel(&pod).await);
    let mut outcomes = Vec::new();
    for _ in 0..30 {
        outcomes.push(client.echo(echo()).await.map_err(|s| s.code()).err());
    }
    let expected: Vec<Option<tonic::Code>> = std::iter::repeat_n(None, 20)
        .chain(std::iter::repeat_n(Some(tonic::Code::Internal), 10))
        .collect();
    assert_eq!(outcomes, expected);
}

#[test]
fn bad_fault_flags_are_usage_errors_that_say_what_to_write() {
    let cases: &[(&[&str], &str)] = &[
        (&["--delay", "soon"], "not a duration"),
        (
            &["--delay", "5ms", "--jitter", "10ms"],
            "larger than --delay",
        ),
        (&["--jitter", "2ms"], "--delay"),
        (&["--error-rate", "1.5"], "between 0 and 1"),
        (&["--error-rate", "NaN"], "between 0 and 1"),
        (
            &["--error-rate", "0.1", "--error-code", "BROKEN"],
            "UNAVAILABLE",
        ),
        (&["--fail-with", "OK"], "not a failure"),
        (
            &["--error-code", "INTERNAL"],
            "--error-code sets the status",
        ),
        (
            &["--fail-with", "INTERNAL", "--error-rate", "0.1"],
            "cannot be used with",
        ),
        (&["--fail-after=lots"], "--fail-after"),
        (&["--max-connection-age", "0s"], "longer than 0"),
        (
            &["--max-connection-age-grace", "5s"],
            "--max-connection-age",
        ),
    ];
    for (flags, fragment) in cases {
        let mut args = vec!["serve", "--listen", "127.0.3.99:0"];
        args.extend_from_slice(flags);
        let out = run_grpclb(&args, Duration::from_secs(20));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), 2, "{flags:?}: {stderr}");
        assert!(
            stderr.contains(fragment),
            "{flags:?}: {stderr:?} lacks {fragment:?}"
        );
    }
}

/// Opens a bare HTTP/2 connection and returns how long the server kept it.
async fn connection_lifetime(address: std::net::SocketAddr) -> Duration {
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let started = Instant::now();
    let (_send, connection) = hyper::client::conn::http2::handshake::<
        _,
        _,
        http_body_util::Empty<hyper::body::Bytes>,
    >(TokioExecutor::new(), TokioIo::new(stream))
    .await
    .expect("HTTP/2 handshake");
    tokio::time::timeout(Duration::from_secs(10), connection)
        .await
        .expect("the server closes the connection within 10 s")
        .expect("closed gracefully (GOAWAY), not reset");
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connection_age_closes_each_connection_at_its_own_age_within_ten_percent() {
    let pod = Backend::start_with("127.0.3.6", "aging-1", &["--max-connection-age", "1s"]);
    let lifetimes: Vec<Duration> =
        futures::future::join_all((0..8).map(|_| tokio::spawn(connection_lifetime(pod.address))))
            .await
            .into_iter()
            .map(|r| r.expect("task"))
            .collect();
    for lifetime in &lifetimes {
        // 1 s ± 10%, plus the scheduling slack of a loaded machine.
        assert!(
            (Duration::from_millis(880)..=Duration::from_millis(1_500)).contains(lifetime),
            "a connection lived {lifetime:?} under --max-connection-age 1s: {lifetimes:?}"
        );
    }
    let (min, max) = (lifetimes.iter().min(), lifetimes.iter().max());
    let spread = max.zip(min).map(|(a, b)| *a - *b).unwrap_or_default();
    // Eight draws from 0.9..1.1 s spread over ~155 ms; all within 15 ms of
    // each other has a chance below 1e-6.
    assert!(
        spread >= Duration::from_millis(15),
        "every connection closed at the same age: no jitter ({lifetimes:?})"
    );
}

#[tokio::test]
async fn a_call_running_past_the_age_finishes_within_the_grace() {
    let pod = Backend::start_with(
        "127.0.3.7",
        "graceful-1",
        &[
            "--delay",
            "1500ms",
            "--max-connection-age",
            "300ms",
            "--max-connection-age-grace",
            "5s",
        ],
    );
    let started = Instant::now();
    let reply = EchoClient::new(channel(&pod).await).echo(echo()).await;
    assert!(
        reply.is_ok(),
        "the call outlived the connection's age and still finished: {reply:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(1_500));
}

#[tokio::test]
async fn a_call_still_running_after_the_grace_is_cut_off_with_the_connection() {
    let pod = Backend::start_with(
        "127.0.3.8",
        "impatient-1",
        &[
            "--delay",
            "4s",
            "--max-connection-age",
            "300ms",
            "--max-connection-age-grace",
            "500ms",
        ],
    );
    let started = Instant::now();
    let status = EchoClient::new(channel(&pod).await)
        .echo(echo())
        .await
        .expect_err("cut off by the grace");
    let elapsed = started.elapsed();
    // Age 270..330 ms, then 500 ms of grace: closed near 0.8 s, long before 4 s.
    assert!(
        (Duration::from_millis(700)..Duration::from_millis(2_500)).contains(&elapsed),
        "cut after {elapsed:?}: {status:?}"
    );
}

/// The client ports of the connections established to `port` right now.
fn client_ports(port: u16) -> Vec<String> {
    let out = Command::new("ss")
        .args([
            "-Htn",
            "state",
            "established",
            &format!("( sport = :{port} )"),
        ])
        .output()
        .expect("run ss");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3).map(str::to_string))
        .collect()
}

#[test]
fn c_core_client_loses_no_call_to_connection_age_goaways() {
    if !support::require_python_grpc() || !support::require_tool("ss", "iproute2") {
        return;
    }
    let pod = Backend::start_with(
        "127.0.3.9",
        "recycling-1",
        &["--max-connection-age", "300ms"],
    );
    let port = pod.address.port();
    let client = std::thread::spawn(move || {
        run_bounded(
            Command::new(PYTHON).args([
                &peer("steady_client.py"),
                &pod.address.to_string(),
                "3",
                "8",
            ]),
            Duration::from_secs(60),
        )
    });
    // Which connections carried the calls, sampled through the run.
    let mut seen = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !client.is_finished() && Instant::now() < deadline {
        seen.extend(client_ports(port));
        std::thread::sleep(Duration::from_millis(40));
    }
    let out = client.join().expect("client thread");
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let result = json(&out);
    assert_eq!(result["errors"], serde_json::json!({}), "{result}");
    assert!(result["ok"].as_u64() > Some(100), "{result}");
    // 3 s of calls over connections that live 0.3 s: about ten of them.
    assert!(
        seen.len() >= 4,
        "the client kept {} connection(s) over 3 s at --max-connection-age 300ms: {seen:?}",
        seen.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_accepting_and_finishes_every_call_in_flight() {
    let mut pod = Backend::start_with("127.0.3.10", "draining-1", &["--delay", "1s"]);
    let channel = channel(&pod).await;
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let mut client = EchoClient::new(channel.clone());
            tokio::spawn(async move { client.echo(echo()).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    pod.process.terminate();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = tokio::net::TcpStream::connect(pod.address).await;
    assert!(
        refused.is_err(),
        "a draining server takes no new connection"
    );
    for call in calls {
        let reply = call.await.expect("task");
        assert!(
            reply.is_ok(),
            "a call in flight at SIGTERM failed: {reply:?}"
        );
    }
    let status =
        tokio::task::spawn_blocking(move || pod.process.wait_for_exit(Duration::from_secs(10)))
            .await
            .expect("task")
            .expect("serve exits once drained");
    assert!(status.success(), "{status:?}");
}

#[test]
fn c_core_client_loses_no_call_when_a_pod_drains() {
    if !support::require_python_grpc() {
        return;
    }
    let mut pods = support::backends_with("drain", "127.0.3", 11, 3, &["--delay", "20ms"]);
    let target = support::ipv4_target(&pods);
    let client = std::thread::spawn(move || {
        run_bounded(
            Command::new(PYTHON).args([&peer("steady_client.py"), &target, "3", "16"]),
            Duration::from_secs(60),
        )
    });
    std::thread::sleep(Duration::from_millis(1_500));
    pods[1].process.terminate();
    let out = client.join().expect("client thread");
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let result = json(&out);
    assert_eq!(result["errors"], serde_json::json!({}), "{result}");
    let drained = result["servers"]["drain-2"].as_u64().unwrap_or(0);
    assert!(
        drained > 0,
        "the drained pod served before SIGTERM: {result}"
    );
    assert!(
        pods[1]
            .process
            .wait_for_exit(Duration::from_secs(10))
            .is_some(),
        "the drained pod exited"
    );
}
