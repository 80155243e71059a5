//! The DNS resolver against a real DNS server (dnsmasq on loopback).
//!
//! Every target names the test's own dnsmasq (`dns://127.0.0.1:port/...`):
//! these tests never ask the machine's configured DNS servers. Real time,
//! because the answers come over a real socket; every wait is bounded.

#[path = "support/dnsmasq.rs"]
mod dnsmasq;
mod support;

use std::time::Duration;

use dnsmasq::{Dnsmasq, TTL};
use grpclb::resolve::{self, Endpoint, Resolution, ResolveError, ResolveOptions, Update};
use grpclb::target::Target;

const WAIT: Duration = Duration::from_secs(15);

async fn resolve(target: &str, refresh: Duration) -> Result<Resolution, ResolveError> {
    let target = Target::parse(target).expect("a valid target");
    let options = ResolveOptions {
        dns_refresh: refresh,
        ..ResolveOptions::default()
    };
    tokio::time::timeout(WAIT, resolve::start(&target, &options))
        .await
        .expect("the resolver answers in time")
}

fn addresses(set: &[Endpoint]) -> Vec<String> {
    set.iter().map(|e| e.address.clone()).collect()
}

#[tokio::test]
async fn resolves_a_and_aaaa_records_with_their_ttl() {
    if !dnsmasq::available() {
        return;
    }
    let dns = Dnsmasq::start(&[
        ("127.0.0.12", "echo.test"),
        ("127.0.0.11", "echo.test"),
        ("fd00::1", "echo.test"),
        ("127.0.0.99", "other.test"),
    ]);
    let target = format!("dns://{}/echo.test:50051", dns.server());
    let resolution = resolve(&target, Duration::from_secs(5))
        .await
        .expect("resolves");
    assert_eq!(resolution.source, "dns");
    assert_eq!(
        addresses(&resolution.initial),
        ["127.0.0.11:50051", "127.0.0.12:50051", "[fd00::1]:50051"],
        "dnsmasq log:\n{}",
        dns.log()
    );
    let v4 = &resolution.initial[0];
    assert_eq!(v4.origin, "A echo.test");
    assert_eq!(v4.ttl_s, Some(i64::from(TTL)));
    assert!(v4.ready && v4.serving && !v4.terminating);
    assert_eq!(resolution.initial[2].origin, "AAAA echo.test");
}

#[tokio::test]
async fn refresh_picks_up_changed_records() {
    if !dnsmasq::available() {
        return;
    }
    let dns = Dnsmasq::start(&[("127.0.0.11", "echo.test"), ("127.0.0.12", "echo.test")]);
    let target = format!("dns://{}/echo.test:50051", dns.server());
    let mut resolution = resolve(&target, Duration::from_millis(200))
        .await
        .expect("resolves");
    assert_eq!(
        addresses(&resolution.initial),
        ["127.0.0.11:50051", "127.0.0.12:50051"]
    );

    // A pod goes away and two new ones arrive.
    dns.set_records(&[
        ("127.0.0.12", "echo.test"),
        ("127.0.0.13", "echo.test"),
        ("127.0.0.14", "echo.test"),
    ]);
    let want = ["127.0.0.12:50051", "127.0.0.13:50051", "127.0.0.14:50051"];
    let mut seen = Vec::new();
    for _ in 0..20 {
        match tokio::time::timeout(WAIT, resolution.updates.recv()).await {
            Ok(Some(Update::Reset(set))) if addresses(&set) == want => return,
            Ok(Some(update)) => seen.push(update),
            Ok(None) => panic!("the resolver stopped; updates: {seen:?}"),
            Err(_) => panic!(
                "no refreshed set within {WAIT:?}; updates: {seen:?}; log:\n{}",
                dns.log()
            ),
        }
    }
    panic!("20 updates without the new records: {seen:?}");
}

#[tokio::test]
async fn unknown_name_is_an_empty_set_with_the_reason() {
    if !dnsmasq::available() {
        return;
    }
    let dns = Dnsmasq::start(&[("127.0.0.11", "echo.test")]);
    let target = format!("dns://{}/nope.test:50051", dns.server());
    let mut resolution = resolve(&target, Duration::from_secs(60))
        .await
        .expect("resolves to nothing");
    assert!(resolution.initial.is_empty());
    match tokio::time::timeout(WAIT, resolution.updates.recv()).await {
        Ok(Some(Update::Notice(notice))) => {
            let notice = notice.to_string();
            assert!(
                notice.contains("nope.test does not exist (NXDOMAIN)"),
                "{notice}"
            );
            assert!(notice.contains(&dns.server()), "names the server: {notice}");
        }
        other => panic!("expected the reason as a notice, got {other:?}"),
    }
}

