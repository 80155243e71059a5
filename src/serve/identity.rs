//! Who this server is: from the downward API in a pod, else the host.

use std::net::SocketAddr;

/// The server's identity as sent in replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub pod_ip: String,
    pub node: String,
    pub zone: String,
}

impl Identity {
    /// `name` if given, else `POD_NAME`, else the hostname; `POD_IP` else
    /// the listen IP; `NODE_NAME` else the hostname; `POD_ZONE` else "".
    pub fn from_env(name: Option<String>, listen: SocketAddr) -> Identity {
        let env = |key: &str| std::env::var(key).ok().filter(|v| !v.trim().is_empty());
        let hostname = gethostname::gethostname().to_string_lossy().into_owned();
        Identity {
            name: name
                .or_else(|| env("POD_NAME"))
                .unwrap_or_else(|| hostname.clone()),
            pod_ip: env("POD_IP").unwrap_or_else(|| listen.ip().to_string()),
            node: env("NODE_NAME").unwrap_or(hostname),
            zone: env("POD_ZONE").unwrap_or_default(),
        }
    }
}
