//! A real etcd for tests: Debian's `etcd` binary on loopback, on free ports,
//! with a temporary data dir, optionally serving TLS with client
//! certificates. It can be stopped and started again on the same ports and
//! data, and is killed when dropped.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's `etcd-server` package puts the server.
const ETCD_BIN: &str = "/usr/bin/etcd";

/// How long etcd may take to become healthy.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether etcd is installed; a test calls this first (see `support::can_run`).
pub fn available() -> bool {
    crate::support::can_run((!Path::new(ETCD_BIN).exists()).then(|| {
        format!("{ETCD_BIN} is missing (Debian package etcd-server; scripts/test.sh installs it)")
    }))
}

/// Certificates for a TLS etcd, made with `openssl` for 127.0.0.1.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

/// One etcd member on 127.0.0.1.
pub struct EtcdServer {
    client_port: u16,
    peer_port: u16,
    /// Plain-HTTP `/health` (etcd's metrics listener), also when clients use TLS.
    metrics_port: u16,
    tls: Option<TlsFiles>,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl EtcdServer {
    /// Starts etcd and waits until it answers `/health`.
    pub fn start() -> EtcdServer {
        EtcdServer::start_with(false)
    }

    /// Starts etcd serving clients over TLS and requiring a client certificate.
    pub fn start_tls() -> EtcdServer {
        EtcdServer::start_with(true)
    }

    fn start_with(tls: bool) -> EtcdServer {
        assert!(
            Path::new(ETCD_BIN).exists(),
            "{ETCD_BIN} is missing: install Debian's etcd-server package (scripts/test.sh installs it when missing)"
        );
        let dir = tempfile::Builder::new()
            .prefix("grpclb-etcd-")
            .tempdir()
            .expect("temp dir for etcd");
        let tls = tls.then(|| make_certs(dir.path()));
        let mut server = EtcdServer {
            client_port: free_port(),
            peer_port: free_port(),
            metrics_port: free_port(),
            tls,
            dir,
            child: None,
        };
        server.spawn();
        server
    }

    /// The certificates, when started with TLS.
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// `127.0.0.1:port` of the client endpoint.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// The target for a prefix on this server, as `etcd://127.0.0.1:port/prefix`.
    pub fn target(&self, prefix: &str) -> String {
        format!("etcd://{}{prefix}", self.endpoint())
    }

    /// Kills etcd (SIGKILL: its data is fsynced per write) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts etcd again on the same ports and data dir and waits until healthy.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// etcd's own log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("etcd log file");
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let client_url = format!("{scheme}://127.0.0.1:{}", self.client_port);
        let peer_url = format!("http://127.0.0.1:{}", self.peer_port);
        let mut command = Command::new(ETCD_BIN);
        if let Some(tls) = &self.tls {
            command
                .arg(format!("--cert-file={}", tls.server_cert.display()))
                .arg(format!("--key-file={}", tls.server_key.display()))
                .arg(format!("--trusted-ca-file={}", tls.ca.display()))
                .arg("--client-cert-auth");
        }
        let child = command
            .arg("--name=grpclb-test")
            .arg(format!(
                "--data-dir={}",
                self.dir.path().join("data").display()
            ))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=grpclb-test={peer_url}"))
            .arg(format!(
                "--listen-metrics-urls=http://127.0.0.1:{}",
                self.metrics_port
            ))
            .arg("--log-outputs=stderr")
            .env_remove("ETCDCTL_ENDPOINTS")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("etcd log file"))
            .stderr(log)
            .spawn()
            .expect("start /usr/bin/etcd");
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "etcd exited with {status} while starting; its log:\n{}",
                    self.log()
                );
            }
            if healthy(self.metrics_port) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "etcd did not become healthy within {START_TIMEOUT:?}; its log:\n{}",
            self.log()
        );
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// True when etcd's `/health` says so.
fn healthy(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.contains("\"health\":\"true\"")
}

/// Makes a CA, a server certificate for 127.0.0.1 and a client certificate
/// in `dir` with the `openssl` command (Debian package `openssl`).
fn make_certs(dir: &Path) -> TlsFiles {
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl (Debian package openssl)");
        assert!(
            output.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let new_key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=grpclb-test-ca"];
    ca.extend(new_key);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(&ca);
    let extensions = "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
                      keyUsage=digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n";
    std::fs::write(dir.join("leaf.ext"), extensions).expect("write certificate extensions");
    for (name, subject) in [("server", "/CN=127.0.0.1"), ("client", "/CN=root")] {
        let (key, csr, pem) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        let mut request = vec!["req", "-subj", subject];
        request.extend(new_key);
        request.extend(["-keyout", &key, "-out", &csr]);
        openssl(&request);
        openssl(&[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-extfile",
            "leaf.ext",
        ]);
    }
    TlsFiles {
        ca: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
        client_cert: dir.join("client.pem"),
        client_key: dir.join("client.key"),
    }
}
