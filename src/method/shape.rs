//! What services, methods and messages look like, for `list` and
//! `describe`: plain serializable views and their proto-like text.

use std::collections::BTreeSet;

use prost_reflect::{
    FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor, ServiceDescriptor,
};
use serde::Serialize;

use super::name::streaming_kind;

/// A service and its methods.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceShape {
    /// Full name: `pkg.Service`.
    pub name: String,
    pub methods: Vec<MethodShape>,
}

/// A method: its path, how it streams, and its message types.
#[derive(Debug, Clone, Serialize)]
pub struct MethodShape {
    /// Full name: `pkg.Service/Method`, as `--call` takes it.
    pub name: String,
    /// `unary`, `client-streaming`, `server-streaming` or `bidirectional-streaming`.
    pub kind: &'static str,
    /// Full name of the request message.
    pub request: String,
    /// Full name of the response message.
    pub response: String,
}

/// A message's fields.
#[derive(Debug, Clone, Serialize)]
pub struct MessageShape {
    /// Full name: `pkg.Message`.
    pub name: String,
    pub fields: Vec<FieldShape>,
}

/// One field of a message.
#[derive(Debug, Clone, Serialize)]
pub struct FieldShape {
    /// Name in the .proto file.
    pub name: String,
    /// Name in proto3 JSON (what `--data` uses; the .proto name is accepted too).
    pub json_name: String,
    pub number: u32,
    /// `double` … `bytes`, or the full name of a message or enum type.
    #[serde(rename = "type")]
    pub type_name: String,
    /// `singular`, `optional` (explicit presence), `repeated` or `map`.
    pub label: &'static str,
    /// For a map: the key's type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_type: Option<String>,
    /// The oneof the field belongs to, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oneof: Option<String>,
    /// For an enum: its value names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub enum_values: Vec<String>,
}

impl ServiceShape {
    /// The view of a service descriptor.
    pub fn of(service: &ServiceDescriptor) -> ServiceShape {
        ServiceShape {
            name: service.full_name().to_string(),
            methods: service.methods().map(|m| MethodShape::of(&m)).collect(),
        }
    }
}

impl MethodShape {
    /// The view of a method descriptor.
    pub fn of(method: &MethodDescriptor) -> MethodShape {
        MethodShape {
            name: format!("{}/{}", method.parent_service().full_name(), method.name()),
            kind: streaming_kind(method),
            request: method.input().full_name().to_string(),
            response: method.output().full_name().to_string(),
        }
    }

    /// One line in proto syntax, with the streaming kind after it.
    pub fn text(&self) -> String {
        let short = self.name.rsplit('/').next().unwrap_or(&self.name);
        let (client, server) = match self.kind {
            "client-streaming" => ("stream ", ""),
            "server-streaming" => ("", "stream "),
            "bidirectional-streaming" => ("stream ", "stream "),
            _ => ("", ""),
        };
        format!(
            "rpc {short}({client}{}) returns ({server}{});  // {}",
            self.request, self.response, self.kind
        )
    }
}

impl MessageShape {
    /// The view of a message descriptor.
    pub fn of(message: &MessageDescriptor) -> MessageShape {
        MessageShape {
            name: message.full_name().to_string(),
            fields: message.fields().map(|f| FieldShape::of(&f)).collect(),
        }
    }

    /// The message in proto syntax.
    pub fn text(&self) -> String {
        let mut out = format!("message {} {{\n", self.name);
        for field in &self.fields {
            let label = match field.label {
                "repeated" => "repeated ".to_string(),
                "optional" => "optional ".to_string(),
                _ => String::new(),
            };
            let type_name = match &field.key_type {
                Some(key) => format!("map<{key}, {}>", field.type_name),
                None => format!("{label}{}", field.type_name),
            };
            let mut notes = Vec::new();
            if let Some(oneof) = &field.oneof {
                notes.push(format!("oneof {oneof}"));
            }
            if field.json_name != field.name {
                notes.push(format!("JSON: {}", field.json_name));
            }
            if !field.enum_values.is_empty() {
                notes.push(field.enum_values.join(" | "));
            }
            let notes = if notes.is_empty() {
                String::new()
            } else {
                format!("  // {}", notes.join("; "))
            };
            out.push_str(&format!(
                "  {type_name} {} = {};{notes}\n",
                field.name, field.number
            ));
        }
        out.push('}');
        out
    }
}

