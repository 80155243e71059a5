//! Reaching etcd: endpoints, credentials, TLS, and the error messages that
//! say what to do when it fails. Shared by the resolver and registration.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};

/// Where etcd is when a target names no endpoints and `ETCDCTL_ENDPOINTS` is unset
/// (etcdctl's own default).
pub const DEFAULT_ENDPOINT: &str = "127.0.0.1:2379";

/// The environment variable etcdctl reads its endpoints from.
pub const ENDPOINTS_ENV: &str = "ETCDCTL_ENDPOINTS";

/// The longest one connection attempt (TCP, TLS, authentication) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The longest one unary call (get, put, lease grant/revoke) may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// How to reach and authenticate to etcd, and how to retry when it goes away.
#[derive(Clone)]
pub struct EtcdOptions {
    /// User name (`--etcd-user`, or `ETCDCTL_USER` as `name` or `name:password`).
    pub user: Option<String>,
    /// Password (`--etcd-password`); may also come after ':' in `user`.
    pub password: Option<String>,
    /// CA bundle that signed etcd's server certificate (`--etcd-cacert`).
    pub cacert: Option<PathBuf>,
    /// Client certificate for mutual TLS (`--etcd-cert`).
    pub cert: Option<PathBuf>,
    /// Key of the client certificate (`--etcd-key`).
    pub key: Option<PathBuf>,
    /// The first wait before reconnecting after etcd went away; doubled
    /// after each failed attempt.
    pub reconnect_min: Duration,
    /// The longest wait between reconnect attempts.
    pub reconnect_max: Duration,
}

impl Default for EtcdOptions {
    fn default() -> Self {
        EtcdOptions {
            user: None,
            password: None,
            cacert: None,
            cert: None,
            key: None,
            reconnect_min: Duration::from_millis(200),
            reconnect_max: Duration::from_secs(5),
        }
    }
}

impl fmt::Debug for EtcdOptions {
    /// Never prints the password, nor one written into `user` as `name:password`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let user = self
            .user
            .as_deref()
            .map(|u| u.split_once(':').map_or(u, |(name, _)| name));
        f.debug_struct("EtcdOptions")
            .field("user", &user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("cacert", &self.cacert)
            .field("cert", &self.cert)
            .field("key", &self.key)
            .field("reconnect_min", &self.reconnect_min)
            .field("reconnect_max", &self.reconnect_max)
            .finish()
    }
}

impl EtcdOptions {
    /// True when any TLS setting is given (endpoints are then dialled over https).
    pub fn uses_tls(&self) -> bool {
        self.cacert.is_some() || self.cert.is_some() || self.key.is_some()
    }

    /// The user and password to authenticate with, if any.
    ///
    /// `user` may carry the password as `name:password`, as etcdctl's
    /// `--user` and `ETCDCTL_USER` do; an explicit password wins.
    fn credentials(&self) -> Result<Option<(String, String)>, EtcdError> {
        let Some(user) = self.user.as_deref().filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let (name, inline_password) = match user.split_once(':') {
            Some((name, password)) => (name, Some(password)),
            None => (user, None),
        };
        match self.password.as_deref().or(inline_password) {
            Some(password) => Ok(Some((name.to_string(), password.to_string()))),
            None => Err(EtcdError::Usage(format!(
                "etcd user {name:?} has no password; set ETCDCTL_PASSWORD (or pass --etcd-password)"
            ))),
        }
    }

    /// Reads the TLS files named by the options.
    fn tls(&self) -> Result<Option<TlsOptions>, EtcdError> {
        if !self.uses_tls() {
            return Ok(None);
        }
        let mut tls = TlsOptions::new();
        tls = match &self.cacert {
            Some(path) => {
                tls.ca_certificate(Certificate::from_pem(read_file(path, "--etcd-cacert")?))
            }
            None => tls.with_native_roots(),
        };
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let identity = Identity::from_pem(
                    read_file(cert, "--etcd-cert")?,
                    read_file(key, "--etcd-key")?,
                );
                tls = tls.identity(identity);
            }
            (None, None) => {}
            _ => {
                return Err(EtcdError::Usage(
                    "--etcd-cert and --etcd-key go together: pass both for client-certificate authentication, or neither"
                        .to_string(),
                ));
            }
        }
        Ok(Some(tls))
    }
}

fn read_file(path: &PathBuf, flag: &str) -> Result<Vec<u8>, EtcdError> {
    std::fs::read(path)
        .map_err(|e| EtcdError::Usage(format!("cannot read {flag} file {}: {e}", path.display())))
}

