//! Local backends that stand in for pods: `grpclb serve` in-process, one
//! per loopback address (127.0.0.11, .12, …), all on the same port when free.
//! A pod can be stopped gracefully (GOAWAY, calls finish) or killed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::resolve::Endpoint;
use crate::serve::{Identity, ServeError, ServeSettings, bind, serve_with};

/// The port pods try first (the usual gRPC port), before a free one.
const PREFERRED_PORT: u16 = 50051;

/// The longest a graceful stop waits for calls still running.
const STOP_LIMIT: Duration = Duration::from_secs(5);

/// One running pod.
pub struct Pod {
    /// `pod-N`, sent in every reply.
    pub name: String,
    pub address: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Pod {
    /// Starts pod `index` (0-based, named `pod-{index + 1}`) on its loopback
    /// address, on `port` (the other pods' port; `None`: the usual gRPC
    /// port) when free, else on a free port.
    pub async fn start(
        index: usize,
        port: Option<u16>,
        settings: ServeSettings,
    ) -> Result<Pod, ServeError> {
        let port = port.unwrap_or(PREFERRED_PORT);
        let listener = match bind(SocketAddr::new(pod_ip(index), port)).await {
            Ok(listener) => listener,
            Err(_) => bind(SocketAddr::new(pod_ip(index), 0)).await?,
        };
        Pod::serve(index, listener, settings)
    }

    fn serve(
        index: usize,
        listener: TcpListener,
        settings: ServeSettings,
    ) -> Result<Pod, ServeError> {
        let address = listener.local_addr().map_err(|source| ServeError::Bind {
            address: SocketAddr::new(pod_ip(index), 0),
            source,
        })?;
        let name = format!("pod-{}", index + 1);
        let identity = Identity::from_env(Some(name.clone()), address);
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            if let Err(err) = serve_with(listener, identity, settings, shutdown).await {
                eprintln!("grpclb demo: pod at {address} stopped: {err}");
            }
        });
        Ok(Pod {
            name,
            address,
            stop,
            task,
        })
    }

    /// How a resolver lists this pod.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            name: Some(self.name.clone()),
            ..Endpoint::new(self.address.to_string(), "demo")
        }
    }

    /// Stops gracefully: no new connections, GOAWAY on each open one, and
    /// the calls in flight finish (for at most a few seconds).
    pub async fn stop(self) {
        self.begin_stop();
        self.stopped().await;
    }

    /// Tells the pod to stop gracefully; [`Pod::stopped`] waits for it.
    fn begin_stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Waits until the pod has stopped (cut short after a few seconds).
    async fn stopped(mut self) {
        if tokio::time::timeout(STOP_LIMIT, &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }

    /// Dies at once, as a process killed with SIGKILL: the listener and
    /// every connection close without GOAWAY, calls in flight are lost.
    pub fn kill(self) {
        // Dropping the serving future drops the listener and the
        // connections' tasks with it.
        self.task.abort();
    }
}

/// Running local pods; stop them with [`DemoPods::stop`].
pub struct DemoPods {
    pub addresses: Vec<SocketAddr>,
    pods: Vec<Pod>,
}

impl DemoPods {
    /// Stops every pod, letting in-flight calls finish.
    pub async fn stop(self) {
        stop_all(self.pods).await;
    }
}

/// The loopback address of pod `index` (0-based): 127.0.0.11 + index.
pub fn pod_ip(index: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 11 + index as u8))
}

/// Starts `count` well-behaved pods named `pod-1` … `pod-N`.
pub async fn start_pods(count: usize) -> Result<DemoPods, ServeError> {
    let listeners = bind_pods(count).await?;
    let mut pods = Vec::with_capacity(count);
    for (index, listener) in listeners.into_iter().enumerate() {
        pods.push(Pod::serve(index, listener, ServeSettings::default())?);
    }
    Ok(DemoPods {
        addresses: pods.iter().map(|p| p.address).collect(),
        pods,
    })
}

/// Stops `pods` gracefully, all at once.
pub async fn stop_all(pods: Vec<Pod>) {
    for pod in &pods {
        pod.begin_stop();
    }
    for pod in pods {
        pod.stopped().await;
    }
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
