//! The one parser for every target form `grpclb` accepts.
//!
//! Forms follow gRPC's naming conventions (`dns:`, `ipv4:`, `ipv6:`), plus the
//! Kubernetes and etcd forms Go users already know. Every error names the
//! offending part and shows a valid example.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// A parsed target: where endpoints come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// EndpointSlices of a Service, read through the Kubernetes API.
    Kubernetes {
        namespace: String,
        service: String,
        port: Option<PortRef>,
    },
    /// A/AAAA records of `host`, optionally from a chosen DNS server.
    Dns {
        server: Option<String>,
        host: String,
        port: u16,
    },
    /// Every key under `prefix` in etcd; an empty endpoint list means
    /// "use `ETCDCTL_ENDPOINTS`".
    Etcd {
        endpoints: Vec<String>,
        prefix: String,
    },
    /// A fixed list of `ip:port` / `[ipv6]:port` / `host:port` addresses.
    Static { addresses: Vec<String> },
    /// One address dialled as is (what `--mode clusterip` does).
    HostPort { host: String, port: u16 },
}

/// A Service port: its number or its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortRef {
    Number(u16),
    Name(String),
}

impl fmt::Display for PortRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortRef::Number(n) => write!(f, "{n}"),
            PortRef::Name(name) => f.write_str(name),
        }
    }
}

/// A target string that does not parse; the message names the bad part and
/// shows a valid example.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid target {input:?}: {problem}\n  example: {example}")]
pub struct TargetError {
    pub input: String,
    pub problem: String,
    pub example: &'static str,
}

const K8S_EXAMPLE: &str = "kubernetes:///echo.default:grpc  (or echo.default:50051)";
const DNS_EXAMPLE: &str = "dns:///echo-headless.default.svc.cluster.local:50051";
const ETCD_EXAMPLE: &str = "etcd://127.0.0.1:2379/grpclb/echo";
const STATIC_EXAMPLE: &str = "ipv4:10.0.0.1:50051,10.0.0.2:50051  or  static:///10.0.0.1:50051";
const IPV6_EXAMPLE: &str = "ipv6:[fd00::1]:50051,[fd00::2]:50051";
const ANY_EXAMPLE: &str = "echo.default:50051, dns:///host:50051, etcd://127.0.0.1:2379/grpclb/echo, ipv4:127.0.0.1:50051";

impl Target {
    /// Parses any supported target form.
    ///
    /// A target that carries credentials (`etcd://user:pass@host/…`) is
    /// refused, and the error shows it with the secret redacted.
    pub fn parse(input: &str) -> Result<Target, TargetError> {
        let shown = redact(input);
        let fail = |problem: String, example: &'static str| TargetError {
            input: shown.clone(),
            problem,
            example,
        };
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(fail("the target is empty".into(), ANY_EXAMPLE));
        }
        if let Some(userinfo) = userinfo(trimmed) {
            let example = if trimmed.starts_with("etcd://") {
                ETCD_EXAMPLE
            } else {
                ANY_EXAMPLE
            };
            return Err(fail(credentials_problem(trimmed, userinfo), example));
        }
        if let Some(rest) = trimmed.strip_prefix("kubernetes://") {
            return parse_kubernetes_uri(rest).map_err(|p| fail(p, K8S_EXAMPLE));
        }
        if let Some(rest) = trimmed.strip_prefix("dns:") {
            return parse_dns(rest).map_err(|p| fail(p, DNS_EXAMPLE));
        }
        if let Some(rest) = trimmed.strip_prefix("etcd://") {
            return parse_etcd(rest).map_err(|p| fail(p, ETCD_EXAMPLE));
        }
        if let Some(rest) = trimmed.strip_prefix("ipv4:") {
            return parse_ip_list(rest, false).map_err(|p| fail(p, STATIC_EXAMPLE));
        }
        if let Some(rest) = trimmed.strip_prefix("ipv6:") {
            return parse_ip_list(rest, true).map_err(|p| fail(p, IPV6_EXAMPLE));
        }
        if let Some(rest) = trimmed.strip_prefix("static:///") {
            return parse_static(rest).map_err(|p| fail(p, STATIC_EXAMPLE));
        }
        if let Some((scheme, _)) = trimmed.split_once("://") {
            return Err(fail(
                format!(
                    "unknown scheme {scheme:?}; supported: kubernetes://, dns:, etcd://, ipv4:, ipv6:, static:///"
                ),
                ANY_EXAMPLE,
            ));
        }
        parse_bare(trimmed).map_err(|(p, ex)| fail(p, ex))
    }

    /// The one address this target names, when it names exactly one
    /// (`host:port`, or a one-address list): what clusterip mode dials.
    pub fn single_address(&self) -> Option<String> {
        match self {
            Target::HostPort { host, port } => Some(join_host_port(host, *port)),
            Target::Static { addresses } if addresses.len() == 1 => Some(addresses[0].clone()),
            _ => None,
        }
    }

    /// The short name of the resolver source this target uses.
    pub fn scheme(&self) -> &'static str {
        match self {
            Target::Kubernetes { .. } => "kubernetes",
            Target::Dns { .. } => "dns",
            Target::Etcd { .. } => "etcd",
            Target::Static { .. } => "static",
            Target::HostPort { .. } => "address",
        }
    }
}

