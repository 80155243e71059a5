//! Any unary method as a load: where its descriptor comes from (server
//! reflection, `.proto` files, a descriptor set, or the built-in calls),
//! finding it by name, and its JSON requests encoded once into the message
//! bytes every call sends. Also the views behind `grpclb list` and
//! `grpclb describe`.
//!
//! The load path sees only [`MethodCall`]: a path and encoded bodies.

mod catalog;
mod data;
mod error;
mod json;
mod name;
mod reflection;
mod samples;
mod shape;
mod source;

use bytes::Bytes;
use prost_reflect::MessageDescriptor;

pub use catalog::{Catalog, Description, Discovery, Listing, reflection_symbol};
pub use data::RequestData;
pub use error::MethodError;
pub use json::{decode_to_json, encode_json};
pub use name::{CallName, MethodName, find_method, find_unary, streaming_kind};
pub use reflection::ReflectionClient;
pub use samples::ResponseSamples;
pub use shape::{FieldShape, MessageShape, MethodShape, ServiceShape};
pub use source::{DescriptorSource, builtin_descriptors};

/// What the user asked to call: a method by name, where to find its
/// descriptor, and the JSON to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodSpec {
    pub call: CallName,
    pub source: DescriptorSource,
    pub data: RequestData,
    /// Responses to decode and print after the run (`--print-responses N`).
    pub print_responses: usize,
}

/// A unary method ready to send: its path and its requests, encoded once.
#[derive(Debug, Clone)]
pub struct MethodCall {
    /// `pkg.Service/Method`, for reports.
    pub name: MethodName,
    /// The HTTP/2 path: `/pkg.Service/Method`.
    pub path: String,
    /// Encoded request messages (no gRPC 5-byte prefix), sent in turn.
    pub requests: Vec<Bytes>,
    /// The response message type, to decode a sample of responses.
    pub response: MessageDescriptor,
}

impl MethodSpec {
    /// Finds the method's descriptor and encodes the requests. Reflection
    /// asks the first of `addresses` that answers; the built-in calls and
    /// file sources dial nothing.
    pub async fn prepare(&self, addresses: &[String]) -> Result<MethodCall, MethodError> {
        let name = self.call.method_name();
        let builtin;
        let catalog;
        let (pool, origin) = match &self.call {
            CallName::Health | CallName::Echo => {
                builtin = builtin_descriptors();
                (&builtin, "the built-in descriptors".to_string())
            }
            CallName::Method(_) => {
                catalog = Catalog::load(&self.source, addresses, Some(&name.service)).await?;
                (catalog.pool(), catalog.origin.clone())
            }
        };
        let method = find_unary(pool, &name, &origin)?;
        let requests = self.data.encode(&method.input())?;
        Ok(MethodCall {
            path: name.path(),
            name,
            requests,
            response: method.output(),
        })
    }
}
