//! An in-test Kubernetes API server on loopback HTTP.
//!
//! No real API server can run on a test machine, so this one speaks just
//! enough of the real protocol, with `k8s-openapi` types, for kube's client
//! and watcher: lists carry a resourceVersion (and paginate with
//! `limit`/`continue`); watches stream ADDED / MODIFIED / DELETED / BOOKMARK
//! events from a resourceVersion; a watch from a compacted (expired)
//! resourceVersion is answered as the real server answers it, HTTP 200 and
//! then an ERROR event carrying a 410 `Status`; 401, 403 and 404 come back
//! as `Status` objects; and a slice without endpoints serializes
//! `endpoints: null`, as the real server does.
//!
//! Tests change the cluster through [`FakeApi`]'s methods and point kube at
//! it through [`FakeApi::kubeconfig`].

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{ObjectReference, Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The bearer token the kubeconfig carries and the server requires.
pub const TOKEN: &str = "grpclb-test-token";

/// The identity the server names in its 403 messages.
pub const DENIED_USER: &str = "system:serviceaccount:ci:runner";

/// A running fake API server; stops when dropped.
pub struct FakeApi {
    state: Arc<Mutex<State>>,
    address: SocketAddr,
    dir: tempfile::TempDir,
    server: JoinHandle<()>,
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[derive(Default)]
struct State {
    /// The cluster's resourceVersion: bumped by every change.
    rv: u64,
    /// Watches from a resourceVersion below this get 410 Gone.
    compacted: u64,
    slices: BTreeMap<(String, String), EndpointSlice>,
    services: BTreeMap<(String, String), Service>,
    /// Every slice change: (resourceVersion, namespace, event type, object).
    history: Vec<(u64, String, &'static str, EndpointSlice)>,
    watchers: Vec<Watcher>,
    forbid_slices: bool,
    forbid_services: bool,
    /// This server's own address: CONNECT tunnels lead back here.
    address: Option<SocketAddr>,
    /// Every request, as `METHOD path?query`, for assertions.
    requests: Vec<String>,
}

struct Watcher {
    namespace: String,
    selector: Option<(String, String)>,
    bookmarks: bool,
    tx: mpsc::UnboundedSender<Bytes>,
}

impl FakeApi {
    /// Starts a server on a free loopback port with an empty cluster.
    pub async fn start() -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let address = listener.local_addr().expect("local address");
        let state = Arc::new(Mutex::new(State {
            rv: 1,
            address: Some(address),
            ..State::default()
        }));
        let serving = state.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = serving.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(handle(&state, request)) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        let dir = tempfile::tempdir().expect("temporary directory");
        let api = FakeApi {
            state,
            address,
            dir,
            server,
        };
        api.write_kubeconfig("kubeconfig", "fake");
        api
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// A kubeconfig whose current context ("fake") points at this server;
    /// a second context, "elsewhere", points at a closed port.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// Writes a kubeconfig like [`FakeApi::kubeconfig`] with another current
    /// context, and returns its path.
    pub fn write_kubeconfig(&self, file: &str, current_context: &str) -> PathBuf {
        self.write_kubeconfig_for(file, &self.url(), current_context)
    }

    /// Writes a kubeconfig whose "fake" cluster is `server` (for example a
    /// name only a proxy can reach), and returns its path.
    pub fn write_kubeconfig_for(&self, file: &str, server: &str, current_context: &str) -> PathBuf {
        let text = format!(
            "apiVersion: v1\n\
             kind: Config\n\
             clusters:\n\
             - name: fake\n  cluster:\n    server: {server}\n\
             - name: elsewhere\n  cluster:\n    server: http://127.0.0.1:9\n\
             users:\n\
             - name: tester\n  user:\n    token: {TOKEN}\n\
             contexts:\n\
             - name: fake\n  context:\n    cluster: fake\n    user: tester\n    namespace: default\n\
             - name: elsewhere\n  context:\n    cluster: elsewhere\n    user: tester\n\
             current-context: {current_context}\n"
        );
        let path = self.dir.path().join(file);
        std::fs::write(&path, text).expect("write the kubeconfig");
        path
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Creates or replaces a Service.
    pub fn put_service(&self, namespace: &str, name: &str, ports: &[(&str, i32)]) {
        let service = Service {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(namespace.into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                ports: Some(
                    ports
                        .iter()
                        .map(|(port_name, port)| ServicePort {
                            name: (!port_name.is_empty()).then(|| port_name.to_string()),
                            port: *port,
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut state = self.lock();
        state.rv += 1;
        state
            .services
            .insert((namespace.into(), name.into()), service);
    }

    /// Creates (ADDED) or replaces (MODIFIED) a slice and tells the watchers.
    pub fn put_slice(&self, namespace: &str, slice: EndpointSlice) {
        let mut state = self.lock();
        let key = (
            namespace.to_string(),
            slice.metadata.name.clone().unwrap_or_default(),
        );
        let kind = if state.slices.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        state.record(namespace, kind, slice);
    }

    /// Deletes a slice (DELETED) and tells the watchers. Returns true if it existed.
    pub fn delete_slice(&self, namespace: &str, name: &str) -> bool {
        let mut state = self.lock();
        match state
            .slices
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
        {
            Some(slice) => {
                state.record(namespace, "DELETED", slice);
                true
            }
            None => false,
        }
    }

    /// Sends a BOOKMARK at the current resourceVersion to every watch that asked for them.
    pub fn bookmark(&self) {
        let mut state = self.lock();
        let line = event_line(
            "BOOKMARK",
            json!({
                "kind": "EndpointSlice",
                "apiVersion": "discovery.k8s.io/v1",
                "metadata": {"resourceVersion": state.rv.to_string()},
            }),
        );
        state
            .watchers
            .retain(|w| !w.bookmarks || w.tx.send(line.clone()).is_ok());
    }

    /// Simulates the watch cache dropping history while clients were away:
    /// applies `change` without telling anyone, compacts every resourceVersion
    /// seen so far, and closes every open watch. Clients that re-watch from
    /// their last resourceVersion get 410 Gone and must relist to see `change`.
    pub fn expire_watches(&self, change: impl FnOnce(&mut SilentChanges<'_>)) {
        let mut state = self.lock();
        {
            let mut silent = SilentChanges { state: &mut state };
            change(&mut silent);
        }
        state.rv += 1;
        state.compacted = state.rv;
        state.watchers.clear();
    }

    /// Closes every open watch without expiring anything; clients resume
    /// from their last resourceVersion.
    pub fn drop_watches(&self) {
        self.lock().watchers.clear();
    }

    /// Makes EndpointSlice and Service requests answer 403 Forbidden.
    pub fn forbid(&self, slices: bool, services: bool) {
        let mut state = self.lock();
        state.forbid_slices = slices;
        state.forbid_services = services;
    }

    /// The number of open watches.
    pub fn open_watches(&self) -> usize {
        let mut state = self.lock();
        state.watchers.retain(|w| !w.tx.is_closed());
        state.watchers.len()
    }

    /// The cluster's current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    /// Every request so far, as `GET path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }
}

/// Changes made while no watch is listening (see [`FakeApi::expire_watches`]).
pub struct SilentChanges<'a> {
    state: &'a mut State,
}

impl SilentChanges<'_> {
    pub fn put_slice(&mut self, namespace: &str, mut slice: EndpointSlice) {
        self.state.rv += 1;
        slice.metadata.resource_version = Some(self.state.rv.to_string());
        let key = (
            namespace.to_string(),
            slice.metadata.name.clone().unwrap_or_default(),
        );
        self.state.slices.insert(key, slice);
    }

    pub fn delete_slice(&mut self, namespace: &str, name: &str) {
        self.state.rv += 1;
        self.state
            .slices
            .remove(&(namespace.to_string(), name.to_string()));
    }
}

impl State {
    /// Applies a slice change, remembers it, and sends it to matching watches.
    fn record(&mut self, namespace: &str, kind: &'static str, mut slice: EndpointSlice) {
        self.rv += 1;
        slice.metadata.resource_version = Some(self.rv.to_string());
        slice.metadata.namespace = Some(namespace.to_string());
        let key = (
            namespace.to_string(),
            slice.metadata.name.clone().unwrap_or_default(),
        );
        if kind == "DELETED" {
            self.slices.remove(&key);
        } else {
            self.slices.insert(key, slice.clone());
        }
        let line = event_line(kind, slice_json(&slice, true));
        self.watchers.retain(|w| {
            !(w.namespace == namespace && selects(&w.selector, &slice))
                || w.tx.send(line.clone()).is_ok()
        });
        self.history
            .push((self.rv, namespace.to_string(), kind, slice));
    }
}

type Body = UnsyncBoxBody<Bytes, Infallible>;

fn handle(state: &Arc<Mutex<State>>, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path().to_string();
    let query = parse_query(request.uri().query().unwrap_or(""));
    let mut guard = state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    guard.requests.push(format!(
        "{} {}",
        request.method(),
        request
            .uri()
            .path_and_query()
            .map_or_else(|| request.uri().to_string(), |p| p.as_str().to_string())
    ));
    // Also an HTTP proxy: CONNECT opens a tunnel to this same server, as a
    // corporate proxy would to the real API server.
    if request.method() == hyper::Method::CONNECT {
        let Some(own) = guard.address else {
            return status_response(
                StatusCode::BAD_GATEWAY,
                "no address",
                "BadGateway",
                json!({}),
            );
        };
        tokio::spawn(async move {
            if let (Ok(upgraded), Ok(mut upstream)) = (
                hyper::upgrade::on(request).await,
                tokio::net::TcpStream::connect(own).await,
            ) {
                let _ =
                    tokio::io::copy_bidirectional(&mut TokioIo::new(upgraded), &mut upstream).await;
            }
        });
        return Response::new(Full::new(Bytes::new()).boxed_unsync());
    }
    let authorized = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {TOKEN}"));
    if !authorized {
        return status_response(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Unauthorized",
            json!({}),
        );
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        [
            "apis",
            "discovery.k8s.io",
            "v1",
            "namespaces",
            namespace,
            "endpointslices",
        ] => {
            if guard.forbid_slices {
                let verb = if query.get("watch").is_some_and(|w| w == "true" || w == "1") {
                    "watch"
                } else {
                    "list"
                };
                return forbidden(verb, "endpointslices", "discovery.k8s.io", namespace);
            }
            let selector = query.get("labelSelector").and_then(|s| parse_selector(s));
            if query.get("watch").is_some_and(|w| w == "true" || w == "1") {
                watch(&mut guard, namespace, selector, &query)
            } else {
                list_slices(&guard, namespace, &selector, &query)
            }
        }
        ["api", "v1", "namespaces", namespace, "services"] => {
            if guard.forbid_services {
                return forbidden("list", "services", "", namespace);
            }
            let items: Vec<Value> = guard
                .services
                .iter()
                .filter(|((ns, _), _)| ns == namespace)
                .map(|(_, s)| list_item(serde_json::to_value(s).unwrap_or_default()))
                .collect();
            json_response(
                StatusCode::OK,
                json!({"apiVersion": "v1", "kind": "ServiceList",
                       "metadata": {"resourceVersion": guard.rv.to_string()}, "items": items}),
            )
        }
        ["api", "v1", "namespaces", namespace, "services", name] => {
            if guard.forbid_services {
                return forbidden("get", "services", "", namespace);
            }
            match guard
                .services
                .get(&(namespace.to_string(), name.to_string()))
            {
                Some(service) => json_response(
                    StatusCode::OK,
                    serde_json::to_value(service).unwrap_or_default(),
                ),
                None => status_response(
                    StatusCode::NOT_FOUND,
                    &format!("services \"{name}\" not found"),
                    "NotFound",
                    json!({"name": name, "kind": "services"}),
                ),
            }
        }
        _ => status_response(
            StatusCode::NOT_FOUND,
            "the server could not find the requested resource",
            "NotFound",
            json!({}),
        ),
    }
}

fn list_slices(
    state: &State,
    namespace: &str,
    selector: &Option<(String, String)>,
    query: &BTreeMap<String, String>,
) -> Response<Body> {
    let matching: Vec<&EndpointSlice> = state
        .slices
        .iter()
        .filter(|((ns, _), slice)| ns == namespace && selects(selector, slice))
        .map(|(_, slice)| slice)
        .collect();
    // `continue` is the offset of the next page; `limit` the page size.
    let start: usize = query
        .get("continue")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let end = start.saturating_add(limit).min(matching.len());
    let items: Vec<Value> = matching[start.min(end)..end]
        .iter()
        .map(|s| list_item(slice_json(s, false)))
        .collect();
    let mut metadata = json!({"resourceVersion": state.rv.to_string()});
    if end < matching.len() {
        metadata["continue"] = json!(end.to_string());
    }
    json_response(
        StatusCode::OK,
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSliceList", "metadata": metadata, "items": items}),
    )
}

fn watch(
    state: &mut State,
    namespace: &str,
    selector: Option<(String, String)>,
    query: &BTreeMap<String, String>,
) -> Response<Body> {
    let from: u64 = query
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
    if from != 0 && from < state.compacted {
        // The real server answers 200 and then says so in an ERROR event.
        let status = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("too old resource version: {from} ({})", state.compacted),
            "reason": "Expired", "code": 410,
        });
        let _ = tx.send(event_line("ERROR", status));
        drop(tx);
    } else {
        for (rv, ns, kind, slice) in &state.history {
            if *rv > from && ns == namespace && selects(&selector, slice) {
                let _ = tx.send(event_line(kind, slice_json(slice, true)));
            }
        }
        state.watchers.push(Watcher {
            namespace: namespace.to_string(),
            selector,
            bookmarks: query
                .get("allowWatchBookmarks")
                .is_some_and(|b| b == "true"),
            tx,
        });
    }
    let frames = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|line| (Ok::<_, Infallible>(Frame::data(line)), rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(StreamBody::new(frames).boxed_unsync())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed_unsync()))
}

fn forbidden(verb: &str, resource: &str, group: &str, namespace: &str) -> Response<Body> {
    let qualified = if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    };
    status_response(
        StatusCode::FORBIDDEN,
        &format!(
            "{qualified} is forbidden: User \"{DENIED_USER}\" cannot {verb} resource \"{resource}\" in API group \"{group}\" in the namespace \"{namespace}\""
        ),
        "Forbidden",
        json!({"group": group, "kind": resource}),
    )
}

fn status_response(
    code: StatusCode,
    message: &str,
    reason: &str,
    details: Value,
) -> Response<Body> {
    json_response(
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "details": details, "code": code.as_u16()}),
    )
}

fn json_response(code: StatusCode, body: Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())).boxed_unsync())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed_unsync()))
}

