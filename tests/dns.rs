//! The DNS resolver against a real DNS server (dnsmasq on loopback).
//!
//! Every target names the test's own dnsmasq (`dns://127.0.0.1:port/...`):
//! these tests never ask the machine's configured DNS servers. Real time,
//! because the answers come over a real socket; every wait is bounded.

mod support {
    pub mod dnsmasq;
}

use std::time::Duration;

use grpclb::resolve::{self, Endpoint, Resolution, ResolveError, ResolveOptions, Update};
use grpclb::target::Target;
use support::dnsmasq::{Dnsmasq, TTL};

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
    let dns = Dnsmasq::start(&[("127.0.0.11", "echo.test")]);
    let target = format!("dns://{}/nope.test:50051", dns.server());
    let mut resolution = resolve(&target, Duration::from_secs(60))
        .await
        .expect("resolves to nothing");
    assert!(resolution.initial.is_empty());
    match tokio::time::timeout(WAIT, resolution.updates.recv()).await {
        Ok(Some(Update::Notice(notice))) => {
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