impl fmt::Display for Target {
    /// The canonical form of the target, as shown in reports.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Kubernetes {
                namespace,
                service,
                port,
            } => {
                write!(f, "kubernetes:///{service}.{namespace}")?;
                match port {
                    Some(p) => write!(f, ":{p}"),
                    None => Ok(()),
                }
            }
            Target::Dns { server, host, port } => {
                let authority = server.as_deref().unwrap_or("");
                write!(f, "dns://{authority}/{}", join_host_port(host, *port))
            }
            Target::Etcd { endpoints, prefix } => {
                write!(f, "etcd://{}{prefix}", endpoints.join(","))
            }
            Target::Static { addresses } => write!(f, "static:///{}", addresses.join(",")),
            Target::HostPort { host, port } => f.write_str(&join_host_port(host, *port)),
        }
    }
}

/// What replaces a secret in every message.
pub const REDACTED: &str = "<redacted>";

/// Where a target's userinfo (`user:pass` in `etcd://user:pass@host/…`,
/// `user:pass@host:port`) lies: from the start of the segment holding the
/// last '@' up to it. An etcd key prefix may contain '@', so for etcd only
/// the endpoints are searched; no other form has an '@' anywhere.
fn userinfo_span(input: &str) -> Option<(usize, usize)> {
    let start = match input.find("://") {
        Some(i) => i + 3,
        None => ["ipv4:", "ipv6:", "dns:"]
            .iter()
            .find(|scheme| input.starts_with(*scheme))
            .map_or(0, |scheme| scheme.len()),
    };
    let rest = &input[start..];
    let searched = if input.starts_with("etcd://") {
        &rest[..rest.find('/').unwrap_or(rest.len())]
    } else {
        rest
    };
    let at = searched.rfind('@')?;
    let from = searched[..at].rfind('/').map_or(0, |slash| slash + 1);
    Some((start + from, start + at))
}

/// The userinfo of a target, if it carries one.
fn userinfo(input: &str) -> Option<&str> {
    userinfo_span(input).map(|(from, to)| &input[from..to])
}

/// `input` with any password (or, without a `user:` part, the whole
/// userinfo, which may be a token) replaced by [`REDACTED`]: safe to show.
pub fn redact(input: &str) -> String {
    let Some((from, to)) = userinfo_span(input) else {
        return input.to_string();
    };
    let shown = match input[from..to].split_once(':') {
        Some((user, _)) => format!("{user}:{REDACTED}"),
        None => REDACTED.to_string(),
    };
    format!("{}{shown}{}", &input[..from], &input[to..])
}

