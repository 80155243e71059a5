//! Shared test support: real `grpclb` processes on loopback, bounded in time.
#![allow(dead_code)] // each test binary uses its own part of this module

mod require;

#[allow(unused_imports)] // each test binary needs its own few
pub use require::{can_run, find_tool, in_ci, require_python_grpc, require_root, require_tool};

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The binary under test.
pub fn grpclb_bin() -> &'static str {
    env!("CARGO_BIN_EXE_grpclb")
}

/// Debian's interpreter, which has python3-grpcio (not whatever python3 is
/// first on `PATH`): it runs the C-core peers under `tests/peers`.
pub const PYTHON: &str = "/usr/bin/python3";

/// The path of a C-core peer script under `tests/peers`.
pub fn peer(script: &str) -> String {
    format!("{}/tests/peers/{script}", env!("CARGO_MANIFEST_DIR"))
}

/// A child process killed when dropped.
pub struct Process {
    pub child: Child,
}

impl Process {
    /// Sends SIGKILL now.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM (graceful shutdown).
    pub fn terminate(&mut self) {
        signal(&self.child, "TERM");
    }

    /// Waits for exit up to `limit`; `None` if it is still running.
    pub fn wait_for_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends a signal by name with the `kill` command (no libc binding needed).
pub fn signal(child: &Child, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status();
}

/// Starts `command`, waits (bounded) for a stderr/stdout line containing
/// `marker`, and returns the process with that line. The rest of its output
/// keeps being drained so it never blocks on a full pipe.
pub fn spawn_until_line(mut command: Command, marker: &str, limit: Duration) -> (Process, String) {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn test process");
    let (tx, rx) = mpsc::channel::<String>();
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    let process = Process { child };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(marker) => {
                // Keep draining in the background.
                thread::spawn(move || while rx.recv().is_ok() {});
                return (process, line);
            }
            Ok(line) => seen.push(line),
            Err(_) => panic!("no line with {marker:?} within {limit:?}; output so far: {seen:#?}"),
        }
    }
}

/// A `grpclb serve` backend on loopback.
pub struct Backend {
    pub name: String,
    pub address: SocketAddr,
    pub process: Process,
}

impl Backend {
    /// Starts `grpclb serve --listen IP:0 --name NAME` and reads the bound address.
    pub fn start(ip: &str, name: &str) -> Backend {
        Backend::start_with(ip, name, &[])
    }

    /// [`Backend::start`] with more `serve` flags (faults, connection age).
    pub fn start_with(ip: &str, name: &str, flags: &[&str]) -> Backend {
        Backend::start_on(&format!("{ip}:0"), name, flags)
    }

    /// `grpclb serve --listen ADDRESS --name NAME FLAGS…` on an exact
    /// address (port 0 for any), e.g. a pod restarted where it was.
    pub fn start_on(address: &str, name: &str, flags: &[&str]) -> Backend {
        let mut command = Command::new(grpclb_bin());
        command.args(["serve", "--listen", address, "--name", name]);
        command.args(flags);
        let (process, line) = spawn_until_line(command, "listening on", Duration::from_secs(20));
        let address = line
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("cannot read the address from {line:?}"));
        Backend {
            name: name.to_string(),
            address,
            process,
        }
    }
}

/// Starts `count` backends named `{prefix}-1…` on 127.0.0.{first_ip}, {first_ip+1}, …
pub fn backends(prefix: &str, first_ip: u8, count: usize) -> Vec<Backend> {
    backends_with(prefix, "127.0.0", first_ip, count, &[])
}

/// Starts `count` backends named `{prefix}-1…` on `{network}.{first_ip}`,
/// `{network}.{first_ip + 1}`, …, each with the `serve` flags given.
pub fn backends_with(
    prefix: &str,
    network: &str,
    first_ip: u8,
    count: usize,
    flags: &[&str],
) -> Vec<Backend> {
    (0..count)
        .map(|i| {
            Backend::start_with(
                &format!("{network}.{}", first_ip as usize + i),
                &format!("{prefix}-{}", i + 1),
                flags,
            )
        })
        .collect()
}

