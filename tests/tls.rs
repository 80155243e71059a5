//! TLS and mutual TLS to pods: `grpclb bench` against `grpclb serve` in
//! both modes, each handshake failure reported per endpoint in words with
//! the right exit code, metadata and authority as the server saw them, and
//! interop with the C-core stack (Debian `python3-grpcio`) both ways.
//! Certificates are made in the test (rcgen, ring).

#[path = "support/certs.rs"]
mod certs;
mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use certs::{Ca, Leaf, Usage, Validity};
use support::{Process, assert_accounted, code, json, run_bounded, run_grpclb, spawn_until_line};

/// Debian's interpreter, which has python3-grpcio.
const PYTHON: &str = "/usr/bin/python3";

fn peer(script: &str) -> String {
    format!("{}/tests/peers/{script}", env!("CARGO_MANIFEST_DIR"))
}

/// A TLS `grpclb serve` on `ip`, its address, and the process.
fn tls_pod(ip: &str, name: &str, leaf: &Leaf, client_ca: Option<&Path>) -> (Process, String) {
    let mut command = Command::new(support::grpclb_bin());
    command.args([
        "serve",
        "--listen",
        &format!("{ip}:0"),
        "--name",
        name,
        "--tls-cert",
        leaf.cert_str(),
        "--tls-key",
        leaf.key_str(),
    ]);
    if let Some(ca) = client_ca {
        command.args(["--client-ca", ca.to_str().expect("utf-8")]);
    }
    let (process, line) = spawn_until_line(command, "listening on", Duration::from_secs(20));
    assert!(line.contains("(TLS"), "{line}");
    (process, address_in(&line))
}

fn address_in(line: &str) -> String {
    line.split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string()
}

