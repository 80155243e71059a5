//! The etcd resolver and registration against a real etcd (Debian's
//! `etcd-server`), started on loopback for each test.

#[path = "support/etcd.rs"]
mod etcd_support;
mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{Client, CompactionOptions, PutOptions};
use etcd_support::EtcdServer;
use grpclb::etcd::{EtcdOptions, Metadata, ValueFormat};
use grpclb::register::{EventSink, RegisterSpec, Registration};
use grpclb::resolve::{self, Endpoint, Resolution, ResolveError, ResolveOptions, Update};
use grpclb::target::Target;

/// The longest any one expected update may take to arrive.
const UPDATE_TIMEOUT: Duration = Duration::from_secs(20);

async fn client(server: &EtcdServer) -> Client {
    Client::connect([server.endpoint()], None)
        .await
        .expect("test client connects to etcd")
}

async fn put(client: &mut Client, key: &str, value: &str) -> i64 {
    let response = client.put(key, value, None).await.expect("put");
    response.header().expect("header").revision()
}

fn options() -> ResolveOptions {
    ResolveOptions::default()
}

async fn resolve(
    server: &EtcdServer,
    prefix: &str,
    options: &ResolveOptions,
) -> Result<Resolution, ResolveError> {
    let target = Target::parse(&server.target(prefix)).expect("valid target");
    resolve::start(&target, options).await
}

fn addresses(set: &[Endpoint]) -> Vec<String> {
    let mut addresses: Vec<String> = set.iter().map(|e| e.address.clone()).collect();
    addresses.sort();
    addresses
}

/// What arrived on a resolution while waiting for a set.
#[derive(Default)]
struct Seen {
    notices: Vec<String>,
}

impl Seen {
    fn any(&self, needle: &str) -> bool {
        self.notices.iter().any(|n| n.contains(needle))
    }

    /// The position of the first notice containing `needle`.
    fn position(&self, needle: &str) -> Option<usize> {
        self.notices.iter().position(|n| n.contains(needle))
    }
}

/// Reads updates until a set satisfies `done`; returns that set. Notices
/// seen on the way are collected in `seen`.
async fn wait_for_set(
    resolution: &mut Resolution,
    seen: &mut Seen,
    what: &str,
    done: impl Fn(&[Endpoint]) -> bool,
) -> Vec<Endpoint> {
    let deadline = Instant::now() + UPDATE_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, resolution.updates.recv()).await {
            Ok(Some(Update::Reset(set))) if done(&set) => return set,
            Ok(Some(Update::Reset(_))) => {}
            Ok(Some(Update::Notice(notice))) => seen.notices.push(notice.to_string()),
            Ok(None) => panic!(
                "the resolver stopped while waiting for {what}; notices: {:?}",
                seen.notices
            ),
            Err(_) => panic!(
                "no set with {what} within {UPDATE_TIMEOUT:?}; notices: {:?}",
                seen.notices
            ),
        }
    }
}

/// Reads updates until a notice contains `needle`.
async fn wait_for_notice(resolution: &mut Resolution, seen: &mut Seen, needle: &str) {
    let deadline = Instant::now() + UPDATE_TIMEOUT;
    while !seen.any(needle) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, resolution.updates.recv()).await {
            Ok(Some(Update::Notice(notice))) => seen.notices.push(notice.to_string()),
            Ok(Some(Update::Reset(_))) => {}
            Ok(None) => panic!(
                "the resolver stopped while waiting for {needle:?}; notices: {:?}",
                seen.notices
            ),
            Err(_) => panic!(
                "no notice {needle:?} within {UPDATE_TIMEOUT:?}; notices: {:?}",
                seen.notices
            ),
        }
    }
}

/// Proves the resolver's watch is in place: a key put now shows up, and
/// goes again.
async fn watch_is_live(etcd: &mut Client, resolution: &mut Resolution, seen: &mut Seen) {
    put(etcd, "/grpclb/echo/marker", "127.0.0.99:1").await;
    wait_for_set(resolution, seen, "the marker key", |s| {
        s.iter().any(|e| e.address == "127.0.0.99:1")
    })
    .await;
    etcd.delete("/grpclb/echo/marker", None)
        .await
        .expect("delete marker");
    wait_for_set(resolution, seen, "the marker gone", |s| {
        !s.iter().any(|e| e.address == "127.0.0.99:1")
    })
    .await;
}

fn spec(server: &EtcdServer, prefix: &str, address: &str, ttl_s: i64) -> RegisterSpec {
    RegisterSpec {
        endpoints: vec![server.endpoint()],
        prefix: prefix.into(),
        address: address.into(),
        ttl_s,
        format: ValueFormat::Plain,
        metadata: Metadata::default(),
        etcd: EtcdOptions::default(),
    }
}

