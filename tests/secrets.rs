//! No secret ever reaches the output. Distinct secrets are planted in every
//! input path (etcd passwords by flag, environment, `ETCDCTL_USER` and the
//! target; kubeconfig tokens and client keys; `authorization` metadata;
//! TLS private keys), every subcommand runs in every output mode through
//! its success and failure paths, and stdout and stderr are searched for
//! each secret.

#[path = "support/certs.rs"]
mod certs;
#[path = "support/etcd.rs"]
mod etcd_support;
#[path = "support/kube_api.rs"]
mod kube_api;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use certs::{Ca, Usage, Validity};
use etcd_support::EtcdServer;
use support::{Backend, run_bounded};

const ETCD_PW_FLAG: &str = "etcdPwFlag-7Q2x";
const ETCD_PW_ENV: &str = "etcdPwEnv-K9v3";
const ETCD_PW_IN_USER: &str = "etcdPwInUser-W4m1";
const ETCD_PW_IN_TARGET: &str = "etcdPwInTarget-Z8p5";
const KUBE_TOKEN_REFUSED: &str = "kubeTokenRefused-R3n8";
const BEARER: &str = "mdBearer-T6y0";
const API_KEY: &str = "mdApiKey-H1j7";

/// Everything one secret-planting run needs.
struct World {
    dir: tempfile::TempDir,
    /// Secrets to search for: the constants, the in-test API server's token,
    /// and a line of every private key's body.
    secrets: Vec<String>,
}

impl World {
    fn new() -> World {
        World {
            dir: tempfile::tempdir().expect("tempdir"),
            secrets: [
                ETCD_PW_FLAG,
                ETCD_PW_ENV,
                ETCD_PW_IN_USER,
                ETCD_PW_IN_TARGET,
                KUBE_TOKEN_REFUSED,
                BEARER,
                API_KEY,
                kube_api::TOKEN,
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        }
    }

    /// Remembers a private key file's body lines as secrets.
    fn key_is_secret(&mut self, key: &Path) {
        let pem = std::fs::read_to_string(key).expect("read key");
        for line in pem
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() > 16)
        {
            self.secrets.push(line.to_string());
        }
        let der = base64::engine::general_purpose::STANDARD.encode(pem.as_bytes());
        self.secrets.push(der[8..40].to_string());
    }

    /// A kubeconfig for `server` whose user carries `token`, and a client
    /// certificate and key given inline.
    fn kubeconfig(&self, name: &str, server: &str, token: &str, client: &certs::Leaf) -> PathBuf {
        let b64 = |path: &Path| {
            base64::engine::general_purpose::STANDARD.encode(std::fs::read(path).expect("read"))
        };
        let text = format!(
            "apiVersion: v1\nkind: Config\n\
             clusters:\n- name: c\n  cluster:\n    server: {server}\n\
             users:\n- name: u\n  user:\n    token: {token}\n    client-certificate-data: {}\n    client-key-data: {}\n\
             contexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n    namespace: default\n\
             current-context: x\n",
            b64(&client.cert),
            b64(&client.key),
        );
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }
}

/// One run of `grpclb` with its arguments and environment.
#[derive(Clone)]
struct Run {
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
}

fn run(args: &[&str]) -> Run {
    Run {
        args: args.iter().map(|a| a.to_string()).collect(),
        env: Vec::new(),
    }
}

impl Run {
    fn env(mut self, key: &'static str, value: &str) -> Run {
        self.env.push((key, value.to_string()));
        self
    }

    /// The same run in each output mode the subcommand has.
    fn in_every_output(self) -> Vec<Run> {
        ["table", "json"]
            .iter()
            .map(|output| Run {
                args: [self.args.clone(), vec!["-o".into(), output.to_string()]].concat(),
                env: self.env.clone(),
            })
            .collect()
    }
}

