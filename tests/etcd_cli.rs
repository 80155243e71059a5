//! `grpclb register`, `grpclb serve --register` and `grpclb bench etcd://…`
//! as processes, against a real etcd (Debian's `etcd-server`) on loopback.

#[path = "support/etcd.rs"]
mod etcd_support;
mod support;

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use etcd_client::{Client, GetOptions};
use etcd_support::EtcdServer;
use support::{Process, assert_accounted, code, grpclb_bin, json, run_grpclb, spawn_until_line};

/// How long a process may take to print the line a test waits for.
const START_LIMIT: Duration = Duration::from_secs(20);

/// How long one bench may run at most.
const BENCH_LIMIT: Duration = Duration::from_secs(60);

/// The keys under `/grpclb/echo/` right now.
fn keys(server: &EtcdServer) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut client = Client::connect([server.endpoint()], None)
            .await
            .expect("connect to etcd");
        let response = tokio::time::timeout(
            Duration::from_secs(5),
            client.get("/grpclb/echo/", Some(GetOptions::new().with_prefix())),
        )
        .await
        .expect("etcd answers in time")
        .expect("get");
        response
            .kvs()
            .iter()
            .map(|kv| String::from_utf8_lossy(kv.key()).into_owned())
            .collect()
    })
}

/// Polls until `done` holds for the keys, or panics after `limit`.
fn wait_for_keys(
    server: &EtcdServer,
    what: &str,
    limit: Duration,
    done: impl Fn(&[String]) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let now = keys(server);
        if done(&now) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{what} did not happen within {limit:?}; keys: {now:?}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// A `grpclb serve --register` backend, with the address it registered.
struct Registered {
    address: String,
    process: Process,
}

/// Starts `grpclb serve --listen IP:0 --name NAME --register TARGET EXTRA…`
/// and waits until it says it registered.
fn serve_registered(server: &EtcdServer, ip: &str, name: &str, extra: &[&str]) -> Registered {
    let mut command = Command::new(grpclb_bin());
    command
        .args(["serve", "--listen", &format!("{ip}:0"), "--name", name])
        .args(["--register", &server.target("/grpclb/echo"), "--ttl", "5"])
        .args(extra);
    let (process, line) = spawn_until_line(command, "registered /grpclb/echo/", START_LIMIT);
    let address = line
        .split("registered /grpclb/echo/")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("cannot read the address from {line:?}"))
        .to_string();
    Registered { address, process }
}

fn bench_args(target: &str) -> Vec<String> {
    [
        "bench", target, "--mode", "headless", "-c", "4", "-o", "json", "-q",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn run(args: &[String], limit: Duration) -> std::process::Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_grpclb(&args, limit)
}

fn requests_of(report: &serde_json::Value, address: &str) -> u64 {
    report["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .find(|e| e["address"] == address)
        .and_then(|e| e["requests"].as_u64())
        .unwrap_or(0)
}

fn changed(report: &serde_json::Value, field: &str, address: &str) -> bool {
    report["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .any(|c| {
            c[field]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == address))
        })
}

/// One Echo call to `address` (`http://ip:port`) on its own runtime.
fn echo_once(address: String) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let mut client = grpclb::proto::echo_client::EchoClient::connect(address)
            .await
            .map_err(|e| e.to_string())?;
        let request = grpclb::proto::EchoRequest { payload: vec![] };
        client
            .echo(request)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
}

/// `grpclb register` of 127.0.0.2:9000 under /grpclb/echo with a TTL.
fn register_command(server: &EtcdServer, ttl: &str) -> Command {
    let mut command = Command::new(grpclb_bin());
    command.args([
        "register",
        &server.target("/grpclb/echo"),
        "--address",
        "127.0.0.2:9000",
        "--ttl",
        ttl,
    ]);
    command
}

#[test]
fn register_holds_the_key_and_revokes_it_on_sigterm() {
    if !etcd_support::available() {
        return;
    }
    let server = EtcdServer::start();
    let command = register_command(&server, "30");
    let (mut process, line) = spawn_until_line(command, "registered", START_LIMIT);
    assert!(line.contains("/grpclb/echo/127.0.0.2:9000"), "{line}");
    assert_eq!(keys(&server), ["/grpclb/echo/127.0.0.2:9000"]);
    process.terminate();
    let status = process
        .wait_for_exit(Duration::from_secs(10))
        .expect("exits after SIGTERM");
    assert!(status.success(), "{status}");
    // Revoked: gone at once, long before the 30 s TTL.
    assert!(keys(&server).is_empty());
}

#[test]
fn register_killed_with_sigkill_disappears_after_its_ttl() {
    if !etcd_support::available() {
        return;
    }
    let server = EtcdServer::start();
    let command = register_command(&server, "3");
    let (mut process, _) = spawn_until_line(command, "registered", START_LIMIT);
    // Kept alive past its TTL while the process lives.
    thread::sleep(Duration::from_secs(4));
    assert_eq!(keys(&server), ["/grpclb/echo/127.0.0.2:9000"]);
    process.kill();
    assert_eq!(
        keys(&server),
        ["/grpclb/echo/127.0.0.2:9000"],
        "not revoked: SIGKILL gives no chance"
    );
    let took = wait_for_keys(
        &server,
        "the expiry of the killed registrant's key",
        Duration::from_secs(15),
        |k| k.is_empty(),
    );
    assert!(
        took <= Duration::from_secs(10),
        "expired after {took:?}, TTL is 3 s"
    );
}