fn bench(args: &[&str]) -> std::process::Output {
    let mut all = vec!["bench"];
    all.extend_from_slice(args);
    run_grpclb(&all, Duration::from_secs(60))
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Three pods on 127.0.0.121-123 requiring client certificates from `ca`.
struct MutualTls {
    _dir: tempfile::TempDir,
    ca: Ca,
    client: Leaf,
    pods: Vec<(Process, String)>,
}

impl MutualTls {
    fn start() -> MutualTls {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = Ca::new(dir.path(), "ca");
        let client = ca.issue("client", &["bench"], Usage::Client, Validity::Current);
        let pods = (0..3)
            .map(|i| {
                let ip = format!("127.0.0.{}", 121 + i);
                let leaf = ca.issue(
                    &format!("pod-{i}"),
                    &[&ip, "echo.test"],
                    Usage::Server,
                    Validity::Current,
                );
                tls_pod(&ip, &format!("tls-pod-{}", i + 1), &leaf, Some(&ca.cert))
            })
            .collect();
        MutualTls {
            _dir: dir,
            ca,
            client,
            pods,
        }
    }

    fn target(&self) -> String {
        let addresses: Vec<&str> = self.pods.iter().map(|(_, a)| a.as_str()).collect();
        format!("ipv4:{}", addresses.join(","))
    }
}

#[test]
fn mutual_tls_bench_balances_in_both_modes() {
    let world = MutualTls::start();
    let target = world.target();
    let out = bench(&[
        &target,
        "--mode",
        "both",
        "--clusterip-target",
        &world.pods[0].1,
        "-n",
        "600",
        "--cacert",
        world.ca.cert_str(),
        "--cert",
        world.client.cert_str(),
        "--key",
        world.client.key_str(),
        "--assert-even",
        "-q",
        "-o",
        "json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let document = json(&out);
    let runs = document["runs"].as_array().expect("two runs");
    assert_eq!(runs.len(), 2);
    for run in runs {
        assert_accounted(run);
        assert_eq!(run["errors"], 0, "{run}");
        assert_eq!(run["tls"]["client_certificate"], true, "{run}");
        assert_eq!(run["tls"]["insecure_skip_verify"], false, "{run}");
    }
    // The headless run reached every pod over TLS, by its name.
    let names: Vec<&str> = runs[1]["endpoints"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    for pod in ["tls-pod-1", "tls-pod-2", "tls-pod-3"] {
        assert!(names.contains(&pod), "{names:?}");
    }
}

#[test]
fn server_only_tls_bench_with_a_server_name_and_authority() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new(dir.path(), "ca");
    let leaf = ca.issue("pod", &["echo.test"], Usage::Server, Validity::Current);
    let (_pod, address) = tls_pod("127.0.0.124", "tls-only", &leaf, None);
    // The certificate names echo.test, not the IP: the name to check is set.
    let out = bench(&[
        &format!("ipv4:{address}"),
        "-n",
        "50",
        "--cacert",
        ca.cert_str(),
        "--tls-server-name",
        "echo.test",
        "-q",
        "-o",
        "json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["tls"]["server_name"], "echo.test");
    // --authority's host is the name checked when none is given; the server
    // saw the authority and the metadata (echoed by grpclb.v1.Echo).
    let out = bench(&[
        &format!("ipv4:{address}"),
        "-n",
        "5",
        "--cacert",
        ca.cert_str(),
        "--authority",
        "echo.test:443",
        "--call",
        "echo",
        "--print-responses",
        "1",
        "--metadata",
        "tenant: blue",
        "--metadata",
        "trace-bin: AAEC",
        "--metadata",
        "authorization: Bearer s3cret-token",
        "-q",
        "-o",
        "json",
    ]);
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "{err}");
    for seen in [
        "\"authority\":\"echo.test:443\"",
        "\"tenant\":\"blue\"",
        "\"trace-bin\":\"AAEC\"",
        "\"authorization\":\"<redacted> (19 bytes)\"",
    ] {
        assert!(err.contains(seen), "{seen} not in {err}");
    }
    let report = json(&out);
    assert_eq!(
        report["metadata"],
        serde_json::json!([
            "tenant: blue",
            "trace-bin: AAEC",
            "authorization: <redacted>"
        ])
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("s3cret-token"));
    assert!(!err.contains("s3cret-token"));
}

#[test]
fn handshake_failures_are_reported_per_endpoint_in_words() {
    let world = MutualTls::start();
    let target = world.target();
    let dir = tempfile::tempdir().expect("tempdir");
    let stranger_ca = Ca::new(dir.path(), "stranger");
    let stranger = stranger_ca.issue("stranger", &["x"], Usage::Client, Validity::Current);
    let client = [
        "--cert",
        world.client.cert_str(),
        "--key",
        world.client.key_str(),
    ];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--cacert", stranger_ca.cert_str()], "TLS: unknown CA"),
        (vec!["--tls"], "TLS: unknown CA"),
        (
            vec![
                "--cacert",
                world.ca.cert_str(),
                "--tls-server-name",
                "other.test",
            ],
            "TLS: name mismatch: the certificate is valid for 127.0.0.12",
        ),
        (
            vec!["--cacert", world.ca.cert_str()],
            "TLS: the server requires a client certificate",
        ),
        (
            vec![
                "--cacert",
                world.ca.cert_str(),
                "--cert",
                stranger.cert_str(),
                "--key",
                stranger.key_str(),
            ],
            "TLS: the server rejected our client certificate",
        ),
    ];
    for (flags, words) in cases {
        let mut args = vec![target.as_str(), "-n", "30", "-q", "-o", "json"];
        args.extend_from_slice(&flags);
        if !flags.contains(&"--cert") && words.contains("unknown CA") {
            args.extend_from_slice(&client);
        }
        let out = bench(&args);
        let err = stderr(&out);
        assert_eq!(
            code(&out),
            3,
            "{flags:?}: nothing reachable is exit 3: {err}"
        );
        assert!(
            err.contains("no endpoint could be reached") && err.contains(words),
            "{flags:?}: {err}"
        );
        let report = json(&out);
        assert_accounted(&report);
        // The engine never picks a member whose handshake failed: each
        // endpoint's reason is a note naming it.
        let notices = report["notices"].as_array().expect("notices");
        for address in target.trim_start_matches("ipv4:").split(',') {
            assert!(
                notices.iter().any(|n| {
                    let n = n.as_str().unwrap_or("");
                    n.starts_with(address) && n.contains(words)
                }),
                "{flags:?}: {address}: {report}"
            );
        }
    }
    // The name mismatch lists the names the certificate has.
    let out = bench(&[
        &target,
        "-n",
        "3",
        "-q",
        "--cacert",
        world.ca.cert_str(),
        "--tls-server-name",
        "other.test",
        "--cert",
        world.client.cert_str(),
        "--key",
        world.client.key_str(),
    ]);
    let err = stderr(&out);
    assert!(
        err.contains("echo.test") && err.contains("not other.test"),
        "{err}"
    );
}

#[test]
fn an_expired_pod_fails_by_name_while_the_others_serve() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new(dir.path(), "ca");
    let good = ca.issue("good", &["127.0.0.125"], Usage::Server, Validity::Current);
    let old = ca.issue("old", &["127.0.0.126"], Usage::Server, Validity::Expired);
    let (_good, good_address) = tls_pod("127.0.0.125", "fresh-pod", &good, None);
    let (_old, old_address) = tls_pod("127.0.0.126", "expired-pod", &old, None);
    let target = format!("ipv4:{good_address},{old_address}");
    let out = bench(&[
        &target,
        "-n",
        "200",
        "--cacert",
        ca.cert_str(),
        "--assert-even",
        "-q",
        "-o",
        "json",
    ]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let report = json(&out);
    assert_accounted(&report);
    let rows = report["endpoints"].as_array().expect("rows");
    let expired = rows
        .iter()
        .find(|r| r["address"] == old_address.as_str())
        .expect("the expired pod has a row");
    // It is skipped after its handshake failed (as gRPC skips a subchannel
    // in TRANSIENT_FAILURE); the reason is in its row's errors or, when it
    // got no call, in the run's notes.
    let why = format!("{}{}", expired["error_messages"], report["notices"]);
    assert!(
        why.contains("TLS: the server's certificate expired at 2002-01-01"),
        "{report}"
    );
    assert!(
        report["notices"].to_string().contains(&old_address),
        "{report}"
    );
    let fresh = rows
        .iter()
        .find(|r| r["address"] == good_address.as_str())
        .expect("the fresh pod has a row");
    assert!(fresh["ok"].as_u64().unwrap_or(0) > 0, "{fresh}");
    // Nothing reachable at all: exit 3, never a hang.
    let out = bench(&[
        &format!("ipv4:{old_address}"),
        "-n",
        "20",
        "--cacert",
        ca.cert_str(),
        "-q",
    ]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("expired"), "{}", stderr(&out));
}

#[test]
fn insecure_skip_verify_works_and_says_so_loudly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new(dir.path(), "ca");
    let leaf = ca.issue("pod", &["somewhere.else"], Usage::Server, Validity::Current);
    let (_pod, address) = tls_pod("127.0.0.127", "unverified", &leaf, None);
    let out = bench(&[
        &format!("ipv4:{address}"),
        "-n",
        "20",
        "--insecure-skip-verify",
        "-q",
        "-o",
        "json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("WARNING: --insecure-skip-verify"),
        "{}",
        stderr(&out)
    );
    let report = json(&out);
    assert_eq!(report["tls"]["insecure_skip_verify"], true);
    assert!(
        report["tls"]["warning"]
            .as_str()
            .unwrap_or("")
            .contains("NOT verified"),
        "{report}"
    );
    // Plaintext to a TLS pod fails, never hangs; TLS to a plaintext pod says so.
    let out = bench(&[&format!("ipv4:{address}"), "-n", "5", "-q"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let plain = support::Backend::start("127.0.0.128", "plain");
    let out = bench(&[&format!("ipv4:{}", plain.address), "-n", "5", "-q", "--tls"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("TLS:"), "{}", stderr(&out));
}

#[test]
fn c_core_client_speaks_mutual_tls_to_grpclb_serve() {
    let world = MutualTls::start();
    let out = run_bounded(
        Command::new(PYTHON).args([
            &peer("tls_echo_client.py"),
            &world.pods[0].1,
            "echo.test",
            world.ca.cert_str(),
            world.client.cert_str(),
            world.client.key_str(),
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let seen = json(&out);
    assert_eq!(seen["hostname"], "tls-pod-1", "{seen}");
    assert_eq!(seen["metadata"]["tenant"], "blue", "{seen}");
    // C-core sends binary metadata base64-encoded without padding.
    assert_eq!(seen["metadata"]["trace-bin"], "AAEC", "{seen}");
    assert_eq!(seen["authority"], "echo.test", "{seen}");
}

#[test]
fn grpclb_bench_speaks_mutual_tls_to_c_core_servers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new(dir.path(), "ca");
    let client = ca.issue("client", &["bench"], Usage::Client, Validity::Current);
    let servers: Vec<(Process, String)> = (0..2)
        .map(|i| {
            let ip = format!("127.0.0.{}", 131 + i);
            let leaf = ca.issue(&format!("py-{i}"), &[&ip], Usage::Server, Validity::Current);
            let mut command = Command::new(PYTHON);
            command.args([
                &peer("tls_health_server.py"),
                &ip,
                &format!("py-tls-{}", i + 1),
                leaf.cert_str(),
                leaf.key_str(),
                ca.cert_str(),
            ]);
            let (process, line) =
                spawn_until_line(command, "listening on", Duration::from_secs(20));
            (process, address_in(&line))
        })
        .collect();
    let target = format!(
        "ipv4:{}",
        servers
            .iter()
            .map(|(_, a)| a.as_str())
            .collect::<Vec<_>>()
            .join(",")
    );
    let out = bench(&[
        &target,
        "-n",
        "400",
        "--cacert",
        ca.cert_str(),
        "--cert",
        client.cert_str(),
        "--key",
        client.key_str(),
        "--assert-even",
        "-q",
        "-o",
        "json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report = json(&out);
    assert_accounted(&report);
    assert_eq!(report["errors"], 0, "{report}");
    let names: Vec<&str> = report["endpoints"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert!(
        names.contains(&"py-tls-1") && names.contains(&"py-tls-2"),
        "{names:?}"
    );
    // Without a client certificate the C-core server refuses: in words.
    let out = bench(&[&target, "-n", "10", "--cacert", ca.cert_str(), "-q"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("TLS:"), "{}", stderr(&out));
}
