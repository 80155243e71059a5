//! Why a TLS handshake failed, in words a user can act on: the reasons
//! behind most failures against production servers are few (an unknown CA,
//! a name the certificate does not carry, an expired certificate, a client
//! certificate the server wants) and each has one fix.

use std::error::Error;
use std::fmt;
use std::io;
use std::time::{Duration, UNIX_EPOCH};

use rustls::{AlertDescription, CertificateError};

/// A handshake failure, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeFailure {
    /// The server's certificate is not signed by a trusted CA.
    UnknownCa,
    /// The certificate is not valid for the name checked.
    NameMismatch {
        expected: String,
        /// The names the certificate does carry.
        presented: Vec<String>,
    },
    /// The certificate expired (at `not_after`, seconds since the epoch, when known).
    Expired { not_after: Option<u64> },
    /// The certificate is not valid yet (clock skew, or issued for later).
    NotYetValid,
    /// The server requires a client certificate and got none.
    ClientCertRequired,
    /// The server refused the client certificate it got (its alert).
    ClientCertRejected { alert: String },
    /// The server answered with something other than TLS.
    NotTls,
    /// Anything else, in rustls's words.
    Other(String),
}

impl fmt::Display for HandshakeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeFailure::UnknownCa => f.write_str(
                "TLS: unknown CA: the server's certificate is not signed by a CA grpclb trusts \
                 (pass the CA that signed it with --cacert FILE)",
            ),
            HandshakeFailure::NameMismatch {
                expected,
                presented,
            } => {
                let names = if presented.is_empty() {
                    "no names".to_string()
                } else {
                    presented.join(", ")
                };
                write!(
                    f,
                    "TLS: name mismatch: the certificate is valid for {names}, not {expected} \
                     (pass --tls-server-name with one of its names)"
                )
            }
            HandshakeFailure::Expired { not_after } => {
                f.write_str("TLS: the server's certificate expired")?;
                if let Some(secs) = not_after {
                    let at = UNIX_EPOCH + Duration::from_secs(*secs);
                    write!(f, " at {}", humantime::format_rfc3339_seconds(at))?;
                }
                f.write_str(" (renew it)")
            }
            HandshakeFailure::NotYetValid => f.write_str(
                "TLS: the server's certificate is not valid yet (check the clocks of client and server)",
            ),
            HandshakeFailure::ClientCertRequired => f.write_str(
                "TLS: the server requires a client certificate (pass --cert FILE --key FILE)",
            ),
            HandshakeFailure::ClientCertRejected { alert } => write!(
                f,
                "TLS: the server rejected our client certificate ({alert}); \
                 check that --cert is signed by the CA the server trusts"
            ),
            HandshakeFailure::NotTls => f.write_str(
                "TLS: the server does not speak TLS (a plaintext server? then drop the TLS flags)",
            ),
            HandshakeFailure::Other(words) => write!(f, "TLS: {words}"),
        }
    }
}

impl Error for HandshakeFailure {}

impl HandshakeFailure {
    /// Classifies an error of rustls.
    pub fn from_rustls(error: &rustls::Error) -> HandshakeFailure {
        match error {
            rustls::Error::InvalidCertificate(cert) => from_certificate(cert),
            rustls::Error::AlertReceived(alert) => from_alert(*alert),
            rustls::Error::InvalidMessage(_) => HandshakeFailure::NotTls,
            other => HandshakeFailure::Other(other.to_string()),
        }
    }

    /// A handshake that failed without a word from rustls: the server
    /// closed or reset the connection, or the network failed.
    pub fn during_handshake(error: &io::Error) -> HandshakeFailure {
        match error.kind() {
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => {
                HandshakeFailure::Other(
                    "the server closed the connection during the handshake (not a TLS server, or it refused us)"
                        .into(),
                )
            }
            _ => HandshakeFailure::Other(format!("the handshake failed: {error}")),
        }
    }
}

fn from_certificate(error: &CertificateError) -> HandshakeFailure {
    match error {
        CertificateError::UnknownIssuer => HandshakeFailure::UnknownCa,
        CertificateError::NotValidForName => HandshakeFailure::NameMismatch {
            expected: "the name checked".into(),
            presented: Vec::new(),
        },
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => HandshakeFailure::NameMismatch {
            expected: expected.to_str().into_owned(),
            presented: presented.iter().map(|name| plain_name(name)).collect(),
        },
        CertificateError::Expired => HandshakeFailure::Expired { not_after: None },
        CertificateError::ExpiredContext { not_after, .. } => HandshakeFailure::Expired {
            not_after: Some(not_after.as_secs()),
        },
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            HandshakeFailure::NotYetValid
        }
        other => HandshakeFailure::Other(format!("the server's certificate is invalid ({other})")),
    }
}