#[test]
fn serve_register_revokes_before_draining() {
    if !etcd_support::available() {
        return;
    }
    let server = EtcdServer::start();
    // Every call takes 2 s, so the drain lasts at least that long after SIGTERM.
    let mut backend = serve_registered(
        &server,
        "127.0.0.41",
        "e-1",
        &["--value-format", "json", "--delay", "2s"],
    );
    assert_eq!(keys(&server), [format!("/grpclb/echo/{}", backend.address)]);
    let address = format!("http://{}", backend.address);
    let in_flight = thread::spawn(move || echo_once(address));
    thread::sleep(Duration::from_millis(700));
    backend.process.terminate();
    let took = wait_for_keys(
        &server,
        "the revocation on SIGTERM",
        Duration::from_secs(5),
        |k| k.is_empty(),
    );
    assert!(
        backend.process.child.try_wait().ok().flatten().is_none(),
        "the key went away ({took:?} after SIGTERM) while the server still drained"
    );
    let reply = in_flight.join().expect("call thread");
    assert!(
        reply.is_ok(),
        "the call in flight at SIGTERM finished: {reply:?}"
    );
    let status = backend
        .process
        .wait_for_exit(Duration::from_secs(15))
        .expect("exits after SIGTERM");
    assert!(status.success(), "{status}");
}

#[test]
fn bench_balances_evenly_over_three_registered_servers() {
    if !etcd_support::available() {
        return;
    }
    let server = EtcdServer::start();
    let backends: Vec<Registered> = (1..=3)
        .map(|i| {
            serve_registered(
                &server,
                &format!("127.0.0.{}", 50 + i),
                &format!("e-{i}"),
                &[],
            )
        })
        .collect();
    let mut args = bench_args(&server.target("/grpclb/echo"));
    args.extend(["-n", "3000", "--assert-even", "--max-errors", "0"].map(String::from));
    let out = run(&args, BENCH_LIMIT);
    assert_eq!(
        code(&out),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    assert_accounted(&report);
    assert_eq!(
        report["endpoints"].as_array().map(Vec::len),
        Some(3),
        "{report}"
    );
    for backend in &backends {
        assert_eq!(requests_of(&report, &backend.address), 1000, "{report}");
    }
}

#[test]
fn bench_follows_a_late_registrant_and_a_leaving_one() {
    if !etcd_support::available() {
        return;
    }
    let server = EtcdServer::start();
    let mut first = serve_registered(&server, "127.0.0.61", "e-1", &[]);
    let second = serve_registered(&server, "127.0.0.62", "e-2", &[]);
    let mut args = bench_args(&server.target("/grpclb/echo"));
    args.extend(["--duration", "6s", "--warmup", "0s", "--max-errors", "0"].map(String::from));
    let bench = thread::spawn(move || run(&args, BENCH_LIMIT));

    thread::sleep(Duration::from_secs(2));
    let late = serve_registered(&server, "127.0.0.63", "e-3", &[]);
    thread::sleep(Duration::from_secs(2));
    first.process.terminate();
    assert!(
        first
            .process
            .wait_for_exit(Duration::from_secs(15))
            .is_some(),
        "first backend exits"
    );

    let out = bench.join().expect("bench thread");
    assert_eq!(
        code(&out),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    assert_accounted(&report);
    assert_eq!(
        report["errors"], 0,
        "deregistering first means no failed calls: {report}"
    );
    assert!(
        requests_of(&report, &late.address) > 0,
        "the late registrant got calls: {report}"
    );
    assert!(changed(&report, "added", &late.address), "{report}");
    assert!(changed(&report, "removed", &first.address), "{report}");
    // The one that stayed all along got the most.
    let stayed = requests_of(&report, &second.address);
    assert!(stayed > requests_of(&report, &late.address), "{report}");
    assert!(stayed > requests_of(&report, &first.address), "{report}");
}

#[test]
fn late_registrant_during_warmup_still_passes_assert_even() {
    if !etcd_support::available() {
        return;
    }
    let server = EtcdServer::start();
    let _first = serve_registered(&server, "127.0.0.71", "e-1", &[]);
    let _second = serve_registered(&server, "127.0.0.72", "e-2", &[]);
    let mut args = bench_args(&server.target("/grpclb/echo"));
    args.extend(["--warmup", "3s", "--duration", "3s", "--assert-even"].map(String::from));
    let bench = thread::spawn(move || run(&args, BENCH_LIMIT));
    thread::sleep(Duration::from_secs(1));
    let late = serve_registered(&server, "127.0.0.73", "e-3", &[]);
    let out = bench.join().expect("bench thread");
    assert_eq!(
        code(&out),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    assert_eq!(
        report["endpoints"].as_array().map(Vec::len),
        Some(3),
        "{report}"
    );
    assert!(changed(&report, "added", &late.address), "{report}");
}

#[test]
fn bench_on_an_unreachable_etcd_exits_3() {
    let out = run_grpclb(
        &["bench", "etcd://127.0.0.1:1/grpclb/echo", "-n", "10", "-q"],
        BENCH_LIMIT,
    );
    assert_eq!(
        code(&out),
        3,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("127.0.0.1:1") && stderr.contains("ETCDCTL_ENDPOINTS"),
        "{stderr}"
    );
}
