//! Resolvers: turn a [`Target`] into a stream of endpoint sets.
//!
//! Every source (static list, Kubernetes EndpointSlices, DNS, etcd) speaks
//! the same small vocabulary, [`Update`]: *the set is now this* or a typed
//! [`Notice`] of something that happened without changing the set.
//! Sources publish a set only when it differs from the last one they sent;
//! consumers (the pool, `grpclb resolve --watch`) turn consecutive sets into
//! changes with [`diff`].

mod dns;
mod etcd;
mod kubernetes;
mod static_list;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::target::Target;

/// One endpoint a target resolves to, with what its source knows about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    /// `ip:port`, `[ipv6]:port` or `host:port`: what the pool dials.
    pub address: String,
    /// The pod (or server) name when the source knows it.
    pub name: Option<String>,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    pub node: Option<String>,
    pub zone: Option<String>,
    /// Where the source found it: slice name, DNS record, etcd key, "static".
    pub origin: String,
    /// Seconds the record stays valid, when the source says (DNS TTL, etcd lease TTL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_s: Option<i64>,
    /// The etcd lease the key is attached to, if any. JSON carries it as a
    /// hex string, as etcdctl prints it: the IDs exceed 2^53, so a number
    /// would lose digits in jq and JavaScript.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_lease"
    )]
    pub lease: Option<i64>,
}

/// An etcd lease ID as etcdctl and the registration log print it: hex.
pub fn lease_hex(lease: i64) -> String {
    format!("{lease:x}")
}

fn serialize_lease<S: serde::Serializer>(lease: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match lease {
        Some(id) => s.serialize_str(&lease_hex(*id)),
        None => s.serialize_none(),
    }
}

impl Endpoint {
    /// A ready endpoint with nothing known but its address and origin.
    pub fn new(address: impl Into<String>, origin: impl Into<String>) -> Endpoint {
        Endpoint {
            address: address.into(),
            name: None,
            ready: true,
            serving: true,
            terminating: false,
            node: None,
            zone: None,
            origin: origin.into(),
            ttl_s: None,
            lease: None,
        }
    }

    /// The name to show: the pod name when known, else the address.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.address)
    }

    /// True when calls may be balanced onto this endpoint.
    pub fn balanced_onto(&self, include_terminating: bool) -> bool {
        self.ready || (include_terminating && self.serving && self.terminating)
    }
}

/// What a source reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// The complete set of endpoints now (replaces the previous set).
    Reset(Vec<Endpoint>),
    /// An event worth reporting that did not change the set by itself.
    Notice(Notice),
}

/// What a source reports besides sets, by kind, so that consumers can react
/// to each; `Display` gives the sentence shown to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A registry entry was left out of the set, and why (an etcd key whose
    /// value is no usable address).
    Skipped { key: String, reason: String },
    /// The set has nothing ready to balance onto, and why (no records, no
    /// pods match, none ready, NXDOMAIN).
    NothingReady(String),
    /// The source cannot reach its backend or read from it (a lost watch, a
    /// failed refresh); it keeps the last set and retries.
    SourceError(String),
    /// The source is back after an outage.
    Reconnected(String),
    /// The source read its whole set again (an expired watch, a compacted
    /// revision).
    Relisted(String),
    /// The source stopped for good; the last set stays in force.
    Stopped(String),
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::Skipped { key, reason } => write!(f, "etcd key {key} skipped: {reason}"),
            Notice::NothingReady(message)
            | Notice::SourceError(message)
            | Notice::Reconnected(message)
            | Notice::Relisted(message)
            | Notice::Stopped(message) => f.write_str(message),
        }
    }
}

/// Why a target could not be resolved. Every message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The target form is valid but this build cannot resolve it (exit 2).
    #[error("{0}")]
    Unsupported(String),
    /// Resolution ran and failed: not found, forbidden, unreachable (exit 3).
    #[error("{0}")]
    Failed(String),
}