#[tokio::test]
async fn unreachable_server_fails_with_the_server_named() {
    if !dnsmasq::available() {
        return;
    }
    // Nothing listens on this port once dnsmasq is gone.
    let server = {
        let dns = Dnsmasq::start(&[("127.0.0.11", "echo.test")]);
        dns.server()
    };
    let target = format!("dns://{server}/echo.test:50051");
    match resolve(&target, Duration::from_secs(5)).await {
        Err(ResolveError::Failed(message)) => {
            assert!(message.contains(&server), "{message}");
            assert!(message.contains("echo.test"), "{message}");
        }
        Err(other) => panic!("expected a resolution failure, got {other:?}"),
        Ok(resolution) => panic!(
            "resolved {:?} with no server",
            addresses(&resolution.initial)
        ),
    }
}

/// Runs the `grpclb` binary off the async runtime, killed after `limit`.
async fn grpclb(args: Vec<String>, limit: Duration) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        support::run_grpclb(&args, limit)
    })
    .await
    .expect("the grpclb run finishes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_command_shows_ttl_and_watches_record_changes() {
    if !dnsmasq::available() {
        return;
    }
    let dns = Dnsmasq::start(&[("127.0.0.11", "echo.test")]);
    let target = format!("dns://{}/echo.test:50051", dns.server());
    let output = grpclb(vec!["resolve".into(), target.clone()], WAIT).await;
    assert_eq!(
        support::code(&output),
        0,
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("(dns): 1 endpoint, 1 ready"), "{stdout}");
    assert!(
        stdout.contains("A echo.test") && stdout.contains(&format!("{TTL}s")),
        "{stdout}"
    );

    let watching = tokio::spawn(grpclb(
        [
            "resolve",
            &target,
            "--watch",
            "--duration",
            "3s",
            "--dns-refresh",
            "200ms",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect(),
        WAIT,
    ));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    dns.set_records(&[("127.0.0.12", "echo.test")]);
    let output = watching.await.expect("the watch finishes");
    assert_eq!(
        support::code(&output),
        0,
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let added = stdout
        .lines()
        .find(|l| l.contains("added") && l.contains("127.0.0.12:50051"));
    let removed = stdout
        .lines()
        .find(|l| l.contains("removed") && l.contains("127.0.0.11:50051"));
    assert!(
        added.is_some() && removed.is_some(),
        "{stdout}\nlog:\n{}",
        dns.log()
    );
    assert!(stdout.contains("1 added, 1 removed, 0 changed"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_finds_a_pod_added_mid_run_through_dns_refresh() {
    if !dnsmasq::available() {
        return;
    }
    let port = support::in_process_pods("127.0.2", 3, |i| format!("echo-{}", i + 1)).await;
    let dns = Dnsmasq::start(&[
        ("127.0.2.1", "echo-headless.test"),
        ("127.0.2.2", "echo-headless.test"),
    ]);
    let target = format!("dns://{}/echo-headless.test:{port}", dns.server());
    let bench = tokio::spawn(grpclb(
        [
            "bench",
            &target,
            "--mode",
            "headless",
            "--duration",
            "4s",
            "--dns-refresh",
            "200ms",
            "-c",
            "4",
            "--rate",
            "300",
            "-o",
            "json",
            "-q",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect(),
        Duration::from_secs(60),
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    dns.set_records(&[
        ("127.0.2.1", "echo-headless.test"),
        ("127.0.2.2", "echo-headless.test"),
        ("127.0.2.3", "echo-headless.test"),
    ]);
    let output = bench.await.expect("the bench finishes");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(support::code(&output), 0, "{stderr}");
    let report = support::json(&output);
    support::assert_accounted(&report);
    let added: Vec<&str> = report["changes"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["added"].as_array().into_iter().flatten())
        .filter_map(|a| a.as_str())
        .collect();
    let new_pod = format!("127.0.2.3:{port}");
    assert!(
        added.contains(&new_pod.as_str()),
        "the refresh found the new pod: {report}"
    );
    let served = report["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["address"] == new_pod.as_str())
        .and_then(|e| e["ok"].as_u64())
        .unwrap_or(0);
    assert!(served > 0, "the new pod got calls: {report}");
}
