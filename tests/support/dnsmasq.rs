//! A real DNS server for tests: Debian's `dnsmasq` on loopback.
//!
//! Started on 127.0.0.1 on a free port with its own records file only
//! (`--no-resolv --no-hosts --addn-hosts`): it answers the names given and
//! NXDOMAIN for any other name under `.test`, and never forwards anywhere.
//! [`Dnsmasq::set_records`] rewrites the file and sends SIGHUP, on which
//! dnsmasq re-reads it, as a headless Service's records change when pods come
//! and go. The package is `dnsmasq-base`; the project's test script installs it.

#![allow(dead_code)]

use std::io::Write;
use std::net::UdpSocket;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether dnsmasq is installed; a test calls this first (see `support::can_run`).
pub fn available() -> bool {
    crate::support::require_tool("dnsmasq", "dnsmasq-base")
}

/// The TTL dnsmasq gives every record it serves.
pub const TTL: u32 = 30;

/// A running dnsmasq; killed when dropped.
pub struct Dnsmasq {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Dnsmasq {
    /// Starts dnsmasq answering `records` (`(ip, name)` pairs).
    pub fn start(records: &[(&str, &str)]) -> Dnsmasq {
        let binary = find_binary();
        let dir = tempfile::tempdir().expect("temporary directory");
        // dnsmasq started as root drops to `nobody`, which must still read the records.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod the directory");
        write_records(&dir.path().join("hosts"), records);
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let mut child = Command::new(&binary)
                .arg("--keep-in-foreground")
                .arg("--conf-file=/dev/null")
                .arg("--no-resolv")
                .arg("--no-hosts")
                .arg(format!(
                    "--addn-hosts={}",
                    dir.path().join("hosts").display()
                ))
                .arg("--listen-address=127.0.0.1")
                .arg("--bind-interfaces")
                .arg(format!("--port={port}"))
                .arg(format!(
                    "--pid-file={}",
                    dir.path().join("dnsmasq.pid").display()
                ))
                .arg(format!("--local-ttl={TTL}"))
                .arg("--local=/test/")
                .arg(format!(
                    "--log-facility={}",
                    dir.path().join("dnsmasq.log").display()
                ))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|err| panic!("could not start {}: {err}", binary.display()));
            if wait_until_answering(port, &mut child) {
                return Dnsmasq { child, port, dir };
            }
            let _ = child.kill();
            let _ = child.wait();
            last_log = std::fs::read_to_string(dir.path().join("dnsmasq.log")).unwrap_or_default();
        }
        panic!("dnsmasq did not start in 5 attempts; its log:\n{last_log}");
    }

    /// The server as `127.0.0.1:port`, for `dns://127.0.0.1:port/name:port`.
    pub fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Replaces the records and makes dnsmasq re-read them (SIGHUP).
    pub fn set_records(&self, records: &[(&str, &str)]) {
        write_records(&self.dir.path().join("hosts"), records);
        let status = Command::new("kill")
            .arg("-HUP")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill -HUP");
        assert!(status.success(), "kill -HUP {} failed", self.child.id());
    }

    /// What dnsmasq logged so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dnsmasq.log")).unwrap_or_default()
    }
}

fn find_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("dnsmasq"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain(["/usr/sbin/dnsmasq", "/sbin/dnsmasq"].map(PathBuf::from))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "dnsmasq is not installed; the DNS tests need a real DNS server. \
                 Run the project's test script (scripts/test.sh), or: apt-get install -y dnsmasq-base"
            )
        })
}

fn write_records(path: &Path, records: &[(&str, &str)]) {
    let mut text = String::new();
    for (ip, name) in records {
        text.push_str(&format!("{ip} {name}\n"));
    }
    // Write a new file and rename it over the old one, so dnsmasq never reads half of it.
    let temporary = path.with_extension("new");
    let mut file = std::fs::File::create(&temporary).expect("create the records file");
    file.write_all(text.as_bytes()).expect("write the records");
    file.sync_all().expect("sync the records");
    std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o644))
        .expect("chmod the records");
    std::fs::rename(&temporary, path).expect("replace the records file");
}

/// A loopback port free for UDP and TCP at the moment of asking.
fn free_port() -> u16 {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port");
        let port = udp.local_addr().expect("local address").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port for both UDP and TCP in 50 tries");
}

/// Polls with a DNS query until dnsmasq answers (true) or exits / 5 s pass.
fn wait_until_answering(port: u16, child: &mut Child) -> bool {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("set a read timeout");
    // A query for `ready.test`, type A, class IN, id 0x6272.
    let mut query = vec![0x62, 0x72, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in ["ready", "test"] {
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buffer = [0u8; 512];
    while Instant::now() < deadline {
        if let Ok(Some(_exit)) = child.try_wait() {
            return false;
        }
        if socket.send_to(&query, ("127.0.0.1", port)).is_ok()
            && let Ok((n, _)) = socket.recv_from(&mut buffer)
            && n >= 2
            && buffer[..2] == query[..2]
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
