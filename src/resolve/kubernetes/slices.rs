//! The endpoints of a Service: the union of its EndpointSlices.
//!
//! A Service over 100 pods has several slices, and the EndpointSlice
//! controller moves endpoints between them as pods churn. [`SliceSet`] keeps
//! every slice by name and recomputes the whole union from scratch on each
//! change, so a deleted slice takes its endpoints with it and an address that
//! sits in two slices for a moment is counted once.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use k8s_openapi::api::discovery::v1::{EndpointPort, EndpointSlice};

use crate::resolve::Endpoint;
use crate::target::join_host_port;

/// Which port of the endpoints to dial, as the target asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WantedPort {
    /// The port with this name in each slice's port list (`""` is the
    /// unnamed port of a single-port Service).
    Name(String),
    /// This port number on every endpoint, as is.
    Number(u16),
    /// The Service's only port; an error when it has several.
    Only,
}

/// The target's port does not fit the Service's ports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("has no port named {name:?}; its ports are {}. Put one of these names (or a number) after the ':' in the target", list_ports(.available))]
    NoSuchName {
        name: String,
        available: Vec<(String, i32)>,
    },
    #[error("has several ports ({}); name one in the target, as svc.ns:{}", list_ports(.available), example_port(.available))]
    Ambiguous { available: Vec<(String, i32)> },
    #[error(
        "lists no port numbers in EndpointSlice {slice:?}; put the port number in the target, as svc.ns:50051"
    )]
    NoPorts { slice: String },
}

fn list_ports(ports: &[(String, i32)]) -> String {
    ports
        .iter()
        .map(|(name, number)| {
            if name.is_empty() {
                format!("(unnamed) {number}")
            } else {
                format!("{name} {number}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn example_port(ports: &[(String, i32)]) -> String {
    match ports.first() {
        Some((name, _)) if !name.is_empty() => name.clone(),
        Some((_, number)) => number.to_string(),
        None => "50051".to_string(),
    }
}

/// Every EndpointSlice of one Service, by name.
#[derive(Debug, Default)]
pub struct SliceSet {
    slices: BTreeMap<String, EndpointSlice>,
}

impl SliceSet {
    /// Adds or replaces a slice (watch ADDED / MODIFIED).
    pub fn apply(&mut self, slice: EndpointSlice) {
        let name = slice_name(&slice);
        self.slices.insert(name, slice);
    }

    /// Drops a slice (watch DELETED). Returns true if it was known.
    pub fn delete(&mut self, slice: &EndpointSlice) -> bool {
        self.slices.remove(&slice_name(slice)).is_some()
    }

    /// Replaces every slice with a fresh list (after a list or relist).
    pub fn replace_all(&mut self, slices: Vec<EndpointSlice>) {
        self.slices.clear();
        for slice in slices {
            self.apply(slice);
        }
    }

    /// The number of slices known.
    pub fn len(&self) -> usize {
        self.slices.len()
    }

    /// True when the Service has no slices at all.
    pub fn is_empty(&self) -> bool {
        self.slices.is_empty()
    }

    /// The union of every slice's endpoints on the wanted port, one per
    /// address, sorted by address.
    ///
    /// When an address appears in two slices (an endpoint moving between
    /// slices), the entry with the better conditions wins (ready, then
    /// serving, then not terminating), and the first slice by name on a tie.
    pub fn endpoints(&self, wanted: &WantedPort) -> Result<Vec<Endpoint>, PortError> {
        let mut by_address: HashMap<String, Endpoint> = HashMap::new();
        for (name, slice) in &self.slices {
            if slice.endpoints.is_empty() {
                continue;
            }
            let port = port_in_slice(name, slice.ports.as_deref().unwrap_or_default(), wanted)?;
            for ep in &slice.endpoints {
                // Addresses of one endpoint are fungible; consumers use the first.
                let Some(ip) = ep.addresses.first() else {
                    continue;
                };
                let conditions = ep.conditions.clone().unwrap_or_default();
                // Kubernetes: a nil `ready` is to be read as ready, and a nil
                // `serving` defers to `ready`.
                let ready = conditions.ready.unwrap_or(true);
                let endpoint = Endpoint {
                    address: join_host_port(ip, port),
                    name: ep
                        .target_ref
                        .as_ref()
                        .and_then(|r| r.name.clone())
                        .or_else(|| ep.hostname.clone()),
                    ready,
                    serving: conditions.serving.unwrap_or(ready),
                    terminating: conditions.terminating.unwrap_or(false),
                    node: ep.node_name.clone(),
                    zone: ep.zone.clone(),
                    origin: name.clone(),
                    ttl_s: None,
                    lease: None,
                };
                match by_address.get(&endpoint.address) {
                    Some(existing) if rank(existing) >= rank(&endpoint) => {}
                    _ => {
                        by_address.insert(endpoint.address.clone(), endpoint);
                    }
                }
            }
        }
        let mut endpoints: Vec<Endpoint> = by_address.into_values().collect();
        endpoints.sort_by_key(|a| address_key(&a.address));
        Ok(endpoints)
    }
}

/// How good an endpoint's conditions are; the higher wins a duplicate.
fn rank(endpoint: &Endpoint) -> (bool, bool, bool) {
    (endpoint.ready, endpoint.serving, !endpoint.terminating)
}

/// Sorts IP addresses numerically (10.0.0.9 before 10.0.0.10), names after.
fn address_key(address: &str) -> (Option<IpAddr>, u16, String) {
    let (host, port) = match address.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().unwrap_or(0)),
        None => (address, 0),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(ip) => (Some(ip), port, String::new()),
        // `None` sorts first; names are rare enough that their place does not matter.
        Err(_) => (None, port, host.to_string()),
    }
}

fn slice_name(slice: &EndpointSlice) -> String {
    slice.metadata.name.clone().unwrap_or_default()
}

/// The port number to dial for endpoints of one slice.
fn port_in_slice(
    slice: &str,
    ports: &[EndpointPort],
    wanted: &WantedPort,
) -> Result<u16, PortError> {
    let available: Vec<(String, i32)> = ports
        .iter()
        .filter_map(|p| Some((p.name.clone().unwrap_or_default(), p.port?)))
        .collect();
    let number = match wanted {
        WantedPort::Number(n) => return Ok(*n),
        WantedPort::Name(name) => available
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, number)| *number)
            .ok_or_else(|| PortError::NoSuchName {
                name: name.clone(),
                available: available.clone(),
            })?,
        WantedPort::Only => match available.as_slice() {
            [] => {
                return Err(PortError::NoPorts {
                    slice: slice.to_string(),
                });
            }
            [(_, number)] => *number,
            _ => return Err(PortError::Ambiguous { available }),
        },
    };
    u16::try_from(number).map_err(|_| PortError::NoPorts {
        slice: slice.to_string(),
    })
}

