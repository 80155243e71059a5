//! Bad command lines and bad inputs, one table: each ends in the exit code
//! the design gives it (2: usage, 3: could not run, 1: a check failed) with
//! a message that names the problem; none ends in a panic (101) or an abort.

#[path = "support/certs.rs"]
mod certs;
#[path = "support/kube_api.rs"]
mod kube_api;
mod support;

use std::path::Path;
use std::time::Duration;

use certs::{Ca, Usage, Validity};
use support::{Backend, code, run_grpclb};

/// One bad invocation: the arguments, the exit code, and words the message must hold.
struct Case {
    args: Vec<String>,
    code: i32,
    says: &'static str,
}

fn case(args: &[&str], code: i32, says: &'static str) -> Case {
    Case {
        args: args.iter().map(|a| a.to_string()).collect(),
        code,
        says,
    }
}

/// `bench` against a closed port with extra flags: fails before dialling.
fn bench(extra: &[&str], code: i32, says: &'static str) -> Case {
    let mut args = vec!["bench", "ipv4:127.0.0.1:1", "-q"];
    args.extend_from_slice(extra);
    case(&args, code, says)
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn run(cases: &[Case]) {
    let mut failures = Vec::new();
    for case in cases {
        let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
        let out = run_grpclb(&args, Duration::from_secs(40));
        let status = code(&out);
        // Usage errors go to stderr; a failed check is the report's verdict on stdout.
        let stderr = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        if status == 101 || stderr.contains("panicked") {
            failures.push(format!("{args:?} PANICKED: {stderr}"));
        } else if status != case.code || !stderr.contains(case.says) {
            failures.push(format!(
                "{args:?}: exit {status} (want {}), message lacks {:?}:\n{stderr}",
                case.code, case.says
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn bad_command_lines_are_refused_with_the_flag_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::new(dir.path(), "ca");
    let other_ca = Ca::new(dir.path(), "other-ca");
    let server = ca.issue("server", &["127.0.0.1"], Usage::Server, Validity::Current);
    let client = ca.issue("client", &["client"], Usage::Client, Validity::Current);
    let stranger = other_ca.issue("stranger", &["x"], Usage::Client, Validity::Current);
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "this is not PEM\n").expect("write");
    let truncated_key = dir.path().join("truncated.key");
    std::fs::write(
        &truncated_key,
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n",
    )
    .expect("write");
    let missing = dir.path().join("missing.pem");
    let unreadable_dir = dir.path(); // a directory cannot be read as a file
    let garbage_kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&garbage_kubeconfig, "clusters: [\n  - {").expect("write");

    let cases = vec![
        // Malformed targets.
        case(&["bench", ""], 2, "the target is empty"),
        case(&["bench", "ipv4:10.0.0.1"], 2, "has no port"),
        case(&["bench", "http://echo:80"], 2, "unknown scheme \"http\""),
        case(&["bench", "echo.default:99999"], 2, "\"99999\""),
        case(
            &["bench", "etcd://127.0.0.1:2379"],
            2,
            "missing the key prefix",
        ),
        case(&["bench", "etcd://127.0.0.1:2379/"], 2, "prefix is empty"),
        case(
            &["bench", "etcd://root:pw@127.0.0.1:2379/p"],
            2,
            "--etcd-user \"root\"",
        ),
        case(
            &["bench", "dns://resolver.example/echo:80"],
            2,
            "must be an IP address",
        ),
        case(
            &["bench", "ipv6:10.0.0.1:80"],
            2,
            "does not belong in an ipv6: list",
        ),
        case(
            &["resolve", "Echo.default"],
            2,
            "not a valid Kubernetes name",
        ),
        case(
            &["register", "dns:///x:1", "--address", "1.2.3.4:5"],
            2,
            "etcd",
        ),
        // Zero, negative and huge counts and durations.
        bench(&["-c", "0"], 2, "--concurrency must be at least 1"),
        bench(&["-c", "-1"], 2, "--concurrency cannot be negative"),
        bench(&["-c", "99999999999999999999999"], 2, "--concurrency"),
        bench(&["-n", "0"], 2, "--requests 0 must be from 1"),
        bench(&["-n", "-5"], 2, "--requests cannot be negative"),
        bench(&["--rate", "0"], 2, "--rate"),
        bench(&["--rate", "-3"], 2, "--rate"),
        bench(&["--rate", "NaN"], 2, "--rate"),
        bench(&["--rate", "inf"], 2, "--rate"),
        bench(&["-z", "0s"], 2, "--duration"),
        bench(&["-z", "-5s"], 2, "--duration cannot be negative"),
        bench(&["-z", "soon"], 2, "not a duration"),
        bench(&["-z", "999999999999999999999d"], 2, "--duration"),
        bench(&["--timeout", "0s"], 2, "--timeout"),
        bench(&["--warmup", "-1ms"], 2, "--warmup cannot be negative"),
        bench(
            &["--mode", "clusterip", "--connections", "0"],
            2,
            "--connections",
        ),
        case(&["demo", "--pods", "0"], 2, "between 1 and"),
        case(&["demo", "--pods", "-3"], 2, "--pods cannot be negative"),
        case(
            &[
                "register",
                "etcd://127.0.0.1:1/p",
                "--address",
                "1.2.3.4:5",
                "--ttl",
                "-5",
            ],
            2,
            "--ttl -5 is too short",
        ),
        // Flags that do not apply to the mode.
        bench(&["--connections", "4"], 2, "--connections"),
        bench(
            &["--clusterip-target", "10.0.0.1:80"],
            2,
            "--clusterip-target",
        ),
        bench(&["--mode", "both"], 2, "--clusterip-target"),
        bench(&["--payload-bytes", "5"], 2, "--call echo"),
        bench(
            &["--call", "echo", "--payload-bytes", "99999999999999"],
            2,
            "--payload-bytes",
        ),
        // Unknown policy and bad check values.
        bench(&["--lb", "fastest"], 2, "unknown policy"),
        bench(&["--max-deviation", "3"], 2, "between 0 and 1"),
        bench(&["--max-ratio", "0.5"], 2, "--max-ratio"),
        bench(&["--chi2-p", "1.5"], 2, "--chi2-p"),
        bench(&["--max-errors", "lots"], 2, "neither a count"),
        bench(&["--weights", "a=x"], 2, "is not a weight"),
        bench(&["--weights", "0,0"], 2, "above 0"),
        bench(&["--identity-header", "bad header"], 2, "--identity-header"),
        // Metadata and authority.
        bench(&["--metadata", "no colon"], 2, "--metadata"),
        bench(&["--metadata", "grpc-timeout: 1S"], 2, "reserved"),
        bench(&["--metadata", "trace-bin: !!"], 2, "not base64"),
        bench(&["--metadata", "bad key: v"], 2, "--metadata: key"),
        bench(&["--authority", "a b"], 2, "--authority"),
        // Certificate and key files.
        bench(
            &["--cacert", path(&missing)],
            2,
            "cannot read --cacert file",
        ),
        bench(
            &["--cacert", path(unreadable_dir)],
            2,
            "cannot read --cacert file",
        ),
        bench(&["--cacert", path(&garbage)], 2, "holds no PEM certificate"),
        bench(
            &[
                "--tls",
                "--cert",
                client.cert_str(),
                "--key",
                path(&missing),
            ],
            2,
            "cannot read --key file",
        ),
        bench(
            &[
                "--tls",
                "--cert",
                client.key_str(),
                "--key",
                client.key_str(),
            ],
            2,
            "holds a private key, not a certificate",
        ),
        bench(
            &[
                "--tls",
                "--cert",
                client.cert_str(),
                "--key",
                path(&truncated_key),
            ],
            2,
            "is not a valid PEM private key",
        ),
        bench(
            &[
                "--tls",
                "--cert",
                client.cert_str(),
                "--key",
                stranger.key_str(),
            ],
            2,
            "does not match the certificate",
        ),
        bench(&["--tls", "--cert", client.cert_str()], 2, "--key"),
        bench(
            &["--tls-server-name", "not a name!"],
            2,
            "--tls-server-name",
        ),
        bench(
            &["--cacert", ca.cert_str(), "--insecure-skip-verify"],
            2,
            "cannot be used with",
        ),
        case(
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--tls-cert",
                server.cert_str(),
                "--tls-key",
                client.key_str(),
            ],
            2,
            "does not match the certificate",
        ),
        case(
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--tls-cert",
                path(&missing),
                "--tls-key",
                server.key_str(),
            ],
            2,
            "cannot read --tls-cert file",
        ),
        case(
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--tls-cert",
                server.cert_str(),
                "--tls-key",
                server.key_str(),
                "--client-ca",
                path(&garbage),
            ],
            2,
            "--client-ca",
        ),
        case(&["serve", "--tls-key", server.key_str()], 2, "--tls-cert"),
        case(&["serve", "--listen", "nowhere"], 2, "not an IP:port"),
        // Kubeconfig missing or garbage; etcd unreachable.
        case(
            &[
                "bench",
                "echo.default:grpc",
                "-q",
                "--kubeconfig",
                path(&missing),
            ],
            3,
            "could not read the kubeconfig",
        ),
        case(
            &[
                "bench",
                "echo.default:grpc",
                "-q",
                "--kubeconfig",
                path(&garbage_kubeconfig),
            ],
            3,
            "not valid kubeconfig YAML",
        ),
        case(
            &["bench", "-q", "etcd://127.0.0.1:1/grpclb/echo"],
            3,
            "cannot reach etcd",
        ),
        case(
            &["resolve", "etcd://127.0.0.1:1/grpclb/echo"],
            3,
            "cannot reach etcd",
        ),
        case(
            &[
                "register",
                "etcd://127.0.0.1:1/grpclb/echo",
                "--address",
                "127.0.0.1:5",
            ],
            3,
            "cannot reach etcd",
        ),
    ];
    assert!(cases.len() >= 40, "{} cases", cases.len());
    run(&cases);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_port_name_is_refused_with_the_known_ones() {
    let api = kube_api::FakeApi::start().await;
    api.put_service("default", "echo", &[("grpc", 50051)]);
    let kubeconfig = api.kubeconfig();
    let cases = vec![case(
        &[
            "bench",
            "echo.default:http",
            "-q",
            "-n",
            "1",
            "--kubeconfig",
            path(&kubeconfig),
        ],
        3,
        "grpc",
    )];
    tokio::task::spawn_blocking(move || run(&cases))
        .await
        .expect("cases ran");
}

#[test]
fn weights_naming_an_endpoint_that_does_not_exist_fail_by_name() {
    let backend = Backend::start("127.0.0.61", "pod-a");
    let target = format!("ipv4:{}", backend.address);
    let args = [
        "bench",
        &target,
        "-q",
        "-n",
        "200",
        "--assert-even",
        "--weights",
        "pod-a=1,pod-ghost=1",
    ];
    // Checked before the run (bench's preflight): a usage error naming it.
    run(&[case(&args, 2, "--weights names pod-ghost")]);
}
