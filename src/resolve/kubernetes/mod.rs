//! Kubernetes source: the EndpointSlices of a Service, listed and watched.
//!
//! `kubernetes:///svc.ns[:port]` resolves to every pod behind Service `svc`:
//! the union of its EndpointSlices (label `kubernetes.io/service-name=svc`),
//! followed live through a watch that relists when the server says the watch
//! expired (410 Gone). Only get/list/watch on `endpointslices` is required;
//! when grpclb may also read Services it uses that to map a Service port
//! number to the pods' port and to list the Services that exist when the
//! name is wrong.

mod config;
mod explain;
mod slices;
mod watch;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Api;
use kube::api::ListParams;

use slices::WantedPort;

use crate::resolve::{Resolution, ResolveError, ResolveOptions, spawn_source};
use crate::target::PortRef;

/// Starts resolving Service `service` in `namespace`; waits for the first set.
pub async fn start(
    namespace: &str,
    service: &str,
    port: Option<PortRef>,
    options: &ResolveOptions,
) -> Result<Resolution, ResolveError> {
    let connection = config::connect(options).await?;
    let known = read_service(&connection, namespace, service).await?;
    let wanted = wanted_port(port, &known);
    let target = watch::Watched {
        namespace: namespace.to_string(),
        service: service.to_string(),
        server: connection.server,
        wanted,
        service_known: known.is_some(),
    };
    let client = connection.client;
    spawn_source("kubernetes", move |tx| watch::run(client, target, tx)).await
}

