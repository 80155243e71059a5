//! Finding and connecting to the cluster, the way kubectl does.
//!
//! Order: `--kubeconfig`, else `KUBECONFIG` (several files merged), else
//! `~/.kube/config`, else the in-cluster service account (inside a pod).
//! `--context` picks a context other than the current one. A proxy comes from
//! the cluster's `proxy-url`, else from `HTTPS_PROXY` / `HTTP_PROXY` unless
//! `NO_PROXY` or a loopback address exempts the API server, as Go's (and so
//! kubectl's) proxy rules do.

use std::net::IpAddr;

use kube::Client;
use kube::config::{Config, KubeConfigOptions, Kubeconfig};

use crate::resolve::{ResolveError, ResolveOptions};

/// A client for the chosen cluster, and the API server URL for messages.
pub struct Connection {
    pub client: Client,
    pub server: String,
}

/// Builds a client from the options, the environment and the kubeconfig.
pub async fn connect(options: &ResolveOptions) -> Result<Connection, ResolveError> {
    let config = load(options).await?;
    let server = config.cluster_url.to_string();
    let client = Client::try_from(config).map_err(|err| {
        ResolveError::Failed(format!(
            "could not set up a Kubernetes client for {server}: {err}; check the cluster's certificate settings in the kubeconfig"
        ))
    })?;
    Ok(Connection { client, server })
}

async fn load(options: &ResolveOptions) -> Result<Config, ResolveError> {
    let (kubeconfig, source) = match &options.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path).map_err(|err| {
                ResolveError::Failed(format!(
                    "could not read the kubeconfig {}: {}; check the --kubeconfig path",
                    path.display(),
                    kubeconfig_problem(&err)
                ))
            })?;
            (kubeconfig, format!("--kubeconfig {}", path.display()))
        }
        None => match Kubeconfig::from_env() {
            Ok(Some(kubeconfig)) => (kubeconfig, "KUBECONFIG".to_string()),
            Err(err) => {
                return Err(ResolveError::Failed(format!(
                    "could not read the kubeconfig named by KUBECONFIG: {}; fix or unset KUBECONFIG, or pass --kubeconfig",
                    kubeconfig_problem(&err)
                )));
            }
            Ok(None) => match Kubeconfig::read() {
                Ok(kubeconfig) => (kubeconfig, "~/.kube/config".to_string()),
                Err(file_err) => return in_cluster(options, &kubeconfig_problem(&file_err)),
            },
        },
    };
    let context_name = options
        .kube_context
        .clone()
        .or_else(|| kubeconfig.current_context.clone());
    if let Some(name) = &options.kube_context
        && !kubeconfig.contexts.iter().any(|c| &c.name == name)
    {
        let known: Vec<&str> = kubeconfig
            .contexts
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        return Err(ResolveError::Failed(format!(
            "context {name:?} is not in the kubeconfig ({source}); its contexts are: {}",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )));
    }
    let cluster_proxy = cluster_proxy_url(&kubeconfig, context_name.as_deref());
    let kube_options = KubeConfigOptions {
        context: options.kube_context.clone(),
        ..Default::default()
    };
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &kube_options)
        .await
        .map_err(|err| {
            ResolveError::Failed(format!(
                "could not use the kubeconfig ({source}): {err}; check its current context (or pass --context)"
            ))
        })?;
    let proxy = match cluster_proxy {
        Some(url) => Some(url),
        None => env_proxy(&config.cluster_url, &|name| std::env::var(name).ok()),
    };
    config.proxy_url = match proxy {
        Some(url) => Some(url.parse().map_err(|err| {
            ResolveError::Failed(format!(
                "the proxy URL {url:?} (from proxy-url, HTTPS_PROXY or HTTP_PROXY) is not a URL: {err}"
            ))
        })?),
        None => None,
    };
    Ok(config)
}

/// No kubeconfig anywhere: use the pod's service account if there is one.
fn in_cluster(options: &ResolveOptions, file_err: &str) -> Result<Config, ResolveError> {
    if let Some(context) = &options.kube_context {
        return Err(ResolveError::Failed(format!(
            "--context {context} needs a kubeconfig, and none was found ({file_err}); pass --kubeconfig or set KUBECONFIG"
        )));
    }
    Config::incluster().map_err(|pod_err| {
        ResolveError::Failed(format!(
            "no Kubernetes configuration found: no kubeconfig ({file_err}) and not inside a pod ({pod_err}); pass --kubeconfig PATH or set KUBECONFIG"
        ))
    })
}

/// The `proxy-url` of the cluster that the chosen context points at.
fn cluster_proxy_url(kubeconfig: &Kubeconfig, context: Option<&str>) -> Option<String> {
    let context = kubeconfig
        .contexts
        .iter()
        .find(|c| Some(c.name.as_str()) == context)?
        .context
        .as_ref()?;
    kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)?
        .cluster
        .as_ref()?
        .proxy_url
        .clone()
        .filter(|url| !url.is_empty())
}

