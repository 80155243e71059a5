//! A stand-in for a ClusterIP Service on machines without root: a TCP
//! proxy that picks one backend at random per accepted connection and
//! then copies bytes both ways, so every call on that connection reaches
//! the same pod, exactly as with kube-proxy's NAT.

use std::net::SocketAddr;

use rand::seq::IndexedRandom;
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A running connection balancer; dropping it stops accepting.
pub struct ConnectionBalancer {
    pub address: SocketAddr,
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
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    // Out of file descriptors and the like: back off, do not spin.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                let Some(backend) = backends.choose(&mut rand::rng()).copied() else {
                    continue;
                };
                tokio::spawn(forward(client, backend));
            }
        });
        Ok(ConnectionBalancer { address, task })
    }
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
