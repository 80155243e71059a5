//! What every call carries besides its message: `--metadata 'key: value'`
//! (as gRPC defines metadata: lowercase keys, printable ASCII values, and
//! base64 for keys ending in `-bin`) and `--authority NAME`.
//!
//! Values of credential keys (`authorization`, cookies, tokens, …) are
//! never shown: [`CallMetadata::shown`] and `Debug` print them as
//! `<redacted>`, and parse errors never quote a value.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use http::uri::Authority;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::target::REDACTED;

/// Metadata and authority for every call of a run.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CallMetadata {
    entries: Vec<(HeaderName, HeaderValue)>,
    authority: Option<Authority>,
}

/// A `--metadata` entry or `--authority` that gRPC would not send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MetadataError(pub String);

/// Keys that gRPC or HTTP/2 own: a user cannot set them per call.
const RESERVED: &[&str] = &[
    "content-type",
    "te",
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

impl CallMetadata {
    /// Parses every `--metadata` entry and the `--authority`.
    pub fn new(entries: &[String], authority: Option<&str>) -> Result<CallMetadata, MetadataError> {
        let entries = entries
            .iter()
            .map(|entry| parse_entry(entry))
            .collect::<Result<Vec<_>, _>>()?;
        let authority = authority.map(parse_authority).transpose()?;
        Ok(CallMetadata { entries, authority })
    }

    /// True when there is nothing to add to a call.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.authority.is_none()
    }

    /// The `:authority` every call names instead of the address dialled.
    pub fn authority(&self) -> Option<&Authority> {
        self.authority.as_ref()
    }

    /// The entries, in the order given (a key given twice is sent twice).
    pub fn entries(&self) -> &[(HeaderName, HeaderValue)] {
        &self.entries
    }

    /// The entries as headers of their own (empty without entries).
    pub fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        self.apply(&mut headers);
        headers
    }

    /// Adds the entries to a call's headers.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for (key, value) in &self.entries {
            headers.append(key.clone(), value.clone());
        }
    }

    /// The entries as `key: value` for reports, credentials redacted.
    pub fn shown(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|(key, value)| shown_entry(key.as_str(), value))
            .collect()
    }
}

impl fmt::Debug for CallMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallMetadata")
            .field("entries", &self.shown())
            .field("authority", &self.authority)
            .finish()
    }
}

/// True for keys whose values are credentials.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    matches!(
        key.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "set-cookie"
    ) || [
        "token",
        "secret",
        "password",
        "passwd",
        "api-key",
        "apikey",
        "auth",
        "credential",
        "session",
    ]
    .iter()
    .any(|word| key.contains(word))
}

/// `key: value`, or `key: <redacted>` for a credential.
pub fn shown_entry(key: &str, value: &HeaderValue) -> String {
    if is_secret_key(key) {
        format!("{key}: {REDACTED}")
    } else {
        format!("{key}: {}", String::from_utf8_lossy(value.as_bytes()))
    }
}

/// One `key: value` (or `key:value`); `-bin` values are base64.
pub fn parse_entry(entry: &str) -> Result<(HeaderName, HeaderValue), MetadataError> {
    let fail = |problem: String| Err(MetadataError(format!("--metadata: {problem}")));
    // Without ':' the entry may be a bare token: never quote it.
    let Some((key, value)) = entry.split_once(':') else {
        return fail(
            "an entry has no ':' between key and value; write 'key: value', e.g. --metadata 'tenant: blue'"
                .into(),
        );
    };
    let key = key.trim();
    if key.is_empty() {
        return fail("an entry has an empty key; write 'key: value'".into());
    }
    if let Some(bad) = key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        let shown: String = key.chars().take(40).collect();
        return fail(format!(
            "key {shown:?} has {bad:?}; keys are letters, digits, '-', '_' and '.'"
        ));
    }
    let key = key.to_ascii_lowercase();
    if key.starts_with("grpc-") {
        return fail(format!(
            "key {key:?} is reserved: gRPC owns every key starting with grpc-"
        ));
    }
    if RESERVED.contains(&key.as_str()) {
        return fail(format!(
            "key {key:?} is set by HTTP/2 and gRPC themselves{}",
            if key == "host" {
                "; to name the server, use --authority"
            } else {
                ""
            }
        ));
    }
    let name = HeaderName::from_str(&key).map_err(|_| {
        MetadataError(format!(
            "--metadata: key {key:?} is not a valid header name"
        ))
    })?;
    let value = value.trim();
    let value = if key.ends_with("-bin") {
        let bytes = STANDARD
            .decode(value)
            .or_else(|_| STANDARD_NO_PAD.decode(value))
            .map_err(|_| {
                MetadataError(format!(
                    "--metadata: the value of {key:?} is not base64; keys ending in -bin carry binary values, written in base64"
                ))
            })?;
        // gRPC sends binary values base64-encoded without padding.
        HeaderValue::from_str(&STANDARD_NO_PAD.encode(bytes)).map_err(|_| {
            MetadataError(format!("--metadata: the value of {key:?} cannot be sent"))
        })?
    } else {
        if let Some(position) = value.chars().position(|c| !(' '..='~').contains(&c)) {
            return fail(format!(
                "the value of {key:?} has a character that is not printable ASCII (at character {}); \
                 binary values need a key ending in -bin and base64",
                position + 1
            ));
        }
        HeaderValue::from_str(value).map_err(|_| {
            MetadataError(format!("--metadata: the value of {key:?} cannot be sent"))
        })?
    };
    Ok((name, value))
}