/// `ipv4:a:port,b:port,…` for the backends.
pub fn ipv4_target(backends: &[Backend]) -> String {
    let list: Vec<String> = backends.iter().map(|b| b.address.to_string()).collect();
    format!("ipv4:{}", list.join(","))
}

/// Runs `grpclb ARGS…` to completion, killed after `limit`.
pub fn run_grpclb(args: &[&str], limit: Duration) -> Output {
    run_bounded(Command::new(grpclb_bin()).args(args), limit)
}

/// Runs a command to completion, killed after `limit`.
pub fn run_bounded(command: &mut Command, limit: Duration) -> Output {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn command");
    let id = child.id();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let watchdog = thread::spawn(move || {
        if done_rx.recv_timeout(limit).is_err() {
            let _ = Command::new("kill")
                .args(["-KILL", &id.to_string()])
                .status();
        }
    });
    let output = child.wait_with_output().expect("wait for command");
    let _ = done_tx.send(());
    let _ = watchdog.join();
    output
}

/// The exit code, or a panic with the command's output when it was killed.
pub fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or_else(|| {
        panic!(
            "killed by a signal (time limit?)\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Parses stdout as JSON, with the output in the panic message on failure.
pub fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e})\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Checks the accounting invariants of one report document:
/// `requests == ok + errors`, per endpoint and in total, and the rows sum to the totals.
pub fn assert_accounted(report: &serde_json::Value) {
    let n = |v: &serde_json::Value, k: &str| {
        v[k].as_u64()
            .unwrap_or_else(|| panic!("{k} missing in {v}"))
    };
    assert_eq!(
        n(report, "requests"),
        n(report, "ok") + n(report, "errors"),
        "{report}"
    );
    let rows = report["endpoints"].as_array().expect("endpoints array");
    let mut sums = (0, 0, 0);
    for row in rows {
        assert_eq!(n(row, "requests"), n(row, "ok") + n(row, "errors"), "{row}");
        sums.0 += n(row, "requests");
        sums.1 += n(row, "ok");
        sums.2 += n(row, "errors");
    }
    assert_eq!(
        sums,
        (n(report, "requests"), n(report, "ok"), n(report, "errors")),
        "{report}"
    );
}

/// Requests per endpoint name.
pub fn requests_by_name(report: &serde_json::Value) -> Vec<(String, u64)> {
    report["endpoints"]
        .as_array()
        .expect("endpoints array")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap_or("").to_string(),
                e["requests"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// Runs `grpclb bench ARGS… -o json -q`, expects exit 0, checks the
/// accounting invariants and returns the report.
pub fn bench_report(args: &[&str]) -> serde_json::Value {
    let mut full = vec!["bench"];
    full.extend_from_slice(args);
    full.extend(["-o", "json", "-q"]);
    let out = run_grpclb(&full, Duration::from_secs(90));
    assert_eq!(
        code(&out),
        0,
        "{full:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    assert_accounted(&report);
    report
}

/// Starts `count` in-process `grpclb serve` pods on `{network}.1` …
/// `{network}.{count}`, all on one port as pods share a container port, named
/// by `name(index)`; returns the port. Retries when another test holds it.
pub async fn in_process_pods(network: &str, count: u32, name: impl Fn(usize) -> String) -> u16 {
    'attempt: for _ in 0..5 {
        let first = grpclb::serve::bind(format!("{network}.1:0").parse().expect("address"))
            .await
            .expect("bind");
        let port = first.local_addr().expect("local address").port();
        let mut listeners = vec![first];
        for i in 2..=count {
            let address = format!("{network}.{i}:{port}").parse().expect("address");
            match grpclb::serve::bind(address).await {
                Ok(listener) => listeners.push(listener),
                Err(_) => continue 'attempt,
            }
        }
        for (i, listener) in listeners.into_iter().enumerate() {
            let identity = grpclb::serve::Identity {
                name: name(i),
                pod_ip: format!("{network}.{}", i + 1),
                node: "node-a".into(),
                zone: "zone-1".into(),
            };
            tokio::spawn(grpclb::serve::serve(
                listener,
                identity,
                std::future::pending(),
            ));
        }
        return port;
    }
    panic!("no port free on all of {network}.1-{count} in 5 tries");
}
