//! ClusterIP through the Linux kernel's own NAT, with kube-proxy's rules
//! (`-m statistic --mode random` DNAT to each pod), inside a network
//! namespace this test creates. Needs root (CI runs as root).

mod support;

use std::process::Command;
use std::time::Duration;

use support::{
    Process, assert_accounted, code, json, requests_by_name, run_bounded, spawn_until_line,
};

const SERVICE: &str = "10.96.0.10:50051";
const PODS: [&str; 3] = ["127.0.0.11", "127.0.0.12", "127.0.0.13"];

/// A network namespace with the Service IP on its loopback and kube-proxy's
/// NAT rules; deleted on drop.
struct ServiceNamespace {
    name: String,
}

impl ServiceNamespace {
    fn create(tag: &str) -> ServiceNamespace {
        let name = format!("grpclb-{tag}-{}", std::process::id());
        let ns = ServiceNamespace { name };
        ns.host(&["ip", "netns", "add", &ns.name]);
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns.exec(&["ip", "addr", "add", "10.96.0.10/32", "dev", "lo"]);
        // DNAT from a Service IP to 127.0.0.x needs loopback routing of non-loopback sources.
        ns.exec(&["sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1"]);
        ns.exec(&["iptables", "-t", "nat", "-N", "KUBE-SVC-ECHO"]);
        ns.exec(&[
            "iptables",
            "-t",
            "nat",
            "-A",
            "OUTPUT",
            "-d",
            "10.96.0.10/32",
            "-p",
            "tcp",
            "--dport",
            "50051",
            "-j",
            "KUBE-SVC-ECHO",
        ]);
        // kube-proxy's chain: the i-th of n rules matches with probability 1/(n-i).
        for (i, pod) in PODS.iter().enumerate() {
            let mut rule = vec!["iptables", "-t", "nat", "-A", "KUBE-SVC-ECHO", "-p", "tcp"];
            let probability = format!("{:.5}", 1.0 / (PODS.len() - i) as f64);
            if i + 1 < PODS.len() {
                rule.extend([
                    "-m",
                    "statistic",
                    "--mode",
                    "random",
                    "--probability",
                    &probability,
                ]);
            }
            let destination = format!("{pod}:50051");
            rule.extend(["-j", "DNAT", "--to-destination", &destination]);
            ns.exec(&rule);
        }
        ns
    }

    fn host(&self, args: &[&str]) {
        let status = Command::new(args[0])
            .args(&args[1..])
            .status()
            .expect("run setup command");
        assert!(status.success(), "{args:?} failed");
    }

    fn exec(&self, args: &[&str]) {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(args);
        self.host(&full);
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    fn start_pods(&self) -> Vec<Process> {
        PODS.iter()
            .enumerate()
            .map(|(i, ip)| {
                let mut command = self.command(support::grpclb_bin());
                command.args([
                    "serve",
                    "--listen",
                    &format!("{ip}:50051"),
                    "--name",
                    &format!("nat-pod-{}", i + 1),
                ]);
                spawn_until_line(command, "listening on", Duration::from_secs(20)).0
            })
            .collect()
    }

    fn bench(&self, args: &[&str]) -> std::process::Output {
        let mut command = self.command(support::grpclb_bin());
        command.arg("bench").args(args);
        run_bounded(&mut command, Duration::from_secs(90))
    }
}

impl Drop for ServiceNamespace {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Root, `ip` and `iptables`: what a namespace with kube-proxy's rules needs.
fn can_build_the_service_namespace() -> bool {
    support::require_root("kernel NAT in a network namespace")
        && support::require_tool("ip", "iproute2")
        && support::require_tool("iptables", "iptables")
}

fn pods_target() -> String {
    let list: Vec<String> = PODS.iter().map(|p| format!("{p}:50051")).collect();
    format!("ipv4:{}", list.join(","))
}

#[test]
fn one_connection_through_kernel_nat_pins_every_call_to_one_pod() {
    if !can_build_the_service_namespace() {
        return;
    }
    let ns = ServiceNamespace::create("pin");
    let _pods = ns.start_pods();
    let target = pods_target();
    let out = ns.bench(&[
        &target,
        "--mode",
        "both",
        "--clusterip-target",
        SERVICE,
        "-n",
        "900",
        "-c",
        "3",
        "-o",
        "json",
        "-q",
    ]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let doc = json(&out);
    let (clusterip, headless) = (&doc["runs"][0], &doc["runs"][1]);
    assert_accounted(clusterip);
    assert_accounted(headless);
    let served: Vec<_> = requests_by_name(clusterip)
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(
        served.len(),
        1,
        "ClusterIP pins the one connection to one pod: {served:?}"
    );
    assert_eq!(served[0].1, 900);
    assert_eq!(
        requests_by_name(clusterip).len(),
        3,
        "the idle pods still have rows"
    );
    for (name, n) in requests_by_name(headless) {
        assert!(n.abs_diff(300) <= 3, "headless {name} got {n}");
    }
    // As CI gates: clusterip alone fails --assert-even, headless passes.
    let out = ns.bench(&[
        &target,
        "--mode",
        "clusterip",
        "--clusterip-target",
        SERVICE,
        "-n",
        "300",
        "--assert-even",
        "-q",
    ]);
    assert_eq!(code(&out), 1, "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("got no calls"));
    let out = ns.bench(&[
        &target,
        "--mode",
        "headless",
        "-n",
        "300",
        "--assert-even",
        "-q",
    ]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn many_connections_through_kernel_nat_spread_by_connection() {
    if !can_build_the_service_namespace() {
        return;
    }
    let ns = ServiceNamespace::create("spread");
    let _pods = ns.start_pods();
    let out = ns.bench(&[
        SERVICE,
        "--mode",
        "clusterip",
        "--connections",
        "30",
        "-n",
        "1500",
        "-c",
        "6",
        "-o",
        "json",
        "-q",
    ]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let report = json(&out);
    assert_accounted(&report);
    let counts = requests_by_name(&report);
    // 30 connections each land on a random pod: all three are hit with
    // probability 1 - 3·(2/3)^30 ≈ 0.99998; calls follow their connection.
    assert_eq!(counts.len(), 3, "{counts:?}");
    for (name, n) in &counts {
        assert!(
            name.starts_with("nat-pod-"),
            "attributed by hostname header: {name}"
        );
        assert_eq!(
            n % 50,
            0,
            "each connection carries 1500/30 calls: {name} got {n}"
        );
    }
}