/// Why a target with credentials is refused, and where they go instead.
fn credentials_problem(input: &str, userinfo: &str) -> String {
    let user = userinfo.split_once(':').map(|(user, _)| user);
    let for_etcd = input.starts_with("etcd://");
    let how = match (for_etcd, user) {
        (true, Some(user)) => format!(
            "pass --etcd-user {user:?} and the password in ETCDCTL_PASSWORD (or --etcd-password), so that it stays out of process lists and messages"
        ),
        (true, None) => "pass --etcd-user NAME and the password in ETCDCTL_PASSWORD (or --etcd-password), so that it stays out of process lists and messages"
            .to_string(),
        (false, _) => "targets take no credentials; remove the part before '@' (etcd takes --etcd-user and ETCDCTL_PASSWORD, Kubernetes reads its kubeconfig)"
            .to_string(),
    };
    format!("the target carries credentials before '@' (shown redacted); {how}")
}

/// Formats `host:port`, bracketing IPv6 literals.
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.parse::<Ipv6Addr>().is_ok() {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Splits `host:port` or `[v6]:port`; `None` for the port when absent.
fn split_host_port(s: &str) -> Result<(String, Option<String>), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{s:?} opens '[' but never closes it"))?;
        if host.parse::<Ipv6Addr>().is_err() {
            return Err(format!("{host:?} inside [...] is not an IPv6 address"));
        }
        return match after {
            "" => Ok((host.to_string(), None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host.to_string(), Some(port.to_string()))),
                None => Err(format!(
                    "unexpected {after:?} after ']' (write [addr]:port)"
                )),
            },
        };
    }
    if s.matches(':').count() > 1 {
        return Err(format!(
            "{s:?} has several ':'; write IPv6 addresses in brackets, as [fd00::1]:50051"
        ));
    }
    match s.split_once(':') {
        Some((host, port)) => Ok((host.to_string(), Some(port.to_string()))),
        None => Ok((s.to_string(), None)),
    }
}

fn parse_port_number(port: &str, context: &str) -> Result<u16, String> {
    if port.is_empty() {
        return Err(format!("the port of {context:?} is empty"));
    }
    match port.parse::<u16>() {
        Ok(0) => Err(format!(
            "port 0 in {context:?} is not a usable port (1-65535)"
        )),
        Ok(n) => Ok(n),
        Err(_) => Err(format!(
            "port {port:?} in {context:?} is not a number from 1 to 65535"
        )),
    }
}

/// `host:port` with a required numeric port and a valid host.
fn parse_address(s: &str) -> Result<(String, u16), String> {
    let (host, port) = split_host_port(s)?;
    if host.is_empty() {
        return Err(format!("the host of {s:?} is empty"));
    }
    let port = port.ok_or_else(|| format!("{s:?} has no port; add one, as {s}:50051"))?;
    let port = parse_port_number(&port, s)?;
    if host.parse::<IpAddr>().is_err() && !is_dns_name(&host) {
        return Err(format!(
            "host {host:?} is neither an IP address nor a DNS name"
        ));
    }
    Ok((host, port))
}

/// True for a syntactically valid DNS name (letters, digits, '-', '.').
fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.trim_end_matches('.').split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// A Kubernetes object name (RFC 1123 label: lowercase, digits, '-').
fn check_k8s_name(kind: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("the {kind} name is empty"));
    }
    let valid = name.len() <= 63
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{kind} name {name:?} is not a valid Kubernetes name (lowercase letters, digits and '-', at most 63)"
        ))
    }
}

fn parse_port_ref(port: &str, context: &str) -> Result<PortRef, String> {
    if port.chars().all(|c| c.is_ascii_digit()) {
        return parse_port_number(port, context).map(PortRef::Number);
    }
    let valid = port.len() <= 15
        && port
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && port.chars().any(|c| c.is_ascii_lowercase());
    if valid {
        Ok(PortRef::Name(port.to_string()))
    } else {
        Err(format!(
            "port {port:?} in {context:?} is neither a number nor a Kubernetes port name (lowercase, at most 15 characters)"
        ))
    }
}

