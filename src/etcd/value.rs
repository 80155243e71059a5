//! What the value of a key under a service prefix means.
//!
//! Two formats are in use for registrations, and both are read:
//! - **plain**: the value is the address itself, `host:port` (the common Go
//!   pattern `/grpclb/<service>/<addr>` = `<addr>`);
//! - **json**: etcd's endpoint JSON, as written by etcd's gRPC naming
//!   package: `{"Op":0,"Addr":"host:port","Metadata":…}`.
//!
//! Anything else is not guessed at: [`decode`] says why the value is not an
//! endpoint, so that the resolver can report the key as skipped.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::target::Target;

/// How a registration writes its value (and what a reader accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValueFormat {
    /// The bare address, `host:port`.
    #[default]
    Plain,
    /// etcd's endpoint JSON, `{"Op":0,"Addr":"host:port","Metadata":{…}}`.
    Json,
}

impl FromStr for ValueFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "plain" => Ok(ValueFormat::Plain),
            "json" => Ok(ValueFormat::Json),
            other => Err(format!("unknown value format {other:?}; use plain or json")),
        }
    }
}

impl fmt::Display for ValueFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueFormat::Plain => "plain",
            ValueFormat::Json => "json",
        })
    }
}

/// What a registration may say about the server besides its address.
///
/// Written into the JSON format's `Metadata` object; read back into the
/// endpoint's name, node and zone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Metadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

/// A value that names an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The address, normalized (`host:port`, `[v6]:port`).
    pub address: String,
    pub metadata: Metadata,
}

/// The `Op` of etcd's naming JSON that announces an address (the other, 1,
/// withdraws it).
const OP_ADD: i64 = 0;

/// Reads a value; the error is the reason the key is skipped.
pub fn decode(value: &[u8]) -> Result<Decoded, String> {
    let text = std::str::from_utf8(value).map_err(|_| "the value is not UTF-8 text".to_string())?;
    let text = text.trim();
    if text.is_empty() {
        return Err("the value is empty; write the address, as 10.0.0.7:50051".to_string());
    }
    if text.starts_with('{') {
        return decode_json(text);
    }
    let address = parse_address(text).map_err(|problem| {
        format!("the value {text:?} is neither host:port nor etcd's endpoint JSON ({problem})")
    })?;
    Ok(Decoded {
        address,
        metadata: Metadata::default(),
    })
}

/// Reads etcd's endpoint JSON. Field names match case-insensitively, as Go's
/// `encoding/json` (which wrote them) does when reading.
fn decode_json(text: &str) -> Result<Decoded, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("the value is not valid JSON: {e}"))?;
    let Value::Object(object) = value else {
        return Err("the JSON value is not an object".to_string());
    };
    if let Some(op) = field(&object, "Op") {
        match op.as_i64() {
            Some(OP_ADD) => {}
            Some(1) => return Err("Op is 1 (Delete): the value withdraws the address".to_string()),
            _ => return Err(format!("Op is {op}, not 0 (Add)")),
        }
    }
    let addr = match field(&object, "Addr") {
        Some(Value::String(addr)) => addr,
        Some(other) => return Err(format!("Addr is {other}, not a \"host:port\" string")),
        None => {
            return Err("the JSON has no Addr field; write {\"Addr\":\"host:port\"}".to_string());
        }
    };
    let address = parse_address(addr).map_err(|problem| format!("Addr {addr:?}: {problem}"))?;
    let metadata = match field(&object, "Metadata") {
        Some(Value::Object(meta)) => Metadata {
            name: string_field(meta, "name"),
            node: string_field(meta, "node"),
            zone: string_field(meta, "zone"),
        },
        // Any other metadata (a string, a number, null) is allowed and carries nothing we show.
        _ => Metadata::default(),
    };
    Ok(Decoded { address, metadata })
}

fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

