//! How `bench` talks to pods beyond plaintext HTTP/2: TLS (roots, client
//! certificate, the name to verify) and what every call carries
//! (`--metadata`, `--authority`).

use std::path::PathBuf;

use clap::Args;

use grpclb::Failure;
use grpclb::metadata::CallMetadata;
use grpclb::target::Target;
use grpclb::tls::{ClientTls, ClientTlsOptions, ServerNameChoice};

#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "TLS and call metadata")]
pub struct ConnectArgs {
    /// Dial over TLS, trusting the system's CAs. Implied by --cacert, --cert,
    /// --tls-server-name and --insecure-skip-verify.
    #[arg(long)]
    pub tls: bool,
    /// Trust this CA bundle (PEM) instead of the system's CAs.
    #[arg(long, value_name = "FILE", conflicts_with = "insecure_skip_verify")]
    pub cacert: Option<PathBuf>,
    /// Client certificate chain (PEM) for mutual TLS; with --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Private key of --cert (PEM: PKCS#8, RSA or EC).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// The name every server certificate is checked against. Pods are dialled by
    /// IP, so by default: the host of --authority if given; for a Kubernetes
    /// target (svc.ns) the Service's DNS name svc.ns.svc.<cluster-domain>; for a
    /// dns:/// target its host name; otherwise the host of each address dialled.
    #[arg(long, value_name = "NAME")]
    pub tls_server_name: Option<String>,
    /// Do not verify server certificates at all (debugging only: warns on stderr
    /// and in the JSON report).
    #[arg(long)]
    pub insecure_skip_verify: bool,
    /// Metadata sent with every call, as 'key: value' (repeatable). Keys ending
    /// in -bin take base64. Values of authorization and other credentials are
    /// never printed.
    #[arg(long = "metadata", value_name = "'KEY: VALUE'")]
    pub metadata: Vec<String>,
    /// The :authority every call names [default: the address dialled].
    #[arg(long, value_name = "HOST[:PORT]")]
    pub authority: Option<String>,
}

impl ConnectArgs {
    /// True when any flag asks for TLS.
    pub fn wants_tls(&self) -> bool {
        self.tls
            || self.cacert.is_some()
            || self.cert.is_some()
            || self.key.is_some()
            || self.tls_server_name.is_some()
            || self.insecure_skip_verify
    }

    /// The metadata and authority every call carries.
    pub fn metadata(&self) -> Result<CallMetadata, Failure> {
        CallMetadata::new(&self.metadata, self.authority.as_deref())
            .map_err(|e| Failure::Usage(e.to_string()))
    }

    /// The client TLS configuration, files read and checked; `None` for
    /// plaintext.
    pub fn client_tls(
        &self,
        target: &Target,
        metadata: &CallMetadata,
        cluster_domain: &str,
    ) -> Result<Option<ClientTls>, Failure> {
        if !self.wants_tls() {
            return Ok(None);
        }
        let options = ClientTlsOptions {
            cacert: self.cacert.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
            server_name: server_name(
                self.tls_server_name.as_deref(),
                metadata,
                target,
                cluster_domain,
            ),
            insecure_skip_verify: self.insecure_skip_verify,
        };
        ClientTls::new(&options)
            .map(Some)
            .map_err(|e| Failure::Usage(e.to_string()))
    }
}

/// The name server certificates are checked against (see --tls-server-name).
pub fn server_name(
    flag: Option<&str>,
    metadata: &CallMetadata,
    target: &Target,
    cluster_domain: &str,
) -> ServerNameChoice {
    if let Some(name) = flag {
        return ServerNameChoice::Fixed(name.to_string());
    }
    if let Some(authority) = metadata.authority() {
        return ServerNameChoice::Fixed(authority.host().trim_matches(['[', ']']).to_string());
    }
    match target {
        Target::Kubernetes {
            namespace, service, ..
        } => ServerNameChoice::Fixed(format!(
            "{service}.{namespace}.svc.{}",
            cluster_domain.trim_matches('.')
        )),
        Target::Dns { host, .. } => ServerNameChoice::Fixed(host.trim_end_matches('.').to_string()),
        _ => ServerNameChoice::EachAddress,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_checked_follows_the_target() {
        let none = CallMetadata::default();
        let k8s = Target::parse("echo.prod:grpc").expect("target");
        assert_eq!(
            server_name(None, &none, &k8s, "cluster.local"),
            ServerNameChoice::Fixed("echo.prod.svc.cluster.local".into())
        );
        let dns = Target::parse("dns:///echo.example.com:443").expect("target");
        assert_eq!(
            server_name(None, &none, &dns, "cluster.local"),
            ServerNameChoice::Fixed("echo.example.com".into())
        );
        let pods = Target::parse("ipv4:10.0.0.1:443").expect("target");
        assert_eq!(
            server_name(None, &none, &pods, "cluster.local"),
            ServerNameChoice::EachAddress
        );
        let with_authority = CallMetadata::new(&[], Some("api.example.com:443")).expect("ok");
        assert_eq!(
            server_name(None, &with_authority, &k8s, "cluster.local"),
            ServerNameChoice::Fixed("api.example.com".into())
        );
        assert_eq!(
            server_name(Some("x.test"), &with_authority, &k8s, "cluster.local"),
            ServerNameChoice::Fixed("x.test".into())
        );
    }
}