fn event_line(kind: &str, object: Value) -> Bytes {
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

/// A slice as the server writes it: `endpoints: null` when empty; list
/// items carry no apiVersion/kind (the list does).
fn slice_json(slice: &EndpointSlice, with_kind: bool) -> Value {
    let mut value = serde_json::to_value(slice).unwrap_or_default();
    if slice.endpoints.is_empty() {
        value["endpoints"] = Value::Null;
    }
    if !with_kind {
        value = list_item(value);
    }
    value
}

fn list_item(mut value: Value) -> Value {
    if let Some(object) = value.as_object_mut() {
        object.remove("apiVersion");
        object.remove("kind");
    }
    value
}

fn selects(selector: &Option<(String, String)>, slice: &EndpointSlice) -> bool {
    match selector {
        None => true,
        Some((key, value)) => {
            slice.metadata.labels.as_ref().and_then(|l| l.get(key)) == Some(value)
        }
    }
}

/// `key=value` or `key==value`; other selector forms are not needed here.
fn parse_selector(selector: &str) -> Option<(String, String)> {
    let (key, value) = selector
        .split_once("==")
        .or_else(|| selector.split_once('='))?;
    Some((key.trim().to_string(), value.trim().to_string()))
}

fn parse_query(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| std::str::from_utf8(&bytes[i + 1..i + 3]).ok())
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (escaped, bytes[i]) {
            (Some(byte), _) => {
                out.push(byte);
                i += 2;
            }
            (None, b'+') => out.push(b' '),
            (None, other) => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An EndpointSlice of Service `service` with these ports and endpoints.
pub fn slice(
    name: &str,
    service: &str,
    ports: &[(&str, i32)],
    endpoints: Vec<Endpoint>,
) -> EndpointSlice {
    EndpointSlice {
        address_type: "IPv4".into(),
        endpoints,
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([(
                "kubernetes.io/service-name".to_string(),
                service.to_string(),
            )])),
            ..Default::default()
        },
        ports: Some(
            ports
                .iter()
                .map(|(port_name, port)| EndpointPort {
                    name: Some(port_name.to_string()),
                    port: Some(*port),
                    protocol: Some("TCP".into()),
                    ..Default::default()
                })
                .collect(),
        ),
    }
}

/// Conditions as the API reports them; `None` is "not set".
#[derive(Clone, Copy, Debug, Default)]
pub struct Conditions {
    pub ready: Option<bool>,
    pub serving: Option<bool>,
    pub terminating: Option<bool>,
}

/// A ready endpoint for pod `pod` at `ip` on `node` in `zone`.
pub fn endpoint(ip: &str, pod: &str, node: &str, zone: &str) -> Endpoint {
    endpoint_with(
        ip,
        pod,
        node,
        zone,
        Conditions {
            ready: Some(true),
            serving: Some(true),
            terminating: Some(false),
        },
    )
}

/// An endpoint with the given conditions.
pub fn endpoint_with(
    ip: &str,
    pod: &str,
    node: &str,
    zone: &str,
    conditions: Conditions,
) -> Endpoint {
    Endpoint {
        addresses: vec![ip.into()],
        conditions: Some(EndpointConditions {
            ready: conditions.ready,
            serving: conditions.serving,
            terminating: conditions.terminating,
        }),
        node_name: Some(node.into()),
        zone: Some(zone.into()),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            name: Some(pod.into()),
            namespace: Some("default".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}
