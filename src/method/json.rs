//! The proto3 JSON mapping: JSON requests into encoded messages (once,
//! before a run), and response bodies back into JSON for a first look.
//! When JSON does not fit, the error names the field and the type it expects.

use bytes::Bytes;
use prost::Message;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::Value;

use super::MethodError;
use super::shape::{is_well_known, type_name};

/// Encodes one JSON document as `message`; `origin` names where it came from
/// (`--data`, `reqs.jsonl line 3`) in errors.
pub fn encode_json(
    json: &str,
    origin: &str,
    message: &MessageDescriptor,
) -> Result<Bytes, MethodError> {
    let value: Value = serde_json::from_str(json).map_err(|e| MethodError::MalformedJson {
        origin: origin.to_string(),
        detail: e.to_string(),
    })?;
    match DynamicMessage::deserialize(message.clone(), &value) {
        Ok(dynamic) => Ok(Bytes::from(dynamic.encode_to_vec())),
        Err(e) => Err(explain(&value, message, origin, e)),
    }
}

/// Decodes a response body as `message` and prints it as canonical proto3 JSON.
pub fn decode_to_json(body: &[u8], message: &MessageDescriptor) -> Result<String, String> {
    let dynamic = DynamicMessage::decode(message.clone(), body).map_err(|e| {
        format!(
            "the response does not decode as {}: {e}",
            message.full_name()
        )
    })?;
    serde_json::to_string(&dynamic).map_err(|e| format!("cannot print the response as JSON: {e}"))
}

/// Turns a refusal of the whole document into an error about its first bad field.
fn explain(
    value: &Value,
    message: &MessageDescriptor,
    origin: &str,
    refusal: serde_json::Error,
) -> MethodError {
    if !value.is_object() {
        return MethodError::Mismatch {
            origin: origin.to_string(),
            message: message.full_name().to_string(),
            detail: format!("a request is a JSON object {{…}}, not {}", json_kind(value)),
        };
    }
    match first_culprit(value, message, "") {
        Some(Culprit::Unknown { message, field }) => MethodError::UnknownField {
            origin: origin.to_string(),
            known: message
                .fields()
                .map(|f| f.json_name().to_string())
                .collect(),
            message: message.full_name().to_string(),
            field,
        },
        Some(Culprit::Mismatch {
            message,
            field,
            path,
            detail,
        }) => MethodError::FieldMismatch {
            origin: origin.to_string(),
            message: message.full_name().to_string(),
            field: path,
            expected: expected(&field),
            detail,
        },
        None => MethodError::Mismatch {
            origin: origin.to_string(),
            message: message.full_name().to_string(),
            detail: refusal.to_string(),
        },
    }
}

/// The first field, depth first, that the message refuses.
enum Culprit {
    /// A key that names no field of `message`.
    Unknown {
        message: MessageDescriptor,
        field: String,
    },
    /// A value that does not fit `field` (of `message`), at `path`.
    Mismatch {
        message: MessageDescriptor,
        field: FieldDescriptor,
        path: String,
        detail: String,
    },
}

/// Tries each field of an object alone, so the message's own rules judge
/// it, and descends into nested messages to name the innermost bad field.
fn first_culprit(value: &Value, message: &MessageDescriptor, prefix: &str) -> Option<Culprit> {
    let object = value.as_object()?;
    for (key, item) in object {
        let path = format!("{prefix}{key}");
        let Some(field) = message
            .get_field_by_json_name(key)
            .or_else(|| message.get_field_by_name(key))
        else {
            return Some(Culprit::Unknown {
                message: message.clone(),
                field: path,
            });
        };
        let alone = Value::Object([(key.clone(), item.clone())].into_iter().collect());
        let Err(refusal) = DynamicMessage::deserialize(message.clone(), &alone) else {
            continue;
        };
        if let Some(inner) = nested_culprit(&field, item, &path) {
            return Some(inner);
        }
        return Some(Culprit::Mismatch {
            message: message.clone(),
            field,
            path,
            detail: refusal.to_string(),
        });
    }
    None
}

/// The culprit inside a message-typed field's value (one message, list items, map values).
fn nested_culprit(field: &FieldDescriptor, item: &Value, path: &str) -> Option<Culprit> {
    let Kind::Message(inner) = field.kind() else {
        return None;
    };
    if field.is_map() {
        let Kind::Message(value_type) = inner.map_entry_value_field().kind() else {
            return None;
        };
        if is_well_known(&value_type) {
            return None;
        }
        return item
            .as_object()?
            .iter()
            .find_map(|(k, v)| first_culprit(v, &value_type, &format!("{path}[{k:?}].")));
    }
    if is_well_known(&inner) {
        return None;
    }
    if field.is_list() {
        return item
            .as_array()?
            .iter()
            .enumerate()
            .find_map(|(i, v)| first_culprit(v, &inner, &format!("{path}[{i}].")));
    }
    first_culprit(item, &inner, &format!("{path}."))
}

