//! The EndpointSlice resolver against an in-test Kubernetes API server that
//! speaks the real list/watch protocol (see `support/kube_api.rs`).
//!
//! Real time throughout: kube's watcher runs its own idle timers, and a
//! paused clock would fire them while the client waits on the real socket.
//! Every wait is bounded by [`WAIT`].

#[path = "support/kube_api.rs"]
mod kube_api;
mod support;

use std::collections::HashSet;
use std::time::Duration;

use grpclb::resolve::{self, Endpoint, Resolution, ResolveError, ResolveOptions, Update};
use grpclb::target::Target;
use kube_api::{Conditions, FakeApi, endpoint, endpoint_with, slice};

/// The longest any single expected event may take.
const WAIT: Duration = Duration::from_secs(10);

/// Pod `i` of Service `echo`: 10.0.0.i, named echo-i, on node-a in zone-1.
fn pod(i: u8) -> k8s_openapi::api::discovery::v1::Endpoint {
    endpoint(
        &format!("10.0.0.{i}"),
        &format!("echo-{i}"),
        "node-a",
        "zone-1",
    )
}

/// A slice of Service `echo` with its one port, `grpc` 50051.
fn echo_slice(
    name: &str,
    pods: Vec<k8s_openapi::api::discovery::v1::Endpoint>,
) -> k8s_openapi::api::discovery::v1::EndpointSlice {
    slice(name, "echo", &[("grpc", 50051)], pods)
}

fn options(api: &FakeApi) -> ResolveOptions {
    ResolveOptions {
        kubeconfig: Some(api.kubeconfig()),
        ..ResolveOptions::default()
    }
}

async fn resolve(api: &FakeApi, target: &str) -> Result<Resolution, ResolveError> {
    let target = Target::parse(target).expect("a valid target");
    tokio::time::timeout(WAIT, resolve::start(&target, &options(api)))
        .await
        .expect("the resolver answers in time")
}

/// Waits for the next set, collecting the notices before it.
async fn next_set(resolution: &mut Resolution, notices: &mut Vec<String>) -> Vec<Endpoint> {
    for _ in 0..100 {
        match tokio::time::timeout(WAIT, resolution.updates.recv()).await {
            Ok(Some(Update::Reset(set))) => return set,
            Ok(Some(Update::Notice(notice))) => notices.push(notice.to_string()),
            Ok(None) => panic!("the resolver stopped; notices so far: {notices:?}"),
            Err(_) => panic!("no new set within {WAIT:?}; notices so far: {notices:?}"),
        }
    }
    panic!("more than 100 notices without a set: {notices:?}");
}

/// Waits for a set that satisfies `done`, checking `always` on every set.
async fn set_where(
    resolution: &mut Resolution,
    notices: &mut Vec<String>,
    always: impl Fn(&[Endpoint]),
    done: impl Fn(&[Endpoint]) -> bool,
) -> Vec<Endpoint> {
    for _ in 0..20 {
        let set = next_set(resolution, notices).await;
        always(&set);
        if done(&set) {
            return set;
        }
    }
    panic!("20 sets and none was the one expected; notices: {notices:?}");
}

fn addresses(set: &[Endpoint]) -> Vec<String> {
    set.iter().map(|e| e.address.clone()).collect()
}

fn assert_unique(set: &[Endpoint]) {
    let unique: HashSet<&str> = set.iter().map(|e| e.address.as_str()).collect();
    assert_eq!(
        unique.len(),
        set.len(),
        "an address is listed twice: {:?}",
        addresses(set)
    );
}

fn failure(result: Result<Resolution, ResolveError>) -> String {
    match result {
        Err(ResolveError::Failed(message)) => message,
        Err(other) => panic!("expected a resolution failure (exit 3), got {other:?}"),
        Ok(resolution) => panic!(
            "expected a failure, resolved {:?}",
            addresses(&resolution.initial)
        ),
    }
}

