//! Local backends that stand in for pods: `grpclb serve` in-process, one
//! per loopback address (127.0.0.11, .12, …), all on the same port when free.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::serve::{Identity, ServeError, bind, serve};

/// The port pods try first (the usual gRPC port), before a free one.
const PREFERRED_PORT: u16 = 50051;

/// Running local pods; dropping this stops them.
pub struct DemoPods {
    pub addresses: Vec<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl DemoPods {
    /// Stops every pod, letting in-flight calls finish.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// The loopback address of pod `index` (0-based): 127.0.0.11 + index.
pub fn pod_ip(index: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 11 + index as u8))
}

/// Starts `count` pods named `pod-1` … `pod-N`.
pub async fn start_pods(count: usize) -> Result<DemoPods, ServeError> {
    let listeners = bind_pods(count).await?;
    let (stop, stopped) = watch::channel(false);
    let mut addresses = Vec::with_capacity(count);
    let mut tasks = Vec::with_capacity(count);
    for (index, listener) in listeners.into_iter().enumerate() {
        let address = listener.local_addr().map_err(|source| ServeError::Bind {
            address: SocketAddr::new(pod_ip(index), 0),
            source,
        })?;
        addresses.push(address);
        let identity = Identity::from_env(Some(format!("pod-{}", index + 1)), address);
        let mut stopped = stopped.clone();
        tasks.push(tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            if let Err(err) = serve(listener, identity, shutdown).await {
                eprintln!("grpclb demo: pod at {address} stopped: {err}");
            }
        }));
    }
    Ok(DemoPods {
        addresses,
        stop,
        tasks,
    })
}

/// Binds every pod on the preferred port, or all on one shared free port,
/// or failing that each on its own free port.
async fn bind_pods(count: usize) -> Result<Vec<TcpListener>, ServeError> {
    if let Ok(listeners) = bind_all(count, PREFERRED_PORT).await {
        return Ok(listeners);
    }
    let first = bind(SocketAddr::new(pod_ip(0), 0)).await?;
    let port = first.local_addr().map(|a| a.port()).unwrap_or(0);
    let mut listeners = vec![first];
    for index in 1..count {
        let listener = match bind(SocketAddr::new(pod_ip(index), port)).await {
            Ok(listener) => listener,
            Err(_) => bind(SocketAddr::new(pod_ip(index), 0)).await?,
        };
        listeners.push(listener);
    }
    Ok(listeners)
}

async fn bind_all(count: usize, port: u16) -> Result<Vec<TcpListener>, ServeError> {
    let mut listeners = Vec::with_capacity(count);
    for index in 0..count {
        listeners.push(bind(SocketAddr::new(pod_ip(index), port)).await?);
    }
    Ok(listeners)
}