/// Why etcd could not be used. Every message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// The settings are wrong (a missing password, an unreadable TLS file).
    #[error("{0}")]
    Usage(String),
    /// etcd did not answer: down, wrong address, network.
    #[error(
        "cannot reach etcd at {endpoints}: {detail}; check that etcd runs there, and name its endpoints in the target (etcd://host:2379/prefix) or in {ENDPOINTS_ENV}"
    )]
    Unreachable { endpoints: String, detail: String },
    /// etcd answered and refused: authentication or permission.
    #[error(
        "etcd at {endpoints} refused access: {detail}; pass --etcd-user NAME with the password in ETCDCTL_PASSWORD (or --etcd-password) for a user allowed to use this prefix"
    )]
    Denied { endpoints: String, detail: String },
    /// etcd answered with an error of its own.
    #[error("etcd at {endpoints} answered with an error: {detail}")]
    Server { endpoints: String, detail: String },
}

impl EtcdError {
    /// Classifies an etcd-client error from a call to `endpoints`.
    pub fn from_client(raw_endpoints: &[String], err: etcd_client::Error) -> EtcdError {
        let endpoints = shown_endpoints(raw_endpoints);
        let scrub = |detail: String| scrub_endpoints(detail, raw_endpoints);
        match err {
            etcd_client::Error::GRpcStatus(status) => {
                let detail = scrub(format!("{} ({:?})", status.message(), status.code()));
                match status.code() {
                    tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => {
                        EtcdError::Denied { endpoints, detail }
                    }
                    // etcd reports a missing or wrong user as InvalidArgument.
                    tonic::Code::InvalidArgument if is_auth_message(status.message()) => {
                        EtcdError::Denied { endpoints, detail }
                    }
                    tonic::Code::Unavailable
                    | tonic::Code::DeadlineExceeded
                    | tonic::Code::Unknown => EtcdError::Unreachable { endpoints, detail },
                    _ => EtcdError::Server { endpoints, detail },
                }
            }
            etcd_client::Error::InvalidArgs(detail) | etcd_client::Error::EndpointError(detail) => {
                EtcdError::Usage(format!("etcd endpoints {endpoints}: {}", scrub(detail)))
            }
            other => EtcdError::Unreachable {
                endpoints,
                detail: scrub(other.to_string()),
            },
        }
    }

    /// The error for a call that did not finish in time.
    pub fn timed_out(endpoints: &[String], what: &str, after: Duration) -> EtcdError {
        EtcdError::Unreachable {
            endpoints: shown_endpoints(endpoints),
            detail: format!("{what} got no answer within {after:?}"),
        }
    }
}

/// The endpoints as shown in messages: credentials written into one
/// (`http://user:pass@host:2379` in `ETCDCTL_ENDPOINTS`) are redacted.
fn shown_endpoints(endpoints: &[String]) -> String {
    endpoints
        .iter()
        .map(|e| crate::target::redact(e))
        .collect::<Vec<_>>()
        .join(",")
}

/// `detail` with every endpoint that carries credentials replaced by its
/// redacted form (etcd-client's messages quote the URI they dialled).
fn scrub_endpoints(mut detail: String, endpoints: &[String]) -> String {
    for endpoint in endpoints {
        let shown = crate::target::redact(endpoint);
        if shown != *endpoint {
            detail = detail.replace(endpoint.as_str(), &shown);
            // A password also shows on its own (a URI parser quoting its part).
            if let Some(secret) = password_of(endpoint) {
                detail = detail.replace(secret, crate::target::REDACTED);
            }
        }
    }
    detail
}

/// The password (or token) part of an endpoint's userinfo.
fn password_of(endpoint: &str) -> Option<&str> {
    let authority = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest);
    let (info, _) = authority.split('/').next()?.rsplit_once('@')?;
    let secret = info.split_once(':').map_or(info, |(_, password)| password);
    Some(secret).filter(|s| !s.is_empty())
}

/// True for etcd's messages about a missing user, a wrong password or a bad token.
fn is_auth_message(message: &str) -> bool {
    [
        "user name is empty",
        "authentication failed",
        "auth token",
        "invalid user",
    ]
    .iter()
    .any(|m| message.contains(m))
}

/// The endpoints to dial: the target's own, else `ETCDCTL_ENDPOINTS`, else
/// etcdctl's default.
pub fn endpoints_or_env(from_target: &[String]) -> Vec<String> {
    if !from_target.is_empty() {
        return from_target.to_vec();
    }
    let from_env: Vec<String> = std::env::var(ENDPOINTS_ENV)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect();
    if from_env.is_empty() {
        vec![DEFAULT_ENDPOINT.to_string()]
    } else {
        from_env
    }
}