/// Service `echo` with 250 pods over three slices (100, 100, 50), port grpc.
fn echo_250(api: &FakeApi) {
    api.put_service("default", "echo", &[("grpc", 50051)]);
    for (index, (first, count)) in [(0, 100), (100, 100), (200, 50)].into_iter().enumerate() {
        let endpoints = (first..first + count)
            .map(|i| {
                endpoint(
                    &format!("10.1.{}.{}", i / 200, i % 200 + 1),
                    &format!("echo-{i:03}"),
                    &format!("node-{}", i % 3),
                    &format!("zone-{}", i % 2),
                )
            })
            .collect();
        api.put_slice(
            "default",
            slice(
                &format!("echo-{index}"),
                "echo",
                &[("grpc", 50051)],
                endpoints,
            ),
        );
    }
}

#[tokio::test]
async fn resolves_250_endpoints_over_three_slices() {
    let api = FakeApi::start().await;
    echo_250(&api);
    // Another Service's slice in the same namespace is not ours.
    api.put_slice(
        "default",
        slice(
            "other-x",
            "other",
            &[("grpc", 50051)],
            vec![endpoint("10.9.0.1", "other-1", "n", "z")],
        ),
    );
    let resolution = resolve(&api, "echo.default:grpc").await.expect("resolves");
    let set = &resolution.initial;
    assert_eq!(resolution.source, "kubernetes");
    assert_eq!(set.len(), 250);
    assert_unique(set);
    assert!(set.iter().all(|e| e.ready && e.serving && !e.terminating));
    assert!(set.iter().all(|e| e.address.ends_with(":50051")));
    let first = set
        .iter()
        .find(|e| e.address == "10.1.0.1:50051")
        .expect("pod 0");
    assert_eq!(first.name.as_deref(), Some("echo-000"));
    assert_eq!(first.node.as_deref(), Some("node-0"));
    assert_eq!(first.zone.as_deref(), Some("zone-0"));
    assert_eq!(first.origin, "echo-0");
    let last = set
        .iter()
        .find(|e| e.name.as_deref() == Some("echo-249"))
        .expect("pod 249");
    assert_eq!(last.origin, "echo-2");
    let lists = api
        .requests()
        .iter()
        .filter(|r| r.contains("endpointslices?") && !r.contains("watch="))
        .count();
    assert_eq!(lists, 1, "one list: {:?}", api.requests());
    assert!(
        api.requests()
            .iter()
            .any(|r| r.contains("labelSelector=kubernetes.io%2Fservice-name%3Decho")),
        "the list selects by service name: {:?}",
        api.requests()
    );
}

#[tokio::test]
async fn deleted_slice_takes_its_endpoints_with_it() {
    let api = FakeApi::start().await;
    echo_250(&api);
    let mut resolution = resolve(&api, "kubernetes:///echo.default:grpc")
        .await
        .expect("resolves");
    assert_eq!(resolution.initial.len(), 250);
    assert!(api.delete_slice("default", "echo-1"));
    let mut notices = Vec::new();
    let set = next_set(&mut resolution, &mut notices).await;
    assert_eq!(set.len(), 150);
    assert!(set.iter().all(|e| e.origin != "echo-1"));
}

#[tokio::test]
async fn address_moving_between_slices_is_counted_once() {
    let api = FakeApi::start().await;
    api.put_service("default", "echo", &[("grpc", 50051)]);
    api.put_slice("default", echo_slice("echo-a", vec![pod(1), pod(2)]));
    api.put_slice("default", echo_slice("echo-b", vec![pod(3)]));
    let mut resolution = resolve(&api, "echo.default:grpc").await.expect("resolves");
    assert_eq!(resolution.initial.len(), 3);

    // The controller adds pod 2 to echo-b before removing it from echo-a.
    api.put_slice("default", echo_slice("echo-b", vec![pod(3), pod(2)]));
    api.put_slice("default", echo_slice("echo-a", vec![pod(1)]));
    let mut notices = Vec::new();
    let always = |set: &[Endpoint]| {
        assert_unique(set);
        assert_eq!(
            set.len(),
            3,
            "no set loses or doubles pod 2: {:?}",
            addresses(set)
        );
    };
    let set = set_where(&mut resolution, &mut notices, always, |set| {
        set.iter()
            .any(|e| e.address == "10.0.0.2:50051" && e.origin == "echo-b")
    })
    .await;
    assert_eq!(
        addresses(&set),
        ["10.0.0.1:50051", "10.0.0.2:50051", "10.0.0.3:50051"]
    );
}