/// Settings shared by every source.
#[derive(Debug, Clone)]
pub struct ResolveOptions {
    /// How often DNS answers are re-resolved.
    pub dns_refresh: Duration,
    /// Balance onto terminating endpoints that still serve.
    pub include_terminating: bool,
    /// Kubernetes: the kubeconfig to read instead of `KUBECONFIG` / `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// Kubernetes: the kubeconfig context to use instead of its current context.
    pub kube_context: Option<String>,
    /// Kubernetes: the cluster's DNS domain, for the Service name clusterip mode dials.
    pub cluster_domain: String,
    /// How to reach etcd (credentials, TLS, reconnect backoff).
    pub etcd: crate::etcd::EtcdOptions,
    /// The longest wait for the first set (or the Service's address): a
    /// source that never answers fails the run instead of hanging it.
    pub first_set_timeout: Duration,
}

/// How long the first set may take by default (`--resolve-timeout`).
pub const DEFAULT_FIRST_SET_TIMEOUT: Duration = Duration::from_secs(30);

/// The DNS domain of most clusters (kubelet's `--cluster-domain` default).
pub const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";

impl Default for ResolveOptions {
    fn default() -> Self {
        ResolveOptions {
            dns_refresh: Duration::from_secs(5),
            include_terminating: false,
            kubeconfig: None,
            kube_context: None,
            cluster_domain: DEFAULT_CLUSTER_DOMAIN.to_string(),
            etcd: crate::etcd::EtcdOptions::default(),
            first_set_timeout: DEFAULT_FIRST_SET_TIMEOUT,
        }
    }
}

/// A running resolution: the first set, and every update after it.
pub struct Resolution {
    /// The source's short name: "static", "kubernetes", "dns", "etcd".
    pub source: &'static str,
    /// The first complete set.
    pub initial: Vec<Endpoint>,
    /// Later updates; closes when the source ends (a static list at once).
    pub updates: mpsc::Receiver<Update>,
    task: JoinHandle<()>,
}

impl Resolution {
    /// A resolution whose updates come from `updates`, driven by the caller
    /// (the demo's scenarios add and remove pods without a registry).
    pub fn from_channel(
        source: &'static str,
        initial: Vec<Endpoint>,
        updates: mpsc::Receiver<Update>,
    ) -> Resolution {
        Resolution {
            source,
            initial,
            updates,
            // Nothing runs in the background: the caller owns the sender.
            task: tokio::spawn(async {}),
        }
    }
}

impl Drop for Resolution {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The sending half handed to a source.
#[derive(Clone)]
pub struct UpdateSender {
    tx: mpsc::Sender<Result<Update, ResolveError>>,
}

impl UpdateSender {
    /// Sends the complete current set. Returns false once nobody listens.
    pub async fn reset(&self, endpoints: Vec<Endpoint>) -> bool {
        self.tx.send(Ok(Update::Reset(endpoints))).await.is_ok()
    }

    /// Reports an event that does not change the set. Returns false once nobody listens.
    pub async fn notice(&self, notice: Notice) -> bool {
        self.tx.send(Ok(Update::Notice(notice))).await.is_ok()
    }