fn kubernetes(
    service: &str,
    namespace: &str,
    port: Option<&str>,
    context: &str,
) -> Result<Target, String> {
    check_k8s_name("Service", service)?;
    check_k8s_name("namespace", namespace)?;
    let port = port.map(|p| parse_port_ref(p, context)).transpose()?;
    Ok(Target::Kubernetes {
        namespace: namespace.to_string(),
        service: service.to_string(),
        port,
    })
}

/// `kubernetes:///svc.ns[:port]` or `kubernetes://ns/svc[:port]`.
fn parse_kubernetes_uri(rest: &str) -> Result<Target, String> {
    let (authority, path) = rest.split_once('/').ok_or_else(|| {
        "expected kubernetes:///svc.ns[:port] or kubernetes://ns/svc[:port]".to_string()
    })?;
    let (name, port) = match path.split_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (path, None),
    };
    if authority.is_empty() {
        let (service, namespace) = name.split_once('.').ok_or_else(|| {
            format!("{name:?} has no namespace; write svc.namespace, as echo.default")
        })?;
        if namespace.contains('.') {
            return Err(format!(
                "{name:?} has more than svc.namespace; use the short form (echo.default), not the DNS name"
            ));
        }
        kubernetes(service, namespace, port, rest)
    } else {
        if name.contains('.') || name.contains('/') {
            return Err(format!(
                "with a namespace in the authority, the path is just the Service name, not {name:?}"
            ));
        }
        kubernetes(name, authority, port, rest)
    }
}

/// `dns:///host:port` or `dns://server[:port]/host:port`.
fn parse_dns(rest: &str) -> Result<Target, String> {
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (server, name) = match rest.split_once('/') {
        Some((authority, name)) => (authority, name),
        None => ("", rest),
    };
    let server = if server.is_empty() {
        None
    } else {
        let (host, port) = split_host_port(server)?;
        if host.parse::<IpAddr>().is_err() {
            return Err(format!(
                "DNS server {host:?} must be an IP address (a name would need DNS to find DNS)"
            ));
        }
        let port = match port {
            Some(p) => parse_port_number(&p, server)?,
            None => 53,
        };
        Some(join_host_port(&host, port))
    };
    if name.is_empty() {
        return Err("the host name after dns:/// is empty".to_string());
    }
    let (host, port) = parse_address(name)?;
    Ok(Target::Dns { server, host, port })
}

/// `etcd://host:port[,host:port]/prefix` (empty authority: `ETCDCTL_ENDPOINTS`).
fn parse_etcd(rest: &str) -> Result<Target, String> {
    let slash = rest.find('/').ok_or_else(|| {
        "missing the key prefix; add it after the endpoints, as /grpclb/echo".to_string()
    })?;
    let (authority, prefix) = rest.split_at(slash);
    if prefix.trim_matches('/').is_empty() {
        return Err(
            "the key prefix is empty; name the service's prefix, as /grpclb/echo (an empty prefix would read the whole keyspace)"
                .to_string(),
        );
    }
    let mut endpoints = Vec::new();
    for part in authority.split(',').filter(|p| !p.is_empty()) {
        let (host, port) =
            parse_address(part).map_err(|e| format!("etcd endpoint {part:?}: {e}"))?;
        endpoints.push(join_host_port(&host, port));
    }
    Ok(Target::Etcd {
        endpoints,
        prefix: prefix.to_string(),
    })
}

fn parse_ip_list(rest: &str, v6: bool) -> Result<Target, String> {
    let rest = rest.strip_prefix("///").unwrap_or(rest);
    if rest.is_empty() {
        return Err("the address list is empty".to_string());
    }
    let mut addresses = Vec::new();
    for part in rest.split(',') {
        let (host, port) = parse_address(part)?;
        let ip: IpAddr = host.parse().map_err(|_| {
            format!("{host:?} is not an IP address (ipv4:/ipv6: lists take IP literals only)")
        })?;
        if ip.is_ipv6() != v6 {
            let family = if v6 { "ipv6:" } else { "ipv4:" };
            return Err(format!("{host:?} does not belong in an {family} list"));
        }
        addresses.push(join_host_port(&host, port));
    }
    Ok(Target::Static { addresses })
}

