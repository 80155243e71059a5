//! A small local cluster for the scenarios: pods that come and go, the
//! ClusterIP stand-in over the listed ones, and the endpoint feed a
//! headless client resolves, kept in step as Kubernetes keeps a Service's
//! EndpointSlices and kube-proxy's rules in step.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::pods::{Pod, stop_all};
use super::proxy::ConnectionBalancer;
use crate::Failure;
use crate::resolve::{Endpoint, Resolution, Update};
use crate::serve::{ServeSettings, bind};

/// Where the ClusterIP stand-in listens, like a Service's virtual IP.
pub const SERVICE_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10));

/// Updates the feed holds while nobody reads it (a clusterip run):
/// more than any scenario sends.
const FEED_CAPACITY: usize = 64;

/// Pods, the Service over them, and the resolver's view of them.
pub struct Cluster {
    /// Pods serving, oldest first.
    running: Vec<Pod>,
    /// What the Service lists, oldest first: a killed pod stays listed
    /// (nothing has noticed yet), a removed one does not.
    listed: Vec<Endpoint>,
    /// Every pod started so far, for the next pod's name and address.
    started: usize,
    /// The port the pods share (the first pod's).
    port: Option<u16>,
    settings: ServeSettings,
    service: ConnectionBalancer,
    feed: mpsc::Sender<Update>,
    /// Graceful stops under way.
    stopping: Vec<JoinHandle<()>>,
}

impl Cluster {
    /// Starts `pods` pods with `settings` and the Service over them; the
    /// resolution lists them and follows every later change.
    pub async fn start(
        pods: usize,
        settings: ServeSettings,
    ) -> Result<(Cluster, Resolution), Failure> {
        let service = start_service(Vec::new()).await?;
        let (feed, updates) = mpsc::channel(FEED_CAPACITY);
        let mut cluster = Cluster {
            running: Vec::new(),
            listed: Vec::new(),
            started: 0,
            port: None,
            settings,
            service,
            feed,
            stopping: Vec::new(),
        };
        for _ in 0..pods {
            cluster.start_pod().await?;
        }
        cluster.service.set_backends(cluster.backends());
        let resolution = Resolution::from_channel("demo", cluster.listed.clone(), updates);
        Ok((cluster, resolution))
    }

    /// The Service's address (the stand-in's).
    pub fn service_address(&self) -> SocketAddr {
        self.service.address
    }

    /// The listed pods' addresses.
    pub fn addresses(&self) -> Vec<String> {
        self.listed.iter().map(|e| e.address.clone()).collect()
    }

    /// The names of the pods serving, oldest first.
    pub fn running(&self) -> Vec<String> {
        self.running.iter().map(|p| p.name.clone()).collect()
    }

    /// Starts `count` new pods and lists them together. Returns their
    /// names (those started before a failure, and the failure).
    pub async fn add(&mut self, count: usize) -> (Vec<String>, Option<Failure>) {
        let mut names = Vec::with_capacity(count);
        let mut failure = None;
        for _ in 0..count {
            match self.start_pod().await {
                Ok(name) => names.push(name),
                Err(err) => {
                    failure = Some(err);
                    break;
                }
            }
        }
        self.publish();
        (names, failure)
    }

    /// Takes `name` out of the Service and the resolver, then stops it
    /// gracefully after `grace_before_stop` (a preStop pause, so that
    /// clients hear of the removal before the pod says GOAWAY). Returns
    /// false when no such pod runs.
    pub fn remove(&mut self, name: &str, grace_before_stop: Duration) -> bool {
        let Some(at) = self.running.iter().position(|p| p.name == name) else {
            return false;
        };
        let pod = self.running.remove(at);
        let address = pod.address.to_string();
        self.listed.retain(|e| e.address != address);
        self.publish();
        self.stopping.push(tokio::spawn(async move {
            tokio::time::sleep(grace_before_stop).await;
            pod.stop().await;
        }));
        true
    }

