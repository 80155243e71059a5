//! A stand-in for a ClusterIP Service on machines without root: a TCP
//! proxy that picks one backend at random per accepted connection and
//! then copies bytes both ways, so every call on that connection reaches
//! the same pod, exactly as with kube-proxy's NAT. Its backends can change
//! while it runs (pods added and removed); connections already open keep
//! their pod, as NAT's connection tracking does.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use rand::seq::IndexedRandom;
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The backends new connections go to, and where the latest one went.
#[derive(Debug, Default)]
struct Backends {
    current: Vec<SocketAddr>,
    last_pick: Option<SocketAddr>,
}

/// A running connection balancer; dropping it stops accepting.
pub struct ConnectionBalancer {
    pub address: SocketAddr,
    backends: Arc<RwLock<Backends>>,
    task: JoinHandle<()>,
}

impl Drop for ConnectionBalancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ConnectionBalancer {
    /// Listens on `listener` and forwards each connection to a random backend.
    pub fn start(
        listener: TcpListener,
        backends: Vec<SocketAddr>,
    ) -> std::io::Result<ConnectionBalancer> {
        let address = listener.local_addr()?;
        let backends = Arc::new(RwLock::new(Backends {
            current: backends,
            last_pick: None,
        }));
        let task = {
            let backends = Arc::clone(&backends);
            tokio::spawn(async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        // Out of file descriptors and the like: back off, do not spin.
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        continue;
                    };
                    let Some(backend) = pick(&backends) else {
                        continue;
                    };
                    tokio::spawn(forward(client, backend));
                }
            })
        };
        Ok(ConnectionBalancer {
            address,
            backends,
            task,
        })
    }

    /// Sends new connections to `backends` from now on (the Service's
    /// endpoints changed); open connections keep their pod.
    pub fn set_backends(&self, backends: Vec<SocketAddr>) {
        if let Ok(mut shared) = self.backends.write() {
            shared.current = backends;
        }
    }

    /// The backend the latest connection was sent to.
    pub fn last_pick(&self) -> Option<SocketAddr> {
        self.backends.read().ok().and_then(|b| b.last_pick)
    }
}

/// One backend at random, remembered as the latest pick.
fn pick(backends: &RwLock<Backends>) -> Option<SocketAddr> {
    let mut backends = backends.write().ok()?;
    let backend = backends.current.choose(&mut rand::rng()).copied()?;
    backends.last_pick = Some(backend);
    Some(backend)
}

/// Copies bytes between the client and the chosen backend until either closes.
async fn forward(mut client: TcpStream, backend: SocketAddr) {
    let Ok(mut upstream) = TcpStream::connect(backend).await else {
        // The client sees the connection close, as with a dead pod behind NAT.
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let _ = copy_bidirectional(&mut client, &mut upstream).await;
}