/// Runs everything, and fails with every leak found, or when a path meant
/// to be taken (each of `paths`, a phrase of its message) never was.
fn assert_no_secret_shows(world: &World, runs: Vec<Run>, paths: &[&str]) {
    let mut leaks = Vec::new();
    let mut everything = String::new();
    for run in &runs {
        let mut command = Command::new(support::grpclb_bin());
        command
            .args(&run.args)
            .env_remove("ETCDCTL_USER")
            .env_remove("ETCDCTL_PASSWORD")
            .env_remove("ETCDCTL_ENDPOINTS")
            .env_remove("KUBECONFIG")
            .env("HOME", world.dir.path());
        for (key, value) in &run.env {
            command.env(key, value);
        }
        let out = run_bounded(&mut command, Duration::from_secs(40));
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_ne!(
            out.status.code(),
            Some(101),
            "{:?} panicked: {text}",
            run.args
        );
        everything.push_str(&text);
        for secret in &world.secrets {
            if text.contains(secret.as_str()) {
                leaks.push(format!("{:?} shows {secret:?}:\n{text}", run.args));
            }
        }
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n\n"));
    for path in paths {
        assert!(
            everything.contains(path),
            "no run took the path that says {path:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_any_output() {
    let mut world = World::new();
    let ca = Ca::new(world.dir.path(), "ca");
    let other_ca = Ca::new(world.dir.path(), "other");
    let server_leaf = ca.issue(
        "server",
        &["127.0.0.1", "127.0.0.71"],
        Usage::Server,
        Validity::Current,
    );
    let client_leaf = ca.issue("client", &["client"], Usage::Client, Validity::Current);
    let stranger = other_ca.issue("stranger", &["x"], Usage::Client, Validity::Current);
    let kube_client = ca.issue("kube-client", &["kube"], Usage::Client, Validity::Current);
    for key in [
        &server_leaf.key,
        &client_leaf.key,
        &stranger.key,
        &kube_client.key,
    ] {
        world.key_is_secret(key);
    }

    // A real etcd with authentication on: wrong passwords are refused.
    let etcd = EtcdServer::start();
    let etcd_target = etcd.target("/grpclb/echo");
    let user_target =
        etcd_target.replacen("etcd://", &format!("etcd://root:{ETCD_PW_IN_TARGET}@"), 1);
    {
        let mut client = etcd_client::Client::connect([etcd.endpoint()], None)
            .await
            .expect("etcd client");
        client
            .user_add("root", "right-one", None)
            .await
            .expect("user");
        client.user_grant_role("root", "root").await.expect("role");
        client.auth_enable().await.expect("auth");
    }
    let unreachable = "etcd://127.0.0.1:1/grpclb/echo";

    // The in-test Kubernetes API: 401 for an unknown token, 403 when forbidden.
    let api = kube_api::FakeApi::start().await;
    api.put_service("default", "echo", &[("grpc", 50051)]);
    let refused = world.kubeconfig("refused", &api.url(), KUBE_TOKEN_REFUSED, &kube_client);
    let accepted = world.kubeconfig("accepted", &api.url(), kube_api::TOKEN, &kube_client);
    let nowhere = world.kubeconfig(
        "nowhere",
        "http://127.0.0.1:9",
        KUBE_TOKEN_REFUSED,
        &kube_client,
    );
    let forbidding = kube_api::FakeApi::start().await;
    forbidding.forbid(true, true);
    let forbidden = world.kubeconfig(
        "forbidden",
        &forbidding.url(),
        kube_api::TOKEN,
        &kube_client,
    );

    // Pods: one plaintext, one over mutual TLS.
    let plain = Backend::start("127.0.0.70", "plain-pod");
    let mut tls_serve = Command::new(support::grpclb_bin());
    tls_serve.args([
        "serve",
        "--listen",
        "127.0.0.71:0",
        "--name",
        "tls-pod",
        "--tls-cert",
        server_leaf.cert_str(),
        "--tls-key",
        server_leaf.key_str(),
        "--client-ca",
        ca.cert_str(),
    ]);
    let (_tls_pod, line) =
        support::spawn_until_line(tls_serve, "listening on", Duration::from_secs(20));
    let tls_address = line
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("address")
        .to_string();
    let plain_target = format!("ipv4:{}", plain.address);
    let tls_target = format!("ipv4:{tls_address}");

    let kc = |p: &PathBuf| p.to_str().expect("utf-8").to_string();
    let metadata = [
        "--metadata".to_string(),
        format!("authorization: Bearer {BEARER}"),
        "--metadata".to_string(),
        format!("x-api-key: {API_KEY}"),
    ];
    let with_metadata = |args: &[&str]| -> Vec<String> {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.extend(metadata.iter().cloned());
        all
    };
    let mut runs: Vec<Run> = Vec::new();
    let bench_and_resolve = |target: &str, extra: &[&str]| -> Vec<Run> {
        let mut bench = vec!["bench", target, "-n", "20"];
        bench.extend_from_slice(extra);
        let mut resolve = vec!["resolve", target];
        resolve.extend_from_slice(extra);
        [
            run(&bench).in_every_output(),
            run(&resolve).in_every_output(),
        ]
        .concat()
    };

    // etcd: passwords by flag, environment, ETCDCTL_USER, and in the target;
    // against an etcd that refuses them and one that cannot be reached.
    for target in [etcd_target.as_str(), unreachable] {
        runs.extend(bench_and_resolve(
            target,
            &["--etcd-user", "root", "--etcd-password", ETCD_PW_FLAG],
        ));
        for r in bench_and_resolve(target, &["--etcd-user", "root"]) {
            runs.push(r.env("ETCDCTL_PASSWORD", ETCD_PW_ENV));
        }
        for r in bench_and_resolve(target, &[]) {
            runs.push(r.env("ETCDCTL_USER", &format!("root:{ETCD_PW_IN_USER}")));
        }
        for register in [
            run(&[
                "register",
                target,
                "--address",
                "127.0.0.9:1",
                "--etcd-user",
                "root",
                "--etcd-password",
                ETCD_PW_FLAG,
            ]),
            run(&["register", target, "--address", "127.0.0.9:1"])
                .env("ETCDCTL_USER", &format!("root:{ETCD_PW_IN_USER}")),
            run(&[
                "serve",
                "--listen",
                "127.0.0.72:0",
                "--register",
                target,
                "--etcd-user",
                "root",
            ])
            .env("ETCDCTL_PASSWORD", ETCD_PW_ENV),
        ] {
            runs.push(register);
        }
    }
    runs.extend(bench_and_resolve(&user_target, &[]));
    runs.push(run(&["register", &user_target, "--address", "127.0.0.9:1"]));
    runs.push(run(&["bench", "-q", &plain_target, "-n", "5"]).env(
        "ETCDCTL_ENDPOINTS",
        &format!("http://root:{ETCD_PW_IN_USER}@127.0.0.1:1"),
    ));
    runs.push(run(&["resolve", "etcd:///grpclb/echo"]).env(
        "ETCDCTL_ENDPOINTS",
        &format!("http://root:{ETCD_PW_IN_USER}@127.0.0.1:1"),
    ));

    // Kubernetes: 401, 403, unreachable, and a good token.
    for kubeconfig in [&refused, &forbidden, &nowhere, &accepted] {
        runs.extend(bench_and_resolve(
            "echo.default:grpc",
            &["--kubeconfig", &kc(kubeconfig)],
        ));
        for r in bench_and_resolve("echo.default:grpc", &[]) {
            runs.push(r.env("KUBECONFIG", &kc(kubeconfig)));
        }
    }

    // Calls with credentials in their metadata: plaintext and TLS, answered,
    // refused (no client certificate, a stranger's, the wrong CA) and unreachable.
    let tls_runs: Vec<Vec<String>> = vec![
        with_metadata(&["bench", &plain_target, "-n", "20", "--call", "echo"]),
        with_metadata(&["bench", &plain_target, "-n", "20", "--insecure-skip-verify"]),
        with_metadata(&[
            "bench",
            &tls_target,
            "-n",
            "20",
            "--cacert",
            ca.cert_str(),
            "--cert",
            client_leaf.cert_str(),
            "--key",
            client_leaf.key_str(),
        ]),
        with_metadata(&["bench", &tls_target, "-n", "20", "--cacert", ca.cert_str()]),
        with_metadata(&[
            "bench",
            &tls_target,
            "-n",
            "20",
            "--cacert",
            ca.cert_str(),
            "--cert",
            stranger.cert_str(),
            "--key",
            stranger.key_str(),
        ]),
        with_metadata(&[
            "bench",
            &tls_target,
            "-n",
            "20",
            "--cacert",
            other_ca.cert_str(),
            "--cert",
            client_leaf.cert_str(),
            "--key",
            client_leaf.key_str(),
        ]),
        with_metadata(&[
            "bench",
            "ipv4:127.0.0.1:1",
            "-n",
            "20",
            "--tls",
            "--cert",
            client_leaf.cert_str(),
            "--key",
            stranger.key_str(),
        ]),
        with_metadata(&[
            "bench",
            "ipv4:127.0.0.1:1",
            "-n",
            "20",
            "--mode",
            "both",
            "--clusterip-target",
            "127.0.0.1:1",
        ]),
    ];
    for args in tls_runs {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        runs.extend(run(&args).in_every_output());
    }
    runs.push(run(&[
        "serve",
        "--listen",
        "127.0.0.73:0",
        "--tls-cert",
        server_leaf.cert_str(),
        "--tls-key",
        stranger.key_str(),
    ]));
    runs.push(run(&["bench", "--help"]));
    runs.push(run(&["resolve", "--help"]).env("ETCDCTL_PASSWORD", ETCD_PW_ENV));

    assert_no_secret_shows(
        &world,
        runs,
        &[
            "refused access",
            "cannot reach etcd",
            "carries credentials",
            "401",
            "403",
            "permission denied",
            "authorization: <redacted>",
            "TLS: the server requires a client certificate",
            "TLS: unknown CA",
            "TLS: the server rejected our client certificate",
            "does not match the certificate",
            "--insecure-skip-verify",
        ],
    );
}