    /// Kills `name` at once; it stays listed, as a pod whose death nothing
    /// has noticed yet. Returns false when no such pod runs.
    pub fn kill(&mut self, name: &str) -> bool {
        let Some(at) = self.running.iter().position(|p| p.name == name) else {
            return false;
        };
        self.running.remove(at).kill();
        true
    }

    /// The running pod the Service sent its latest connection to.
    pub fn pinned(&self) -> Option<String> {
        let address = self.service.last_pick()?;
        self.running
            .iter()
            .find(|p| p.address == address)
            .map(|p| p.name.clone())
    }

    /// Stops every pod gracefully and the Service.
    pub async fn stop(self) {
        drop(self.service);
        stop_all(self.running).await;
        for stopping in self.stopping {
            let _ = stopping.await;
        }
    }

    async fn start_pod(&mut self) -> Result<String, Failure> {
        let pod = Pod::start(self.started, self.port, self.settings.clone())
            .await
            .map_err(|e| Failure::CannotRun(format!("cannot start a demo pod: {e}")))?;
        self.started += 1;
        self.port.get_or_insert(pod.address.port());
        let name = pod.name.clone();
        self.listed.push(pod.endpoint());
        self.running.push(pod);
        Ok(name)
    }

    fn backends(&self) -> Vec<SocketAddr> {
        self.listed
            .iter()
            .filter_map(|e| e.address.parse().ok())
            .collect()
    }

    /// Tells the Service and the resolver what is listed now.
    fn publish(&self) {
        self.service.set_backends(self.backends());
        // Full only if nobody has read for a long while: the next update
        // carries the whole set anyway.
        let _ = self.feed.try_send(Update::Reset(self.listed.clone()));
    }
}

/// Starts the ClusterIP stand-in on the Service IP, on the usual gRPC port
/// when free.
pub async fn start_service(backends: Vec<SocketAddr>) -> Result<ConnectionBalancer, Failure> {
    let cannot = |e: &dyn std::fmt::Display| {
        Failure::CannotRun(format!("cannot start the ClusterIP stand-in: {e}"))
    };
    let listener = match bind(SocketAddr::new(SERVICE_IP, 50051)).await {
        Ok(listener) => listener,
        Err(_) => bind(SocketAddr::new(SERVICE_IP, 0))
            .await
            .map_err(|e| cannot(&e))?,
    };
    ConnectionBalancer::start(listener, backends).map_err(|e| cannot(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn next_set(resolution: &mut Resolution) -> Vec<String> {
        let update = tokio::time::timeout(Duration::from_secs(5), resolution.updates.recv()).await;
        match update {
            Ok(Some(Update::Reset(set))) => set.into_iter().map(|e| e.address).collect(),
            other => panic!("expected a set, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_resolver_follows_every_pod_added_and_removed_and_keeps_a_killed_one() {
        let (mut cluster, mut resolution) = Cluster::start(2, ServeSettings::default())
            .await
            .expect("cluster");
        assert_eq!(resolution.initial.len(), 2);
        let (added, failure) = cluster.add(1).await;
        assert!(failure.is_none(), "{failure:?}");
        assert_eq!(added, ["pod-3"]);
        assert_eq!(next_set(&mut resolution).await.len(), 3);

        let first = cluster.addresses()[0].clone();
        assert!(cluster.remove("pod-1", Duration::ZERO));
        let set = next_set(&mut resolution).await;
        assert_eq!(set.len(), 2);
        assert!(!set.contains(&first), "{set:?}");

        // Killed: gone at once, still listed until something notices.
        let killed: SocketAddr = cluster.addresses()[0].parse().expect("address");
        assert!(cluster.kill("pod-2"));
        assert_eq!(cluster.running(), ["pod-3"]);
        assert_eq!(cluster.addresses().len(), 2);
        let mut refused = false;
        for _ in 0..50 {
            if tokio::net::TcpStream::connect(killed).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(refused, "a killed pod stops listening");
        assert!(!cluster.kill("pod-2"), "no such pod any more");
        cluster.stop().await;
    }
}