/// `echo.test` from webpki's `DnsName("echo.test")`, `10.0.0.1` from
/// `IpAddress(10.0.0.1)`; anything else as it is.
fn plain_name(presented: &str) -> String {
    let inner = presented
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or(presented);
    inner.trim_matches('"').to_string()
}

fn from_alert(alert: AlertDescription) -> HandshakeFailure {
    match alert {
        AlertDescription::CertificateRequired => HandshakeFailure::ClientCertRequired,
        AlertDescription::BadCertificate
        | AlertDescription::UnknownCA
        | AlertDescription::CertificateUnknown
        | AlertDescription::UnsupportedCertificate
        | AlertDescription::CertificateExpired
        | AlertDescription::CertificateRevoked
        | AlertDescription::AccessDenied => HandshakeFailure::ClientCertRejected {
            alert: alert_words(alert),
        },
        other => HandshakeFailure::Other(format!("the server sent alert {}", alert_words(other))),
    }
}

/// `BadCertificate` as `bad certificate`.
fn alert_words(alert: AlertDescription) -> String {
    let name = format!("{alert:?}");
    let mut words = String::with_capacity(name.len() + 4);
    let mut previous_upper = true;
    for c in name.chars() {
        // A new word starts at an upper-case letter after a lower-case one.
        if c.is_ascii_uppercase() && !previous_upper {
            words.push(' ');
        }
        previous_upper = c.is_ascii_uppercase();
        words.push(c.to_ascii_lowercase());
    }
    words
}

/// Finds a TLS failure anywhere in an error's chain (a call's status, an
/// HTTP/2 error, the I/O error that carries rustls's own); `None` when
/// the error has nothing to do with TLS.
pub fn explain(error: &(dyn Error + 'static)) -> Option<HandshakeFailure> {
    let mut next: Option<&(dyn Error + 'static)> = Some(error);
    while let Some(current) = next {
        if let Some(failure) = current.downcast_ref::<HandshakeFailure>() {
            return Some(failure.clone());
        }
        if let Some(super::ConnectError::Tls(failure)) =
            current.downcast_ref::<super::ConnectError>()
        {
            return Some(failure.clone());
        }
        if let Some(rustls_error) = current.downcast_ref::<rustls::Error>() {
            return Some(HandshakeFailure::from_rustls(rustls_error));
        }
        if let Some(io_error) = current.downcast_ref::<io::Error>()
            && let Some(inner) = io_error.get_ref()
            && let Some(rustls_error) = inner.downcast_ref::<rustls::Error>()
        {
            return Some(HandshakeFailure::from_rustls(rustls_error));
        }
        next = current.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_said_in_words_with_their_fix() {
        let mismatch = HandshakeFailure::from_rustls(&rustls::Error::InvalidCertificate(
            CertificateError::NotValidForNameContext {
                expected: rustls::pki_types::ServerName::try_from("echo.prod").expect("name"),
                presented: vec!["a.example".into()],
            },
        ));
        let text = mismatch.to_string();
        assert!(
            text.contains("name mismatch") && text.contains("echo.prod"),
            "{text}"
        );
        assert!(
            text.contains("a.example") && text.contains("--tls-server-name"),
            "{text}"
        );
        assert_eq!(
            HandshakeFailure::from_rustls(&rustls::Error::AlertReceived(
                AlertDescription::CertificateRequired
            )),
            HandshakeFailure::ClientCertRequired
        );
        assert_eq!(plain_name("DnsName(\"echo.test\")"), "echo.test");
        assert_eq!(plain_name("IpAddress(10.0.0.1)"), "10.0.0.1");
        let rejected = from_alert(AlertDescription::UnknownCA).to_string();
        assert!(rejected.contains("unknown ca"), "{rejected}");
        let expired = HandshakeFailure::Expired {
            not_after: Some(1_700_000_000),
        }
        .to_string();
        assert!(expired.contains("expired at 2023-11-14"), "{expired}");
    }

    #[test]
    fn a_tls_failure_is_found_inside_an_io_error() {
        let io_error = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        assert_eq!(explain(&io_error), Some(HandshakeFailure::UnknownCa));
        let unrelated = io::Error::new(io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(explain(&unrelated), None);
    }
}