    /// Completes once nobody listens any more, so that a source waiting on
    /// its network (a reconnect backoff) can stop at once.
    pub async fn closed(&self) {
        self.tx.closed().await
    }
}

/// Runs a source in the background and waits for its first set.
///
/// The source sends sets and notices through the [`UpdateSender`]; an error
/// it returns before its first set becomes this function's error, one after
/// it becomes a final notice (the last set stays in force).
pub async fn spawn_source<F, Fut>(source: &'static str, run: F) -> Result<Resolution, ResolveError>
where
    F: FnOnce(UpdateSender) -> Fut,
    Fut: Future<Output = Result<(), ResolveError>> + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel(64);
    let sender = UpdateSender { tx: tx.clone() };
    let fut = run(sender);
    let task = tokio::spawn(async move {
        if let Err(err) = fut.await {
            let _ = tx.send(Err(err)).await;
        }
    });
    // Notices before the first set are kept and delivered after it.
    let mut early_notices = Vec::new();
    let initial = loop {
        match rx.recv().await {
            Some(Ok(Update::Reset(set))) => break set,
            Some(Ok(notice @ Update::Notice(_))) => early_notices.push(notice),
            Some(Err(err)) => return Err(err),
            None => {
                return Err(ResolveError::Failed(format!(
                    "the {source} resolver stopped before producing any endpoints"
                )));
            }
        }
    };
    let (out_tx, out_rx) = mpsc::channel(64);
    let forward = tokio::spawn(async move {
        for notice in early_notices {
            if out_tx.send(notice).await.is_err() {
                return;
            }
        }
        while let Some(item) = rx.recv().await {
            let update = match item {
                Ok(update) => update,
                Err(err) => Update::Notice(Notice::Stopped(format!(
                    "{source} resolver stopped: {err}; keeping the last set"
                ))),
            };
            if out_tx.send(update).await.is_err() {
                break;
            }
        }
        task.abort();
    });
    Ok(Resolution {
        source,
        initial,
        updates: out_rx,
        task: forward,
    })
}

/// Starts resolving `target`: waits for the first set, at most
/// `options.first_set_timeout`, saying on stderr what it waits for when the
/// source is slow to answer.
pub async fn start(target: &Target, options: &ResolveOptions) -> Result<Resolution, ResolveError> {
    bounded(
        target,
        options.first_set_timeout,
        start_source(target, options),
    )
    .await
}

/// After this long without an answer, say what is being waited for.
const SLOW_ANSWER: Duration = Duration::from_secs(2);

/// Runs `work` (a first resolution or look-up for `target`) for at most
/// `limit`, with a word on stderr once it is slow, so that a server that
/// accepts connections and never answers cannot hang a run.
async fn bounded<T>(
    target: &Target,
    limit: Duration,
    work: impl Future<Output = Result<T, ResolveError>>,
) -> Result<T, ResolveError> {
    let waiting_for = match target {
        Target::Kubernetes { .. } => "the Kubernetes API server",
        Target::Etcd { .. } => "etcd",
        Target::Dns { .. } | Target::HostPort { .. } => "the DNS server",
        Target::Static { .. } => "the static list",
    };
    let work = tokio::time::timeout(limit, work);
    tokio::pin!(work);
    let answered = tokio::select! {
        answered = &mut work => answered,
        () = tokio::time::sleep(SLOW_ANSWER.min(limit)) => {
            eprintln!(
                "grpclb: waiting for {waiting_for} to answer for {target} (giving up after {}; --resolve-timeout sets it)",
                humantime::format_duration(limit)
            );
            work.await
        }
    };
    answered.unwrap_or_else(|_| {
        Err(ResolveError::Failed(format!(
            "{waiting_for} did not answer for {target} within {}: it accepts connections but sends nothing back, \
             or is overloaded; check the address (and proxies), or allow longer with --resolve-timeout",
            humantime::format_duration(limit)
        )))
    })
}

async fn start_source(
    target: &Target,
    options: &ResolveOptions,
) -> Result<Resolution, ResolveError> {
    match target {
        Target::Static { addresses } => static_list::start(addresses.clone()).await,
        // An IP is one endpoint; a name resolves through DNS, as gRPC's
        // default `dns:` scheme does (a headless Service name gives every pod).
        Target::HostPort { host, port } if host.parse::<std::net::IpAddr>().is_ok() => {
            static_list::start(vec![crate::target::join_host_port(host, *port)]).await
        }
        Target::HostPort { host, port } => dns::start(None, host, *port, options).await,
        Target::Kubernetes {
            namespace,
            service,
            port,
        } => kubernetes::start(namespace, service, port.clone(), options).await,
        Target::Dns { server, host, port } => {
            dns::start(server.as_deref(), host, *port, options).await
        }
        Target::Etcd { endpoints, prefix } => etcd::start(endpoints, prefix, &options.etcd).await,
    }
}

/// The address an ordinary client dials for `target`'s Service: for a
/// Kubernetes target, `svc.ns.svc.<cluster domain>:port` with the Service's port
/// number (looked up when the target names the port); the one address of
/// any other single-address target.
pub async fn service_address(
    target: &Target,
    options: &ResolveOptions,
) -> Result<String, ResolveError> {
    bounded(target, options.first_set_timeout, async {
        service_address_of(target, options).await
    })
    .await
}

async fn service_address_of(
    target: &Target,
    options: &ResolveOptions,
) -> Result<String, ResolveError> {
    match target {
        Target::Kubernetes {
            namespace,
            service,
            port,
        } => kubernetes::service_address(namespace, service, port.clone(), options).await,
        other => other.single_address().ok_or_else(|| {
            ResolveError::Unsupported(format!(
                "{other} has no single Service address to dial; give one with --clusterip-target host:port"
            ))
        }),
    }
}

/// How one endpoint changed between two sets.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", content = "endpoint", rename_all = "lowercase")]
pub enum Change {
    Added(Endpoint),
    Removed(Endpoint),
    /// Same address, different conditions or metadata.
    Changed(Endpoint),
}

/// The changes that turn `old` into `new`, keyed by address, in `new`'s order
/// (removals last).
pub fn diff(old: &[Endpoint], new: &[Endpoint]) -> Vec<Change> {
    let mut changes = Vec::new();
    for endpoint in new {
        match old.iter().find(|o| o.address == endpoint.address) {
            None => changes.push(Change::Added(endpoint.clone())),
            Some(previous) if !same_except_ttl(previous, endpoint) => {
                changes.push(Change::Changed(endpoint.clone()))
            }
            Some(_) => {}
        }
    }
    for endpoint in old {
        if !new.iter().any(|n| n.address == endpoint.address) {
            changes.push(Change::Removed(endpoint.clone()));
        }
    }
    changes
}

/// A TTL counting down is not a change worth reporting.
fn same_except_ttl(a: &Endpoint, b: &Endpoint) -> bool {
    Endpoint {
        ttl_s: None,
        ..a.clone()
    } == Endpoint {
        ttl_s: None,
        ..b.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_ids_are_hex_strings_in_json() {
        // Above 2^53: as a JSON number, jq would round it.
        let lease = 7587899065911235335_i64;
        let endpoint = Endpoint {
            lease: Some(lease),
            ..Endpoint::new("10.0.0.1:80", "/grpclb/echo/10.0.0.1:80")
        };
        let json = serde_json::to_value(&endpoint).unwrap();
        assert_eq!(json["lease"], "694da1ff7f285307");
        assert_eq!(lease_hex(lease), "694da1ff7f285307");
        let without = serde_json::to_value(Endpoint::new("10.0.0.1:80", "x")).unwrap();
        assert!(without.get("lease").is_none());
    }

    #[test]
    fn diff_reports_added_changed_removed() {
        let a = Endpoint::new("10.0.0.1:80", "s1");
        let b = Endpoint::new("10.0.0.2:80", "s1");
        let c = Endpoint::new("10.0.0.3:80", "s2");
        let b_unready = Endpoint {
            ready: false,
            ..b.clone()
        };
        let changes = diff(&[a.clone(), b.clone()], &[b_unready.clone(), c.clone()]);
        assert_eq!(
            changes,
            vec![
                Change::Changed(b_unready),
                Change::Added(c),
                Change::Removed(a)
            ]
        );
    }

    #[test]
    fn ttl_countdown_is_not_a_change() {
        let a = Endpoint {
            ttl_s: Some(10),
            ..Endpoint::new("10.0.0.1:80", "k")
        };
        let a_later = Endpoint {
            ttl_s: Some(4),
            ..a.clone()
        };
        assert!(diff(&[a], &[a_later]).is_empty());
    }

    #[tokio::test]
    async fn error_before_first_set_is_returned() {
        let result = spawn_source("test", |_tx| async {
            Err(ResolveError::Failed("nope".into()))
        })
        .await;
        assert!(matches!(result, Err(ResolveError::Failed(m)) if m == "nope"));
    }

    #[tokio::test]
    async fn error_after_first_set_becomes_a_notice() {
        let mut resolution = spawn_source("test", |tx| async move {
            tx.reset(vec![Endpoint::new("10.0.0.1:80", "x")]).await;
            Err(ResolveError::Failed("lost".into()))
        })
        .await
        .expect("first set");
        assert_eq!(resolution.initial.len(), 1);
        match resolution.updates.recv().await {
            Some(Update::Notice(Notice::Stopped(n))) => assert!(n.contains("lost"), "{n}"),
            other => panic!("expected a notice, got {other:?}"),
        }
    }
}