/// The cluster DNS name and Service port an ordinary client in the cluster
/// dials: `svc.ns.svc.<cluster domain>:port` (`cluster.local` unless
/// `--cluster-domain` says otherwise).
///
/// A port number that is one of the Service's ports is used as is; a pods'
/// port number is mapped to the Service port that targets it; a port name
/// (or no port, for a single-port Service) is looked up in the Service,
/// which needs permission to get Services.
pub async fn service_address(
    namespace: &str,
    service: &str,
    port: Option<PortRef>,
    options: &ResolveOptions,
) -> Result<String, ResolveError> {
    let domain = options.cluster_domain.trim_matches('.');
    let host = format!("{service}.{namespace}.svc.{domain}");
    let connection = config::connect(options).await?;
    let api: Api<Service> = Api::namespaced(connection.client.clone(), namespace);
    let found = match api.get(service).await {
        Ok(found) => Some(found),
        Err(kube::Error::Api(status)) if status.is_not_found() => {
            // Let the slower path produce the full message (with the Services that exist).
            read_service(&connection, namespace, service).await?;
            None
        }
        Err(_) => None,
    };
    let ports: Vec<(String, i32, Option<IntOrString>)> = found
        .and_then(|s| s.spec)
        .and_then(|spec| spec.ports)
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p.name.unwrap_or_default(), p.port, p.target_port))
        .collect();
    let listed = || {
        ports
            .iter()
            .map(|(name, number, _)| {
                if name.is_empty() {
                    number.to_string()
                } else {
                    format!("{name} {number}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let unknown = |what: &str| {
        ResolveError::Failed(format!(
            "cannot tell which port of Service {namespace}/{service} {what}: grpclb could not read the Service              (it needs get on services for this). Write the Service port number in the target (svc.ns:50051)              or give the address with --clusterip-target {host}:PORT"
        ))
    };
    let number = match port {
        Some(PortRef::Number(n)) => {
            let n = i32::from(n);
            if ports.iter().any(|(_, p, _)| *p == n) {
                n
            } else {
                ports
                    .iter()
                    .find(|(_, _, target)| *target == Some(IntOrString::Int(n)))
                    .map_or(n, |(_, p, _)| *p)
            }
        }
        Some(PortRef::Name(name)) if ports.is_empty() => {
            return Err(unknown(&format!("is named {name:?}")));
        }
        Some(PortRef::Name(name)) => ports
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, p, _)| *p)
            .ok_or_else(|| {
                ResolveError::Failed(format!(
                    "Service {namespace}/{service} has no port named {name:?}; its ports are {}",
                    listed()
                ))
            })?,
        None => match ports.as_slice() {
            [] => return Err(unknown("to dial")),
            [(_, p, _)] => *p,
            _ => {
                return Err(ResolveError::Failed(format!(
                    "Service {namespace}/{service} has several ports ({}); name one in the target, as {service}.{namespace}:PORT",
                    listed()
                )));
            }
        },
    };
    Ok(format!("{host}:{number}"))
}

/// The ports of a Service: (name, port number); `""` names the unnamed port.
type ServicePorts = Vec<(String, i32)>;

/// Reads the Service: `Some(ports)` when it exists, `None` when grpclb may
/// not read Services (then the slices alone must tell), an error when it
/// does not exist or the server cannot be used.
async fn read_service(
    connection: &config::Connection,
    namespace: &str,
    service: &str,
) -> Result<Option<ServicePorts>, ResolveError> {
    let api: Api<Service> = Api::namespaced(connection.client.clone(), namespace);
    match api.get(service).await {
        Ok(found) => Ok(Some(
            found
                .spec
                .and_then(|spec| spec.ports)
                .unwrap_or_default()
                .into_iter()
                .map(|p| (p.name.unwrap_or_default(), p.port))
                .collect(),
        )),
        Err(kube::Error::Api(status)) if status.is_not_found() => {
            let existing = match api.list(&ListParams::default()).await {
                Ok(list) => {
                    let mut names: Vec<String> = list
                        .items
                        .into_iter()
                        .filter_map(|s| s.metadata.name)
                        .collect();
                    names.sort();
                    Some(names)
                }
                Err(_) => None,
            };
            Err(ResolveError::Failed(explain::service_not_found(
                namespace,
                service,
                existing.as_deref(),
            )))
        }
        Err(kube::Error::Api(status)) if status.is_forbidden() => Ok(None),
        Err(kube::Error::Api(status)) if status.code == 401 => Err(ResolveError::Failed(
            explain::unauthorized(&connection.server, &status),
        )),
        // Any other answer from the server (a 5xx, a proxy's page): the
        // EndpointSlice list will say more, or fail with its own message.
        Err(kube::Error::Api(_)) => Ok(None),
        Err(err) => Err(ResolveError::Failed(explain::unreachable(
            &connection.server,
            &format!("read Service {namespace}/{service}"),
            &err,
        ))),
    }
}

/// Which endpoint port the target means.
///
/// A name is looked up in each slice's ports (slice port names are the
/// Service's port names). A number that is one of the Service's ports means
/// that port, and so the pods' port behind it (`echo.default:80` reaches the
/// pods' 8080 when the Service maps 80 to 8080); any other number is dialled
/// on the pods as is.
fn wanted_port(port: Option<PortRef>, service_ports: &Option<ServicePorts>) -> WantedPort {
    match port {
        None => WantedPort::Only,
        Some(PortRef::Name(name)) => WantedPort::Name(name),
        Some(PortRef::Number(number)) => {
            match service_ports
                .as_deref()
                .unwrap_or_default()
                .iter()
                .find(|(_, p)| *p == i32::from(number))
            {
                Some((name, _)) => WantedPort::Name(name.clone()),
                None => WantedPort::Number(number),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_port_number_maps_to_its_name() {
        let ports = Some(vec![
            ("grpc".to_string(), 80),
            ("metrics".to_string(), 9090),
        ]);
        assert_eq!(
            wanted_port(Some(PortRef::Number(80)), &ports),
            WantedPort::Name("grpc".into())
        );
        assert_eq!(
            wanted_port(Some(PortRef::Number(8080)), &ports),
            WantedPort::Number(8080)
        );
        assert_eq!(
            wanted_port(Some(PortRef::Number(80)), &None),
            WantedPort::Number(80)
        );
        assert_eq!(wanted_port(None, &ports), WantedPort::Only);
        assert_eq!(
            wanted_port(Some(PortRef::Name("metrics".into())), &None),
            WantedPort::Name("metrics".into())
        );
    }
}