fn string_field(object: &Map<String, Value>, name: &str) -> Option<String> {
    field(object, name)
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Validates one `host:port` with the target parser's own address rules;
/// returns it normalized.
pub fn parse_address(text: &str) -> Result<String, String> {
    if text.contains(',') || text.contains('/') {
        return Err("an address has no ',' or '/'".to_string());
    }
    match Target::parse(&format!("static:///{text}")) {
        Ok(Target::Static { mut addresses }) if addresses.len() == 1 => addresses
            .pop()
            .ok_or_else(|| "not a single host:port".to_string()),
        Ok(_) => Err("not a single host:port".to_string()),
        Err(err) => Err(err.problem),
    }
}

/// Writes the value a registration puts under its key.
pub fn encode(format: ValueFormat, address: &str, metadata: &Metadata) -> String {
    match format {
        ValueFormat::Plain => address.to_string(),
        ValueFormat::Json => {
            let value = serde_json::json!({ "Op": OP_ADD, "Addr": address, "Metadata": metadata });
            value.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_address_is_an_endpoint() {
        let decoded = decode(b"10.0.0.7:50051").expect("plain");
        assert_eq!(decoded.address, "10.0.0.7:50051");
        assert_eq!(
            decode(b" [fd00::1]:9000\n").expect("v6").address,
            "[fd00::1]:9000"
        );
        assert_eq!(
            decode(b"echo-0.echo:9000").expect("name").address,
            "echo-0.echo:9000"
        );
    }

    #[test]
    fn etcd_naming_json_is_an_endpoint() {
        let decoded =
            decode(br#"{"Op":0,"Addr":"10.0.0.8:50051","Metadata":{"name":"echo-1","zone":"a"}}"#)
                .expect("json");
        assert_eq!(decoded.address, "10.0.0.8:50051");
        assert_eq!(decoded.metadata.name.as_deref(), Some("echo-1"));
        assert_eq!(decoded.metadata.zone.as_deref(), Some("a"));
        // etcd's newer endpoints manager writes no Op, and any Metadata.
        assert_eq!(
            decode(br#"{"Addr":"10.0.0.9:1","Metadata":"x"}"#)
                .expect("no op")
                .address,
            "10.0.0.9:1"
        );
        // Go reads field names case-insensitively.
        assert_eq!(
            decode(br#"{"addr":"10.0.0.9:2"}"#)
                .expect("lower case")
                .address,
            "10.0.0.9:2"
        );
    }

    #[test]
    fn anything_else_is_skipped_with_a_reason() {
        let cases: [(&[u8], &str); 8] = [
            (b"", "empty"),
            (b"not an address", "neither host:port"),
            (b"10.0.0.1", "no port"),
            (b"10.0.0.1:99999", "1 to 65535"),
            (b"{\"Addr\":", "not valid JSON"),
            (br#"{"Address":"10.0.0.1:80"}"#, "no Addr"),
            (br#"{"Op":1,"Addr":"10.0.0.1:80"}"#, "Delete"),
            (b"\xff\xfe", "UTF-8"),
        ];
        for (value, reason) in cases {
            let err = decode(value).expect_err("should be skipped");
            assert!(err.contains(reason), "{value:?}: {err}");
        }
    }

    #[test]
    fn encode_round_trips_both_formats() {
        let metadata = Metadata {
            name: Some("echo-2".into()),
            ..Metadata::default()
        };
        for format in [ValueFormat::Plain, ValueFormat::Json] {
            let value = encode(format, "127.0.0.2:9000", &metadata);
            let decoded = decode(value.as_bytes()).expect("round trip");
            assert_eq!(decoded.address, "127.0.0.2:9000");
            if format == ValueFormat::Json {
                assert_eq!(decoded.metadata, metadata);
                assert!(value.contains(r#""Op":0"#), "{value}");
            }
        }
        assert_eq!("json".parse::<ValueFormat>(), Ok(ValueFormat::Json));
        assert!("xml".parse::<ValueFormat>().is_err());
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_bytes_decode_or_say_why(value in prop::collection::vec(any::<u8>(), 0..80)) {
                if let Err(reason) = decode(&value) {
                    prop_assert!(!reason.trim().is_empty());
                }
            }

            #[test]
            fn any_text_decodes_or_says_why(value in "[ -~]{0,60}") {
                match decode(value.as_bytes()) {
                    Ok(decoded) => {
                        // What was accepted is a dialable address again.
                        prop_assert_eq!(parse_address(&decoded.address), Ok(decoded.address.clone()));
                    }
                    Err(reason) => prop_assert!(!reason.trim().is_empty()),
                }
            }

            #[test]
            fn json_with_a_bad_addr_names_it(addr in "[ -~]{0,30}", op in prop::option::of(-3i64..4)) {
                let mut object = serde_json::json!({ "Addr": addr });
                if let Some(op) = op {
                    object["Op"] = op.into();
                }
                match decode(object.to_string().as_bytes()) {
                    Ok(decoded) => {
                        prop_assert!(op.unwrap_or(0) == 0);
                        prop_assert_eq!(parse_address(&addr), Ok(decoded.address));
                    }
                    Err(reason) => prop_assert!(
                        reason.contains("Addr") || reason.contains("Op"),
                        "{}", reason
                    ),
                }
            }

            #[test]
            fn json_of_any_shape_decodes_or_says_why(
                key in "[A-Za-z]{0,8}",
                value in prop_oneof![
                    Just(serde_json::Value::Null),
                    any::<bool>().prop_map(serde_json::Value::from),
                    any::<f64>().prop_map(serde_json::Value::from),
                    "[ -~]{0,20}".prop_map(serde_json::Value::from),
                ],
            ) {
                let object = serde_json::json!({ key: value, "Metadata": { "name": value } });
                if let Err(reason) = decode(object.to_string().as_bytes()) {
                    prop_assert!(!reason.trim().is_empty());
                }
            }
        }
    }
}