/// The key range to read for a service prefix: the prefix as a directory,
/// so that `/grpclb/echo` never matches `/grpclb/echo2`.
pub fn directory(prefix: &str) -> String {
    format!("{}/", prefix.trim_end_matches('/'))
}

/// Opens a client to `endpoints`, authenticating when a user is given.
///
/// Bounded by [`CONNECT_TIMEOUT`] (etcd-client only touches the network here
/// when it has to authenticate; the first call finds out otherwise).
pub async fn connect(endpoints: &[String], options: &EtcdOptions) -> Result<Client, EtcdError> {
    let mut connect_options = ConnectOptions::new()
        .with_connect_timeout(CONNECT_TIMEOUT)
        // etcd answers pings more often than every 5 s with GOAWAY; 10 s is safe.
        .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5))
        .with_keep_alive_while_idle(true)
        .with_auto_token_refresh(true);
    if let Some((user, password)) = options.credentials()? {
        connect_options = connect_options.with_user(user, password);
    }
    if let Some(tls) = options.tls()? {
        connect_options = connect_options.with_tls(tls);
    }
    match tokio::time::timeout(
        CONNECT_TIMEOUT,
        Client::connect(endpoints, Some(connect_options)),
    )
    .await
    {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(err)) => Err(EtcdError::from_client(endpoints, err)),
        Err(_) => Err(EtcdError::timed_out(
            endpoints,
            "connecting",
            CONNECT_TIMEOUT,
        )),
    }
}

/// Runs one etcd call bounded by [`CALL_TIMEOUT`], classifying its error.
pub async fn call<T>(
    endpoints: &[String],
    what: &str,
    fut: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, EtcdError> {
    match tokio::time::timeout(CALL_TIMEOUT, fut).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(EtcdError::from_client(endpoints, err)),
        Err(_) => Err(EtcdError::timed_out(endpoints, what, CALL_TIMEOUT)),
    }
}

/// Waits between reconnect attempts: doubling from a minimum to a maximum,
/// with ±20 % jitter so that many clients do not retry in step.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        let max = max.max(min);
        Backoff {
            next: min,
            min,
            max,
        }
    }

    /// The wait before the next attempt (and doubles the one after it).
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait.mul_f64(rand::random_range(0.8..1.2))
    }

    /// Starts again from the minimum (after a success).
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_read_as_a_directory() {
        assert_eq!(directory("/grpclb/echo"), "/grpclb/echo/");
        assert_eq!(directory("/grpclb/echo/"), "/grpclb/echo/");
    }

    #[test]
    fn backoff_doubles_up_to_its_maximum() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));
        let waits: Vec<_> = (0..5).map(|_| backoff.next_wait().as_millis()).collect();
        for (wait, nominal) in waits.iter().zip([100u128, 200, 400, 400, 400]) {
            assert!(
                *wait >= nominal * 8 / 10 && *wait <= nominal * 12 / 10,
                "{waits:?}"
            );
        }
        backoff.reset();
        assert!(backoff.next_wait() <= Duration::from_millis(120));
    }

    #[test]
    fn user_may_carry_its_password() {
        let options = EtcdOptions {
            user: Some("root:secret".into()),
            ..EtcdOptions::default()
        };
        assert_eq!(
            options.credentials().expect("ok"),
            Some(("root".into(), "secret".into()))
        );
        let missing = EtcdOptions {
            user: Some("root".into()),
            ..EtcdOptions::default()
        };
        assert!(
            missing
                .credentials()
                .expect_err("no password")
                .to_string()
                .contains("--etcd-password")
        );
        assert!(!format!("{options:?}").contains("secret"));
    }

    #[test]
    fn endpoints_with_credentials_are_redacted_in_errors() {
        let endpoints = vec!["http://root:s3cret-pw@127.0.0.1:1".to_string()];
        let err = EtcdError::from_client(
            &endpoints,
            etcd_client::Error::InvalidArgs(
                "bad uri http://root:s3cret-pw@127.0.0.1:1 (s3cret-pw)".into(),
            ),
        );
        let text = err.to_string();
        assert!(!text.contains("s3cret-pw"), "{text}");
        assert!(text.contains("root:<redacted>@127.0.0.1:1"), "{text}");
        let text = EtcdError::timed_out(&endpoints, "connecting", CONNECT_TIMEOUT).to_string();
        assert!(!text.contains("s3cret-pw"), "{text}");
    }

    #[test]
    fn cert_without_key_is_a_usage_error() {
        let options = EtcdOptions {
            cert: Some("/nonexistent/cert.pem".into()),
            ..EtcdOptions::default()
        };
        assert!(matches!(options.tls(), Err(EtcdError::Usage(_))));
    }
}
