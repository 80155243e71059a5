//! Interop with the official C-core gRPC stack (Debian `python3-grpcio`):
//! its round_robin client against `grpclb serve`, and `grpclb bench`
//! against its servers.

mod support;

use std::process::Command;
use std::time::Duration;

use support::{
    PYTHON, Process, assert_accounted, backends, code, ipv4_target, json, peer, requests_by_name,
    run_bounded, run_grpclb, spawn_until_line,
};

#[test]
fn c_core_round_robin_client_reads_the_hostname_header_of_grpclb_serve() {
    if !support::require_python_grpc() {
        return;
    }
    let pods = backends("py-rr", 101, 3);
    let out = run_bounded(
        Command::new(PYTHON).args([&peer("round_robin_client.py"), &ipv4_target(&pods), "300"]),
        Duration::from_secs(60),
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let counts = json(&out);
    let counts = counts.as_object().expect("counts object");
    assert_eq!(
        counts.len(),
        3,
        "every grpclb serve backend answered: {counts:?}"
    );
    for pod in &pods {
        let n = counts.get(&pod.name).and_then(|v| v.as_u64()).unwrap_or(0);
        // gRPC's round_robin is exact once every subchannel is READY.
        assert!(
            n.abs_diff(100) <= 10,
            "{} got {n} of 300: {counts:?}",
            pod.name
        );
    }
}

#[test]
fn grpclb_bench_balances_over_c_core_health_servers() {
    if !support::require_python_grpc() {
        return;
    }
    let servers: Vec<(Process, String, String)> = (0..3)
        .map(|i| {
            let name = format!("py-health-{}", i + 1);
            let host = format!("127.0.0.{}", 111 + i);
            let mut command = Command::new(PYTHON);
            command.args([&peer("health_server.py"), &host, &name]);
            let (process, line) =
                spawn_until_line(command, "listening on", Duration::from_secs(20));
            let address = line
                .split("listening on ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .expect("address")
                .to_string();
            (process, address, name)
        })
        .collect();
    let target = format!(
        "ipv4:{}",
        servers
            .iter()
            .map(|(_, a, _)| a.as_str())
            .collect::<Vec<_>>()
            .join(",")
    );
    let out = run_grpclb(
        &[
            "bench",
            &target,
            "-n",
            "900",
            "-c",
            "3",
            "--assert-even",
            "-o",
            "json",
            "-q",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stdout));
    let report = json(&out);
    assert_accounted(&report);
    let counts = requests_by_name(&report);
    for (_, _, name) in &servers {
        let n = counts
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, c)| *c);
        assert!(n.abs_diff(300) <= 3, "{name} got {n}: {counts:?}");
    }
}