/// The proxy Go's `http.ProxyFromEnvironment` (and so kubectl) would use to
/// reach `server`, read through `var`.
///
/// `HTTPS_PROXY` for https servers and `HTTP_PROXY` for http ones (upper case
/// first); none for `localhost` or a loopback address; none when `NO_PROXY`
/// names the host: `*`, an IP, a CIDR block, `name` (that name and its
/// subdomains) or `.name` (subdomains only), each optionally with `:port`.
pub fn env_proxy(server: &http::Uri, var: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let host = server
        .host()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let https = server.scheme_str() != Some("http");
    let port = server.port_u16().unwrap_or(if https { 443 } else { 80 });
    let get = |upper: &str| {
        var(upper)
            .filter(|v| !v.is_empty())
            .or_else(|| var(&upper.to_ascii_lowercase()).filter(|v| !v.is_empty()))
    };
    let proxy = if https {
        get("HTTPS_PROXY")
    } else {
        get("HTTP_PROXY")
    }?;
    let ip = host.parse::<IpAddr>().ok();
    if host == "localhost" || ip.is_some_and(|ip| ip.is_loopback()) {
        return None;
    }
    let no_proxy = get("NO_PROXY").unwrap_or_default();
    for entry in no_proxy.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if entry == "*" || no_proxy_matches(entry, &host, ip, port) {
            return None;
        }
    }
    Some(proxy)
}

fn no_proxy_matches(entry: &str, host: &str, ip: Option<IpAddr>, port: u16) -> bool {
    if let Some((network, bits)) = entry.split_once('/') {
        return match (network.parse::<IpAddr>(), bits.parse::<u32>(), ip) {
            (Ok(network), Ok(bits), Some(ip)) => in_cidr(ip, network, bits),
            _ => false,
        };
    }
    if let Ok(entry_ip) = entry
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Some(entry_ip) == ip;
    }
    // `name:port` matches only that port.
    let (name, entry_port) = match entry.rsplit_once(':') {
        Some((name, p)) => match p.parse::<u16>() {
            Ok(p) => (name, Some(p)),
            Err(_) => return false,
        },
        None => (entry, None),
    };
    if let Ok(ip_in_entry) = name
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Some(ip_in_entry) == ip && entry_port.is_none_or(|p| p == port);
    }
    if entry_port.is_some_and(|p| p != port) {
        return false;
    }
    let name = name.to_ascii_lowercase();
    let name = name.trim_start_matches('*');
    match name.strip_prefix('.') {
        Some(suffix) => host.ends_with(&format!(".{suffix}")),
        None => host == name || host.ends_with(&format!(".{name}")),
    }
}

fn in_cidr(ip: IpAddr, network: IpAddr, bits: u32) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(net)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// Why a kubeconfig cannot be used, without quoting the file: a YAML
/// parser's message shows the offending line, and a kubeconfig's lines hold
/// tokens and keys. A parse error is reduced to where it is.
fn kubeconfig_problem(err: &kube::config::KubeconfigError) -> String {
    let text = err.to_string();
    if !matches!(err, kube::config::KubeconfigError::Parse(_)) {
        return text.lines().next().unwrap_or_default().to_string();
    }
    let place = text
        .find("line ")
        .map(|at| &text[at..])
        .map(|rest| {
            let end = rest
                .char_indices()
                .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == ' ' || *c == ','))
                .map_or(rest.len(), |(i, _)| i);
            rest[..end].trim().to_string()
        })
        .filter(|place| place.contains("column"));
    match place {
        Some(place) => format!(
            "it is not valid kubeconfig YAML ({place}; the content is not shown, as it may hold credentials)"
        ),
        None => {
            "it is not valid kubeconfig YAML (the content is not shown, as it may hold credentials)"
                .to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn proxy_for(server: &str, env: &[(&str, &str)]) -> Option<String> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        env_proxy(&server.parse().unwrap(), &|name| env.get(name).cloned())
    }

    #[test]
    fn https_server_uses_https_proxy() {
        let env = [
            ("HTTPS_PROXY", "http://proxy:3128"),
            ("HTTP_PROXY", "http://other:80"),
        ];
        assert_eq!(
            proxy_for("https://api.example.com:6443", &env).as_deref(),
            Some("http://proxy:3128")
        );
        assert_eq!(
            proxy_for("http://api.example.com", &env).as_deref(),
            Some("http://other:80")
        );
        assert_eq!(
            proxy_for(
                "https://api.example.com",
                &[("https_proxy", "http://lower:1")]
            )
            .as_deref(),
            Some("http://lower:1")
        );
    }

    #[test]
    fn loopback_is_never_proxied() {
        let env = [
            ("HTTPS_PROXY", "http://proxy:3128"),
            ("HTTP_PROXY", "http://proxy:3128"),
        ];
        assert_eq!(proxy_for("http://127.0.0.1:8080", &env), None);
        assert_eq!(proxy_for("https://localhost:6443", &env), None);
        assert_eq!(proxy_for("https://[::1]:6443", &env), None);
    }

    #[test]
    fn no_proxy_forms_exempt_the_server() {
        let with = |no_proxy: &str, server: &str| {
            proxy_for(
                server,
                &[("HTTPS_PROXY", "http://proxy:3128"), ("NO_PROXY", no_proxy)],
            )
        };
        assert_eq!(with("*", "https://api.example.com"), None);
        assert_eq!(with("example.com", "https://api.example.com"), None);
        assert_eq!(with("example.com", "https://example.com"), None);
        assert!(with(".example.com", "https://example.com").is_some());
        assert_eq!(with(".example.com", "https://api.example.com"), None);
        assert_eq!(with("10.0.0.0/8", "https://10.1.2.3:6443"), None);
        assert!(with("10.0.0.0/8", "https://11.1.2.3:6443").is_some());
        assert_eq!(with("10.1.2.3", "https://10.1.2.3:6443"), None);
        assert_eq!(
            with("api.example.com:6443", "https://api.example.com:6443"),
            None
        );
        assert!(with("api.example.com:443", "https://api.example.com:6443").is_some());
        assert!(with("other.com, foo", "https://api.example.com").is_some());
    }
}