/// What JSON a field takes, in words.
fn expected(field: &FieldDescriptor) -> String {
    if field.is_map()
        && let Kind::Message(entry) = field.kind()
    {
        return format!(
            "a JSON object mapping {} keys to {}",
            type_name(&entry.map_entry_key_field().kind()),
            one_value(&entry.map_entry_value_field().kind())
        );
    }
    let single = one_value(&field.kind());
    if field.is_list() {
        format!("a JSON array of {single}")
    } else {
        single
    }
}

/// What JSON one value of a kind is.
fn one_value(kind: &Kind) -> String {
    match kind {
        Kind::Double | Kind::Float => format!("a number ({kind:?})"),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 | Kind::Uint32 | Kind::Fixed32 => {
            format!("an integer ({kind:?})")
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint64 | Kind::Fixed64 => {
            format!("an integer ({kind:?}; a number or a decimal string)")
        }
        Kind::Bool => "true or false (bool)".into(),
        Kind::String => "a string".into(),
        Kind::Bytes => "base64 text (bytes)".into(),
        Kind::Enum(e) => {
            let names: Vec<String> = e.values().map(|v| v.name().to_string()).collect();
            format!("one of {} (enum {})", names.join(", "), e.full_name())
        }
        Kind::Message(m) if is_well_known(m) => format!("the JSON form of {}", m.full_name()),
        Kind::Message(m) => format!("a JSON object ({})", m.full_name()),
    }
}

/// A JSON value's kind, for messages.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_reflect::DescriptorPool;

    const PROTO: &str = r#"
        syntax = "proto3";
        package t.v1;
        message Req {
          string name = 1;
          int32 count = 2;
          repeated string tags = 3;
          Inner inner = 4;
          repeated Inner items = 5;
          map<string, Inner> by_key = 6;
          Color color = 7;
          int64 big = 8;
          bytes blob = 9;
        }
        message Inner { bool on = 1; string user_name = 2; }
        enum Color { COLOR_UNSPECIFIED = 0; RED = 1; }
    "#;

    fn request() -> MessageDescriptor {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("t.proto"), PROTO).expect("write");
        let set = protox::compile(["t.proto"], [dir.path()]).expect("compiles");
        let pool = DescriptorPool::from_file_descriptor_set(set).expect("links");
        pool.get_message_by_name("t.v1.Req").expect("Req")
    }

    fn err(json: &str) -> MethodError {
        encode_json(json, "--data", &request()).expect_err("refused")
    }

    #[test]
    fn canonical_json_round_trips_through_the_wire_form() {
        let json = r#"{"name":"x","count":3,"tags":["a","b"],"inner":{"on":true,"userName":"u"},"color":"RED","big":"9007199254740993","blob":"aGk="}"#;
        let bytes = encode_json(json, "--data", &request()).expect("encodes");
        let back = decode_to_json(&bytes, &request()).expect("decodes");
        let a: Value = serde_json::from_str(json).expect("json");
        let b: Value = serde_json::from_str(&back).expect("json");
        assert_eq!(a, b);
        // The .proto names are accepted too.
        encode_json(r#"{"inner":{"user_name":"u"}}"#, "--data", &request()).expect("proto name");
    }

    #[test]
    fn malformed_json_says_where() {
        let e = err(r#"{"name": "x",}"#);
        assert!(matches!(e, MethodError::MalformedJson { .. }), "{e}");
        assert!(e.to_string().contains("line 1 column"), "{e}");
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn a_wrong_type_names_the_field_and_the_expected_type() {
        let e = err(r#"{"name": "x", "count": "many"}"#);
        let text = e.to_string();
        assert!(
            text.contains("field count of t.v1.Req expects an integer (int32)"),
            "{text}"
        );
        let e = err(r#"{"items": [{"on": true}, {"on": "yes"}]}"#);
        assert!(
            e.to_string()
                .contains("field items[1].on of t.v1.Inner expects true or false"),
            "{e}"
        );
        let e = err(r#"{"color": "BLUE"}"#);
        assert!(
            e.to_string().contains("one of COLOR_UNSPECIFIED, RED"),
            "{e}"
        );
        let e = err(r#"{"tags": "a"}"#);
        assert!(e.to_string().contains("a JSON array of a string"), "{e}");
        let e = err(r#"[1]"#);
        assert!(e.to_string().contains("not an array"), "{e}");
    }

    #[test]
    fn an_unknown_field_lists_the_real_ones() {
        let e = err(r#"{"nmae": "x"}"#);
        let text = e.to_string();
        assert!(text.contains("unknown field nmae (in t.v1.Req)"), "{text}");
        assert!(text.contains("name, count, tags"), "{text}");
        let e = err(r#"{"byKey": {"k": {"off": true}}}"#);
        assert!(
            e.to_string().contains(
                r#"unknown field byKey["k"].off (in t.v1.Inner); its fields are: on, userName"#
            ),
            "{e}"
        );
    }
}