/// `--authority host[:port]`.
pub fn parse_authority(text: &str) -> Result<Authority, MetadataError> {
    if text.contains('@') {
        return Err(MetadataError(
            "--authority takes host[:port] without credentials (the part before '@' is refused and not shown)"
                .into(),
        ));
    }
    let authority = Authority::from_str(text.trim()).map_err(|_| {
        let shown: String = text.chars().take(80).collect();
        MetadataError(format!(
            "--authority {shown:?} is not host[:port]; write e.g. --authority echo.prod.example.com"
        ))
    })?;
    if authority.host().is_empty() {
        return Err(MetadataError("--authority has an empty host".into()));
    }
    Ok(authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_as_grpc_defines_them() {
        let (key, value) = parse_entry("Tenant:  blue ").expect("ascii");
        assert_eq!(
            (key.as_str(), value.to_str().expect("ascii")),
            ("tenant", "blue")
        );
        let (key, value) = parse_entry("trace-bin: AAEC").expect("bin");
        assert_eq!(
            (key.as_str(), value.to_str().expect("b64")),
            ("trace-bin", "AAEC")
        );
        let (_, value) = parse_entry("x-bin: AAE=").expect("padded");
        assert_eq!(value.to_str().expect("b64"), "AAE");
    }

    #[test]
    fn bad_entries_name_the_problem_and_never_the_value() {
        let cases = [
            ("Bearer abc.def", "no ':'"),
            (": v", "empty key"),
            ("ten ant: v", "' '"),
            ("grpc-timeout: 1S", "reserved"),
            ("content-type: x", "set by HTTP/2"),
            ("host: x", "--authority"),
            ("x-bin: !!!notbase64", "not base64"),
            ("authorization: Bearer s3cr\u{e9}t", "not printable ASCII"),
        ];
        for (entry, fragment) in cases {
            let text = parse_entry(entry).expect_err(entry).to_string();
            assert!(text.contains(fragment), "{entry:?}: {text}");
            assert!(text.starts_with("--metadata"), "{entry:?}: {text}");
            assert!(
                !text.contains("s3cr") && !text.contains("abc.def"),
                "{text}"
            );
        }
    }

    #[test]
    fn credentials_are_shown_redacted() {
        let metadata = CallMetadata::new(
            &["authorization: Bearer s3cret".into(), "tenant: blue".into()],
            Some("echo.prod:443"),
        )
        .expect("valid");
        assert_eq!(
            metadata.shown(),
            vec!["authorization: <redacted>", "tenant: blue"]
        );
        assert!(!format!("{metadata:?}").contains("s3cret"));
        assert_eq!(
            metadata.authority().map(|a| a.as_str()),
            Some("echo.prod:443")
        );
        let err = parse_authority("user:pw@host").expect_err("credentials");
        assert!(!err.to_string().contains("pw"), "{err}");
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_entry_parses_or_names_the_problem(entry in ".{0,60}") {
                match parse_entry(&entry) {
                    Ok((key, value)) => {
                        prop_assert_eq!(key.as_str(), key.as_str().to_ascii_lowercase());
                        prop_assert!(!key.as_str().starts_with("grpc-"));
                        prop_assert!(value.to_str().is_ok());
                    }
                    Err(err) => prop_assert!(err.to_string().starts_with("--metadata: ")),
                }
            }

            #[test]
            fn a_secret_value_never_shows(
                key in prop::sample::select(vec!["authorization", "x-api-key", "cookie", "x-auth-token"]),
                secret in "[ -~]{8,30}",
            ) {
                let entry = format!("{key}: {secret}");
                let secret = secret.trim();
                prop_assume!(secret.len() >= 8);
                match CallMetadata::new(&[entry], None) {
                    Ok(metadata) => {
                        let shown = format!("{:?} {:?}", metadata.shown(), metadata);
                        prop_assert!(!shown.contains(secret), "{}", shown);
                    }
                    Err(err) => prop_assert!(!err.to_string().contains(secret)),
                }
            }

            #[test]
            fn any_authority_parses_or_says_why(text in ".{0,40}") {
                if let Err(err) = parse_authority(&text) {
                    prop_assert!(err.to_string().contains("--authority"));
                }
            }
        }
    }
}
