//! The flags that say how to reach etcd, shared by every command that
//! talks to it (`bench`/`resolve` with an etcd target, `serve --register`,
//! `register`). Each also reads etcdctl's own environment variable.

use std::path::PathBuf;

use clap::Args;

use grpclb::etcd::EtcdOptions;

#[derive(Debug, Clone, Default, Args)]
pub struct EtcdArgs {
    /// etcd user, as NAME or NAME:PASSWORD.
    #[arg(long, env = "ETCDCTL_USER", hide_env_values = true)]
    pub etcd_user: Option<String>,
    /// Password of --etcd-user.
    #[arg(long, env = "ETCDCTL_PASSWORD", hide_env_values = true)]
    pub etcd_password: Option<String>,
    /// CA bundle that signed etcd's certificate (switches etcd endpoints to https).
    #[arg(
        long,
        env = "ETCDCTL_CACERT",
        hide_env_values = true,
        value_name = "FILE"
    )]
    pub etcd_cacert: Option<PathBuf>,
    /// Client certificate for etcd (with --etcd-key).
    #[arg(
        long,
        env = "ETCDCTL_CERT",
        hide_env_values = true,
        value_name = "FILE",
        requires = "etcd_key"
    )]
    pub etcd_cert: Option<PathBuf>,
    /// Key of --etcd-cert.
    #[arg(
        long,
        env = "ETCDCTL_KEY",
        hide_env_values = true,
        value_name = "FILE",
        requires = "etcd_cert"
    )]
    pub etcd_key: Option<PathBuf>,
}

impl EtcdArgs {
    /// The connection settings these flags describe.
    pub fn options(&self) -> EtcdOptions {
        EtcdOptions {
            user: self.etcd_user.clone(),
            password: self.etcd_password.clone(),
            cacert: self.etcd_cacert.clone(),
            cert: self.etcd_cert.clone(),
            key: self.etcd_key.clone(),
            ..EtcdOptions::default()
        }
    }
}