#[tokio::test]
async fn endpoint_turns_not_ready_then_terminating() {
    let api = FakeApi::start().await;
    api.put_service("default", "echo", &[("grpc", 50051)]);
    let ready = endpoint("10.0.0.1", "echo-1", "node-a", "zone-1");
    let other = endpoint("10.0.0.2", "echo-2", "node-a", "zone-1");
    api.put_slice(
        "default",
        slice(
            "echo-a",
            "echo",
            &[("grpc", 50051)],
            vec![ready, other.clone()],
        ),
    );
    let mut resolution = resolve(&api, "echo.default:grpc").await.expect("resolves");
    assert!(resolution.initial.iter().all(|e| e.balanced_onto(false)));

    let not_ready = Conditions {
        ready: Some(false),
        serving: Some(false),
        terminating: Some(false),
    };
    api.put_slice(
        "default",
        slice(
            "echo-a",
            "echo",
            &[("grpc", 50051)],
            vec![
                endpoint_with("10.0.0.1", "echo-1", "node-a", "zone-1", not_ready),
                other.clone(),
            ],
        ),
    );
    let mut notices = Vec::new();
    let set = next_set(&mut resolution, &mut notices).await;
    let pod = set
        .iter()
        .find(|e| e.address == "10.0.0.1:50051")
        .expect("still listed");
    assert!(!pod.ready && !pod.serving && !pod.terminating);
    assert!(!pod.balanced_onto(false) && !pod.balanced_onto(true));

    let terminating = Conditions {
        ready: Some(false),
        serving: Some(true),
        terminating: Some(true),
    };
    api.put_slice(
        "default",
        slice(
            "echo-a",
            "echo",
            &[("grpc", 50051)],
            vec![
                endpoint_with("10.0.0.1", "echo-1", "node-a", "zone-1", terminating),
                other,
            ],
        ),
    );
    let set = next_set(&mut resolution, &mut notices).await;
    let pod = set
        .iter()
        .find(|e| e.address == "10.0.0.1:50051")
        .expect("still listed");
    assert!(!pod.ready && pod.serving && pod.terminating);
    assert!(
        !pod.balanced_onto(false),
        "terminating pods get no calls by default"
    );
    assert!(pod.balanced_onto(true), "--include-terminating widens it");
}

#[tokio::test]
async fn expired_watch_relists_and_sees_what_it_missed() {
    let api = FakeApi::start().await;
    api.put_service("default", "echo", &[("grpc", 50051)]);
    api.put_slice("default", echo_slice("echo-a", vec![pod(1)]));
    api.put_slice("default", echo_slice("echo-b", vec![pod(2)]));
    let mut resolution = resolve(&api, "echo.default:grpc").await.expect("resolves");
    assert_eq!(resolution.initial.len(), 2);

    // While the watch is down, echo-b is deleted and echo-c created; the
    // history that would have told the client is compacted away.
    api.expire_watches(|cluster| {
        cluster.delete_slice("default", "echo-b");
        cluster.put_slice("default", echo_slice("echo-c", vec![pod(3)]));
    });
    let mut notices = Vec::new();
    let set = next_set(&mut resolution, &mut notices).await;
    assert_eq!(addresses(&set), ["10.0.0.1:50051", "10.0.0.3:50051"]);
    assert!(
        notices
            .iter()
            .any(|n| n.contains("410") && n.contains("relisting")),
        "the relist is reported: {notices:?}"
    );
    let lists = api
        .requests()
        .iter()
        .filter(|r| r.contains("endpointslices?") && !r.contains("watch="))
        .count();
    assert_eq!(lists, 2, "listed again after 410: {:?}", api.requests());

    // And the new watch works.
    api.put_slice("default", echo_slice("echo-c", vec![pod(3), pod(4)]));
    let set = next_set(&mut resolution, &mut notices).await;
    assert_eq!(set.len(), 3);
}