impl FieldShape {
    /// The view of a field descriptor.
    pub fn of(field: &FieldDescriptor) -> FieldShape {
        let map_entry = match field.kind() {
            Kind::Message(entry) if field.is_map() => Some(entry),
            _ => None,
        };
        let (label, key_type, kind) = if let Some(entry) = map_entry {
            let key = type_name(&entry.map_entry_key_field().kind());
            ("map", Some(key), entry.map_entry_value_field().kind())
        } else if field.is_list() {
            ("repeated", None, field.kind())
        } else if field.supports_presence() && field.containing_oneof().is_none() {
            let kind = field.kind();
            let label = if matches!(kind, Kind::Message(_)) {
                "singular"
            } else {
                "optional"
            };
            (label, None, kind)
        } else {
            ("singular", None, field.kind())
        };
        let enum_values = match &kind {
            Kind::Enum(e) => e.values().map(|v| v.name().to_string()).collect(),
            _ => Vec::new(),
        };
        FieldShape {
            name: field.name().to_string(),
            json_name: field.json_name().to_string(),
            number: field.number(),
            type_name: type_name(&kind),
            label,
            key_type,
            oneof: field
                .containing_oneof()
                .filter(|o| !o.is_synthetic())
                .map(|o| o.name().to_string()),
            enum_values,
        }
    }
}

/// The .proto name of a field type: `int64`, `pkg.Message`, `pkg.Enum`.
pub fn type_name(kind: &Kind) -> String {
    match kind {
        Kind::Message(m) => m.full_name().to_string(),
        Kind::Enum(e) => e.full_name().to_string(),
        scalar => format!("{scalar:?}"),
    }
}

/// `message` and every message type reachable from its fields, each once,
/// in the order first met; well-known types are named, not expanded.
pub fn messages_reachable(roots: &[MessageDescriptor]) -> Vec<MessageShape> {
    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    let mut stack: Vec<MessageDescriptor> = roots.iter().rev().cloned().collect();
    while let Some(message) = stack.pop() {
        if !seen.insert(message.full_name().to_string()) {
            continue;
        }
        let mut nested = Vec::new();
        for field in message.fields() {
            let kind = if field.is_map() {
                match field.kind() {
                    Kind::Message(entry) => entry.map_entry_value_field().kind(),
                    other => other,
                }
            } else {
                field.kind()
            };
            if let Kind::Message(m) = kind
                && !is_well_known(&m)
            {
                nested.push(m);
            }
        }
        order.push(MessageShape::of(&message));
        stack.extend(nested.into_iter().rev());
    }
    order
}

/// True for `google.protobuf.*` types, whose JSON forms are special and well documented.
pub fn is_well_known(message: &MessageDescriptor) -> bool {
    message.package_name() == "google.protobuf"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method::builtin_descriptors;

    #[test]
    fn echo_reply_shows_its_nested_message() {
        let pool = builtin_descriptors();
        let reply = pool
            .get_message_by_name("grpclb.v1.EchoReply")
            .expect("EchoReply");
        let shapes = messages_reachable(&[reply]);
        let names: Vec<&str> = shapes.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["grpclb.v1.EchoReply", "grpclb.v1.ServerIdentity"]);
        let text = shapes[0].text();
        assert!(text.contains("bytes payload = 1;"), "{text}");
        assert!(
            text.contains("grpclb.v1.ServerIdentity server = 2;"),
            "{text}"
        );
    }

    #[test]
    fn methods_read_like_proto_with_their_kind() {
        let pool = builtin_descriptors();
        let health = ServiceShape::of(
            &pool
                .get_service_by_name("grpc.health.v1.Health")
                .expect("health"),
        );
        let lines: Vec<String> = health.methods.iter().map(MethodShape::text).collect();
        assert!(lines.iter().any(|l| l.contains("rpc Check(grpc.health.v1.HealthCheckRequest) returns (grpc.health.v1.HealthCheckResponse);  // unary")), "{lines:?}");
        assert!(
            lines.iter().any(|l| l.contains(
                "returns (stream grpc.health.v1.HealthCheckResponse);  // server-streaming"
            )),
            "{lines:?}"
        );
    }
}