fn parse_static(rest: &str) -> Result<Target, String> {
    if rest.is_empty() {
        return Err("the address list is empty".to_string());
    }
    let mut addresses = Vec::new();
    for part in rest.split(',') {
        let (host, port) = parse_address(part)?;
        addresses.push(join_host_port(&host, port));
    }
    Ok(Target::Static { addresses })
}

/// A target with no scheme: `svc.ns[:port]` (Kubernetes shorthand) or `host:port`.
///
/// A name with exactly one dot is a Service (`echo.default`); an IP literal, a
/// single-label name (`localhost`) or a longer DNS name is an address.
fn parse_bare(s: &str) -> Result<Target, (String, &'static str)> {
    let (host, port) = split_host_port(s).map_err(|p| (p, ANY_EXAMPLE))?;
    if host.is_empty() {
        return Err((format!("the host of {s:?} is empty"), ANY_EXAMPLE));
    }
    if host.parse::<IpAddr>().is_err() && host.matches('.').count() == 1 && !host.ends_with('.') {
        let (service, namespace) = host.split_once('.').unwrap_or((&host, ""));
        return kubernetes(service, namespace, port.as_deref(), s).map_err(|p| (p, K8S_EXAMPLE));
    }
    let (host, port) = parse_address(s).map_err(|p| (p, ANY_EXAMPLE))?;
    Ok(Target::HostPort { host, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k8s(ns: &str, svc: &str, port: Option<PortRef>) -> Target {
        Target::Kubernetes {
            namespace: ns.into(),
            service: svc.into(),
            port,
        }
    }

    #[test]
    fn every_documented_form_parses() {
        let cases: Vec<(&str, Target)> = vec![
            ("echo.default", k8s("default", "echo", None)),
            (
                "echo.default:50051",
                k8s("default", "echo", Some(PortRef::Number(50051))),
            ),
            (
                "echo.default:grpc",
                k8s("default", "echo", Some(PortRef::Name("grpc".into()))),
            ),
            (
                "kubernetes:///echo.default:grpc",
                k8s("default", "echo", Some(PortRef::Name("grpc".into()))),
            ),
            ("kubernetes:///echo.default", k8s("default", "echo", None)),
            (
                "kubernetes://prod/echo:9000",
                k8s("prod", "echo", Some(PortRef::Number(9000))),
            ),
            ("kubernetes://prod/echo", k8s("prod", "echo", None)),
            (
                "dns:///echo.default.svc.cluster.local:50051",
                Target::Dns {
                    server: None,
                    host: "echo.default.svc.cluster.local".into(),
                    port: 50051,
                },
            ),
            (
                "dns://127.0.0.1:5353/echo.test:50051",
                Target::Dns {
                    server: Some("127.0.0.1:5353".into()),
                    host: "echo.test".into(),
                    port: 50051,
                },
            ),
            (
                "dns://10.96.0.10/echo:80",
                Target::Dns {
                    server: Some("10.96.0.10:53".into()),
                    host: "echo".into(),
                    port: 80,
                },
            ),
            (
                "dns:echo.test:8080",
                Target::Dns {
                    server: None,
                    host: "echo.test".into(),
                    port: 8080,
                },
            ),
            (
                "etcd://127.0.0.1:2379/grpclb/echo",
                Target::Etcd {
                    endpoints: vec!["127.0.0.1:2379".into()],
                    prefix: "/grpclb/echo".into(),
                },
            ),
            (
                "etcd://10.0.0.1:2379,10.0.0.2:2379/grpclb/echo",
                Target::Etcd {
                    endpoints: vec!["10.0.0.1:2379".into(), "10.0.0.2:2379".into()],
                    prefix: "/grpclb/echo".into(),
                },
            ),
            (
                "etcd:///grpclb/echo",
                Target::Etcd {
                    endpoints: vec![],
                    prefix: "/grpclb/echo".into(),
                },
            ),
            (
                "ipv4:10.0.0.1:50051,10.0.0.2:50051",
                Target::Static {
                    addresses: vec!["10.0.0.1:50051".into(), "10.0.0.2:50051".into()],
                },
            ),
            (
                "ipv6:[fd00::1]:50051,[::1]:50052",
                Target::Static {
                    addresses: vec!["[fd00::1]:50051".into(), "[::1]:50052".into()],
                },
            ),
            (
                "static:///10.0.0.1:50051,backend.local:9000",
                Target::Static {
                    addresses: vec!["10.0.0.1:50051".into(), "backend.local:9000".into()],
                },
            ),
            (
                "127.0.0.10:50051",
                Target::HostPort {
                    host: "127.0.0.10".into(),
                    port: 50051,
                },
            ),
            (
                "localhost:50051",
                Target::HostPort {
                    host: "localhost".into(),
                    port: 50051,
                },
            ),
            (
                "[::1]:50051",
                Target::HostPort {
                    host: "::1".into(),
                    port: 50051,
                },
            ),
            (
                "echo.default.svc.cluster.local:50051",
                Target::HostPort {
                    host: "echo.default.svc.cluster.local".into(),
                    port: 50051,
                },
            ),
        ];
        for (input, want) in cases {
            assert_eq!(Target::parse(input), Ok(want), "parsing {input:?}");
        }
    }

    #[test]
    fn malformed_targets_name_the_bad_part() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("echo.default:99999", "\"99999\""),
            ("echo.default:0", "port 0"),
            ("Echo.default", "\"Echo\" is not a valid Kubernetes name"),
            ("kubernetes:///echo", "has no namespace"),
            ("kubernetes:///echo.default.svc:80", "use the short form"),
            ("dns:///", "empty"),
            ("dns:///echo.test", "has no port"),
            ("dns://resolver.example/echo:80", "must be an IP address"),
            ("etcd://127.0.0.1:2379", "missing the key prefix"),
            ("etcd://127.0.0.1:2379/", "prefix is empty"),
            ("etcd://127.0.0.1/grpclb/echo", "has no port"),
            ("ipv4:10.0.0.1", "has no port"),
            ("ipv4:fd00::1:80", "several ':'"),
            ("ipv4:backend:80", "is not an IP address"),
            ("ipv6:[fd00::1:80", "never closes"),
            ("ipv6:10.0.0.1:80", "does not belong in an ipv6: list"),
            ("static:///", "empty"),
            ("http://echo:80", "unknown scheme \"http\""),
            ("localhost", "has no port"),
            ("bad_host!:80", "neither an IP address nor a DNS name"),
            (
                "echo.default:Grpc_Port",
                "neither a number nor a Kubernetes port name",
            ),
        ];
        for (input, fragment) in cases {
            let err = Target::parse(input).expect_err(input);
            let text = err.to_string();
            assert!(
                text.contains(fragment),
                "{input:?}: {text:?} lacks {fragment:?}"
            );
            assert!(
                text.contains("example:"),
                "{input:?}: {text:?} shows no example"
            );
        }
    }

    #[test]
    fn credentials_in_a_target_are_refused_and_never_shown() {
        let err = Target::parse("etcd://root:hunter2@127.0.0.1:2379/grpclb/echo")
            .expect_err("credentials are refused");
        let text = err.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(text.matches("<redacted>").count(), 1, "{text}");
        assert!(text.contains("etcd://root:<redacted>@127.0.0.1:2379/grpclb/echo"));
        assert!(text.contains("--etcd-user \"root\""), "{text}");
        assert!(text.contains("ETCDCTL_PASSWORD"), "{text}");
        assert!(!text.contains("IPv6"), "{text}");
        for input in [
            "etcd://tok3n@127.0.0.1:2379/grpclb/echo",
            "dns://u:tok3n@10.0.0.1/echo:80",
            "u:tok3n@127.0.0.1:80",
            "static:///u:tok3n@10.0.0.1:80",
            "kubernetes://tok3n@default/echo:80",
        ] {
            let text = Target::parse(input).expect_err(input).to_string();
            assert!(!text.contains("tok3n"), "{input}: {text}");
            assert!(text.contains("credentials"), "{input}: {text}");
        }
    }

    #[test]
    fn redact_leaves_targets_without_credentials_alone() {
        for input in [
            "etcd://127.0.0.1:2379/a@b",
            "echo.default:grpc",
            "ipv4:1.2.3.4:5",
        ] {
            assert_eq!(redact(input), input);
        }
        assert_eq!(redact("etcd://a:b:c@h:1/p"), "etcd://a:<redacted>@h:1/p");
    }

    #[test]
    fn display_is_canonical_and_reparses() {
        for input in [
            "echo.default:grpc",
            "kubernetes://prod/echo:9000",
            "dns://127.0.0.1:5353/echo.test:50051",
            "etcd://127.0.0.1:2379/grpclb/echo",
            "ipv6:[fd00::1]:50051",
            "127.0.0.1:80",
        ] {
            let target = Target::parse(input).expect(input);
            assert_eq!(Target::parse(&target.to_string()), Ok(target), "{input}");
        }
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        /// Characters targets are made of, and a few that never belong.
        const TARGETISH: &str = "[a-zA-Z0-9:/.@\\[\\],_!% -]{0,40}";

        fn check(input: &str) {
            match Target::parse(input) {
                Ok(target) => {
                    let canonical = target.to_string();
                    assert_eq!(Target::parse(&canonical), Ok(target), "{input:?}");
                }
                Err(err) => {
                    assert!(!err.problem.trim().is_empty(), "{input:?}");
                    assert!(err.to_string().contains("example:"), "{input:?}");
                }
            }
        }

        proptest! {
            #[test]
            fn any_string_parses_or_explains(input in ".{0,60}") {
                check(&input);
            }

            #[test]
            fn any_target_shaped_string_parses_or_explains(
                scheme in prop::sample::select(vec![
                    "", "kubernetes://", "kubernetes:///", "dns:", "dns:///", "etcd://",
                    "ipv4:", "ipv6:", "static:///", "http://",
                ]),
                rest in TARGETISH,
            ) {
                check(&format!("{scheme}{rest}"));
            }

            #[test]
            fn a_bad_port_is_named(
                form in prop::sample::select(vec![
                    "echo.default:{}", "kubernetes://ns/echo:{}", "dns:///echo.test:{}",
                    "etcd://127.0.0.1:{}/p", "ipv4:10.0.0.1:{}", "static:///h.local:{}",
                    "127.0.0.1:{}",
                ]),
                port in "([A-Z_!]{1,8}|[1-9][0-9]{5,9})",
            ) {
                let input = form.replace("{}", &port);
                let text = Target::parse(&input).expect_err(&input).to_string();
                prop_assert!(text.contains(&format!("{port:?}")), "{}: {}", input, text);
            }

            #[test]
            fn a_password_in_a_target_never_shows(
                form in prop::sample::select(vec![
                    "etcd://{u}:{p}@127.0.0.1:2379/grpclb/echo",
                    "etcd://{u}:{p}@10.0.0.1:2379,10.0.0.2:2379/grpclb/echo",
                    "dns://{u}:{p}@10.0.0.1/echo.test:80",
                    "{u}:{p}@echo.default:80",
                    "static:///{u}:{p}@10.0.0.1:80",
                ]),
                user in "[a-z]{1,8}",
                password in "Pw[A-Za-z0-9:@!#$%]{6,20}",
            ) {
                let input = form.replace("{u}", &user).replace("{p}", &password);
                let text = Target::parse(&input).expect_err(&input).to_string();
                prop_assert!(!text.contains(&password), "{}", text);
                prop_assert!(text.contains("credentials"), "{}", text);
            }
        }
    }
}