#[tokio::test]
async fn dropped_watch_resumes_after_bookmarks_without_relisting() {
    let api = FakeApi::start().await;
    api.put_service("default", "echo", &[("grpc", 50051)]);
    api.put_slice("default", echo_slice("echo-a", vec![pod(1)]));
    let mut resolution = resolve(&api, "echo.default:grpc").await.expect("resolves");
    wait_for_watch(&api).await;
    // Changes the client does not watch move the cluster's resourceVersion on;
    // a bookmark tells the client so, and it resumes from there.
    api.put_slice(
        "default",
        slice("other-a", "other", &[("grpc", 1)], vec![pod(9)]),
    );
    api.bookmark();
    let bookmarked = api.resource_version();
    api.drop_watches();
    wait_for_watch(&api).await;
    let rewatch = api.requests().last().cloned().unwrap_or_default();
    assert!(
        rewatch.contains("watch=true")
            && rewatch.ends_with(&format!("resourceVersion={bookmarked}")),
        "resumes from the bookmark: {rewatch}"
    );
    api.put_slice("default", echo_slice("echo-a", vec![pod(1), pod(2)]));
    let mut notices = Vec::new();
    let set = next_set(&mut resolution, &mut notices).await;
    assert_eq!(set.len(), 2);
    let lists = api
        .requests()
        .iter()
        .filter(|r| r.contains("endpointslices?") && !r.contains("watch="))
        .count();
    assert_eq!(
        lists,
        1,
        "a dropped watch resumes from its resourceVersion: {:?}",
        api.requests()
    );
    assert!(notices.is_empty(), "nothing to report: {notices:?}");
}

