//! A ClusterIP Service through the Linux kernel's own NAT: a network
//! namespace this module creates, with the Service IP on its loopback and
//! kube-proxy's rules (`-m statistic --mode random` DNAT, the i-th of n
//! rules matching with probability 1/(n-i)), whose pods can change while a
//! run goes on: [`ServiceNamespace::set_pods`] rewrites the chain in one
//! `iptables-restore --noflush` transaction, as kube-proxy itself does, so
//! no connection ever meets a half-written chain. Needs root; the namespace
//! is deleted on drop.

#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{self, Process, run_bounded, spawn_until_line};

/// The Service IP inside the namespace.
pub const SERVICE_IP: &str = "10.96.0.10";

/// The Service port, which is also every pod's port.
pub const PORT: u16 = 50051;

/// kube-proxy's per-Service chain.
const CHAIN: &str = "KUBE-SVC-ECHO";

/// Root, `ip` and `iptables`: what the namespace needs. In CI a missing
/// one fails the test (see `support::can_run`).
pub fn available() -> bool {
    support::require_root("kernel NAT in a network namespace")
        && support::require_tool("ip", "iproute2")
        && support::require_tool("iptables", "iptables")
        && support::require_tool("iptables-restore", "iptables")
}

/// A namespace with a Service in front of pods on its loopback.
pub struct ServiceNamespace {
    pub name: String,
}

impl ServiceNamespace {
    /// Creates the namespace with the Service routed to `pods` (IPs on 127.0.0.0/8).
    pub fn create(tag: &str, pods: &[&str]) -> ServiceNamespace {
        let ns = ServiceNamespace {
            name: format!("grpclb-{tag}-{}", std::process::id()),
        };
        ns.host(&["ip", "netns", "add", &ns.name]);
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns.exec(&[
            "ip",
            "addr",
            "add",
            &format!("{SERVICE_IP}/32"),
            "dev",
            "lo",
        ]);
        // DNAT from a Service IP to 127.0.0.x needs loopback routing of non-loopback sources.
        ns.exec(&["sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1"]);
        ns.exec(&["iptables", "-t", "nat", "-N", CHAIN]);
        let port = PORT.to_string();
        ns.exec(&[
            "iptables",
            "-t",
            "nat",
            "-A",
            "OUTPUT",
            "-d",
            &format!("{SERVICE_IP}/32"),
            "-p",
            "tcp",
            "--dport",
            &port,
            "-j",
            CHAIN,
        ]);
        ns.set_pods(pods);
        ns
    }

    /// `SERVICE_IP:PORT`, the address a ClusterIP client dials.
    pub fn service(&self) -> String {
        format!("{SERVICE_IP}:{PORT}")
    }

    /// Replaces the Service's pods in one transaction. Connections already
    /// open keep their pod (conntrack); new ones are spread over `pods`.
    pub fn set_pods(&self, pods: &[&str]) {
        let mut rules = format!("*nat\n:{CHAIN} - [0:0]\n");
        for (i, pod) in pods.iter().enumerate() {
            let statistic = if i + 1 < pods.len() {
                format!(
                    "-m statistic --mode random --probability {:.5} ",
                    1.0 / (pods.len() - i) as f64
                )
            } else {
                String::new()
            };
            rules.push_str(&format!(
                "-A {CHAIN} -p tcp {statistic}-j DNAT --to-destination {pod}:{PORT}\n"
            ));
        }
        rules.push_str("COMMIT\n");
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name, "iptables-restore", "--noflush"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run iptables-restore");
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(rules.as_bytes())
                .expect("write the rules to iptables-restore");
        }
        let output = child.wait_with_output().expect("wait for iptables-restore");
        assert!(
            output.status.success(),
            "iptables-restore failed: {}\nrules:\n{rules}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Starts `grpclb serve` on `ip:PORT` inside the namespace, named `name`.
    pub fn serve(&self, ip: &str, name: &str, flags: &[&str]) -> Process {
        let mut command = self.command(support::grpclb_bin());
        command.args(["serve", "--listen", &format!("{ip}:{PORT}"), "--name", name]);
        command.args(flags);
        spawn_until_line(command, "listening on", Duration::from_secs(20)).0
    }

    /// `program` run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    /// Runs `grpclb ARGS…` inside the namespace to completion, killed after `limit`.
    pub fn grpclb(&self, args: &[&str], limit: Duration) -> std::process::Output {
        let mut command = self.command(support::grpclb_bin());
        command.args(args);
        run_bounded(&mut command, limit)
    }

    fn host(&self, args: &[&str]) {
        let status = Command::new(args[0])
            .args(&args[1..])
            .status()
            .expect("run a setup command");
        assert!(status.success(), "{args:?} failed");
    }

    fn exec(&self, args: &[&str]) {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(args);
        self.host(&full);
    }
}

impl Drop for ServiceNamespace {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}