/// Collects registration events, for assertions.
fn recorder() -> (EventSink, Arc<Mutex<Vec<String>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink_events = events.clone();
    let sink: EventSink = Arc::new(move |event: &str| {
        if let Ok(mut events) = sink_events.lock() {
            events.push(event.to_string());
        }
    });
    (sink, events)
}

#[tokio::test]
async fn both_value_formats_resolve_and_a_malformed_value_is_reported() {
    if !etcd_support::available() {
        return;
    }
    let server = EtcdServer::start();
    let mut etcd = client(&server).await;
    put(&mut etcd, "/grpclb/echo/127.0.0.2:9000", "127.0.0.2:9000").await;
    put(
        &mut etcd,
        "/grpclb/echo/127.0.0.3:9000",
        r#"{"Op":0,"Addr":"127.0.0.3:9000","Metadata":{"name":"echo-3","zone":"z1"}}"#,
    )
    .await;
    put(&mut etcd, "/grpclb/echo/broken", "not-an-address").await;

    let mut resolution = resolve(&server, "/grpclb/echo", &options())
        .await
        .expect("resolves");
    assert_eq!(resolution.source, "etcd");
    assert_eq!(
        addresses(&resolution.initial),
        ["127.0.0.2:9000", "127.0.0.3:9000"]
    );
    let json = resolution
        .initial
        .iter()
        .find(|e| e.address == "127.0.0.3:9000")
        .expect("json endpoint");
    assert_eq!(json.origin, "/grpclb/echo/127.0.0.3:9000");
    assert_eq!(json.name.as_deref(), Some("echo-3"));
    assert_eq!(json.zone.as_deref(), Some("z1"));

    let mut seen = Seen::default();
    wait_for_notice(&mut resolution, &mut seen, "/grpclb/echo/broken skipped").await;
    assert!(
        seen.any("neither host:port nor etcd's endpoint JSON"),
        "{:?}",
        seen.notices
    );

    // A malformed value written while watching is reported too, and fixing it adds the endpoint.
    put(&mut etcd, "/grpclb/echo/late", r#"{"Addr":"127.0.0.4"}"#).await;
    wait_for_notice(&mut resolution, &mut seen, "/grpclb/echo/late skipped").await;
    put(
        &mut etcd,
        "/grpclb/echo/late",
        r#"{"Addr":"127.0.0.4:9000"}"#,
    )
    .await;
    let set = wait_for_set(&mut resolution, &mut seen, "the fixed key", |s| {
        s.len() == 3
    })
    .await;
    assert!(set.iter().any(|e| e.origin == "/grpclb/echo/late"));
}

#[tokio::test]
async fn prefix_is_a_directory_so_echo_does_not_match_echo2() {
    if !etcd_support::available() {
        return;
    }
    let server = EtcdServer::start();
    let mut etcd = client(&server).await;
    put(&mut etcd, "/grpclb/echo/127.0.0.2:9000", "127.0.0.2:9000").await;
    put(&mut etcd, "/grpclb/echo2/127.0.0.9:9000", "127.0.0.9:9000").await;
    put(&mut etcd, "/grpclb/echo", "127.0.0.8:9000").await;
    put(&mut etcd, "/grpclb/echoes", "127.0.0.7:9000").await;

    let mut resolution = resolve(&server, "/grpclb/echo", &options())
        .await
        .expect("resolves");
    assert_eq!(addresses(&resolution.initial), ["127.0.0.2:9000"]);

    // Nor does the watch pick up a sibling prefix.
    put(
        &mut etcd,
        "/grpclb/echo2/127.0.0.10:9000",
        "127.0.0.10:9000",
    )
    .await;
    put(&mut etcd, "/grpclb/echo/127.0.0.3:9000", "127.0.0.3:9000").await;
    let mut seen = Seen::default();
    let set = wait_for_set(&mut resolution, &mut seen, "the second echo key", |s| {
        s.len() >= 2
    })
    .await;
    assert_eq!(addresses(&set), ["127.0.0.2:9000", "127.0.0.3:9000"]);

    // A trailing '/' in the target means the same directory.
    let same = resolve(&server, "/grpclb/echo/", &options())
        .await
        .expect("resolves");
    assert_eq!(
        addresses(&same.initial),
        ["127.0.0.2:9000", "127.0.0.3:9000"]
    );
}

#[tokio::test]
async fn register_then_resolve_then_deregister() {
    if !etcd_support::available() {
        return;
    }
    let server = EtcdServer::start();
    let (events, _) = recorder();
    let mut resolution = resolve(&server, "/grpclb/echo", &options())
        .await
        .expect("resolves an empty prefix");
    assert!(resolution.initial.is_empty());

    let registration =
        Registration::start(spec(&server, "/grpclb/echo", "127.0.0.2:9000", 10), events)
            .await
            .expect("registers");
    assert_eq!(registration.key(), "/grpclb/echo/127.0.0.2:9000");
    let mut seen = Seen::default();
    let set = wait_for_set(&mut resolution, &mut seen, "the registration", |s| {
        s.len() == 1
    })
    .await;
    assert_eq!(set[0].address, "127.0.0.2:9000");
    assert_eq!(set[0].origin, "/grpclb/echo/127.0.0.2:9000");
    assert_eq!(set[0].lease, Some(registration.lease()));
    let ttl = set[0].ttl_s.expect("the lease's remaining TTL is shown");
    assert!((1..=10).contains(&ttl), "ttl {ttl}");

    // A fresh resolve shows the lease and TTL as well.
    let fresh = resolve(&server, "/grpclb/echo", &options())
        .await
        .expect("resolves");
    assert_eq!(fresh.initial[0].lease, Some(registration.lease()));
    assert!(fresh.initial[0].ttl_s.is_some());

    let revoked_at = Instant::now();
    registration.revoke().await.expect("revokes");
    wait_for_set(&mut resolution, &mut seen, "the registration gone", |s| {
        s.is_empty()
    })
    .await;
    assert!(
        revoked_at.elapsed() < Duration::from_secs(5),
        "deregistration is immediate, not a TTL expiry"
    );
}

#[tokio::test]
async fn json_registration_carries_its_metadata() {
    if !etcd_support::available() {
        return;
    }
    let server = EtcdServer::start();
    let (events, _) = recorder();
    let mut registration_spec = spec(&server, "/grpclb/echo", "127.0.0.5:9000", 10);
    registration_spec.format = ValueFormat::Json;
    registration_spec.metadata.name = Some("echo-5".into());
    let registration = Registration::start(registration_spec, events)
        .await
        .expect("registers");
    let mut etcd = client(&server).await;
    let stored = etcd.get(registration.key(), None).await.expect("get");
    let value = stored.kvs()[0].value_str().expect("utf-8").to_string();
    assert!(
        value.contains(r#""Op":0"#) && value.contains(r#""Addr":"127.0.0.5:9000""#),
        "{value}"
    );
    let resolution = resolve(&server, "/grpclb/echo", &options())
        .await
        .expect("resolves");
    assert_eq!(resolution.initial[0].name.as_deref(), Some("echo-5"));
    registration.revoke().await.expect("revokes");
}

#[tokio::test]
async fn registrant_that_stops_renewing_disappears_after_its_ttl() {
    if !etcd_support::available() {
        return;
    }
    let server = EtcdServer::start();
    let (events, _) = recorder();
    let registration =
        Registration::start(spec(&server, "/grpclb/echo", "127.0.0.2:9000", 2), events)
            .await
            .expect("registers");
    let mut resolution = resolve(&server, "/grpclb/echo", &options())
        .await
        .expect("resolves");
    assert_eq!(resolution.initial.len(), 1);
    // Still there after more than one TTL while the keep-alive runs.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still = resolve(&server, "/grpclb/echo", &options())
        .await
        .expect("resolves");
    assert_eq!(still.initial.len(), 1, "the keep-alive holds the key");

    // Dropped without revoking: nothing renews the lease any more.
    let dropped_at = Instant::now();
    drop(registration);
    let mut seen = Seen::default();
    wait_for_set(
        &mut resolution,
        &mut seen,
        "the expired registration gone",
        |s| s.is_empty(),
    )
    .await;
    assert!(
        dropped_at.elapsed() >= Duration::from_millis(500),
        "removed by expiry, not at once"
    );
}

#[tokio::test]
async fn watch_survives_an_etcd_restart_and_replays_changes_made_meanwhile() {
    if !etcd_support::available() {
        return;
    }
    let mut server = EtcdServer::start();
    let mut etcd = client(&server).await;
    put(&mut etcd, "/grpclb/echo/127.0.0.2:9000", "127.0.0.2:9000").await;
    // A slow first reconnect leaves time to change the prefix before the
    // resolver is back, so it must replay those changes from its revision.
    let mut options = options();
    options.etcd.reconnect_min = Duration::from_secs(4);
    options.etcd.reconnect_max = Duration::from_secs(4);
    let mut resolution = resolve(&server, "/grpclb/echo", &options)
        .await
        .expect("resolves");
    assert_eq!(addresses(&resolution.initial), ["127.0.0.2:9000"]);
    let mut seen = Seen::default();
    watch_is_live(&mut etcd, &mut resolution, &mut seen).await;

    server.stop();
    wait_for_notice(&mut resolution, &mut seen, "lost the watch").await;
    server.restart();
    let mut etcd = client(&server).await;
    let added_at = put(&mut etcd, "/grpclb/echo/127.0.0.3:9000", "127.0.0.3:9000").await;
    etcd.delete("/grpclb/echo/127.0.0.2:9000", None)
        .await
        .expect("delete");

    let set = wait_for_set(
        &mut resolution,
        &mut seen,
        "the changes made while away",
        |s| addresses(s) == ["127.0.0.3:9000"],
    )
    .await;
    assert_eq!(set[0].origin, "/grpclb/echo/127.0.0.3:9000");
    let resumed = seen
        .position("resumed the watch from revision")
        .expect("a reconnect notice");
    assert!(
        seen.position("lost the watch") < Some(resumed),
        "{:?}",
        seen.notices
    );
    assert!(
        seen.notices[resumed].contains(&format!("revision {added_at}")),
        "{:?}",
        seen.notices
    );
    assert!(!seen.any("compacted"), "{:?}", seen.notices);
}

#[tokio::test]
async fn compacted_revision_is_re_read_and_the_difference_emitted() {
    if !etcd_support::available() {
        return;
    }
    let mut server = EtcdServer::start();
    let mut etcd = client(&server).await;
    put(&mut etcd, "/grpclb/echo/127.0.0.2:9000", "127.0.0.2:9000").await;
    put(&mut etcd, "/grpclb/echo/127.0.0.3:9000", "127.0.0.3:9000").await;
    let mut options = options();
    options.etcd.reconnect_min = Duration::from_secs(4);
    options.etcd.reconnect_max = Duration::from_secs(4);
    let mut resolution = resolve(&server, "/grpclb/echo", &options)
        .await
        .expect("resolves");
    assert_eq!(resolution.initial.len(), 2);
    let mut seen = Seen::default();
    watch_is_live(&mut etcd, &mut resolution, &mut seen).await;

    server.stop();
    wait_for_notice(&mut resolution, &mut seen, "lost the watch").await;
    server.restart();
    let mut etcd = client(&server).await;
    etcd.delete("/grpclb/echo/127.0.0.2:9000", None)
        .await
        .expect("delete");
    put(&mut etcd, "/grpclb/echo/127.0.0.4:9000", "127.0.0.4:9000").await;
    let last = put(&mut etcd, "/other/key", "x").await;
    etcd.compact(last, Some(CompactionOptions::new().with_physical()))
        .await
        .expect("compact");

    let set = wait_for_set(&mut resolution, &mut seen, "the re-read prefix", |s| {
        addresses(s) == ["127.0.0.3:9000", "127.0.0.4:9000"]
    })
    .await;
    assert_eq!(set.len(), 2);
    wait_for_notice(&mut resolution, &mut seen, "re-read").await;
    assert!(seen.any("is compacted"), "{:?}", seen.notices);
    assert!(seen.any("1 added, 1 removed"), "{:?}", seen.notices);

    // And the watch goes on from the re-read revision.
    put(&mut etcd, "/grpclb/echo/127.0.0.5:9000", "127.0.0.5:9000").await;
    wait_for_set(&mut resolution, &mut seen, "a key after the re-read", |s| {
        s.len() == 3
    })
    .await;
}

#[tokio::test]
async fn registration_survives_an_etcd_restart() {
    if !etcd_support::available() {
        return;
    }
    let mut server = EtcdServer::start();
    let (events, log) = recorder();
    let mut registration_spec = spec(&server, "/grpclb/echo", "127.0.0.2:9000", 5);
    registration_spec.etcd.reconnect_min = Duration::from_millis(200);
    let registration = Registration::start(registration_spec, events)
        .await
        .expect("registers");
    server.restart();
    // The key is still there after several TTLs: the keep-alive reconnected.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let resolution = resolve(&server, "/grpclb/echo", &options())
        .await
        .expect("resolves");
    assert_eq!(
        addresses(&resolution.initial),
        ["127.0.0.2:9000"],
        "events: {:?}",
        log.lock().map(|l| l.clone())
    );
    registration.revoke().await.expect("revokes");
    let after = resolve(&server, "/grpclb/echo", &options())
        .await
        .expect("resolves");
    assert!(after.initial.is_empty());
}

#[tokio::test]
async fn unreachable_etcd_fails_with_advice() {
    let target = Target::parse("etcd://127.0.0.1:1/grpclb/echo").expect("valid target");
    let started = Instant::now();
    let err = resolve::start(&target, &options())
        .await
        .err()
        .expect("fails");
    assert!(started.elapsed() < Duration::from_secs(10));
    match err {
        ResolveError::Failed(message) => {
            assert!(
                message.contains("127.0.0.1:1") && message.contains("ETCDCTL_ENDPOINTS"),
                "{message}"
            );
        }
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[tokio::test]
async fn key_put_with_a_foreign_lease_shows_it() {
    if !etcd_support::available() {
        return;
    }
    let server = EtcdServer::start();
    let mut etcd = client(&server).await;
    let lease = etcd.lease_grant(60, None).await.expect("lease").id();
    etcd.put(
        "/grpclb/echo/127.0.0.2:9000",
        "127.0.0.2:9000",
        Some(PutOptions::new().with_lease(lease)),
    )
    .await
    .expect("put");
    let resolution = resolve(&server, "/grpclb/echo", &options())
        .await
        .expect("resolves");
    assert_eq!(resolution.initial[0].lease, Some(lease));
    let ttl = resolution.initial[0].ttl_s.expect("ttl");
    assert!((55..=60).contains(&ttl), "ttl {ttl}");
}

#[tokio::test]
async fn tls_with_a_client_certificate_resolves_and_registers() {
    if !etcd_support::available() {
        return;
    }
    if !support::require_tool("openssl", "openssl") {
        return;
    }
    let server = EtcdServer::start_tls();
    let tls = server.tls().expect("TLS files").clone();
    let mut options = options();
    options.etcd.cacert = Some(tls.ca.clone());
    options.etcd.cert = Some(tls.client_cert.clone());
    options.etcd.key = Some(tls.client_key.clone());
    let (events, _) = recorder();
    let mut registration_spec = spec(&server, "/grpclb/echo", "127.0.0.2:9000", 10);
    registration_spec.etcd = options.etcd.clone();
    let registration = Registration::start(registration_spec, events)
        .await
        .expect("registers over TLS");
    let resolution = resolve(&server, "/grpclb/echo", &options)
        .await
        .expect("resolves over TLS");
    assert_eq!(addresses(&resolution.initial), ["127.0.0.2:9000"]);

    // Without a client certificate, etcd turns the client away.
    let mut no_identity = options.clone();
    no_identity.etcd.cert = None;
    no_identity.etcd.key = None;
    assert!(matches!(
        resolve(&server, "/grpclb/echo", &no_identity).await,
        Err(ResolveError::Failed(_))
    ));
    // Nor does plain HTTP reach a TLS etcd.
    assert!(matches!(
        resolve(&server, "/grpclb/echo", &ResolveOptions::default()).await,
        Err(ResolveError::Failed(_))
    ));
    registration.revoke().await.expect("revokes over TLS");
}

#[tokio::test]
async fn authentication_is_asked_for_and_used() {
    if !etcd_support::available() {
        return;
    }
    let server = EtcdServer::start();
    let mut etcd = client(&server).await;
    put(&mut etcd, "/grpclb/echo/127.0.0.2:9000", "127.0.0.2:9000").await;
    etcd.user_add("root", "s3cret", None)
        .await
        .expect("add root");
    etcd.user_grant_role("root", "root")
        .await
        .expect("grant root");
    etcd.auth_enable().await.expect("enable auth");

    let mut wrong = options();
    wrong.etcd.user = Some("root:wrong".into());
    for refused in [options(), wrong] {
        match resolve(&server, "/grpclb/echo", &refused).await {
            Err(ResolveError::Failed(message)) => {
                assert!(message.contains("--etcd-user"), "{message}")
            }
            other => panic!(
                "expected a refusal, got {:?}",
                other.map(|r| r.initial.clone())
            ),
        }
    }

    let mut with_user = options();
    with_user.etcd.user = Some("root".into());
    with_user.etcd.password = Some("s3cret".into());
    let resolution = resolve(&server, "/grpclb/echo", &with_user)
        .await
        .expect("resolves as root");
    assert_eq!(addresses(&resolution.initial), ["127.0.0.2:9000"]);
    let (events, _) = recorder();
    let mut registration_spec = spec(&server, "/grpclb/echo", "127.0.0.3:9000", 10);
    registration_spec.etcd = with_user.etcd.clone();
    let registration = Registration::start(registration_spec, events)
        .await
        .expect("registers as root");
    registration.revoke().await.expect("revokes as root");
}
