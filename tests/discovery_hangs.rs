//! A discovery backend that accepts connections and never answers is a
//! fault too: `bench` and `resolve` give up within `--resolve-timeout`
//! with exit 3 and say what they waited for, and `resolve --watch
//! --duration` ends at its duration whatever state resolution is in.

mod support;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use support::{code, run_grpclb};

/// A TCP listener that completes handshakes (the kernel's backlog) and
/// never reads or writes: the shape of a hung API server.
fn black_hole() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let address = listener.local_addr().expect("bound address").to_string();
    (listener, address)
}

fn kubeconfig_for(dir: &tempfile::TempDir, server: &str) -> String {
    let path = dir.path().join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: hung\n  cluster:\n    server: {server}\n\
         users:\n- name: tester\n  user:\n    token: not-a-secret\n\
         contexts:\n- name: hung\n  context:\n    cluster: hung\n    user: tester\n\
         current-context: hung\n"
    );
    std::fs::write(&path, text).expect("write the kubeconfig");
    path.to_string_lossy().into_owned()
}

#[test]
fn hung_kubernetes_api_fails_bench_and_resolve_within_the_resolve_timeout() {
    let (_listener, address) = black_hole();
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = kubeconfig_for(&dir, &format!("http://{address}"));
    for command in ["resolve", "bench"] {
        let started = Instant::now();
        let output = run_grpclb(
            &[
                command,
                "echo.default:50051",
                "--kubeconfig",
                &kubeconfig,
                "--resolve-timeout",
                "3s",
            ],
            Duration::from_secs(30),
        );
        let took = started.elapsed();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(code(&output), 3, "{command}: {stderr}");
        assert!(
            took < Duration::from_secs(10),
            "{command} took {took:?} to give up"
        );
        assert!(
            stderr.contains("waiting for the Kubernetes API server"),
            "{command} says what it waits for: {stderr}"
        );
        assert!(
            stderr.contains("did not answer") && stderr.contains("--resolve-timeout"),
            "{command} says why it gave up and how to wait longer: {stderr}"
        );
    }
}

#[test]
fn hung_etcd_fails_resolve_promptly() {
    let (_listener, address) = black_hole();
    let started = Instant::now();
    let output = run_grpclb(
        &[
            "resolve",
            &format!("etcd://{address}/grpclb/echo"),
            "--resolve-timeout",
            "20s",
        ],
        Duration::from_secs(40),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(code(&output), 3, "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        stderr.contains(&address),
        "names the etcd endpoint: {stderr}"
    );
}

#[test]
fn watch_duration_ends_the_watch_even_while_resolution_hangs() {
    let (_listener, address) = black_hole();
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = kubeconfig_for(&dir, &format!("http://{address}"));
    let started = Instant::now();
    let output = run_grpclb(
        &[
            "resolve",
            "echo.default:50051",
            "--kubeconfig",
            &kubeconfig,
            "--watch",
            "--duration",
            "2s",
        ],
        Duration::from_secs(30),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(code(&output), 3, "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "--duration 2s took {:?}",
        started.elapsed()
    );
    assert!(stderr.contains("--duration"), "{stderr}");
}