/// Why no endpoint is ready, in one line; `None` when some are.
pub fn no_ready_reason(endpoints: &[Endpoint], slices: usize) -> Option<String> {
    if endpoints.iter().any(|e| e.ready) {
        return None;
    }
    if endpoints.is_empty() {
        return Some(if slices == 0 {
            "no EndpointSlices: the Service has no selector, or the endpoint controller has not written any yet".to_string()
        } else {
            "no endpoints: the Service's selector matches no running pod (check the selector and `kubectl get pods`)"
                .to_string()
        });
    }
    let terminating = endpoints.iter().filter(|e| e.terminating).count();
    let not_ready = endpoints.len() - terminating;
    Some(format!(
        "none of {} endpoints is ready ({not_ready} not ready, {terminating} terminating): pods are starting, failing their readiness probe, or shutting down",
        endpoints.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ObjectReference;
    use k8s_openapi::api::discovery::v1::{Endpoint as K8sEndpoint, EndpointConditions};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn slice(name: &str, ports: &[(&str, i32)], endpoints: Vec<K8sEndpoint>) -> EndpointSlice {
        EndpointSlice {
            address_type: "IPv4".into(),
            endpoints,
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            ports: Some(
                ports
                    .iter()
                    .map(|(n, p)| EndpointPort {
                        name: Some(n.to_string()),
                        port: Some(*p),
                        protocol: Some("TCP".into()),
                        ..Default::default()
                    })
                    .collect(),
            ),
        }
    }

    fn ep(ip: &str, pod: &str, ready: Option<bool>, terminating: Option<bool>) -> K8sEndpoint {
        K8sEndpoint {
            addresses: vec![ip.into()],
            conditions: Some(EndpointConditions {
                ready,
                serving: None,
                terminating,
            }),
            node_name: Some("node-a".into()),
            zone: Some("zone-1".into()),
            target_ref: Some(ObjectReference {
                kind: Some("Pod".into()),
                name: Some(pod.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn union_drops_deleted_slice_and_dedupes_moving_address() {
        let mut set = SliceSet::default();
        set.apply(slice(
            "echo-a",
            &[("grpc", 50051)],
            vec![ep("10.0.0.1", "p1", Some(true), None)],
        ));
        set.apply(slice(
            "echo-b",
            &[("grpc", 50051)],
            vec![
                ep("10.0.0.2", "p2", Some(true), None),
                // moving from echo-a: present in both for a moment
                ep("10.0.0.1", "p1", Some(true), None),
            ],
        ));
        let endpoints = set.endpoints(&WantedPort::Name("grpc".into())).unwrap();
        let addresses: Vec<_> = endpoints.iter().map(|e| e.address.as_str()).collect();
        assert_eq!(addresses, ["10.0.0.1:50051", "10.0.0.2:50051"]);
        assert_eq!(
            endpoints[0].origin, "echo-a",
            "first slice by name wins a tie"
        );

        assert!(set.delete(&slice("echo-a", &[], vec![])));
        let endpoints = set.endpoints(&WantedPort::Name("grpc".into())).unwrap();
        assert_eq!(endpoints.len(), 2);
        assert_eq!(endpoints[0].origin, "echo-b");
    }

    #[test]
    fn duplicate_prefers_the_ready_entry() {
        let mut set = SliceSet::default();
        set.apply(slice(
            "a",
            &[("", 80)],
            vec![ep("10.0.0.1", "p1", Some(false), Some(true))],
        ));
        set.apply(slice(
            "b",
            &[("", 80)],
            vec![ep("10.0.0.1", "p1", Some(true), None)],
        ));
        let endpoints = set.endpoints(&WantedPort::Only).unwrap();
        assert_eq!(endpoints.len(), 1);
        assert!(endpoints[0].ready);
        assert_eq!(endpoints[0].origin, "b");
    }

    #[test]
    fn nil_ready_counts_as_ready_and_serving_defers_to_ready() {
        let mut set = SliceSet::default();
        set.apply(slice(
            "a",
            &[("grpc", 9000)],
            vec![
                ep("10.0.0.1", "p1", None, None),
                ep("10.0.0.2", "p2", Some(false), Some(true)),
            ],
        ));
        let endpoints = set.endpoints(&WantedPort::Only).unwrap();
        assert!(endpoints[0].ready && endpoints[0].serving && !endpoints[0].terminating);
        assert!(!endpoints[1].ready && !endpoints[1].serving && endpoints[1].terminating);
        assert_eq!(endpoints[0].name.as_deref(), Some("p1"));
        assert_eq!(endpoints[0].node.as_deref(), Some("node-a"));
        assert_eq!(endpoints[0].zone.as_deref(), Some("zone-1"));
    }

    #[test]
    fn ports_by_name_number_and_only() {
        let mut set = SliceSet::default();
        set.apply(slice(
            "a",
            &[("grpc", 50051), ("metrics", 9090)],
            vec![ep("10.0.0.1", "p1", None, None)],
        ));
        let by_name = set.endpoints(&WantedPort::Name("metrics".into())).unwrap();
        assert_eq!(by_name[0].address, "10.0.0.1:9090");
        let by_number = set.endpoints(&WantedPort::Number(7000)).unwrap();
        assert_eq!(by_number[0].address, "10.0.0.1:7000");
        let err = set.endpoints(&WantedPort::Only).unwrap_err();
        assert!(
            err.to_string().contains("grpc 50051, metrics 9090"),
            "{err}"
        );
        let err = set.endpoints(&WantedPort::Name("http".into())).unwrap_err();
        assert!(err.to_string().contains("no port named \"http\""), "{err}");
    }

    #[test]
    fn empty_slices_need_no_ports_and_sort_numerically() {
        let mut set = SliceSet::default();
        set.apply(slice("empty", &[], vec![]));
        set.apply(slice(
            "a",
            &[("", 80)],
            vec![
                ep("10.0.0.10", "p10", None, None),
                ep("10.0.0.9", "p9", None, None),
            ],
        ));
        let endpoints = set.endpoints(&WantedPort::Only).unwrap();
        assert_eq!(endpoints[0].address, "10.0.0.9:80");
        assert_eq!(endpoints[1].address, "10.0.0.10:80");
    }

    #[test]
    fn ipv6_addresses_are_bracketed() {
        let mut set = SliceSet::default();
        set.apply(slice(
            "a",
            &[("grpc", 50051)],
            vec![ep("fd00::1", "p1", None, None)],
        ));
        let endpoints = set.endpoints(&WantedPort::Only).unwrap();
        assert_eq!(endpoints[0].address, "[fd00::1]:50051");
    }

    #[test]
    fn no_ready_reason_explains_each_case() {
        assert!(
            no_ready_reason(&[], 0)
                .unwrap()
                .contains("no EndpointSlices")
        );
        assert!(
            no_ready_reason(&[], 1)
                .unwrap()
                .contains("selector matches no running pod")
        );
        let terminating = Endpoint {
            ready: false,
            terminating: true,
            ..Endpoint::new("10.0.0.1:80", "a")
        };
        let reason = no_ready_reason(&[terminating], 1).unwrap();
        assert!(reason.contains("0 not ready, 1 terminating"), "{reason}");
        assert!(no_ready_reason(&[Endpoint::new("10.0.0.2:80", "a")], 1).is_none());
    }
}