/// Waits until `n` watch requests have been made (bounded).
async fn wait_for_watch_requests(api: &FakeApi, n: usize) {
    for _ in 0..400 {
        if api
            .requests()
            .iter()
            .filter(|r| r.contains("watch=true"))
            .count()
            >= n
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("fewer than {n} watch requests: {:?}", api.requests());
}

/// Waits until the client has a watch open (bounded).
async fn wait_for_watch(api: &FakeApi) {
    for _ in 0..200 {
        if api.open_watches() > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the client never opened a watch: {:?}", api.requests());
}

#[tokio::test]
async fn forbidden_prints_the_role_and_binding_to_apply() {
    let api = FakeApi::start().await;
    echo_250(&api);
    api.forbid(true, true);
    let message = failure(resolve(&api, "echo.default:grpc").await);
    assert!(message.contains("403"), "{message}");
    assert!(message.contains("default/echo"), "{message}");
    assert!(message.contains("kind: Role\n"), "{message}");
    assert!(message.contains("kind: RoleBinding\n"), "{message}");
    assert!(
        message.contains("- apiGroups: [\"discovery.k8s.io\"]\n  resources: [\"endpointslices\"]\n  verbs: [\"get\", \"list\", \"watch\"]"),
        "{message}"
    );
    assert!(
        message.contains("- kind: ServiceAccount\n  name: runner\n  namespace: ci"),
        "{message}"
    );
}

#[tokio::test]
async fn port_resolves_by_name_or_number_and_a_wrong_name_lists_the_ports() {
    let api = FakeApi::start().await;
    // Service port 80 (grpc) targets the pods' 50051; 9090 is metrics.
    api.put_service("default", "echo", &[("grpc", 80), ("metrics", 9090)]);
    api.put_slice(
        "default",
        slice(
            "echo-a",
            "echo",
            &[("grpc", 50051), ("metrics", 9090)],
            vec![endpoint("10.0.0.1", "echo-1", "node-a", "zone-1")],
        ),
    );
    let by_name = resolve(&api, "echo.default:metrics")
        .await
        .expect("by name");
    assert_eq!(addresses(&by_name.initial), ["10.0.0.1:9090"]);
    let by_service_port = resolve(&api, "echo.default:80")
        .await
        .expect("by Service port");
    assert_eq!(addresses(&by_service_port.initial), ["10.0.0.1:50051"]);
    let by_pod_port = resolve(&api, "echo.default:50051")
        .await
        .expect("by pod port");
    assert_eq!(addresses(&by_pod_port.initial), ["10.0.0.1:50051"]);

    let message = failure(resolve(&api, "echo.default").await);
    assert!(
        message.contains("several ports (grpc 50051, metrics 9090)"),
        "{message}"
    );
    let message = failure(resolve(&api, "echo.default:http").await);
    assert!(message.contains("no port named \"http\""), "{message}");
    assert!(message.contains("grpc 50051, metrics 9090"), "{message}");
}

#[tokio::test]
async fn the_only_port_needs_no_name() {
    let api = FakeApi::start().await;
    api.put_service("default", "echo", &[("", 50051)]);
    api.put_slice(
        "default",
        slice(
            "echo-a",
            "echo",
            &[("", 50051)],
            vec![endpoint("10.0.0.1", "echo-1", "node-a", "zone-1")],
        ),
    );
    let resolution = resolve(&api, "echo.default").await.expect("resolves");
    assert_eq!(addresses(&resolution.initial), ["10.0.0.1:50051"]);
}

#[tokio::test]
async fn missing_service_lists_the_services_that_exist() {
    let api = FakeApi::start().await;
    api.put_service("default", "echo", &[("grpc", 50051)]);
    api.put_service("default", "echo-headless", &[("grpc", 50051)]);
    api.put_service("other", "elsewhere", &[("grpc", 50051)]);
    let message = failure(resolve(&api, "ecoh.default:grpc").await);
    assert!(
        message.contains("\"ecoh\" not found in namespace \"default\""),
        "{message}"
    );
    assert!(message.contains("echo, echo-headless"), "{message}");
    assert!(!message.contains("elsewhere"), "{message}");
}

#[tokio::test]
async fn missing_service_without_permission_to_list_services_says_what_to_run() {
    let api = FakeApi::start().await;
    api.forbid(false, true);
    let message = failure(resolve(&api, "ecoh.default:grpc").await);
    assert!(
        message.contains("no EndpointSlices labelled kubernetes.io/service-name=ecoh"),
        "{message}"
    );
    assert!(
        message.contains("kubectl get service ecoh -n default"),
        "{message}"
    );
}

#[tokio::test]
async fn empty_slice_resolves_to_no_endpoints_with_the_reason() {
    let api = FakeApi::start().await;
    api.put_service("default", "echo", &[("grpc", 50051)]);
    // Serialized as `endpoints: null`, as the real server does.
    api.put_slice("default", slice("echo-a", "echo", &[], vec![]));
    let mut resolution = resolve(&api, "echo.default:grpc").await.expect("resolves");
    assert!(resolution.initial.is_empty());
    let mut notices = Vec::new();
    api.put_slice(
        "default",
        slice(
            "echo-a",
            "echo",
            &[("grpc", 50051)],
            vec![endpoint("10.0.0.1", "echo-1", "node-a", "zone-1")],
        ),
    );
    let set = next_set(&mut resolution, &mut notices).await;
    assert_eq!(addresses(&set), ["10.0.0.1:50051"]);
    assert!(
        notices
            .iter()
            .any(|n| n.contains("echo") && n.contains("selector matches no running pod")),
        "{notices:?}"
    );
}

#[tokio::test]
async fn context_flag_picks_the_cluster_and_an_unreachable_one_is_named_with_advice() {
    let api = FakeApi::start().await;
    echo_250(&api);
    let elsewhere = api.write_kubeconfig("elsewhere-current", "elsewhere");
    let target = Target::parse("echo.default:grpc").expect("valid");

    let mut options = ResolveOptions {
        kubeconfig: Some(elsewhere.clone()),
        ..ResolveOptions::default()
    };
    let message = failure(
        tokio::time::timeout(WAIT, resolve::start(&target, &options))
            .await
            .expect("fails in time"),
    );
    assert!(
        message.contains("127.0.0.1:9"),
        "names the server: {message}"
    );
    assert!(
        message.contains("--context"),
        "says what to check: {message}"
    );

    options.kube_context = Some("fake".into());
    let resolution = tokio::time::timeout(WAIT, resolve::start(&target, &options))
        .await
        .expect("in time")
        .expect("--context picks the fake cluster");
    assert_eq!(resolution.initial.len(), 250);

    options.kube_context = Some("nope".into());
    let message = failure(resolve::start(&target, &options).await);
    assert!(
        message.contains("\"nope\" is not in the kubeconfig"),
        "{message}"
    );
    assert!(message.contains("fake, elsewhere"), "{message}");
}

#[tokio::test]
async fn paged_lists_are_followed() {
    let api = FakeApi::start().await;
    api.put_service("default", "echo", &[("grpc", 50051)]);
    // kube's watcher asks for 500 per page; 520 one-endpoint slices need two pages.
    for i in 0..520u32 {
        let ip = format!("10.2.{}.{}", i / 250, i % 250 + 1);
        api.put_slice(
            "default",
            slice(
                &format!("echo-{i:03}"),
                "echo",
                &[("grpc", 50051)],
                vec![endpoint(&ip, &format!("p{i}"), "n", "z")],
            ),
        );
    }
    let resolution = resolve(&api, "echo.default:grpc").await.expect("resolves");
    assert_eq!(resolution.initial.len(), 520);
    assert!(
        api.requests().iter().any(|r| r.contains("continue=")),
        "{:?}",
        api.requests().len()
    );
}

/// Runs the `grpclb` binary off the async runtime (which keeps serving the
/// fake API meanwhile), killed after `limit`.
async fn grpclb(args: Vec<String>, limit: Duration) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        support::run_grpclb(&args, limit)
    })
    .await
    .expect("the grpclb run finishes")
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|a| a.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_command_prints_json_and_watches_changes() {
    let api = FakeApi::start().await;
    api.put_service("default", "echo", &[("grpc", 50051)]);
    api.put_slice("default", echo_slice("echo-a", vec![pod(1), pod(2)]));
    let kubeconfig = api.kubeconfig().display().to_string();

    let output = grpclb(
        args(&[
            "resolve",
            "echo.default:grpc",
            "--kubeconfig",
            &kubeconfig,
            "-o",
            "json",
        ]),
        WAIT,
    )
    .await;
    assert_eq!(
        support::code(&output),
        0,
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let document = support::json(&output);
    assert_eq!(document["target"], "kubernetes:///echo.default:grpc");
    assert_eq!(document["source"], "kubernetes");
    assert_eq!(document["endpoints"][0]["address"], "10.0.0.1:50051");
    assert_eq!(document["endpoints"][0]["name"], "echo-1");
    assert_eq!(document["endpoints"][0]["node"], "node-a");
    assert_eq!(document["endpoints"][0]["zone"], "zone-1");
    assert_eq!(document["endpoints"][0]["origin"], "echo-a");
    assert_eq!(document["endpoints"][0]["ready"], true);

    let watching = tokio::spawn(grpclb(
        args(&[
            "resolve",
            "echo.default:grpc",
            "--kubeconfig",
            &kubeconfig,
            "--watch",
            "--duration",
            "4s",
            "-o",
            "json",
        ]),
        WAIT,
    ));
    // The first run's watch, then this one's.
    wait_for_watch_requests(&api, 2).await;
    let terminating = Conditions {
        ready: Some(false),
        serving: Some(true),
        terminating: Some(true),
    };
    api.put_slice(
        "default",
        slice(
            "echo-a",
            "echo",
            &[("grpc", 50051)],
            vec![
                endpoint_with("10.0.0.1", "echo-1", "node-a", "zone-1", terminating),
                pod(3),
            ],
        ),
    );
    let output = watching.await.expect("the watch finishes");
    assert_eq!(
        support::code(&output),
        0,
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?} is not JSON: {e}"))
        })
        .collect();
    let events: Vec<(String, String)> = lines
        .iter()
        .map(|l| {
            assert!(
                l["at"].as_str().is_some_and(|at| at.ends_with('Z')),
                "RFC 3339 time: {l}"
            );
            (
                l["event"].as_str().unwrap_or_default().to_string(),
                l["endpoint"]["address"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("added", "10.0.0.1:50051"),
        ("added", "10.0.0.2:50051"),
        ("changed", "10.0.0.1:50051"),
        ("added", "10.0.0.3:50051"),
        ("removed", "10.0.0.2:50051"),
    ]
    .iter()
    .map(|(e, a)| (e.to_string(), a.to_string()))
    .collect();
    assert_eq!(
        events,
        expected,
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(lines[2]["endpoint"]["terminating"], true);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("1 added, 1 removed, 1 changed"),
        "summary: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_command_exits_3_with_the_rbac_hint() {
    let api = FakeApi::start().await;
    api.put_service("default", "echo", &[("grpc", 50051)]);
    api.forbid(true, true);
    let kubeconfig = api.kubeconfig().display().to_string();
    let output = grpclb(
        args(&["resolve", "echo.default:grpc", "--kubeconfig", &kubeconfig]),
        WAIT,
    )
    .await;
    assert_eq!(support::code(&output), 3);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("kind: RoleBinding"), "{stderr}");
    assert!(
        stderr.contains("resources: [\"endpointslices\"]"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_command_shows_an_empty_table_with_the_reason() {
    let api = FakeApi::start().await;
    api.put_service("default", "echo", &[("grpc", 50051)]);
    let not_ready = Conditions {
        ready: Some(false),
        serving: Some(false),
        terminating: Some(false),
    };
    api.put_slice(
        "default",
        slice(
            "echo-a",
            "echo",
            &[("grpc", 50051)],
            vec![endpoint_with(
                "10.0.0.1", "echo-1", "node-a", "zone-1", not_ready,
            )],
        ),
    );
    let kubeconfig = api.kubeconfig().display().to_string();
    let output = grpclb(
        args(&["resolve", "echo.default", "--kubeconfig", &kubeconfig]),
        WAIT,
    )
    .await;
    assert_eq!(support::code(&output), 0);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("1 endpoint, 0 ready"), "{stdout}");
    assert!(
        stdout.contains("none of 1 endpoints is ready (1 not ready, 0 terminating)"),
        "{stdout}"
    );

    // bench has nothing to balance onto: exit 3.
    let output = grpclb(
        args(&[
            "bench",
            "echo.default:grpc",
            "--kubeconfig",
            &kubeconfig,
            "-n",
            "10",
            "-q",
        ]),
        WAIT,
    )
    .await;
    assert_eq!(
        support::code(&output),
        3,
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn service_address_uses_the_service_port() {
    let api = FakeApi::start().await;
    api.put_service("default", "echo", &[("grpc", 80), ("metrics", 9090)]);
    let options = options(&api);
    let address = |target: &str| {
        let target = Target::parse(target).expect("valid");
        let options = options.clone();
        async move { resolve::service_address(&target, &options).await }
    };
    assert_eq!(
        address("echo.default:grpc").await.expect("by name"),
        "echo.default.svc.cluster.local:80"
    );
    assert_eq!(
        address("echo.default:9090").await.expect("a Service port"),
        "echo.default.svc.cluster.local:9090"
    );
    let err = address("echo.default").await.expect_err("two ports");
    assert!(
        err.to_string()
            .contains("several ports (grpc 80, metrics 9090)"),
        "{err}"
    );
    api.forbid(false, true);
    let err = address("echo.default:grpc")
        .await
        .expect_err("cannot read the Service");
    assert!(
        err.to_string()
            .contains("--clusterip-target echo.default.svc.cluster.local:PORT"),
        "{err}"
    );
    assert_eq!(
        address("echo.default:50051")
            .await
            .expect("a number needs no lookup"),
        "echo.default.svc.cluster.local:50051"
    );
    let custom = resolve::ResolveOptions {
        cluster_domain: "corp.example.".into(),
        ..options.clone()
    };
    let target = Target::parse("echo.default:50051").expect("valid");
    assert_eq!(
        resolve::service_address(&target, &custom)
            .await
            .expect("custom domain"),
        "echo.default.svc.corp.example:50051"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_headless_hits_all_250_pods() {
    let port = support::in_process_pods("127.0.1", 250, |i| format!("echo-{i:03}")).await;
    let api = FakeApi::start().await;
    api.put_service("default", "echo", &[("grpc", 50051)]);
    for (index, (first, count)) in [(0u32, 100u32), (100, 100), (200, 50)]
        .into_iter()
        .enumerate()
    {
        let endpoints = (first..first + count)
            .map(|i| {
                endpoint(
                    &format!("127.0.1.{}", i + 1),
                    &format!("echo-{i:03}"),
                    "node-a",
                    "zone-1",
                )
            })
            .collect();
        api.put_slice(
            "default",
            slice(
                &format!("echo-{index}"),
                "echo",
                &[("grpc", port as i32)],
                endpoints,
            ),
        );
    }
    let kubeconfig = api.kubeconfig().display().to_string();
    let output = grpclb(
        args(&[
            "bench",
            "echo.default:grpc",
            "--kubeconfig",
            &kubeconfig,
            "--mode",
            "headless",
            "-n",
            "7500",
            "-c",
            "4",
            "--assert-even",
            "--expect-endpoints",
            "250",
            "-o",
            "json",
            "-q",
        ]),
        Duration::from_secs(120),
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report = support::json(&output);
    assert_eq!(
        support::code(&output),
        0,
        "{stderr}\nverdict: {}",
        report["verdict"]
    );
    support::assert_accounted(&report);
    let endpoints = report["endpoints"].as_array().expect("endpoints");
    assert_eq!(endpoints.len(), 250, "{stderr}");
    let mut names: Vec<&str> = endpoints
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 250, "every pod answered under its own name");
    assert!(
        endpoints.iter().all(|e| e["ok"].as_u64() == Some(30)),
        "round robin: 30 calls each"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubeconfig_from_the_environment_through_a_proxy() {
    let api = FakeApi::start().await;
    api.put_service("default", "echo", &[("grpc", 50051)]);
    api.put_slice(
        "default",
        slice(
            "echo-a",
            "echo",
            &[("grpc", 50051)],
            vec![endpoint("10.0.0.1", "echo-1", "node-a", "zone-1")],
        ),
    );
    // Only the proxy can reach this name: the client never looks it up.
    let port = api.url().rsplit(':').next().unwrap_or_default().to_string();
    let server = format!("http://api.grpclb.test:{port}");
    let kubeconfig = api.write_kubeconfig_for("proxied", &server, "fake");
    let mut command = std::process::Command::new(support::grpclb_bin());
    for name in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        command.env_remove(name);
    }
    command
        .env("KUBECONFIG", &kubeconfig)
        .env("HTTP_PROXY", api.url())
        .args(["resolve", "echo.default:grpc", "-o", "json"]);
    let output = tokio::task::spawn_blocking(move || support::run_bounded(&mut command, WAIT))
        .await
        .expect("the run finishes");
    assert_eq!(
        support::code(&output),
        0,
        "{}\nrequests: {:?}",
        String::from_utf8_lossy(&output.stderr),
        api.requests()
    );
    assert_eq!(
        support::json(&output)["endpoints"][0]["address"],
        "10.0.0.1:50051"
    );
    assert!(
        api.requests()
            .iter()
            .any(|r| r == &format!("CONNECT api.grpclb.test:{port}")),
        "went through the proxy: {:?}",
        api.requests()
    );
}
